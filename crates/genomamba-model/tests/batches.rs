//! The CPU engines' batches (`run_batch`, `run_batch_sums`), which run sequences side by side a thread each,
//! give every sequence the same bits as a fresh `run` of it alone, on the golden models (causal Mamba and the
//! four Caduceus variants) and real lambda sequence: reads of many lengths, tile and chunk boundaries, an empty
//! sequence; batches too small to split run one at a time; a bad token is an error naming it.

use std::ops::Range;
use std::sync::Arc;

use genomamba_model::caduceus::{CaduceusEngine, CaduceusModel, Hidden};
use genomamba_model::{CpuEngine, Engine, Error, Model, Output, Want};

mod support;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Lengths of the batch's sequences: empty, one base, reads, one tile (1024) and past it, past the chunk (700),
/// and one too long to run side by side (it runs on its own within the batch).
const LENGTHS: [usize; 11] = [150, 0, 1, 37, 150, 1024, 1025, 2600, 301, 700, 5000];

/// Slices of lambda of [`LENGTHS`], each from its own place in the genome.
fn sequences() -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let genome = support::lambda(0, 48_000)?;
    Ok(LENGTHS
        .iter()
        .enumerate()
        .map(|(i, &len)| genome[i * 4000..i * 4000 + len].to_vec())
        .collect())
}

/// Row ranges of a sequence of `len` rows to sum over: halves, the whole, a single row, an empty range.
fn segments(len: usize) -> Vec<Range<usize>> {
    vec![0..len / 2, len / 2..len, 0..len, len / 3..len / 3]
}

/// Probabilities as bits (`NaN` rows compare equal to themselves).
fn bits(out: &Output) -> (Vec<u32>, Vec<[u32; 4]>) {
    (
        out.hidden.iter().map(|v| v.to_bits()).collect(),
        out.base_probs.iter().map(|p| p.map(f32::to_bits)).collect(),
    )
}

/// Runs `seqs` as a batch and each alone on `engine` and compares bit for bit, for outputs and for sums.
fn batch_equals_one_by_one(engine: &mut dyn Engine, seqs: &[Vec<u8>], what: &str) -> TestResult {
    let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
    for want in [
        Want::ALL,
        Want {
            hidden: false,
            base_probs: true,
        },
    ] {
        let mut outs = Vec::new();
        engine.run_batch(&refs, want, &mut outs)?;
        assert_eq!(outs.len(), seqs.len());
        for (seq, got) in seqs.iter().zip(&outs) {
            let mut alone = Output::default();
            engine.run(seq, true, want, &mut alone)?;
            assert_eq!(
                got.rows,
                seq.len(),
                "{what}: rows of a {}-base sequence",
                seq.len()
            );
            assert!(
                bits(got) == bits(&alone),
                "{what}: a {}-base sequence differs in a batch ({want:?})",
                seq.len()
            );
        }
    }
    let segs: Vec<Vec<Range<usize>>> = seqs.iter().map(|s| segments(s.len())).collect();
    let seg_refs: Vec<&[Range<usize>]> = segs.iter().map(Vec::as_slice).collect();
    let mut sums = Vec::new();
    engine.run_batch_sums(&refs, &seg_refs, &mut sums)?;
    for ((seq, seg), got) in seqs.iter().zip(&segs).zip(&sums) {
        let mut alone = Vec::new();
        engine.run_sums(seq, true, seg, &mut alone)?;
        assert_eq!(got.len(), seg.len() * engine.hidden_width());
        assert!(
            got.iter()
                .map(|v| v.to_bits())
                .eq(alone.iter().map(|v| v.to_bits())),
            "{what}: sums of a {}-base sequence differ in a batch",
            seq.len()
        );
    }
    Ok(())
}

/// A batch holding a token outside the vocabulary fails and names it; so does a segment past its rows.
fn bad_input_is_refused(engine: &mut dyn Engine, seqs: &[Vec<u8>], what: &str) -> TestResult {
    let mut bad = seqs.to_vec();
    bad[3][5] = 200;
    let refs: Vec<&[u8]> = bad.iter().map(Vec::as_slice).collect();
    let mut outs = Vec::new();
    match engine.run_batch(&refs, Want::ALL, &mut outs) {
        Err(Error::Token {
            token: 200,
            offset: 5,
            ..
        }) => {}
        other => panic!("{what}: a bad token gave {other:?}"),
    }
    let refs: Vec<&[u8]> = seqs.iter().map(Vec::as_slice).collect();
    let mut segs: Vec<Vec<Range<usize>>> = seqs.iter().map(|s| segments(s.len())).collect();
    segs[4].push(0..151);
    let seg_refs: Vec<&[Range<usize>]> = segs.iter().map(Vec::as_slice).collect();
    let mut sums = Vec::new();
    assert!(
        engine.run_batch_sums(&refs, &seg_refs, &mut sums).is_err(),
        "{what}: a segment past a sequence's rows is an error"
    );
    Ok(())
}

#[test]
fn causal_batches_match_one_by_one() -> TestResult {
    let seqs = sequences()?;
    for name in ["small", "odd"] {
        let m = Arc::new(Model::from_dir(&support::golden("mamba", name).join("hf"))?);
        for threads in [2, 3] {
            let mut engine = CpuEngine::new(Arc::clone(&m), threads, 700)?;
            assert!(engine.prefers_batches());
            let what = format!("{name}, {threads} threads");
            batch_equals_one_by_one(&mut engine, &seqs, &what)?;
            // Two sequences: side by side on two threads, one at a time (every thread on each) on three.
            batch_equals_one_by_one(&mut engine, &seqs[3..5], &what)?;
            bad_input_is_refused(&mut engine, &seqs, &what)?;
        }
        let one = CpuEngine::new(Arc::clone(&m), 1, 700)?;
        assert!(!one.prefers_batches(), "one thread has nothing to gain");
    }
    Ok(())
}

#[test]
fn caduceus_batches_match_one_by_one() -> TestResult {
    let seqs = sequences()?;
    for name in ["ps-fused", "ps-unfused", "ph-fused", "ph-unfused"] {
        let m = Arc::new(CaduceusModel::from_dir(&support::golden("caduceus", name))?);
        for hidden in [Hidden::Symmetric, Hidden::Raw] {
            let mut engine = CaduceusEngine::new(Arc::clone(&m), 2, 500, hidden)?;
            assert!(engine.prefers_batches());
            let what = format!("{name}, {hidden:?}");
            batch_equals_one_by_one(&mut engine, &seqs, &what)?;
            bad_input_is_refused(&mut engine, &seqs, &what)?;
        }
    }
    Ok(())
}
