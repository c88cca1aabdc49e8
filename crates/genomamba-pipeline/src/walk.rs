//! The walk that scores a causal model's sites apart from the main pass: with `--indel-flank`, or when the
//! reference has no usable index (the records are read whole, but only the windows holding sites are run).
//! Per window holding a site, the model walks the reference from the window's burn-in, reading each SNV's row as
//! it passes (the `predict` row of that base, bit for bit on the CPU engine, however the walk splits its calls),
//! and at each indel or substitution saves the state
//! ([`Engine::save_state`]), runs both haplotypes from it and restores it ([`Engine::restore_state`]) before
//! walking on. A site costs its two haplotypes, not its prefix again, and the reference is walked once for SNVs
//! and indels together.
//!
//! Indels and multi-base substitutions (`score --indel-flank N`) are each scored as two haplotypes that continue
//! one prefix, the reference's bases before REF in the allele's window and burn-in (the context an SNV there
//! gets). Each haplotype is its allele followed by the reference after REF, cut to the same length, `max(len REF,
//! len ALT) + N` bases, so that neither sum has more terms than the other (a deletion's ALT haplotype reads as
//! many more reference bases as it deletes). `logp_ref` and `logp_alt` are the sums of ln P(base | the bases
//! before it) over each, and the score is their difference. Positions that are not A, C, G or T (N in the
//! reference) count in neither sum; the haplotypes stop at the record's end (both at the same length) but not at
//! a window's.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};

use genomamba_model::{BASE_TOKENS, Engine, Output, State, Want};
use genomamba_parquet::{base_index, log_probs, status};
use genomamba_seq::OpenOptions;

use crate::metadata::InputRecord;
use crate::progress::Progress;
use crate::scoring::{AlleleOutcome, HaplotypeSite, Variants, snv_outcome, walk_windows};
use crate::spans::{SiteReads, Span, Spans, read_spans};
use crate::{Error, Result};

/// Base probabilities only.
const PROBS: Want = Want {
    hidden: false,
    base_probs: true,
};

/// How the walk reads the reference and how far past REF it scores haplotypes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkPass {
    /// `--indel-flank`: reference bases after REF added to both haplotypes; `None` when indels are not scored
    /// (status `not_snv`).
    pub indel_flank: Option<u64>,
    /// What it reads of the reference: each window's region ([`Variants::walk_regions`]; the walk adds the
    /// burn-in), or the records holding sites.
    pub reads: SiteReads,
}

impl WalkPass {
    /// The haplotypes' flank (0 when no indel is scored: then there are none).
    pub fn flank(&self) -> u64 {
        self.indel_flank.unwrap_or(0)
    }
}

/// An SNV to read off the walk: 0-based site, its row (allele index), and the indices of REF and ALT.
#[derive(Debug, Clone, Copy)]
struct Snv {
    site: u64,
    allele: usize,
    reference: usize,
    alt: usize,
}

/// One window's sites. Its span is the reference from `context` to one past the last base any of its sites
/// needs.
#[derive(Debug)]
struct Group<'a> {
    /// First base of the prefix: the window's start less its burn-in (at least 0).
    context: u64,
    /// Its SNVs, by site.
    snvs: Vec<Snv>,
    /// Its indels and substitutions, by start.
    sites: Vec<&'a HaplotypeSite>,
}

/// Per record, its groups in order.
fn groups<'a>(
    variants: &'a Variants,
    lengths: &HashMap<&str, u64>,
    window: u64,
    overlap: u64,
    flank: u64,
) -> Spans<'a, Group<'a>> {
    let mut out = HashMap::new();
    let names = variants
        .contigs()
        .into_iter()
        .chain(variants.haplotype_contigs());
    for name in names {
        let Some(&len) = lengths.get(name) else {
            continue;
        };
        if out.contains_key(name) {
            continue;
        }
        let snvs = variants.snv_sites(name);
        let sites = variants
            .haplotypes()
            .get(name)
            .map_or(&[][..], Vec::as_slice);
        let mut list = VecDeque::new();
        for (start, end) in walk_windows(snvs, sites, len, window, flank) {
            // The sites of the group's window, all of the record when `window` is 0.
            let stop = if window == 0 {
                u64::MAX
            } else {
                start + window
            };
            let within = |at: u64| start <= at && at < stop;
            let context = start.saturating_sub(overlap);
            list.push_back(Span {
                start: context,
                end,
                item: Group {
                    context,
                    snvs: snvs
                        .iter()
                        .filter(|&&(site, _)| within(site) && site < len)
                        .filter_map(|&(site, allele)| {
                            let (reference, alt) = variants.snv(allele)?;
                            Some(Snv {
                                site,
                                allele,
                                reference,
                                alt,
                            })
                        })
                        .collect(),
                    sites: sites
                        .iter()
                        .filter(|h| within(h.start) && h.end() <= len)
                        .collect(),
                },
            });
        }
        out.insert(name, list);
    }
    out
}

/// The length of both haplotypes of a site with REF `m` and ALT `k` bases long and `flank` bases after REF, when
/// `remaining` bases of the reference are read from its start (the group reaches the site's furthest base, or
/// the record's end): the allele then the reference after REF, `max(m, k) + flank` bases, within what was read.
fn haplotype_len(m: usize, k: usize, flank: u64, remaining: usize) -> usize {
    let flank = usize::try_from(flank).unwrap_or(usize::MAX);
    m.max(k)
        .saturating_add(flank)
        .min(remaining)
        .min(remaining - m + k)
}

/// The bases the walk will run over a reference of records `lengths` (for the ETA): per window holding a site,
/// the reference from its burn-in to its last SNV or indel, and both haplotypes of each indel (counted as if
/// every REF matched the reference).
pub fn planned_bases(
    pass: &WalkPass,
    variants: &Variants,
    lengths: &[(String, u64)],
    window: u64,
    overlap: u64,
) -> u64 {
    let lens: HashMap<&str, u64> = lengths.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let flank = pass.flank();
    let spans = groups(variants, &lens, window, overlap, flank);
    let mut bases = 0;
    for span in spans.values().flatten() {
        let group = &span.item;
        let remaining = (span.end - group.context) as usize;
        let mut walked = group.snvs.last().map_or(0, |v| v.site + 1 - group.context);
        for site in &group.sites {
            let s = site.start - group.context;
            if s > 0 {
                walked = walked.max(s);
                let l = haplotype_len(
                    site.reference.len(),
                    site.alt.len(),
                    flank,
                    remaining - s as usize,
                );
                bases += 2 * l as u64;
            }
        }
        bases += walked;
    }
    bases
}

/// Walks the reference `reference` (records `lengths`, read with `open` and the pass's own regions or records)
/// with windows of `window` bases after `overlap` bases of burn-in, the grid of a run over the whole record, in
/// engine calls of at most `chunk` bases, reporting the bases run to `progress`; returns the outcome of every
/// SNV, indel and substitution within a record of the reference (the scorer settles the others as
/// `unknown_contig` or `out_of_bounds`), and adds the sequences it read (records or regions) to `read`.
#[allow(clippy::too_many_arguments)]
pub fn score_walk(
    reference: &std::path::Path,
    open: &OpenOptions,
    pass: &WalkPass,
    variants: &Variants,
    lengths: &[(String, u64)],
    window: u64,
    overlap: u64,
    chunk: usize,
    engine: &mut dyn Engine,
    progress: &mut Progress,
    interrupted: &AtomicBool,
    read: &mut Vec<InputRecord>,
) -> Result<Vec<(usize, AlleleOutcome)>> {
    let lens: HashMap<&str, u64> = lengths.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let mut outcomes = Vec::new();
    // REF running past the record's end: nothing to read.
    for (name, sites) in variants.haplotypes() {
        if let Some(&len) = lens.get(name.as_str()) {
            for site in sites.iter().filter(|h| h.end() > len) {
                outcomes.push((site.allele, Err(status::OUT_OF_BOUNDS)));
            }
        }
    }
    let pending = groups(variants, &lens, window, overlap, pass.flank());
    let mut walker = Walker::new(engine, pass.flank(), chunk, interrupted);
    *read = read_spans(
        reference,
        open,
        &pass.reads,
        overlap,
        pending,
        interrupted,
        |name, group, tokens, bases| {
            let ran = walker.group(&group, tokens, bases, &mut outcomes)?;
            progress.advance(name, ran);
            Ok(())
        },
    )?;
    Ok(outcomes)
}

/// Runs the model along one group's reference, and both haplotypes of each indel or substitution from the
/// state at its site.
struct Walker<'e> {
    engine: &'e mut dyn Engine,
    flank: u64,
    /// Most bases per engine call along the reference.
    chunk: usize,
    /// Set by a signal: the walk stops between engine calls.
    interrupted: &'e AtomicBool,
    saved: State,
    out: Output,
    haplotype: Vec<u8>,
}

/// Where a walk along one group's reference stands.
struct Walk<'g> {
    /// Bases of the group's span walked (relative to its first base): the engine's state follows them.
    at: usize,
    /// SNVs not yet passed, by site.
    snvs: std::slice::Iter<'g, Snv>,
    /// Where the saved state stands, once one is.
    saved_at: Option<usize>,
}

impl<'e> Walker<'e> {
    fn new(
        engine: &'e mut dyn Engine,
        flank: u64,
        chunk: usize,
        interrupted: &'e AtomicBool,
    ) -> Self {
        let saved = State::new(&engine.info().dims);
        Walker {
            engine,
            flank,
            chunk: chunk.max(1),
            interrupted,
            saved,
            out: Output::default(),
            haplotype: Vec::new(),
        }
    }

    /// Scores `group`'s sites; `tokens` and `bases` are the reference over the group's span. Returns the number
    /// of bases the model ran.
    fn group(
        &mut self,
        group: &Group<'_>,
        tokens: &[u8],
        bases: &[u8],
        outcomes: &mut Vec<(usize, AlleleOutcome)>,
    ) -> Result<u64> {
        let mut ran = 0u64;
        let mut walk = Walk {
            at: 0,
            snvs: group.snvs.iter(),
            saved_at: None,
        };
        for site in &group.sites {
            let s = (site.start - group.context) as usize;
            let m = site.reference.len();
            let matches = bases[s..s + m]
                .iter()
                .zip(&site.reference)
                .all(|(b, r)| b.eq_ignore_ascii_case(r));
            if !matches {
                outcomes.push((site.allele, Err(status::REF_MISMATCH)));
                continue;
            }
            // The first base of a window read with no burn-in has no prediction.
            if s == 0 {
                outcomes.push((site.allele, Err(status::NO_CONTEXT)));
                continue;
            }
            ran += self.walk_to(&mut walk, s, group.context, tokens, bases, outcomes)?;
            if walk.saved_at != Some(s) {
                self.engine.save_state(&mut self.saved)?;
                walk.saved_at = Some(s);
            }
            let k = site.alt.len();
            let l = haplotype_len(m, k, self.flank, tokens.len() - s);
            self.haplotype.clear();
            self.haplotype.extend(
                site.alt
                    .iter()
                    .take(l)
                    .filter_map(|&b| base_index(b).map(|i| BASE_TOKENS[i] as u8)),
            );
            self.haplotype
                .extend_from_slice(&tokens[s + m..s + m + l.saturating_sub(k)]);
            // Cut at the record's end before REF and ALT differ (a deletion of its last bases, an insertion
            // after its last base): nothing to compare, where a score of 0 would read as "neutral".
            let cut = l < m
                .max(k)
                .saturating_add(usize::try_from(self.flank).unwrap_or(usize::MAX));
            if cut && self.haplotype[..] == tokens[s..s + l] {
                outcomes.push((site.allele, Err(status::OUT_OF_BOUNDS)));
                continue;
            }
            // REF's haplotype is the reference itself from the site.
            self.engine
                .run(&tokens[s..s + l], false, PROBS, &mut self.out)?;
            let logp_ref = self.sum(&tokens[s..s + l]);
            self.engine.restore_state(&self.saved)?;
            let haplotype = std::mem::take(&mut self.haplotype);
            let run = self.engine.run(&haplotype, false, PROBS, &mut self.out);
            let logp_alt = self.sum(&haplotype);
            self.haplotype = haplotype;
            run?;
            // Back to the reference at the site, where the walk goes on.
            self.engine.restore_state(&self.saved)?;
            outcomes.push((site.allele, Ok((logp_ref as f32, logp_alt as f32))));
            ran += 2 * l as u64;
        }
        // The SNVs after the last indel.
        let last = group
            .snvs
            .last()
            .map_or(0, |v| (v.site - group.context) as usize + 1);
        ran += self.walk_to(&mut walk, last, group.context, tokens, bases, outcomes)?;
        Ok(ran)
    }

    /// Runs the reference from where `walk` stands to `to` (relative to the group's first base, `context`), at
    /// most `chunk` bases a call, and scores the SNVs it passes from their rows: `ref_mismatch` where the
    /// reference holds another base, `no_context` where the row has no prediction (a window's first base read
    /// with no burn-in). Returns the bases run.
    fn walk_to(
        &mut self,
        walk: &mut Walk<'_>,
        to: usize,
        context: u64,
        tokens: &[u8],
        bases: &[u8],
        outcomes: &mut Vec<(usize, AlleleOutcome)>,
    ) -> Result<u64> {
        let from = walk.at;
        while walk.at < to {
            if self.interrupted.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let end = to.min(walk.at + self.chunk);
            self.engine
                .run(&tokens[walk.at..end], walk.at == 0, PROBS, &mut self.out)?;
            while let Some(snv) = walk
                .snvs
                .as_slice()
                .first()
                .copied()
                .filter(|v| ((v.site - context) as usize) < end)
            {
                let i = (snv.site - context) as usize;
                let row = self.out.base_probs.get(i - walk.at);
                let outcome = snv_outcome(bases[i], row, snv.reference, snv.alt);
                outcomes.push((snv.allele, outcome));
                walk.snvs.next();
            }
            walk.at = end;
        }
        Ok((walk.at - from) as u64)
    }

    /// The sum of ln P(token) over the last run's rows (`tokens` its input), skipping tokens that are not
    /// A, C, G or T (N in the flank).
    fn sum(&self, tokens: &[u8]) -> f64 {
        tokens
            .iter()
            .zip(&self.out.base_probs)
            .filter_map(|(&t, &p)| {
                let i = BASE_TOKENS.iter().position(|&b| usize::from(t) == b)?;
                log_probs(p).map(|lp| f64::from(lp[i]))
            })
            .sum()
    }
}
