//! The atomic Parquet sink: a temporary file beside the target, renamed into place by `finish`.

mod cleanup;
mod options;

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;

pub use cleanup::{remove_temp_files, temp_files};
pub use options::{METADATA_KEY, SinkOptions};

use crate::error::{Error, Result};

/// What a finished sink wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSummary {
    /// The final path.
    pub path: PathBuf,
    /// Rows written.
    pub rows: u64,
    /// Row groups written.
    pub row_groups: usize,
    /// File size in bytes.
    pub bytes: u64,
}

/// Writes record batches to a Parquet file atomically.
///
/// Rows go to a hidden temporary file in the target's directory; [`ParquetSink::finish`] writes the footer,
/// fsyncs and renames it into place. Dropping an unfinished sink removes the temporary file, so a failed run
/// leaves no file that looks finished. Row groups close at [`SinkOptions::max_row_group_bytes`] (uncompressed
/// Arrow bytes) or [`SinkOptions::max_row_group_rows`], whichever comes first. The output holds no timestamps:
/// the same batches and metadata give the same bytes.
///
/// # Examples
///
/// ```
/// use genomamba_parquet::{BatchBuilder, ParquetSink, PredictionBatchBuilder, SequenceKind};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("p.parquet");
/// let mut b = PredictionBatchBuilder::new(SequenceKind::Contig);
/// b.push("chr1", 0, b'A', None, None)?;
/// let mut sink = ParquetSink::create(&path, b.schema(), r#"{"schema_version":1}"#.to_owned(), false)?;
/// sink.write(&b.finish()?)?;
/// let summary = sink.finish()?;
/// assert_eq!(summary.rows, 1);
/// assert!(path.exists());
/// // An existing output is refused without `force`.
/// assert!(ParquetSink::create(&path, b.schema(), String::new(), false).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ParquetSink {
    target: PathBuf,
    temp: PathBuf,
    force: bool,
    options: SinkOptions,
    writer: Option<ArrowWriter<File>>,
    group_rows: usize,
    group_bytes: usize,
    rows: u64,
}

/// Distinguishes temporary files of several sinks for one target in one process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl ParquetSink {
    /// Creates a sink for `path` with default [`SinkOptions`]; `metadata_json` becomes the `genomamba` entry.
    ///
    /// Fails if `path` exists and `force` is false, or if its directory does not exist.
    pub fn create(
        path: impl AsRef<Path>,
        schema: SchemaRef,
        metadata_json: String,
        force: bool,
    ) -> Result<Self> {
        Self::create_with_options(path, schema, metadata_json, force, SinkOptions::default())
    }

    /// Creates a sink with explicit options.
    pub fn create_with_options(
        path: impl AsRef<Path>,
        schema: SchemaRef,
        metadata_json: String,
        force: bool,
        options: SinkOptions,
    ) -> Result<Self> {
        let target = path.as_ref().to_path_buf();
        check_target(&target, force)?;
        let props = options.writer_properties(&schema, metadata_json)?;
        let (temp, file) = create_temp(&target)?;
        let writer = match ArrowWriter::try_new(file, schema, Some(props)) {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e.into());
            }
        };
        cleanup::register(&temp);
        Ok(Self {
            target,
            temp,
            force,
            options,
            writer: Some(writer),
            group_rows: 0,
            group_bytes: 0,
            rows: 0,
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// The temporary file being written.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn writer(&mut self) -> Result<&mut ArrowWriter<File>> {
        self.writer
            .as_mut()
            .ok_or_else(|| Error::io("writing", &self.temp, ErrorKind::BrokenPipe.into()))
    }

    /// Writes a batch, splitting it across row groups at the byte and row bounds.
    ///
    /// The batch's schema must equal the sink's.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let max_bytes = self.options.max_row_group_bytes.max(1);
        let max_rows = self.options.max_row_group_rows.max(1);
        let mut rest = batch.clone();
        while rest.num_rows() > 0 {
            let row_bytes = batch_bytes(&rest)?.div_ceil(rest.num_rows()).max(1);
            let room_rows = max_rows.saturating_sub(self.group_rows);
            let room_bytes = max_bytes.saturating_sub(self.group_bytes) / row_bytes;
            let mut take = rest.num_rows().min(room_rows).min(room_bytes);
            if take == 0 {
                if self.group_rows > 0 {
                    self.close_group()?;
                    continue;
                }
                take = 1; // one row larger than the bound still makes a row group
            }
            self.writer()?.write(&rest.slice(0, take))?;
            self.rows += take as u64;
            self.group_rows += take;
            self.group_bytes += take * row_bytes;
            if self.group_rows >= max_rows || self.group_bytes >= max_bytes {
                self.close_group()?;
            }
            rest = rest.slice(take, rest.num_rows() - take);
        }
        Ok(())
    }

    fn close_group(&mut self) -> Result<()> {
        self.writer()?.flush()?;
        self.group_rows = 0;
        self.group_bytes = 0;
        Ok(())
    }

    /// Writes the footer, fsyncs, and renames the file into place (refusing an output that appeared meanwhile
    /// unless `force`).
    pub fn finish(self) -> Result<SinkSummary> {
        self.finish_inner(None)
    }

    /// Like [`ParquetSink::finish`], writing `metadata_json` as the `genomamba` entry now: for provenance only
    /// known at the end (the inputs' lengths and checksums). Create the sink with an empty JSON to use it.
    pub fn finish_with_metadata(self, metadata_json: String) -> Result<SinkSummary> {
        self.finish_inner(Some(metadata_json))
    }

    fn finish_inner(mut self, metadata_json: Option<String>) -> Result<SinkSummary> {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| Error::io("finishing", &self.temp, ErrorKind::BrokenPipe.into()))?;
        if let Some(json) = metadata_json {
            writer.append_key_value_metadata(KeyValue::new(METADATA_KEY.to_owned(), json));
        }
        let row_groups = writer.finish()?.num_row_groups();
        writer
            .inner()
            .sync_all()
            .map_err(|e| Error::io("syncing", &self.temp, e))?;
        drop(writer);
        let bytes = std::fs::metadata(&self.temp)
            .map_err(|e| Error::io("reading size of", &self.temp, e))?
            .len();
        {
            let mut pending = cleanup::pending();
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
        Ok(SinkSummary {
            path: self.target.clone(),
            rows: self.rows,
            row_groups,
            bytes,
        })
    }
}

impl Drop for ParquetSink {
    fn drop(&mut self) {
        let mut pending = cleanup::pending();
        if pending.iter().any(|p| p == &self.temp) {
            drop(self.writer.take());
            let _ = std::fs::remove_file(&self.temp);
            cleanup::unregister_in(&mut pending, &self.temp);
        }
    }
}

/// Uncompressed Arrow size of the rows of `batch` (slices count only their rows).
fn batch_bytes(batch: &RecordBatch) -> Result<usize> {
    let mut total = 0;
    for c in batch.columns() {
        total += c.to_data().get_slice_memory_size()?;
    }
    Ok(total)
}

fn check_target(target: &Path, force: bool) -> Result<()> {
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

#[cfg(test)]
mod tests;
