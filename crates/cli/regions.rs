//! `genomamba regions`: balanced shards of a genome as BED, each starting on a window boundary, so that runs
//! over the shards give the same rows as one run over the genome.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use genomamba_model::Architecture;
use genomamba_parquet::sink::{StagedFile, check_target};
use genomamba_pipeline::Pool;

use crate::UsageError;
use crate::args::RegionsArgs;
use crate::plan;

/// One shard: `[start, end)` of record `name`, the `part`-th of its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Record name.
    pub name: String,
    /// 0-based start.
    pub start: u64,
    /// End, exclusive.
    pub end: u64,
    /// Index of the shard within its record.
    pub part: usize,
}

/// Splits a record of `len` bases into the fewest shards of at most `max_bases` (rounded down to whole windows,
/// at least one window), with the windows spread evenly over them.
pub fn split(name: &str, len: u64, max_bases: u64, window: u64) -> Vec<Shard> {
    let window = if window == 0 { len.max(1) } else { window };
    let windows = len.div_ceil(window).max(1);
    let per_shard_max = (max_bases / window).max(1);
    let shards = windows.div_ceil(per_shard_max);
    let base = windows / shards;
    let extra = windows % shards;
    let mut out = Vec::with_capacity(shards as usize);
    let mut w = 0;
    for part in 0..shards {
        let n = base + u64::from(part < extra);
        let start = w * window;
        let end = ((w + n) * window).min(len);
        out.push(Shard {
            name: name.to_string(),
            start,
            end,
            part: part as usize,
        });
        w += n;
    }
    out
}

/// A Hive partition path segment for a record name: characters other than letters, digits, `.`, `_` and `-`
/// are percent-encoded, as Hive and pyarrow do.
pub fn partition_value(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Record names and lengths, from the .fai when there is one, else by reading the FASTA once.
fn record_lengths(genome: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    use genomamba_seq::fasta::indexed::{RegionIndex, lengths, region_index};
    match region_index(genome, &[])? {
        // Its first and last records checked against the FASTA: an index of another genome fails here.
        RegionIndex::Ready(lengths) => return Ok(lengths),
        // Plain gzip: checking would read the whole file, as scanning does.
        RegionIndex::Unusable(_) => {
            if let Some(lengths) = lengths(genome)? {
                return Ok(lengths);
            }
        }
        RegionIndex::Missing => {}
    }
    Ok(genomamba_seq::fasta::scan_lengths(genome)?)
}

/// The window the shards are cut for: `--window`, else the default of the model the runs will use.
fn window_of(args: &RegionsArgs) -> anyhow::Result<u64> {
    let architecture = match &args.model {
        Some(model) => {
            let dir = genomamba_model::hub::locate(model)?;
            Architecture::of_dir(&dir)
                .with_context(|| format!("reading the model's config.json in {}", dir.display()))?
        }
        None => Architecture::Mamba,
    };
    Ok(args
        .window
        .unwrap_or_else(|| plan::default_window(architecture)))
}

/// Refuses an `embed --pool` whose rows would not gather into one run's table: bins are aligned to multiples of
/// the pool in record coordinates, so a bin must not straddle a shard's start (a multiple of the window), and
/// `record` pools a whole record, which a split record's shards would each give a row of.
fn check_pool(pool: &Pool, window: u64, shards: &[Shard]) -> Result<(), UsageError> {
    match *pool {
        Pool::Bases(n) if window > 0 && !window.is_multiple_of(n) => Err(UsageError(format!(
            "--pool {n} does not divide the window ({window} bases): a bin would straddle the start of a shard \
             and give two rows; choose a pool that divides it (e.g. {}), or a --window that is a multiple of {n}",
            divisor_near(window, n)
        ))),
        Pool::Record => match shards.iter().find(|s| s.part > 0) {
            Some(split) => Err(UsageError(format!(
                "--pool record gives one row per record, and {} is split into shards: raise --max-bases to at \
                 least its length (or pool a number of bases)",
                split.name
            ))),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The divisor of `window` nearest to `pool` (ties to the larger), to suggest.
fn divisor_near(window: u64, pool: u64) -> u64 {
    let mut best: u64 = 1;
    let mut d: u64 = 1;
    // Divisor pairs (d, window / d); a million steps at most, whatever the window.
    while d * d <= window && d <= 1 << 20 {
        if window.is_multiple_of(d) {
            for c in [d, window / d] {
                if c.abs_diff(pool) < best.abs_diff(pool)
                    || (c.abs_diff(pool) == best.abs_diff(pool) && c > best)
                {
                    best = c;
                }
            }
        }
        d += 1;
    }
    best
}

/// Runs `genomamba regions`.
pub fn regions(args: &RegionsArgs) -> anyhow::Result<()> {
    if args.max_bases == 0 {
        return Err(UsageError("--max-bases must be at least 1".into()).into());
    }
    let pool = args.pool.as_deref().map(plan::parse_pool).transpose()?;
    let window = window_of(args)?;
    if window > 0 && args.max_bases < window {
        let given = if args.window.is_some() {
            format!("--window {window}")
        } else {
            format!("the model's window, {window}")
        };
        return Err(UsageError(format!(
            "--max-bases {} is less than {given}: shards are cut on window boundaries, so each holds at least \
             one window; raise --max-bases or lower --window",
            args.max_bases
        ))
        .into());
    }
    let output = args.output.as_ref().filter(|p| p.as_os_str() != "-");
    if let Some(path) = output {
        let model = [("the --model", args.model.as_deref())];
        plan::check_paths(std::slice::from_ref(&args.genome), &model, path)?;
        check_target(path, args.force)?;
    }
    let lengths = record_lengths(&args.genome)?;
    let mut shards = Vec::new();
    // A record with no bases has nothing to run, so no shard.
    for (name, len) in lengths.into_iter().filter(|(_, len)| *len > 0) {
        shards.extend(split(&name, len, args.max_bases, window));
    }
    if let Some(pool) = &pool {
        check_pool(pool, window, &shards)?;
    }
    let mut text = String::new();
    for shard in &shards {
        text.push_str(&format!(
            "{}\t{}\t{}\tchrom={}/part-{:05}\n",
            shard.name,
            shard.start,
            shard.end,
            partition_value(&shard.name),
            shard.part
        ));
    }
    match output {
        Some(path) => write_whole(path, text.as_bytes(), args.force)
            .with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// Writes `bytes` under a temporary name beside `path` and renames it onto `path` once complete, so that a full
/// disk or an interruption leaves no half-written BED.
fn write_whole(path: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    let (staged, mut file) = StagedFile::create(path, force)?;
    file.write_all(bytes)?;
    drop(file);
    staged.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_record_on_window_boundaries() {
        let shards = split("c", 10_500, 4_000, 1_000);
        // 11 windows, at most 4 per shard -> 3 shards of 4, 4, 3 windows.
        let spans: Vec<_> = shards.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(spans, vec![(0, 4_000), (4_000, 8_000), (8_000, 10_500)]);
        assert!(shards.iter().all(|s| s.start % 1_000 == 0));
    }

    #[test]
    fn a_short_record_is_one_shard_and_window_zero_means_whole() {
        assert_eq!(split("c", 10, 4_000, 1_000).len(), 1);
        assert_eq!(
            split("c", 10_000_000, 100, 0),
            vec![Shard {
                name: "c".into(),
                start: 0,
                end: 10_000_000,
                part: 0
            }]
        );
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(
            partition_value("gi|110640213|ref|NC_008253.1|"),
            "gi%7C110640213%7Cref%7CNC_008253.1%7C"
        );
        assert_eq!(partition_value("chr1"), "chr1");
    }
}
