//! Streams the E. coli genome (data/genomes/ecoli536.fna.gz) through the fast CPU engine as one window in
//! chunks and reports bases/s and the mean P(A) over positions with context (a checksum to compare with
//! transformers on the same model). Used by scripts/bench_sizes.py for throughput, peak-RSS
//! (`/usr/bin/time -v`) and projection-FLOP/s measurements.
//!
//! ```text
//! cargo run --release -p genomamba-model --example stream -- [--model DIR | --random D_MODEL,N_LAYER]
//!     [--bases N] [--chunk C] [--tile T] [--threads T] [--simd portable|avx2|avx512]
//!     [--gemm-check L [--sustain SECONDS]]
//! ```
//!
//! `--simd` runs the conv and scan kernels at a lower level than the CPU's best (the GEMMs keep theirs), to
//! time what a CPU without AVX-512 gets from them.

use std::sync::Arc;
use std::time::Instant;

use genomamba_model::cpu::matmul::{Layout, matmul, transpose};
use genomamba_model::{CpuEngine, Dims, Engine, Model, Output, Want};

mod common;

use common::ecoli;

type Res = Result<(), Box<dyn std::error::Error>>;

fn dims(d: usize, n_layer: usize) -> Dims {
    Dims {
        d_model: d,
        n_layer,
        d_inner: 2 * d,
        d_state: 16,
        d_conv: 4,
        dt_rank: d.div_ceil(16),
        vocab_size: 16,
    }
}

/// GFLOP/s of a square 2048^3 SGEMM and of one layer's four projections over a tile of `l` tokens, both
/// through `matmul` (the `gemm` crate) on `threads` threads, in the engine's token-major layouts; best of 5.
/// With `sustain` > 0 seconds, only the SGEMM, repeated for that long: its mean rate (the peak as a run of
/// that length sees it on a machine whose clock varies).
fn gemm_check(m: &Model, l: usize, threads: usize, sustain: f64) -> Res {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let time =
        |f: &mut dyn FnMut() -> genomamba_model::Result<()>| -> genomamba_model::Result<f64> {
            f()?;
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let t = Instant::now();
                f()?;
                best = best.min(t.elapsed().as_secs_f64());
            }
            Ok(best)
        };
    let s = 2048;
    let (a, b) = (vec![0.5f32; s * s], vec![0.25f32; s * s]);
    let mut c = vec![0f32; s * s];
    let sq = Layout::row_major(s, s);
    let peak = pool.install(|| time(&mut || matmul(&mut c, sq, &a, sq, &b, sq, false, threads)))?;
    let peak = 2.0 * (s * s * s) as f64 / peak / 1e9;
    if sustain > 0.0 {
        let (t, mut n) = (Instant::now(), 0u32);
        while t.elapsed().as_secs_f64() < sustain {
            pool.install(|| matmul(&mut c, sq, &a, sq, &b, sq, false, threads))?;
            n += 1;
        }
        let mean = 2.0 * (s * s * s) as f64 * f64::from(n) / t.elapsed().as_secs_f64() / 1e9;
        println!("sgemm {s}^3 sustained over {sustain} s: {mean:.1} GFLOP/s (best {peak:.1})");
        return Ok(());
    }
    let dm = m.info.dims;
    let (d, e, r, w) = (
        dm.d_model,
        dm.d_inner,
        dm.dt_rank,
        dm.dt_rank + 2 * dm.d_state,
    );
    let lw = &m.layers[0];
    // The engine's right-hand sides: each projection transposed once to (in, out) row-major.
    let (in_t, x_t) = (
        transpose(&lw.in_proj, 2 * e, d),
        transpose(&lw.x_proj, w, e),
    );
    let out_t = transpose(&lw.out_proj, d, e);
    let (u, mut xz, xc) = (
        vec![0.1f32; l * d],
        vec![0f32; l * 2 * e],
        vec![0.1f32; l * e],
    );
    let (mut dbl, mut dt, mut s_out) = (vec![0f32; l * w], vec![0f32; l * e], vec![0f32; l * d]);
    let proj = pool.install(|| {
        time(&mut || {
            // xz (l, 2E) = u (l, D) · W_in^T.
            matmul(
                &mut xz,
                Layout::row_major(l, 2 * e),
                &u,
                Layout::row_major(l, d),
                &in_t,
                Layout::row_major(d, 2 * e),
                false,
                threads,
            )?;
            // dbl (l, R+2N) = xc (l, E) · W_x^T.
            matmul(
                &mut dbl,
                Layout::row_major(l, w),
                &xc,
                Layout::row_major(l, e),
                &x_t,
                Layout::row_major(e, w),
                false,
                threads,
            )?;
            // dt (l, E) = dt_low (l, R) · W_dt^T (the engine fuses this one into the scan).
            matmul(
                &mut dt,
                Layout::row_major(l, e),
                &dbl,
                Layout {
                    rows: l,
                    cols: r,
                    rs: w,
                    cs: 1,
                },
                &lw.dt_proj,
                Layout::transposed(r, e, r),
                false,
                threads,
            )?;
            // s (l, D) += y (l, E) · W_out^T.
            matmul(
                &mut s_out,
                Layout::row_major(l, d),
                &xc,
                Layout::row_major(l, e),
                &out_t,
                Layout::row_major(e, d),
                true,
                threads,
            )?;
            Ok(())
        })
    })?;
    let flops = 2.0 * l as f64 * (2 * e * d + e * w + e * r + e * d) as f64;
    println!(
        "sgemm {s}^3 peak: {peak:.1} GFLOP/s; projections of one layer over {l} tokens: {:.1} GFLOP/s ({:.0}% of peak); projection FLOPs per base, all layers: {:.0}",
        flops / proj / 1e9,
        100.0 * flops / proj / 1e9 / peak,
        flops / l as f64 * dm.n_layer as f64
    );
    Ok(())
}

fn main() -> Res {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let num =
        |name: &str, default: usize| opt(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let model = match (opt("--model"), opt("--random")) {
        (Some(dir), _) => Model::from_dir(std::path::Path::new(&dir))?,
        (None, spec) => {
            let spec = spec.unwrap_or_else(|| "128,4".into());
            let mut it = spec.split(',').map(|v| v.parse::<usize>());
            let (d, n) = (
                it.next().ok_or("--random D,N")??,
                it.next().ok_or("--random D,N")??,
            );
            Model::random(dims(d, n), 1)
        }
    };
    let threads = num("--threads", 2);
    if let Some(l) = opt("--gemm-check").and_then(|v| v.parse().ok()) {
        let sustain = opt("--sustain").and_then(|v| v.parse().ok()).unwrap_or(0.0);
        return gemm_check(&model, l, threads, sustain);
    }
    let (bases, chunk) = (num("--bases", 1 << 20), num("--chunk", 65536));
    let tokens = ecoli(bases)?;
    let model = Arc::new(model);
    let mut engine = CpuEngine::new(Arc::clone(&model), threads, chunk)?;
    if let Some(tile) = opt("--tile").and_then(|v| v.parse().ok()) {
        engine.set_tile(tile);
    }
    if let Some(simd) = opt("--simd") {
        engine.set_simd(simd.parse()?)?;
    }
    let mut out = Output::default();
    let (mut sum, mut rows, t) = (0f64, 0usize, Instant::now());
    for (i, piece) in tokens.chunks(chunk).enumerate() {
        engine.run(piece, i == 0, Want::ALL, &mut out)?;
        for p in out.base_probs.iter().filter(|p| !p[0].is_nan()) {
            sum += f64::from(p[0]);
            rows += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} ({} params): {} bases in {secs:.2} s = {:.0} bases/s, chunk {chunk}, {threads} threads; mean P(A) {:.4}",
        model.info.name,
        model.info.n_params,
        tokens.len(),
        tokens.len() as f64 / secs,
        sum / rows.max(1) as f64
    );
    Ok(())
}
