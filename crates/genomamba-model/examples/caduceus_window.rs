//! Runs one long window of E. coli (data/genomes/ecoli536.fna.gz) through the Caduceus CPU engine and reports
//! bases/s. With no `--model`, a random Caduceus-PS of the published size (d_model 256, 16 layers, fused
//! add-norm, weight tie) is used. For peak RSS run it under `/usr/bin/time -v`.
//!
//! ```text
//! cargo run --release -p genomamba-model --example caduceus_window -- [--model DIR] [--ph]
//!     [--bases N (default 1048576)] [--chunk C (default 65536)] [--threads T] [--raw]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use genomamba_model::caduceus::{CaduceusConfig, CaduceusEngine, CaduceusModel, Hidden};
use genomamba_model::{Engine, Output, Want};

mod common;

use common::ecoli;

type Res = Result<(), Box<dyn std::error::Error>>;

fn main() -> Res {
    let mut args = std::env::args().skip(1);
    let (mut model_dir, mut ph, mut raw) = (None::<PathBuf>, false, false);
    let (mut bases, mut chunk, mut threads) = (1usize << 20, 65536usize, 0usize);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--model" => model_dir = Some(val()?.into()),
            "--ph" => ph = true,
            "--raw" => raw = true,
            "--bases" => bases = val()?.parse()?,
            "--chunk" => chunk = val()?.parse()?,
            "--threads" => threads = val()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let model = match model_dir {
        Some(dir) => CaduceusModel::from_dir(&dir)?,
        None => {
            let json = format!(
                r#"{{"model_type":"caduceus","d_model":256,"n_layer":16,"vocab_size":12,
                "ssm_cfg":{{"d_state":16,"d_conv":4,"expand":2,"dt_rank":"auto"}},"fused_add_norm":true,
                "residual_in_fp32":false,"rcps":{},"complement_map":{{"7":10,"8":9,"9":8,"10":7}}}}"#,
                !ph
            );
            CaduceusModel::random(CaduceusConfig::from_json(json.as_bytes())?, 1)
        }
    };
    let c = &model.config;
    eprintln!(
        "model {}: d_model {}, {} layers, rcps {}, fused {}, {} parameters",
        model.info.name, c.d_model, c.n_layer, c.rcps, c.fused_add_norm, model.info.n_params
    );
    // The genome repeated if `bases` exceeds it.
    let tokens: Vec<u8> = ecoli(usize::MAX)?.into_iter().cycle().take(bases).collect();
    let hidden = if raw { Hidden::Raw } else { Hidden::Symmetric };
    let mut engine = CaduceusEngine::new(Arc::new(model), threads, chunk, hidden)?;
    let mut out = Output::default();
    let t0 = Instant::now();
    engine.run(&tokens, true, Want::ALL, &mut out)?;
    let secs = t0.elapsed().as_secs_f64();
    let mean_p: f64 = out
        .base_probs
        .iter()
        .zip(&tokens)
        .filter(|(_, t)| (7..=10).contains(*t))
        .map(|(p, &t)| f64::from(p[usize::from(t) - 7]))
        .sum::<f64>()
        / tokens.len() as f64;
    println!(
        "{} bases in one window, chunk {chunk}, {}: {secs:.1} s, {:.0} bases/s; hidden {} x {}; mean P(ref) {mean_p:.4}",
        out.rows,
        engine.device(),
        out.rows as f64 / secs,
        out.rows,
        engine.hidden_width()
    );
    Ok(())
}
