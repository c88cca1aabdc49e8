//! The provenance JSON stored under the file-level key-value entry `genomamba`.
//!
//! Fields are serialised in declaration order and maps in key order, so the same values give the same bytes.
//! No timestamps. `schema_version` changes when a field's meaning changes.

use std::collections::BTreeMap;
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::sink::METADATA_KEY;

/// The version of this JSON layout and of the table schemas.
pub const SCHEMA_VERSION: u32 = 1;

/// The coordinate convention of every table.
pub const COORDINATES: &str = "0-based half-open; variants pos 1-based";

/// Everything needed to reproduce a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// [`SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// `embeddings`, `predictions` or `variants`.
    pub table: String,
    /// The program that wrote the file.
    pub tool: Tool,
    /// The command line, arguments as given (the caller makes paths relative if it wants).
    pub command_line: Vec<String>,
    /// The model.
    pub model: Model,
    /// Device the model ran on, e.g. `cpu` or `cuda:0 (NVIDIA H200)`.
    pub device: String,
    /// Output dtype of embeddings (`f32`/`f16`), or the compute dtype for other tables.
    pub dtype: String,
    /// Window length W in bases (0 = whole sequence).
    pub window: u64,
    /// Burn-in context before each window (each side for bidirectional models), in bases.
    pub overlap: u64,
    /// Chunk length in bases.
    pub chunk: u64,
    /// Pooling: bases per row as a number, `window`, or `null` for tables without pooling.
    pub pooling: Option<String>,
    /// Strand policy: `forward`, `both` (averaged with the reverse-complement pass), ...
    pub strand: String,
    /// Tokenizer policy: vocabulary, case, IUPAC codes (free-form, written by the tokenizer's owner).
    pub tokenizer: Value,
    /// [`COORDINATES`].
    pub coordinates: String,
    /// The inputs, in the order their rows appear.
    pub inputs: Vec<Input>,
    /// Anything else (region list, reference, ...), in key order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
}

/// The writing program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// `genomamba`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The git commit it was built from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
}

/// The model that produced the values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Model {
    /// `hf-mamba`, `mamba-ssm`, `caduceus`, ...
    pub format: String,
    /// A name (directory name, hub id, or `embedded`).
    pub name: String,
    /// sha256 of the weights file, lower-case hex.
    pub sha256: String,
    /// Hidden size.
    pub d_model: Option<u64>,
    /// Number of layers.
    pub n_layer: Option<u64>,
    /// SSM state size.
    pub d_state: Option<u64>,
    /// Other sizes and settings (d_conv, expand, vocab_size, layer used for embeddings, ...), in key order.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Path as given on the command line (`-` for standard input).
    pub path: String,
    /// `fasta`, `fastq`, `bam`, `cram`, `vcf`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Per-sequence lengths and digests (contig inputs; empty for read inputs).
    #[serde(default)]
    pub sequences: Vec<Sequence>,
    /// Number of records read (read inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    /// Number of bases read (read inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bases: Option<u64>,
}

/// One sequence of a contig input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    /// Name.
    pub name: String,
    /// Length in bases.
    pub length: u64,
    /// MD5 of the upper-cased sequence (as in SAM `M5` and VCF `##contig`), lower-case hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

impl Provenance {
    /// A record for `table` written by genomamba `version`, with the given command line; other fields empty.
    pub fn new(table: crate::Table, version: impl Into<String>, command_line: Vec<String>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            table: table.as_str().to_owned(),
            tool: Tool {
                name: "genomamba".to_owned(),
                version: version.into(),
                git_sha: None,
            },
            command_line,
            model: Model::default(),
            device: String::new(),
            dtype: String::new(),
            window: 0,
            overlap: 0,
            chunk: 0,
            pooling: None,
            strand: String::new(),
            tokenizer: Value::Null,
            coordinates: COORDINATES.to_owned(),
            inputs: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Compact JSON, deterministic for equal values.
    ///
    /// # Examples
    ///
    /// ```
    /// use genomamba_parquet::{Provenance, Table};
    /// let p = Provenance::new(Table::Embeddings, "0.1.0", vec!["genomamba".into(), "embed".into()]);
    /// let json = p.to_json()?;
    /// assert!(json.starts_with(r#"{"schema_version":1,"table":"embeddings""#));
    /// assert_eq!(Provenance::from_json(&json)?, p);
    /// # Ok::<(), genomamba_parquet::Error>(())
    /// ```
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// Parses the JSON of a `genomamba` entry.
    pub fn from_json(json: &str) -> Result<Self> {
        Ok(serde_json::from_str(json)?)
    }
}

/// Reads the raw `genomamba` key-value entry of a Parquet file's footer (`None` if the key is absent).
pub fn read_metadata_json(path: impl AsRef<Path>) -> Result<Option<String>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let reader = SerializedFileReader::new(file)?;
    let kv = reader.metadata().file_metadata().key_value_metadata();
    Ok(kv
        .and_then(|kv| kv.iter().find(|e| e.key == METADATA_KEY))
        .and_then(|e| e.value.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Table;

    #[test]
    fn test_round_trip_and_order() -> Result<()> {
        let mut p = Provenance::new(Table::Predictions, "1.2.3", vec!["genomamba".into()]);
        p.model.d_model = Some(256);
        p.model.extra.insert("vocab_size".into(), Value::from(16));
        p.model.extra.insert("d_conv".into(), Value::from(4));
        p.inputs.push(Input {
            path: "ref.fa".into(),
            format: Some("fasta".into()),
            sequences: vec![Sequence {
                name: "chr1".into(),
                length: 10,
                md5: Some("0123".into()),
            }],
            records: None,
            bases: None,
        });
        let json = p.to_json()?;
        // Flattened model extras follow in key order.
        assert!(
            json.contains(r#""d_state":null,"d_conv":4,"vocab_size":16}"#),
            "{json}"
        );
        assert!(json.contains(r#""coordinates":"0-based half-open; variants pos 1-based""#));
        assert!(!json.contains("records"));
        assert_eq!(Provenance::from_json(&json)?, p);
        assert_eq!(p.clone().to_json()?, json);
        Ok(())
    }

    #[test]
    fn test_missing_file() {
        assert!(matches!(
            read_metadata_json("/nonexistent/x.parquet"),
            Err(Error::Io { .. })
        ));
    }
}
