//! End-to-end tests of Caduceus models through the binary: predict and embed on lambda with the small golden
//! models (tests/golden/caduceus), checked against the engine run directly on the same bases.

mod util;

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use genomamba_model::caduceus::{CaduceusEngine, CaduceusModel, Hidden};
use genomamba_model::{Engine, Output, Want};
use genomamba_seq::alphabet;
use util::{Dir, data, derived, genomamba, read, root};

const LAMBDA_LEN: usize = 48_502;
const LAMBDA: &str = "gi|9626243|ref|NC_001416.1|";

fn model(name: &str) -> PathBuf {
    root().join("tests/golden/caduceus").join(name)
}

/// Lambda's bases as tokens (genomamba-seq's alphabet).
fn lambda_tokens() -> Vec<u8> {
    let text = std::fs::read_to_string(data("genomes/lambda_virus.fa")).expect("lambda");
    let (mut tokens, mut soft_masked) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        alphabet::tokenize(line.as_bytes(), &mut tokens, &mut soft_masked).expect("lambda's bases");
    }
    tokens
}

/// The engine's output over the whole of lambda in one window.
fn engine_output(name: &str, hidden: Hidden) -> Output {
    let m = Arc::new(CaduceusModel::from_dir(&model(name)).expect("model"));
    let mut engine = CaduceusEngine::new(m, 2, 65536, hidden).expect("engine");
    let mut out = Output::default();
    engine
        .run(&lambda_tokens(), true, Want::ALL, &mut out)
        .expect("run");
    out
}

fn column(batch: &RecordBatch, name: &str) -> Vec<f32> {
    let arr = batch.column_by_name(name).expect("column");
    let arr = arr.as_any().downcast_ref::<Float32Array>().expect("f32");
    (0..arr.len())
        .map(|i| {
            if arr.is_valid(i) {
                arr.value(i)
            } else {
                f32::NAN
            }
        })
        .collect()
}

/// The embedding column's values and width.
fn embeddings(batch: &RecordBatch) -> (Vec<f32>, usize) {
    let col = batch.column_by_name("embedding").expect("embedding");
    let list = col
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .expect("fixed size list");
    let values = list
        .values()
        .as_any()
        .downcast_ref::<Float32Array>()
        .expect("f32 values");
    (values.values().to_vec(), list.value_length() as usize)
}

fn predict(dir: &Dir, name: &str, extra: &[&str]) -> (RecordBatch, serde_json::Value) {
    let out = dir.path(&format!("{name}{}.parquet", extra.join("")));
    genomamba(["predict", "--device", "cpu", "-q", "--model"])
        .arg(model(name))
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg(data("genomes/lambda_virus.fa"))
        .ok();
    read(&out)
}

#[test]
fn predict_equals_the_engine_over_one_window_for_ps_and_ph() {
    let dir = Dir::new();
    for name in ["ps-fused", "ph-unfused"] {
        let want = engine_output(name, Hidden::Symmetric);
        // The default Caduceus window (98,304) holds lambda whole; so do 20 kb windows with flanks wider than
        // lambda, which must give the same bases the same whole-sequence context.
        for extra in [&[][..], &["--window", "20000", "--overlap", "50000"][..]] {
            let (batch, meta) = predict(&dir, name, extra);
            assert_eq!(batch.num_rows(), LAMBDA_LEN, "{name} {extra:?}");
            let cols = ["p_a", "p_c", "p_g", "p_t"].map(|c| column(&batch, c));
            let mut worst = 0f32;
            for (i, p) in want.base_probs.iter().enumerate() {
                for j in 0..4 {
                    worst = worst.max((cols[j][i] - p[j]).abs());
                }
            }
            assert!(
                worst < 1e-5,
                "{name} {extra:?}: probabilities differ by {worst}"
            );
            assert_eq!(meta["model"]["format"], "caduceus");
            assert!(
                meta["model"]["predictions"]
                    .as_str()
                    .is_some_and(|s| s.contains("no masking"))
            );
            assert_eq!(meta["overlap_sides"], "both");
            if extra.is_empty() {
                assert_eq!(
                    (meta["window"].as_u64(), meta["overlap"].as_u64()),
                    (Some(98_304), Some(16_384))
                );
            }
        }
    }
}

#[test]
fn predict_with_small_windows_covers_every_base_once() {
    let dir = Dir::new();
    let (batch, _) = predict(
        &dir,
        "ps-fused",
        &["--window", "10000", "--overlap", "2000"],
    );
    assert_eq!(batch.num_rows(), LAMBDA_LEN);
    let p = column(&batch, "p_a");
    assert!(
        p.iter().all(|v| v.is_finite()),
        "every base of a bidirectional window has a prediction"
    );
}

#[test]
fn embed_per_base_is_the_symmetric_or_raw_state() {
    let dir = Dir::new();
    for (raw, width) in [(false, 16), (true, 32)] {
        let out = dir.path(&format!("emb-{raw}.parquet"));
        let mut cmd = genomamba(["embed", "--pool", "1", "--device", "cpu", "-q", "--model"])
            .arg(model("ps-fused"))
            .arg("-o")
            .arg(&out)
            .arg(data("genomes/lambda_virus.fa"));
        if raw {
            cmd = cmd.arg("--raw");
        }
        cmd.ok();
        let (batch, meta) = read(&out);
        assert_eq!(batch.num_rows(), LAMBDA_LEN);
        let (got, w) = embeddings(&batch);
        assert_eq!(w, width);
        let want = engine_output(
            "ps-fused",
            if raw { Hidden::Raw } else { Hidden::Symmetric },
        );
        let worst = got
            .iter()
            .zip(&want.hidden)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "raw {raw}: embeddings differ by {worst}");
        let desc = meta["model"]["embedding"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            desc.contains(if raw { "raw" } else { "symmetric" }),
            "{desc}"
        );
    }
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<String> {
    let col = batch.column_by_name(name).expect("column");
    let col = arrow_cast::cast(col, &arrow_schema::DataType::Utf8).expect("utf8");
    let arr = col.as_any().downcast_ref::<StringArray>().expect("strings");
    (0..arr.len()).map(|i| arr.value(i).to_string()).collect()
}

/// The masked-site goldens of a model (tests/golden/caduceus/make_goldens.py, flank 40): 0-based sites and the
/// Caduceus code's P(A), P(C), P(G), P(T) at each, masked.
fn masked_golden(name: &str) -> Vec<(u64, [f32; 4])> {
    masked_golden_of(name, "probs")
}

/// The golden masked sites of model `name` and the Caduceus code's P(A), P(C), P(G), P(T) at each: `probs` on the
/// forward strand, `probs_rc` on the reverse (the window's reverse complement, the site masked there).
fn masked_golden_of(name: &str, key: &str) -> Vec<(u64, [f32; 4])> {
    let bytes = std::fs::read(model(name).join("masked.safetensors")).expect("masked golden");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let sites = tensors.tensor("sites").expect("sites");
    let probs = tensors.tensor(key).expect("probs");
    let sites = sites
        .data()
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let probs = probs.data().chunks_exact(16).map(|row| {
        std::array::from_fn(|k| {
            f32::from_le_bytes(row[4 * k..4 * k + 4].try_into().expect("4 bytes"))
        })
    });
    sites.zip(probs).collect()
}

/// A VCF of the golden masked sites (ID `g<site>`), each with the three other bases as ALTs.
fn golden_sites_vcf() -> String {
    let tokens = lambda_tokens();
    let base = |i: u64| b"ACGT"[usize::from(tokens[i as usize] - 7)] as char;
    let mut vcf =
        String::from("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n");
    for (site, _) in masked_golden("ps-fused") {
        let r = base(site);
        let alts: Vec<String> = "ACGT"
            .chars()
            .filter(|&b| b != r)
            .map(String::from)
            .collect();
        vcf += &format!(
            "{LAMBDA}\t{}\tg{site}\t{r}\t{}\t.\t.\t.\n",
            site + 1,
            alts.join(",")
        );
    }
    vcf
}

/// `score --strand both` with a Caduceus model: each ln P is the mean of the forward strand's and the reverse
/// strand's (the window reverse-complemented, the site masked there, the complement base), against the Caduceus
/// code on both strands for every golden model; PS models give their forward scores (they are equivariant).
#[test]
fn score_on_both_strands_averages_like_the_caduceus_code() {
    let dir = Dir::new();
    let vcf_path = dir.path("sites.vcf");
    std::fs::write(&vcf_path, golden_sites_vcf()).expect("vcf");
    for name in ["ps-fused", "ps-unfused", "ph-fused", "ph-unfused"] {
        let (forward, reverse) = (masked_golden(name), masked_golden_of(name, "probs_rc"));
        let out = dir.path(&format!("{name}-both.parquet"));
        genomamba([
            "score",
            "--device",
            "cpu",
            "-q",
            "--overlap",
            "40",
            "--strand",
            "both",
        ])
        .arg("--vcf")
        .arg(&vcf_path)
        .arg("--reference")
        .arg(derived("lambda_virus.fa"))
        .arg("--model")
        .arg(model(name))
        .arg("-o")
        .arg(&out)
        .ok();
        let (batch, meta) = read(&out);
        assert_eq!(meta["strand_policy"], "rc_average");
        assert!(
            meta["variants"]["score"]
                .as_str()
                .is_some_and(|s| s.contains("on both strands")),
            "{}",
            meta["variants"]
        );
        // Sites 0, 1, 39, 48500 and 48501 have windows cut at lambda's ends (41, 42, 80, 42, 41 bases).
        let windows = 41 + 42 + 80 + 6 * 81 + 42 + 41;
        assert_eq!(meta["bases"], 2 * windows, "each window on both strands");
        let ids = strings(&batch, "id");
        let (refs, alts) = (strings(&batch, "ref"), strings(&batch, "alt"));
        let (lr, la, sc) = (
            column(&batch, "logp_ref"),
            column(&batch, "logp_alt"),
            column(&batch, "score"),
        );
        assert_eq!(batch.num_rows(), 3 * forward.len());
        let (mut worst, mut strands_differ) = (0f32, 0f32);
        for (row, id) in ids.iter().enumerate() {
            let site: u64 = id[1..].parse().expect("site");
            let at = forward
                .iter()
                .position(|g| g.0 == site)
                .expect("golden site");
            let (f, r) = (forward[at].1, reverse[at].1);
            for (logp, allele) in [(lr[row], &refs[row]), (la[row], &alts[row])] {
                let b = "ACGT".find(allele.as_str()).expect("a base");
                // The complement of base b (A, C, G, T) is 3 - b.
                let (pf, pr) = (f[b], r[3 - b]);
                strands_differ = strands_differ.max((pf - pr).abs());
                if pf > 1e-3 && pr > 1e-3 {
                    let want = 0.5 * (pf.ln() + pr.ln());
                    worst = worst.max((logp - want).abs());
                }
            }
            assert!((sc[row] - (la[row] - lr[row])).abs() < 1e-5);
        }
        eprintln!(
            "{name}: both strands, largest ln P difference from the Caduceus code {worst:.1e} (the strands' \
             probabilities differ by up to {strands_differ:.2})"
        );
        assert!(worst < 1e-3, "{name}: ln P differs by {worst}");
        if name.starts_with("ps") {
            assert!(strands_differ < 1e-5, "{name}: PS is equivariant");
        } else {
            assert!(
                strands_differ > 0.1,
                "{name}: Ph's strands differ, so the test tells them apart"
            );
        }
    }
}

/// `score` with a Caduceus model scores each SNV at its site masked, with `--overlap` bases on each side (cut at
/// lambda's ends): against the Caduceus code for every golden model, the ALT alleles of a site sharing its
/// window; the same table with and without the reference's index; the statuses of rows it cannot score.
#[test]
fn score_masks_each_site_like_the_caduceus_code() {
    let dir = Dir::new();
    let tokens = lambda_tokens();
    let base = |i: u64| b"ACGT"[usize::from(tokens[i as usize] - 7)] as char;
    let mut vcf = golden_sites_vcf();
    // A REF that is not lambda's base, a deletion, a site past the end and a contig lambda does not have.
    let wrong = "ACGT".chars().find(|&b| b != base(30_000)).expect("a base");
    vcf += &format!(
        "{LAMBDA}\t30001\tmismatch\t{wrong}\t{}\t.\t.\t.\n",
        base(30_000)
    );
    vcf += &format!(
        "{LAMBDA}\t20001\tdel\t{}{}\t{}\t.\t.\t.\n",
        base(20_000),
        base(20_001),
        base(20_000)
    );
    vcf += &format!("{LAMBDA}\t48503\tpast\tA\tC\t.\t.\t.\n");
    vcf += "chrX\t5\tother\tA\tC\t.\t.\t.\n";
    let vcf_path = dir.path("sites.vcf");
    std::fs::write(&vcf_path, vcf).expect("vcf");
    for name in ["ps-fused", "ps-unfused", "ph-fused", "ph-unfused"] {
        let golden = masked_golden(name);
        let score = |reference: PathBuf, out: &str| {
            let out = dir.path(&format!("{name}-{out}.parquet"));
            genomamba(["score", "--device", "cpu", "-q", "--overlap", "40", "--vcf"])
                .arg(&vcf_path)
                .arg("--reference")
                .arg(reference)
                .arg("--model")
                .arg(model(name))
                .arg("-o")
                .arg(&out)
                .ok();
            read(&out)
        };
        let (indexed, meta) = score(derived("lambda_virus.fa"), "fai");
        let (whole, whole_meta) = score(data("genomes/lambda_virus.fa"), "whole");
        // The inputs list what was read: each site's 81 bases (merged where they overlap), or lambda whole.
        let lengths = |meta: &serde_json::Value| -> Vec<u64> {
            let sequences = meta["inputs"][0]["sequences"]
                .as_array()
                .expect("sequences");
            sequences
                .iter()
                .map(|s| s["length"].as_u64().expect("length"))
                .collect()
        };
        assert_eq!(lengths(&whole_meta), [LAMBDA_LEN as u64]);
        let read = lengths(&meta);
        assert_eq!(
            read,
            [82, 82, 81, 81, 82],
            "sites 0-41, 1000-1001, 25000, 30000, 48460-48501"
        );
        assert_eq!(
            indexed.columns(),
            whole.columns(),
            "{name}: with and without a .fai"
        );
        assert_eq!(meta["variants"]["masked_flank"], 40);
        assert_eq!(meta["strand_policy"], "forward");
        assert!(
            meta["variants"]["score"]
                .as_str()
                .is_some_and(|s| s.contains("[MASK]")),
            "{}",
            meta["variants"]
        );
        let ids = strings(&indexed, "id");
        let status = strings(&indexed, "status");
        let (refs, alts) = (strings(&indexed, "ref"), strings(&indexed, "alt"));
        let (lr, la, sc) = (
            column(&indexed, "logp_ref"),
            column(&indexed, "logp_alt"),
            column(&indexed, "score"),
        );
        assert_eq!(indexed.num_rows(), 3 * golden.len() + 4);
        let mut worst = 0f32;
        for (row, id) in ids.iter().enumerate() {
            let Some(site) = id.strip_prefix('g') else {
                continue;
            };
            let site: u64 = site.parse().expect("site");
            let (_, probs) = golden.iter().find(|g| g.0 == site).expect("golden site");
            assert_eq!(status[row], "ok", "{name}: site {site}");
            let p = |allele: &str| probs["ACGT".find(allele).expect("a base")];
            for (logp, allele) in [(lr[row], &refs[row]), (la[row], &alts[row])] {
                worst = worst.max((logp.exp() - p(allele)).abs());
                if p(allele) > 1e-3 {
                    assert!(
                        (logp - p(allele).ln()).abs() < 1e-3,
                        "{name}: site {site} {allele}"
                    );
                }
            }
            assert!((sc[row] - (la[row] - lr[row])).abs() < 1e-5);
        }
        eprintln!("{name}: largest probability difference from the Caduceus code {worst:.1e}");
        assert!(worst < 1e-5, "{name}: probabilities differ by {worst}");
        let status_of = |id: &str| &status[ids.iter().position(|i| i == id).expect("row")];
        assert_eq!(status_of("mismatch"), "ref_mismatch");
        assert_eq!(status_of("del"), "not_snv");
        assert_eq!(status_of("past"), "out_of_bounds");
        assert_eq!(status_of("other"), "unknown_contig");
    }
    // With no flank a window is the mask alone: nothing to score from.
    let out = dir.path("no-flank.parquet");
    genomamba(["score", "--device", "cpu", "-q", "--overlap", "0", "--vcf"])
        .arg(&vcf_path)
        .arg("--reference")
        .arg(derived("lambda_virus.fa"))
        .arg("--model")
        .arg(model("ph-fused"))
        .arg("-o")
        .arg(&out)
        .ok();
    let (batch, meta) = read(&out);
    let ids = strings(&batch, "id");
    let status = strings(&batch, "status");
    for (id, status) in ids.iter().zip(&status) {
        if id.starts_with('g') {
            assert_eq!(status, "no_context", "{id}");
        }
    }
    assert_eq!(meta["bases"], 0, "no window was run");
}

#[test]
fn caduceus_refusals_are_clear() {
    let dir = Dir::new();
    let run = |args: &[&str], name: &str| {
        genomamba(args.iter().copied())
            .args(["--device", "cpu", "-q", "-o"])
            .arg(dir.path("x.parquet"))
            .arg("--model")
            .arg(model(name))
            .arg(data("genomes/lambda_virus.fa"))
    };
    let err = run(&["embed", "--raw"], "ph-fused").fails_with(2);
    assert!(err.contains("--raw needs a Caduceus-PS"), "{err}");
    let err = run(&["embed", "--layer", "1"], "ps-fused").fails_with(2);
    assert!(err.contains("--layer applies to Mamba models"), "{err}");
    // Score: SNVs only, each site its own window, and the reference's lengths first.
    let vcf = data("variants/lambda_calls.vcf.gz");
    let score = |extra: &[&str], reference: PathBuf| {
        genomamba(["score", "--device", "cpu", "-q", "-o"])
            .arg(dir.path("s.parquet"))
            .arg("--model")
            .arg(model("ph-fused"))
            .arg("--vcf")
            .arg(&vcf)
            .arg("--reference")
            .arg(reference)
            .args(extra)
    };
    let err = score(&["--indel-flank", "8"], data("genomes/lambda_virus.fa")).fails_with(2);
    assert!(err.contains("--indel-flank needs a causal model"), "{err}");
    let err = score(&["--window", "1000"], data("genomes/lambda_virus.fa")).fails_with(2);
    assert!(err.contains("--window does not apply"), "{err}");
    let err = score(&[], PathBuf::from("-"))
        .stdin_file(data("genomes/lambda_virus.fa"))
        .fails_with(2);
    assert!(err.contains("not standard input"), "{err}");
    // Both strands are for masked sites: a causal model (the embedded one) scores the forward strand.
    let err = genomamba(["score", "--device", "cpu", "-q", "--strand", "both", "-o"])
        .arg(dir.path("s.parquet"))
        .arg("--vcf")
        .arg(&vcf)
        .arg("--reference")
        .arg(data("genomes/lambda_virus.fa"))
        .fails_with(2);
    assert!(
        err.contains("--strand both applies to score with a bidirectional"),
        "{err}"
    );
    if !std::path::Path::new("/dev/nvidia0").exists() {
        // Caduceus has a CUDA engine too: without a GPU it fails like the Mamba one, cleanly.
        let err = genomamba(["predict", "--device", "cuda", "-q", "-o"])
            .arg(dir.path("y.parquet"))
            .arg("--model")
            .arg(model("ps-fused"))
            .arg(data("genomes/lambda_virus.fa"))
            .fails_with(1);
        assert!(err.contains("starting the CUDA engine on cuda:0"), "{err}");
    }
    assert!(dir.listing().is_empty(), "no output left behind");
}

#[test]
fn inspect_describes_a_caduceus_model() {
    let text = genomamba(["inspect"]).arg(model("ps-fused")).ok();
    assert!(text.contains("caduceus") && text.contains("PS"), "{text}");
    let json = genomamba(["inspect", "--json"])
        .arg(model("ph-unfused"))
        .ok();
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["format"], "caduceus");
    assert_eq!(v["variant"], "ph");
    assert_eq!(v["causal"], false);
    assert_eq!(
        (v["default_window"].as_u64(), v["default_overlap"].as_u64()),
        (Some(98_304), Some(16_384))
    );
    assert!(
        text.contains("98304 bases with 16384 on each side by default"),
        "{text}"
    );
}

/// Ph `--strand both`: the mean, by position, of the window and its reverse complement run as a window.
/// PS: the strand-symmetric embedding makes `--strand both` the same as forward; `--raw` refuses it.
#[test]
fn embed_strand_both_averages_ph_and_is_moot_for_ps() {
    let dir = Dir::new();
    let embed = |name: &str, extra: &[&str]| {
        let out = dir.path(&format!("{name}-{}.parquet", extra.join("")));
        genomamba(["embed", "--pool", "1", "--device", "cpu", "-q", "--model"])
            .arg(model(name))
            .args(extra)
            .arg("-o")
            .arg(&out)
            .arg(data("genomes/lambda_virus.fa"))
            .ok();
        embeddings(&read(&out).0).0
    };

    let m = Arc::new(CaduceusModel::from_dir(&model("ph-fused")).expect("model"));
    let d = m.config.d_model;
    let mut engine = CaduceusEngine::new(m, 2, 65536, Hidden::Symmetric).expect("engine");
    let tokens = lambda_tokens();
    let rc: Vec<u8> = tokens.iter().rev().map(|&t| 17 - t).collect();
    let (mut fwd, mut rev) = (Output::default(), Output::default());
    engine.run(&tokens, true, Want::ALL, &mut fwd).expect("run");
    engine.run(&rc, true, Want::ALL, &mut rev).expect("run rc");
    let got = embed("ph-fused", &["--strand", "both"]);
    let forward_only = embed("ph-fused", &[]);
    let mut worst = 0f32;
    for i in 0..LAMBDA_LEN {
        let j = LAMBDA_LEN - 1 - i;
        for k in 0..d {
            let want = 0.5 * (fwd.hidden[i * d + k] + rev.hidden[j * d + k]);
            worst = worst.max((got[i * d + k] - want).abs());
        }
    }
    assert!(worst < 1e-5, "Ph --strand both differs by {worst}");
    let moved = got
        .iter()
        .zip(&forward_only)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(moved > 1e-3, "Ph is not strand-symmetric: both != forward");

    let both = embed("ps-fused", &["--strand", "both"]);
    assert_eq!(both, embed("ps-fused", &[]), "PS: --strand both is moot");
    let err = genomamba(["embed", "--raw", "--strand", "both", "-q", "--model"])
        .arg(model("ps-fused"))
        .arg("-o")
        .arg(dir.path("raw.parquet"))
        .arg(data("genomes/lambda_virus.fa"))
        .fails_with(2);
    assert!(err.contains("--strand both does not apply"), "{err}");
}

/// `--device cuda` against `--device cpu` for a Caduceus model, end to end: 1,000-base bins and one row per
/// window, pooled on the GPU from sums of the window's hidden rows (only the sums leave the GPU). Same rows,
/// embeddings within 1e-4 (relative, per row). Runs on a GPU or on the CPU emulation of CUDA
/// (tests/gpu/emu/run.sh).
#[test]
#[ignore = "needs a CUDA device"]
fn caduceus_cuda_matches_cpu_end_to_end() {
    let dir = Dir::new();
    for pool in ["1000", "window"] {
        let run = |device: &str| {
            let out = dir.path(&format!("{pool}-{device}.parquet"));
            genomamba([
                "embed", "--pool", pool, "--window", "20000", "--device", device,
            ])
            .args(["-q", "-o"])
            .arg(&out)
            .arg("--model")
            .arg(model("ps-fused"))
            .arg(data("genomes/lambda_virus.fa"))
            .ok();
            read(&out)
        };
        let ((cpu, _), (gpu, meta)) = (run("cpu"), run("cuda"));
        assert!(
            meta["device"]
                .as_str()
                .is_some_and(|d| d.starts_with("cuda:0")),
            "{}",
            meta["device"]
        );
        assert_eq!(gpu.num_rows(), cpu.num_rows(), "--pool {pool}");
        assert_eq!(column(&gpu, "n_frac"), column(&cpu, "n_frac"));
        let ((g, w), (c, _)) = (embeddings(&gpu), embeddings(&cpu));
        for (i, (g, c)) in g.chunks(w).zip(c.chunks(w)).enumerate() {
            let num: f32 = g.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
            let den: f32 = c.iter().map(|b| b * b).sum();
            let rel = (num / den.max(1e-30)).sqrt();
            assert!(rel < 1e-4, "--pool {pool}, row {i}: rel err {rel}");
        }
    }
    // score: the masked windows of lambda's calls, batched on the GPU and on the CPU; PS on the forward strand, Ph on
    // both (each window and its reverse complement).
    let score = |device: &str, name: &str, strand: &str| {
        let out = dir.path(&format!("score-{device}-{name}.parquet"));
        genomamba(["score", "--overlap", "300", "--device", device, "-q"])
            .args(["--strand", strand])
            .arg("--vcf")
            .arg(data("variants/lambda_calls.vcf.gz"))
            .arg("--reference")
            // data/derived is not carried to the GPU machine: lambda is read whole.
            .arg(data("genomes/lambda_virus.fa"))
            .arg("--model")
            .arg(model(name))
            .arg("-o")
            .arg(&out)
            .ok();
        read(&out).0
    };
    for (name, strand) in [("ps-fused", "forward"), ("ph-fused", "both")] {
        let (cpu, gpu) = (score("cpu", name, strand), score("cuda", name, strand));
        assert_eq!(strings(&gpu, "status"), strings(&cpu, "status"));
        assert!(
            strings(&cpu, "status")
                .iter()
                .filter(|s| *s == "ok")
                .count()
                > 10
        );
        for column_name in ["logp_ref", "logp_alt"] {
            for (g, c) in column(&gpu, column_name)
                .iter()
                .zip(column(&cpu, column_name))
            {
                assert!(
                    (g - c).abs() <= 1e-4 * (1.0 + c.abs()) || (g.is_nan() && c.is_nan()),
                    "{name} --strand {strand}, {column_name}: {g} on the GPU, {c} on the CPU"
                );
            }
        }
    }
}

/// `regions` cuts shards for the window the runs will use: with no --window, the model's default (98,304 bases
/// for Caduceus, from `--model` or GENOMAMBA_MODEL, reading only its config.json); --window still wins.
#[test]
fn regions_cuts_shards_on_the_models_default_window() {
    let dir = Dir::new();
    let lambda = std::fs::read_to_string(data("genomes/lambda_virus.fa")).expect("lambda");
    let bases: String = lambda.lines().skip(1).collect();
    // 242,510 bases: three 98,304-base windows, two shards of at most two windows each.
    let genome = dir.write("long.fa", format!(">long\n{}\n", bases.repeat(5)));
    let starts = |bed: &str| -> Vec<(u64, u64)> {
        bed.lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[1].parse().expect("start"), f[2].parse().expect("end"))
            })
            .collect()
    };
    let by_flag = genomamba(["regions", "--max-bases", "200000", "--model"])
        .arg(model("ps-fused"))
        .arg(&genome)
        .ok();
    assert_eq!(starts(&by_flag), [(0, 196_608), (196_608, 242_510)]);
    let by_env = genomamba(["regions", "--max-bases", "200000"])
        .env("GENOMAMBA_MODEL", model("ps-fused"))
        .arg(&genome)
        .ok();
    assert_eq!(by_env, by_flag);
    let given = genomamba(["regions", "--max-bases", "200000", "--window", "100000"])
        .env("GENOMAMBA_MODEL", model("ps-fused"))
        .arg(&genome)
        .ok();
    assert_eq!(starts(&given), [(0, 200_000), (200_000, 242_510)]);
    // The embedded (causal) model's window is 1 Mi bases, more than the bound.
    let err = genomamba(["regions", "--max-bases", "200000"])
        .arg(&genome)
        .fails_with(2);
    assert!(
        err.contains("--max-bases 200000 is less than the model's window, 1048576"),
        "{err}"
    );
    // Embed's bins must fit the model's window: 1000 does not divide 98,304.
    let err = genomamba(["regions", "--pool", "1000", "--model"])
        .arg(model("ps-fused"))
        .arg(&genome)
        .fails_with(2);
    assert!(
        err.contains("--pool 1000 does not divide the window (98304 bases)")
            && err.contains("e.g. 1024"),
        "{err}"
    );
    genomamba(["regions", "--pool", "1024", "--model"])
        .arg(model("ps-fused"))
        .arg(&genome)
        .ok();
    // A model directory without a config is an error naming it, before any output.
    let out = dir.path("shards.bed");
    let err = genomamba(["regions", "--model"])
        .arg(dir.path(""))
        .arg(&genome)
        .arg("-o")
        .arg(&out)
        .fails_with(1);
    assert!(err.contains("config.json"), "{err}");
    assert!(!out.exists());
}
