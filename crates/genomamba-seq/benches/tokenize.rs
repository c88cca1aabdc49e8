//! Reader + tokenizer throughput on E. coli 536 (4.94 Mb), in bases/s.
//! Run: `data/make.sh && cargo bench -p genomamba-seq --bench tokenize`.

use std::{hint::black_box, io, path::PathBuf};

use divan::counter::ItemsCount;
use genomamba_seq::{
    OpenOptions, alphabet, open,
    window::{Event, WindowSpec, Windower},
};

const ECOLI_LEN: usize = 4_938_920;

fn main() {
    divan::main();
}

fn derived(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/derived")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run data/make.sh first",
        p.display()
    );
    p
}

/// Reads every base through the [`genomamba_seq::SequenceSource`] and tokenizes it in 64 KiB slices.
fn read_and_tokenize(file: &str) -> io::Result<usize> {
    let mut src = open(&derived(file), &OpenOptions::default())?;
    let (mut bases, mut tokens, mut mask) = (Vec::with_capacity(1 << 16), Vec::new(), Vec::new());
    let mut n = 0;
    while src.next_sequence()?.is_some() {
        loop {
            bases.clear();
            if src.read_bases(&mut bases, 1 << 16)? == 0 {
                break;
            }
            tokens.clear();
            mask.clear();
            alphabet::tokenize(&bases, &mut tokens, &mut mask).map_err(io::Error::other)?;
            n += tokens.len();
        }
    }
    Ok(n)
}

#[divan::bench(args = ["ecoli536.fa", "ecoli536.fa.gz", "ecoli536.plain.fa.gz"], sample_count = 10)]
fn reader_tokenizer(bencher: divan::Bencher, file: &str) {
    bencher.counter(ItemsCount::new(ECOLI_LEN)).bench(|| {
        let n = read_and_tokenize(black_box(file)).unwrap_or(0);
        assert_eq!(n, ECOLI_LEN);
    });
}

/// The whole path to pieces: reader, windower (W = 1 Mb, O = 1 kb, pieces of 64 k tokens), tokenizer, MD5.
#[divan::bench(sample_count = 10)]
fn windower_plain(bencher: divan::Bencher) {
    bencher.counter(ItemsCount::new(ECOLI_LEN)).bench(|| {
        let run = || -> io::Result<u64> {
            let src = open(&derived("ecoli536.fa"), &OpenOptions::default())?;
            let spec = WindowSpec {
                window: 1 << 20,
                overlap: 1000,
                bidirectional: false,
                max_piece: 1 << 16,
            };
            let mut kept = 0;
            for ev in Windower::new(src, spec) {
                if let Event::Piece(p) = ev? {
                    kept += p.keep.len() as u64;
                }
            }
            Ok(kept)
        };
        assert_eq!(run().unwrap_or(0), ECOLI_LEN as u64);
    });
}

/// The tokenizer alone on bases already in memory.
#[divan::bench(sample_count = 20)]
fn tokenize_in_memory(bencher: divan::Bencher) {
    let bases: Vec<u8> = b"ACGTacgtNACGTTGCA"
        .iter()
        .cycle()
        .take(1 << 22)
        .copied()
        .collect();
    let (mut tokens, mut mask) = (
        Vec::with_capacity(bases.len()),
        Vec::with_capacity(bases.len()),
    );
    bencher
        .counter(ItemsCount::new(bases.len()))
        .bench_local(|| {
            tokens.clear();
            mask.clear();
            let _ = alphabet::tokenize(black_box(&bases), &mut tokens, &mut mask);
            black_box(tokens.len())
        });
}
