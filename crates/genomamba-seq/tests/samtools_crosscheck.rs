//! Cross-checks against samtools (run in CI; skipped with a message only when samtools is absent and `CI` is
//! unset): FASTA regions == `samtools faidx`, BAM/CRAM streams == `samtools fasta`, BAM regions == `samtools view`.

mod common;

use std::io;

use common::*;
use genomamba_seq::{OpenOptions, ReadFilter, Region};

#[test]
fn test_fasta_regions_equal_samtools_faidx() -> io::Result<()> {
    if !have_samtools("test_fasta_regions_equal_samtools_faidx") {
        return Ok(());
    }
    let cases: &[(&str, &[&str])] = &[
        (
            "ecoli536.fa",
            &[
                "gi|110640213|ref|NC_008253.1|:1-70",
                "gi|110640213|ref|NC_008253.1|:69-71",
                "gi|110640213|ref|NC_008253.1|:4,000,001-4,012,345",
                "gi|110640213|ref|NC_008253.1|:4938900-",
            ],
        ),
        (
            "ecoli536.fa.gz",
            &[
                "gi|110640213|ref|NC_008253.1|:1-70",
                "gi|110640213|ref|NC_008253.1|:1234567-1299999",
                "gi|110640213|ref|NC_008253.1|:4938900-",
            ],
        ),
        (
            "mixed.fa",
            &[
                "lambda_0_3000:990-1410",
                "ecoli_100000_104000",
                "short_lambda:1-37",
                "ecoli_tail:1-60",
            ],
        ),
        (
            "mixed_crlf.fa",
            &[
                "lambda_0_3000:59-62",
                "ecoli_100000_104000:1990-2210",
                "ecoli_tail:2400-",
            ],
        ),
        (
            "mixed_crlf.fa.gz",
            &["ecoli_100000_104000:3000-3120", "short_lambda"],
        ),
    ];
    for (file, regions) in cases {
        let path = derived(file);
        let p = path.to_string_lossy().to_string();
        let mut args = vec!["faidx", p.as_str()];
        args.extend_from_slice(regions);
        let expected = parse_fasta(&samtools(&args)?);
        let parsed: Vec<Region> = regions
            .iter()
            .map(|r| r.parse())
            .collect::<Result<_, _>>()?;
        let got = read_all(&path, &OpenOptions::default().with_regions(parsed.clone()))?;
        assert_eq!(got.len(), expected.len(), "{file}");
        for ((info, bases), ((_, exp), region)) in got.iter().zip(expected.iter().zip(&parsed)) {
            assert_eq!(bases, exp, "{file} {region}");
            assert_eq!(
                (info.name.as_str(), info.start),
                (region.name.as_str(), region.start)
            );
            assert_eq!(info.len, Some(exp.len() as u64));
        }
    }
    Ok(())
}

#[test]
fn test_fasta_streams_equal_samtools_records() -> io::Result<()> {
    if !have_samtools("test_fasta_streams_equal_samtools_records") {
        return Ok(());
    }
    // samtools prints whole records with the names from the index.
    let path = derived("mixed.fa");
    let names = [
        "lambda_0_3000",
        "ecoli_100000_104000",
        "short_lambda",
        "ecoli_tail",
    ];
    let mut args = vec!["faidx", path.to_str().unwrap_or_default()];
    args.extend_from_slice(&names);
    let expected = parse_fasta(&samtools(&args)?);
    for file in [
        "mixed.fa",
        "mixed_crlf.fa",
        "mixed.fa.gz",
        "mixed_crlf.fa.gz",
        "mixed.plain.fa.gz",
    ] {
        let got = names_bases(read_all(&derived(file), &OpenOptions::default())?);
        assert_same(&got, &expected, file);
    }
    let committed = names_bases(read_all(&data().join("mixed.fa"), &OpenOptions::default())?);
    assert_eq!(committed, expected);
    // Record selection by name, indexed (bgzip) and streamed (plain gzip), in index vs file order.
    let pick = vec!["short_lambda".to_string(), "lambda_0_3000".to_string()];
    let by_index = names_bases(read_all(
        &derived("mixed.fa.gz"),
        &OpenOptions::default().with_names(pick.clone()),
    )?);
    assert_eq!(by_index, vec![expected[2].clone(), expected[0].clone()]);
    let streamed = names_bases(read_all(
        &derived("mixed.plain.fa.gz"),
        &OpenOptions::default().with_names(pick),
    )?);
    assert_eq!(streamed, vec![expected[0].clone(), expected[2].clone()]);
    // bgzip whose .gzi is missing cannot be read through its .fai: the file is streamed instead.
    let tmp = tempfile::tempdir()?;
    let no_gzi = tmp.path().join("mixed.fa.gz");
    std::fs::copy(derived("mixed.fa.gz"), &no_gzi)?;
    std::fs::copy(
        derived("mixed.fa.gz.fai"),
        tmp.path().join("mixed.fa.gz.fai"),
    )?;
    let pick = vec!["short_lambda".to_string(), "lambda_0_3000".to_string()];
    let streamed = names_bases(read_all(&no_gzi, &OpenOptions::default().with_names(pick))?);
    assert_eq!(streamed, vec![expected[0].clone(), expected[2].clone()]);
    Ok(())
}

#[test]
fn test_scanned_lengths_equal_samtools_index() -> io::Result<()> {
    if !have_samtools("test_scanned_lengths_equal_samtools_index") {
        return Ok(());
    }
    for (file, fai_of) in [
        ("ecoli536.fa", "ecoli536.fa"),
        ("ecoli536.plain.fa.gz", "ecoli536.fa"),
        ("mixed.fa", "mixed.fa"),
        ("mixed_crlf.fa.gz", "mixed_crlf.fa"),
        ("mixed.plain.fa.gz", "mixed.fa"),
    ] {
        let faidx = samtools(&[
            "faidx",
            "--fai-idx",
            "-",
            derived(fai_of).to_str().unwrap_or_default(),
        ])?;
        let want: Vec<(String, u64)> = String::from_utf8_lossy(&faidx)
            .lines()
            .map(|line| {
                let mut cols = line.split('\t');
                let name = cols.next().unwrap_or_default().to_string();
                (name, cols.next().and_then(|n| n.parse().ok()).unwrap_or(0))
            })
            .collect();
        assert!(!want.is_empty(), "{file}: samtools listed no record");
        assert_eq!(
            genomamba_seq::fasta::scan_lengths(&derived(file))?,
            want,
            "{file}"
        );
    }
    Ok(())
}

/// Read names in file order as `samtools view` lists them, with `/1`/`/2` from the flag.
fn samtools_view_names(args: &[&str]) -> io::Result<Vec<String>> {
    let mut a = vec!["view"];
    a.extend_from_slice(args);
    let text = String::from_utf8_lossy(&samtools(&a)?).into_owned();
    Ok(text
        .lines()
        .map(|l| {
            let mut cols = l.split('\t');
            let name = cols.next().unwrap_or_default();
            let flag: u16 = cols.next().and_then(|f| f.parse().ok()).unwrap_or(0);
            match flag & 0xC0 {
                0x40 => format!("{name}/1"),
                0x80 => format!("{name}/2"),
                _ => name.to_string(),
            }
        })
        .collect())
}

fn sorted(mut v: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    v.sort();
    v
}

/// `samtools fasta` output, which regroups adjacent mates (read 1 first); callers compare it sorted by name
/// and check the order separately against `samtools view`.
fn samtools_fasta(input: &str, extra: &[&str]) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut args = vec!["fasta"];
    args.extend_from_slice(extra);
    args.push(input);
    let mut cmd = std::process::Command::new("samtools");
    let out = cmd
        .args(&args)
        .stderr(std::process::Stdio::null())
        .output()?;
    Ok(parse_fasta(&out.stdout))
}

#[test]
fn test_bam_and_cram_streams_equal_samtools_fasta() -> io::Result<()> {
    if !have_samtools("test_bam_and_cram_streams_equal_samtools_fasta") {
        return Ok(());
    }
    let bam = data().join("reads/lambda.bam");
    let cram = data().join("reads/lambda.cram");
    let reference = derived("lambda_virus.fa");
    let b = bam.to_string_lossy().to_string();
    let filters: &[(ReadFilter, &[&str])] = &[
        (ReadFilter::default(), &["-F", "0xF00"]),
        (
            ReadFilter {
                min_mapq: 30,
                include_flags: 0x2,
                exclude_flags: 0xF00,
            },
            &["-F", "0xF00", "-f", "0x2"],
        ),
        (
            ReadFilter {
                min_mapq: 0,
                include_flags: 0,
                exclude_flags: 0xF10,
            },
            &["-F", "0xF10"],
        ),
    ];
    for (i, (filter, args)) in filters.iter().enumerate() {
        let mut expected = samtools_fasta(&b, args)?;
        if filter.min_mapq > 0 {
            // `samtools fasta` has no MAPQ filter: pre-filter with `samtools view -q`.
            let tmp = tempfile::tempdir()?;
            let q = tmp.path().join("q.bam");
            samtools(&[
                "view",
                "-b",
                "-q",
                "30",
                "-o",
                q.to_str().unwrap_or_default(),
                &b,
            ])?;
            expected = samtools_fasta(q.to_str().unwrap_or_default(), args)?;
        }
        assert!(expected.len() > 100, "case {i}: {} reads", expected.len());
        let got = read_all(&bam, &OpenOptions::default().with_filter(*filter))?;
        assert_same(
            &sorted(names_bases(got.clone())),
            &sorted(expected),
            &format!("BAM case {i}"),
        );
        let mut view_args: Vec<&str> = args.to_vec();
        if filter.min_mapq > 0 {
            view_args.extend_from_slice(&["-q", "30"]);
        }
        view_args.push(&b);
        let order: Vec<String> = got.iter().map(|(info, _)| info.name.clone()).collect();
        assert_eq!(
            order,
            samtools_view_names(&view_args)?,
            "BAM case {i}: file order"
        );
        let got_cram = read_all(
            &cram,
            &OpenOptions::default()
                .with_filter(*filter)
                .with_reference(&reference),
        )?;
        assert_eq!(got_cram.len(), got.len(), "CRAM == BAM, case {i}");
        for ((ci, cb), (bi, bb)) in got_cram.iter().zip(&got) {
            assert_eq!(ci, bi, "CRAM == BAM, case {i}");
            assert!(cb == bb, "CRAM == BAM, case {i}: bases of {}", bi.name);
        }
    }
    // Reverse-strand reads are back in sequencing orientation: compare with the FASTQ they came from.
    let fq = data().join("reads/lambda_pairs_1.fq.gz");
    let reads = names_bases(read_all(&fq, &OpenOptions::default())?);
    let bam_reads = read_all(&bam, &OpenOptions::default())?;
    let rev = bam_reads
        .iter()
        .find(|(i, _)| i.alignment.as_ref().is_some_and(|a| a.reverse) && i.name.ends_with("/1"));
    let (info, bases) = rev.ok_or_else(|| io::Error::other("no reverse-strand read 1"))?;
    let plain = info.name.trim_end_matches("/1");
    let orig = reads
        .iter()
        .find(|(n, _)| n == plain)
        .ok_or_else(|| io::Error::other("read not in FASTQ"))?;
    assert_eq!(&orig.1, bases);
    Ok(())
}

#[test]
fn test_bam_regions_equal_samtools_view() -> io::Result<()> {
    if !have_samtools("test_bam_regions_equal_samtools_view") {
        return Ok(());
    }
    let bam = data().join("reads/lambda.bam");
    let b = bam.to_string_lossy().to_string();
    let tmp = tempfile::tempdir()?;
    for region in [
        "gi|9626243|ref|NC_001416.1|:1000-2000",
        "gi|9626243|ref|NC_001416.1|:30001-30001",
        "gi|9626243|ref|NC_001416.1|",
    ] {
        let sub = tmp.path().join("r.bam");
        samtools(&[
            "view",
            "-b",
            "-o",
            sub.to_str().unwrap_or_default(),
            &b,
            region,
        ])?;
        let expected = samtools_fasta(sub.to_str().unwrap_or_default(), &["-F", "0xF00"])?;
        let r: Region = region.parse()?;
        let got = names_bases(read_all(
            &bam,
            &OpenOptions::default().with_regions(vec![r.clone()]),
        )?);
        assert!(!expected.is_empty());
        assert_same(&sorted(got.clone()), &sorted(expected.clone()), region);
        let order: Vec<String> = got.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(
            order,
            samtools_view_names(&["-F", "0xF00", &b, region])?,
            "{region}: file order"
        );
        let cram = data().join("reads/lambda.cram");
        let opts = OpenOptions::default()
            .with_regions(vec![r])
            .with_reference(derived("lambda_virus.fa"));
        let got_cram = names_bases(read_all(&cram, &opts)?);
        assert_same(&got_cram, &got, &format!("CRAM {region}"));
    }
    Ok(())
}

/// Unmapped reads (flag 0x4) have no alignment fields, even those placed beside their mate (RNAME and POS set);
/// mapped ones have them, as `samtools view` lists them.
#[test]
fn test_unmapped_reads_have_no_alignment_fields() -> io::Result<()> {
    if !have_samtools("test_unmapped_reads_have_no_alignment_fields") {
        return Ok(());
    }
    let bam = data().join("reads/lambda.bam");
    let b = bam.to_string_lossy().to_string();
    let view = String::from_utf8_lossy(&samtools(&["view", "-F", "0xF00", &b])?).into_owned();
    let placed = view
        .lines()
        .filter(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let flag: u16 = cols[1].parse().unwrap_or(0);
            flag & 4 != 0 && cols[2] != "*"
        })
        .count();
    assert!(
        placed > 0,
        "lambda.bam has no unmapped read placed beside its mate"
    );
    let cram = data().join("reads/lambda.cram");
    let reference = derived("lambda_virus.fa");
    for (what, reads) in [
        ("BAM", read_all(&bam, &OpenOptions::default())?),
        (
            "CRAM",
            read_all(&cram, &OpenOptions::default().with_reference(&reference))?,
        ),
    ] {
        assert_eq!(reads.len(), view.lines().count(), "{what}");
        for ((info, _), line) in reads.iter().zip(view.lines()) {
            let cols: Vec<&str> = line.split('\t').collect();
            let a = info.alignment.as_ref().expect("alignment");
            assert_eq!(a.flag.to_string(), cols[1], "{what} {}", info.name);
            let expected = if a.flag & 4 != 0 {
                (None, None, None, None)
            } else {
                let mapq: u8 = cols[4].parse().unwrap_or(255);
                let pos: i64 = cols[3].parse().unwrap_or(0);
                (
                    Some(cols[2].to_string()),
                    Some(pos - 1),
                    (mapq != 255).then_some(mapq),
                    Some(a.flag & 0x10 != 0),
                )
            };
            assert_eq!(
                (a.ref_name.clone(), a.ref_start, a.mapq, a.strand()),
                expected,
                "{what} {}",
                info.name
            );
        }
    }
    Ok(())
}

#[test]
fn test_record_names_are_the_index_or_header_names() -> io::Result<()> {
    if !have_samtools("test_record_names_are_the_index_or_header_names") {
        return Ok(());
    }
    let names = genomamba_seq::open::record_names;
    for reads in ["lambda.bam", "lambda.cram"] {
        let path = data().join("reads").join(reads);
        let header =
            String::from_utf8_lossy(&samtools(&["view", "-H", &path.display().to_string()])?)
                .into_owned();
        let want: Vec<String> = header
            .lines()
            .filter(|l| l.starts_with("@SQ"))
            .filter_map(|l| l.split('\t').find_map(|f| f.strip_prefix("SN:")))
            .map(str::to_string)
            .collect();
        assert!(!want.is_empty());
        assert_eq!(names(&path)?, Some(want), "{reads}");
    }
    let fai = std::fs::read_to_string(derived("mixed.fa.fai"))?;
    let want: Vec<String> = fai
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names(&derived("mixed.fa"))?, Some(want));
    // No index, or no coordinates: no names to read regions in.
    let tmp = tempfile::tempdir()?;
    let unindexed = tmp.path().join("lambda.fa");
    std::fs::copy(data().join("genomes/lambda_virus.fa"), &unindexed)?;
    assert_eq!(names(&unindexed)?, None);
    assert_eq!(names(&data().join("reads/lambda_long.fq.gz"))?, None);
    Ok(())
}
