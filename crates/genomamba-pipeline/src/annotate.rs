//! `score --output-vcf`: the scored VCF written again with each allele's row of the variants table in its INFO
//! column ([`genomamba_seq::vcf::annotate`]), beside the Parquet table and committed with it.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use genomamba_parquet::sink::StagedFile;
use genomamba_seq::vcf::annotate::{self, AlleleScores, VcfCompression};

use crate::scoring::Scorer;
use crate::settings::{ScoreOptions, Settings};
use crate::{Error, Result};

/// Where `score --output-vcf` writes (it reads the VCF again from [`ScoreOptions::vcf_reread`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotatedVcf {
    /// The output; `-` is standard output (plain text).
    pub path: PathBuf,
    /// Its compression, from its name.
    pub compression: VcfCompression,
}

/// An annotated VCF and its index, written under temporary names until [`Written::commit`].
#[derive(Debug, Default)]
pub struct Written {
    vcf: Option<StagedFile>,
    index: Option<StagedFile>,
    /// Indexes of an earlier file at the VCF's path (`--force`) that do not describe the new one: removed once it
    /// is in place, so that no reader trusts them.
    stale: Vec<PathBuf>,
    /// What the user should hear (no index written, and why).
    pub warning: Option<String>,
}

impl Written {
    /// Renames the VCF, then its index, into place (the index no older than the file it describes), and removes
    /// the earlier file's indexes that the new one does not replace.
    pub fn commit(self) -> Result<()> {
        if let Some(vcf) = self.vcf {
            vcf.commit()?;
        }
        for path in &self.stale {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::Invalid(format!(
                        "{}: removing the index of the file replaced: {e}",
                        path.display()
                    )));
                }
                _ => {}
            }
        }
        if let Some(index) = self.index {
            index.commit()?;
        }
        Ok(())
    }
}

/// Writes `out` from the scored VCF and `scorer`'s rows (after [`Scorer::finish`]); a bgzipped file gets its
/// tabix index, unless its records are out of order (a warning then says so). Nothing is in place until
/// [`Written::commit`]; standard output is written now. `interrupted` stops it between records.
pub fn write(
    out: &AnnotatedVcf,
    score: &ScoreOptions,
    scorer: &Scorer,
    settings: &Settings,
    model: &serde_json::Value,
    interrupted: &AtomicBool,
) -> Result<Written> {
    let source = score.vcf.display().to_string();
    let input = File::open(&score.vcf_reread)
        .map(|f| BufReader::with_capacity(1 << 16, f))
        .map_err(|e| io::Error::new(e.kind(), format!("{source}: opening again: {e}")))?;
    let provenance = provenance(settings, model);
    let values = row_values(scorer, interrupted);
    let destination = out.path.display().to_string();
    if out.path.as_os_str() == "-" {
        let stdout = io::stdout().lock();
        let sha = match annotated(
            input,
            &source,
            (stdout, "standard output"),
            out,
            &provenance,
            values,
        ) {
            // Not the quiet end of a pipe that `head` closed: the table is not written, so the run failed.
            Err(Error::Input(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                return Err(Error::Invalid(
                    "standard output was closed before the annotated VCF was written whole (--output-vcf -)"
                        .into(),
                ));
            }
            result => result?,
        };
        same_vcf(&source, &sha, score)?;
        return Ok(Written::default());
    }
    let (staged, file) = StagedFile::create(&out.path, settings.force)?;
    let mut file = BufWriter::with_capacity(1 << 16, file);
    let sha = annotated(
        input,
        &source,
        (&mut file, &destination),
        out,
        &provenance,
        values,
    )?;
    file.flush()
        .map_err(|e| io::Error::new(e.kind(), format!("{destination}: writing: {e}")))?;
    drop(file);
    same_vcf(&source, &sha, score)?;
    let mut written = Written::default();
    if out.compression != VcfCompression::Plain {
        let suffixes: &[&str] = match out.compression {
            VcfCompression::Bcf => &[".csi"],
            _ => &[".tbi", ".csi"],
        };
        written.stale = (suffixes.iter())
            .map(|suffix| PathBuf::from(format!("{destination}{suffix}")))
            .collect();
        match annotate::index(staged.temp_path(), out.compression) {
            Ok((suffix, bytes)) => {
                let path = PathBuf::from(format!("{destination}{suffix}"));
                written.stale.retain(|p| *p != path);
                let (index, mut file) = StagedFile::create(&path, settings.force)?;
                file.write_all(&bytes).map_err(|e| {
                    io::Error::new(e.kind(), format!("{}: writing: {e}", path.display()))
                })?;
                written.index = Some(index);
            }
            Err(e) => {
                let sort = match out.compression {
                    VcfCompression::Bcf => format!(
                        "bcftools sort -Ob -o sorted.bcf {destination} && bcftools index sorted.bcf"
                    ),
                    _ => format!(
                        "bcftools sort -Oz -o sorted.vcf.gz {destination} && tabix -p vcf sorted.vcf.gz"
                    ),
                };
                written.warning = Some(if annotate::out_of_order(&e) {
                    format!(
                        "{destination}: no index written: {e} (the VCF's records are out of order; to index it: \
                         `{sort}`)"
                    )
                } else {
                    format!("{destination}: no index written: {e}")
                });
            }
        }
    }
    written.vcf = Some(staged);
    Ok(written)
}

/// [`annotate::annotate`] with the errors of this crate; returns the input's SHA-256.
fn annotated<W: io::Write>(
    input: BufReader<File>,
    source: &str,
    output: (W, &str),
    out: &AnnotatedVcf,
    provenance: &[(&str, String)],
    values: impl FnMut(usize, usize) -> io::Result<Vec<AlleleScores>>,
) -> Result<String> {
    let (_, sha) = annotate::annotate(input, source, output, out.compression, provenance, values)?;
    Ok(sha)
}

/// Fails unless the VCF read again is the one scored (same SHA-256), so that no record gets another's scores.
fn same_vcf(source: &str, sha: &str, score: &ScoreOptions) -> Result<()> {
    if sha == score.vcf_sha256 {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{source}: the file changed while it was being scored (SHA-256 {} when read, {sha} when read again for \
         --output-vcf); nothing was written",
        score.vcf_sha256
    )))
}

/// The header lines that say what wrote the scores, as bcftools writes `##bcftools_annotateCommand`.
fn provenance(settings: &Settings, model: &serde_json::Value) -> Vec<(&'static str, String)> {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_default();
    vec![
        (
            "genomamba_scoreVersion",
            format!("{}+{}", env!("CARGO_PKG_VERSION"), settings.commit),
        ),
        ("genomamba_scoreCommand", settings.command_line.join(" ")),
        (
            "genomamba_scoreModel",
            format!(
                "{}; sha256={}",
                text(&model["name"]),
                text(&model["sha256"])
            ),
        ),
    ]
}

/// The values of each record's ALT alleles, from the scorer's rows in order: `(record, alts)` asks for record
/// `record` (0-based), which has `alts` ALT alleles; a record without any has one row (`no_alt`), skipped. Fails
/// once `interrupted` is set.
fn row_values<'a>(
    scorer: &'a Scorer,
    interrupted: &'a AtomicBool,
) -> impl FnMut(usize, usize) -> io::Result<Vec<AlleleScores>> + 'a {
    let mut next = 0;
    move |record, alts| {
        if interrupted.load(Ordering::Relaxed) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        let mut values = Vec::with_capacity(alts);
        while next < scorer.rows() && scorer.record_of(next) == record {
            let (logp, status) = scorer
                .outcome(next)
                .map_err(|e| io::Error::other(e.to_string()))?;
            if alts > 0 {
                values.push(AlleleScores {
                    logp_ref: logp.map(|(r, _)| r),
                    logp_alt: logp.map(|(_, a)| a),
                    status,
                });
            }
            next += 1;
        }
        Ok(values)
    }
}
