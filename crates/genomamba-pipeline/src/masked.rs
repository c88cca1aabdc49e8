//! Scores of SNVs under a bidirectional masked LM (`genomamba score` with a Caduceus model): a site is run as a
//! window of its own, the reference from `flank` bases before it to `flank` bases after it (cut at the record's
//! ends), with the site's token replaced by `[MASK]`; the masked-LM head's distribution at the site gives
//! `logp_ref` and `logp_alt` (the masked-site log-likelihood ratio of GPN and PlantCAD). The ALT alleles at one site
//! share its window. On both strands ([`Strand::Both`]), the window's reverse complement runs too, the mask at the
//! site's mirrored place, and each log-probability is the mean of the forward one and the reverse strand's of the
//! complement base, so `score` is the mean of the two strands' ratios (as GPN's `run_vep` takes it).
//!
//! A bidirectional model's distribution at an unmasked site would see the site's own base, so the window grid of
//! `predict` does not apply here.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicBool;

use genomamba_model::{Engine, Output, Want};
use genomamba_parquet::{base_index, log_probs, status};
use genomamba_seq::OpenOptions;
use genomamba_seq::alphabet::{self, MASK};

use crate::Result;
use crate::metadata::InputRecord;
use crate::progress::Progress;
use crate::scoring::{AlleleOutcome, Variants, masked_span};
use crate::settings::Strand;
use crate::spans::{SiteReads, Span, Spans, read_spans};

/// Base probabilities only.
const PROBS: Want = Want {
    hidden: false,
    base_probs: true,
};

/// Most bases of masked windows gathered into one batched call (engines that prefer batches).
const BATCH_BASES: usize = 1 << 20;
/// Most windows in one batched call.
const BATCH_WINDOWS: usize = 16_384;

/// How the masked pass reads the reference and how much of it each site sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedPass {
    /// Bases of context on each side of a site.
    pub flank: u64,
    /// What it reads of the reference: the sites' spans merged ([`Variants::masked_regions`]), or the records
    /// holding sites.
    pub reads: SiteReads,
    /// The forward strand only, or both (each window and its reverse complement).
    pub strand: Strand,
}

impl MaskedPass {
    /// Windows run per site: 1, or 2 on both strands.
    fn windows_per_site(&self) -> u64 {
        match self.strand {
            Strand::Forward => 1,
            Strand::Both => 2,
        }
    }
}

/// One position holding SNVs: the alleles there (several ALTs, or several records at one position).
#[derive(Debug)]
struct Site {
    at: u64,
    alleles: Vec<usize>,
}

/// Per record of `lengths`, its sites within it and their windows, in order.
fn sites<'a>(variants: &Variants, lengths: &'a [(String, u64)], flank: u64) -> Spans<'a, Site> {
    let mut out = HashMap::new();
    for (name, len) in lengths {
        let mut list: VecDeque<Span<Site>> = VecDeque::new();
        for &(at, allele) in variants.snv_sites(name).iter().filter(|(at, _)| at < len) {
            match list.back_mut() {
                Some(span) if span.item.at == at => span.item.alleles.push(allele),
                _ => {
                    let (start, end) = masked_span(at, flank, *len);
                    list.push_back(Span {
                        start,
                        end,
                        item: Site {
                            at,
                            alleles: vec![allele],
                        },
                    });
                }
            }
        }
        if !list.is_empty() {
            out.insert(name.as_str(), list);
        }
    }
    out
}

/// The bases the pass will run at most: each site's window (sites whose REF turns out not to match are not run).
pub fn planned_bases(pass: &MaskedPass, variants: &Variants, lengths: &[(String, u64)]) -> u64 {
    let spans = sites(variants, lengths, pass.flank);
    let bases: u64 = spans.values().flatten().map(|s| s.end - s.start).sum();
    bases * pass.windows_per_site()
}

/// Runs the pass over the reference `reference` (records `lengths`, read with `open` and the pass's own regions
/// or records), `batch` windows per engine call where the engine prefers batches (0 = as many as fit 1 Mi bases),
/// reporting the bases run to `progress`; returns the outcome of each SNV within a record of the reference (the
/// scorer settles the others as `unknown_contig` or `out_of_bounds`), and adds the sequences it read of the
/// reference (records or regions) to `read`.
#[allow(clippy::too_many_arguments)]
pub fn score_masked(
    reference: &std::path::Path,
    open: &OpenOptions,
    pass: &MaskedPass,
    variants: &Variants,
    lengths: &[(String, u64)],
    batch: usize,
    engine: &mut dyn Engine,
    progress: &mut Progress,
    interrupted: &AtomicBool,
    read: &mut Vec<InputRecord>,
) -> Result<Vec<(usize, AlleleOutcome)>> {
    let pending = sites(variants, lengths, pass.flank);
    let mut outcomes = Vec::new();
    let window =
        usize::try_from(pass.flank.saturating_mul(2).saturating_add(1)).unwrap_or(usize::MAX);
    let most = match (engine.prefers_batches(), batch) {
        (false, _) => 1,
        (true, 0) => (BATCH_BASES / window).clamp(1, BATCH_WINDOWS),
        (true, n) => n,
    };
    let mut masker = Masker {
        engine,
        most,
        both: pass.strand == Strand::Both,
        jobs: Vec::new(),
        windows: Vec::new(),
        outs: Vec::new(),
    };
    *read = read_spans(
        reference,
        open,
        &pass.reads,
        0,
        pending,
        interrupted,
        |name, site, tokens, bases| {
            // The span starts `flank` bases before the site, or at the record's start.
            let i = (site.at - site.at.saturating_sub(pass.flank)) as usize;
            let mut scorable = Vec::new();
            for &allele in &site.alleles {
                let Some((r, a)) = variants.snv(allele) else {
                    continue;
                };
                if base_index(bases[i]) == Some(r) {
                    scorable.push((allele, r, a));
                } else {
                    outcomes.push((allele, Err(status::REF_MISMATCH)));
                }
            }
            if scorable.is_empty() {
                return Ok(());
            }
            // A record of one base: the mask is all the model would see.
            if tokens.len() == 1 {
                outcomes.extend(
                    scorable
                        .iter()
                        .map(|&(allele, ..)| (allele, Err(status::NO_CONTEXT))),
                );
                return Ok(());
            }
            let mut masked = tokens.to_vec();
            masked[i] = MASK;
            progress.advance(name, masked.len() as u64 * pass.windows_per_site());
            let rc = masker.both.then(|| {
                let mut rc = masked.clone();
                alphabet::reverse_complement(&mut rc);
                rc
            });
            masker.windows.push(masked);
            masker.windows.extend(rc);
            masker.jobs.push(Job {
                at: i,
                alleles: scorable,
            });
            if masker.windows.len() >= masker.most {
                masker.flush(&mut outcomes)?;
            }
            Ok(())
        },
    )?;
    masker.flush(&mut outcomes)?;
    Ok(outcomes)
}

/// One site's masked window (and then its reverse complement, on both strands): the masked position in the
/// window, and its alleles (index, REF's and ALT's base index).
struct Job {
    at: usize,
    alleles: Vec<(usize, usize, usize)>,
}

/// Gathers masked windows and runs them, one by one or in batches.
struct Masker<'e> {
    engine: &'e mut dyn Engine,
    /// Windows per engine call.
    most: usize,
    /// Whether each site has its reverse complement's window after its own.
    both: bool,
    /// Per site gathered, what to read off its windows.
    jobs: Vec<Job>,
    windows: Vec<Vec<u8>>,
    outs: Vec<Output>,
}

impl Masker<'_> {
    /// Runs the windows gathered and settles their alleles.
    fn flush(&mut self, outcomes: &mut Vec<(usize, AlleleOutcome)>) -> Result<()> {
        if self.windows.is_empty() {
            return Ok(());
        }
        if self.windows.len() == 1 {
            self.outs.resize_with(1, Output::default);
            self.engine
                .run(&self.windows[0], true, PROBS, &mut self.outs[0])?;
        } else {
            let seqs: Vec<&[u8]> = self.windows.iter().map(Vec::as_slice).collect();
            self.engine.run_batch(&seqs, PROBS, &mut self.outs)?;
        }
        let mut outs = self.outs.iter();
        for job in &self.jobs {
            let out = outs.next();
            let rc = if self.both { outs.next() } else { None };
            if let Some(out) = out {
                settle(job, out, rc, outcomes);
            }
        }
        self.windows.clear();
        self.jobs.clear();
        Ok(())
    }
}

/// The outcomes of one site's alleles from the distribution at its masked position in `out`, and, on both
/// strands, at the mirrored position in `rc` (the reverse complement's run), read for the complement bases.
fn settle(
    job: &Job,
    out: &Output,
    rc: Option<&Output>,
    outcomes: &mut Vec<(usize, AlleleOutcome)>,
) {
    let at = |out: &Output, i: usize| out.base_probs.get(i).copied().and_then(log_probs);
    let forward = at(out, job.at);
    let lp = match rc {
        None => forward,
        // Base index b (A, C, G, T) has its complement at 3 - b.
        Some(rc) => match (
            forward,
            rc.rows.checked_sub(1 + job.at).and_then(|i| at(rc, i)),
        ) {
            (Some(f), Some(r)) => Some(std::array::from_fn(|b| 0.5 * (f[b] + r[3 - b]))),
            _ => None,
        },
    };
    for &(allele, r, a) in &job.alleles {
        outcomes.push((
            allele,
            match lp {
                Some(lp) => Ok((lp[r], lp[a])),
                None => Err(status::NO_CONTEXT),
            },
        ));
    }
}
