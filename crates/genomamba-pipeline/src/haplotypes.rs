//! Scores of indels and multi-base substitutions (`score --indel-flank N`): each such allele is scored as two
//! haplotypes that continue one prefix, the reference's bases before REF in the allele's window and burn-in
//! (the context an SNV there gets). Each haplotype is its allele followed by the reference after REF, cut to
//! the same length, `max(len REF, len ALT) + N` bases, so that neither sum has more terms than the other (a
//! deletion's ALT haplotype reads as many more reference bases as it deletes). `logp_ref` and `logp_alt` are the
//! sums of ln P(base | the bases before it) over each, and the score is their difference. Positions that are
//! not A, C, G or T (N in the reference) count in neither sum; the haplotypes stop at the record's end (both at
//! the same length) but not at a window's.
//!
//! The model runs each window's prefix once: it walks the reference from the window's burn-in to each site in
//! turn, saves the state there ([`Engine::save_state`]) and runs both haplotypes from it
//! ([`Engine::restore_state`]), so a site costs its two haplotypes, not its prefix again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicBool;

use genomamba_model::{BASE_TOKENS, Engine, Output, State, Want};
use genomamba_parquet::{base_index, log_probs, status};
use genomamba_seq::OpenOptions;

use crate::Result;
use crate::progress::Progress;
use crate::scoring::{AlleleOutcome, HaplotypeSite, Variants, haplotype_groups};
use crate::spans::{SiteReads, Span, Spans, read_spans};

/// Base probabilities only.
const PROBS: Want = Want {
    hidden: false,
    base_probs: true,
};

/// How the haplotype pass reads the reference and how far past REF it scores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaplotypePass {
    /// Reference bases after REF added to both haplotypes.
    pub flank: u64,
    /// What it reads of the reference: each group's region ([`Variants::haplotype_regions`]; the pass adds the
    /// burn-in), or the records holding sites.
    pub reads: SiteReads,
}

/// One window's sites. Its span is the reference from `context` to one past the last base any of its haplotypes
/// reads.
#[derive(Debug)]
struct Group<'a> {
    /// First base of the prefix: the window's start less its burn-in (at least 0).
    context: u64,
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
    for (name, sites) in variants.haplotypes() {
        let Some(&len) = lengths.get(name.as_str()) else {
            continue;
        };
        let mut list = VecDeque::new();
        for (start, end) in haplotype_groups(sites, len, window, flank) {
            // The sites (sorted by start) of the group's window, all of the record when `window` is 0.
            let stop = if window == 0 {
                u64::MAX
            } else {
                start + window
            };
            let first = sites.partition_point(|h| h.start < start);
            let last = sites.partition_point(|h| h.start < stop);
            let context = start.saturating_sub(overlap);
            list.push_back(Span {
                start: context,
                end,
                item: Group {
                    context,
                    sites: sites[first..last]
                        .iter()
                        .filter(|h| h.end() <= len)
                        .collect(),
                },
            });
        }
        out.insert(name.as_str(), list);
    }
    out
}

/// Runs the pass over the reference `reference` (records `lengths`, read with `open` and the pass's own
/// regions or records) with windows of `window` bases after `overlap` bases of burn-in, the same grid as the
/// SNVs' pass, reporting the bases run to `progress`; returns each allele's outcome. Alleles on records the
/// reference lacks get none (the scorer settles them as `unknown_contig`).
#[allow(clippy::too_many_arguments)]
pub fn score_haplotypes(
    reference: &std::path::Path,
    open: &OpenOptions,
    pass: &HaplotypePass,
    variants: &Variants,
    lengths: &[(String, u64)],
    window: u64,
    overlap: u64,
    engine: &mut dyn Engine,
    progress: &mut Progress,
    interrupted: &AtomicBool,
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
    let pending = groups(variants, &lens, window, overlap, pass.flank);
    let mut walker = Walker::new(engine, pass.flank);
    // The sequences read are not listed: the SNVs' pass lists the reference as it reads it.
    read_spans(
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

/// Runs the model along one group's prefix and both haplotypes of each site.
struct Walker<'e> {
    engine: &'e mut dyn Engine,
    flank: u64,
    saved: State,
    out: Output,
    haplotype: Vec<u8>,
}

impl<'e> Walker<'e> {
    fn new(engine: &'e mut dyn Engine, flank: u64) -> Self {
        let saved = State::new(&engine.info().dims);
        Walker {
            engine,
            flank,
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
        // Where the saved state stands (relative to the group's first base), once the walk has begun.
        let mut saved_at: Option<usize> = None;
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
            match saved_at {
                // Another ALT at the same site: back to the state before its haplotypes.
                Some(at) if at == s => self.engine.restore_state(&self.saved)?,
                Some(at) => {
                    self.engine.restore_state(&self.saved)?;
                    self.engine
                        .run(&tokens[at..s], false, PROBS, &mut self.out)?;
                    self.engine.save_state(&mut self.saved)?;
                    ran += (s - at) as u64;
                }
                None => {
                    self.engine.run(&tokens[..s], true, PROBS, &mut self.out)?;
                    self.engine.save_state(&mut self.saved)?;
                    ran += s as u64;
                }
            }
            saved_at = Some(s);
            // Both haplotypes `l` bases long: the allele, then the reference after REF, within what was read
            // (the group reaches this site's furthest base, or the record's end).
            let k = site.alt.len();
            let flank = usize::try_from(self.flank).unwrap_or(usize::MAX);
            let l = m
                .max(k)
                .saturating_add(flank)
                .min(tokens.len() - s)
                .min(tokens.len() - s - m + k);
            // REF's haplotype is the reference itself from the site.
            self.engine
                .run(&tokens[s..s + l], false, PROBS, &mut self.out)?;
            let logp_ref = self.sum(&tokens[s..s + l]);
            self.haplotype.clear();
            self.haplotype.extend(
                site.alt
                    .iter()
                    .take(l)
                    .filter_map(|&b| base_index(b).map(|i| BASE_TOKENS[i] as u8)),
            );
            self.haplotype
                .extend_from_slice(&tokens[s + m..s + m + l.saturating_sub(k)]);
            self.engine.restore_state(&self.saved)?;
            let haplotype = std::mem::take(&mut self.haplotype);
            let run = self.engine.run(&haplotype, false, PROBS, &mut self.out);
            let logp_alt = self.sum(&haplotype);
            self.haplotype = haplotype;
            run?;
            outcomes.push((site.allele, Ok((logp_ref as f32, logp_alt as f32))));
            ran += 2 * l as u64;
        }
        Ok(ran)
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
