//! End-to-end tests of `genomamba score` on the real genomes in data/: every score is the `predict` row of its
//! site, with or without the reference's index; rows keep the VCF's order; every unscored row says why.

mod util;

use std::collections::HashMap;
use std::path::Path;

use arrow_array::{Array, Float32Array, Int64Array, RecordBatch, StringArray};
use sha2::Digest as _;
use util::{Dir, data, derived, genomamba, read, root, samtools_faidx};

/// The lambda genome's record name.
const LAMBDA: &str = "gi|9626243|ref|NC_001416.1|";
const LAMBDA_LEN: u64 = 48_502;
const HEADER: &str = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

/// The records of a FASTA file as written (case and ambiguity codes kept), in file order.
fn fasta(path: &Path) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(path).expect("fasta");
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(header) = line.strip_prefix('>') {
            let name = header.split_whitespace().next().unwrap_or("");
            out.push((name.to_string(), Vec::new()));
        } else if let Some((_, seq)) = out.last_mut() {
            seq.extend_from_slice(line.as_bytes());
        }
    }
    out
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let col = batch.column_by_name(name).expect("column");
    let col = arrow_cast::cast(col, &arrow_schema::DataType::Utf8).expect("utf8");
    let arr = col.as_any().downcast_ref::<StringArray>().expect("strings");
    (0..arr.len())
        .map(|i| arr.is_valid(i).then(|| arr.value(i).to_string()))
        .collect()
}

fn f32s(batch: &RecordBatch, name: &str) -> Vec<Option<f32>> {
    let arr = batch.column_by_name(name).expect("column");
    let arr = arr.as_any().downcast_ref::<Float32Array>().expect("f32");
    (0..arr.len())
        .map(|i| arr.is_valid(i).then(|| arr.value(i)))
        .collect()
}

fn i64s(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let arr = batch.column_by_name(name).expect("column");
    let arr = arr.as_any().downcast_ref::<Int64Array>().expect("i64");
    arr.values().to_vec()
}

/// One variants row.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    chrom: String,
    pos: i64,
    id: Option<String>,
    reference: String,
    alt: String,
    score: Option<f32>,
    logp_ref: Option<f32>,
    logp_alt: Option<f32>,
    status: String,
}

fn rows(batch: &RecordBatch) -> Vec<Row> {
    let (chrom, pos, id) = (
        strings(batch, "chrom"),
        i64s(batch, "pos"),
        strings(batch, "id"),
    );
    let (reference, alt) = (strings(batch, "ref"), strings(batch, "alt"));
    let (score, lr, la) = (
        f32s(batch, "score"),
        f32s(batch, "logp_ref"),
        f32s(batch, "logp_alt"),
    );
    let status = strings(batch, "status");
    (0..batch.num_rows())
        .map(|i| Row {
            chrom: chrom[i].clone().expect("chrom"),
            pos: pos[i],
            id: id[i].clone(),
            reference: reference[i].clone().expect("ref"),
            alt: alt[i].clone().expect("alt"),
            score: score[i],
            logp_ref: lr[i],
            logp_alt: la[i],
            status: status[i].clone().expect("status"),
        })
        .collect()
}

/// Runs `score` and returns its rows and metadata.
fn score(dir: &Dir, vcf: &Path, reference: &Path, extra: &[&str]) -> (Vec<Row>, serde_json::Value) {
    let mut quiet = vec!["-q"];
    quiet.extend_from_slice(extra);
    let (rows, meta, _) = score_telling(dir, vcf, reference, &quiet);
    (rows, meta)
}

/// Runs `score` (not quiet unless `extra` says so) and returns its rows, metadata and standard error.
fn score_telling(
    dir: &Dir,
    vcf: &Path,
    reference: &Path,
    extra: &[&str],
) -> (Vec<Row>, serde_json::Value, String) {
    let out = dir.path(&format!("score{}.parquet", dir.listing().len()));
    let (output, line) = genomamba(["score", "--device", "cpu", "--vcf"])
        .arg(vcf)
        .arg("--reference")
        .arg(reference)
        .args(extra.iter().copied())
        .arg("-o")
        .arg(&out)
        .output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{line}\n{stderr}");
    let (batch, meta) = read(&out);
    (rows(&batch), meta, stderr)
}

/// `predict` over `reference`: per (record, 0-based position), ln P(ref) and the four probabilities.
type Predictions = HashMap<(String, i64), (Option<f32>, [Option<f32>; 4])>;

fn predict(dir: &Dir, reference: &Path, extra: &[&str]) -> Predictions {
    let out = dir.path("predict.parquet");
    genomamba(["predict", "--device", "cpu", "-q", "--force"])
        .arg(reference)
        .args(extra.iter().copied())
        .arg("-o")
        .arg(&out)
        .ok();
    let (batch, _) = read(&out);
    let (chrom, start, logp) = (
        strings(&batch, "chrom"),
        i64s(&batch, "start"),
        f32s(&batch, "logp_ref"),
    );
    let p = ["p_a", "p_c", "p_g", "p_t"].map(|c| f32s(&batch, c));
    (0..batch.num_rows())
        .map(|i| {
            (
                (chrom[i].clone().expect("chrom"), start[i]),
                (logp[i], [p[0][i], p[1][i], p[2][i], p[3][i]]),
            )
        })
        .collect()
}

fn base_index(b: u8) -> Option<usize> {
    b"ACGT".iter().position(|&x| x == b.to_ascii_uppercase())
}

/// Checks each scored row against the `predict` row of its site: `logp_ref` bit for bit (the same
/// computation), `logp_alt` against the log of the written probabilities, renormalised, and
/// `score = logp_alt - logp_ref`. Returns how many rows were scored.
fn assert_scores_are_predictions(got: &[Row], predictions: &Predictions) -> usize {
    let mut scored = 0;
    for row in got.iter().filter(|r| r.status == "ok") {
        let (logp_ref, p) = predictions[&(row.chrom.clone(), row.pos - 1)];
        assert_eq!(row.logp_ref, logp_ref, "{row:?}");
        let p = p.map(|x| f64::from(x.expect("probabilities at a scored site")));
        let alt = base_index(row.alt.as_bytes()[0]).expect("an SNV's ALT");
        let want = (p[alt] / p.iter().sum::<f64>()).ln();
        let logp_alt = f64::from(row.logp_alt.expect("logp_alt"));
        assert!((logp_alt - want).abs() < 1e-6, "{row:?}: ln p_alt {want}");
        assert_eq!(
            row.score,
            Some(row.logp_alt.expect("alt") - row.logp_ref.expect("ref"))
        );
        scored += 1;
    }
    scored
}

#[test]
fn every_score_is_the_predict_row_of_its_site_with_or_without_an_index() {
    let dir = Dir::new();
    let records = fasta(&data("mixed.fa"));
    // Every 41st base of each record with each other base as ALT (soft-masked bases keep their case, N and IUPAC
    // codes their letter), records in reverse order of the FASTA: the rows must keep this order.
    let mut vcf = String::from(HEADER);
    let mut want = Vec::new();
    for (name, seq) in records.iter().rev() {
        for i in (0..seq.len()).step_by(41) {
            let b = seq[i];
            let alts: Vec<char> = match base_index(b) {
                Some(r) => (0..4)
                    .filter(|&a| a != r)
                    .map(|a| b"ACGT"[a] as char)
                    .collect(),
                None => vec!['A'],
            };
            let alt_text: Vec<String> = alts.iter().map(char::to_string).collect();
            vcf.push_str(&format!(
                "{name}\t{}\t.\t{}\t{}\t.\t.\t.\n",
                i + 1,
                b as char,
                alt_text.join(",")
            ));
            for alt in alts {
                let status = match base_index(b) {
                    None => "ambiguous",
                    Some(_) if i == 0 => "no_context",
                    Some(_) => "ok",
                };
                want.push((
                    name.clone(),
                    i as i64 + 1,
                    (b as char).to_string(),
                    alt.to_string(),
                    status,
                ));
            }
        }
    }
    let vcf = dir.write("sites.vcf", vcf);
    let windows = ["--window", "1500", "--overlap", "300"];
    let unindexed = dir.write(
        "mixed.fa",
        std::fs::read(data("mixed.fa")).expect("mixed.fa"),
    );
    let (with_index, meta) = score(&dir, &vcf, &data("mixed.fa"), &windows);
    let (without, meta_without) = score(&dir, &vcf, &unindexed, &windows);

    let described: Vec<_> = with_index
        .iter()
        .map(|r| {
            (
                r.chrom.clone(),
                r.pos,
                r.reference.clone(),
                r.alt.clone(),
                r.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        described, want,
        "one row per ALT, in the VCF's order, with its status"
    );
    assert_eq!(without, with_index, "the same scores without the .fai");
    assert_eq!(meta["table"], "variants");
    assert_eq!(meta["variants"]["rows"], want.len());
    assert_eq!(
        meta["variants"]["reference_read"],
        "windows holding sites (.fai)"
    );
    assert_eq!(
        meta_without["variants"]["reference_read"],
        "whole records holding sites (no usable .fai)"
    );
    // With the index only the windows holding sites are read, and each only up to its last site.
    let total: u64 = records.iter().map(|(_, s)| s.len() as u64).sum();
    assert!(
        meta["bases"].as_u64().expect("bases") < total,
        "{}",
        meta["bases"]
    );
    // Without it the records are read whole, and the same windows run, each from its burn-in (300 bases before
    // each window after a record's first): what the index reads and that burn-in.
    let later_windows: u64 = records
        .iter()
        .map(|(_, s)| (s.len() as u64).div_ceil(1500) - 1)
        .sum();
    assert_eq!(
        meta_without["bases"].as_u64(),
        Some(meta["bases"].as_u64().expect("bases") + 300 * later_windows)
    );

    let predictions = predict(&dir, &data("mixed.fa"), &windows);
    let scored = assert_scores_are_predictions(&with_index, &predictions);
    assert_eq!(scored, want.iter().filter(|w| w.4 == "ok").count());
    assert!(scored > 600, "{scored}");
}

#[test]
fn rows_that_are_not_scored_say_why() {
    let dir = Dir::new();
    let lambda = &fasta(&data("genomes/lambda_virus.fa"))[0].1;
    let base = |pos: usize| (lambda[pos - 1] as char).to_string();
    let other = |pos: usize| {
        let r = base_index(lambda[pos - 1]).expect("lambda's bases are plain");
        (b"ACGT"[(r + 1) % 4] as char).to_string()
    };
    let (b2, b4) = (base(2), base(4));
    let lines = [
        format!("{LAMBDA}\t1\tfirst\t{}\t{}", base(1), other(1)),
        format!(
            "{LAMBDA}\t2\trs1;rs2\t{b2}\t{}",
            ["A", "C", "G", "T"]
                .iter()
                .filter(|b| **b != b2)
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
        ),
        format!("{LAMBDA}\t3\t.\t{}\t{}", other(3), base(3)),
        format!(
            "{LAMBDA}\t4\t.\t{}\t{}",
            b4.to_lowercase(),
            other(4).to_lowercase()
        ),
        format!("{LAMBDA}\t10\t.\t{}A\t{}", base(10), base(10)),
        format!("{LAMBDA}\t11\t.\t{}\t<DEL>,*", base(11)),
        format!("{LAMBDA}\t12\t.\t{}\t.", base(12)),
        format!("{LAMBDA}\t13\t.\t{}\tN", base(13)),
        format!("{LAMBDA}\t{}\t.\tA\tC", LAMBDA_LEN + 1),
        "chrUn\t5\t.\tA\tC".to_string(),
        format!(
            "{LAMBDA}\t{LAMBDA_LEN}\tlast\t{}\t{}",
            base(LAMBDA_LEN as usize),
            other(LAMBDA_LEN as usize)
        ),
    ];
    let vcf = dir.write(
        "calls.vcf",
        format!("{HEADER}{}\n", lines.map(|l| l + "\t.\t.\t.").join("\n")),
    );
    for reference in [derived("lambda_virus.fa"), data("genomes/lambda_virus.fa")] {
        let (got, _) = score(&dir, &vcf, &reference, &[]);
        let statuses: Vec<(i64, String, &str)> = got
            .iter()
            .map(|r| (r.pos, r.alt.clone(), r.status.as_str()))
            .collect();
        let mut want = vec![(1, other(1), "no_context")];
        want.extend(
            ["A", "C", "G", "T"]
                .into_iter()
                .filter(|b| *b != b2)
                .map(|a| (2, a.to_string(), "ok")),
        );
        want.extend([
            (3, base(3), "ref_mismatch"),
            (4, other(4).to_lowercase(), "ok"),
            (10, base(10), "not_snv"),
            (11, "<DEL>".into(), "not_snv"),
            (11, "*".into(), "not_snv"),
            (12, ".".into(), "no_alt"),
            (13, "N".into(), "ambiguous"),
            (LAMBDA_LEN as i64 + 1, "C".into(), "out_of_bounds"),
            (5, "C".into(), "unknown_contig"),
            (LAMBDA_LEN as i64, other(LAMBDA_LEN as usize), "ok"),
        ]);
        assert_eq!(statuses, want, "{}", reference.display());
        assert_eq!(got[1].id.as_deref(), Some("rs1;rs2"));
        assert_eq!(got[5].id, None);
        for row in &got {
            let scored = row.status == "ok";
            assert_eq!(row.score.is_some(), scored, "{row:?}");
            assert_eq!(row.logp_ref.is_some(), scored, "{row:?}");
            assert_eq!(row.logp_alt.is_some(), scored, "{row:?}");
        }
        let predictions = predict(&dir, &reference, &[]);
        assert_eq!(assert_scores_are_predictions(&got, &predictions), 5);
    }
}

/// Sites on both sides of window edges, with and without overlap: the first base a window's model sees (with
/// `--overlap 0` each window starts from nothing) is `no_context` exactly where `predict` has no
/// probabilities; every other site is `predict`'s row, whether read through the index or whole.
#[test]
fn sites_at_window_edges_match_predict_with_and_without_overlap() {
    let dir = Dir::new();
    let lambda = &fasta(&data("genomes/lambda_virus.fa"))[0].1;
    let window = 1000usize;
    let mut vcf = String::from(HEADER);
    // POS 0: a telomeric breakend (not an SNV) and an SNV at POS 0, out of bounds (it has no base).
    vcf.push_str(&format!(
        "{LAMBDA}\t0\ttelomere\tN\t.[{LAMBDA}:1[\t.\t.\t.\n"
    ));
    vcf.push_str(&format!("{LAMBDA}\t0\t.\tA\tC\t.\t.\t.\n"));
    let mut sites = Vec::new();
    for k in [1, 2, 7, 48] {
        for site in [k * window - 1, k * window, k * window + 1] {
            let r = base_index(lambda[site]).expect("lambda's bases are plain");
            let alt = b"ACGT"[(r + 2) % 4] as char;
            vcf.push_str(&format!(
                "{LAMBDA}\t{}\t.\t{}\t{alt}\t.\t.\t.\n",
                site + 1,
                lambda[site] as char
            ));
            sites.push(site as i64);
        }
    }
    let vcf = dir.write("edges.vcf", vcf);
    for overlap in ["0", "100"] {
        let settings = ["--window", "1000", "--overlap", overlap];
        let predictions = predict(&dir, &derived("lambda_virus.fa"), &settings);
        let (indexed, meta) = score(&dir, &vcf, &derived("lambda_virus.fa"), &settings);
        let (whole, _) = score(&dir, &vcf, &data("genomes/lambda_virus.fa"), &settings);
        assert_eq!(
            indexed, whole,
            "--overlap {overlap}: with and without the index"
        );
        assert_eq!(
            meta["variants"]["reference_read"],
            "windows holding sites (.fai)"
        );
        assert_eq!(
            indexed[..2]
                .iter()
                .map(|r| (r.pos, r.status.as_str()))
                .collect::<Vec<_>>(),
            [(0, "not_snv"), (0, "out_of_bounds")]
        );
        assert_eq!(indexed[0].id.as_deref(), Some("telomere"));
        let statuses: Vec<&str> = indexed[2..].iter().map(|r| r.status.as_str()).collect();
        let want: Vec<&str> = sites
            .iter()
            .map(|&site| match predictions[&(LAMBDA.to_string(), site)].0 {
                Some(_) => "ok",
                None => "no_context",
            })
            .collect();
        assert_eq!(statuses, want, "--overlap {overlap}");
        let no_context = want.iter().filter(|s| **s == "no_context").count();
        // Window starts 1000, 2000, 7000 and 48000 (and none other) start from nothing without overlap.
        assert_eq!(
            no_context,
            if overlap == "0" { 4 } else { 0 },
            "--overlap {overlap}"
        );
        assert_eq!(
            assert_scores_are_predictions(&indexed, &predictions),
            sites.len() - no_context
        );
    }
}

/// What the reference's index allows: nothing read when no site is on a record of it (with a warning when no
/// contig matches), whole records when the FASTA cannot be read by region, and a stale index refused.
#[test]
fn the_reference_index_decides_what_is_read() {
    let dir = Dir::new();
    let lambda = &fasta(&data("genomes/lambda_virus.fa"))[0].1;
    let renamed = dir.write(
        "chr.vcf",
        format!("{HEADER}chr1\t100\t.\tA\tC\t.\t.\t.\nchr1\t200\t.\tA\tAT\t.\t.\t.\n"),
    );
    // With the index: no window holds a site, so nothing is read, and the user hears why.
    let (got, meta, stderr) = score_telling(&dir, &renamed, &derived("lambda_virus.fa"), &[]);
    let statuses: Vec<&str> = got.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["unknown_contig", "not_snv"]);
    assert_eq!(meta["bases"], 0);
    assert_eq!(
        meta["variants"]["reference_read"],
        "nothing (no site within a record of the reference)"
    );
    let warning = format!(
        "genomamba: warning: no SNV of the VCF is on a record of the reference, so none was scored (status \
         unknown_contig); the VCF's contigs: chr1; the reference's records: {LAMBDA}"
    );
    assert!(stderr.contains(&warning), "{stderr}");
    // Without it a first pass finds the records: nothing is run either, and the warning is the same.
    let (whole, meta, stderr) =
        score_telling(&dir, &renamed, &data("genomes/lambda_virus.fa"), &[]);
    assert_eq!(whole, got);
    assert_eq!(meta["bases"], 0);
    assert_eq!(
        meta["variants"]["reference_read"],
        "nothing (no site within a record of the reference)"
    );
    assert!(stderr.contains(&warning), "{stderr}");
    // A reference on standard input cannot be read twice: every record runs whole, with the same rows.
    let piped = genomamba(["score", "--device", "cpu", "--vcf"])
        .arg(&renamed)
        .args(["--reference", "-", "-o"])
        .arg(dir.path("piped.parquet"))
        .stdin_file(data("genomes/lambda_virus.fa"));
    let (output, line) = piped.output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{line}\n{stderr}");
    assert!(stderr.contains(&warning), "{stderr}");
    let (batch, meta) = read(&dir.path("piped.parquet"));
    assert_eq!(rows(&batch), got);
    assert_eq!(meta["bases"], LAMBDA_LEN);
    assert_eq!(
        meta["variants"]["reference_read"],
        "every record whole (standard input or a pipe)"
    );

    // Without an index only the records holding sites are read, each whole, and only their windows holding sites
    // run; a VCF on standard input is the same.
    let records = fasta(&data("mixed.fa"));
    let (name, seq) = &records[1];
    let r = base_index(seq[99]).expect("a plain base at 100");
    let one = dir.write(
        "one_record.vcf",
        format!(
            "{HEADER}{name}\t100\t.\t{}\t{}\t.\t.\t.\nnot_there\t5\t.\tA\tC\t.\t.\t.\n",
            seq[99] as char,
            b"ACGT"[(r + 1) % 4] as char
        ),
    );
    let unindexed = dir.write("mixed.fa", std::fs::read(data("mixed.fa")).expect("fasta"));
    let (want, indexed_meta) = score(&dir, &one, &data("mixed.fa"), &[]);
    let (got, meta, stderr) = score_telling(&dir, &one, &unindexed, &[]);
    assert_eq!(got, want);
    let statuses: Vec<&str> = got.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["ok", "unknown_contig"]);
    assert!(!stderr.contains("warning"), "{stderr}");
    // The site's window (the default, 1 Mi: the whole record) up to the site.
    assert_eq!(meta["bases"], 100);
    assert_eq!(indexed_meta["bases"], 100);
    // With --window 0 (each record one window) the main pass streams the records holding sites instead, whole.
    let (whole, whole_meta) = score(&dir, &one, &unindexed, &["--window", "0"]);
    assert_eq!(whole, want);
    assert_eq!(whole_meta["bases"], seq.len());
    assert_eq!(meta["records"], 1);
    assert_eq!(meta["inputs"][0]["sequences"][0]["name"], name.as_str());
    let out = dir.path("stdin_vcf.parquet");
    genomamba([
        "score",
        "--device",
        "cpu",
        "-q",
        "--vcf",
        "-",
        "--reference",
    ])
    .arg(&unindexed)
    .arg("-o")
    .arg(&out)
    .stdin_file(&one)
    .ok();
    let (batch, stdin_meta) = read(&out);
    assert_eq!(rows(&batch), want);
    // A VCF on standard input is checksummed as it streams.
    let one_sha256: String = sha2::Sha256::digest(std::fs::read(&one).expect("one.vcf"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        stdin_meta["variants"]["vcf_sha256"].as_str(),
        Some(one_sha256.as_str())
    );
    // Pipes, as a shell's `<(...)` gives them (/dev/fd/63), can be read only once: the VCF is copied for its
    // second read (the rows' text, --output-vcf), and the reference is read whole, as standard input is.
    let (piped, piped_vcf) = (dir.path("pipes.parquet"), dir.path("pipes.vcf"));
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#""$0" score --device cpu -q --vcf <(cat "$1") --reference <(cat "$2") -o "$3" --output-vcf "$4""#)
        .arg(util::binary())
        .args([&one, &unindexed, &piped, &piped_vcf])
        .status()
        .expect("bash");
    assert!(status.success());
    let (batch, piped_meta) = read(&piped);
    assert_eq!(rows(&batch), want);
    assert_eq!(
        piped_meta["variants"]["vcf_sha256"].as_str(),
        Some(one_sha256.as_str())
    );
    assert_eq!(
        piped_meta["variants"]["reference_read"],
        "every record whole (standard input or a pipe)"
    );
    let annotated = std::fs::read_to_string(&piped_vcf).expect("annotated VCF");
    let statuses: Vec<&str> = (annotated.lines())
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split("GENOMAMBA_STATUS=").nth(1))
        .collect();
    assert_eq!(statuses, ["ok", "unknown_contig"]);

    // Sites only past the record's end: nothing is read either (and no warning: the contig is known).
    let past = dir.write(
        "past.vcf",
        format!("{HEADER}{LAMBDA}\t{}\t.\tA\tC\t.\t.\t.\n", LAMBDA_LEN + 5),
    );
    let (got, meta, stderr) = score_telling(&dir, &past, &derived("lambda_virus.fa"), &[]);
    assert_eq!(got[0].status, "out_of_bounds");
    assert_eq!(meta["bases"], 0);
    assert!(!stderr.contains("warning"), "{stderr}");

    // A FASTA that cannot be read by region is read whole, with the same scores.
    let site = 30_000usize;
    let r = base_index(lambda[site - 1]).expect("plain base");
    let vcf = dir.write(
        "one.vcf",
        format!(
            "{HEADER}{LAMBDA}\t{site}\t.\t{}\t{}\t.\t.\t.\n",
            lambda[site - 1] as char,
            b"ACGT"[(r + 1) % 4] as char
        ),
    );
    let (want, _) = score(&dir, &vcf, &derived("lambda_virus.fa"), &[]);
    assert_eq!(want[0].status, "ok");
    let fai = std::fs::read(derived("lambda_virus.fa.gz.fai")).expect("fai");
    for (name, source, why) in [
        (
            "b.fa.gz",
            "lambda_virus.fa.gz",
            "b.fa.gz is bgzip-compressed but has no",
        ),
        (
            "p.fa.gz",
            "lambda_virus.plain.fa.gz",
            "p.fa.gz is plain gzip",
        ),
    ] {
        let fasta = dir.write(name, std::fs::read(derived(source)).expect("fasta"));
        dir.write(&format!("{name}.fai"), &fai);
        let (got, meta, stderr) = score_telling(&dir, &vcf, &fasta, &[]);
        assert_eq!(got, want, "{name}");
        assert_eq!(
            meta["variants"]["reference_read"],
            "whole records holding sites (no usable .fai)"
        );
        assert!(
            stderr.contains(why) && stderr.contains("reading the records that hold sites whole"),
            "{stderr}"
        );
    }

    // An index made before bases were added to the record: refused, naming the record; no output.
    let stale = dir.write(
        "stale.fa",
        std::fs::read(data("genomes/lambda_virus.fa")).expect("fasta"),
    );
    let index = String::from_utf8(std::fs::read(derived("lambda_virus.fa.fai")).expect("fai"))
        .expect("utf-8")
        .replace(
            &format!("\t{LAMBDA_LEN}\t"),
            &format!("\t{}\t", LAMBDA_LEN - 100),
        );
    dir.write("stale.fa.fai", index);
    let refused = || {
        genomamba(["score", "--device", "cpu", "-q", "--vcf"])
            .arg(&vcf)
            .arg("--reference")
            .arg(&stale)
            .args(["-o", "stale.parquet"])
            .current_dir(dir.path(""))
            .fails_with(1)
    };
    let err = refused();
    assert!(
        err.contains(&format!(
            "stale.fa: record '{LAMBDA}': the .fai index does not match the FASTA"
        )) && err.contains("samtools faidx"),
        "{err}"
    );
    assert!(!dir.path("stale.parquet").exists());
    // An index made for another genome, which does not list the VCF's contig: refused too, not a run that
    // scores nothing (every site unknown_contig).
    dir.write(
        "stale.fa.fai",
        std::fs::read(derived("mixed.fa.fai")).expect("fai"),
    );
    let err = refused();
    assert!(
        err.contains("stale.fa: record 'lambda_0_3000': the .fai index does not match the FASTA"),
        "{err}"
    );
    assert!(!dir.path("stale.parquet").exists());
}

#[test]
fn the_bundled_calls_score_on_the_default_model() {
    let dir = Dir::new();
    let vcf = data("variants/lambda_calls.vcf.gz");
    let (got, meta) = score(&dir, &vcf, &derived("lambda_virus.fa"), &[]);
    assert_eq!(got.len(), 35);
    assert_eq!(got.iter().filter(|r| r.status == "ok").count(), 18);
    assert_eq!(got.iter().filter(|r| r.status == "not_snv").count(), 17);
    assert_eq!(meta["variants"]["records"], 35);
    assert_eq!(meta["variants"]["scorable"], 18);
    assert!(
        meta["variants"]["vcf"]
            .as_str()
            .is_some_and(|p| p.ends_with("lambda_calls.vcf.gz"))
    );
    // The metadata names the exact file scored: its checksum as data/README.md records it.
    assert_eq!(
        meta["variants"]["vcf_sha256"].as_str(),
        Some(documented_sha256("variants/lambda_calls.vcf.gz").as_str())
    );
    let predictions = predict(&dir, &derived("lambda_virus.fa"), &[]);
    assert_eq!(assert_scores_are_predictions(&got, &predictions), 18);
    // The same calls as BCF (bcftools view -Ob) give the same rows.
    let (from_bcf, bcf_meta) = score(
        &dir,
        &data("variants/lambda_calls.bcf"),
        &derived("lambda_virus.fa"),
        &[],
    );
    assert_eq!(from_bcf, got);
    assert_eq!(
        bcf_meta["variants"]["vcf_sha256"].as_str(),
        Some(documented_sha256("variants/lambda_calls.bcf").as_str())
    );
}

/// The SHA-256 that data/README.md's table gives for a bundled file (`rel` as in its first column).
fn documented_sha256(rel: &str) -> String {
    let table = std::fs::read_to_string(root().join("data/README.md")).expect("data/README.md");
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("| `{rel}`")))
        .unwrap_or_else(|| panic!("no row for {rel} in data/README.md"));
    row.split(['`', ' ', '|'])
        .find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no sha256 in data/README.md's row for {rel}"))
        .to_owned()
}

/// A VCF called against another genome shows as REF alleles that disagree with the reference: the rows say
/// `ref_mismatch` and the run warns; ALT equal to REF, or empty, is `no_alt`. The bundled calls get no warning.
#[test]
fn a_vcf_from_another_genome_is_warned_about() {
    let dir = Dir::new();
    let reference = derived("lambda_virus.fa");
    let lambda = &fasta(&reference)[0].1;
    let mut text = HEADER.to_owned();
    for site in [1000usize, 2000, 3000] {
        let base = lambda[site - 1].to_ascii_uppercase();
        let other = b"ACGT"[(base_index(base).expect("base") + 1) % 4] as char;
        text.push_str(&format!(
            "{LAMBDA}\t{site}\t.\t{other}\t{}\t.\t.\t.\n",
            base as char
        ));
    }
    let base = lambda[4999].to_ascii_uppercase() as char;
    text.push_str(&format!("{LAMBDA}\t5000\t.\t{base}\t{base},\t.\t.\t.\n"));
    let vcf = dir.write("other.vcf", text);
    let (rows, _, stderr) = score_telling(&dir, &vcf, &reference, &[]);
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "ref_mismatch",
            "ref_mismatch",
            "ref_mismatch",
            "no_alt",
            "no_alt"
        ]
    );
    assert!(
        stderr.contains(
            "warning: 3 of the 3 alleles checked against the reference have a REF that is not the reference's bases"
        ),
        "{stderr}"
    );
    let (_, _, stderr) =
        score_telling(&dir, &data("variants/lambda_calls.vcf.gz"), &reference, &[]);
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn bad_vcfs_and_bad_use_fail_cleanly_and_leave_nothing() {
    let dir = Dir::new();
    let reference = data("genomes/lambda_virus.fa");
    let run = |vcf: &str, extra: &[&str], code: i32| {
        genomamba([
            "score",
            "--device",
            "cpu",
            "-q",
            "--vcf",
            vcf,
            "--reference",
        ])
        .arg(&reference)
        .args(extra.iter().copied())
        .args(["-o", "out.parquet"])
        .current_dir(dir.path(""))
        .fails_with(code)
    };
    dir.write(
        "bad.vcf",
        format!("{HEADER}{LAMBDA}\t5\t.\tA\tC\t.\t.\t.\n{LAMBDA}\tfive\t.\tA\tC\t.\t.\t.\n"),
    );
    let err = run("bad.vcf", &[], 1);
    assert!(
        err.starts_with("genomamba: error: bad.vcf: line 4"),
        "{err}"
    );
    assert!(err.contains("five"), "names the value: {err}");
    let err = run("missing.vcf", &[], 1);
    assert!(err.contains("missing.vcf"), "{err}");
    dir.write("ok.vcf", format!("{HEADER}{LAMBDA}\t5\t.\tA\tC\t.\t.\t.\n"));
    let caduceus = root().join("tests/golden/caduceus/ps-fused");
    let err = run(
        "ok.vcf",
        &[
            "--model",
            caduceus.to_str().expect("utf-8 path"),
            "--indel-flank",
            "4",
        ],
        2,
    );
    assert!(err.contains("--indel-flank needs a causal model"), "{err}");
    let err = genomamba(["score", "--reference", "x.fa", "-o", "out.parquet"])
        .current_dir(dir.path(""))
        .fails_with(2);
    assert!(err.contains("--vcf"), "{err}");
    let err = genomamba([
        "score",
        "--vcf",
        "-",
        "--reference",
        "-",
        "-o",
        "out.parquet",
    ])
    .current_dir(dir.path(""))
    .fails_with(2);
    assert!(
        err.contains("--vcf and --reference cannot both be standard input"),
        "{err}"
    );
    let mut listing = dir.listing();
    listing.sort();
    assert_eq!(
        listing,
        ["bad.vcf", "ok.vcf"],
        "no output and no temporary file"
    );
}

#[test]
fn sites_on_a_record_with_no_bases_are_out_of_bounds_or_unknown() {
    let dir = Dir::new();
    let lambda = &fasta(&derived("lambda_virus.fa"))[0].1;
    let reference = dir.write(
        "g.fa",
        format!(">gap\n>a\n{}\n", String::from_utf8_lossy(&lambda[..2000])),
    );
    let base = lambda[999].to_ascii_uppercase();
    let other = b"ACGT"[(base_index(base).expect("base") + 1) % 4] as char;
    let vcf = dir.write(
        "s.vcf",
        format!(
            "{HEADER}gap\t1\t.\tA\tC\t.\t.\t.\na\t1000\t.\t{}\t{other}\t.\t.\t.\n",
            base as char
        ),
    );
    // Read whole, the empty record is known and has no base 1; samtools' index leaves it out.
    let statuses = |stderr_must_not: &str| {
        let (rows, _, stderr) = score_telling(&dir, &vcf, &reference, &[]);
        assert!(!stderr.contains(stderr_must_not), "{stderr}");
        rows.into_iter().map(|r| r.status).collect::<Vec<_>>()
    };
    assert_eq!(statuses("no bases"), ["out_of_bounds", "ok"]);
    samtools_faidx(&reference);
    assert_eq!(statuses("no bases"), ["unknown_contig", "ok"]);
}

/// Expected `(logp_ref, logp_alt)` of an indel or substitution at 0-based `s` (REF `r`, ALT `a`) on `seq`, from
/// `predict` runs of its two haplotypes written out whole: the reference from the window's burn-in up to `s`,
/// then each allele and the reference after REF, both `max(len REF, len ALT) + flank` bases (within the record),
/// summed over the haplotype's positions. `predict --window 0` runs each record as one fresh window, which is
/// what the allele's window and burn-in give it in a run over the whole record.
struct Haplotypes {
    fasta: String,
    /// Per site: (record name stem, prefix length).
    sites: Vec<(String, usize)>,
}

impl Haplotypes {
    fn new() -> Self {
        Haplotypes {
            fasta: String::new(),
            sites: Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        seq: &[u8],
        s: usize,
        r: &[u8],
        a: &[u8],
        window: usize,
        overlap: usize,
        flank: usize,
    ) {
        let context = (s / window * window).saturating_sub(overlap);
        let (m, k, len) = (r.len(), a.len(), seq.len());
        let l = (m.max(k) + flank).min(len - s).min(len - s - m + k);
        let prefix = &seq[context..s];
        let reference = [prefix, &seq[s..s + l]].concat();
        let alt = [
            prefix,
            &a[..k.min(l)],
            &seq[s + m..s + m + l.saturating_sub(k)],
        ]
        .concat();
        let stem = format!("h{}", self.sites.len());
        for (tag, bases) in [("r", reference), ("a", alt)] {
            self.fasta.push_str(&format!(
                ">{stem}{tag}\n{}\n",
                String::from_utf8_lossy(&bases)
            ));
        }
        self.sites.push((stem, prefix.len()));
    }

    /// Runs `predict` on the haplotypes; per site, the sums of `logp_ref` over each haplotype.
    fn sums(&self, dir: &Dir) -> Vec<(f64, f64)> {
        let path = dir.write("haplotypes.fa", &self.fasta);
        let rows = predict(dir, &path, &["--window", "0", "--overlap", "0"]);
        let prefix: HashMap<String, usize> = self.sites.iter().cloned().collect();
        let mut sums: HashMap<String, f64> = HashMap::new();
        for ((name, start), (logp, _)) in rows {
            if start as usize >= prefix[&name[..name.len() - 1]] {
                *sums.entry(name).or_default() += f64::from(logp.expect("a base with context"));
            }
        }
        self.sites
            .iter()
            .map(|(stem, _)| (sums[&format!("{stem}r")], sums[&format!("{stem}a")]))
            .collect()
    }
}

/// A VCF line to write: 0-based start, REF, the ALTs, and the status each ALT should end with.
type Call = (usize, Vec<u8>, Vec<Vec<u8>>, Vec<&'static str>);

#[test]
fn indels_score_as_two_haplotypes_from_one_prefix() {
    let dir = Dir::new();
    let genome = fasta(&data("genomes/lambda_virus.fa"));
    let seq = genome[0].1.to_ascii_uppercase();
    let len = seq.len();
    assert_eq!(len as u64, LAMBDA_LEN);
    let (window, overlap, flank) = (4096usize, 512usize, 20usize);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let next = |b: u8| match b {
        b'A' => b'C',
        b'C' => b'G',
        b'G' => b'T',
        _ => b'A',
    };
    // (0-based start, REF, ALTs, expected status of each ALT)
    let mut calls: Vec<Call> = vec![
        // At the record's first base: no base before it to predict it from.
        (
            0,
            seq[0..2].to_vec(),
            vec![seq[0..1].to_vec()],
            vec!["no_context"],
        ),
        // A deletion whose haplotypes run past the end of its window (8192) into the next.
        (
            8187,
            seq[8187..8190].to_vec(),
            vec![seq[8187..8188].to_vec()],
            vec!["ok"],
        ),
        // An insertion.
        (
            12000,
            seq[12000..12001].to_vec(),
            vec![[&seq[12000..12001], b"ACGTACGT"].concat()],
            vec!["ok"],
        ),
        // A two-base substitution.
        (
            15000,
            seq[15000..15002].to_vec(),
            vec![seq[15000..15002].iter().map(|&b| next(b)).collect()],
            vec!["ok"],
        ),
        // REF disagreeing with the reference.
        (
            20000,
            seq[20000..20003].iter().map(|&b| next(b)).collect(),
            vec![vec![next(seq[20000])]],
            vec!["ref_mismatch"],
        ),
        // Two ALTs: a deletion and an insertion; and a symbolic one.
        (
            30001,
            seq[30001..30003].to_vec(),
            vec![
                seq[30001..30002].to_vec(),
                [&seq[30001..30002], b"T", &seq[30002..30003]].concat(),
                b"<DEL>".to_vec(),
            ],
            vec!["ok", "ok", "not_snv"],
        ),
        // Near the record's end: both haplotypes stop there, at the same length.
        (
            len - 10,
            seq[len - 10..len - 7].to_vec(),
            vec![seq[len - 10..len - 9].to_vec()],
            vec!["ok"],
        ),
        // Deleting the record's last two bases, and inserting after its last base: the haplotypes stop at the
        // record's end before REF and ALT differ, so there is nothing to score (not a score of 0).
        (
            len - 3,
            seq[len - 3..].to_vec(),
            vec![seq[len - 3..len - 2].to_vec()],
            vec!["out_of_bounds"],
        ),
        (
            len - 1,
            seq[len - 1..].to_vec(),
            vec![[&seq[len - 1..], b"AAAA"].concat()],
            vec!["out_of_bounds"],
        ),
        // REF past the record's end.
        (
            len - 2,
            [&seq[len - 2..], b"A"].concat(),
            vec![seq[len - 2..len - 1].to_vec()],
            vec!["out_of_bounds"],
        ),
    ];
    // And an SNV, scored as before.
    calls.push((
        40000,
        seq[40000..40001].to_vec(),
        vec![vec![next(seq[40000])]],
        vec!["ok"],
    ));
    let mut vcf = HEADER.to_string();
    for (s, r, alts, _) in &calls {
        let alts: Vec<String> = alts.iter().map(|a| text(a)).collect();
        vcf.push_str(&format!(
            "{LAMBDA}\t{}\t.\t{}\t{}\t.\t.\t.\n",
            s + 1,
            text(r),
            alts.join(",")
        ));
    }
    let vcf = dir.write("indels.vcf", vcf);
    let args = [
        "--window",
        "4096",
        "--overlap",
        "512",
        "--indel-flank",
        "20",
    ];
    let indexed = derived("lambda_virus.fa");
    let (got, meta) = score(&dir, &vcf, &indexed, &args);
    let statuses: Vec<&str> = got.iter().map(|r| r.status.as_str()).collect();
    let expected: Vec<&str> = calls.iter().flat_map(|c| c.3.clone()).collect();
    assert_eq!(statuses, expected);
    assert_eq!(meta["variants"]["indel_flank"], 20);
    // Without the index the records are read whole: the same rows.
    let (unindexed, _) = score(&dir, &vcf, &data("genomes/lambda_virus.fa"), &args);
    assert_eq!(unindexed, got);
    // The bundled calls: all 35 scored, the SNVs exactly as without --indel-flank.
    let bundled = data("variants/lambda_calls.vcf.gz");
    let (all, _) = score(&dir, &bundled, &indexed, &args);
    assert!(all.iter().all(|r| r.status == "ok"), "{all:?}");
    let (_, _, told) = score_telling(&dir, &bundled, &indexed, &args);
    assert!(
        told.contains("35 of 35 SNVs, indels and substitutions scored"),
        "{told}"
    );
    let (snvs, _) = score(&dir, &bundled, &indexed, &args[..4]);
    for (with, without) in all.iter().zip(&snvs) {
        if without.status == "ok" {
            assert_eq!(with, without);
        } else {
            assert_eq!(without.status, "not_snv");
        }
    }
    // Every haplotype score against predict over the haplotypes written out.
    let mut haplotypes = Haplotypes::new();
    let mut checked = Vec::new();
    for row in got
        .iter()
        .chain(&all)
        .filter(|r| r.status == "ok" && (r.reference.len() > 1 || r.alt.len() > 1))
    {
        let s = row.pos as usize - 1;
        haplotypes.add(
            &seq,
            s,
            row.reference.as_bytes(),
            row.alt.as_bytes(),
            window,
            overlap,
            flank,
        );
        checked.push(row);
    }
    assert_eq!(checked.len(), 6 + 17);
    // A flank longer than the record runs to its end: the same as a flank of the record's length.
    let one = dir.write(
        "one.vcf",
        format!(
            "{HEADER}{LAMBDA}\t12001\t.\t{}\t{}ACG\t.\t.\t.\n",
            text(&seq[12000..12001]),
            text(&seq[12000..12001])
        ),
    );
    let (to_end, _) = score(
        &dir,
        &one,
        &indexed,
        &["--indel-flank", &u64::MAX.to_string()],
    );
    let (whole, _) = score(&dir, &one, &indexed, &["--indel-flank", &len.to_string()]);
    assert_eq!(to_end, whole);
    assert_eq!(to_end[0].status, "ok");
    // --indel-flank reads the reference twice: not from standard input.
    let out = dir.path("stdin.parquet");
    let err = genomamba([
        "score",
        "--device",
        "cpu",
        "--indel-flank",
        "5",
        "--reference",
        "-",
        "--vcf",
    ])
    .arg(&vcf)
    .arg("-o")
    .arg(&out)
    .stdin_file(data("genomes/lambda_virus.fa"))
    .fails_with(2);
    assert!(
        err.contains("--indel-flank") && err.contains("standard input"),
        "{err}"
    );
    assert!(!out.exists());
    let mut worst: f64 = 0.0;
    for (row, (want_ref, want_alt)) in checked.iter().zip(haplotypes.sums(&dir)) {
        let (logp_ref, logp_alt) = (
            f64::from(row.logp_ref.unwrap()),
            f64::from(row.logp_alt.unwrap()),
        );
        worst = worst
            .max((logp_ref - want_ref).abs())
            .max((logp_alt - want_alt).abs());
        assert!(
            (logp_ref - want_ref).abs() < 1e-4,
            "{row:?}: REF haplotype {want_ref}"
        );
        assert!(
            (logp_alt - want_alt).abs() < 1e-4,
            "{row:?}: ALT haplotype {want_alt}"
        );
        assert_eq!(
            row.score,
            Some(row.logp_alt.unwrap() - row.logp_ref.unwrap())
        );
    }
    println!(
        "haplotype sums against predict over the haplotypes written out: max abs diff {worst:.2e}"
    );
}

#[test]
fn snvs_score_the_same_on_the_walk_that_scores_indels() {
    // With --indel-flank one walk scores SNVs and indels together; each SNV row must be the row a run without
    // the option gives, bit for bit, wherever it lies against the indels and the windows.
    let dir = Dir::new();
    let seq = fasta(&data("genomes/lambda_virus.fa"))[0]
        .1
        .to_ascii_uppercase();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let other = |b: u8| if b == b'A' { "C" } else { "A" };
    // (1-based POS, REF, ALT)
    let mut calls: Vec<(usize, String, String)> = Vec::new();
    let snv = |calls: &mut Vec<_>, s: usize| {
        calls.push((s + 1, text(&seq[s..s + 1]), other(seq[s]).to_string()))
    };
    // The record's first base, then an indel in the same window (no context, walk or not).
    snv(&mut calls, 0);
    calls.push((101, text(&seq[100..102]), text(&seq[100..101])));
    // Just before a deletion, at its site (its own record), within the deleted bases, and after it.
    snv(&mut calls, 4999);
    snv(&mut calls, 5000);
    calls.push((5001, text(&seq[5000..5003]), text(&seq[5000..5001])));
    snv(&mut calls, 5001);
    snv(&mut calls, 5100);
    // REF disagreeing with the reference.
    calls.push((5201, other(seq[5200]).into(), text(&seq[5200..5201])));
    // The first base of a window (8192), an insertion later in it and an SNV after that, the window's last base.
    snv(&mut calls, 8192);
    calls.push((
        8301,
        text(&seq[8300..8301]),
        format!("{}GG", text(&seq[8300..8301])),
    ));
    snv(&mut calls, 8400);
    snv(&mut calls, 12287);
    // A window of SNVs alone.
    snv(&mut calls, 20000);
    snv(&mut calls, 20001);
    let mut vcf = HEADER.to_string();
    for (pos, r, a) in &calls {
        vcf.push_str(&format!("{LAMBDA}\t{pos}\t.\t{r}\t{a}\t.\t.\t.\n"));
    }
    let vcf = dir.write("around_indels.vcf", vcf);
    for reference in [derived("lambda_virus.fa"), data("genomes/lambda_virus.fa")] {
        for overlap in ["512", "0"] {
            let grid = ["--window", "4096", "--overlap", overlap];
            let (without, _) = score(&dir, &vcf, &reference, &grid);
            // Engine calls of 1000 bases: the walk crosses several in each window.
            let mut flank = grid.to_vec();
            flank.extend(["--indel-flank", "8", "--chunk", "1000"]);
            let (with, _) = score(&dir, &vcf, &reference, &flank);
            assert_eq!(with.len(), calls.len());
            let mut snvs = 0;
            for (w, o) in with.iter().zip(&without) {
                if w.reference.len() == 1 && w.alt.len() == 1 {
                    assert_eq!(w, o, "overlap {overlap}, {}", reference.display());
                    snvs += 1;
                } else {
                    assert_eq!(
                        (w.status.as_str(), o.status.as_str()),
                        ("ok", "not_snv"),
                        "{w:?}"
                    );
                }
            }
            assert_eq!(snvs, 11);
            let statuses: Vec<&str> = with.iter().map(|r| r.status.as_str()).collect();
            let window_start = if overlap == "0" { "no_context" } else { "ok" };
            assert_eq!(
                statuses,
                [
                    "no_context",
                    "ok",
                    "ok",
                    "ok",
                    "ok",
                    "ok",
                    "ok",
                    "ref_mismatch",
                    window_start,
                    "ok",
                    "ok",
                    "ok",
                    "ok",
                    "ok"
                ]
            );
        }
    }
}

/// Runs a command-line tool (htslib's `bgzip`, `tabix`, `bcftools`, which tests/run.sh installs) and returns
/// its standard output.
fn tool(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (tests/run.sh installs it)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A VCF's text: bgzip read back by htslib's `bgzip -dc`, plain text as it is.
fn vcf_text(path: &Path) -> String {
    let name = path.to_str().expect("utf-8 path");
    if name.ends_with(".gz") {
        tool("bgzip", &["-dc", name])
    } else {
        std::fs::read_to_string(path).expect("vcf")
    }
}

/// The genomamba INFO keys, in the order they are written.
const GENOMAMBA_KEYS: [&str; 4] = [
    "GENOMAMBA_SCORE",
    "GENOMAMBA_LOGP_REF",
    "GENOMAMBA_LOGP_ALT",
    "GENOMAMBA_STATUS",
];

/// A data line of an annotated VCF split into the line without genomamba's INFO entries and those entries'
/// values (by key).
fn split_annotation(line: &str) -> (String, HashMap<String, Vec<String>>) {
    let mut columns: Vec<String> = line.split('\t').map(str::to_string).collect();
    let mut ours = HashMap::new();
    let mut kept = Vec::new();
    for entry in columns[7].split(';') {
        match entry.split_once('=') {
            Some((key, value)) if GENOMAMBA_KEYS.contains(&key) => {
                assert!(
                    ours.insert(
                        key.to_string(),
                        value.split(',').map(str::to_string).collect()
                    )
                    .is_none(),
                    "{key} twice: {line}"
                );
            }
            _ => kept.push(entry),
        }
    }
    columns[7] = if kept.is_empty() {
        ".".into()
    } else {
        kept.join(";")
    };
    (columns.join("\t"), ours)
}

/// Asserts that the annotated data lines carry exactly the table's rows, record by record in order: a value per
/// ALT allele, the floats equal to the bit (`.` where null, the key absent where every allele's is), the statuses;
/// a record without ALT alleles (its row `no_alt`) has no genomamba entry. Returns the lines without them.
fn assert_annotations_are_rows(text: &str, rows: &[Row]) -> Vec<String> {
    let mut rows = rows.iter();
    let mut stripped = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (rest, ours) = split_annotation(line);
        let alt = line.split('\t').nth(4).expect("ALT");
        let alts = if alt == "." {
            0
        } else {
            alt.split(',').count()
        };
        let of_record: Vec<&Row> = rows.by_ref().take(alts.max(1)).collect();
        assert_eq!(of_record.len(), alts.max(1), "rows run out at {line}");
        if alts == 0 {
            assert_eq!(of_record[0].status, "no_alt");
            assert!(ours.is_empty(), "{line}");
            stripped.push(rest);
            continue;
        }
        let statuses: Vec<&str> = of_record.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(ours["GENOMAMBA_STATUS"], statuses, "{line}");
        let columns = [
            (
                "GENOMAMBA_SCORE",
                of_record.iter().map(|r| r.score).collect::<Vec<_>>(),
            ),
            (
                "GENOMAMBA_LOGP_REF",
                of_record.iter().map(|r| r.logp_ref).collect(),
            ),
            (
                "GENOMAMBA_LOGP_ALT",
                of_record.iter().map(|r| r.logp_alt).collect(),
            ),
        ];
        for (key, want) in columns {
            match ours.get(key) {
                None => assert!(want.iter().all(Option::is_none), "{key} missing: {line}"),
                Some(got) => {
                    let got: Vec<Option<u32>> = got
                        .iter()
                        .map(|v| (v != ".").then(|| v.parse::<f32>().expect("float").to_bits()))
                        .collect();
                    let want: Vec<Option<u32>> = want.iter().map(|v| v.map(f32::to_bits)).collect();
                    assert_eq!(got, want, "{key}: {line}");
                }
            }
        }
        stripped.push(rest);
    }
    assert_eq!(rows.next(), None, "rows left over");
    stripped
}

/// `--output-vcf` writes the VCF again: the data lines byte for byte but for the genomamba INFO entries, which
/// hold the table's values exactly; the header gains their definitions and the command. A bgzipped output gets
/// a tabix index that htslib reads, and htslib reads the values with the types the header gives.
#[test]
fn the_annotated_vcf_is_the_input_with_each_rows_values() {
    let dir = Dir::new();
    let vcf = data("variants/lambda_calls.vcf.gz");
    let out = dir.path("calls.vcf.gz");
    let out_name = out.to_str().expect("utf-8 path");
    let (rows, meta) = score(
        &dir,
        &vcf,
        &derived("lambda_virus.fa"),
        &["--indel-flank", "20", "--output-vcf", out_name],
    );
    assert_eq!(rows.iter().filter(|r| r.status == "ok").count(), 35);
    assert_eq!(meta["variants"]["output_vcf"].as_str(), Some(out_name));
    let input = vcf_text(&vcf);
    let text = vcf_text(&out);
    let stripped = assert_annotations_are_rows(&text, &rows);
    let input_lines: Vec<&str> = input.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(stripped, input_lines, "data lines kept byte for byte");
    // The header: the input's lines in order, then the definitions and provenance, then #CHROM.
    let header: Vec<&str> = text.lines().filter(|l| l.starts_with("##")).collect();
    let input_header: Vec<&str> = input.lines().filter(|l| l.starts_with("##")).collect();
    assert_eq!(header[..input_header.len()], input_header[..]);
    let added = &header[input_header.len()..];
    for (line, key) in added.iter().zip(GENOMAMBA_KEYS) {
        assert!(
            line.starts_with(&format!("##INFO=<ID={key},Number=A,Type=")),
            "{line}"
        );
    }
    assert!(
        added[5].starts_with("##genomamba_scoreCommand=genomamba score ")
            && added[5].contains("--output-vcf"),
        "{added:?}"
    );
    // The index: tabix's region query returns the lines in the region, as written.
    assert!(dir.path("calls.vcf.gz.tbi").exists());
    let region = format!("{LAMBDA}:3000-7000");
    let queried = tool("tabix", &[out_name, &region]);
    let in_region: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let pos: u64 = l.split('\t').nth(1).expect("POS").parse().expect("POS");
            (3000..=7000).contains(&pos)
        })
        .collect();
    assert_eq!(in_region.len(), 3);
    assert_eq!(queried.lines().collect::<Vec<_>>(), in_region);
    // htslib parses the values as the header types them.
    assert_queried_values_are_rows(out_name, &rows);
    // The same VCF as BCF gives the same annotations (noodles writes its records as VCF text).
    let from_bcf = dir.path("from_bcf.vcf");
    let (bcf_rows, _) = score(
        &dir,
        &data("variants/lambda_calls.bcf"),
        &derived("lambda_virus.fa"),
        &[
            "--indel-flank",
            "20",
            "--output-vcf",
            from_bcf.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(bcf_rows, rows);
    assert_annotations_are_rows(&vcf_text(&from_bcf), &rows);
    // BCF out, from VCF text or from BCF (whose header numbers its strings with IDX=): htslib reads the values,
    // the provenance and, through the CSI index, a region.
    for input in ["variants/lambda_calls.vcf.gz", "variants/lambda_calls.bcf"] {
        let out = dir.path("calls.bcf");
        let out_name = out.to_str().expect("utf-8 path");
        let (bcf_rows, _) = score(
            &dir,
            &data(input),
            &derived("lambda_virus.fa"),
            &["--indel-flank", "20", "--output-vcf", out_name, "--force"],
        );
        assert_eq!(bcf_rows, rows, "{input}");
        assert_queried_values_are_rows(out_name, &rows);
        let header = tool("bcftools", &["view", "-h", out_name]);
        assert!(
            header.contains("##genomamba_scoreCommand=genomamba score "),
            "{header}"
        );
        assert!(dir.path("calls.bcf.csi").exists());
        let region = format!("{LAMBDA}:3000-7000");
        let queried = tool("bcftools", &["view", "-H", "-r", &region, out_name]);
        assert_eq!(queried.lines().count(), 3, "{input}: {queried}");
    }
}

/// `bcftools query` of the annotated file at `path` gives each row's POS, ALT, status and values (htslib prints
/// floats to 6 significant digits).
fn assert_queried_values_are_rows(path: &str, rows: &[Row]) {
    let query = tool(
        "bcftools",
        &[
            "query",
            "-f",
            "%POS\t%ALT\t%INFO/GENOMAMBA_SCORE\t%INFO/GENOMAMBA_LOGP_REF\t%INFO/GENOMAMBA_STATUS\n",
            path,
        ],
    );
    let parsed: Vec<&str> = query.lines().collect();
    assert_eq!(parsed.len(), rows.len(), "{path}");
    for (line, row) in parsed.iter().zip(rows) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            (f[0], f[1], f[4]),
            (
                row.pos.to_string().as_str(),
                row.alt.as_str(),
                row.status.as_str()
            ),
            "{path}"
        );
        for (text, value) in [(f[2], row.score), (f[3], row.logp_ref)] {
            let (got, want) = (text.parse::<f32>().expect("float"), value.expect("scored"));
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{path}: {line} vs {row:?}"
            );
        }
    }
}

/// Multi-allelic records, records without ALT, unscored alleles and an earlier annotation: one value per ALT
/// allele, `.` where one is not scored, the old entries and definition replaced; standard input in and out
/// gives the same file; records out of order are written whole, with a warning instead of an index.
#[test]
fn the_annotated_vcf_of_every_kind_of_record() {
    let dir = Dir::new();
    let lambda = &fasta(&data("genomes/lambda_virus.fa"))[0].1;
    let base = |pos: usize| (lambda[pos - 1] as char).to_string();
    let others = |pos: usize| -> Vec<String> {
        ["A", "C", "G", "T"]
            .iter()
            .filter(|b| **b != base(pos))
            .map(|b| b.to_string())
            .collect()
    };
    let header = "##fileformat=VCFv4.2\n\
        ##INFO=<ID=GENOMAMBA_SCORE,Number=1,Type=String,Description=\"an older run's\">\n\
        ##INFO=<ID=DP,Number=1,Type=Integer,Description=\"depth\">\n\
        #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
    let lines = [
        format!(
            "{LAMBDA}\t20\t.\t{}\t{}\t29.5000\tPASS\tDP=3;XX=1,2;FLAG",
            base(20),
            others(20).join(",")
        ),
        format!(
            "{LAMBDA}\t30\t.\t{}\t{},<DEL>\t.\t.\t.",
            base(30),
            others(30)[0]
        ),
        format!("{LAMBDA}\t40\t.\t{}\t.\t.\t.\tDP=1", base(40)),
        format!(
            "{LAMBDA}\t1\tfirst\t{}\t{}\t.\t.\tGENOMAMBA_SCORE=9;GENOMAMBA_STATUS=old;DP=2",
            base(1),
            others(1)[0]
        ),
        "chrUn\t5\t.\tA\tC\t.\t.\t.".to_string(),
        format!(
            "{LAMBDA}\t50\t.\t{}\t{}\t.\t.\tDP=4",
            base(50),
            others(50)[1]
        ),
    ];
    let vcf = dir.write("mixed.vcf", format!("{header}{}\n", lines.join("\n")));
    let out = dir.path("mixed.out.vcf");
    let (rows, _) = score(
        &dir,
        &vcf,
        &derived("lambda_virus.fa"),
        &["--output-vcf", out.to_str().expect("utf-8 path")],
    );
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "ok",
            "ok",
            "ok",
            "ok",
            "not_snv",
            "no_alt",
            "no_context",
            "unknown_contig",
            "ok"
        ]
    );
    let text = vcf_text(&out);
    let stripped = assert_annotations_are_rows(&text, &rows);
    let data_lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    // The second record: a value and a `.`; the first base of the genome: no context, so no float at all.
    assert!(
        data_lines[1].contains("\tGENOMAMBA_SCORE=") && data_lines[1].contains(",.;"),
        "{}",
        data_lines[1]
    );
    assert!(
        data_lines[3].ends_with("\tDP=2;GENOMAMBA_STATUS=no_context"),
        "{}",
        data_lines[3]
    );
    assert!(
        data_lines[4].ends_with("\tGENOMAMBA_STATUS=unknown_contig"),
        "{}",
        data_lines[4]
    );
    // Everything else is kept as written (QUAL, an undefined key's list, a flag); old entries are gone.
    let mut want: Vec<String> = lines.to_vec();
    want[3] = want[3].replace("GENOMAMBA_SCORE=9;GENOMAMBA_STATUS=old;", "");
    assert_eq!(stripped, want);
    let definitions: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("##INFO=<ID=GENOMAMBA_SCORE,"))
        .collect();
    assert_eq!(definitions.len(), 1);
    assert!(
        definitions[0].contains("Number=A,Type=Float"),
        "{}",
        definitions[0]
    );
    // Standard input in, standard output out: the same file but for the command line recorded.
    let piped = genomamba([
        "score",
        "--device",
        "cpu",
        "-q",
        "--vcf",
        "-",
        "--output-vcf",
        "-",
        "--reference",
    ])
    .arg(derived("lambda_virus.fa"))
    .arg("-o")
    .arg(dir.path("piped.parquet"))
    .stdin_file(&vcf)
    .ok();
    let without_command = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with("##genomamba_scoreCommand="))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(without_command(&piped), without_command(&text));
    assert_eq!(rows_of(&dir.path("piped.parquet")), rows);
    // Out of order (chrUn between lambda's records, and lambda's positions going back): written whole, not
    // indexed, and said so.
    let gz = dir.path("mixed.vcf.gz");
    let (_, _, stderr) = score_telling(
        &dir,
        &vcf,
        &derived("lambda_virus.fa"),
        &["--output-vcf", gz.to_str().expect("utf-8 path")],
    );
    assert!(
        stderr.contains("no index written") && stderr.contains("bcftools sort"),
        "{stderr}"
    );
    assert!(!dir.path("mixed.vcf.gz.tbi").exists());
    assert_eq!(without_command(&vcf_text(&gz)), without_command(&text));
}

/// The rows of a variants table.
fn rows_of(path: &Path) -> Vec<Row> {
    rows(&read(path).0)
}

/// `--output-vcf` is checked before any work: its name, a clash with `-o`, an existing file or index without
/// `--force`; a failed run leaves neither output.
#[test]
fn annotated_vcf_refusals_leave_nothing() {
    let dir = Dir::new();
    let reference = data("genomes/lambda_virus.fa");
    dir.write("ok.vcf", format!("{HEADER}{LAMBDA}\t5\t.\tA\tC\t.\t.\t.\n"));
    // `score` of ok.vcf with `args` after the reference.
    let command = |args: &[&str]| {
        genomamba(["score", "--device", "cpu", "-q", "--vcf", "ok.vcf"])
            .arg("--reference")
            .arg(&reference)
            .args(args.iter().copied())
            .current_dir(dir.path(""))
    };
    let run = |extra: &[&str], code: i32| {
        command(&[&["-o", "out.parquet"], extra].concat()).fails_with(code)
    };
    let err = run(&["--output-vcf", "out.parquet"], 2);
    assert!(
        err.contains("--output-vcf out.parquet: give a name ending in .vcf, .vcf.gz or .vcf.bgz (bgzip), or .bcf"),
        "{err}"
    );
    dir.write("same.vcf", "");
    let err = command(&["-o", "same.vcf", "--output-vcf", "same.vcf"]).fails_with(2);
    assert!(err.contains("is also -o"), "{err}");
    dir.write("old.vcf.gz", "old");
    let err = run(&["--output-vcf", "old.vcf.gz"], 1);
    assert!(
        err.contains("old.vcf.gz already exists (use --force"),
        "{err}"
    );
    dir.write("stale.vcf.gz.tbi", "old index");
    let err = run(&["--output-vcf", "stale.vcf.gz"], 1);
    assert!(err.contains("stale.vcf.gz.tbi already exists"), "{err}");
    // BCF numbers contigs by the header's ##contig lines, which ok.vcf lacks: refused after scoring, nothing left.
    let err = run(&["--output-vcf", "out.bcf"], 1);
    assert!(
        err.contains("out.bcf: writing record 1 as BCF: ")
            && err.contains(
                "BCF needs every contig, FILTER, INFO and FORMAT key defined in the header"
            ),
        "{err}"
    );
    dir.write("stale.bcf.csi", "old index");
    let err = run(&["--output-vcf", "stale.bcf"], 1);
    assert!(err.contains("stale.bcf.csi already exists"), "{err}");
    let err = run(&["--output-vcf", "missing/out.vcf"], 1);
    assert!(err.contains("missing"), "{err}");
    let mut listing = dir.listing();
    listing.sort();
    assert_eq!(
        listing,
        [
            "ok.vcf",
            "old.vcf.gz",
            "same.vcf",
            "stale.bcf.csi",
            "stale.vcf.gz.tbi"
        ]
    );
    assert_eq!(std::fs::read(dir.path("old.vcf.gz")).expect("old"), b"old");
    // With --force both are replaced, and the stale index by the new one.
    command(&[
        "--force",
        "-o",
        "out.parquet",
        "--output-vcf",
        "stale.vcf.gz",
    ])
    .ok();
    assert_ne!(
        std::fs::read(dir.path("stale.vcf.gz.tbi")).expect("tbi"),
        b"old index"
    );
    tool(
        "tabix",
        &[
            dir.path("stale.vcf.gz").to_str().expect("utf-8"),
            &format!("{LAMBDA}:1-10"),
        ],
    );
    // Replaced by records out of order, which no index describes: the old index goes too.
    let unsorted = dir.write(
        "unsorted.vcf",
        format!("{HEADER}{LAMBDA}\t9\t.\tA\tC\t.\t.\t.\n{LAMBDA}\t5\t.\tA\tC\t.\t.\t.\n"),
    );
    genomamba(["score", "--device", "cpu", "-q", "--force", "--vcf"])
        .arg(&unsorted)
        .arg("--reference")
        .arg(&reference)
        .args(["-o", "out.parquet", "--output-vcf", "stale.vcf.gz"])
        .current_dir(dir.path(""))
        .ok();
    assert!(dir.path("stale.vcf.gz").exists());
    assert!(
        !dir.path("stale.vcf.gz.tbi").exists(),
        "a stale index is removed"
    );
}

/// A record's END is read as an integer even when the header leaves END undefined (as tabix reads it): the
/// annotated VCF gets the index `tabix -p vcf` makes of it, where noodles alone read END as text and gave none.
#[test]
fn an_undeclared_end_is_indexed_as_tabix_indexes_it() {
    let dir = Dir::new();
    let vcf = dir.write(
        "sv.vcf",
        format!(
            "{HEADER}{LAMBDA}\t2\ts1\tG\tA\t.\t.\t.\n{LAMBDA}\t6\ts2\tG\t<DEL>\t.\t.\tSVTYPE=DEL;END=40000\n\
             {LAMBDA}\t20\ts3\tC\tA\t.\t.\t.\n"
        ),
    );
    let out = dir.path("sv.vcf.gz");
    let (_, _, stderr) = score_telling(
        &dir,
        &vcf,
        &derived("lambda_virus.fa"),
        &["--output-vcf", out.to_str().expect("utf-8 path")],
    );
    assert!(!stderr.contains("no index written"), "{stderr}");
    let copy = dir.path("copy.vcf.gz");
    std::fs::copy(&out, &copy).expect("copy");
    tool("tabix", &["-p", "vcf", copy.to_str().expect("utf-8 path")]);
    let index = |path: &str| {
        let out = std::process::Command::new("bgzip")
            .args(["-dc", path])
            .output()
            .expect("bgzip (tests/run.sh installs it)");
        assert!(out.status.success(), "bgzip -dc {path}");
        out.stdout
    };
    let ours = index(&format!("{}.tbi", out.display()));
    assert_eq!(ours, index(&format!("{}.tbi", copy.display())));
    // The deletion spans 6-40000, so a query far past its POS finds it.
    let queried = tool(
        "tabix",
        &[
            out.to_str().expect("utf-8 path"),
            &format!("{LAMBDA}:30000-30000"),
        ],
    );
    assert_eq!(
        queried
            .lines()
            .map(|l| l.split('\t').nth(2))
            .collect::<Vec<_>>(),
        [Some("s2")]
    );
}
