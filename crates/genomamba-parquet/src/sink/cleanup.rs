//! A process-wide list of unfinished temporary files, so an interrupt handler can remove them.
//!
//! Every [`super::ParquetSink`] registers its temporary file while it is open. A binary that wants interrupted
//! runs to leave nothing behind installs a Ctrl-C handler that runs on an ordinary thread (the `ctrlc` crate
//! does this) and calls [`remove_temp_files`] before exiting:
//!
//! ```text
//! ctrlc::set_handler(|| {
//!     genomamba_parquet::remove_temp_files();
//!     std::process::exit(130);
//! })?;
//! ```
//!
//! Do not call it from a raw POSIX signal handler: it takes a mutex and touches the file system.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The list, even if a thread panicked while holding it (the list itself is always valid).
pub(crate) fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn register(path: &Path) {
    pending().push(path.to_path_buf());
}

/// Removes `path` from the list (held guard form, for callers that rename under the lock).
pub(crate) fn unregister_in(list: &mut Vec<PathBuf>, path: &Path) {
    list.retain(|p| p != path);
}

/// Removes every registered temporary file of unfinished sinks in this process; returns how many were removed.
///
/// A sink whose file was removed fails at `finish` and never renames anything into place.
pub fn remove_temp_files() -> usize {
    let mut list = pending();
    let removed = list
        .iter()
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count();
    list.clear();
    removed
}

/// The temporary files currently registered (for tests and diagnostics).
pub fn temp_files() -> Vec<PathBuf> {
    pending().clone()
}
