//! The `genomamba` key-value metadata entry: provenance as JSON, with nothing that changes between identical runs.

use md5::{Digest as _, Md5};
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

/// Most sequences of one genome input listed one by one. Past it, and always for reads, an input is described
/// by its counts and a digest only: millions of reads listed one by one made footers of hundreds of MB, which
/// pyarrow refuses to open by default (its Thrift limit is 100 MB), and the list grew in memory all run.
pub const MAX_LISTED: usize = 10_000;

/// One input as read: counts, a digest of every sequence, and (genomes of at most [`MAX_LISTED`] sequences)
/// the sequences themselves.
#[derive(Debug, Clone)]
struct InputEntry {
    path: String,
    /// Sequences read (records, regions or reads).
    count: u64,
    /// Bases read.
    bases: u64,
    /// MD5 of the lines `name\tstart\tlength\tmd5\n` of the sequences, in order.
    digest: Md5,
    /// The sequences, while they are listed.
    sequences: Option<Vec<InputRecord>>,
}

impl InputEntry {
    fn new(path: String, listed: bool) -> Self {
        Self {
            path,
            count: 0,
            bases: 0,
            digest: Md5::new(),
            sequences: listed.then(Vec::new),
        }
    }

    fn add(&mut self, record: InputRecord) {
        self.count += 1;
        self.bases += record.length;
        self.digest.update(
            format!(
                "{}\t{}\t{}\t{}\n",
                record.name, record.start, record.length, record.md5
            )
            .as_bytes(),
        );
        match &mut self.sequences {
            Some(list) if list.len() == MAX_LISTED => self.sequences = None,
            Some(list) => list.push(record),
            None => {}
        }
    }

    fn to_json(&self) -> Value {
        let md5: String = self
            .digest
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut entry = json!({
            "path": self.path,
            "sequences_read": self.count,
            "bases": self.bases,
            "sequences_md5": md5,
        });
        if let (Some(list), Value::Object(map)) = (&self.sequences, &mut entry) {
            map.insert("sequences".into(), json!(list));
        }
        entry
    }
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
    /// Whether sequences are listed one by one (genomes; reads never are).
    listed: bool,
}

impl RunMetadata {
    /// The settings part of the metadata. `model`: the model's description (JSON object); `listed`: whether
    /// the inputs' sequences are listed one by one (genomes, up to [`MAX_LISTED`] a file; not reads).
    pub fn new(
        settings: &Settings,
        model: &Value,
        device: &str,
        compute_dtype: &str,
        bidirectional_windows: bool,
        listed: bool,
    ) -> Self {
        let (table, pooling, strand, dtype) = match &settings.task {
            Task::Predict(_) => ("predictions", Value::Null, "forward", "f32"),
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
            Task::Score(s) => ("variants", Value::Null, s.strand.name(), "f32"),
        };
        let mut head = json!({
            "schema_version": SCHEMA_VERSION,
            "tool": "genomamba",
            "version": env!("CARGO_PKG_VERSION"),
            "commit": settings.commit,
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
                    "output_vcf": s.output_vcf.as_ref().map(|o| o.path.display().to_string()),
                    "score": match &s.masked {
                        None => "ln P(alt) - ln P(ref) at the site, given the bases before it in its window and \
                                 burn-in (the predictions table's distribution there)"
                            .to_owned(),
                        Some(m) => format!(
                            "ln P(alt) - ln P(ref) at the site, masked ([MASK]) in a window of its own: the reference \
                             from {0} bases before it to {0} bases after it, cut at the record's ends (the masked-LM \
                             head's distribution there){1}",
                            m.flank,
                            match m.strand {
                                crate::settings::Strand::Forward => "",
                                crate::settings::Strand::Both => {
                                    "; on both strands: each ln P the mean of the forward one and the reverse \
                                     strand's (the window reverse-complemented, the site masked there, the \
                                     complement base)"
                                }
                            }
                        ),
                    },
                    "masked_flank": s.masked.as_ref().map(|m| m.flank),
                    "reference_read": match (&s.masked, s.read) {
                        (Some(m), crate::settings::ReferenceRead::Windows) => {
                            format!("each site and {} bases on each side (.fai)", m.flank)
                        }
                        _ => s.read.as_str().to_owned(),
                    },
                    "indel_flank": s.walk.as_ref().and_then(|w| w.indel_flank),
                    "indels": match s.walk.as_ref().and_then(|w| w.indel_flank) {
                        Some(flank) => format!(
                            "indels and multi-base substitutions of plain bases: ln P(ALT haplotype) - ln P(REF \
                             haplotype), each haplotype the allele then the reference after REF, both cut to \
                             max(len REF, len ALT) + {} bases, given the bases before the allele in its window and \
                             burn-in; logp_ref and logp_alt are the sums of ln P over each ({} such alleles in the VCF)",
                            flank,
                            s.variants.haplotype_count()
                        ),
                        None if s.masked.is_some() => {
                            "not scored (status not_snv; a bidirectional model scores SNVs only)".to_owned()
                        }
                        None => "not scored (status not_snv; --indel-flank scores them)".to_owned(),
                    },
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
            listed,
        }
    }

    /// Notes that input `index` was opened.
    pub fn open_input(&mut self, index: usize) {
        let path = self.paths.get(index).cloned().unwrap_or_default();
        self.inputs.push(InputEntry::new(path, self.listed));
    }

    /// The name of input `index` as the metadata records it.
    pub fn input_path(&self, index: usize) -> &str {
        self.paths.get(index).map_or("", String::as_str)
    }

    /// Adds a finished sequence of input `index`.
    pub fn add_sequence(&mut self, index: usize, record: InputRecord) {
        let path = self.paths.get(index).cloned().unwrap_or_default();
        match self.inputs.last_mut() {
            Some(entry) if entry.path == path => entry.add(record),
            _ => {
                let mut entry = InputEntry::new(path, self.listed);
                entry.add(record);
                self.inputs.push(entry);
            }
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
            let inputs: Vec<Value> = self.inputs.iter().map(InputEntry::to_json).collect();
            map.insert("inputs".into(), Value::Array(inputs));
        }
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> InputRecord {
        InputRecord {
            name: format!("r{i}"),
            start: 0,
            length: 10,
            md5: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    #[test]
    fn test_inputs_list_sequences_up_to_a_bound_and_always_count_them() {
        let digest_of = |n: usize| {
            let mut md5 = Md5::new();
            for i in 0..n {
                md5.update(format!("r{i}\t0\t10\t0123456789abcdef0123456789abcdef\n").as_bytes());
            }
            md5.finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let mut genome = InputEntry::new("g.fa".into(), true);
        (0..3).for_each(|i| genome.add(record(i)));
        let json = genome.to_json();
        assert_eq!(json["sequences"].as_array().map(Vec::len), Some(3));
        assert_eq!(json["sequences"][2]["name"], "r2");
        assert_eq!(
            (json["sequences_read"].as_u64(), json["bases"].as_u64()),
            (Some(3), Some(30))
        );
        assert_eq!(json["sequences_md5"], digest_of(3));

        // One more than the bound: no list at all (never a partial one), the counts and digest as before.
        let mut many = InputEntry::new("g.fa".into(), true);
        (0..=MAX_LISTED).for_each(|i| many.add(record(i)));
        let json = many.to_json();
        assert!(json.get("sequences").is_none());
        assert_eq!(json["sequences_read"].as_u64(), Some(MAX_LISTED as u64 + 1));
        assert_eq!(json["sequences_md5"], digest_of(MAX_LISTED + 1));

        // Reads are never listed.
        let mut reads = InputEntry::new("r.bam".into(), false);
        (0..3).for_each(|i| reads.add(record(i)));
        let json = reads.to_json();
        assert!(json.get("sequences").is_none());
        assert_eq!(json["sequences_md5"], digest_of(3));
    }
}
