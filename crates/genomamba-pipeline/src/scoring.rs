//! Variant-effect scores (`genomamba score`): each ALT allele of a VCF is classified once, its site is looked up
//! in the probabilities of the piece that keeps it, and the rows are written in the VCF's order at the end.
//!
//! A site's probabilities are exactly the `predict` row of that base in a run over the reference with the same
//! window, overlap and model: [`Variants::regions`] (or, when indels are scored too, [`Variants::walk_regions`])
//! cuts the reference on the same window grid, and scores use [`genomamba_parquet::log_probs`], the predictions
//! table's own `logp_ref`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::RecordBatch;
use genomamba_parquet::{
    BatchBuilder, Variant, VariantBatchBuilder, base_index, log_probs, status,
};
use genomamba_seq::Region;
use genomamba_seq::vcf::VcfRecord;
use genomamba_seq::window::{Piece, SequenceSummary};

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

/// The variants of a VCF: its records, their alleles (one output row each) and their sites by contig.
#[derive(Debug, PartialEq, Eq)]
pub struct Variants {
    records: Vec<VcfRecord>,
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
    pub fn new(records: Vec<VcfRecord>, haplotypes: bool) -> Self {
        let mut alleles = Vec::with_capacity(records.len());
        let mut sites: HashMap<String, Vec<(u64, usize)>> = HashMap::new();
        let mut haps: HashMap<String, Vec<HaplotypeSite>> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
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
                match kind {
                    Ok(Kind::Snv(..)) => sites
                        .entry(record.chrom.to_string())
                        .or_default()
                        .push((record.pos - 1, alleles.len())),
                    Ok(Kind::Haplotype) => {
                        haps.entry(record.chrom.to_string())
                            .or_default()
                            .push(HaplotypeSite {
                                allele: alleles.len(),
                                start: record.pos - 1,
                                reference: record.reference.as_bytes().to_vec(),
                                alt: alt.as_bytes().to_vec(),
                            })
                    }
                    Err(_) => {}
                }
                alleles.push(Allele {
                    record: index,
                    alt: alt_index,
                    kind,
                });
            }
        }
        for list in sites.values_mut() {
            list.sort_unstable();
        }
        for list in haps.values_mut() {
            list.sort_unstable_by_key(|h| (h.start, h.allele));
        }
        Self {
            records,
            alleles,
            sites,
            haplotypes: haps,
        }
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
        self.records.len()
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
/// variants table in the VCF's order.
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
}

impl Scorer {
    /// A scorer for `variants`; `lengths`: the reference's records when known up front (its index).
    pub fn new(variants: Arc<Variants>, lengths: &[(String, u64)]) -> Self {
        Self {
            outcomes: vec![None; variants.alleles.len()],
            variants,
            lengths: lengths.iter().cloned().collect(),
            cursor: 0,
            finished: false,
            builder: VariantBatchBuilder::new(),
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
        for (allele, outcome) in self.variants.alleles.iter().zip(&mut self.outcomes) {
            if outcome.is_some() || allele.kind.is_err() {
                continue;
            }
            let record = &self.variants.records[allele.record];
            *outcome = Some(Outcome::Status(match self.lengths.get(&*record.chrom) {
                None => status::UNKNOWN_CONTIG,
                Some(&len) if record.pos > len => status::OUT_OF_BOUNDS,
                Some(_) => {
                    return Err(Error::Invalid(format!(
                        "internal: the site {}:{} was not run",
                        record.chrom, record.pos
                    )));
                }
            }));
        }
        self.finished = true;
        Ok(self.variants.alleles.len() as u64)
    }

    /// After [`Scorer::finish`]: what the user should hear. The VCF has SNVs but none is on a record of the
    /// reference (most often a naming mismatch, `chr1` against `1`); or more than a tenth of the SNVs on the
    /// reference disagree with its base at their site (most often another build or assembly).
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
                "{mismatched} of the {checked} SNVs on the reference have a REF that is not the reference's base at \
                 their site (status ref_mismatch): is --reference the genome the VCF was called against?"
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
            (Ok(_), None) => {
                let record = &self.variants.records[allele.record];
                Err(Error::Invalid(format!(
                    "internal: {}:{} was not settled",
                    record.chrom, record.pos
                )))
            }
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
    /// are out.
    pub fn take_batch(&mut self) -> Result<Option<RecordBatch>> {
        if !self.finished || self.cursor == self.variants.alleles.len() {
            return Ok(None);
        }
        let end = (self.cursor + BATCH_ROWS).min(self.variants.alleles.len());
        for index in self.cursor..end {
            let allele = &self.variants.alleles[index];
            let record = &self.variants.records[allele.record];
            let (logp, status) = self.outcome(index)?;
            self.builder.push(&Variant {
                chrom: &record.chrom,
                pos: record.pos as i64,
                id: record.id.as_deref(),
                ref_allele: &record.reference,
                alt: allele.alt.map_or(".", |i| record.alts[i as usize].as_str()),
                logp_ref: logp.map(|(r, _)| r),
                logp_alt: logp.map(|(_, a)| a),
                status,
            })?;
        }
        self.cursor = end;
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
}
