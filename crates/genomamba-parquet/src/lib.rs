//! genomamba-parquet (skeleton; see shared DESIGN.md §2).
