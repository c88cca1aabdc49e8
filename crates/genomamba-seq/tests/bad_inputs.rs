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
    // Bases appended to the second record (of four) after indexing: its index is stale.
    let second_name = &expected[1].0;
    let text = String::from_utf8(fs::read(&fa)?).map_err(io::Error::other)?;
    let third = text[1..]
        .match_indices("\n>")
        .nth(1)
        .map_or(text.len(), |(i, _)| i + 1);
    let edited = format!("{}ACGT\n{}", &text[..third + 1], &text[third + 1..]);
    let stale = write(tmp.path(), "s.fa", edited.as_bytes())?;
    write(tmp.path(), "s.fa.fai", fai.as_bytes())?;
    // The message of the error region_index must give.
    let refused = |path: &Path, check: &[&str]| {
        region_index(path, check)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let msg = refused(&stale, &[second_name]);
    expect(
        &msg,
        &[
            "s.fa",
            &format!("record '{second_name}'"),
            "goes on past the index's",
            "samtools faidx",
        ],
    );
    // The last record is always checked, and the bases added before it moved it.
    let last = &expected[expected.len() - 1].0;
    let msg = refused(&stale, &[]);
    expect(
        &msg,
        &[
            "s.fa",
            &format!("record '{last}'"),
            "no line end before offset",
        ],
    );
    let msg = error_of(
        &stale,
        &OpenOptions::default().with_regions(vec![Region::new(second_name.clone(), 0, Some(10))]),
    );
    expect(&msg, &["s.fa", "goes on past the index's"]);
    // An index made for another FASTA: its first record's offset is a line start of this one, but no header
    // line names it there.
    let lambda = write(
        tmp.path(),
        "lambda.fa",
        &fs::read(data().join("genomes/lambda_virus.fa"))?,
    )?;
    write(tmp.path(), "lambda.fa.fai", fai.as_bytes())?;
    let msg = refused(&lambda, &[]);
    expect(
        &msg,
        &[
            "lambda.fa",
            &format!("record '{first}'"),
            "the .fai index does not match the FASTA",
        ],
    );
    // Header lines longer than the first look back (256 bytes) are read further back; past 64 KiB the name is
    // left unchecked, not refused.
    for (description, wrong_name_caught) in [(300, true), (70_000, false)] {
        let fasta = format!(">{first} {}\nACGTACGT\nACG\n", "d".repeat(description));
        let long = write(tmp.path(), "long.fa", fasta.as_bytes())?;
        write(
            tmp.path(),
            "long.fa.fai",
            fai_line(fasta.as_bytes(), None).as_bytes(),
        )?;
        assert_eq!(
            region_index(&long, &[&first])?,
            RegionIndex::Ready(vec![(first.clone(), 11)])
        );
        let renamed = fasta.replacen(&first, &"x".repeat(first.len()), 1);
        write(tmp.path(), "long.fa", renamed.as_bytes())?;
        assert_eq!(
            region_index(&long, &[]).is_err(),
            wrong_name_caught,
            "{description}"
        );
    }
    // A header that names another record, where the index's record starts (a record renamed since).
    let other = "x".repeat(first.len());
    let renamed = text.replacen(&format!(">{first}"), &format!(">{other}"), 1);
    let renamed = write(tmp.path(), "n.fa", renamed.as_bytes())?;
    write(tmp.path(), "n.fa.fai", fai.as_bytes())?;
    let msg = refused(&renamed, &[]);
    expect(
        &msg,
        &[
            "n.fa",
            &format!("record '{first}'"),
            &format!(
                "the header line before offset {} is '>{other}'",
                first.len() + 2
            ),
        ],
    );
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

/// A `.fai` line for a FASTA of one record (header line, then lines of equal width).
fn fai_line(fasta: &[u8], length: Option<u64>) -> String {
    let header = fasta.iter().position(|&b| b == b'\n').unwrap_or(0);
    let name = String::from_utf8_lossy(&fasta[1..header]);
    let name = name
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let body = &fasta[header + 1..];
    let width = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let bases = body.iter().filter(|&&b| b != b'\n').count() as u64;
    format!(
        "{name}\t{}\t{}\t{width}\t{}\n",
        length.unwrap_or(bases),
        header + 1,
        width + 1
    )
}

/// A CRAM decoded against a reference with one base changed, or without the reads' sequence: the error names
/// the reference and says what differs (MD5s in hex, as `@SQ M5` writes them), streamed and by region.
#[test]
fn test_cram_against_another_reference() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    let cram = data().join("reads/lambda.cram");
    let mut bases = fs::read(derived("lambda_virus.fa"))?;
    let at = bases.iter().position(|&b| b == b'\n').unwrap_or(0) + 10;
    bases[at] = if bases[at] == b'A' { b'C' } else { b'A' };
    let changed = write(tmp.path(), "changed.fa", &bases)?;
    write(
        tmp.path(),
        "changed.fa.fai",
        fai_line(&bases, None).as_bytes(),
    )?;
    let region: Region = "gi|9626243|ref|NC_001416.1|:1-1000".parse()?;
    for opts in [
        OpenOptions::default(),
        OpenOptions::default().with_regions(vec![region]),
    ] {
        let msg = error_of(&cram, &opts.with_reference(&changed));
        expect(
            &msg,
            &[
                "lambda.cram: ",
                "the bases of the reference ",
                "changed.fa differ from those the CRAM was written against (MD5 of the slice's reference span: \
                 the CRAM has ",
                "is --reference the FASTA the CRAM was written against?",
            ],
        );
        let hex = |label: &str| {
            let from = msg.find(label).map_or(0, |i| i + label.len());
            msg[from..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .count()
        };
        assert_eq!(
            (hex("the CRAM has "), hex("the FASTA gives ")),
            (32, 32),
            "{msg}"
        );
    }
    let renamed = [
        &b">other"[..],
        &bases[bases.iter().position(|&b| b == b'\n').unwrap_or(0)..],
    ]
    .concat();
    let renamed = write(tmp.path(), "renamed.fa", &renamed)?;
    write(
        tmp.path(),
        "renamed.fa.fai",
        fai_line(&fs::read(&renamed)?, None).as_bytes(),
    )?;
    let msg = error_of(&cram, &OpenOptions::default().with_reference(&renamed));
    expect(
        &msg,
        &[
            "lambda.cram: CRAM record 1: the reads are aligned to 'gi|9626243|ref|NC_001416.1|', which the \
             reference ",
            "renamed.fa does not have",
        ],
    );
    Ok(())
}

/// A CRAM decoded against a reference whose record has the CRAM's name but is shorter: refused before any read
/// (lengths differ), and where the `.fai` hides that, the decoder's panic is an error, never a short clean end.
#[test]
fn test_cram_against_a_shorter_reference() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    let cram = data().join("reads/lambda.cram");
    let head = &fs::read(derived("lambda_virus.fa"))?[..2000];
    let small = write(tmp.path(), "small.fa", head)?;
    let fai = fai_line(head, None);
    write(tmp.path(), "small.fa.fai", fai.as_bytes())?;
    let short = fai.split('\t').nth(1).unwrap_or_default().to_string();
    let msg = error_of(&cram, &OpenOptions::default().with_reference(&small));
    expect(
        &msg,
        &[
            "lambda.cram: reference sequence 'gi|9626243|ref|NC_001416.1|' is 48502 bases long in the CRAM \
             header (@SQ LN) but ",
            &format!(" but {short} in the reference "),
            "small.fa",
            "--reference",
        ],
    );
    let region: Region = "gi|9626243|ref|NC_001416.1|:1-100".parse()?;
    let msg = error_of(
        &cram,
        &OpenOptions::default()
            .with_reference(&small)
            .with_regions(vec![region]),
    );
    expect(&msg, &["lambda.cram", "48502 bases long", "small.fa"]);

    // The same bases behind a .fai that claims the full length: noodles panics decoding the first container.
    let liar = write(tmp.path(), "liar.fa", head)?;
    write(
        tmp.path(),
        "liar.fa.fai",
        fai_line(head, Some(48502)).as_bytes(),
    )?;
    let msg = error_of(&cram, &OpenOptions::default().with_reference(&liar));
    expect(
        &msg,
        &[
            "lambda.cram: decoding a CRAM container against the reference failed before the first record (is \
             --reference the FASTA the CRAM was written against?): ",
            "out of range",
        ],
    );
    // Many small containers: those within the short reference decode, then the error (not a clean end).
    if !have_samtools("test_cram_against_a_shorter_reference") {
        return Ok(());
    }
    let many = tmp.path().join("many.cram");
    samtools(&[
        "view",
        "-C",
        "--no-PG",
        "-T",
        derived("lambda_virus.fa").to_str().unwrap_or_default(),
        "--output-fmt-option",
        "seqs_per_slice=50",
        "-o",
        many.to_str().unwrap_or_default(),
        data().join("reads/lambda.bam").to_str().unwrap_or_default(),
    ])?;
    let mut src = genomamba_seq::open(&many, &OpenOptions::default().with_reference(&liar))?;
    let mut reads = 0;
    let err = loop {
        match src.next_sequence() {
            Ok(Some(_)) => reads += 1,
            Ok(None) => panic!("many.cram ended cleanly after {reads} reads"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(reads > 0, "{err}");
    expect(
        &err,
        &[
            "many.cram",
            "decoding a CRAM container",
            "failed after record",
        ],
    );
    Ok(())
}

/// The CRAM end-of-file container: streamed, the decoder fails where the input ends; by region, the file is
/// checked when it is opened.
#[test]
fn test_cram_without_its_eof_container() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    let bytes = fs::read(data().join("reads/lambda.cram"))?;
    let p = write(tmp.path(), "cut.cram", &bytes[..bytes.len() - 38])?;
    fs::copy(
        data().join("reads/lambda.cram.crai"),
        tmp.path().join("cut.cram.crai"),
    )?;
    let opts = OpenOptions::default().with_reference(derived("lambda_virus.fa"));
    let msg = error_of(&p, &opts);
    expect(&msg, &["cut.cram", "truncated"]);
    let region: Region = "gi|9626243|ref|NC_001416.1|:1-100".parse()?;
    let msg = error_of(&p, &opts.with_regions(vec![region]));
    expect(
        &msg,
        &["cut.cram: ends without the CRAM end-of-file container: the file is truncated"],
    );
    Ok(())
}

/// The offsets where the BGZF blocks of `bytes` start (from each block's BSIZE), and the end.
fn bgzf_blocks(bytes: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut out = vec![0];
    while at + 18 <= bytes.len() {
        at += usize::from(u16::from_le_bytes([bytes[at + 16], bytes[at + 17]])) + 1;
        out.push(at);
    }
    out
}

const NO_MARKER: &str = "ends without the BGZF end-of-file marker: the file is truncated (or was written \
                         by a tool that omits the marker: re-compress it with bgzip)";

/// bgzip input cut at a block boundary decompresses cleanly: only the missing end-of-file marker tells. Streamed
/// FASTA, FASTQ and BAM fail where they end; files read by region are checked when opened.
#[test]
fn test_bgzf_cut_at_a_block_boundary() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    let ecoli = "gi|110640213|ref|NC_008253.1|";
    let bytes = fs::read(derived("ecoli536.fa.gz"))?;
    let blocks = bgzf_blocks(&bytes);
    assert_eq!(blocks.last(), Some(&bytes.len()));
    assert_eq!(&bytes[blocks[blocks.len() - 2]..][..4], &[0x1f, 0x8b, 8, 4]);
    let cut = blocks[blocks.len() / 2];
    let p = write(tmp.path(), "cut.fa.gz", &bytes[..cut])?;
    let msg = error_of(&p, &OpenOptions::default());
    expect(
        &msg,
        &["cut.fa.gz: ", &format!("record '{ecoli}': "), NO_MARKER],
    );
    // The same stream from standard input (`open_reader`).
    let run = || -> io::Result<()> {
        let src = genomamba_seq::open_reader(
            Box::new(io::Cursor::new(bytes[..cut].to_vec())),
            "-",
            &OpenOptions::default(),
        )?;
        for ev in Windower::new(src, WindowSpec::default()) {
            ev?;
        }
        Ok(())
    };
    expect(&run().unwrap_err().to_string(), &["-: ", NO_MARKER]);
    // By region, through the .fai and .gzi of the whole file: the region itself is in the blocks kept.
    for ext in [".fai", ".gzi"] {
        fs::copy(
            derived(&format!("ecoli536.fa.gz{ext}")),
            tmp.path().join(format!("cut.fa.gz{ext}")),
        )?;
    }
    let region: Region = format!("{ecoli}:1-100").parse()?;
    let msg = error_of(&p, &OpenOptions::default().with_regions(vec![region]));
    expect(&msg, &["cut.fa.gz: ", NO_MARKER]);

    // BAM: without its marker block, streamed and by region.
    let bam = fs::read(data().join("reads/lambda.bam"))?;
    let p = write(tmp.path(), "cut.bam", &bam[..bam.len() - 28])?;
    let msg = error_of(&p, &OpenOptions::default());
    expect(&msg, &["cut.bam: ", NO_MARKER]);
    fs::copy(
        data().join("reads/lambda.bam.bai"),
        tmp.path().join("cut.bam.bai"),
    )?;
    let region: Region = "gi|9626243|ref|NC_001416.1|:1-100".parse()?;
    let msg = error_of(&p, &OpenOptions::default().with_regions(vec![region]));
    expect(&msg, &["cut.bam: ", NO_MARKER]);

    // bgzip FASTQ cut at a block boundary (the text made of several blocks).
    let mut text = Vec::new();
    io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(fs::File::open(
            data().join("reads/lambda_pairs_1.fq.gz"),
        )?),
        &mut text,
    )?;
    let mut writer = noodles::bgzf::io::Writer::new(Vec::new());
    io::Write::write_all(&mut writer, &text)?;
    let fq = writer.finish()?;
    let whole = write(tmp.path(), "whole.fq.gz", &fq)?;
    assert_eq!(read_all(&whole, &OpenOptions::default())?.len(), 1000);
    let blocks = bgzf_blocks(&fq);
    assert!(blocks.len() > 3, "{} blocks", blocks.len());
    let p = write(tmp.path(), "cut.fq.gz", &fq[..blocks[1]])?;
    let msg = error_of(&p, &OpenOptions::default());
    expect(&msg, &["cut.fq.gz: ", NO_MARKER]);
    Ok(())
}

/// Truncated input says it is truncated, and where.
#[test]
fn test_truncation_is_named() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    // bgzip cut inside a block (not at a boundary): no marker at the end either.
    let bytes = fs::read(derived("ecoli536.fa.gz"))?;
    let p = write(tmp.path(), "half.fa.gz", &bytes[..bytes.len() / 2 + 7])?;
    let msg = error_of(&p, &OpenOptions::default());
    expect(
        &msg,
        &[
            "half.fa.gz: record 'gi|110640213|ref|NC_008253.1|': ",
            NO_MARKER,
        ],
    );
    // FASTQ cut inside its second record: plain, gzip of the cut text, and a cut gzip stream.
    let mut text = Vec::new();
    io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(fs::File::open(
            data().join("reads/lambda_long.fq.gz"),
        )?),
        &mut text,
    )?;
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            text.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let cut = &text[..line_starts[5] + 10];
    let p = write(tmp.path(), "cut.fq", cut)?;
    let msg = error_of(&p, &OpenOptions::default());
    expect(
        &msg,
        &["cut.fq: the input ends inside FASTQ record 2 ('r2'): the file is truncated"],
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    io::Write::write_all(&mut gz, cut)?;
    let p = write(tmp.path(), "cut.fq.gz", &gz.finish()?)?;
    let msg = error_of(&p, &OpenOptions::default());
    expect(
        &msg,
        &["cut.fq.gz: the input ends inside FASTQ record 2 ('r2')"],
    );
    let gz = fs::read(data().join("reads/lambda_long.fq.gz"))?;
    let p = write(tmp.path(), "half.fq.gz", &gz[..gz.len() / 2])?;
    let msg = error_of(&p, &OpenOptions::default());
    expect(
        &msg,
        &[
            "half.fq.gz: the input ends inside FASTQ record ",
            "truncated",
        ],
    );
    // Cut inside the quality line of the last record: fewer scores than bases.
    let p = write(tmp.path(), "q.fq", &text[..line_starts[8] - 5])?;
    let msg = error_of(&p, &OpenOptions::default());
    expect(
        &msg,
        &["q.fq: read 'r2' (FASTQ record 2): ", " quality scores"],
    );
    Ok(())
}

/// FASTQ structure errors name the record and say what was expected; SAM text is not taken for FASTQ.
#[test]
fn test_fastq_structure_and_sam_text() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "noplus.fq",
            b"@r1 x\nACGT\n+\nIIII\n@r2\nACGT\nIIII\n@r3\nAC\n+\nII\n",
            "noplus.fq: FASTQ record 2 ('r2'): expected the '+' line after the bases",
        ),
        (
            "multi.fq",
            b"@r1\nACGT\nACGT\n+\nIIII\nIIII\n",
            "multi.fq: FASTQ record 1 ('r1'): expected the '+' line after the bases (a FASTQ record is four \
             lines; multi-line FASTQ is not read)",
        ),
        (
            "lengths.fq",
            b"@r1\nACGT\n+\nIII\n",
            "lengths.fq: read 'r1' (FASTQ record 1): 4 bases but 3 quality scores",
        ),
        (
            "header.fq",
            b"@r1\nACGT\n+\nIIII\nr2\nAC\n+\nII\n",
            "header.fq: FASTQ record 2: expected a '@' header line",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = write(tmp.path(), name, bytes)?;
        let msg = error_of(&p, &OpenOptions::default());
        expect(&msg, &[want]);
    }
    // A repeated name on the '+' line, a description after a tab and a missing last line end are fine.
    let p = write(tmp.path(), "ok.fq", b"@r1\nAC\n+r1\nII\n@r2\tx\nG\n+\nI")?;
    let got = names_bases(read_all(&p, &OpenOptions::default())?);
    assert_eq!(
        got,
        vec![("r1".into(), b"AC".to_vec()), ("r2".into(), b"G".to_vec())]
    );

    let sam = b"@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chr1\tLN:10\nr1\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\tIIII\n";
    let want = "x.sam: this is SAM text, which is not read: convert it with `samtools view -b`";
    let p = write(tmp.path(), "x.sam", sam)?;
    expect(&error_of(&p, &OpenOptions::default()), &[want]);
    expect(
        &error_of(
            &p,
            &OpenOptions::default().with_format(genomamba_seq::Format::Fastq),
        ),
        &[want],
    );
    let msg = genomamba_seq::open::detect_format(&p)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    expect(&msg, &[want]);
    for head in ["@SQ\tSN:a", "@RG\tID:x", "@PG\tID:bwa", "@CO\thello"] {
        let e = genomamba_seq::open_reader(
            Box::new(io::Cursor::new(format!("{head}\n").into_bytes())),
            "-",
            &OpenOptions::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        expect(&e, &["-: this is SAM text"]);
    }
    Ok(())
}

#[test]
fn test_foreign_compressions_are_named_with_their_converter() -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    // Each container's own first bytes (what `xz`, `bzip2 -9`, `zstd`, `lz4`, `zip` and `faToTwoBit` write).
    let cases: &[(&str, &[u8], &str, &str)] = &[
        (
            "g.fa.xz",
            b"\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4F",
            "xz-compressed",
            "xz -dc",
        ),
        ("g.fa.bz2", b"BZh91AY&SY", "bzip2-compressed", "bzip2 -dc"),
        (
            "g.fa.zst",
            b"\x28\xb5\x2f\xfd\x24\x00",
            "zstd-compressed",
            "zstd -dc",
        ),
        (
            "g.fa.lz4",
            b"\x04\x22\x4d\x18\x64\x40",
            "lz4-compressed",
            "lz4 -dc",
        ),
        ("g.zip", b"PK\x03\x04\x14\x00", "a zip archive", "unzip -p"),
        (
            "g.2bit",
            b"\x43\x27\x41\x1a\x00\x00",
            "a UCSC .2bit file",
            "twoBitToFa",
        ),
    ];
    for (name, bytes, what, program) in cases {
        let p = write(tmp.path(), name, bytes)?;
        let path = p.display().to_string();
        let want = format!("{path}: this is {what}, which genomamba does not read");
        let how = format!("`{program} {path}");
        // Sniffed, forced to a format, told by detect_format, and on standard input.
        for opts in [
            OpenOptions::default(),
            OpenOptions::default().with_format(genomamba_seq::Format::Fasta),
        ] {
            expect(
                &error_of(&p, &opts),
                &[&want, &how, "| bgzip > converted.gz`"],
            );
        }
        let msg = genomamba_seq::open::detect_format(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        expect(&msg, &[&want]);
        let e = genomamba_seq::open_reader(
            Box::new(io::Cursor::new(bytes.to_vec())),
            "-",
            &OpenOptions::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        expect(
            &e,
            &[
                &format!("-: this is {what}"),
                "FILE",
                "| genomamba <command> -",
            ],
        );
        // As a BED of regions, and as a VCF.
        let e = genomamba_seq::region::read_bed_path(&p)
            .unwrap_err()
            .to_string();
        expect(&e, &[&want]);
        let e = genomamba_seq::vcf::read(io::Cursor::new(bytes.to_vec()), name)
            .unwrap_err()
            .to_string();
        expect(&e, &[&format!("{name}: this is {what}")]);
    }
    Ok(())
}
