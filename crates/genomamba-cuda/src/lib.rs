//! genomamba-cuda (skeleton; see shared DESIGN.md §2).
