//! The `genomamba` key-value metadata entry: provenance as JSON, with nothing that changes between identical runs.

use serde::Serialize;
use serde_json::{Value, json};

use crate::run::Summary;
use crate::settings::{OutDtype, Pool, Settings, Task};

/// The version of this metadata layout.
pub const SCHEMA_VERSION: u32 = 1;

/// One sequence of one input, as read.
#[derive(Debug, Clone, Serialize)]
pub struct InputRecord {
    /// Record or read name.
    pub name: String,
    /// 0-based start of the bases read within the named record (non-zero for regions).
    pub start: u64,
    /// Bases read.
    pub length: u64,
    /// MD5 (hex) of the upper-cased bases read, as SAM's M5.
    pub md5: String,
}

impl InputRecord {
    /// The record described by the windower's end-of-sequence summary.
    pub fn from_summary(end: &genomamba_seq::window::SequenceSummary) -> Self {
        Self {
            name: end.info.name.clone(),
            start: end.info.start,
            length: end.length,
            md5: end.md5.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct InputEntry {
    path: String,
    sequences: Vec<InputRecord>,
}

/// The device as recorded: the CPU engine's thread count is left out, since `--threads` never changes the
/// output and the same command must give the same file.
fn recorded_device(device: &str) -> &str {
    match device.split_once(" (") {
        Some(("cpu", _)) => "cpu",
        _ => device,
    }
}

/// Provenance of a run, filled in as it goes.
#[derive(Debug, Clone)]
pub struct RunMetadata {
    head: Value,
    inputs: Vec<InputEntry>,
    paths: Vec<String>,
}

impl RunMetadata {
    /// The settings part of the metadata. `model`: the model's description (JSON object).
    pub fn new(
        settings: &Settings,
        model: &Value,
        device: &str,
        compute_dtype: &str,
        bidirectional_windows: bool,
    ) -> Self {
        let (table, pooling, strand, dtype) = match &settings.task {
            Task::Predict => ("predictions", Value::Null, "forward", "f32"),
            Task::Embed(e) => (
                "embeddings",
                match e.pool {
                    Pool::Bases(n) => json!({ "bases": n }),
                    Pool::Window => json!("window"),
                    Pool::Record => json!("record"),
                },
                e.strand.name(),
                match e.dtype {
                    OutDtype::F32 => "f32",
                    OutDtype::F16 => "f16",
                },
            ),
            Task::Score(_) => ("variants", Value::Null, "forward", "f32"),
        };
        let mut head = json!({
            "schema_version": SCHEMA_VERSION,
            "tool": "genomamba",
            "version": env!("CARGO_PKG_VERSION"),
            "command_line": settings.command_line,
            "table": table,
            "model": model,
            "device": recorded_device(device),
            "dtype": dtype,
            "compute_dtype": compute_dtype,
            "window": settings.window,
            "overlap": settings.overlap,
            "overlap_sides": if bidirectional_windows { "both" } else { "left (causal burn-in)" },
            "chunk": settings.chunk,
            "batch": settings.batch,
            "state_carry": "per layer conv + SSM state carried across chunks within a window",
            "pooling": pooling,
            "strand_policy": strand,
            "tokenizer": {
                "vocabulary": "[CLS]=0 [SEP]=1 [BOS]=2 [MASK]=3 [PAD]=4 [RESERVED]=5 [UNK]=6 A=7 C=8 G=9 T=10 N=11",
                "soft_mask": "lower case takes the upper-case token",
                "iupac": "RYSWKMBDHV become N",
            },
            "coordinates": "0-based half-open [start, end); variants: pos is VCF's 1-based POS",
        });
        if let (Task::Score(s), Value::Object(map)) = (&settings.task, &mut head) {
            map.insert(
                "variants".into(),
                json!({
                    "vcf": s.vcf.display().to_string(),
                    "vcf_sha256": s.vcf_sha256,
                    "records": s.variants.records(),
                    "rows": s.variants.rows(),
                    "scorable": s.variants.scorable(),
                    "score": "ln P(alt) - ln P(ref) at the site, given the bases before it in its window and burn-in \
                              (the predictions table's distribution there)",
                    "reference_read": s.read.as_str(),
                }),
            );
        }
        let paths = settings
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Self {
            head,
            inputs: Vec::new(),
            paths,
        }
    }

    /// Notes that input `index` was opened.
    pub fn open_input(&mut self, index: usize) {
        let path = self.paths.get(index).cloned().unwrap_or_default();
        self.inputs.push(InputEntry {
            path,
            sequences: Vec::new(),
        });
    }

    /// Adds a finished sequence of input `index`.
    pub fn add_sequence(&mut self, index: usize, record: InputRecord) {
        let path = self.paths.get(index).cloned().unwrap_or_default();
        match self.inputs.last_mut() {
            Some(entry) if entry.path == path => entry.sequences.push(record),
            _ => self.inputs.push(InputEntry {
                path,
                sequences: vec![record],
            }),
        }
    }

    /// Adds the counts of the finished run (never its duration: the same run gives the same file).
    pub fn finish(&mut self, summary: &Summary) {
        if let Value::Object(map) = &mut self.head {
            map.insert("records".into(), json!(summary.records));
            map.insert("bases".into(), json!(summary.bases));
            map.insert("rows".into(), json!(summary.rows));
        }
    }

    /// The JSON text of the entry.
    pub fn to_json(&self) -> String {
        let mut value = self.head.clone();
        if let Value::Object(map) = &mut value {
            map.insert("inputs".into(), json!(self.inputs));
        }
        value.to_string()
    }
}
