//! genomamba-pipeline (skeleton; see shared DESIGN.md §2).
