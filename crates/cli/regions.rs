//! `genomamba regions`: balanced shards of a genome as BED, each starting on a window boundary, so that runs
//! over the shards give the same rows as one run over the genome.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

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
    if let Some(lengths) = genomamba_seq::fasta::indexed::lengths(genome)? {
        return Ok(lengths);
    }
    Ok(genomamba_seq::fasta::scan_lengths(genome)?)
}

/// Runs `genomamba regions`.
pub fn regions(args: &RegionsArgs) -> anyhow::Result<()> {
    if args.max_bases == 0 {
        return Err(UsageError("--max-bases must be at least 1".into()).into());
    }
    if args.window > 0 && args.max_bases < args.window {
        return Err(UsageError(format!(
            "--max-bases {} is less than --window {}: shards are cut on window boundaries, so each holds at \
             least one window; raise --max-bases or lower --window",
            args.max_bases, args.window
        ))
        .into());
    }
    let output = args.output.as_ref().filter(|p| p.as_os_str() != "-");
    if let Some(path) = output {
        plan::check_paths(std::slice::from_ref(&args.genome), path)?;
        check_target(path, args.force)?;
    }
    let lengths = record_lengths(&args.genome)?;
    let mut text = String::new();
    // A record with no bases has nothing to run, so no shard.
    for (name, len) in lengths.into_iter().filter(|(_, len)| *len > 0) {
        for shard in split(&name, len, args.max_bases, args.window) {
            text.push_str(&format!(
                "{}\t{}\t{}\tchrom={}/part-{:05}\n",
                shard.name,
                shard.start,
                shard.end,
                partition_value(&shard.name),
                shard.part
            ));
        }
    }
    match output {
        Some(path) => write_atomically(path, text.as_bytes(), args.force)
            .with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// Refuses an existing output without `force`, and any output that is not a regular file (a device or pipe
/// would be replaced by the rename).
fn check_target(path: &Path, force: bool) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() && !m.is_symlink() => anyhow::bail!(
            "{}: not a regular file; give a file path (or no -o, for standard output)",
            path.display()
        ),
        Ok(_) if !force => anyhow::bail!(
            "{} already exists: use --force to overwrite it",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it onto `path` once complete, so that a full
/// disk or an interruption leaves no half-written BED (the temporary file is removed on failure).
fn write_atomically(path: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    if force {
        temp.persist(path)?;
    } else {
        temp.persist_noclobber(path)?;
    }
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
