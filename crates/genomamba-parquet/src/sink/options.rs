//! Writer settings of [`super::ParquetSink`].

use arrow_schema::{DataType, Schema};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::Result;

/// The key of the file-level key-value metadata entry that holds the provenance JSON.
pub const METADATA_KEY: &str = "genomamba";

/// Row-group bounds and compression of a [`super::ParquetSink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkOptions {
    /// Close a row group once its uncompressed Arrow size reaches this many bytes (default 128 MiB).
    pub max_row_group_bytes: usize,
    /// Close a row group once it holds this many rows (default 1,048,576).
    pub max_row_group_rows: usize,
    /// zstd level, 1 to 22 (default 3).
    pub zstd_level: i32,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            max_row_group_bytes: 128 << 20,
            max_row_group_rows: 1 << 20,
            zstd_level: 3,
        }
    }
}

impl SinkOptions {
    /// Sets the byte bound of a row group (uncompressed; at least one row is always written).
    pub fn with_max_row_group_bytes(mut self, bytes: usize) -> Self {
        self.max_row_group_bytes = bytes.max(1);
        self
    }

    /// Sets the row bound of a row group (at least 1).
    pub fn with_max_row_group_rows(mut self, rows: usize) -> Self {
        self.max_row_group_rows = rows.max(1);
        self
    }

    /// Sets the zstd level (checked when the sink is created).
    pub fn with_zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }

    /// Parquet writer properties for `schema`: zstd, dictionary encoding for string columns only, delta
    /// encoding (`DELTA_BINARY_PACKED`) for the integer coordinates, page statistics, the `genomamba` key
    /// holding `metadata_json` (none when empty); row groups are closed by the sink itself.
    ///
    /// Coordinates mostly step by one (per base) or by the pool (per bin): delta-encoded, the `start` of E. coli's
    /// per-base table (4.9 M rows) takes 12.7 KB instead of 5.0 MB under zstd alone
    /// (`tests/bench/predict_size.sh`).
    pub(crate) fn writer_properties(
        &self,
        schema: &Schema,
        metadata_json: String,
    ) -> Result<WriterProperties> {
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level)?))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(None)
            .set_dictionary_enabled(false);
        // An empty JSON means the caller gives it at the end (`ParquetSink::finish_with_metadata`).
        if !metadata_json.is_empty() {
            props = props.set_key_value_metadata(Some(vec![KeyValue::new(
                METADATA_KEY.to_owned(),
                metadata_json,
            )]));
        }
        for field in schema.fields() {
            let path = ColumnPath::from(field.name().as_str());
            match field.data_type() {
                DataType::Utf8 | DataType::Dictionary(_, _) => {
                    props = props.set_column_dictionary_enabled(path, true);
                }
                DataType::Int64 => {
                    props = props.set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
                }
                _ => {}
            }
        }
        Ok(props.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SequenceKind, schema};

    #[test]
    fn test_properties() -> Result<()> {
        let s = schema::predictions(SequenceKind::Contig);
        let p = SinkOptions::default().writer_properties(&s, "{}".to_owned())?;
        assert!(p.dictionary_enabled(&ColumnPath::from("chrom")));
        assert!(p.dictionary_enabled(&ColumnPath::from("ref")));
        assert!(!p.dictionary_enabled(&ColumnPath::from("p_a")));
        assert_eq!(
            p.encoding(&ColumnPath::from("start")),
            Some(Encoding::DELTA_BINARY_PACKED)
        );
        assert_eq!(p.encoding(&ColumnPath::from("p_a")), None);
        assert!(matches!(
            p.compression(&ColumnPath::from("p_a")),
            Compression::ZSTD(_)
        ));
        let kv = p.key_value_metadata().expect("kv");
        assert_eq!(kv[0].key, "genomamba");
        assert!(
            SinkOptions::default()
                .with_zstd_level(99)
                .writer_properties(&s, String::new())
                .is_err()
        );
        Ok(())
    }
}
