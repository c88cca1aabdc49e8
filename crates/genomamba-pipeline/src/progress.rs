//! Progress on stderr: a bar on a terminal, periodic log lines otherwise, nothing when quiet.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often plain log lines are printed when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Reports bases done, bases/s, ETA and the current record.
pub struct Progress {
    mode: Mode,
    started: Instant,
    bases: u64,
}

enum Mode {
    Quiet,
    Bar(ProgressBar),
    Log { last: Instant, record: String },
}

impl Progress {
    /// A reporter; `total` is the number of bases when known (indexed inputs), for the ETA.
    pub fn new(quiet: bool, total: Option<u64>) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::no_length(),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            let template = if total.is_some() {
                "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} bases ({per_sec}, ETA {eta}) {msg}"
            } else {
                "{spinner} [{elapsed_precise}] {human_pos} bases ({per_sec}) {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            Mode::Bar(bar)
        } else {
            Mode::Log {
                last: Instant::now(),
                record: String::new(),
            }
        };
        Self {
            mode,
            started: Instant::now(),
            bases: 0,
        }
    }

    /// Notes that `bases` more bases of `record` are done.
    pub fn advance(&mut self, record: &str, bases: u64) {
        self.bases += bases;
        match &mut self.mode {
            Mode::Quiet => {}
            Mode::Bar(bar) => {
                bar.inc(bases);
                if bar.message() != record {
                    bar.set_message(record.to_owned());
                }
            }
            Mode::Log {
                last,
                record: current,
            } => {
                if current != record {
                    current.clear();
                    current.push_str(record);
                }
                if last.elapsed() >= LOG_EVERY {
                    *last = Instant::now();
                    let secs = self.started.elapsed().as_secs_f64();
                    eprintln!(
                        "genomamba: {} bases done ({:.0} bases/s), at {}",
                        self.bases,
                        self.bases as f64 / secs.max(1e-9),
                        current
                    );
                }
            }
        }
    }

    /// Bases done so far.
    pub fn bases(&self) -> u64 {
        self.bases
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Whether lines may be printed (not quiet).
    pub fn is_quiet(&self) -> bool {
        matches!(self.mode, Mode::Quiet)
    }

    /// Removes the bar before the summary line.
    pub fn finish(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}
