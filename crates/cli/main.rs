//! The `genomamba` binary (skeleton).
fn main() {}
