//! The scored VCF written again, each record with its scores in the INFO column (`score --output-vcf`).
//!
//! Each record gains four INFO fields, one value per ALT allele (`Number=A`): [`SCORE_KEY`], [`LOGP_REF_KEY`],
//! [`LOGP_ALT_KEY`] (floats, `.` where the allele was not scored, left out where no allele was) and
//! [`STATUS_KEY`] (`ok` or why not). A record without ALT alleles gets none of them. The header gains their
//! `##INFO` lines and the caller's provenance lines (`##genomamba_scoreCommand=...`, as bcftools writes
//! `##bcftools_annotateCommand`), just before `#CHROM`; a VCF annotated before has its old fields and
//! definitions replaced.
//!
//! - VCF text in (plain, gzip or bgzip; sniffed as the sites reader sniffs it): every other byte is kept. The
//!   header's lines and each data line pass through as read, but for the INFO column's genomamba entries, so
//!   that values the first pass never parsed (INFO, samples) come out exactly as they came in. noodles, which
//!   read and checked every line in the first pass, would re-encode them when writing (QUAL `29.5000` as `29.5`,
//!   `=` in a string as `%3D`, the commas of an undefined key's list as `%2C`). The lines are edited in one
//!   column, not parsed: the caller checks (by SHA-256) that these are the bytes the first pass read.
//! - BCF in: noodles reads each record into a [`RecordBuf`] and writes it as VCF text, as `bcftools view`
//!   would (BCF holds typed values, so there are no bytes to keep).
//! - BCF out (`.bcf`): noodles reads each record, text or BCF, into a [`RecordBuf`] and writes it as BCF, as
//!   `bcftools view -Ob` would. BCF looks up every contig, FILTER, INFO and FORMAT key in the header's
//!   dictionaries, so a VCF whose header leaves one out can be annotated as VCF text but not as BCF.
//!
//! The output is VCF text, plain or bgzip, or BCF ([`VcfCompression`]); [`index`] builds a bgzipped output's
//! tabix index, or a BCF's CSI index.

use std::io::{self, BufRead, Write};
use std::path::Path;

use noodles::vcf::{
    self as nv,
    header::record::value::{
        Map,
        map::{
            Info,
            info::{Number, Type},
        },
    },
    variant::{
        RecordBuf,
        record_buf::info::field::{Value, value::Array},
    },
};
use noodles::{bcf, bgzf, csi, tabix};

use super::{chain, decoded, hashed};
use crate::source::invalid_data;

/// INFO key of `score`, ln P(ALT) - ln P(REF), per ALT allele.
pub const SCORE_KEY: &str = "GENOMAMBA_SCORE";
/// INFO key of `logp_ref`, per ALT allele.
pub const LOGP_REF_KEY: &str = "GENOMAMBA_LOGP_REF";
/// INFO key of `logp_alt`, per ALT allele.
pub const LOGP_ALT_KEY: &str = "GENOMAMBA_LOGP_ALT";
/// INFO key of `status`, per ALT allele.
pub const STATUS_KEY: &str = "GENOMAMBA_STATUS";

/// The INFO fields written, with their type and description.
const FIELDS: [(&str, Type, &str); 4] = [
    (
        SCORE_KEY,
        Type::Float,
        "genomamba variant-effect score: ln P(ALT) - ln P(REF) under the model (missing where not scored: see \
         GENOMAMBA_STATUS)",
    ),
    (
        LOGP_REF_KEY,
        Type::Float,
        "genomamba: ln P(REF) under the model (an indel: of the REF haplotype)",
    ),
    (
        LOGP_ALT_KEY,
        Type::Float,
        "genomamba: ln P(ALT) under the model (an indel: of the ALT haplotype)",
    ),
    (
        STATUS_KEY,
        Type::String,
        "genomamba: ok, or why the allele was not scored (not_snv, no_alt, ambiguous, ref_mismatch, \
         unknown_contig, out_of_bounds, no_context)",
    ),
];

/// How an annotated VCF is compressed, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcfCompression {
    /// Plain text: a name ending in `.vcf`, or `-` (standard output).
    Plain,
    /// bgzip (BGZF), which tabix can index: `.vcf.gz` or `.vcf.bgz`.
    Bgzf,
    /// BCF (BGZF-compressed), indexed with CSI: `.bcf`.
    Bcf,
}

impl VcfCompression {
    /// The compression a path's name asks for; `None` for a name that is not a VCF's.
    ///
    /// ```
    /// use genomamba_seq::vcf::annotate::VcfCompression;
    /// use std::path::Path;
    /// assert_eq!(VcfCompression::of_path(Path::new("out.vcf.gz")), Some(VcfCompression::Bgzf));
    /// assert_eq!(VcfCompression::of_path(Path::new("-")), Some(VcfCompression::Plain));
    /// assert_eq!(VcfCompression::of_path(Path::new("out.bcf")), Some(VcfCompression::Bcf));
    /// assert_eq!(VcfCompression::of_path(Path::new("out.parquet")), None);
    /// ```
    pub fn of_path(path: &Path) -> Option<Self> {
        let name = path.to_string_lossy();
        if name == "-" || name.ends_with(".vcf") {
            Some(Self::Plain)
        } else if name.ends_with(".vcf.gz") || name.ends_with(".vcf.bgz") {
            Some(Self::Bgzf)
        } else if name.ends_with(".bcf") {
            Some(Self::Bcf)
        } else {
            None
        }
    }
}

/// One ALT allele's values, as in its row of the variants table (whose `score` is `logp_alt - logp_ref`, in f32,
/// as here).
#[derive(Debug, Clone, PartialEq)]
pub struct AlleleScores {
    /// ln P(REF); `None` when not scored.
    pub logp_ref: Option<f32>,
    /// ln P(ALT); `None` when not scored.
    pub logp_alt: Option<f32>,
    /// `ok`, or why the allele was not scored.
    pub status: &'static str,
}

/// Writes `input` (VCF or BCF, as the sites reader read it) to `output` (a writer, and its name for errors) as
/// VCF text compressed as asked, each
/// record with the scores `scores(record, alts)` gives for its `alts` ALT alleles (record: 0-based, in the
/// file's order; it must return one value per allele), and the header with the INFO definitions and the
/// `provenance` lines (`(key, value)`: `##key=value`; control characters in values become spaces). Returns the
/// number of records written and the SHA-256 (hex) of the input's bytes, all of them read, which the caller
/// compares with the first read's to know that the scores belong to these records.
pub fn annotate<R: BufRead + Send, W: Write>(
    input: R,
    source: &str,
    output: (W, &str),
    compression: VcfCompression,
    provenance: &[(&str, String)],
    scores: impl FnMut(usize, usize) -> io::Result<Vec<AlleleScores>>,
) -> io::Result<(u64, String)> {
    hashed(input, source, |input, source| {
        annotate_unhashed(input, source, output, compression, provenance, scores)
    })
}

fn annotate_unhashed<R: BufRead + Send, W: Write>(
    input: R,
    source: &str,
    (output, destination): (W, &str),
    compression: VcfCompression,
    provenance: &[(&str, String)],
    scores: impl FnMut(usize, usize) -> io::Result<Vec<AlleleScores>>,
) -> io::Result<u64> {
    let mut writer = match compression {
        VcfCompression::Plain => Output::Plain(nv::io::Writer::new(output)),
        VcfCompression::Bgzf => Output::Bgzf(nv::io::Writer::new(bgzf::io::Writer::new(output))),
        VcfCompression::Bcf => Output::Bcf(bcf::io::Writer::new(output)),
    };
    let (text, _, is_bcf) = decoded(input, source)?;
    let records = if is_bcf {
        from_bcf(text, source, &mut writer, destination, provenance, scores)?
    } else if compression == VcfCompression::Bcf {
        text_to_bcf(text, source, &mut writer, destination, provenance, scores)?
    } else {
        from_text(
            io::BufReader::with_capacity(1 << 16, text),
            source,
            writer.raw(),
            destination,
            provenance,
            scores,
        )?
    };
    writer.finish().map_err(|e| writing(destination, e))?;
    Ok(records)
}

/// VCF text in: the lines as read, with the genomamba INFO entries and definitions replaced.
fn from_text<R: BufRead>(
    mut input: R,
    source: &str,
    output: &mut dyn Write,
    destination: &str,
    provenance: &[(&str, String)],
    mut scores: impl FnMut(usize, usize) -> io::Result<Vec<AlleleScores>>,
) -> io::Result<u64> {
    let ours = info_lines()?;
    let mut line = Vec::new();
    let (mut number, mut records, mut in_header) = (0u64, 0u64, true);
    loop {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .map_err(|e| at_line(source, number + 1, &e))?
            == 0
        {
            break;
        }
        number += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let out = if in_header {
            if line.starts_with(b"#CHROM") {
                in_header = false;
                let mut text = ours.concat();
                for (key, value) in provenance {
                    text.push_str(&format!("##{key}={}\n", one_line(value)));
                }
                text.into_bytes()
                    .into_iter()
                    .chain(line.iter().copied())
                    .collect()
            } else if ours_defined(&line) {
                continue;
            } else {
                line.clone()
            }
        } else {
            let columns: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
            let (Some(alt), Some(info)) = (columns.get(4), columns.get(7)) else {
                return Err(invalid_data(
                    source,
                    format_args!(
                        "line {number}: fewer than 8 columns (read again for --output-vcf)"
                    ),
                ));
            };
            let alts = if *alt == b"." {
                0
            } else {
                alt.split(|&b| b == b',').count()
            };
            let values = scores(records as usize, alts)?;
            check_count(&values, alts, records)?;
            records += 1;
            let info = with_scores(info, &values);
            let mut out = Vec::with_capacity(line.len() + 128);
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    out.push(b'\t');
                }
                out.extend_from_slice(if i == 7 { &info } else { column });
            }
            out
        };
        output
            .write_all(&out)
            .and_then(|()| output.write_all(b"\n"))
            .map_err(|e| writing(destination, e))?;
    }
    Ok(records)
}

/// BCF in: each record read whole by noodles and written (as VCF text, or BCF) with the scores set.
fn from_bcf<W: Write>(
    text: Box<dyn io::Read + '_>,
    source: &str,
    writer: &mut Output<W>,
    destination: &str,
    provenance: &[(&str, String)],
    mut scores: impl FnMut(usize, usize) -> io::Result<Vec<AlleleScores>>,
) -> io::Result<u64> {
    let mut reader = bcf::io::Reader::from(super::bcf::framed(text));
    let header = reader
        .read_header()
        .map_err(|e| io::Error::new(e.kind(), format!("{source}: BCF header: {}", chain(&e))))?;
    let mut out = Typed::start(writer, &header, provenance, destination)?;
    let mut record = bcf::Record::default();
    let mut n = 0;
    while reader
        .read_record(&mut record)
        .map_err(|e| at_record(source, n + 1, &e))?
        != 0
    {
        let mut buf = RecordBuf::try_from_variant_record(&header, &record)
            .map_err(|e| at_record(source, n + 1, &e))?;
        out.record(n, &mut buf, &mut scores)?;
        n += 1;
    }
    Ok(n)
}

/// VCF text in, BCF out: each record read whole by noodles (INFO and samples typed by the header) and written
/// as BCF with the scores set.
fn text_to_bcf<W: Write>(
    text: Box<dyn io::Read + '_>,
    source: &str,
    writer: &mut Output<W>,
    destination: &str,
    provenance: &[(&str, String)],
    mut scores: impl FnMut(usize, usize) -> io::Result<Vec<AlleleScores>>,
) -> io::Result<u64> {
    let mut reader = nv::io::Reader::new(io::BufReader::with_capacity(1 << 16, text));
    let header = reader
        .read_header()
        .map_err(|e| io::Error::new(e.kind(), format!("{source}: VCF header: {}", chain(&e))))?;
    let mut out = Typed::start(writer, &header, provenance, destination)?;
    let mut buf = RecordBuf::default();
    let mut n = 0;
    while reader
        .read_record_buf(&header, &mut buf)
        .map_err(|e| at_record(source, n + 1, &e))?
        != 0
    {
        out.record(n, &mut buf, &mut scores)?;
        n += 1;
    }
    Ok(n)
}

/// An output written from records read whole into typed values ([`RecordBuf`]), through noodles' writer.
struct Typed<'w, W: Write> {
    writer: &'w mut Output<W>,
    /// The header written: the input's with the genomamba definitions and provenance (for BCF, renumbered).
    header: nv::Header,
    destination: &'w str,
}

impl<'w, W: Write> Typed<'w, W> {
    /// Writes the header of the annotated output of an input with `header`.
    fn start(
        writer: &'w mut Output<W>,
        header: &nv::Header,
        provenance: &[(&str, String)],
        destination: &'w str,
    ) -> io::Result<Self> {
        let mut header = annotated_header(header, provenance)?;
        if matches!(writer, Output::Bcf(_)) {
            renumbered(&mut header);
        }
        writer
            .get()
            .write_variant_header(&header)
            .map_err(|e| writing(destination, e))?;
        Ok(Self {
            writer,
            header,
            destination,
        })
    }

    /// Writes record `n` (0-based) with the values `scores(n, alts)` gives for its ALT alleles.
    fn record(
        &mut self,
        n: u64,
        buf: &mut RecordBuf,
        scores: &mut impl FnMut(usize, usize) -> io::Result<Vec<AlleleScores>>,
    ) -> io::Result<()> {
        let alts = buf.alternate_bases().as_ref().len();
        let values = scores(n as usize, alts)?;
        check_count(&values, alts, n)?;
        set_scores(buf.info_mut(), &values);
        let bcf = matches!(self.writer, Output::Bcf(_));
        let destination = self.destination;
        (self.writer.get())
            .write_variant_record(&self.header, buf)
            .map_err(|e| {
                if !bcf {
                    return writing(destination, e);
                }
                io::Error::new(
                    e.kind(),
                    format!(
                        "{destination}: writing record {} as BCF: {} (BCF needs every contig, FILTER, INFO and \
                         FORMAT key defined in the header; a .vcf.gz output does not)",
                        n + 1,
                        chain(&e)
                    ),
                )
            })
    }
}

/// Fails unless `values` has one entry per ALT allele of record `index` (0-based).
fn check_count(values: &[AlleleScores], alts: usize, index: u64) -> io::Result<()> {
    if values.len() == alts {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "internal: {} values for the {alts} ALT alleles of record {}",
        values.len(),
        index + 1
    )))
}

/// The `##INFO` lines of the genomamba fields, as noodles writes them.
fn info_lines() -> io::Result<Vec<String>> {
    let mut header = nv::Header::default();
    add_definitions(&mut header);
    let mut text = Vec::new();
    nv::io::Writer::new(&mut text).write_header(&header)?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| l.starts_with("##INFO="))
        .map(|l| format!("{l}\n"))
        .collect())
}

/// Whether a header line defines one of the genomamba INFO fields (an earlier annotation's).
fn ours_defined(line: &[u8]) -> bool {
    FIELDS.iter().any(|(key, ..)| {
        line.strip_prefix(b"##INFO=<ID=")
            .and_then(|rest| rest.strip_prefix(key.as_bytes()))
            .is_some_and(|rest| rest.starts_with(b","))
    })
}

/// An INFO column with the genomamba entries replaced by `values`' (none for a record without ALT alleles).
fn with_scores(info: &[u8], values: &[AlleleScores]) -> Vec<u8> {
    let mut entries: Vec<Vec<u8>> = if info == b"." {
        Vec::new()
    } else {
        info.split(|&b| b == b';')
            .filter(|entry| {
                let key = entry.split(|&b| b == b'=').next().unwrap_or_default();
                !FIELDS.iter().any(|(ours, ..)| key == ours.as_bytes())
            })
            .map(<[u8]>::to_vec)
            .collect()
    };
    if !values.is_empty() {
        for (key, column) in float_columns(values) {
            if column.iter().any(Option::is_some) {
                let list: Vec<String> = column
                    .iter()
                    .map(|x| x.map_or_else(|| ".".to_string(), |x| x.to_string()))
                    .collect();
                entries.push(format!("{key}={}", list.join(",")).into_bytes());
            }
        }
        let status: Vec<&str> = values.iter().map(|v| v.status).collect();
        entries.push(format!("{STATUS_KEY}={}", status.join(",")).into_bytes());
    }
    if entries.is_empty() {
        return b".".to_vec();
    }
    entries.join(&b';')
}

/// The float fields' keys and values, one per ALT allele.
fn float_columns(values: &[AlleleScores]) -> [(&'static str, Vec<Option<f32>>); 3] {
    [
        (
            SCORE_KEY,
            values
                .iter()
                .map(|v| v.logp_alt.zip(v.logp_ref).map(|(a, r)| a - r))
                .collect(),
        ),
        (LOGP_REF_KEY, values.iter().map(|v| v.logp_ref).collect()),
        (LOGP_ALT_KEY, values.iter().map(|v| v.logp_alt).collect()),
    ]
}

/// A header value on one line: control characters (a tab or line end in an argument) become spaces.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The writer of either compression.
enum Output<W: Write> {
    Plain(nv::io::Writer<W>),
    Bgzf(nv::io::Writer<bgzf::io::Writer<W>>),
    Bcf(bcf::io::Writer<bgzf::io::Writer<W>>),
}

impl<W: Write> Output<W> {
    /// The bytes' destination under the VCF writer (compressed where asked; BCF's, which takes no text).
    fn raw(&mut self) -> &mut dyn Write {
        match self {
            Output::Plain(w) => w.get_mut(),
            Output::Bgzf(w) => w.get_mut(),
            Output::Bcf(w) => w.get_mut(),
        }
    }

    fn get(&mut self) -> &mut dyn nv::variant::io::Write {
        match self {
            Output::Plain(w) => w,
            Output::Bgzf(w) => w,
            Output::Bcf(w) => w,
        }
    }

    /// Flushes everything, with BGZF's end-of-file block.
    fn finish(self) -> io::Result<()> {
        let mut inner = match self {
            Output::Plain(w) => w.into_inner(),
            Output::Bgzf(w) => w.into_inner().finish()?,
            Output::Bcf(w) => w.into_inner().finish()?,
        };
        inner.flush()
    }
}

/// Adds (or replaces) the genomamba INFO definitions.
fn add_definitions(header: &mut nv::Header) {
    for (key, ty, description) in FIELDS {
        header.infos_mut().insert(
            key.to_string(),
            Map::<Info>::new(Number::AlternateBases, ty, description),
        );
    }
}

/// `header` with the INFO definitions (replacing any of the same keys) and the provenance lines added.
fn annotated_header(header: &nv::Header, provenance: &[(&str, String)]) -> io::Result<nv::Header> {
    let mut out = header.clone();
    add_definitions(&mut out);
    for (key, value) in provenance {
        let key = key.parse().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("header key {key}: {e}"),
            )
        })?;
        out.insert(key, nv::header::record::Value::from(one_line(value)))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    }
    Ok(out)
}

/// Drops the header's dictionary indices (`IDX=`, which a BCF's header carries): the genomamba fields have
/// none, and a BCF writer and its readers must number the strings alike, by the order the header lists them.
fn renumbered(header: &mut nv::Header) {
    for map in header.filters_mut().values_mut() {
        *map.idx_mut() = None;
    }
    for map in header.infos_mut().values_mut() {
        *map.idx_mut() = None;
    }
    for map in header.formats_mut().values_mut() {
        *map.idx_mut() = None;
    }
    for map in header.contigs_mut().values_mut() {
        *map.idx_mut() = None;
    }
}

/// Replaces the record's genomamba INFO fields by `values` (none when it has no ALT allele).
fn set_scores(info: &mut nv::variant::record_buf::Info, values: &[AlleleScores]) {
    let info = info.as_mut();
    for (key, ..) in FIELDS {
        info.shift_remove(key);
    }
    if values.is_empty() {
        return;
    }
    for (key, column) in float_columns(values) {
        if column.iter().any(Option::is_some) {
            info.insert(key.to_string(), Some(Value::Array(Array::Float(column))));
        }
    }
    let status = values.iter().map(|v| Some(v.status.to_string())).collect();
    info.insert(
        STATUS_KEY.to_string(),
        Some(Value::Array(Array::String(status))),
    );
}

/// An error writing the output, keeping its kind.
fn writing(destination: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{destination}: writing: {}", chain(&e)))
}

/// An error at a VCF text line, keeping its kind.
fn at_line(source: &str, line: u64, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{source}: line {line}: {}", chain(e)))
}

/// An error at a BCF record (1-based), keeping its kind.
fn at_record(source: &str, n: u64, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{source}: record {n}: {}", chain(e)))
}

/// The index of the bgzipped VCF or the BCF at `path`, as its file's suffix and bytes: for VCF, tabix (`.tbi`),
/// or CSI (`.csi`) where a contig is longer than 2^29 bases; for BCF, CSI. Fails where the records are not sorted
/// (by contig, in blocks, then by position), which no index can describe, and for plain text, which has none.
pub fn index(path: &Path, compression: VcfCompression) -> io::Result<(&'static str, Vec<u8>)> {
    let index = match compression {
        VcfCompression::Plain => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "plain VCF text has no index (bgzip it)",
            ));
        }
        VcfCompression::Bgzf => bgzf_vcf_index(path)?,
        VcfCompression::Bcf => nv::Index::Csi(bcf::fs::index(path)?),
    };
    match index {
        nv::Index::Tabix(index) => {
            let mut writer = tabix::io::Writer::new(Vec::new());
            writer.write_index(&index)?;
            Ok((".tbi", writer.into_inner().finish()?))
        }
        nv::Index::Csi(index) => {
            let mut writer = csi::io::Writer::new(Vec::new());
            writer.write_index(&index)?;
            Ok((".csi", writer.into_inner().finish()?))
        }
    }
}

/// Whether `e`, from [`index`], says the records are out of order (by contig, or by position within one), rather
/// than that a record could not be read.
pub fn out_of_order(e: &io::Error) -> bool {
    use csi::binning_index::indexer::AddRecordError as Add;
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Add>())
        .is_some_and(|add| {
            matches!(
                add,
                Add::OutOfOrderReferenceSequenceId { .. } | Add::OutOfOrderStartPosition { .. }
            )
        })
}

/// The index of a bgzipped VCF, as `noodles::vcf::fs::index` builds it, except that a record's END (before VCF
/// 4.5) or SVLEN (4.5) is read as the spec defines these keys when the header leaves them out, as tabix does:
/// noodles reads an undefined key as a string, and fails. Errors name the record (1-based).
fn bgzf_vcf_index(path: &Path) -> io::Result<nv::Index> {
    use noodles::core::Position;
    use noodles::csi::binning_index::index::reference_sequence::bin::Chunk;
    use nv::variant::Record as _;

    let mut reader = nv::io::Reader::new(bgzf::io::Reader::new(std::fs::File::open(path)?));
    let mut header = reader.read_header()?;
    // As VCF 4.5 defines them (noodles has no definitions before 4.3).
    let reserved = [
        (
            "END",
            Number::Count(1),
            "End position of the variant described in this record",
        ),
        (
            "SVLEN",
            Number::AlternateBases,
            "Length of structural variant",
        ),
    ];
    for (key, number, description) in reserved {
        if !header.infos().contains_key(key) {
            (header.infos_mut()).insert(
                key.to_string(),
                Map::<Info>::new(number, Type::Integer, description),
            );
        }
    }
    let mut builder = nv::index::Indexer::builder();
    let longest = (header.contigs().values())
        .filter_map(|contig| contig.length())
        .max();
    if let Some(position) = longest.and_then(Position::new) {
        builder = builder.set_max_position_hint(position);
    }
    let mut indexer = builder
        .build()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut record = nv::Record::default();
    let mut start = reader.get_ref().virtual_position();
    let mut n = 0u64;
    while reader.read_record(&mut record)? != 0 {
        n += 1;
        let at = |e: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidData, format!("record {n}: {e}"))
        };
        let end = reader.get_ref().virtual_position();
        let first = (record.variant_start().transpose().map_err(|e| at(&e))?)
            .ok_or_else(|| at(&"POS 0 cannot be indexed"))?;
        let last = record.variant_end(&header).map_err(|e| at(&e))?;
        indexer
            .add_record(
                record.reference_sequence_name(),
                first,
                last,
                Chunk::new(start, end),
            )
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        start = end;
    }
    Ok(indexer.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(score: f32, status: &'static str) -> AlleleScores {
        AlleleScores {
            logp_ref: Some(-1.5),
            logp_alt: Some(-1.5 + score),
            status,
        }
    }

    fn unscored(status: &'static str) -> AlleleScores {
        AlleleScores {
            logp_ref: None,
            logp_alt: None,
            status,
        }
    }

    #[test]
    fn info_entries_are_replaced_and_the_rest_kept_in_order() {
        let info = with_scores(
            b"DP=3;GENOMAMBA_SCORE=9;XX=1,2;FLAG;GENOMAMBA_SCOREX=1;GENOMAMBA_STATUS=old",
            &[scored(0.25, "ok"), unscored("not_snv")],
        );
        assert_eq!(
            String::from_utf8(info).unwrap(),
            "DP=3;XX=1,2;FLAG;GENOMAMBA_SCOREX=1;GENOMAMBA_SCORE=0.25,.;GENOMAMBA_LOGP_REF=-1.5,.;\
             GENOMAMBA_LOGP_ALT=-1.25,.;GENOMAMBA_STATUS=ok,not_snv"
        );
        // No allele scored: no float entries; no ALT allele: nothing, and an INFO of only ours becomes `.`.
        assert_eq!(
            with_scores(b".", &[unscored("unknown_contig")]),
            b"GENOMAMBA_STATUS=unknown_contig"
        );
        assert_eq!(with_scores(b"GENOMAMBA_STATUS=ok", &[]), b".");
        assert_eq!(with_scores(b".", &[]), b".");
    }

    #[test]
    fn only_genomamba_definitions_are_dropped_from_the_header() {
        assert!(ours_defined(
            b"##INFO=<ID=GENOMAMBA_SCORE,Number=1,Type=String,Description=\"x\">"
        ));
        assert!(!ours_defined(
            b"##INFO=<ID=GENOMAMBA_SCOREX,Number=1,Type=String,Description=\"x\">"
        ));
        assert!(!ours_defined(
            b"##FORMAT=<ID=GENOMAMBA_SCORE,Number=1,Type=String,Description=\"x\">"
        ));
        let lines = info_lines().unwrap();
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| ours_defined(l.trim_end().as_bytes())));
    }

    #[test]
    fn output_names_choose_the_compression() {
        for (name, want) in [
            ("a.vcf", Some(VcfCompression::Plain)),
            ("-", Some(VcfCompression::Plain)),
            ("a.vcf.gz", Some(VcfCompression::Bgzf)),
            ("a.vcf.bgz", Some(VcfCompression::Bgzf)),
            ("a.bcf", Some(VcfCompression::Bcf)),
            ("a.parquet", None),
            ("a.gz", None),
        ] {
            assert_eq!(VcfCompression::of_path(Path::new(name)), want, "{name}");
        }
    }
}
