//! Where the repository's data and goldens are when a test binary runs: `GENOMAMBA_REPO` if set, else the
//! checkout it was built in, else the current directory. The GPU machine runs binaries built elsewhere, from
//! the root of a copy of the working tree (tests/gpu/run.sh), so the build path may not exist there.

use std::path::PathBuf;

/// The repository root (holding `data/` and `tests/golden/`).
pub fn repo_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("GENOMAMBA_REPO") {
        return PathBuf::from(dir);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built.join("tests/golden").is_dir() {
        return built;
    }
    std::env::current_dir().unwrap_or(built)
}
