//! Variant-effect scores (`genomamba score`): each ALT allele of a VCF is classified once, its site is looked up
//! in the probabilities of the piece that keeps it, and the rows are written in the VCF's order at the end.
//!
//! Memory: a run holds per allele only what scoring needs (its record's index, its ALT's index, how it is scored,
//! its site, its outcome: about 80 bytes). The rows' text (CHROM, ID, REF, ALT) is read again from the VCF
//! when the table is written, and the file must be the one scored (same records, same SHA-256).
//!
//! A site's probabilities are exactly the `predict` row of that base in a run over the reference with the same
//! window, overlap and model: [`Variants::regions`] (or, when indels are scored too, [`Variants::walk_regions`])
//! cuts the reference on the same window grid, and scores use [`genomamba_parquet::log_probs`], the predictions
//! table's own `logp_ref`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader};
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use genomamba_parquet::{
    BatchBuilder, Variant, VariantBatchBuilder, base_index, log_probs, status,
};
use genomamba_seq::Region;
use genomamba_seq::vcf::{VcfReader, VcfRecord};
use genomamba_seq::window::{Piece, SequenceSummary};

use crate::settings::ScoreOptions;
use crate::{Error, Result};

/// Rows per record batch handed to the writer.
const BATCH_ROWS: usize = 65_536;

/// How an allele is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An SNV of plain bases: the indices (A, C, G, T = 0..4) of REF and ALT, read off the pass along the
    /// reference (the main pass, or the walk that scores indels too).
    Snv(usize, usize),
    /// REF and ALT of plain bases, not both one base long (an indel or a multi-base substitution): scored as two
    /// haplotypes continuing the same prefix ([`crate::walk`]), when the run asks for it.
    Haplotype,
}

/// What a pass apart from the main one made of an allele: ln P of REF and of ALT (bases or haplotypes), or the
/// status the row ends with.
pub type AlleleOutcome = std::result::Result<(f32, f32), &'static str>;

/// One output row: a VCF record with one of its ALT alleles.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allele {
    /// Index of its record.
    record: usize,
    /// Index of its ALT among the record's; `None` when the record has none (written `.`).
    alt: Option<u32>,
    /// How it is scored; else the status the row ends with, whatever the reference holds.
    kind: std::result::Result<Kind, &'static str>,
}

/// A scorable allele that is not an SNV: REF and ALT of plain bases, not both one base long (an indel or a
/// multi-base substitution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaplotypeSite {
    /// Its row (allele index).
    pub allele: usize,
    /// 0-based coordinate of REF's first base (VCF's POS - 1).
    pub start: u64,
    /// REF's bases as written.
    pub reference: Vec<u8>,
    /// ALT's bases as written.
    pub alt: Vec<u8>,
}

impl HaplotypeSite {
    /// One past REF's last base.
    pub fn end(&self) -> u64 {
        self.start + self.reference.len() as u64
    }

    /// One past the last reference base its haplotypes read with `flank` bases: both are scored over
    /// `max(REF, ALT) + flank` bases, so an insertion's REF haplotype reads as many more as it inserts, and a
    /// deletion's ALT haplotype as many more as it deletes.
    pub fn reach(&self, flank: u64) -> u64 {
        let (m, k) = (self.reference.len() as u64, self.alt.len() as u64);
        // Saturating: any flank past the record's end means "to the end".
        (self.start + m.max(k) + m.saturating_sub(k)).saturating_add(flank)
    }
}

/// The variants of a VCF: how many records it has, their alleles (one output row each) and the scorable ones'
/// sites by contig. The records themselves are not kept ([`Scorer`] reads them again for the rows' text).
#[derive(Debug, PartialEq, Eq)]
pub struct Variants {
    records: usize,
    alleles: Vec<Allele>,
    /// Per contig, the 0-based sites of its scorable SNVs with the allele's index, sorted.
    sites: HashMap<String, Vec<(u64, usize)>>,
    /// Per contig, its scorable indels and multi-base substitutions, sorted by start (then row).
    haplotypes: HashMap<String, Vec<HaplotypeSite>>,
}

impl Variants {
    /// Classifies every ALT allele of `records` (SNVs; with `haplotypes`, also indels and multi-base
    /// substitutions of plain bases; else why not: not_snv, ambiguous, no_alt) and indexes the scorable ones by
    /// site.
    pub fn new(records: impl IntoIterator<Item = VcfRecord>, haplotypes: bool) -> Self {
        let mut variants = Self::empty();
        for record in records {
            variants.add(&record, haplotypes);
        }
        variants.sorted()
    }

    /// [`Variants::new`] of every record `vcf` has left, read one at a time (memory grows with the alleles, not
    /// with the text of the records).
    pub fn read(vcf: &mut VcfReader<'_>, haplotypes: bool) -> io::Result<Self> {
        let mut variants = Self::empty();
        while let Some(record) = vcf.next_record()? {
            variants.add(&record, haplotypes);
        }
        Ok(variants.sorted())
    }

    fn empty() -> Self {
        Self {
            records: 0,
            alleles: Vec::new(),
            sites: HashMap::new(),
            haplotypes: HashMap::new(),
        }
    }

    /// Classifies the alleles of the next record.
    fn add(&mut self, record: &VcfRecord, haplotypes: bool) {
        let index = self.records;
        self.records += 1;
        let alts: Vec<(Option<u32>, &str)> = if record.alts.is_empty() {
            vec![(None, ".")]
        } else {
            (0..)
                .map(Some)
                .zip(record.alts.iter().map(String::as_str))
                .collect()
        };
        for (alt_index, alt) in alts {
            let kind = match classify(&record.reference, alt, haplotypes) {
                // VCF 4.3 puts telomeric breakends at POS 0; nothing there is a base.
                Ok(_) if record.pos == 0 => Err(status::OUT_OF_BOUNDS),
                kind => kind,
            };
            let allele = self.alleles.len();
            match kind {
                Ok(Kind::Snv(..)) => self
                    .sites
                    .entry(record.chrom.to_string())
                    .or_default()
                    .push((record.pos - 1, allele)),
                Ok(Kind::Haplotype) => self
                    .haplotypes
                    .entry(record.chrom.to_string())
                    .or_default()
                    .push(HaplotypeSite {
                        allele,
                        start: record.pos - 1,
                        reference: record.reference.as_bytes().to_vec(),
                        alt: alt.as_bytes().to_vec(),
                    }),
                Err(_) => {}
            }
            self.alleles.push(Allele {
                record: index,
                alt: alt_index,
                kind,
            });
        }
    }

    /// Sorts the sites and returns the lists' spare room.
    fn sorted(mut self) -> Self {
        self.alleles.shrink_to_fit();
        for list in self.sites.values_mut() {
            list.sort_unstable();
            list.shrink_to_fit();
        }
        for list in self.haplotypes.values_mut() {
            list.sort_unstable_by_key(|h| (h.start, h.allele));
            list.shrink_to_fit();
        }
        self
    }

    /// Per contig, the indels and multi-base substitutions to score, sorted by start.
    pub fn haplotypes(&self) -> &HashMap<String, Vec<HaplotypeSite>> {
        &self.haplotypes
    }

    /// Number of indels and multi-base substitutions to score.
    pub fn haplotype_count(&self) -> usize {
        self.haplotypes.values().map(Vec::len).sum()
    }

    /// The contigs that hold indels or multi-base substitutions to score, sorted.
    pub fn haplotype_contigs(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.haplotypes.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The reads of the walk that scores every site when indels are scored ([`crate::walk`]), for a
    /// reference of records `lengths` (name, bases) and windows of `window` bases (0 = whole records): per
    /// window holding an SNV or the start of an indel or substitution within its record, the window's start to
    /// one past the furthest base it needs: its last SNV, or the furthest base its haplotypes read with `flank`
    /// bases (at most the record's end; [`HaplotypeSite::reach`]). A read with `--overlap` bases of context
    /// before it then holds each site's whole prefix, as a run over the whole record gives it, and its flank,
    /// even where the flank runs into the next window.
    pub fn walk_regions(&self, lengths: &[(String, u64)], window: u64, flank: u64) -> Vec<Region> {
        let mut out = Vec::new();
        for (name, len) in lengths {
            let haplotypes = self.haplotypes.get(name).map_or(&[][..], Vec::as_slice);
            for (start, end) in walk_windows(self.snv_sites(name), haplotypes, *len, window, flank)
            {
                out.push(Region::new(name.clone(), start, Some(end)));
            }
        }
        out
    }

    /// The SNVs of `contig` to score: 0-based sites with the allele's index, sorted.
    pub fn snv_sites(&self, contig: &str) -> &[(u64, usize)] {
        self.sites.get(contig).map_or(&[], Vec::as_slice)
    }

    /// The indices (A, C, G, T = 0..4) of REF and ALT of allele `allele`, if it is a scorable SNV.
    pub fn snv(&self, allele: usize) -> Option<(usize, usize)> {
        match self.alleles.get(allele)?.kind {
            Ok(Kind::Snv(r, a)) => Some((r, a)),
            _ => None,
        }
    }

    /// The reads that cover every scorable SNV with up to `flank` bases on each side, for a reference of records
    /// `lengths` (name, bases; in the order to read them): the sites' spans `[site - flank, site + flank]`, cut at
    /// the record's ends, merged where they overlap or touch. Sites on other contigs or past a record's end get
    /// no region.
    pub fn masked_regions(&self, lengths: &[(String, u64)], flank: u64) -> Vec<Region> {
        let mut out = Vec::new();
        for (name, len) in lengths {
            let mut current: Option<(u64, u64)> = None;
            for &(site, _) in self.snv_sites(name).iter().filter(|(site, _)| site < len) {
                let (start, end) = masked_span(site, flank, *len);
                match &mut current {
                    Some((_, e)) if start <= *e => *e = (*e).max(end),
                    _ => {
                        if let Some((s, e)) = current {
                            out.push(Region::new(name.clone(), s, Some(e)));
                        }
                        current = Some((start, end));
                    }
                }
            }
            if let Some((s, e)) = current {
                out.push(Region::new(name.clone(), s, Some(e)));
            }
        }
        out
    }

    /// The contigs that hold scorable sites, sorted.
    pub fn contigs(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.sites.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Number of VCF records.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Number of output rows (one per record and ALT allele).
    pub fn rows(&self) -> usize {
        self.alleles.len()
    }

    /// Number of rows that need the model (SNVs of plain bases).
    pub fn scorable(&self) -> usize {
        self.sites.values().map(Vec::len).sum()
    }

    /// The reads that cover every scorable site, for a reference of records `lengths` (name, bases; in the
    /// order to read them) and windows of `window` bases (0 = whole records): per window holding a site, the
    /// window's start to its last site, so each site is computed with the burn-in and window a run over the
    /// whole record gives it. Sites on other contigs or past a record's end get no region.
    pub fn regions(&self, lengths: &[(String, u64)], window: u64) -> Vec<Region> {
        let mut out = Vec::new();
        for (name, len) in lengths {
            let Some(sites) = self.sites.get(name) else {
                continue;
            };
            let window = if window == 0 { (*len).max(1) } else { window };
            let mut current: Option<(u64, u64)> = None; // (window index, end of its last site)
            for &(site, _) in sites.iter().filter(|(site, _)| site < len) {
                let k = site / window;
                match &mut current {
                    Some((ck, end)) if *ck == k => *end = site + 1,
                    _ => {
                        if let Some((ck, end)) = current {
                            out.push(Region::new(name.clone(), ck * window, Some(end)));
                        }
                        current = Some((k, site + 1));
                    }
                }
            }
            if let Some((ck, end)) = current {
                out.push(Region::new(name.clone(), ck * window, Some(end)));
            }
        }
        out
    }
}

/// The bases a masked site at `site` is scored with: `[site - flank, site + flank + 1)` cut at the ends of its record
/// of `len` bases.
pub(crate) fn masked_span(site: u64, flank: u64, len: u64) -> (u64, u64) {
    (
        site.saturating_sub(flank),
        site.saturating_add(flank).saturating_add(1).min(len),
    )
}

/// Up to five names for a message, with the count of the rest.
fn listed(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    if names.is_empty() {
        return "none".into();
    }
    let mut text = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// The row's fate before any model runs: how it is scored, or why it will not be. `haplotypes`: whether indels
/// and multi-base substitutions are scored (else `not_snv`).
fn classify(
    reference: &str,
    alt: &str,
    haplotypes: bool,
) -> std::result::Result<Kind, &'static str> {
    // `.`, an empty allele (`G,` in a multi-allelic line) or ALT equal to REF: nothing alternate to score.
    if alt == "." || alt.is_empty() || alt.eq_ignore_ascii_case(reference) {
        return Err(status::NO_ALT);
    }
    let (&[r], &[a]) = (reference.as_bytes(), alt.as_bytes()) else {
        let bases = |s: &str| s.bytes().all(|b| base_index(b).is_some());
        let letters = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic());
        return match () {
            // Symbolic alleles (<DEL>), breakends, `*`: no sequence to score.
            _ if !haplotypes || !letters(reference) || !letters(alt) => Err(status::NOT_SNV),
            _ if !bases(reference) || !bases(alt) => Err(status::AMBIGUOUS),
            _ => Ok(Kind::Haplotype),
        };
    };
    match (base_index(r), base_index(a)) {
        (Some(r), Some(a)) => Ok(Kind::Snv(r, a)),
        // `*` (overlapping deletion) and anything else of one byte that is not a base.
        _ if !r.is_ascii_alphabetic() || !a.is_ascii_alphabetic() => Err(status::NOT_SNV),
        _ => Err(status::AMBIGUOUS),
    }
}

/// The windows of the walk on one record of `len` bases ([`Variants::walk_regions`]): per window (of `window`
/// bases, 0 = the whole record) holding an SNV of `snvs` or the start of a site of `haplotypes`, `[window start,
/// end)`, the end one past its last SNV or its haplotypes' furthest reach ([`HaplotypeSite::reach`]), at most
/// `len`. SNVs past the record's end and sites whose REF runs past it are left out (they are `out_of_bounds`).
pub(crate) fn walk_windows(
    snvs: &[(u64, usize)],
    haplotypes: &[HaplotypeSite],
    len: u64,
    window: u64,
    flank: u64,
) -> Vec<(u64, u64)> {
    let window = if window == 0 { len.max(1) } else { window };
    // Window index -> end.
    let mut ends: BTreeMap<u64, u64> = BTreeMap::new();
    let snv_ends = snvs
        .iter()
        .filter(|&&(site, _)| site < len)
        .map(|&(site, _)| (site, site + 1));
    let haplotype_ends = haplotypes
        .iter()
        .filter(|h| h.end() <= len)
        .map(|h| (h.start, h.reach(flank).min(len)));
    for (start, end) in snv_ends.chain(haplotype_ends) {
        let e = ends.entry(start / window).or_insert(end);
        *e = (*e).max(end);
    }
    ends.into_iter().map(|(k, e)| (k * window, e)).collect()
}

/// An SNV's outcome from the reference's base at its site as read and the model's row there (P of A, C, G, T;
/// NaN where the row has no context): ln P of REF (`r`) and ALT (`a`), `ref_mismatch` where the reference holds
/// another base, `no_context` where the row has no prediction. The main pass and the walk both score with it.
pub(crate) fn snv_outcome(base: u8, row: Option<&[f32; 4]>, r: usize, a: usize) -> AlleleOutcome {
    if base_index(base) != Some(r) {
        return Err(status::REF_MISMATCH);
    }
    match row.copied().and_then(log_probs) {
        Some(lp) => Ok((lp[r], lp[a])),
        None => Err(status::NO_CONTEXT),
    }
}

/// What became of a scorable allele.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// ln P(ref), ln P(alt).
    Scored(f32, f32),
    /// Why not.
    Status(&'static str),
}

/// The scoring head: fills in each allele's outcome as the pieces holding its site come by, then builds the
/// variants table in the VCF's order, reading the VCF again for the rows' text.
pub struct Scorer {
    variants: Arc<Variants>,
    /// Per allele, once its site was seen.
    outcomes: Vec<Option<Outcome>>,
    /// Record lengths known so far: from the index, or from whole records as they end.
    lengths: HashMap<String, u64>,
    /// Next row to build.
    cursor: usize,
    finished: bool,
    builder: VariantBatchBuilder,
    /// The VCF read again for the rows.
    rows: RowText,
}

/// The VCF read a second time, record by record, as the table's rows are built.
struct RowText {
    /// The file to read (the VCF, or the copy of standard input), its name for messages, and the SHA-256 of the
    /// first read.
    path: PathBuf,
    source: String,
    sha256: String,
    /// Open once the first row is built.
    reader: Option<VcfReader<'static>>,
    /// The record being built (its index and fields): a record's rows may span two batches.
    current: Option<(usize, VcfRecord)>,
}

impl RowText {
    /// Record `index` (0-based), read in order: `index` is the current record or the next one.
    fn record(&mut self, index: usize) -> Result<&VcfRecord> {
        let next = self.current.as_ref().map_or(0, |(i, _)| i + 1);
        if next == index {
            let reader = match &mut self.reader {
                Some(reader) => reader,
                None => {
                    let file = File::open(&self.path).map_err(|e| {
                        io::Error::new(e.kind(), format!("{}: opening again: {e}", self.source))
                    })?;
                    self.reader.insert(VcfReader::new(
                        BufReader::with_capacity(1 << 16, file),
                        &self.source,
                    )?)
                }
            };
            let Some(record) = reader.next_record()? else {
                return Err(self.changed(format_args!("it ends before record {}", index + 1)));
            };
            self.current = Some((index, record));
        }
        match &self.current {
            Some((i, record)) if *i == index => Ok(record),
            _ => Err(Error::Invalid(format!(
                "internal: the VCF's record {} asked for out of order",
                index + 1
            ))),
        }
    }

    /// After the last row: fails unless the file read again ends there and is the file scored.
    fn check_end(&mut self) -> Result<()> {
        let Some(mut reader) = self.reader.take() else {
            return Ok(());
        };
        if reader.next_record()?.is_some() {
            return Err(self.changed("it has more records than when it was scored"));
        }
        let sha256 = reader.sha256()?;
        if sha256 != self.sha256 {
            return Err(self.changed(format_args!(
                "SHA-256 {} when read, {sha256} when read again",
                self.sha256
            )));
        }
        Ok(())
    }

    /// The error for a VCF that is not the one scored when read again.
    fn changed(&self, detail: impl std::fmt::Display) -> Error {
        Error::Invalid(format!(
            "{}: the file changed while it was being scored ({detail}, for the table's rows); nothing was written",
            self.source
        ))
    }
}

impl Scorer {
    /// A scorer for the variants of `options`; its `lengths`: the reference's records when known up front (its
    /// index).
    pub fn new(options: &ScoreOptions) -> Self {
        Self {
            outcomes: vec![None; options.variants.alleles.len()],
            variants: Arc::clone(&options.variants),
            lengths: options.lengths.iter().cloned().collect(),
            cursor: 0,
            finished: false,
            builder: VariantBatchBuilder::new(),
            rows: RowText {
                path: options.vcf_reread.clone(),
                source: options.vcf.display().to_string(),
                sha256: options.vcf_sha256.clone(),
                reader: None,
                current: None,
            },
        }
    }

    /// The schema of the variants table.
    pub fn schema(&self) -> arrow_schema::SchemaRef {
        self.builder.schema()
    }

    /// Scores the sites among `piece`'s kept positions from `probs` (A, C, G, T per position of the piece).
    pub fn visit(&mut self, piece: &Piece, probs: &[[f32; 4]]) {
        let Some(sites) = self.variants.sites.get(&piece.seq.name) else {
            return;
        };
        let lo = piece.start + piece.keep.start as u64;
        let hi = piece.start + piece.keep.end as u64;
        let first = sites.partition_point(|&(site, _)| site < lo);
        for &(site, allele) in sites[first..].iter().take_while(|(site, _)| *site < hi) {
            let Ok(Kind::Snv(r, a)) = self.variants.alleles[allele].kind else {
                continue;
            };
            let i = (site - piece.start) as usize;
            self.outcomes[allele] = Some(match snv_outcome(piece.bases[i], probs.get(i), r, a) {
                Ok((r, a)) => Outcome::Scored(r, a),
                Err(status) => Outcome::Status(status),
            });
        }
    }

    /// Notes the length of a record read whole (regions leave the index's length in place).
    pub fn sequence_end(&mut self, end: &SequenceSummary) {
        self.lengths
            .entry(end.info.name.clone())
            .or_insert(end.info.start + end.length);
    }

    /// Takes the outcomes of a pass apart from the main one ([`crate::walk`], [`crate::masked`]): per allele
    /// index, ln P of REF and ALT, or the status it ends with.
    pub fn settle(&mut self, outcomes: Vec<(usize, crate::scoring::AlleleOutcome)>) {
        for (allele, outcome) in outcomes {
            self.outcomes[allele] = Some(match outcome {
                Ok((r, a)) => Outcome::Scored(r, a),
                Err(status) => Outcome::Status(status),
            });
        }
    }

    /// After the last piece: settles the alleles whose site never came by (unknown contig, past the record's
    /// end). Returns the number of rows the table will have.
    pub fn finish(&mut self) -> Result<u64> {
        let variants = &self.variants;
        let snvs = variants.sites.iter().flat_map(|(contig, list)| {
            list.iter()
                .map(move |&(site, allele)| (contig, site, allele))
        });
        let haplotypes = variants
            .haplotypes
            .iter()
            .flat_map(|(contig, list)| list.iter().map(move |h| (contig, h.start, h.allele)));
        for (contig, site, allele) in snvs.chain(haplotypes) {
            let outcome = &mut self.outcomes[allele];
            if outcome.is_some() {
                continue;
            }
            *outcome = Some(Outcome::Status(match self.lengths.get(contig) {
                None => status::UNKNOWN_CONTIG,
                Some(&len) if site >= len => status::OUT_OF_BOUNDS,
                Some(_) => {
                    return Err(Error::Invalid(format!(
                        "internal: the site {contig}:{} was not run",
                        site + 1
                    )));
                }
            }));
        }
        self.finished = true;
        Ok(self.variants.alleles.len() as u64)
    }

    /// After [`Scorer::finish`]: what the user should hear. The VCF has SNVs but none is on a record of the
    /// reference (most often a naming mismatch, `chr1` against `1`); or more than a tenth of the alleles checked
    /// against the reference (SNVs, and indels with `--indel-flank`) disagree with its base at their site (most often another build or assembly).
    pub fn warnings(&self) -> Vec<String> {
        let unknown = Some(Outcome::Status(status::UNKNOWN_CONTIG));
        let vcf_contigs = self.variants.contigs();
        if !vcf_contigs.is_empty() && self.outcomes.iter().all(|o| o.is_none() || *o == unknown) {
            let mut reference: Vec<&str> = self.lengths.keys().map(String::as_str).collect();
            reference.sort_unstable();
            return vec![format!(
                "no SNV of the VCF is on a record of the reference, so none was scored (status unknown_contig); \
                 the VCF's contigs: {}; the reference's records: {}",
                listed(&vcf_contigs),
                listed(&reference)
            )];
        }
        let mismatch = Some(Outcome::Status(status::REF_MISMATCH));
        let read = |o: &&Option<Outcome>| matches!(o, Some(Outcome::Scored(..))) || **o == mismatch;
        let checked = self.outcomes.iter().filter(read).count();
        let mismatched = self.outcomes.iter().filter(|o| **o == mismatch).count();
        if mismatched * 10 > checked {
            return vec![format!(
                "{mismatched} of the {checked} alleles checked against the reference have a REF that is not the \
                 reference's bases at their site (status ref_mismatch): is --reference the genome the VCF was \
                 called against?"
            )];
        }
        Vec::new()
    }

    /// Once [`Scorer::finish`] has run: row `index`'s ln P of REF and ALT (when scored) and its status.
    pub fn outcome(&self, index: usize) -> Result<(Option<(f32, f32)>, &'static str)> {
        let allele = &self.variants.alleles[index];
        match (allele.kind, self.outcomes[index]) {
            (Err(status), _) => Ok((None, status)),
            (Ok(_), Some(Outcome::Scored(r, a))) => Ok((Some((r, a)), status::OK)),
            (Ok(_), Some(Outcome::Status(status))) => Ok((None, status)),
            (Ok(_), None) => Err(Error::Invalid(format!(
                "internal: the allele of row {} was not settled",
                index + 1
            ))),
        }
    }

    /// The number of rows: one per record and ALT allele (one for a record without ALT alleles).
    pub fn rows(&self) -> usize {
        self.variants.alleles.len()
    }

    /// The record (0-based, in the VCF's order) of row `index`.
    pub fn record_of(&self, index: usize) -> usize {
        self.variants.alleles[index].record
    }

    /// The next batch of rows, in the VCF's order, once [`Scorer::finish`] has run; `None` before or when all
    /// are out. The rows' text comes from reading the VCF again; the batch holding the last row is returned only
    /// once that read has found the file scored (same records, same SHA-256).
    pub fn take_batch(&mut self) -> Result<Option<RecordBatch>> {
        let rows = self.variants.alleles.len();
        if !self.finished || self.cursor == rows {
            return Ok(None);
        }
        let end = (self.cursor + BATCH_ROWS).min(rows);
        let variants = Arc::clone(&self.variants);
        for (index, allele) in variants.alleles[self.cursor..end]
            .iter()
            .enumerate()
            .map(|(i, a)| (self.cursor + i, a))
        {
            let (logp, status) = self.outcome(index)?;
            let record = self.rows.record(allele.record)?;
            let alt = match allele.alt {
                None if record.alts.is_empty() => Some("."),
                None => None,
                Some(i) => record.alts.get(i as usize).map(String::as_str),
            };
            let Some(alt) = alt else {
                let detail = format!("line {} has {} ALT alleles", record.line, record.alts.len());
                return Err(self.rows.changed(detail));
            };
            self.builder.push(&Variant {
                chrom: &record.chrom,
                pos: record.pos as i64,
                id: record.id.as_deref(),
                ref_allele: &record.reference,
                alt,
                logp_ref: logp.map(|(r, _)| r),
                logp_alt: logp.map(|(_, a)| a),
                status,
            })?;
        }
        self.cursor = end;
        if end == rows {
            self.rows.check_end()?;
        }
        Ok(Some(self.builder.finish()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(chrom: &str, pos: u64, reference: &str, alts: &[&str]) -> VcfRecord {
        VcfRecord {
            chrom: chrom.into(),
            pos,
            id: None,
            reference: reference.into(),
            alts: alts.iter().map(|a| a.to_string()).collect(),
            line: 0,
        }
    }

    #[test]
    fn alleles_are_classified_before_any_model_runs() {
        let snv = |r, a| classify(r, a, false);
        assert_eq!(snv("A", "g"), Ok(Kind::Snv(0, 2)));
        assert_eq!(snv("t", "C"), Ok(Kind::Snv(3, 1)));
        assert_eq!(snv("A", "."), Err(status::NO_ALT));
        assert_eq!(snv("A", ""), Err(status::NO_ALT));
        assert_eq!(snv("C", "c"), Err(status::NO_ALT));
        assert_eq!(snv("AT", "AT"), Err(status::NO_ALT));
        assert_eq!(snv("AT", "A"), Err(status::NOT_SNV));
        assert_eq!(snv("A", "AT"), Err(status::NOT_SNV));
        assert_eq!(snv("A", "<DEL>"), Err(status::NOT_SNV));
        assert_eq!(snv("A", "*"), Err(status::NOT_SNV));
        assert_eq!(snv("A", "N"), Err(status::AMBIGUOUS));
        assert_eq!(snv("R", "A"), Err(status::AMBIGUOUS));
        // With haplotypes: indels and substitutions of plain bases; symbolic and ambiguous ones still not.
        let hap = |r, a| classify(r, a, true);
        assert_eq!(hap("A", "g"), Ok(Kind::Snv(0, 2)));
        assert_eq!(hap("AT", "A"), Ok(Kind::Haplotype));
        assert_eq!(hap("a", "acgT"), Ok(Kind::Haplotype));
        assert_eq!(hap("AC", "GT"), Ok(Kind::Haplotype));
        assert_eq!(hap("AT", "at"), Err(status::NO_ALT));
        assert_eq!(hap("A", "<DEL>"), Err(status::NOT_SNV));
        assert_eq!(hap("A", "*"), Err(status::NOT_SNV));
        assert_eq!(hap("A", "A[chr2:5["), Err(status::NOT_SNV));
        assert_eq!(hap("AT", "*"), Err(status::NOT_SNV));
        assert_eq!(hap("AN", "A"), Err(status::AMBIGUOUS));
        assert_eq!(hap("A", "AR"), Err(status::AMBIGUOUS));
    }

    #[test]
    fn walk_windows_follow_the_window_grid_and_reach_past_it_by_the_flank() {
        let v = Variants::new(
            vec![
                rec("b", 3, "AT", &["A"]),
                rec("b", 12, "G", &["GCC", "A"]),
                rec("b", 19, "TA", &["T"]),
                rec("b", 40, "C", &["T"]),
                rec("b", 49, "TA", &["T"]),
                rec("b", 60, "C", &["T"]),
                rec("c", 1, "G", &["GA"]),
                rec("d", 7, "G", &["C"]),
            ],
            true,
        );
        assert_eq!(v.haplotype_count(), 5);
        assert_eq!(v.scorable(), 4);
        assert_eq!(v.haplotype_contigs(), ["b", "c"]);
        let lengths = [
            ("c".to_string(), 5),
            ("b".to_string(), 49),
            ("d".to_string(), 9),
        ];
        // b: window 0 holds sites at 2, 11 and 18 (REF ends 4, 12, 20; the deletions' ALT haplotypes read one
        // base more, the insertions' REF haplotypes as many as they insert) and the SNV at 11; the SNV at 39
        // ends its window at 40; the last REF and the SNV at 59 lie past b's end. d holds one SNV.
        assert_eq!(
            v.walk_regions(&lengths, 20, 6),
            [
                Region::new("c", 0, Some(5)),
                Region::new("b", 0, Some(27)),
                Region::new("b", 20, Some(40)),
                Region::new("d", 0, Some(7)),
            ]
        );
        assert_eq!(
            v.walk_regions(&lengths, 10, 0),
            [
                Region::new("c", 0, Some(2)),
                Region::new("b", 0, Some(5)),
                Region::new("b", 10, Some(21)),
                Region::new("b", 30, Some(40)),
                Region::new("d", 0, Some(7)),
            ]
        );
        assert_eq!(
            v.walk_regions(&lengths, 0, 100),
            [
                Region::new("c", 0, Some(5)),
                Region::new("b", 0, Some(49)),
                Region::new("d", 0, Some(7)),
            ]
        );
        // Without haplotypes nothing of the kind is kept.
        let v = Variants::new(vec![rec("b", 3, "AT", &["A"])], false);
        assert_eq!(v.haplotype_count(), 0);
    }

    #[test]
    fn one_row_per_alt_allele_and_sites_sorted_by_contig() {
        let v = Variants::new(
            vec![
                rec("b", 9, "A", &["C", "T"]),
                rec("a", 5, "AT", &["A"]),
                rec("b", 3, "G", &["."]),
                rec("b", 2, "G", &["A"]),
            ],
            false,
        );
        assert_eq!((v.records(), v.rows(), v.scorable()), (4, 5, 3));
        assert_eq!(v.sites["b"], [(1, 4), (8, 0), (8, 1)]);
        assert!(!v.sites.contains_key("a"));
    }

    #[test]
    fn masked_regions_merge_the_sites_flanks_within_the_record() {
        let v = Variants::new(
            vec![
                rec("b", 1, "G", &["A"]),
                rec("b", 10, "G", &["A", "C"]),
                rec("b", 20, "G", &["A"]),
                rec("b", 31, "G", &["A"]),
                rec("b", 50, "G", &["A"]),
                rec("b", 51, "G", &["A"]),
                rec("c", 3, "G", &["A"]),
                rec("x", 1, "G", &["A"]),
            ],
            false,
        );
        let lengths = [("c".to_string(), 5), ("b".to_string(), 50)];
        // Flank 5: b's sites 0, 9 and 19 read [0, 6), [4, 15) and [14, 25) (merged, overlapping), 30 reads
        // [25, 36) (touching), 49 reads [44, 50) (cut at b's end) and 50 is past it.
        assert_eq!(
            v.masked_regions(&lengths, 5),
            [
                Region::new("c", 0, Some(5)),
                Region::new("b", 0, Some(36)),
                Region::new("b", 44, Some(50)),
            ]
        );
        assert_eq!(
            v.masked_regions(&lengths, 0),
            [
                Region::new("c", 2, Some(3)),
                Region::new("b", 0, Some(1)),
                Region::new("b", 9, Some(10)),
                Region::new("b", 19, Some(20)),
                Region::new("b", 30, Some(31)),
                Region::new("b", 49, Some(50)),
            ]
        );
        assert_eq!(masked_span(3, u64::MAX, 10), (0, 10));
    }

    #[test]
    fn regions_follow_the_window_grid_and_end_at_the_last_site() {
        let v = Variants::new(
            vec![
                rec("b", 2, "G", &["A"]),
                rec("b", 10, "G", &["A"]),
                rec("b", 25, "G", &["A"]),
                rec("b", 99, "G", &["A"]),
                rec("c", 1, "G", &["A"]),
                rec("x", 1, "G", &["A"]),
            ],
            false,
        );
        let lengths = [("c".to_string(), 5), ("b".to_string(), 50)];
        assert_eq!(
            v.regions(&lengths, 20),
            [
                Region::new("c", 0, Some(1)),
                Region::new("b", 0, Some(10)),
                Region::new("b", 20, Some(25)),
            ]
        );
        assert_eq!(
            v.regions(&lengths, 0),
            [Region::new("c", 0, Some(1)), Region::new("b", 0, Some(25))]
        );
    }

    const HEADER: &str = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

    /// A score run's options over the VCF at `first`, whose rows are read again from `reread`; the reference
    /// holds only `chrA` (1,000 bases), and nothing runs.
    fn options(first: &std::path::Path, reread: &std::path::Path) -> ScoreOptions {
        let mut vcf = genomamba_seq::vcf::open(first).unwrap();
        let variants = Variants::read(&mut vcf, false).unwrap();
        ScoreOptions {
            vcf: first.to_path_buf(),
            vcf_sha256: vcf.sha256().unwrap(),
            vcf_reread: reread.to_path_buf(),
            variants: Arc::new(variants),
            lengths: vec![("chrA".into(), 1000)],
            read: crate::ReferenceRead::Nothing,
            strand: crate::Strand::Forward,
            walk: None,
            masked: None,
            output_vcf: None,
        }
    }

    /// Every batch `scorer` gives, or its first error.
    fn batches(scorer: &mut Scorer) -> Result<Vec<RecordBatch>> {
        scorer.finish()?;
        let mut out = Vec::new();
        while let Some(batch) = scorer.take_batch()? {
            out.push(batch);
        }
        Ok(out)
    }

    /// (CHROM, POS, ALT, status) of every row of `batches`.
    fn rows(batches: &[RecordBatch]) -> Vec<(String, i64, String, String)> {
        use arrow_array::cast::AsArray as _;
        use arrow_array::types::{Int32Type, Int64Type};
        let mut out = Vec::new();
        for batch in batches {
            let column = |name: &str| batch.column_by_name(name).unwrap();
            let dictionary = |name: &str| {
                let d = column(name).as_dictionary::<Int32Type>();
                let values = d.values().as_string::<i32>().clone();
                d.keys()
                    .iter()
                    .map(|k| values.value(k.unwrap() as usize).to_string())
                    .collect::<Vec<_>>()
            };
            let (chrom, status) = (dictionary("chrom"), dictionary("status"));
            let pos = column("pos").as_primitive::<Int64Type>();
            let alt = column("alt").as_string::<i32>();
            for i in 0..batch.num_rows() {
                out.push((
                    chrom[i].clone(),
                    pos.value(i),
                    alt.value(i).to_string(),
                    status[i].clone(),
                ));
            }
        }
        out
    }

    #[test]
    fn rows_are_read_again_in_the_vcfs_order_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("many.vcf");
        // One row short of a batch, then a record of three ALT alleles whose rows straddle the batch's end.
        let mut text = String::from(HEADER);
        for i in 0..BATCH_ROWS - 1 {
            let chrom = if i % 2 == 0 { "chrA" } else { "chrZ" };
            text.push_str(&format!("{chrom}\t{}\t.\tA\tC\t.\t.\t.\n", i % 900 + 1));
        }
        text.push_str("chrA\t5\trs5\tA\tC,T,<DEL>\t.\t.\t.\n");
        text.push_str("chrA\t2000\t.\tG\t.\t.\t.\t.\n");
        text.push_str("chrA\t7\t.\tAT\tA\t.\t.\t.\n");
        std::fs::write(&path, text).unwrap();
        let options = options(&path, &path);
        assert_eq!(options.variants.records(), BATCH_ROWS + 2);
        let mut scorer = Scorer::new(&options);
        // chrA's SNVs are in bounds and never ran: only a run's pieces or passes settle them.
        let e = batches(&mut scorer).unwrap_err().to_string();
        assert!(e.contains("internal: the site chrA:1 was not run"), "{e}");

        let mut scorer = Scorer::new(&options);
        let settled = (options.variants.snv_sites("chrA").iter())
            .map(|&(_, i)| (i, Ok((-1.0, -2.0))))
            .collect();
        scorer.settle(settled);
        let out = batches(&mut scorer).unwrap();
        assert_eq!(
            out.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(),
            [BATCH_ROWS, 4]
        );
        let rows = rows(&out);
        assert_eq!(rows[0], ("chrA".into(), 1, "C".into(), "ok".into()));
        assert_eq!(
            rows[1],
            ("chrZ".into(), 2, "C".into(), "unknown_contig".into())
        );
        let tail: Vec<_> = rows[BATCH_ROWS - 1..]
            .iter()
            .map(|(c, p, a, s)| format!("{c}:{p} {a} {s}"))
            .collect();
        assert_eq!(
            tail,
            [
                "chrA:5 C ok",
                "chrA:5 T ok",
                "chrA:5 <DEL> not_snv",
                "chrA:2000 . no_alt",
                "chrA:7 A not_snv"
            ]
        );
    }

    #[test]
    fn a_vcf_that_changed_before_its_rows_are_read_again_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let scored = dir.path().join("scored.vcf");
        let records = [
            "chrZ\t1\trs1\tA\tC,G\t.\t.\tDP=3",
            "chrZ\t2\trs2\tA\tT\t.\t.\tDP=4",
        ];
        std::fs::write(&scored, format!("{HEADER}{}\n", records.join("\n"))).unwrap();
        let cases = [
            (
                "the same",
                format!("{HEADER}{}\n", records.join("\n")),
                None,
            ),
            (
                "an INFO value edited",
                format!(
                    "{HEADER}{}\n{}\n",
                    records[0],
                    records[1].replace("DP=4", "DP=5")
                ),
                Some("SHA-256 "),
            ),
            (
                "a record less",
                format!("{HEADER}{}\n", records[0]),
                Some("it ends before record 2"),
            ),
            (
                "a record more",
                format!(
                    "{HEADER}{}\nchrZ\t3\t.\tA\tT\t.\t.\t.\n",
                    records.join("\n")
                ),
                Some("it has more records than when it was scored"),
            ),
            (
                "an ALT less",
                format!(
                    "{HEADER}{}\n{}\n",
                    records[0].replace("C,G", "C"),
                    records[1]
                ),
                Some("line 3 has 1 ALT alleles"),
            ),
        ];
        for (what, text, expected) in cases {
            let reread = dir.path().join("reread.vcf");
            std::fs::write(&reread, text).unwrap();
            let mut scorer = Scorer::new(&options(&scored, &reread));
            match (batches(&mut scorer), expected) {
                (Ok(out), None) => assert_eq!(rows(&out).len(), 3, "{what}"),
                (Err(e), Some(expected)) => {
                    let e = e.to_string();
                    assert!(
                        e.starts_with(&format!(
                            "{}: the file changed while it was being scored (",
                            scored.display()
                        )) && e.contains(expected),
                        "{what}: {e}"
                    );
                }
                (result, _) => panic!("{what}: {:?}", result.map(|b| rows(&b))),
            }
        }
    }
}
