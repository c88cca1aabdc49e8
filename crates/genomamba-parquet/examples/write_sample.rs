//! Writes small sample tables for the Python interop checker (tests/interop/check_parquet.py).
//!
//! `cargo run -p genomamba-parquet --example write_sample -- OUT_DIR` writes, in OUT_DIR:
//! `embeddings_f32.parquet` (contigs, D = 16, 100-base bins), `embeddings_f16.parquet` (aligned reads, D = 8),
//! `predictions.parquet` (contigs, per base, the first base of each contig without context),
//! `variants.parquet`, and `lengths.json` (contig lengths). Values are deterministic functions of position.

use std::path::{Path, PathBuf};

use genomamba_parquet::metadata::{Input, Sequence};
use genomamba_parquet::{
    BatchBuilder, Dtype, EmbeddingBatchBuilder, ParquetSink, PredictionBatchBuilder, Provenance,
    ReadFields, SequenceKind, SinkOptions, Table, Variant, VariantBatchBuilder, status,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Contig names and lengths of the sample "genome".
const CONTIGS: [(&str, usize); 3] = [("chr1", 1234), ("chr2", 777), ("chrM", 165)];

/// A deterministic base at `i` of contig `c` (N every 97th base).
fn base(c: usize, i: usize) -> u8 {
    if i % 97 == 13 {
        b'N'
    } else {
        b"ACGTacgt"[(i * 7 + c * 3) % 8]
    }
}

fn provenance(table: Table, pooling: Option<&str>, dtype: Dtype) -> Provenance {
    let mut p = Provenance::new(
        table,
        env!("CARGO_PKG_VERSION"),
        vec!["write_sample".into()],
    );
    p.model.format = "sample".into();
    p.model.name = "none".into();
    p.device = "cpu".into();
    p.dtype = dtype.as_str().into();
    p.window = 1 << 20;
    p.chunk = 4096;
    p.pooling = pooling.map(str::to_owned);
    p.strand = "forward".into();
    p.inputs.push(Input {
        path: "sample.fa".into(),
        format: Some("fasta".into()),
        sequences: CONTIGS
            .iter()
            .map(|&(name, length)| Sequence {
                name: name.into(),
                length: length as u64,
                md5: None,
            })
            .collect(),
        records: None,
        bases: None,
    });
    p
}

fn write(dir: &Path, name: &str, b: &mut dyn BatchBuilder, meta: &Provenance) -> Result<()> {
    let path: PathBuf = dir.join(name);
    // Small row groups so the readers see several.
    let options = SinkOptions::default().with_max_row_group_bytes(16 * 1024);
    let mut sink =
        ParquetSink::create_with_options(&path, b.schema(), meta.to_json()?, true, options)?;
    sink.write(&b.finish()?)?;
    let s = sink.finish()?;
    println!(
        "{}: {} rows, {} row groups, {} bytes",
        path.display(),
        s.rows,
        s.row_groups,
        s.bytes
    );
    Ok(())
}

fn main() -> Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: write_sample OUT_DIR")?,
    );
    std::fs::create_dir_all(&dir)?;

    let mut emb = EmbeddingBatchBuilder::new(16, Dtype::F32, SequenceKind::Contig)?;
    for (c, &(name, len)) in CONTIGS.iter().enumerate() {
        for start in (0..len).step_by(100) {
            let end = (start + 100).min(len);
            let n = (start..end).filter(|&i| base(c, i) == b'N').count();
            let v: Vec<f32> = (0..16).map(|j| ((start + j) as f32 * 0.01).sin()).collect();
            emb.push(
                name,
                start as i64,
                end as i64,
                n as f32 / (end - start) as f32,
                &v,
                None,
            )?;
        }
    }
    write(
        &dir,
        "embeddings_f32.parquet",
        &mut emb,
        &provenance(Table::Embeddings, Some("100"), Dtype::F32),
    )?;

    let mut reads = EmbeddingBatchBuilder::new(8, Dtype::F16, SequenceKind::AlignedRead)?;
    for r in 0..40usize {
        let mapped = r % 5 != 4;
        let fields = ReadFields {
            ref_name: mapped.then_some("chr1"),
            ref_start: mapped.then_some(r as i64 * 17),
            reverse: mapped.then_some(r % 2 == 1),
            mapq: mapped.then_some((r * 3) as u8),
            flag: Some(if mapped {
                if r % 2 == 1 { 16 } else { 0 }
            } else {
                4
            }),
        };
        let v: Vec<f32> = (0..8).map(|j| (r * 8 + j) as f32 / 64.0 - 2.0).collect();
        reads.push(&format!("read{r:03}"), 0, 150, 0.0, &v, Some(&fields))?;
    }
    write(
        &dir,
        "embeddings_f16.parquet",
        &mut reads,
        &provenance(Table::Embeddings, Some("window"), Dtype::F16),
    )?;

    let mut pred = PredictionBatchBuilder::new(SequenceKind::Contig);
    for (c, &(name, len)) in CONTIGS.iter().enumerate() {
        for i in 0..len {
            let probs = (i > 0).then(|| {
                let k = (i % 11) as f32;
                [1.0 + k, 2.0, 3.0 + (k * 0.5), 0.5 + (i % 3) as f32]
            });
            pred.push(name, i as i64, base(c, i), probs, None)?;
        }
    }
    write(
        &dir,
        "predictions.parquet",
        &mut pred,
        &provenance(Table::Predictions, None, Dtype::F32),
    )?;

    let mut var = VariantBatchBuilder::new();
    for i in 0..25i64 {
        let ok = i % 4 != 3;
        var.push(&Variant {
            chrom: CONTIGS[(i % 3) as usize].0,
            pos: 1 + i * 13,
            id: (i % 2 == 0).then_some("rsX"),
            ref_allele: "A",
            alt: if ok { "G" } else { "GT" },
            logp_ref: ok.then_some(-0.5 - i as f32 * 0.1),
            logp_alt: ok.then_some(-2.0),
            status: if ok { status::OK } else { status::NOT_SNV },
        })?;
    }
    write(
        &dir,
        "variants.parquet",
        &mut var,
        &provenance(Table::Variants, None, Dtype::F32),
    )?;

    let lengths: serde_json::Map<String, serde_json::Value> = CONTIGS
        .iter()
        .map(|&(n, l)| (n.to_owned(), l.into()))
        .collect();
    std::fs::write(
        dir.join("lengths.json"),
        serde_json::to_string_pretty(&lengths)?,
    )?;
    Ok(())
}
