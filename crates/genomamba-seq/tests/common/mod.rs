//! Shared helpers for the integration tests: data paths, samtools, draining a source.

#![allow(dead_code)]

use std::{
    io,
    path::{Path, PathBuf},
    process::Command,
};

use genomamba_seq::{OpenOptions, SequenceInfo, SequenceSource, open};

/// `data/` at the workspace root.
pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// A file under `data/derived/`, with a clear message when `data/make.sh` has not been run.
pub fn derived(name: &str) -> PathBuf {
    let p = data().join("derived").join(name);
    assert!(
        p.exists(),
        "{} is missing: run data/make.sh first (it needs samtools and bgzip)",
        p.display()
    );
    p
}

/// Whether samtools can be run. Absent samtools skips the test only outside CI (`CI` unset); in CI it fails.
pub fn have_samtools(test: &str) -> bool {
    let ok = Command::new("samtools")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: samtools is required in CI (apt-get install samtools)"
        );
        eprintln!("SKIPPED {test}: samtools not found (install it to run the cross-checks)");
    }
    ok
}

/// Runs samtools and returns its stdout.
pub fn samtools(args: &[&str]) -> io::Result<Vec<u8>> {
    let out = Command::new("samtools").args(args).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "samtools {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

/// Parses FASTA text into (name up to whitespace, bases).
pub fn parse_fasta(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(h) = line.strip_prefix(b">") {
            let name = String::from_utf8_lossy(h)
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            out.push((name, Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.extend_from_slice(line);
        }
    }
    out
}

/// Reads every sequence of a source in slices of `step` bases.
pub fn drain(
    src: &mut dyn SequenceSource,
    step: usize,
) -> io::Result<Vec<(SequenceInfo, Vec<u8>)>> {
    let mut out = Vec::new();
    while let Some(info) = src.next_sequence()? {
        let mut buf = Vec::new();
        while src.read_bases(&mut buf, step)? > 0 {}
        out.push((info, buf));
    }
    Ok(out)
}

/// Opens and drains `path`.
pub fn read_all(path: &Path, opts: &OpenOptions) -> io::Result<Vec<(SequenceInfo, Vec<u8>)>> {
    let mut src = open(path, opts)?;
    drain(&mut *src, 1000)
}

/// Names and bases only.
pub fn names_bases(v: Vec<(SequenceInfo, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    v.into_iter().map(|(i, b)| (i.name, b)).collect()
}

/// Compares two read lists, reporting counts and the first difference (names only) instead of dumping bytes.
pub fn assert_same(got: &[(String, Vec<u8>)], expected: &[(String, Vec<u8>)], ctx: &str) {
    let first_diff = got.iter().zip(expected).position(|(a, b)| a != b);
    if let Some(i) = first_diff {
        panic!(
            "{ctx}: first difference at #{i}: got {} ({} bases), expected {} ({} bases); counts {} vs {}",
            got[i].0,
            got[i].1.len(),
            expected[i].0,
            expected[i].1.len(),
            got.len(),
            expected.len()
        );
    }
    assert_eq!(got.len(), expected.len(), "{ctx}: counts differ");
}
