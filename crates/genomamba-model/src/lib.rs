//! genomamba-model (skeleton; see shared DESIGN.md §2).
