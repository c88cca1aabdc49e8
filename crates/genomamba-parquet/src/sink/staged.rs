//! A file written under a temporary name beside its target and renamed onto it when complete: what every output
//! of genomamba is (the Parquet tables, and the annotated VCF and its index).

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::cleanup;
use crate::error::{Error, Result};

/// Distinguishes temporary files for one target in one process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// An output being written: a hidden temporary file `.NAME.PID-N.tmp` in the target's directory, registered so
/// that an interrupted run removes it ([`super::remove_temp_files`]). [`StagedFile::commit`] fsyncs and renames
/// it onto the target; dropping it uncommitted removes it, so a failed run leaves nothing that looks finished.
///
/// # Examples
///
/// ```
/// use std::io::Write as _;
/// use genomamba_parquet::sink::StagedFile;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("calls.vcf");
/// let (staged, mut file) = StagedFile::create(&path, false)?;
/// file.write_all(b"##fileformat=VCFv4.3\n")?;
/// assert!(!path.exists());
/// drop(file);
/// staged.commit()?;
/// assert!(path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StagedFile {
    target: PathBuf,
    temp: PathBuf,
    force: bool,
}

impl StagedFile {
    /// Creates the temporary file for `target` and returns it open for writing.
    ///
    /// Fails if `target` exists and `force` is false, if it is not a regular file (a device or pipe would be
    /// replaced by the rename), or if its directory does not exist.
    pub fn create(target: impl AsRef<Path>, force: bool) -> Result<(Self, File)> {
        let target = target.as_ref().to_path_buf();
        check_target(&target, force)?;
        let (temp, file) = create_temp(&target)?;
        cleanup::register(&temp);
        Ok((
            Self {
                target,
                temp,
                force,
            },
            file,
        ))
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// The temporary file being written.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Fsyncs the temporary file and renames it onto the target (refusing a target that appeared meanwhile
    /// unless `force`). Returns the file's size in bytes. The writer must have flushed everything first.
    pub fn commit(self) -> Result<u64> {
        let file = File::open(&self.temp).map_err(|e| Error::io("opening", &self.temp, e))?;
        file.sync_all()
            .map_err(|e| Error::io("syncing", &self.temp, e))?;
        let bytes = file
            .metadata()
            .map_err(|e| Error::io("reading size of", &self.temp, e))?
            .len();
        {
            let mut pending = cleanup::pending();
            // A temporary file removed by an interrupt handler is not renamed into place.
            if !pending.iter().any(|p| p == &self.temp) {
                return Err(Error::io(
                    "renaming",
                    &self.temp,
                    ErrorKind::NotFound.into(),
                ));
            }
            if !self.force && self.target.exists() {
                return Err(Error::Exists {
                    path: self.target.clone(),
                });
            }
            std::fs::rename(&self.temp, &self.target)
                .map_err(|e| Error::io("renaming", &self.temp, e))?;
            cleanup::unregister_in(&mut pending, &self.temp);
        }
        sync_dir(&self.target);
        Ok(bytes)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        let mut pending = cleanup::pending();
        if pending.iter().any(|p| p == &self.temp) {
            let _ = std::fs::remove_file(&self.temp);
            cleanup::unregister_in(&mut pending, &self.temp);
        }
    }
}

/// Whether `target` may be written: absent, or a regular file (or a link to one) with `force`. What
/// [`StagedFile::create`] checks, for callers that check their outputs before any work.
pub fn check_target(target: &Path, force: bool) -> Result<()> {
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => Err(Error::io("writing", target, ErrorKind::IsADirectory.into())),
        // A device or a pipe would be replaced by the rename (`--force -o /dev/null` as root replaced the device).
        Ok(m) if !m.is_file() && !m.is_symlink() => Err(Error::io(
            "writing",
            target,
            std::io::Error::new(
                ErrorKind::InvalidInput,
                "not a regular file (a device, pipe or socket): outputs are written beside their path and \
                 renamed onto it; give a file path",
            ),
        )),
        Ok(_) if !force => Err(Error::Exists {
            path: target.to_path_buf(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("checking", target, e)),
    }
}

/// `.NAME.PID-N.tmp` beside `target`, created exclusively.
fn create_temp(target: &Path) -> Result<(PathBuf, File)> {
    let name = target
        .file_name()
        .ok_or_else(|| Error::io("writing", target, ErrorKind::InvalidInput.into()))?
        .to_string_lossy();
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    loop {
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(f) => return Ok((temp, f)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("creating", temp, e)),
        }
    }
}

/// Makes the rename durable (best effort: some file systems refuse fsync on directories).
fn sync_dir(target: &Path) {
    if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}
