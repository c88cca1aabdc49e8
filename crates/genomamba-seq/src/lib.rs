//! genomamba-seq (skeleton; see shared DESIGN.md §2).
