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
