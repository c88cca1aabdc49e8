//! The `genomamba` binary: parse the command line, pick the model and the engine, run, exit with a status that
//! says what happened (0 success, 1 input or runtime error, 2 usage error, 128 + N after signal N: 130 Ctrl-C,
//! 143 SIGTERM, 129 SIGHUP).

mod args;
mod device;
mod embedded;
mod inspect;
mod plan;
mod regions;
mod version;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use anyhow::Context;
use clap::Parser;

use crate::args::{Cli, Command};

/// A mistake in how the command was called (exit status 2), as opposed to a failure while running (status 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Set by Ctrl-C (SIGINT), SIGTERM (what schedulers and `timeout` send) or SIGHUP; the pipeline stops between
/// pieces and leaves no output behind.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The signal that set [`INTERRUPTED`]: the exit status is 128 + its number, as a shell reports.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// How long, after a signal, the run may take to reach its next check (between the model's steps) before the
/// process stops itself: a step of a large model on the CPU can take minutes, past the grace period of
/// `docker stop` (10 s) or a scheduler, whose SIGKILL would leave the temporary files behind.
const GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Makes SIGINT, SIGTERM and SIGHUP stop the run cleanly instead of killing the process mid-write: the run stops
/// at its next check and drops its outputs; if it has not ended [`GRACE`] after the signal, a watchdog thread
/// removes the temporary files (under the lock that commits them, so a file already in place stays) and exits.
fn on_signals() {
    use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        // SAFETY: the handler only stores to two atomics, which is async-signal-safe; it allocates nothing,
        // takes no lock and makes no system call.
        let _ = unsafe {
            signal_hook::low_level::register(signal, move || {
                SIGNAL.store(signal, Ordering::SeqCst);
                INTERRUPTED.store(true, Ordering::SeqCst);
            })
        };
    }
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            std::thread::sleep(GRACE);
            genomamba_parquet::sink::remove_temp_files();
            eprintln!(
                "genomamba: error: interrupted (the model's step under way was not waited for; its \
                 temporary files were removed)"
            );
            std::process::exit(128 + signal);
        }
    });
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    on_signals();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("genomamba: error: {}", message(&e));
            if INTERRUPTED.load(Ordering::SeqCst) {
                let signal = SIGNAL.load(Ordering::SeqCst);
                ExitCode::from(u8::try_from(128 + signal).unwrap_or(130))
            } else if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Predict(args) => run_model(plan::Plan::predict(args)?),
        Command::Embed(args) => run_model(plan::Plan::embed(args)?),
        Command::Score(args) => run_model(plan::Plan::score(args)?),
        Command::Inspect(args) => inspect::inspect(&args),
        Command::Regions(args) => regions::regions(&args),
        Command::Version(args) => version::version(&args),
        Command::Completions(args) => {
            use clap::CommandFactory as _;
            use std::io::Write as _;
            // Into memory first: clap_complete panics on a failed write (a closed pipe), which is only an error.
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "genomamba", &mut script);
            let mut out = std::io::stdout().lock();
            out.write_all(&script)
                .and_then(|()| out.flush())
                .context("writing the completion script")
        }
    }
}

fn run_model(plan: plan::Plan) -> anyhow::Result<()> {
    let threads = plan.threads;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("starting the thread pool")?;
    let mut plan = plan;
    let mut model = plan.load_model()?;
    let hidden = plan.fit_model(&model)?;
    // The model as given, before --layer cuts it.
    let mut model_json = inspect::model_json(&model, hidden);
    if let (Some(k), serde_json::Value::Object(map)) = (plan.layer, &mut model_json) {
        map.insert("embedding_layer".into(), k.into());
        map.insert(
            "hidden_state".into(),
            format!(
                "residual stream after block {k} of {} (transformers' hidden_states[{}]; no norm_f)",
                model.info().dims.n_layer,
                k - 1
            )
            .into(),
        );
    }
    plan.cut_model(&mut model)?;
    let mut engine = device::engine(
        &plan.device,
        plan.precision,
        &model,
        threads,
        plan.settings.chunk,
        hidden,
        plan.settings.quiet,
    )?;
    let summary = genomamba_pipeline::run(
        &plan.settings,
        plan.kind,
        engine.as_mut(),
        model_json,
        &INTERRUPTED,
    )
    .with_context(|| format!("no output written to {}", plan.outputs()))?;
    // Warnings are about the output's content, so --quiet keeps them.
    for warning in &summary.warnings {
        eprintln!("genomamba: warning: {warning}");
    }
    if !plan.settings.quiet {
        eprintln!(
            "genomamba: {} records, {} bases, {} rows in {:.1} s ({:.0} bases/s) on {} -> {}",
            summary.records,
            summary.bases,
            summary.rows,
            summary.seconds,
            summary.bases as f64 / summary.seconds.max(1e-9),
            engine.device(),
            plan.outputs()
        );
    }
    Ok(())
}

/// The error and its causes joined by `: `, leaving out a cause whose text the message already holds (many
/// errors repeat their source in their own text).
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// Whether the error chain ends in a broken pipe (a reader closed our stdout: not an error).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
