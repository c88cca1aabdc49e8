//! End-to-end tests of the genomamba binary on the real data in data/.

mod util;

use std::collections::BTreeMap;

use arrow_array::{Array, Float32Array, Int64Array, RecordBatch, StringArray};
use util::{Dir, data, genomamba, read, root, samtools_faidx};

/// The lambda genome's record name (its FASTA header up to the first space).
const LAMBDA: &str = "gi|9626243|ref|NC_001416.1|";
const LAMBDA_LEN: usize = 48_502;

fn f32s(batch: &RecordBatch, name: &str) -> Vec<Option<f32>> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"));
    let arr = col
        .as_any()
        .downcast_ref::<Float32Array>()
        .expect("f32 column");
    (0..arr.len())
        .map(|i| arr.is_valid(i).then(|| arr.value(i)))
        .collect()
}

fn i64s(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"));
    col.as_any()
        .downcast_ref::<Int64Array>()
        .expect("i64 column")
        .values()
        .to_vec()
}

/// The key column as plain strings (it is dictionary-encoded in the file).
fn names(batch: &RecordBatch, name: &str) -> Vec<String> {
    let col = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"));
    let col = arrow_cast::cast(col, &arrow_schema::DataType::Utf8).expect("cast to utf8");
    let arr = col.as_any().downcast_ref::<StringArray>().expect("strings");
    (0..arr.len()).map(|i| arr.value(i).to_string()).collect()
}

#[test]
fn version_is_one_parseable_line() {
    let out = genomamba(["--version"]).ok();
    let line = out.trim_end();
    assert!(!line.contains('\n'));
    let mut words = line.split(' ');
    assert_eq!(words.next(), Some("genomamba"));
    let version = words.next().expect("a version");
    assert_eq!(version.split('.').count(), 3, "{line}");
}

#[test]
fn predict_matches_the_transformers_golden_for_any_chunk_and_window() {
    let golden = root().join("tests/golden/mamba/small");
    let bytes = std::fs::read(golden.join("expected.safetensors")).expect("golden");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let probs = tensors.tensor("base_probs").expect("base_probs");
    let expected: Vec<f32> = probs
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let n = expected.len() / 4;
    let dir = Dir::new();
    for (chunk, window) in [("1000", "0"), ("65536", "0"), ("7", "1048576")] {
        let out = dir.path(&format!("p-{chunk}-{window}.parquet"));
        genomamba(["predict"])
            .arg(util::derived("lambda_virus.fa"))
            .arg("-r")
            .arg(format!("{LAMBDA}:1-{n}"))
            .args(["--model"])
            .arg(golden.join("hf"))
            .args([
                "--chunk", chunk, "--window", window, "--device", "cpu", "-q", "-o",
            ])
            .arg(&out)
            .ok();
        let (batch, _) = read(&out);
        assert_eq!(batch.num_rows(), n);
        assert_eq!(i64s(&batch, "start"), (0..n as i64).collect::<Vec<_>>());
        let cols = ["p_a", "p_c", "p_g", "p_t"].map(|c| f32s(&batch, c));
        assert!(
            cols.iter().all(|c| c[0].is_none()),
            "position 0 has no context"
        );
        let mut worst = 0f32;
        for row in 1..n {
            for (k, col) in cols.iter().enumerate() {
                let got = col[row].expect("probability");
                worst = worst.max((got - expected[row * 4 + k]).abs());
            }
        }
        assert!(
            worst < 1e-5,
            "chunk {chunk} window {window}: max abs error {worst}"
        );
    }
}

#[test]
fn predict_on_the_embedded_model_covers_every_base_once() {
    let dir = Dir::new();
    let out = dir.path("lambda.parquet");
    let stderr = {
        let (o, _) = genomamba(["predict"])
            .arg(data("genomes/lambda_virus.fa"))
            .args([
                "--window",
                "16384",
                "--overlap",
                "1024",
                "--device",
                "cpu",
                "-o",
            ])
            .arg(&out)
            .output();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(
        stderr.contains("1 records, 48502 bases, 48502 rows"),
        "summary line: {stderr}"
    );
    let (batch, meta) = read(&out);
    assert_eq!(batch.num_rows(), LAMBDA_LEN);
    assert_eq!(
        i64s(&batch, "start"),
        (0..LAMBDA_LEN as i64).collect::<Vec<_>>()
    );
    assert!(names(&batch, "chrom").iter().all(|n| n == LAMBDA));
    let p = ["p_a", "p_c", "p_g", "p_t"].map(|c| f32s(&batch, c));
    // Only the very first base has no context: later windows start from their burn-in.
    let nulls: Vec<usize> = (0..LAMBDA_LEN).filter(|&i| p[0][i].is_none()).collect();
    assert_eq!(nulls, vec![0]);
    for i in 1..LAMBDA_LEN {
        let sum: f32 = p.iter().map(|c| c[i].expect("p")).sum();
        assert!((sum - 1.0).abs() < 1e-5, "row {i}: sum {sum}");
    }
    // The model has learned something: better than uniform (2 bits per base) on a genome it never saw.
    let logp = f32s(&batch, "logp_ref");
    let bits: f64 = logp
        .iter()
        .flatten()
        .map(|&l| -f64::from(l) / std::f64::consts::LN_2)
        .sum::<f64>()
        / logp.iter().flatten().count() as f64;
    assert!(bits < 1.99, "bits per base {bits}");
    assert_eq!(meta["table"], "predictions");
    assert_eq!(meta["inputs"][0]["sequences"][0]["length"], 48502);
    assert_eq!(
        meta["inputs"][0]["sequences"][0]["md5"]
            .as_str()
            .map(str::len),
        Some(32)
    );
    assert_eq!(meta["window"], 16384);
    assert_eq!(meta["model"]["format"], "hf-mamba");
    assert_eq!(meta["compute_dtype"], "f32");
}

#[test]
fn same_command_gives_the_same_bytes_whatever_the_threads() {
    let dirs = [Dir::new(), Dir::new()];
    let mut files = Vec::new();
    for (threads, dir) in ["1", "2"].into_iter().zip(&dirs) {
        let out = dir.path("same.parquet");
        genomamba(["embed"])
            .arg(data("mixed.fa"))
            .args([
                "--pool",
                "100",
                "--window",
                "4096",
                "--device",
                "cpu",
                "-q",
                "--threads",
                threads,
                "-o",
            ])
            .arg("same.parquet")
            .current_dir(dir.path(""))
            .ok();
        files.push(std::fs::read(&out).expect("read"));
    }
    assert!(
        files[0] == files[1],
        "outputs differ between --threads 1 and 2"
    );
}

#[test]
fn embed_pools_bins_windows_and_records() {
    let dir = Dir::new();
    let run = |pool: &str| {
        let out = dir.path(&format!("e-{pool}.parquet"));
        genomamba(["embed"])
            .arg(data("genomes/lambda_virus.fa"))
            .args([
                "--pool", pool, "--window", "16384", "--device", "cpu", "-q", "-o",
            ])
            .arg(&out)
            .ok();
        read(&out).0
    };
    let bins = run("1000");
    assert_eq!(bins.num_rows(), LAMBDA_LEN.div_ceil(1000));
    let (starts, ends) = (i64s(&bins, "start"), i64s(&bins, "end"));
    assert_eq!(starts[1], 1000);
    assert_eq!(*ends.last().expect("rows"), LAMBDA_LEN as i64);
    let windows = run("window");
    assert_eq!(i64s(&windows, "start"), vec![0, 16384, 32768]);
    let record = run("record");
    assert_eq!(record.num_rows(), 1);
    assert_eq!(i64s(&record, "end"), vec![LAMBDA_LEN as i64]);
    let emb = record.column_by_name("embedding").expect("embedding");
    match emb.data_type() {
        arrow_schema::DataType::FixedSizeList(_, d) => assert!(*d > 0),
        other => panic!("embedding is {other:?}"),
    }
}

#[test]
fn reads_get_read_names_and_alignment_columns() {
    let dir = Dir::new();
    let out = dir.path("bam.parquet");
    genomamba(["embed"])
        .arg(data("reads/lambda.bam"))
        .args(["--device", "cpu", "-q", "-o"])
        .arg(&out)
        .ok();
    let (batch, _) = read(&out);
    assert!(batch.num_rows() > 100);
    for col in [
        "read_name",
        "ref_name",
        "ref_start",
        "strand",
        "mapq",
        "flag",
    ] {
        assert!(batch.column_by_name(col).is_some(), "column {col}");
    }
    let names = names(&batch, "read_name");
    let distinct: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "one row per read by default");
    // Unmapped reads (flag 0x4; lambda.bam has 110, some placed beside their mates) have no alignment columns.
    let col = |name: &str| batch.column_by_name(name).expect(name).clone();
    let flag = col("flag");
    let flag = flag
        .as_any()
        .downcast_ref::<arrow_array::UInt16Array>()
        .expect("flag u16");
    let unmapped: Vec<usize> = (0..batch.num_rows())
        .filter(|&i| flag.value(i) & 4 != 0)
        .collect();
    assert_eq!(unmapped.len(), 110);
    for name in ["ref_name", "ref_start", "strand", "mapq"] {
        let c = col(name);
        assert!(
            unmapped.iter().all(|&i| c.is_null(i)),
            "{name} of unmapped reads"
        );
        assert!(
            (0..batch.num_rows()).any(|i| flag.value(i) & 4 == 0 && c.is_valid(i)),
            "{name} of mapped reads"
        );
    }

    // The table follows what the input holds, not its name: the same BAM on standard input or under a name
    // that says nothing gets the same reads table, and so does gzipped FASTQ on standard input.
    let unnamed = dir.write(
        "reads.dat",
        std::fs::read(data("reads/lambda.bam")).expect("lambda.bam"),
    );
    for (stdin, input, name) in [
        (true, data("reads/lambda.bam"), "stdin"),
        (false, unnamed, "unnamed"),
    ] {
        let other = dir.path(&format!("{name}.parquet"));
        let cmd = genomamba(["embed"]);
        let cmd = if stdin {
            cmd.arg("-").stdin_file(&input)
        } else {
            cmd.arg(&input)
        };
        cmd.args(["--device", "cpu", "-q", "-o"]).arg(&other).ok();
        let got = read(&other).0;
        assert!(same_table(&got, &batch), "{name}: not the file's table");
    }
    let fastq = data("reads/lambda_long.fq.gz");
    let (from_file, from_stdin) = (dir.path("fq.parquet"), dir.path("fq_stdin.parquet"));
    genomamba(["predict"])
        .arg(&fastq)
        .args(["--device", "cpu", "-q", "-o"])
        .arg(&from_file)
        .ok();
    genomamba(["predict", "-", "--device", "cpu", "-q", "-o"])
        .arg(&from_stdin)
        .stdin_file(&fastq)
        .ok();
    let (want, got) = (read(&from_file).0, read(&from_stdin).0);
    assert!(want.column_by_name("read_name").is_some());
    assert!(same_table(&got, &want), "FASTQ on standard input");
}

/// `predict --columns` writes the value columns asked for, in the table's order, with the values of the full
/// table, and always the key, coordinate, `ref` and alignment columns; the file is smaller for it.
#[test]
fn predict_writes_only_the_value_columns_asked_for() {
    let dir = Dir::new();
    let run = |input: &std::path::Path, name: &str, columns: &[&str]| {
        let out = dir.path(name);
        genomamba(["predict", "--device", "cpu", "-q", "-o"])
            .arg(&out)
            .arg(input)
            .args(columns.iter().copied())
            .ok();
        let bytes = std::fs::metadata(&out).expect("output").len();
        (read(&out).0, bytes)
    };
    let fields = |b: &RecordBatch| -> Vec<String> {
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    };
    let lambda = data("genomes/lambda_virus.fa");
    let (full, full_bytes) = run(&lambda, "full.parquet", &[]);
    for (columns, want, most) in [
        (
            &["--columns", "logp_ref"][..],
            &["chrom", "start", "end", "ref", "logp_ref"][..],
            0.3,
        ),
        (
            &["--columns", "logp_ref,probs", "--columns", "p_a"],
            &[
                "chrom", "start", "end", "ref", "p_a", "p_c", "p_g", "p_t", "logp_ref",
            ],
            0.9,
        ),
    ] {
        let (some, bytes) = run(&lambda, "some.parquet", columns);
        assert_eq!(fields(&some), want, "{columns:?}");
        for name in want {
            assert_eq!(
                some.column_by_name(name),
                full.column_by_name(name),
                "{name}"
            );
        }
        assert!(
            (bytes as f64) < most * full_bytes as f64,
            "{columns:?}: {bytes} bytes against {full_bytes}"
        );
        std::fs::remove_file(dir.path("some.parquet")).expect("remove");
    }
    // Reads keep their alignment columns.
    let (reads, _) = run(
        &data("reads/lambda.bam"),
        "reads.parquet",
        &["--columns", "entropy"],
    );
    assert_eq!(
        fields(&reads),
        [
            "read_name",
            "start",
            "end",
            "ref",
            "entropy",
            "ref_name",
            "ref_start",
            "strand",
            "mapq",
            "flag"
        ]
    );
    let err = genomamba(["predict", "--columns", "score", "-o"])
        .arg(dir.path("x.parquet"))
        .arg(&lambda)
        .fails_with(2);
    assert!(err.contains("logp_ref") && err.contains("probs"), "{err}");
    assert!(!dir.path("x.parquet").exists());
}

/// Mates of two FASTQ files whose descriptions carry Illumina's mate number (`@r1 1:N:0:ACGT`) are named
/// `r1/1` and `r2/1` as in an alignment table, so their rows match the BAM made from them read for read.
#[test]
fn illumina_mates_in_fastq_are_named_as_in_bam() {
    let dir = Dir::new();
    let casava = |mate: u8| {
        let text = gunzipped(&data(&format!("reads/lambda_pairs_{mate}.fq.gz")));
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i % 4 == 0 {
                    format!("{l} {mate}:N:0:ACGTAC")
                } else {
                    l.to_string()
                }
            })
            .collect();
        dir.write(&format!("r{mate}.fq"), lines.join("\n") + "\n")
    };
    let (r1, r2) = (casava(1), casava(2));
    let fastq = dir.path("fastq.parquet");
    let (run, stderr) = genomamba(["predict", "--device", "cpu", "-o"])
        .arg(&fastq)
        .arg(&r1)
        .arg(&r2)
        .output();
    assert!(run.status.success(), "{stderr}");
    assert!(!stderr.contains("both begin with read"), "{stderr}");
    let bam = dir.path("bam.parquet");
    genomamba(["predict", "--device", "cpu", "-q", "-o"])
        .arg(&bam)
        .arg(data("reads/lambda.bam"))
        .ok();
    let by_read = |path: &std::path::Path| {
        let (batch, _) = read(path);
        let mut reads: BTreeMap<String, Vec<Option<f32>>> = BTreeMap::new();
        for (name, logp) in names(&batch, "read_name")
            .into_iter()
            .zip(f32s(&batch, "logp_ref"))
        {
            reads.entry(name).or_default().push(logp);
        }
        reads
    };
    let (from_fastq, from_bam) = (by_read(&fastq), by_read(&bam));
    assert_eq!(from_fastq.len(), 2000);
    assert!(from_fastq.contains_key("r1/1") && from_fastq.contains_key("r1000/2"));
    for (name, logp) in &from_fastq {
        assert_eq!(Some(logp), from_bam.get(name), "{name}");
    }
}

/// A gzip file's text, through `gzip -dc`.
fn gunzipped(path: &std::path::Path) -> String {
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("gzip");
    assert!(out.status.success(), "gzip -dc {}", path.display());
    String::from_utf8(out.stdout).expect("text")
}

/// Same columns (names, types) and values; the metadata (command line, input paths) may differ.
fn same_table(a: &RecordBatch, b: &RecordBatch) -> bool {
    let fields = |x: &RecordBatch| {
        x.schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect::<Vec<_>>()
    };
    fields(a) == fields(b) && a.columns() == b.columns()
}

#[test]
fn existing_output_is_kept_without_force() {
    let dir = Dir::new();
    let out = dir.write("exists.parquet", b"precious");
    let err = genomamba(["predict"])
        .arg(data("genomes/lambda_virus.fa"))
        .args(["--device", "cpu", "-o"])
        .arg(&out)
        .fails_with(1);
    assert!(err.starts_with("genomamba: error:"), "{err}");
    assert!(err.contains("--force") || err.contains("exists"), "{err}");
    assert_eq!(std::fs::read(&out).expect("kept"), b"precious");
}

#[test]
fn bad_bases_fail_cleanly_with_file_record_and_position_and_leave_nothing() {
    let dir = Dir::new();
    let fasta = dir.write("bad.fa", b">good\nACGTACGTACGT\n>broken\nACGTAC!GT\n");
    let out = dir.path("out.parquet");
    let err = genomamba(["predict"])
        .arg(&fasta)
        .args(["--device", "cpu", "-o"])
        .arg(&out)
        .fails_with(1);
    assert!(err.contains("bad.fa"), "names the file: {err}");
    assert!(err.contains("broken"), "names the record: {err}");
    assert_eq!(
        dir.listing(),
        vec!["bad.fa"],
        "no output and no temporary file"
    );
}

/// Runs `genomamba predict` on lambda with `extra` arguments in `dir` and returns stderr, asserting exit `code`.
fn predict_fails(dir: &Dir, extra: &[&str], code: i32) -> String {
    genomamba(["predict"])
        .arg(data("genomes/lambda_virus.fa"))
        .args(["--device", "cpu", "-q"])
        .args(extra.iter().copied())
        .current_dir(dir.path(""))
        .fails_with(code)
}

#[test]
fn bad_use_gets_a_clear_error_the_right_exit_code_and_no_output() {
    let dir = Dir::new();
    let err = predict_fails(&dir, &["--bogus", "-o", "x.parquet"], 2);
    assert!(err.contains("--bogus"), "{err}");
    let err = genomamba(["predict", "missing.fa", "-o", "x.parquet"])
        .current_dir(dir.path(""))
        .fails_with(1);
    assert!(
        err.contains("genomamba: error: input missing.fa: No such file"),
        "{err}"
    );
    std::fs::create_dir(dir.path("not-a-model")).expect("mkdir");
    let err = predict_fails(&dir, &["--model", "not-a-model", "-o", "x.parquet"], 1);
    assert!(err.contains("not-a-model/config.json"), "{err}");
    let err = predict_fails(&dir, &["-o", "no/such/dir/x.parquet"], 1);
    assert!(
        err.contains("the directory no/such/dir does not exist"),
        "{err}"
    );
    assert_eq!(dir.listing(), vec!["not-a-model"], "nothing written");

    // The output is an input: refused even with --force, the input untouched.
    let input = dir.write(
        "genome.fa",
        std::fs::read(data("genomes/lambda_virus.fa")).expect("lambda"),
    );
    let err = genomamba(["predict", "genome.fa", "--force", "-o", "./genome.fa"])
        .current_dir(dir.path(""))
        .fails_with(2);
    assert!(err.contains("is an input: the run reads it"), "{err}");
    assert_eq!(
        std::fs::read(&input).expect("input"),
        std::fs::read(data("genomes/lambda_virus.fa")).expect("lambda")
    );
    // Standard input twice.
    let err = genomamba(["predict", "-", "-", "-o", "x.parquet"])
        .current_dir(dir.path(""))
        .fails_with(2);
    assert!(
        err.contains("standard input (-) is given more than once"),
        "{err}"
    );
    // So is any other file the run reads: an input's index, the --regions BED, a file of the --model.
    let fai = std::fs::read(data("derived/lambda_virus.fa.fai")).expect("fai");
    dir.write("genome.fa.fai", fai.clone());
    dir.write("r.bed", b"gi|9626243|ref|NC_001416.1|\t0\t100\n");
    dir.write("not-a-model/notes.txt", b"kept");
    for (output, extra, role) in [
        ("genome.fa.fai", &[][..], "the index of an input genome.fa"),
        ("r.bed", &["--regions", "r.bed"][..], "the --regions BED"),
        (
            "not-a-model/notes.txt",
            &["--model", "not-a-model"][..],
            "a file of the --model not-a-model",
        ),
    ] {
        let mut args = vec!["predict", "genome.fa", "--force", "-o", output];
        args.extend(extra);
        let err = genomamba(args).current_dir(dir.path("")).fails_with(2);
        assert!(
            err.contains(&format!("the output {output} is {role}: the run reads it")),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(dir.path("genome.fa.fai")).expect("fai"), fai);
    assert_eq!(
        std::fs::read(dir.path("not-a-model/notes.txt")).expect("kept"),
        b"kept"
    );
}

#[test]
fn a_full_disk_fails_cleanly_and_leaves_nothing() {
    // The shell's file-size limit stands in for a full disk: writes past 64 KiB fail with EFBIG.
    let dir = Dir::new();
    let line = format!(
        "ulimit -f 64; trap '' XFSZ; exec '{}' predict '{}' --device cpu -q -o out.parquet",
        util::binary().display(),
        data("genomes/lambda_virus.fa").display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &line])
        .current_dir(dir.path(""))
        .output()
        .expect("sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("genomamba: error: no output written to out.parquet"),
        "{stderr}"
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(
        dir.listing().is_empty(),
        "no output, no temporary file: {:?}",
        dir.listing()
    );
}

#[test]
fn bf16_on_the_cpu_is_refused() {
    let dir = Dir::new();
    let err = genomamba(["predict"])
        .arg(data("genomes/lambda_virus.fa"))
        .args([
            "--device",
            "cpu",
            "--precision",
            "bf16",
            "-q",
            "-o",
            "x.parquet",
        ])
        .current_dir(dir.path(""))
        .fails_with(2);
    assert!(
        err.contains("--precision bf16 needs the CUDA engine"),
        "{err}"
    );
    assert!(dir.listing().is_empty());
}

#[test]
fn cuda_without_a_gpu_is_a_clear_error() {
    if std::path::Path::new("/dev/nvidia0").exists() {
        return; // a GPU machine runs tests/gpu instead
    }
    let dir = Dir::new();
    let err = genomamba(["predict"])
        .arg(data("genomes/lambda_virus.fa"))
        .args(["--device", "cuda", "-q", "-o", "x.parquet"])
        .current_dir(dir.path(""))
        .fails_with(1);
    assert!(
        err.starts_with("genomamba: error: starting the CUDA engine"),
        "{err}"
    );
    assert!(dir.listing().is_empty());
}

/// Probabilities of two prediction tables agree within `tol`, and so do their keys and coordinates.
fn assert_same_predictions(got: &RecordBatch, want: &RecordBatch, key: &str, tol: f32) {
    assert_eq!(got.num_rows(), want.num_rows());
    assert_eq!(names(got, key), names(want, key));
    assert_eq!(i64s(got, "start"), i64s(want, "start"));
    for col in ["p_a", "p_c", "p_g", "p_t"] {
        for (i, (a, b)) in f32s(got, col).iter().zip(&f32s(want, col)).enumerate() {
            match (a, b) {
                (Some(a), Some(b)) => assert!((a - b).abs() < tol, "{col} row {i}: {a} vs {b}"),
                (None, None) => {}
                _ => panic!("{col} row {i}: {a:?} vs {b:?}"),
            }
        }
    }
}

/// Embedding rows of two tables agree within `tol` (relative error per row), and so do their coordinates.
fn assert_same_embeddings(got: &RecordBatch, want: &RecordBatch, tol: f32) {
    assert_eq!(i64s(got, "start"), i64s(want, "start"));
    let rows = |b: &RecordBatch| -> Vec<Vec<f32>> {
        let list = b
            .column_by_name("embedding")
            .expect("embedding")
            .as_any()
            .downcast_ref::<arrow_array::FixedSizeListArray>()
            .expect("fixed-size list")
            .clone();
        (0..list.len())
            .map(|i| {
                let v = list.value(i);
                let v = v.as_any().downcast_ref::<Float32Array>().expect("f32");
                v.values().to_vec()
            })
            .collect()
    };
    let (g, w) = (rows(got), rows(want));
    assert_eq!(g.len(), w.len());
    for (i, (g, w)) in g.iter().zip(&w).enumerate() {
        let num: f32 = g.iter().zip(w).map(|(a, b)| (a - b) * (a - b)).sum();
        let den: f32 = w.iter().map(|b| b * b).sum();
        let rel = (num / den.max(1e-30)).sqrt();
        assert!(rel < tol, "embedding row {i}: rel err {rel}");
    }
}

/// `--device cuda` against `--device cpu`, end to end (reader, windower, engine, Parquet): genome records
/// with N runs in several windows, and reads of many lengths, which the CUDA engine runs in batches (of seven
/// with `--batch 7`; both strands for `--strand both`). Same rows and coordinates, probabilities within
/// 1e-5, pooled embeddings within 1e-4 (relative, per row); `--device auto` picks the GPU and the metadata
/// names it. Needs a GPU, or the CPU emulation of CUDA (tests/gpu/emu/run.sh runs it there).
#[test]
#[ignore = "needs a CUDA device (or tests/gpu/emu)"]
fn cuda_matches_cpu_end_to_end() {
    let dir = Dir::new();
    let run = |task: &str, input: &str, device: &str, extra: &[&str]| {
        let out = dir.path(&format!("{task}-{device}-{}.parquet", extra.join("")));
        genomamba([task])
            .arg(data(input))
            .args(["--device", device])
            .args(extra)
            .args(["-q", "--force", "-o"])
            .arg(&out)
            .ok();
        read(&out)
    };
    let windows = ["--window", "2048", "--overlap", "256"];
    let (cpu, _) = run("predict", "mixed.fa", "cpu", &windows);
    let (gpu, meta) = run("predict", "mixed.fa", "auto", &windows);
    assert!(
        meta["device"]
            .as_str()
            .is_some_and(|d| d.starts_with("cuda:0 (")),
        "--device auto: {}",
        meta["device"]
    );
    assert_same_predictions(&gpu, &cpu, "chrom", 1e-5);
    let pool = ["--pool", "100", "--window", "2048", "--overlap", "256"];
    let (cpu, _) = run("embed", "mixed.fa", "cpu", &pool);
    let (gpu, _) = run("embed", "mixed.fa", "cuda", &pool);
    assert_same_embeddings(&gpu, &cpu, 1e-4);

    let reads = "reads/lambda_long.fq.gz";
    let (cpu, _) = run("predict", reads, "cpu", &[]);
    // Seven reads per batch: eight batches, the last of one read.
    let (gpu, meta) = run("predict", reads, "cuda", &["--batch", "7"]);
    assert_eq!(meta["batch"], 7);
    assert_same_predictions(&gpu, &cpu, "read_name", 1e-5);
    let both = ["--strand", "both"];
    let (cpu, _) = run("embed", reads, "cpu", &both);
    let (gpu, _) = run("embed", reads, "cuda", &both);
    assert_eq!(gpu.num_rows(), 50);
    assert_same_embeddings(&gpu, &cpu, 1e-4);

    // Scores: the windows holding the calls' sites, as regions, in batches.
    let score = |device: &str, extra: &[&str]| {
        let out = dir.path(&format!("score-{device}.parquet"));
        genomamba([
            "score",
            "--device",
            device,
            "--window",
            "1024",
            "--overlap",
            "128",
        ])
        .arg("--vcf")
        .arg(data("variants/lambda_calls.vcf.gz"))
        .arg("--reference")
        .arg(util::derived("lambda_virus.fa"))
        .args(extra.iter().copied())
        .args(["-q", "--force", "-o"])
        .arg(&out)
        .ok();
        read(&out).0
    };
    // Indels too: each window's prefix walked once, both haplotypes run from its saved state (save_state and
    // restore_state on the GPU); sums of 20 or so ln p, each within the bound below.
    let (cpu, gpu) = (
        score("cpu", &["--indel-flank", "16"]),
        score("cuda", &["--indel-flank", "16"]),
    );
    for column in ["logp_ref", "logp_alt"] {
        let (c, g) = (f32s(&cpu, column), f32s(&gpu, column));
        assert_eq!(g.iter().filter(|v| v.is_some()).count(), 35);
        for (c, g) in c.iter().zip(&g) {
            let (c, g) = (c.expect("scored"), g.expect("scored"));
            assert!((c - g).abs() < 2e-3, "{column}: cpu {c}, cuda {g}");
        }
    }
    let (cpu, gpu) = (score("cpu", &[]), score("cuda", &[]));
    assert_eq!(gpu.num_rows(), 35);
    for column in ["logp_ref", "logp_alt"] {
        let (c, g) = (f32s(&cpu, column), f32s(&gpu, column));
        assert_eq!(g.iter().filter(|v| v.is_some()).count(), 18);
        for (c, g) in c.iter().zip(&g) {
            assert_eq!(c.is_some(), g.is_some());
            if let (Some(c), Some(g)) = (c, g) {
                // Probabilities within 1e-5 (the predictions' bound), and above 0.08 at these sites: ln p
                // within 1.25e-4.
                assert!((c - g).abs() < 1.25e-4, "{column}: cpu {c}, cuda {g}");
            }
        }
    }
}

/// Ctrl-C, and SIGTERM and SIGHUP (what schedulers, `timeout` and a closed terminal send), stop the run with
/// exit 128 + the signal's number and leave nothing, not even the temporary file.
#[test]
fn signals_stop_the_run_with_128_plus_the_signal_and_leave_nothing() {
    // With 1,000-base windows a step of the engine runs ~100 windows with their burn-in (seconds here): the
    // watchdog stops the process 2 s after the signal if the run has not reached its next check by then.
    for (signal, code, window) in [
        ("INT", 130, &[][..]),
        ("TERM", 143, &[]),
        ("HUP", 129, &[]),
        ("TERM", 143, &["--window", "1000"]),
    ] {
        let dir = Dir::new();
        let child = std::process::Command::new(util::binary())
            .arg("predict")
            .arg(util::derived("ecoli536.fa"))
            .args(["--device", "cpu", "-q", "-o", "out.parquet"])
            .args(window)
            .env("TMPDIR", dir.path(""))
            .current_dir(dir.path(""))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Wait until the run is under way (its temporary output exists), then signal it.
        let started = std::time::Instant::now();
        while dir.listing().is_empty() && started.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            !dir.listing().is_empty(),
            "the run never started its output"
        );
        let pid = child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args([format!("-{signal}").as_str(), &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "SIG{signal}: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert!(
            dir.listing().is_empty(),
            "SIG{signal} left behind: {:?}",
            dir.listing()
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = Dir::new();
    let out = dir.path("x.parquet");
    let err = genomamba(["embed"])
        .arg(data("genomes/lambda_virus.fa"))
        .args(["--pool", "zero", "-o"])
        .arg(&out)
        .fails_with(2);
    assert!(err.contains("--pool"), "{err}");
    genomamba(["predict", "--window"]).fails_with(2);
    let err = genomamba(["predict"])
        .arg(data("reads/lambda_long.fq.gz"))
        .args(["-r", "chr1:1-10", "-o"])
        .arg(&out)
        .fails_with(2);
    assert!(err.contains("FASTQ reads have no coordinates"), "{err}");
    assert!(!out.exists());
    // Options of alignments given with a genome: run, with a word that they did nothing.
    let (output, line) = genomamba(["predict", "--device", "cpu"])
        .arg(util::derived("lambda_virus.fa"))
        .args([
            "-r",
            "gi|9626243|ref|NC_001416.1|:1-100",
            "--min-mapq",
            "5",
            "-o",
        ])
        .arg(&out)
        .output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{line}: {stderr}");
    assert!(
        stderr
            .contains("warning: --min-mapq applies only to BAM and CRAM input; ignored for FASTA"),
        "{stderr}"
    );
}

#[test]
fn regions_command_shards_on_window_boundaries() {
    let bed = genomamba(["regions"])
        .arg(data("genomes/lambda_virus.fa"))
        .args(["--max-bases", "20000", "--window", "8192"])
        .ok();
    let rows: Vec<Vec<&str>> = bed.lines().map(|l| l.split('\t').collect()).collect();
    let mut covered = 0;
    for (k, row) in rows.iter().enumerate() {
        let (start, end): (u64, u64) =
            (row[1].parse().expect("start"), row[2].parse().expect("end"));
        assert_eq!(start, covered);
        assert_eq!(start % 8192, 0);
        assert!(end - start <= 20000);
        assert_eq!(
            row[3],
            format!("chrom=gi%7C9626243%7Cref%7CNC_001416.1%7C/part-{k:05}")
        );
        covered = end;
    }
    assert_eq!(covered, LAMBDA_LEN as u64);

    // -o writes the same BED whole, never over an existing file without --force, never over its input.
    let dir = Dir::new();
    let genome = dir.write(
        "g.fa",
        std::fs::read(data("genomes/lambda_virus.fa")).expect("lambda"),
    );
    let regions = |out: &str, extra: &[&str]| {
        genomamba(["regions"])
            .arg(&genome)
            .args(["--max-bases", "20000", "--window", "8192", "-o", out])
            .args(extra.iter().copied())
            .current_dir(dir.path(""))
    };
    regions("shards.bed", &[]).ok();
    assert_eq!(
        std::fs::read_to_string(dir.path("shards.bed")).expect("bed"),
        bed
    );
    dir.write("shards.bed", "precious");
    let err = regions("shards.bed", &[]).fails_with(1);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path("shards.bed")).expect("kept"),
        "precious"
    );
    regions("shards.bed", &["--force"]).ok();
    assert_eq!(
        std::fs::read_to_string(dir.path("shards.bed")).expect("bed"),
        bed
    );
    let err = regions("g.fa", &["--force"]).fails_with(2);
    assert!(err.contains("is an input: the run reads it"), "{err}");
    assert_eq!(regions("-", &[]).ok(), bed, "-o - is standard output");
    assert_eq!(
        dir.listing(),
        vec!["g.fa", "shards.bed"],
        "no temporary file left"
    );
    // An index beside the genome is checked against it: one made for another genome is refused, not cut into
    // shards of records the genome does not have.
    dir.write(
        "g.fa.fai",
        std::fs::read(data("derived/mixed.fa.fai")).expect("fai"),
    );
    let err = regions("-", &[]).fails_with(1);
    assert!(
        err.contains("g.fa: record 'lambda_0_3000': the .fai index does not match the FASTA"),
        "{err}"
    );
    std::fs::remove_file(dir.path("g.fa.fai")).expect("rm");
    // Shards hold whole windows: a bound below one window cannot be kept.
    let err = genomamba(["regions"])
        .arg(&genome)
        .args(["--max-bases", "4095", "--window", "4096"])
        .fails_with(2);
    assert!(
        err.contains("--max-bases 4095 is less than --window 4096"),
        "{err}"
    );
    // Embed's --pool must give the rows of one run: its bins may not straddle a shard's start, and `record`
    // may not pool a record that is split.
    let pooled = |pool: &str, max: &str| {
        genomamba([
            "regions",
            "--window",
            "8192",
            "--max-bases",
            max,
            "--pool",
            pool,
        ])
        .arg(&genome)
    };
    assert_eq!(pooled("1024", "20000").ok(), bed);
    assert_eq!(pooled("window", "20000").ok(), bed);
    let err = pooled("1000", "20000").fails_with(2);
    assert!(
        err.contains("--pool 1000 does not divide the window (8192 bases)")
            && err.contains("e.g. 1024"),
        "{err}"
    );
    let err = pooled("record", "20000").fails_with(2);
    assert!(
        err.contains("--pool record") && err.contains("gi|9626243|ref|NC_001416.1| is split"),
        "{err}"
    );
    assert_eq!(pooled("record", "50000").ok().lines().count(), 1);
    let err = pooled("0", "20000").fails_with(2);
    assert!(err.contains("--pool takes a number"), "{err}");
}

/// Outputs that are not files are refused before anything runs: standard output (`-o -`), and an existing
/// device or pipe even with --force (the rename would replace it: `-o /dev/null --force` as root replaced the
/// device); an empty BED is an error, not a run over every record.
#[test]
fn outputs_must_be_files_and_an_empty_bed_runs_nothing() {
    let dir = Dir::new();
    let lambda = data("genomes/lambda_virus.fa");
    let err = genomamba(["predict"])
        .arg(&lambda)
        .args(["--device", "cpu", "-o", "-"])
        .current_dir(dir.path(""))
        .fails_with(2);
    assert!(err.contains("-o -"), "{err}");
    let fifo = dir.path("pipe.parquet");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let err = genomamba(["predict"])
        .arg(&lambda)
        .args(["--device", "cpu", "--force", "-o"])
        .arg(&fifo)
        .fails_with(1);
    assert!(err.contains("not a regular file"), "{err}");
    {
        use std::os::unix::fs::FileTypeExt as _;
        let kept = std::fs::symlink_metadata(&fifo).expect("fifo");
        assert!(kept.file_type().is_fifo(), "the pipe is still a pipe");
    }
    let bed = dir.write("empty.bed", "track name=nothing\n# no intervals\n\n");
    let err = genomamba(["predict"])
        .arg(&lambda)
        .args(["--device", "cpu", "--regions"])
        .arg(&bed)
        .args(["-o", "out.parquet"])
        .current_dir(dir.path(""))
        .fails_with(1);
    assert!(err.contains("empty.bed: no intervals"), "{err}");
    assert_eq!(dir.listing(), vec!["empty.bed", "pipe.parquet"]);
}

#[test]
fn gzip_and_bgzip_bed_files_give_the_rows_of_the_plain_one() {
    let dir = Dir::new();
    let genome = util::derived("lambda_virus.fa");
    let bed = dir.write(
        "r.bed",
        "track name=two\ngi|9626243|ref|NC_001416.1|\t100\t400\tfirst\n\
         gi|9626243|ref|NC_001416.1|\t30000\t30250\n",
    );
    let run = |bed: &std::path::Path, out: &str| {
        genomamba(["predict"])
            .arg(&genome)
            .args(["--device", "cpu", "-q", "--regions"])
            .arg(bed)
            .args(["-o", out])
            .current_dir(dir.path(""))
            .ok();
        read(&dir.path(out)).0
    };
    let plain = run(&bed, "plain.parquet");
    assert_eq!(plain.num_rows(), 550);
    for (program, name) in [("gzip", "r.gz.bed.gz"), ("bgzip", "r.bgzip.bed.gz")] {
        let compressed = std::process::Command::new(program)
            .arg("-c")
            .arg(&bed)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(compressed.status.success(), "{program}");
        let path = dir.write(name, compressed.stdout);
        let got = run(&path, &format!("{program}.parquet"));
        assert!(same_table(&got, &plain), "{program}: the plain BED's rows");
    }
}

/// Runs `args` once over the whole genome and once over the shards `genomamba regions` cuts (through
/// `--regions`, bgzip input), and returns both tables.
fn whole_and_sharded(args: &[&str], window: &str) -> (RecordBatch, RecordBatch) {
    let dir = Dir::new();
    let genome = util::derived("lambda_virus.fa.gz");
    let bed = genomamba(["regions"])
        .arg(&genome)
        .args(["--max-bases", "10000", "--window", window])
        .ok();
    assert!(bed.lines().count() >= 5, "several shards:\n{bed}");
    let bed = dir.write("shards.bed", bed);
    let common = [
        "--window",
        window,
        "--overlap",
        "700",
        "--chunk",
        "3000",
        "-q",
    ];
    let whole = dir.path("whole.parquet");
    genomamba(args.iter().copied())
        .arg(&genome)
        .args(common)
        .arg("-o")
        .arg(&whole)
        .ok();
    let sharded = dir.path("sharded.parquet");
    genomamba(args.iter().copied())
        .arg(&genome)
        .args(common)
        .arg("--regions")
        .arg(&bed)
        .arg("-o")
        .arg(&sharded)
        .ok();
    (read(&whole).0, read(&sharded).0)
}

#[test]
fn sharded_predictions_equal_one_run_over_the_whole_genome() {
    let (whole, sharded) = whole_and_sharded(&["predict"], "4096");
    assert_eq!(sharded.num_rows(), whole.num_rows());
    for column in ["start", "end"] {
        assert_eq!(i64s(&sharded, column), i64s(&whole, column), "{column}");
    }
    assert_eq!(names(&sharded, "chrom"), names(&whole, "chrom"));
    for column in ["p_a", "p_c", "p_g", "p_t", "entropy", "logp_ref"] {
        assert_eq!(f32s(&sharded, column), f32s(&whole, column), "{column}");
    }
}

/// Lays `model_dir`'s files out as `huggingface-cli download owner/name` does under the cache `hub`: blobs named
/// by their sha256, a snapshot of symbolic links named by `commit`, and the refs `main` and `v1` pointing at it.
fn hf_cache_entry(hub: &std::path::Path, id: &str, model_dir: &std::path::Path, commit: &str) {
    use sha2::Digest as _;
    let repo = hub.join(format!("models--{}", id.replace('/', "--")));
    let snapshot = repo.join("snapshots").join(commit);
    for dir in [repo.join("blobs"), repo.join("refs"), snapshot.clone()] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    for file in ["config.json", "model.safetensors"] {
        let bytes = std::fs::read(model_dir.join(file)).expect("model file");
        let blob: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(repo.join("blobs").join(&blob), bytes).expect("blob");
        std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snapshot.join(file))
            .expect("symlink");
    }
    for r in ["main", "v1"] {
        std::fs::write(repo.join("refs").join(r), commit).expect("ref");
    }
}

#[test]
fn models_in_the_hugging_face_cache_are_found_by_name() {
    let dir = Dir::new();
    let commit = "4f7c1a0e9d2b3c5a6e8f0a1b2c3d4e5f60718293";
    hf_cache_entry(
        &dir.path("home/hub"),
        "genomamba/ecoli-mamba-small",
        &data("models/ecoli-mamba-small"),
        commit,
    );
    let lambda = data("genomes/lambda_virus.fa");
    let run = |model: &str, env: &[(&str, std::path::PathBuf)], out: &str| {
        let mut cmd = genomamba(["predict"])
            .arg(&lambda)
            .args(["--device", "cpu", "-q", "-o", out])
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_HOME")
            .current_dir(dir.path(""));
        for (key, value) in env {
            cmd = cmd.env(key, value);
        }
        if model.is_empty() {
            cmd.ok();
        } else {
            cmd.args(["--model", model]).ok();
        }
        read(&dir.path(out))
    };
    let (want, want_meta) = run(
        &data("models/ecoli-mamba-small").display().to_string(),
        &[],
        "dir.parquet",
    );
    let hub = [("HF_HUB_CACHE", dir.path("home/hub"))];
    let home = [("HF_HOME", dir.path("home"))];
    for (model, env, out) in [
        ("genomamba/ecoli-mamba-small", &hub, "main.parquet"),
        ("genomamba/ecoli-mamba-small@v1", &home, "tag.parquet"),
        (
            &*format!("genomamba/ecoli-mamba-small@{commit}"),
            &hub,
            "commit.parquet",
        ),
    ] {
        let (got, meta) = run(model, env, out);
        assert!(same_table(&got, &want), "{model}: the directory's rows");
        assert_eq!(meta["model"]["sha256"], want_meta["model"]["sha256"]);
        assert_eq!(
            meta["model"]["name"],
            format!("genomamba/ecoli-mamba-small@{commit}"),
            "{model}: named by repository and commit"
        );
    }
    let (got, _) = run(
        "",
        &[
            ("HF_HUB_CACHE", dir.path("home/hub")),
            ("GENOMAMBA_MODEL", "genomamba/ecoli-mamba-small".into()),
        ],
        "env.parquet",
    );
    assert!(same_table(&got, &want), "GENOMAMBA_MODEL takes a name too");

    let err = genomamba(["predict"])
        .arg(&lambda)
        .args([
            "--device",
            "cpu",
            "--model",
            "genomamba/absent@v2",
            "-o",
            "absent.parquet",
        ])
        .env("HF_HUB_CACHE", dir.path("home/hub"))
        .current_dir(dir.path(""))
        .fails_with(1);
    assert!(
        err.contains(
            "genomamba/absent@v2: no such directory, and not in the Hugging Face cache at"
        ) && err.contains("`huggingface-cli download genomamba/absent --revision v2`"),
        "{err}"
    );
    assert!(!dir.path("absent.parquet").exists());
    let shown = genomamba(["inspect", "genomamba/ecoli-mamba-small@v1"])
        .env("HF_HUB_CACHE", dir.path("home/hub"))
        .ok();
    assert!(
        shown.contains(&format!("genomamba/ecoli-mamba-small@{commit}")),
        "{shown}"
    );
}

#[test]
fn sharded_embeddings_with_flanks_equal_one_run_over_the_whole_genome() {
    // `--strand both` windows with flanks on both sides, as a bidirectional model does.
    let (whole, sharded) =
        whole_and_sharded(&["embed", "--pool", "1024", "--strand", "both"], "4096");
    assert_eq!(sharded.num_rows(), whole.num_rows());
    assert_eq!(i64s(&sharded, "start"), i64s(&whole, "start"));
    let flat = |b: &RecordBatch| {
        let col = b.column_by_name("embedding").expect("embedding");
        let list = col
            .as_any()
            .downcast_ref::<arrow_array::FixedSizeListArray>()
            .expect("fixed size list");
        list.values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .expect("f32 values")
            .values()
            .to_vec()
    };
    assert_eq!(flat(&sharded), flat(&whole));
}

#[test]
fn inspect_describes_the_embedded_model() {
    let text = genomamba(["inspect"]).ok();
    assert!(text.contains("hf-mamba"), "{text}");
    assert!(text.contains("sha256"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&genomamba(["inspect", "--json"]).ok()).expect("json");
    assert_eq!(json["d_model"], 128);
    assert_eq!(
        (
            json["default_window"].as_u64(),
            json["default_overlap"].as_u64()
        ),
        (Some(1_048_576), Some(8192))
    );
    assert!(
        text.contains("1048576 bases after 8192 of burn-in by default"),
        "{text}"
    );
    let mut counts = BTreeMap::new();
    counts.insert("layers", json["n_layer"].as_u64());
    assert!(counts["layers"].is_some_and(|n| n >= 4));
}

/// Runs tests/interop/check_parquet.py (pyarrow, Polars, DuckDB, pandas) on fresh outputs; needs the test venv.
#[test]
fn outputs_open_in_pyarrow_polars_duckdb_and_pandas() {
    let Some(python) = std::env::var_os("GENOMAMBA_TEST_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set GENOMAMBA_TEST_PYTHON (tests/run.sh does)"
        );
        eprintln!("skipped: GENOMAMBA_TEST_PYTHON is not set (tests/run.sh sets it)");
        return;
    };
    let dir = Dir::new();
    let pred = dir.path("pred.parquet");
    genomamba(["predict"])
        .arg(data("mixed.fa"))
        .args(["--device", "cpu", "-q", "-o"])
        .arg(&pred)
        .ok();
    let emb = dir.path("emb.parquet");
    genomamba(["embed"])
        .arg(data("mixed.fa"))
        .args([
            "--pool", "50", "--dtype", "f16", "--device", "cpu", "-q", "-o",
        ])
        .arg(&emb)
        .ok();
    // {record: length} from the index, for the coverage checks.
    let fai = std::fs::read_to_string(util::derived("mixed.fa.fai")).expect("mixed.fa.fai");
    let lengths: serde_json::Map<String, serde_json::Value> = fai
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (
                cols[0].to_string(),
                serde_json::json!(cols[1].parse::<u64>().expect("length")),
            )
        })
        .collect();
    let total: u64 = lengths.values().filter_map(|v| v.as_u64()).sum();
    let lengths_path = dir.write(
        "lengths.json",
        serde_json::Value::Object(lengths).to_string(),
    );
    let var = dir.path("var.parquet");
    genomamba(["score", "--device", "cpu", "-q", "--vcf"])
        .arg(data("variants/lambda_calls.vcf.gz"))
        .arg("--reference")
        .arg(data("genomes/lambda_virus.fa"))
        .arg("-o")
        .arg(&var)
        .ok();
    // Aligned reads: read names, alignment columns, and null mapq for the unmapped mates.
    let reads = dir.path("reads.parquet");
    genomamba(["embed"])
        .arg(data("reads/lambda.bam"))
        .args(["--device", "cpu", "-q", "-o"])
        .arg(&reads)
        .ok();
    let lengths = lengths_path.display().to_string();
    let total = total.to_string();
    let checks: [(&str, &std::path::Path, Vec<&str>); 4] = [
        (
            "predictions",
            &pred,
            vec!["--rows", &total, "--lengths", &lengths],
        ),
        (
            "embeddings",
            &emb,
            vec!["--dim", "128", "--dtype", "f16", "--lengths", &lengths],
        ),
        (
            "variants",
            &var,
            vec!["--rows", "35", "--lengths", &lengths],
        ),
        (
            "embeddings",
            &reads,
            vec!["--dim", "128", "--keys", "aligned"],
        ),
    ];
    for (table, path, extra) in checks {
        let status = std::process::Command::new(&python)
            .arg(root().join("tests/interop/check_parquet.py"))
            .arg(path)
            .args(["--table", table])
            .args(extra)
            .status()
            .expect("run python");
        assert!(status.success(), "interop check failed for {table}");
    }
}

/// Bits per base over rows with a prediction and an A/C/G/T reference: mean(-logp_ref) / ln 2.
fn bits_per_base(batch: &RecordBatch) -> (f64, usize) {
    let logp = f32s(batch, "logp_ref");
    let kept: Vec<f64> = logp
        .iter()
        .flatten()
        .map(|&l| -f64::from(l) / std::f64::consts::LN_2)
        .collect();
    (kept.iter().sum::<f64>() / kept.len() as f64, kept.len())
}

/// The model card's held-out numbers, made by the training code in PyTorch, are what `genomamba predict`
/// gives with the same protocol (windows of W from the region start, no burn-in, position 0 skipped); the
/// committed eval.py, run on our Parquet, agrees too.
#[test]
fn default_model_reproduces_the_training_evaluation() {
    let card = root().join("data/models/ecoli-mamba-small");
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(card.join("expected_eval.json")).expect("expected_eval.json"),
    )
    .expect("json");
    let window = expected["window"].as_u64().expect("window").to_string();
    let tolerance = expected["tolerance"].as_f64().expect("tolerance");
    let dir = Dir::new();
    let cases = [
        (
            "ecoli_heldout",
            util::derived("ecoli536.fa"),
            expected["ecoli_heldout"]["region_fasta"].as_str(),
        ),
        ("lambda", util::derived("lambda_virus.fa"), None),
    ];
    for (name, genome, region) in cases {
        let out = dir.path(&format!("{name}.parquet"));
        let mut cmd = genomamba(["predict"]).arg(&genome);
        if let Some(region) = region {
            cmd = cmd.args(["-r", region]);
        }
        cmd.args([
            "--window",
            &window,
            "--overlap",
            "0",
            "--device",
            "cpu",
            "-q",
            "-o",
        ])
        .arg(&out)
        .ok();
        let (batch, _) = read(&out);
        let (bits, n) = bits_per_base(&batch);
        let want = expected[name]["bits_per_base"].as_f64().expect("bits");
        assert_eq!(
            n as u64,
            expected[name]["n"].as_u64().expect("n"),
            "{name}: positions counted"
        );
        assert!(
            (bits - want).abs() < tolerance,
            "{name}: genomamba {bits:.6} vs training code {want:.6}"
        );
        if let Some(python) = std::env::var_os("GENOMAMBA_TEST_PYTHON") {
            let eval = std::process::Command::new(python)
                .arg(card.join("eval.py"))
                .arg("parquet")
                .arg(&out)
                .output()
                .expect("run eval.py");
            assert!(
                eval.status.success(),
                "eval.py: {}",
                String::from_utf8_lossy(&eval.stderr)
            );
            let said: serde_json::Value =
                serde_json::from_slice(&eval.stdout).expect("eval.py prints JSON");
            let theirs = said["bits_per_base"].as_f64().expect("bits_per_base");
            assert!(
                (theirs - bits).abs() < 1e-5,
                "eval.py says {theirs}, the test computed {bits:.6}"
            );
            assert_eq!(said["n"].as_u64(), Some(n as u64));
        }
    }
}

#[test]
fn empty_fasta_records_give_no_rows_a_warning_and_no_shard() {
    // Two pieces of lambda with headers of no bases around them (as filtering tools leave behind; samtools 1.16
    // cannot index a file whose last record is empty, so none is last here).
    let lambda = std::fs::read_to_string(data("genomes/lambda_virus.fa")).expect("lambda");
    let bases: String = lambda.lines().skip(1).collect();
    let dir = Dir::new();
    let fasta = format!(
        ">start\n>a\n{}\n>gap\n>b\n{}\n",
        &bases[..3000],
        &bases[3000..6000]
    );
    let genome = dir.write("g.fa", fasta);
    let out = dir.path("g.parquet");
    let (run, _) = genomamba(["predict", "--quiet", "-o"])
        .arg(&out)
        .arg(&genome)
        .output();
    assert!(run.status.success(), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("warning: 2 records have no bases, so no rows: start, gap"),
        "--quiet keeps warnings: {stderr}"
    );
    let (batch, meta) = read(&out);
    assert_eq!(names(&batch, "chrom").len(), 6000);
    let listed: Vec<(String, u64)> = meta["inputs"][0]["sequences"]
        .as_array()
        .expect("listed")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_owned(),
                s["length"].as_u64().expect("length"),
            )
        })
        .collect();
    let want = [("start", 0), ("a", 3000), ("gap", 0), ("b", 3000)];
    assert_eq!(
        listed,
        want.map(|(n, l)| (n.to_owned(), l)).to_vec(),
        "empty records are listed with length 0"
    );
    // Record `b` starts afresh after the empty record: its rows are those of `b` run alone.
    let alone = dir.write("b.fa", format!(">b\n{}\n", &bases[3000..6000]));
    let alone_out = dir.path("b.parquet");
    genomamba(["predict", "--quiet", "-o"])
        .arg(&alone_out)
        .arg(&alone)
        .ok();
    let (b, _) = read(&alone_out);
    assert_eq!(f32s(&batch, "logp_ref")[3000..], f32s(&b, "logp_ref")[..]);

    // Shards cover the records with bases only, read by streaming or through samtools' index (which leaves
    // empty records out).
    let shards = || {
        genomamba(["regions", "--max-bases", "2000", "--window", "1000"])
            .arg(&genome)
            .ok()
    };
    let streamed = shards();
    let chroms: Vec<&str> = streamed
        .lines()
        .map(|l| l.split('\t').next().expect("chrom"))
        .collect();
    assert_eq!(chroms, ["a", "a", "b", "b"]);
    samtools_faidx(&genome);
    assert_eq!(shards(), streamed);

    // A read of no bases (trimmed to nothing) gives no rows and no warning.
    let reads = dir.write(
        "r.fq",
        "@r1

+

@r2
ACGT
+
IIII
",
    );
    let reads_out = dir.path("r.parquet");
    let (run, _) = genomamba(["predict", "-o"])
        .arg(&reads_out)
        .arg(&reads)
        .output();
    assert!(run.status.success(), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(names(&read(&reads_out).0, "read_name"), ["r2"; 4]);
}

/// The concatenated `ref` column of a predictions table.
fn ref_bases(batch: &RecordBatch) -> String {
    names(batch, "ref").concat()
}

#[test]
fn region_names_with_colons_are_read_as_samtools_reads_them() {
    // GRCh38's HLA contigs have ':' in their names; here, pieces of lambda named like them.
    let dir = Dir::new();
    let lambda = std::fs::read_to_string(data("genomes/lambda_virus.fa")).expect("lambda");
    let bases: String = lambda.lines().skip(1).collect();
    let fasta = dir.write(
        "hla.fa",
        format!(
            ">HLA-A*01:01:01:01\n{}\n>HLA-B*07:02\n{}\n>HLA-B*07\n{}\n",
            &bases[..400],
            &bases[1000..1300],
            &bases[2000..2250]
        ),
    );
    util::samtools_faidx(&fasta);
    for (region, record) in [
        ("HLA-A*01:01:01:01", "HLA-A*01:01:01:01"),
        ("HLA-A*01:01:01:01:101-200", "HLA-A*01:01:01:01"),
        ("{HLA-B*07:02}", "HLA-B*07:02"),
        ("{HLA-B*07}:02", "HLA-B*07"),
    ] {
        let out = format!("{}.parquet", dir.listing().len());
        genomamba([
            "predict", "hla.fa", "--device", "cpu", "-q", "-r", region, "-o", &out,
        ])
        .current_dir(dir.path(""))
        .ok();
        let got = read(&dir.path(&out)).0;
        let faidx = std::process::Command::new("samtools")
            .args(["faidx", "hla.fa", region])
            .current_dir(dir.path(""))
            .output()
            .expect("samtools");
        let want: String = String::from_utf8_lossy(&faidx.stdout)
            .lines()
            .skip(1)
            .collect();
        assert!(!want.is_empty(), "samtools reads {region}");
        assert_eq!(ref_bases(&got), want, "{region}: samtools' bases");
        assert!(names(&got, "chrom").iter().all(|c| c == record), "{region}");
    }
    // Both a record and a range of another: refused, as samtools does, with both spellings.
    let err = genomamba(["predict", "hla.fa", "-r", "HLA-B*07:02", "-o", "x.parquet"])
        .current_dir(dir.path(""))
        .fails_with(2);
    assert!(
        err.contains("ambiguous") && err.contains("{HLA-B*07:02}") && err.contains("{HLA-B*07}:02"),
        "{err}"
    );
    assert!(!dir.path("x.parquet").exists());
}

#[test]
fn names_repeated_across_inputs_are_warned_of() {
    let dir = Dir::new();
    let run = |args: &[&str], inputs: &[&str]| {
        let (out, line) = genomamba(args.iter().copied())
            .args(inputs.iter().map(|i| data(i)))
            .args(["--device", "cpu", "-q", "--force", "-o", "out.parquet"])
            .current_dir(dir.path(""))
            .output();
        assert!(out.status.success(), "{line}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The bundled mates are both named r1, r2, ...
    let err = run(
        &["embed"],
        &["reads/lambda_pairs_1.fq.gz", "reads/lambda_pairs_2.fq.gz"],
    );
    assert!(
        err.contains("warning: inputs ")
            && err.contains("lambda_pairs_1.fq.gz and ")
            && err.contains("lambda_pairs_2.fq.gz both begin with read 'r1'"),
        "{err}"
    );
    let err = run(&["predict"], &["mixed.fa", "genomes/lambda_virus.fa"]);
    assert!(!err.contains("warning"), "distinct names: {err}");
    let err = run(&["predict"], &["mixed.fa", "mixed_crlf.fa"]);
    assert!(
        err.contains(
            "warning: 4 record names appear in more than one input, so their rows share chrom values: \
             'lambda_0_3000' ("
        ) && err.contains("and 1 more; rows follow the inputs' order"),
        "{err}"
    );
    let err = run(
        &["embed"],
        &["reads/lambda_pairs_1.fq.gz", "reads/lambda_long.fq.gz"],
    );
    assert!(err.contains("both begin with read 'r1'"), "{err}");
    let err = run(&["embed"], &["reads/lambda.bam"]);
    assert!(!err.contains("warning"), "one input: {err}");
}

#[test]
fn completion_scripts_complete_commands_options_and_values() {
    let script = genomamba(["completions", "bash"]).ok();
    let dir = Dir::new();
    let path = dir.write("genomamba.bash", script);
    // What bash offers after each command line, through the script's own function.
    let offers = |words: &[&str]| -> String {
        let line = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let cword = words.len() - 1;
        let cur = words[cword];
        let prev = words[cword - 1];
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}'; COMP_WORDS=({line}); COMP_CWORD={cword}; _genomamba genomamba '{cur}' '{prev}'; \
                 echo \"${{COMPREPLY[@]}}\"",
                path.display()
            ))
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(offers(&["genomamba", "pr"]), "predict");
    assert_eq!(offers(&["genomamba", "predict", "--mo"]), "--model");
    assert_eq!(
        offers(&["genomamba", "embed", "--strand", ""]),
        "forward both"
    );
    assert_eq!(offers(&["genomamba", "score", "--ref"]), "--reference");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = genomamba(["completions", shell]).ok();
        // Each shell spells options its own way (fish: `-l model`).
        assert!(
            script.contains("predict") && script.contains("model") && script.contains("reference"),
            "{shell}"
        );
    }
    let err = genomamba(["completions", "tcsh"]).fails_with(2);
    assert!(
        err.contains("possible values: bash, elvish, fish, powershell, zsh"),
        "{err}"
    );
}

/// `genomamba version --json`, parsed.
fn version_json(cmd: util::Cmd) -> serde_json::Value {
    let out = cmd.args(["version", "--json"]).ok();
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("version --json is not JSON ({e}):\n{out}"))
}

#[test]
fn version_reports_the_build_this_machine_and_the_embedded_model() {
    let v = version_json(genomamba(Vec::<&str>::new()));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(v["version"], version);
    assert_eq!(
        genomamba(["--version"]).ok().trim(),
        format!("genomamba {version}"),
        "--version stays one parseable line"
    );
    // The commit the binary was built from, where this is a git checkout.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(util::root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(head) => assert_eq!(v["commit"], head.as_str()),
        None => assert_eq!(v["commit"], "unknown"),
    }
    // SIMD levels as the kernel reports the CPU's flags.
    let levels: Vec<&str> = v["cpu"]["simd_levels"]
        .as_array()
        .expect("simd_levels")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    let flags = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("flags"))
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    });
    if let (Some(flags), true) = (flags, cfg!(target_arch = "x86_64")) {
        let has = |f: &str| flags.iter().any(|x| x == f);
        let mut expected = vec!["portable"];
        if has("avx2") && has("fma") {
            expected.push("avx2");
        }
        if has("avx512f") && has("avx512dq") {
            expected.push("avx512");
        }
        assert_eq!(levels, expected);
    }
    assert_eq!(
        v["cpu"]["simd"].as_str(),
        levels.last().copied(),
        "the best level runs"
    );
    assert!(v["cpu"]["threads_available"].as_u64() >= Some(1));
    // The embedded model is the bundled one.
    let sha =
        std::fs::read_to_string(data("models/ecoli-mamba-small/model.safetensors.sha256")).unwrap();
    assert_eq!(
        v["embedded_model"]["sha256"],
        sha.split_whitespace().next().unwrap()
    );
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data("models/ecoli-mamba-small/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(v["embedded_model"]["n_layer"], config["num_hidden_layers"]);
    assert_eq!(v["embedded_model"]["d_model"], config["hidden_size"]);
    // Where auto runs agrees with what was found.
    let cuda = &v["cuda"];
    assert_eq!(cuda["built_for_driver"], "580 (CUDA 13.0)");
    let devices = cuda["devices"].as_array().expect("devices");
    if devices.is_empty() {
        assert_eq!(cuda["auto_device"], "cpu");
        assert!(
            cuda["auto_reason"].is_string() && !cuda["problems"].as_array().unwrap().is_empty()
        );
    }
    if cuda["auto_device"] == "cuda:0" {
        assert!(cuda["auto_reason"].is_null() && cuda["cublas"] == true);
    }
    // The text form says the same.
    let text = genomamba(["version"]).ok();
    assert!(
        text.starts_with(&format!(
            "genomamba {version} (commit {}",
            v["commit"].as_str().unwrap()
        )),
        "{text}"
    );
    let auto = text.lines().find(|l| l.starts_with("auto:")).expect(&text);
    assert_eq!(
        auto.contains("runs on the CPU"),
        cuda["auto_device"] == "cpu",
        "{text}"
    );
    assert!(
        text.contains(sha.split_whitespace().next().unwrap()),
        "{text}"
    );
    // Outputs record the same build beside the version.
    let dir = Dir::new();
    let out = dir.path("p.parquet");
    genomamba([
        "predict",
        "--device",
        "cpu",
        "-q",
        "-r",
        "lambda_0_3000:1-50",
        "-o",
    ])
    .arg(&out)
    .arg(data("mixed.fa"))
    .ok();
    let (_, meta) = read(&out);
    assert_eq!(
        (&meta["version"], &meta["commit"]),
        (&v["version"], &v["commit"])
    );
}

/// Run with a GPU, or with the CUDA emulation on the loader path (tests/gpu/emu/run.sh).
#[test]
#[ignore = "needs a GPU or the CUDA emulation"]
fn version_finds_the_gpu_and_auto_takes_it() {
    let v = version_json(genomamba(Vec::<&str>::new()));
    let cuda = &v["cuda"];
    let devices = cuda["devices"].as_array().expect("devices");
    assert!(!devices.is_empty(), "{v:#}");
    assert_eq!(devices[0]["ordinal"], 0);
    assert!(devices[0]["memory_bytes"].as_u64() > Some(0));
    let driver: f64 = cuda["driver_cuda_version"]
        .as_str()
        .expect("driver")
        .parse()
        .unwrap();
    assert!(driver >= 13.0, "{v:#}");
    assert_eq!(cuda["cublas"], true);
    assert_eq!(cuda["auto_device"], "cuda:0", "{v:#}");
    let text = genomamba(["version"]).ok();
    let name = devices[0]["name"].as_str().unwrap();
    assert!(
        text.contains(&format!("gpu:        cuda:0 {name}")),
        "{text}"
    );
    assert!(
        text.contains("auto:       --device auto runs on cuda:0"),
        "{text}"
    );
}

#[test]
fn embed_layer_gives_transformers_hidden_states_of_that_block() {
    let golden = root().join("tests/golden/mamba/small");
    let bytes = std::fs::read(golden.join("expected-layers.safetensors")).expect("golden");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let rows: Vec<usize> = tensors
        .tensor("hidden_rows")
        .expect("rows")
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .collect();
    let layers = tensors.tensor("layer_hidden").expect("layer_hidden");
    let [n_layer, m, d] = layers.shape() else {
        panic!("layer_hidden is (n_layer, rows, D)");
    };
    let want: Vec<f32> = layers
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let dir = Dir::new();
    for k in 1..=*n_layer {
        let out = dir.path(&format!("layer{k}.parquet"));
        genomamba([
            "embed",
            "--pool",
            "1",
            "--layer",
            &k.to_string(),
            "--chunk",
            "700",
        ])
        .arg(util::derived("lambda_virus.fa"))
        .args(["-r", &format!("{LAMBDA}:1-2000"), "--model"])
        .arg(golden.join("hf"))
        .args(["--device", "cpu", "-q", "-o"])
        .arg(&out)
        .ok();
        let (batch, meta) = read(&out);
        assert_eq!(batch.num_rows(), 2000);
        let emb = batch
            .column_by_name("embedding")
            .expect("embedding")
            .as_any()
            .downcast_ref::<arrow_array::FixedSizeListArray>()
            .expect("fixed size list");
        let values = emb
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .expect("f32");
        let mut worst = 0f64;
        for (i, &row) in rows.iter().enumerate() {
            let w = &want[((k - 1) * m + i) * d..((k - 1) * m + i + 1) * d];
            let g = &values.values()[row * d..(row + 1) * d];
            let num: f64 = w.iter().zip(g).map(|(a, b)| f64::from(a - b).powi(2)).sum();
            let den: f64 = w.iter().map(|a| f64::from(*a).powi(2)).sum();
            worst = worst.max((num / den).sqrt());
        }
        assert!(worst < 1e-4, "layer {k}: max rel err {worst:e}");
        assert_eq!(meta["model"]["embedding_layer"], k);
        assert_eq!(meta["model"]["n_layer"], *n_layer, "the model as given");
        assert!(
            meta["model"]["hidden_state"].as_str().is_some_and(
                |h| h.starts_with(&format!("residual stream after block {k} of {n_layer}"))
            ),
            "{}",
            meta["model"]
        );
    }
    let err = genomamba(["embed", "--layer", "3", "--model"])
        .arg(golden.join("hf"))
        .arg(data("genomes/lambda_virus.fa"))
        .args(["-o", "x.parquet"])
        .current_dir(dir.path(""))
        .fails_with(2);
    assert!(
        err.contains("--layer 3: the model has layers 1 to 2"),
        "{err}"
    );
    let err = genomamba(["embed", "--layer", "0"])
        .arg(data("genomes/lambda_virus.fa"))
        .args(["-o", "x.parquet"])
        .current_dir(dir.path(""))
        .fails_with(2);
    assert!(
        err.contains("--layer 0: the model has layers 1 to 5"),
        "{err}"
    );
    assert!(!dir.path("x.parquet").exists());
}
