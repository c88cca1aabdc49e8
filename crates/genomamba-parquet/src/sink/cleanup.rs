//! A process-wide list of unfinished temporary files, so an interrupt handler can remove them.
//!
//! Every [`super::ParquetSink`] registers its temporary file while it is open. A binary that wants interrupted
//! runs to leave nothing behind calls [`remove_temp_files`] from an ordinary thread before exiting, for example
//! one that a signal handler wakes (signal-hook's iterator does this), or after a signal handler has set a flag
//! that the run checks (what the `genomamba` binary does: the run stops and drops its sink).
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

/// Adds a temporary file that is not a sink's (a copy of standard input, say) to the list, so that
/// [`remove_temp_files`] removes it too. Its owner removes it as usual; the list then holds a path that is gone,
/// which [`remove_temp_files`] passes over.
pub fn register_temp_file(path: &Path) {
    register(path);
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
