//! Each bad input gets a clear `io::Error` naming the file (and record/position where it applies), never a panic.

mod common;

use std::{fs, io, path::Path};

use common::*;
use genomamba_seq::{
    OpenOptions, Region,
    window::{WindowSpec, Windower},
};

/// Opens and drains `path` through the windower; returns the error text.
fn error_of(path: &Path, opts: &OpenOptions) -> String {
    let run = || -> io::Result<()> {
        let src = genomamba_seq::open(path, opts)?;
        for ev in Windower::new(src, WindowSpec::default()) {
            ev?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => panic!("{} was accepted", path.display()),
        Err(e) => e.to_string(),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<std::path::PathBuf> {
    let p = dir.join(name);
    fs::write(&p, bytes)?;
    Ok(p)
}

fn expect(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

#[test]
fn test_truncated_gzip() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    for src in ["mixed.plain.fa.gz", "mixed.fa.gz"] {
        let bytes = fs::read(derived(src))?;
        let p = write(tmp.path(), src, &bytes[..bytes.len() / 2])?;
        let msg = error_of(&p, &OpenOptions::default());
        expect(&msg, &[&p.display().to_string()]);
    }
    Ok(())
}

#[test]
fn test_fasta_structure_errors() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    let cases: &[(&str, &[u8], &[&str])] = &[
        ("noheader.fa", b"ACGTACGT\n", &["not FASTA"]),
        (
            "empty_record.fa",
            b">a\nACGT\n>b\n>c\nAC\n",
            &["record 'b' is empty"],
        ),
        (
            "dup.fa",
            b">a\nACGT\n>b\nAC\n>a\nGG\n",
            &["duplicate record name 'a'"],
        ),
        (
            "invalid.fa",
            b">a\nACGT\n>b x\nACGT\nAC.T\n",
            &["record 'b'", "invalid base '.'", "position 7 (1-based)"],
        ),
        (
            "space.fa",
            b">a\nACGT ACGT\n",
            &["record 'a'", "invalid base ' '", "position 5"],
        ),
        ("empty.fa", b"", &["empty input"]),
    ];
    for (name, bytes, parts) in cases {
        let p = write(tmp.path(), name, bytes)?;
        let msg = error_of(
            &p,
            &OpenOptions::default().with_format(genomamba_seq::Format::Fasta),
        );
        expect(&msg, &[&p.display().to_string()]);
        expect(&msg, parts);
    }
    Ok(())
}

#[test]
fn test_index_and_region_errors() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    // A .fai made for the CRLF variant does not match the LF file.
    let fa = write(tmp.path(), "m.fa", &fs::read(derived("mixed.fa"))?)?;
    fs::copy(derived("mixed_crlf.fa.fai"), tmp.path().join("m.fa.fai"))?;
    let r = |s: &str| -> Region { s.parse().unwrap_or_else(|e| panic!("{e}")) };
    let msg = error_of(
        &fa,
        &OpenOptions::default().with_regions(vec![r("ecoli_100000_104000:1-100")]),
    );
    expect(&msg, &["m.fa", "ecoli_100000_104000", "does not match"]);

    let lambda = derived("lambda_virus.fa.gz");
    let name = "gi|9626243|ref|NC_001416.1|";
    let msg = error_of(
        &lambda,
        &OpenOptions::default().with_regions(vec![r(&format!("{name}:48000-48503"))]),
    );
    expect(
        &msg,
        &["lambda_virus.fa.gz", "outside the record (length 48502)"],
    );
    let msg = error_of(
        &lambda,
        &OpenOptions::default().with_regions(vec![r("chr1:1-10")]),
    );
    expect(&msg, &["unknown record name 'chr1'"]);
    let msg = error_of(
        &derived("lambda_virus.fa"),
        &OpenOptions::default().with_names(vec!["nope".into()]),
    );
    expect(&msg, &["unknown record name 'nope'"]);
    let msg = error_of(
        &derived("lambda_virus.plain.fa.gz"),
        &OpenOptions::default().with_regions(vec![r(name)]),
    );
    expect(&msg, &["plain gzip", "bgzip", "samtools faidx"]);
    let msg = error_of(
        &derived("lambda_virus.plain.fa.gz"),
        &OpenOptions::default().with_names(vec!["nope".into()]),
    );
    expect(&msg, &["unknown record name(s): nope"]);
    // No index at all: the message says how to make one.
    let bare = write(
        tmp.path(),
        "bare.fa",
        &fs::read(derived("lambda_virus.fa"))?,
    )?;
    let msg = error_of(&bare, &OpenOptions::default().with_regions(vec![r(name)]));
    expect(&msg, &["bare.fa.fai", "samtools faidx", "bare.fa`"]);
    let bare_gz = write(tmp.path(), "bare.fa.gz", &fs::read(&lambda)?)?;
    let msg = error_of(
        &bare_gz,
        &OpenOptions::default().with_regions(vec![r(name)]),
    );
    expect(&msg, &["bare.fa.gz.fai", "samtools faidx", "and the .gzi"]);
    Ok(())
}

/// `region_index` says whether a FASTA can be read by region and checks the records asked about; a FASTA edited
/// after `samtools faidx` is refused, for region reads as well.
#[test]
fn test_region_index_and_stale_indexes() -> io::Result<()> {
    use genomamba_seq::fasta::indexed::{RegionIndex, lengths, region_index};
    let tmp = tempfile::tempdir()?;
    let fa = derived("mixed.fa");
    let fai = fs::read_to_string(derived("mixed.fa.fai"))?;
    let first = fai.split('\t').next().unwrap_or_default().to_string();
    let expected: Vec<(String, u64)> = fai
        .lines()
        .map(|l| {
            let mut cols = l.split('\t');
            let name = cols.next().unwrap_or_default().to_string();
            (name, cols.next().and_then(|n| n.parse().ok()).unwrap_or(0))
        })
        .collect();
    assert_eq!(lengths(&fa)?.as_ref(), Some(&expected));
    assert_eq!(
        region_index(&fa, &[&first, "absent"])?,
        RegionIndex::Ready(expected.clone())
    );
    assert_eq!(
        region_index(&derived("mixed.fa.gz"), &[&first])?,
        RegionIndex::Ready(expected.clone())
    );
    // No index; an index of a file that cannot be read by region.
    let bare = write(tmp.path(), "bare.fa", &fs::read(&fa)?)?;
    assert_eq!(region_index(&bare, &[])?, RegionIndex::Missing);
    assert_eq!(lengths(&bare)?, None);
    let plain = write(
        tmp.path(),
        "p.fa.gz",
        &fs::read(derived("mixed.plain.fa.gz"))?,
    )?;
    write(tmp.path(), "p.fa.gz.fai", fai.as_bytes())?;
    assert!(
        matches!(region_index(&plain, &[])?, RegionIndex::Unusable(why) if why.contains("plain gzip"))
    );
    let bgzf = write(tmp.path(), "b.fa.gz", &fs::read(derived("mixed.fa.gz"))?)?;
    write(tmp.path(), "b.fa.gz.fai", fai.as_bytes())?;
    assert!(
        matches!(region_index(&bgzf, &[])?, RegionIndex::Unusable(why) if why.contains("b.fa.gz.gzi"))
    );
    // Bases appended to the first record after indexing: its index is stale.
    let text = String::from_utf8(fs::read(&fa)?).map_err(io::Error::other)?;
    let second = text[1..].find("\n>").map_or(text.len(), |i| i + 1);
    let edited = format!("{}ACGT\n{}", &text[..second + 1], &text[second + 1..]);
    let stale = write(tmp.path(), "s.fa", edited.as_bytes())?;
    write(tmp.path(), "s.fa.fai", fai.as_bytes())?;
    let msg = region_index(&stale, &[&first])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    expect(
        &msg,
        &[
            "s.fa",
            &format!("record '{first}'"),
            "goes on past the index's",
            "samtools faidx",
        ],
    );
    // Only the records asked about are checked.
    assert!(matches!(region_index(&stale, &[])?, RegionIndex::Ready(_)));
    let msg = error_of(
        &stale,
        &OpenOptions::default().with_regions(vec![Region::new(first.clone(), 0, Some(10))]),
    );
    expect(&msg, &["s.fa", "goes on past the index's"]);
    Ok(())
}

#[test]
fn test_bam_and_cram_errors() -> io::Result<()> {
    let r: Region = "gi|9626243|ref|NC_001416.1|:1-100"
        .parse()
        .map_err(io::Error::from)?;
    let msg = error_of(
        &derived("lambda_noindex.bam"),
        &OpenOptions::default().with_regions(vec![r.clone()]),
    );
    expect(
        &msg,
        &["lambda_noindex.bam", "needs a BAM index", "samtools index"],
    );
    let msg = error_of(&data().join("reads/lambda.cram"), &OpenOptions::default());
    expect(&msg, &["lambda.cram", "needs the reference FASTA"]);
    let bad: Region = "chrZ:1-10".parse().map_err(io::Error::from)?;
    let msg = error_of(
        &data().join("reads/lambda.bam"),
        &OpenOptions::default().with_regions(vec![bad]),
    );
    expect(&msg, &["unknown reference name 'chrZ'"]);
    let tmp = tempfile::tempdir()?;
    let bytes = fs::read(data().join("reads/lambda.bam"))?;
    let p = write(tmp.path(), "cut.bam", &bytes[..bytes.len() / 3])?;
    let msg = error_of(&p, &OpenOptions::default());
    expect(&msg, &["cut.bam"]);
    Ok(())
}
