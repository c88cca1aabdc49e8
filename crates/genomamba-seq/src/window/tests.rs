//! Windower tests: fixed cases and seeded property loops (every base kept once, in order, right coordinates).

use super::*;
use crate::{Format, OpenOptions, open_reader};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn fasta(records: &[(String, Vec<u8>)], width: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, seq) in records {
        out.extend_from_slice(format!(">{name}\n").as_bytes());
        for line in seq.chunks(width) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out
}

fn windower(data: Vec<u8>, spec: WindowSpec) -> io::Result<Windower> {
    let src = open_reader(
        Box::new(io::Cursor::new(data)),
        "t.fa",
        &OpenOptions::default().with_format(Format::Fasta),
    )?;
    Ok(Windower::new(src, spec))
}

/// Checks the invariants and returns, per sequence, the kept bases.
fn check(records: &[(String, Vec<u8>)], spec: WindowSpec, w: Windower) -> io::Result<()> {
    let mut kept: Vec<Vec<u8>> = vec![Vec::new(); records.len()];
    let mut ends = 0;
    let mut expect_first = true;
    for ev in w {
        match ev? {
            Event::Piece(p) => {
                let seq = &records[p.seq_index].1;
                let len = seq.len() as u64;
                assert_eq!(p.tokens.len(), p.bases.len());
                assert_eq!(p.soft_masked.len(), p.bases.len());
                assert_eq!(
                    &seq[p.start as usize..p.start as usize + p.bases.len()],
                    &p.bases[..],
                    "coordinates"
                );
                let (ks, ke) = p.kept_span();
                assert_eq!(ks, kept[p.seq_index].len() as u64, "in order, no gaps");
                assert!(ke > ks);
                assert_eq!(p.first, expect_first);
                expect_first = p.last;
                if spec.window > 0 {
                    let win = spec.window;
                    assert_eq!(ks / win, p.window_index);
                    assert_eq!((ke - 1) / win, p.window_index, "piece inside its window");
                    if p.last {
                        assert!(ke == len || ke % win == 0);
                    }
                }
                if spec.bidirectional {
                    assert!(p.first && p.last);
                    assert_eq!(p.start, ks.saturating_sub(spec.overlap));
                    assert_eq!(
                        p.start + p.tokens.len() as u64,
                        (ke + spec.overlap).min(len)
                    );
                } else {
                    assert!(p.keep.len() <= spec.max_piece.max(1));
                    let burn = if p.first { ks.min(spec.overlap) } else { 0 };
                    assert_eq!(p.keep.start as u64, burn);
                    assert_eq!(p.keep.end, p.tokens.len());
                }
                kept[p.seq_index].extend_from_slice(&p.bases[p.keep.clone()]);
            }
            Event::SequenceEnd(s) => {
                assert_eq!(s.seq_index, ends);
                assert_eq!(s.length, records[ends].1.len() as u64);
                assert!(expect_first, "sequence ends after a window's last piece");
                ends += 1;
            }
        }
    }
    assert_eq!(ends, records.len());
    for (k, (_, seq)) in kept.iter().zip(records) {
        assert_eq!(k, seq, "every base kept exactly once");
    }
    Ok(())
}

#[test]
fn test_windows_property_random() -> io::Result<()> {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for case in 0..300 {
        let n_rec = rng.random_range(1..4);
        let records: Vec<(String, Vec<u8>)> = (0..n_rec)
            .map(|i| {
                let len = rng.random_range(1..300);
                (
                    format!("r{i}"),
                    (0..len)
                        .map(|_| b"ACGTNacgtnRY"[rng.random_range(0..12)])
                        .collect(),
                )
            })
            .collect();
        let spec = WindowSpec {
            window: [0, 1, 2, 7, 50, 64, 1000][rng.random_range(0..7)],
            overlap: rng.random_range(0..40),
            bidirectional: case % 3 == 0,
            max_piece: rng.random_range(1..80),
        };
        let width = rng.random_range(1..90);
        check(&records, spec, windower(fasta(&records, width), spec)?)?;
    }
    Ok(())
}

#[test]
fn test_causal_burn_in_and_summary_on_lambda() -> io::Result<()> {
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/genomes/lambda_virus.fa"
    ))?;
    let spec = WindowSpec {
        window: 10_000,
        overlap: 500,
        bidirectional: false,
        max_piece: 4096,
    };
    let mut w = windower(data, spec)?;
    let mut firsts = Vec::new();
    let mut summary = None;
    while let Some(ev) = w.next_event()? {
        match ev {
            Event::Piece(p) if p.first => {
                firsts.push((p.window_index, p.start, p.keep.start, p.tokens.len()))
            }
            Event::Piece(_) => {}
            Event::SequenceEnd(s) => summary = Some(s),
        }
    }
    assert_eq!(firsts[0], (0, 0, 0, 4096));
    assert_eq!(firsts[1], (1, 9_500, 500, 4596));
    assert_eq!(firsts.len(), 5);
    let s = summary.expect("summary");
    assert_eq!((s.length, s.n_count), (48_502, 0));
    // `samtools dict data/genomes/lambda_virus.fa` gives M5:509bdb356475a21077713babc47a4a35
    let hex: String = s.md5.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, LAMBDA_M5);
    Ok(())
}

const LAMBDA_M5: &str = "509bdb356475a21077713babc47a4a35";

#[test]
fn test_whole_sequence_streams_in_bounded_pieces() -> io::Result<()> {
    // A 3 Mb record with W = 0: pieces never exceed max_piece + O tokens.
    let seq: Vec<u8> = b"ACGT".iter().cycle().take(3_000_000).copied().collect();
    let spec = WindowSpec {
        window: 0,
        overlap: 100,
        bidirectional: false,
        max_piece: 65_536,
    };
    let mut w = windower(fasta(&[("big".into(), seq)], 60), spec)?;
    let (mut max, mut total, mut pieces) = (0, 0, 0);
    while let Some(ev) = w.next_event()? {
        if let Event::Piece(p) = ev {
            max = max.max(p.tokens.len());
            total += p.keep.len();
            pieces += 1;
            assert_eq!(p.window_index, 0);
        }
    }
    assert_eq!((max, total, pieces), (65_536, 3_000_000, 46));
    Ok(())
}

#[test]
fn test_invalid_base_names_record_and_position() -> io::Result<()> {
    let w = windower(
        b">ok\nACGT\n>bad\nACGT\nAC-T\n".to_vec(),
        WindowSpec::default(),
    )?;
    let err = w.filter_map(|e| e.err()).next().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("t.fa: record 'bad': invalid base '-' at position 7 (1-based)")
    );
    Ok(())
}

/// Streams regions `[start, end)` of one in-memory record with up to `context` bases around each, as an
/// indexed FASTA reader does.
struct RegionSlices {
    seq: Vec<u8>,
    regions: Vec<(u64, u64)>,
    context: (u64, u64),
    next: usize,
    at: usize,
    to: usize,
}

impl SequenceSource for RegionSlices {
    fn next_sequence(&mut self) -> io::Result<Option<SequenceInfo>> {
        let Some(&(start, end)) = self.regions.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let lead = self.context.0.min(start);
        let trail = self.context.1.min(self.seq.len() as u64 - end);
        (self.at, self.to) = ((start - lead) as usize, (end + trail) as usize);
        Ok(Some(SequenceInfo {
            name: "r".into(),
            start,
            len: Some(end - start),
            lead,
            trail,
            ..Default::default()
        }))
    }
    fn read_bases(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let n = max.min(self.to - self.at);
        buf.extend_from_slice(&self.seq[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
    fn input_name(&self) -> &str {
        "slices"
    }
}

/// The pieces of a windower, without the per-sequence indexes: (start, tokens, keep, first, last).
type PieceKey = (u64, Vec<u8>, Range<usize>, bool, bool);

fn pieces_and_summaries(w: Windower) -> io::Result<(Vec<PieceKey>, Vec<SequenceSummary>)> {
    let (mut pieces, mut ends) = (Vec::new(), Vec::new());
    for ev in w {
        match ev? {
            Event::Piece(p) => pieces.push((p.start, p.tokens, p.keep, p.first, p.last)),
            Event::SequenceEnd(s) => ends.push(s),
        }
    }
    Ok((pieces, ends))
}

#[test]
fn test_regions_cut_at_window_boundaries_equal_the_whole_record() -> io::Result<()> {
    let mut rng = StdRng::seed_from_u64(0xc0de);
    for case in 0..300 {
        let len = rng.random_range(1..400u64);
        let seq: Vec<u8> = (0..len)
            .map(|_| b"ACGTNacgt"[rng.random_range(0..9)])
            .collect();
        let spec = WindowSpec {
            window: [1, 2, 7, 50, 64][rng.random_range(0..5)],
            overlap: rng.random_range(0..40),
            bidirectional: case % 2 == 0,
            max_piece: rng.random_range(1..80),
        };
        // Cut points on the window grid; every region at least one base long.
        let mut cuts: Vec<u64> = (1..=len.div_ceil(spec.window))
            .map(|k| k * spec.window)
            .filter(|&c| c < len && rng.random_bool(0.3))
            .collect();
        cuts.insert(0, 0);
        cuts.push(len);
        let regions: Vec<(u64, u64)> = cuts.windows(2).map(|c| (c[0], c[1])).collect();
        let whole = RegionSlices {
            seq: seq.clone(),
            regions: vec![(0, len)],
            context: (0, 0),
            next: 0,
            at: 0,
            to: 0,
        };
        let sharded = RegionSlices {
            seq: seq.clone(),
            regions: regions.clone(),
            context: (
                spec.overlap,
                if spec.bidirectional { spec.overlap } else { 0 },
            ),
            next: 0,
            at: 0,
            to: 0,
        };
        let (want, _) = pieces_and_summaries(Windower::new(Box::new(whole), spec))?;
        let (got, ends) = pieces_and_summaries(Windower::new(Box::new(sharded), spec))?;
        assert_eq!(got, want, "case {case}: {spec:?} regions {regions:?}");
        for (end, &(s, e)) in ends.iter().zip(&regions) {
            let upper: Vec<u8> = seq[s as usize..e as usize].to_ascii_uppercase();
            assert_eq!(end.length, e - s);
            assert_eq!(end.md5, <[u8; 16]>::from(Md5::digest(&upper)));
            assert_eq!(
                end.n_count,
                upper.iter().filter(|&&b| b == b'N').count() as u64
            );
        }
    }
    Ok(())
}
