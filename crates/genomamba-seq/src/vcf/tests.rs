use std::io::Write;

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;

const HEAD: &str =
    "##fileformat=VCFv4.2\n##contig=<ID=chr1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

/// The 8 fixed columns' tail after ALT, all missing.
const TAIL: &str = "\t.\t.\t.";

/// Hint noodles' short-line errors get.
const COLUMNS: &str =
    " (a data line needs the 8 tab-separated columns CHROM POS ID REF ALT QUAL FILTER INFO)";

fn rec(
    chrom: &str,
    pos: u64,
    id: Option<&str>,
    reference: &str,
    alts: &[&str],
    line: u64,
) -> VcfRecord {
    VcfRecord {
        chrom: chrom.into(),
        pos,
        id: id.map(Into::into),
        reference: reference.into(),
        alts: alts.iter().map(|a| a.to_string()).collect(),
        line,
    }
}

/// The error message for `data`, which must fail with `InvalidData`.
fn err(data: &[u8]) -> String {
    match read(data, "x.vcf") {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            e.to_string()
        }
    }
}

fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data)?;
    enc.finish()
}

#[test]
fn test_read_header_and_records() -> io::Result<()> {
    let data = format!(
        "{HEAD}chr1\t10\trs1\tA\tG\t50\tPASS\tDP=3\n\
         chr2\t20\trs2;rs3\tAC\tA,ACC{TAIL}\n\
         chrM\t30\t.\tG\t.\t.\t.\t.\tGT\t0/0\n"
    );
    let records = read(data.as_bytes(), "x.vcf")?;
    assert_eq!(
        records,
        [
            rec("chr1", 10, Some("rs1"), "A", &["G"], 4),
            rec("chr2", 20, Some("rs2;rs3"), "AC", &["A", "ACC"], 5),
            rec("chrM", 30, None, "G", &[], 6),
        ]
    );
    // Header only: no records, no error; also without a line end after #CHROM.
    assert!(read(HEAD.as_bytes(), "x.vcf")?.is_empty());
    assert!(read(HEAD.trim_end().as_bytes(), "x.vcf")?.is_empty());
    Ok(())
}

#[test]
fn test_read_keeps_alleles_as_written() -> io::Result<()> {
    let data = format!(
        "{HEAD}chr1\t5\t.\tacgT\tN,*,<DEL>,<INS:ME>{TAIL}\n\
         chr1\t6\tbnd1\tG\tG]17:198982],[13:123456[T,.A{TAIL}\n\
         chr1\t7\t.\tAT\tGC{TAIL}\n"
    );
    let records = read(data.as_bytes(), "x.vcf")?;
    assert_eq!(
        records,
        [
            rec("chr1", 5, None, "acgT", &["N", "*", "<DEL>", "<INS:ME>"], 4),
            rec(
                "chr1",
                6,
                Some("bnd1"),
                "G",
                &["G]17:198982]", "[13:123456[T", ".A"],
                5
            ),
            rec("chr1", 7, None, "AT", &["GC"], 6),
        ]
    );
    Ok(())
}

/// What noodles accepts that a stricter reader might not: kept as read, for the caller to judge.
#[test]
fn test_read_accepts_what_noodles_accepts() -> io::Result<()> {
    let data = format!(
        "{HEAD}chr1\t0\t.\tN\t.[chr1:1[{TAIL}\n\
         chr1\t+3\t.\tA\tG{TAIL}\n\
         chr1\t4\t.\tA\tG,{TAIL}\n"
    );
    assert_eq!(
        read(data.as_bytes(), "x.vcf")?,
        [
            // POS 0: a telomeric breakend (VCF 4.3).
            rec("chr1", 0, None, "N", &[".[chr1:1["], 4),
            rec("chr1", 3, None, "A", &["G"], 5),
            rec("chr1", 4, None, "A", &["G", ""], 6),
        ]
    );
    Ok(())
}

#[test]
fn test_read_crlf_and_last_line() -> io::Result<()> {
    let data = format!(
        "##fileformat=VCFv4.3\r\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\r\n\
         chr1\t1\t.\tA\tT{TAIL}\r\nchr1\t2\trs9\tC\tG,A{TAIL}\r\n"
    );
    assert_eq!(
        read(data.as_bytes(), "x.vcf")?,
        [
            rec("chr1", 1, None, "A", &["T"], 3),
            rec("chr1", 2, Some("rs9"), "C", &["G", "A"], 4)
        ]
    );
    // A last line without a line end.
    let data = format!("{HEAD}chr1\t3\t.\tA\tC{TAIL}");
    assert_eq!(
        read(data.as_bytes(), "x.vcf")?,
        [rec("chr1", 3, None, "A", &["C"], 4)]
    );
    Ok(())
}

#[test]
fn test_read_gzip() -> io::Result<()> {
    let data = format!("{HEAD}chr1\t10\trs1\tA\tG{TAIL}\nchr1\t11\t.\tC\tT,A{TAIL}\n");
    let gz = gzip(data.as_bytes())?;
    assert_eq!(read(&gz[..], "x.vcf.gz")?, read(data.as_bytes(), "x.vcf")?);
    // Concatenated gzip members read as one file.
    let mut two = gzip(HEAD.as_bytes())?;
    two.extend(gzip(format!("chr1\t10\trs1\tA\tG{TAIL}\n").as_bytes())?);
    assert_eq!(
        read(&two[..], "x.vcf.gz")?,
        [rec("chr1", 10, Some("rs1"), "A", &["G"], 4)]
    );
    Ok(())
}

/// 10,000 records (~250 KB of text), as text and bgzipped: four or more BGZF blocks, with lines split across
/// block boundaries.
fn many_records() -> io::Result<(String, Vec<u8>)> {
    let mut data = String::from(HEAD);
    for i in 1..=10_000u64 {
        data.push_str(&format!("chr1\t{i}\tid{i}\tA\tC,G\t.\tPASS\tDP=10\n"));
    }
    let mut writer = noodles::bgzf::io::Writer::new(Vec::new());
    writer.write_all(data.as_bytes())?;
    Ok((data, writer.finish()?))
}

#[test]
fn test_read_bgzip_over_many_blocks() -> io::Result<()> {
    let (mut data, bgz) = many_records()?;
    let records = read(&bgz[..], "x.vcf.gz")?;
    assert_eq!(records.len(), 10_000);
    assert_eq!(records[0], rec("chr1", 1, Some("id1"), "A", &["C", "G"], 4));
    assert_eq!(
        records[9_999],
        rec("chr1", 10_000, Some("id10000"), "A", &["C", "G"], 10_003)
    );
    // An error far in, past several buffer refills, still names its line.
    data.push_str("chr1\tx\t.\tA\tC\t.\t.\t.\n");
    assert_eq!(
        err(data.as_bytes()),
        "x.vcf: line 10004: POS 'x': invalid digit found in string"
    );
    Ok(())
}

#[test]
fn test_read_path_sniffs_content_not_name() -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = format!("{HEAD}chr1\t10\trs1\tA\tG{TAIL}\n");
    let expected = [rec("chr1", 10, Some("rs1"), "A", &["G"], 4)];
    let gz_named_plain = dir.path().join("a.vcf");
    std::fs::write(&gz_named_plain, gzip(data.as_bytes())?)?;
    assert_eq!(read_path(&gz_named_plain)?.records, expected);
    let plain_named_gz = dir.path().join("b.vcf.gz");
    std::fs::write(&plain_named_gz, &data)?;
    assert_eq!(read_path(&plain_named_gz)?.records, expected);

    let missing = dir.path().join("missing.vcf");
    let e = read_path(&missing).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(
        e.to_string()
            .starts_with(&format!("{}: opening: ", missing.display())),
        "{e}"
    );
    let e = read_path(dir.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: is a directory, not a VCF", dir.path().display())
    );
    Ok(())
}

#[test]
fn test_read_truncated_gzip() -> io::Result<()> {
    let mut data = String::from(HEAD);
    for i in 1..=2_000u64 {
        data.push_str(&format!("chr1\t{i}\t.\tA\tC{TAIL}\n"));
    }
    let gz = gzip(data.as_bytes())?;
    for cut in [gz.len() - 4, gz.len() / 2, 12] {
        let e = read(&gz[..cut], "x.vcf.gz").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with("x.vcf.gz: line "), "{msg}");
        assert!(msg.ends_with("(truncated gzip file?)"), "{msg}");
    }
    // Cut in the header: the line being read is named.
    let e = read(&gz[..12], "x.vcf.gz").unwrap_err();
    assert!(e.to_string().starts_with("x.vcf.gz: line 1: "), "{e}");
    Ok(())
}

#[test]
fn test_read_bad_columns() {
    let t = |line: &str| err(format!("{HEAD}chr1\t1\t.\tA\tG{TAIL}\n{line}\n").as_bytes());
    // noodles needs the 8 fixed columns: sites-only lines of 5 are refused.
    assert_eq!(
        t("chr1\t2\t.\tA\tG"),
        format!("x.vcf: line 5: unexpected EOL{COLUMNS}")
    );
    assert_eq!(
        t("chr1 2 . A G . . ."),
        format!("x.vcf: line 5: unexpected EOL{COLUMNS}")
    );
    // Blank lines too (they are short lines).
    assert_eq!(t(""), format!("x.vcf: line 5: unexpected EOL{COLUMNS}"));
    // A short last line without a line end.
    assert_eq!(
        err(format!("{HEAD}chr1\t2\t.\tA").as_bytes()),
        format!("x.vcf: line 4: unexpected end of file{COLUMNS}")
    );
    let empty = "x.vcf: line 5: missing field (an empty column; '.' stands for a missing value)";
    assert_eq!(t(&format!("\t2\t.\tA\tG{TAIL}")), empty);
    assert_eq!(t(&format!("chr1\t\t.\tA\tG{TAIL}")), empty);
    assert_eq!(t(&format!("chr1\t2\t\tA\tG{TAIL}")), empty);
    assert_eq!(t(&format!("chr1\t2\t.\t\tG{TAIL}")), empty);
    assert_eq!(t("chr1\t2\t.\tA\t\t.\t.\t."), empty);

    let pos = |p: &str| t(&format!("chr1\t{p}\t.\tA\tG{TAIL}"));
    let digit =
        |shown: &str| format!("x.vcf: line 5: POS '{shown}': invalid digit found in string");
    assert_eq!(pos("-3"), digit("-3"));
    assert_eq!(pos("1e5"), digit("1e5"));
    assert_eq!(pos("five"), digit("five"));
    // Long values are cut in messages.
    assert_eq!(
        pos("9x".repeat(100).as_str()),
        digit(&format!("{}...", "9x".repeat(30)))
    );
    assert_eq!(
        pos("99999999999999999999"),
        "x.vcf: line 5: POS '99999999999999999999': number too large to fit in target type"
    );
    // Fits noodles' usize but not the table's Int64 (it wrapped to a negative position before).
    assert_eq!(
        pos("9223372036854775808"),
        "x.vcf: line 5: POS '9223372036854775808': out of range (at most 9223372036854775807)"
    );
    let largest = format!("{HEAD}chr1\t9223372036854775807\t.\tA\tG{TAIL}\n");
    assert_eq!(
        read(largest.as_bytes(), "x.vcf").map(|r| r[0].pos).ok(),
        Some(i64::MAX as u64)
    );
    // On a last line without a line end, and in a gzip file.
    let last = format!("{HEAD}chr1\t1\t.\tA\tG{TAIL}\nchr1\tfive\t.\tA\tG{TAIL}");
    assert_eq!(err(last.as_bytes()), digit("five"));
    let gz = gzip(last.as_bytes()).expect("gzip");
    assert_eq!(
        read(&gz[..], "x.vcf").map_err(|e| e.to_string()),
        Err(digit("five"))
    );
    assert_eq!(
        pos("00"),
        "x.vcf: line 5: POS '00': out of range integral type conversion attempted"
    );
}

#[test]
fn test_read_bad_headers() {
    assert_eq!(
        err(
            format!("##fileformat=VCFv4.2\n##contig=<ID=chr1>\nchr1\t1\t.\tA\tG{TAIL}\n")
                .as_bytes()
        ),
        "x.vcf: line 3: VCF header: missing header (a data line before the #CHROM line)"
    );
    assert_eq!(
        err(b"##fileformat=VCFv4.2\n##source=x\n"),
        "x.vcf: VCF header: missing header (no #CHROM line before the end of the file)"
    );
    assert_eq!(
        err(b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"),
        "x.vcf: line 1: VCF header: invalid record: missing prefix"
    );
    assert_eq!(
        err(b"##fileformat=VCFv9\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"),
        "x.vcf: line 1: VCF header: invalid record: invalid value: invalid fileformat: invalid version"
    );
    let not_vcf =
        "x.vcf: line 1: not a VCF file: the first line does not start with '##fileformat=VCF'";
    assert_eq!(err(b">chr1\nACGT\n"), not_vcf);
    // A UTF-8 byte order mark is not VCF to noodles.
    assert_eq!(err(format!("\u{feff}{HEAD}").as_bytes()), not_vcf);
    assert_eq!(err(b""), "x.vcf: empty file: not a VCF");
    assert_eq!(
        err(b"##fileformat=VCFv4.2\n#chrom\tpos\n"),
        "x.vcf: line 2: VCF header: invalid record: missing prefix"
    );
    assert_eq!(
        err(b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\n"),
        "x.vcf: line 2: VCF header: invalid header: expected QUAL, got "
    );
    // Meta lines are parsed and checked by noodles.
    assert_eq!(
        err(b"##fileformat=VCFv4.2\n##INFO=<ID=DP>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"),
        "x.vcf: line 2: VCF header: invalid record: invalid value: invalid INFO: ID=DP: missing number"
    );
    assert_eq!(
        err(HEAD
            .replace("#CHROM", "##contig=<ID=chr1>\n#CHROM")
            .as_bytes()),
        "x.vcf: line 3: VCF header: duplicate contig ID: chr1"
    );
    // A header line after #CHROM; concatenated files, after data lines.
    assert_eq!(
        err(format!("{HEAD}#x\n").as_bytes()),
        "x.vcf: line 4: VCF header: expected EOF"
    );
    let twice = format!("{HEAD}chr1\t1\t.\tA\tG{TAIL}\n{HEAD}");
    assert_eq!(
        err(twice.as_bytes()),
        format!("x.vcf: line 5: unexpected EOL{COLUMNS}")
    );
}

#[test]
fn test_read_utf8() {
    // noodles reads each line (and each meta line) as UTF-8: any invalid byte is refused.
    let mut bad_ref = format!("{HEAD}chr1\t1\t.\tA\tG{TAIL}\n").into_bytes();
    bad_ref.extend(b"chr1\t2\t.\tA\xff\tG\t.\t.\t.\n");
    assert_eq!(err(&bad_ref), "x.vcf: line 5: the line is not valid UTF-8");
    let mut latin1_info = HEAD.as_bytes().to_vec();
    latin1_info.extend(b"chr1\t7\t.\tT\tA\t.\t.\tNOTE=caf\xe9\n");
    assert_eq!(
        err(&latin1_info),
        "x.vcf: line 4: the line is not valid UTF-8"
    );
    let latin1_meta =
        b"##fileformat=VCFv4.2\n##source=M\xfcnchen\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
    assert_eq!(
        err(latin1_meta),
        "x.vcf: line 2: VCF header: invalid record: invalid value: invalid other string: source: \
         invalid UTF-8: invalid utf-8 sequence of 1 bytes from index 1"
    );
}

/// Random byte edits of a valid file (plain and gzip) give records or an error, never a panic.
#[test]
fn test_read_never_panics() -> io::Result<()> {
    let data = format!(
        "{HEAD}chr1\t10\trs1\tA\tG,<DEL>\t50\tPASS\tDP=3\nchr1\t20\t.\tAC\t.{TAIL}\nchr2\t5\t.\tN\tT\t.\t.\t.\tGT\t0|1\n"
    );
    let alphabet = b"\t\n\r#,.;<>=0123456789ACGT<>*\xff\xc3\x1f\x8b ";
    let mut rng = StdRng::seed_from_u64(7);
    let mut ok = 0;
    for _ in 0..2_000 {
        let mut bytes = data.clone().into_bytes();
        for _ in 0..rng.random_range(1..4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..3) {
                0 => bytes[at] = alphabet[rng.random_range(0..alphabet.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
        }
        if read(&bytes[..], "x.vcf").is_ok() {
            ok += 1;
        }
        let gz = gzip(&bytes)?;
        let _ = read(&gz[..], "x.vcf.gz");
        let _ = read(&gz[..rng.random_range(0..gz.len())], "x.vcf.gz");
    }
    // Some edits (inside QUAL, INFO, ...) leave the file valid: the loop did exercise both outcomes.
    assert!(ok > 0 && ok < 2_000, "{ok}");
    Ok(())
}

/// The committed calls in `data/variants/` (made by `data/call.sh`).
fn calls(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/variants")
        .join(name)
}

/// The checksum covers every byte of the file as stored, compressed or not, read whole or through BCF.
#[test]
fn test_read_path_checksums_the_file_as_stored() -> io::Result<()> {
    use sha2::{Digest as _, Sha256};
    for name in ["lambda_calls.vcf.gz", "lambda_calls.bcf"] {
        let path = calls(name);
        let expected: String = Sha256::digest(std::fs::read(&path)?)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(read_path(&path)?.sha256, expected, "{name}");
    }
    // Bytes after the last record (here a second, empty gzip member) are in the checksum too.
    let dir = tempfile::tempdir()?;
    let mut bytes = gzip(format!("{HEAD}chr1\t10\trs1\tA\tG{TAIL}\n").as_bytes())?;
    bytes.extend(gzip(b"")?);
    let path = dir.path().join("two.vcf.gz");
    std::fs::write(&path, &bytes)?;
    let expected: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let file = read_path(&path)?;
    assert_eq!((file.records.len(), file.sha256), (1, expected));
    Ok(())
}

/// bcftools' BCF of the bundled calls reads as the same records as its VCF (BGZF and uncompressed), numbered
/// by record instead of line.
#[test]
fn test_read_bcf_as_its_vcf() -> io::Result<()> {
    let vcf = read_path(&calls("lambda_calls.vcf.gz"))?.records;
    let bcf = read_path(&calls("lambda_calls.bcf"))?.records;
    assert_eq!(bcf.len(), 35);
    let header_lines = vcf[0].line - 1;
    for (n, (b, v)) in bcf.iter().zip(&vcf).enumerate() {
        assert_eq!(b.line, n as u64 + 1);
        assert_eq!(v.line, header_lines + n as u64 + 1);
        assert_eq!(
            *b,
            VcfRecord {
                line: b.line,
                ..v.clone()
            }
        );
    }
    assert!(
        bcf.iter().any(|r| r.reference.len() > 1),
        "indels are there"
    );
    let mut raw = Vec::new();
    MultiGzDecoder::new(std::fs::read(calls("lambda_calls.bcf"))?.as_slice())
        .read_to_end(&mut raw)?;
    assert_eq!(&raw[..3], b"BCF");
    assert_eq!(read(&raw[..], "x.bcf")?, bcf);
    Ok(())
}

/// A bgzip VCF or a BCF cut at a block boundary decompresses cleanly: without the end-of-file marker it is refused,
/// naming the record where the input stopped, instead of scoring the records before the cut as if they were all.
#[test]
fn test_read_bgzip_cut_at_a_block_boundary() -> io::Result<()> {
    for (name, last) in [
        ("lambda_calls.vcf.gz", "line 62"),
        ("lambda_calls.bcf", "record 36"),
    ] {
        let bytes = std::fs::read(calls(name))?;
        assert_eq!(bytes[bytes.len() - 28..], crate::bgzf_eof::MARKER, "{name}");
        let e = read(&bytes[..bytes.len() - 28], name).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert_eq!(
            e.to_string(),
            format!("{name}: {last}: {}", crate::bgzf_eof::MISSING),
        );
        assert_eq!(read(&bytes[..], name)?.len(), 35);
    }
    // Many blocks, cut after the first ones.
    let (_, bgz) = many_records()?;
    // A block's BSIZE (its bytes 16-17) is its length less one.
    let block_end = |start: usize| {
        start + usize::from(u16::from_le_bytes([bgz[start + 16], bgz[start + 17]])) + 1
    };
    let third_block = block_end(block_end(0));
    assert!(third_block < bgz.len() / 2, "more than four blocks");
    let e = read(&bgz[..third_block], "x.vcf.gz").unwrap_err();
    assert!(e.to_string().contains(crate::bgzf_eof::MISSING), "{e}");
    Ok(())
}

/// A cut or edited BCF gives an error naming the record (or the header), never a panic.
#[test]
fn test_read_bad_bcf() -> io::Result<()> {
    let bgzf = std::fs::read(calls("lambda_calls.bcf"))?;
    let mut raw = Vec::new();
    MultiGzDecoder::new(bgzf.as_slice()).read_to_end(&mut raw)?;
    let e = read(&raw[..raw.len() - 5], "x.bcf").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    assert!(
        e.to_string().starts_with("x.bcf: record 35: ")
            && e.to_string().ends_with("(truncated file?)"),
        "{e}"
    );
    // A length field that claims more than the input holds fails as truncated, without allocating the claim.
    let mut huge = raw.clone();
    // After the magic and version (5 bytes), the header text's length (4) and the text.
    let first_record = 9 + u32::from_le_bytes(raw[5..9].try_into().expect("4 bytes")) as usize;
    huge[first_record..first_record + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = read(&huge[..], "x.bcf").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "x.bcf: record 1: its length fields claim {} bytes, and the input ends after {} (truncated file?)",
            u64::from(u32::MAX)
                + u64::from(u32::from_le_bytes(
                    huge[first_record + 4..first_record + 8]
                        .try_into()
                        .expect("4 bytes")
                )),
            huge.len() - first_record - 8
        )
    );
    let e = read(&raw[..100], "x.bcf").unwrap_err();
    assert!(e.to_string().starts_with("x.bcf: BCF header: "), "{e}");
    let e = read(&bgzf[..bgzf.len() / 2], "x.bcf").unwrap_err();
    assert!(e.to_string().starts_with("x.bcf: "), "{e}");
    // Edits past the header (whose text noodles checks as for VCF) land in the binary records.
    let records_start = raw.windows(7).position(|w| w == b"lambda\0").unwrap_or(0);
    let mut rng = StdRng::seed_from_u64(11);
    let mut failed = 0;
    for _ in 0..2_000 {
        let mut bytes = raw.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(records_start..bytes.len());
            match rng.random_range(0..3) {
                0 => bytes[at] = rng.random(),
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at.max(records_start + 1)),
            }
        }
        if let Err(e) = read(&bytes[..], "x.bcf") {
            assert!(e.to_string().starts_with("x.bcf: "), "{e}");
            failed += 1;
        }
    }
    assert!(failed > 0, "edits were noticed");
    Ok(())
}
