//! Records the git commit the binary is built from (`genomamba version`), as `GENOMAMBA_COMMIT`: the full hash,
//! or `unknown` outside a git checkout (a source archive) or without git.

use std::path::Path;
use std::process::Command;

/// Runs `git` with `args` in the package directory; its trimmed standard output when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&dir);
    let commit = git(dir, &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=GENOMAMBA_COMMIT={commit}");
    // Rebuild when HEAD moves: a commit, checkout or reset appends to logs/HEAD (and may rewrite HEAD).
    for name in ["HEAD", "logs/HEAD"] {
        // A missing path would make cargo rerun this script on every build.
        if let Some(path) = git(dir, &["rev-parse", "--git-path", name]).map(|p| dir.join(p))
            && path.exists()
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
