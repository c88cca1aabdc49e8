//! The atomic Parquet sink: a temporary file beside the target, renamed into place by `finish`.

mod cleanup;
mod options;
mod staged;

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;

pub use cleanup::{register_temp_file, remove_temp_files, temp_files};
pub use options::{METADATA_KEY, SinkOptions};
pub use staged::{StagedFile, check_target};

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
    options: SinkOptions,
    // Declared before `staged`, so that dropping an unfinished sink closes the file before removing it.
    writer: Option<ArrowWriter<File>>,
    staged: StagedFile,
    group_rows: usize,
    group_bytes: usize,
    rows: u64,
}

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
        let (staged, file) = StagedFile::create(path, force)?;
        // On an error `staged` is dropped, which removes its file.
        let props = options.writer_properties(&schema, metadata_json)?;
        let writer = ArrowWriter::try_new(file, schema, Some(props))?;
        Ok(Self {
            options,
            writer: Some(writer),
            staged,
            group_rows: 0,
            group_bytes: 0,
            rows: 0,
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        self.staged.path()
    }

    /// The temporary file being written.
    pub fn temp_path(&self) -> &Path {
        self.staged.temp_path()
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn writer(&mut self) -> Result<&mut ArrowWriter<File>> {
        self.writer.as_mut().ok_or_else(|| {
            Error::io(
                "writing",
                self.staged.temp_path(),
                ErrorKind::BrokenPipe.into(),
            )
        })
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
        let mut writer = self.writer.take().ok_or_else(|| {
            Error::io(
                "finishing",
                self.staged.temp_path(),
                ErrorKind::BrokenPipe.into(),
            )
        })?;
        if let Some(json) = metadata_json {
            writer.append_key_value_metadata(KeyValue::new(METADATA_KEY.to_owned(), json));
        }
        let row_groups = writer.finish()?.num_row_groups();
        drop(writer);
        let path = self.staged.path().to_path_buf();
        let bytes = self.staged.commit()?;
        Ok(SinkSummary {
            path,
            rows: self.rows,
            row_groups,
            bytes,
        })
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

#[cfg(test)]
mod tests;
