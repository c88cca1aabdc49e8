//! Throughput of the fast CPU engine on random models (`cargo bench -p genomamba-model`): small (128 x 4),
//! Caduceus-sized (256 x 16) and mamba-130m-sized (768 x 24), plus the scan kernels' building blocks.
//! Divan reports time per call; bases/s = tokens / time (shown as items/s).

use std::sync::Arc;

use divan::counter::ItemsCount;
use genomamba_model::{CpuEngine, Dims, Model, Output, Want};

fn main() {
    divan::main();
}

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

fn tokens(n: usize) -> Vec<u8> {
    // A fixed pseudo-random base sequence (the example `stream` uses the real E. coli genome).
    (0..n)
        .map(|i| 7 + ((i * 2_654_435_761usize) >> 13 & 3) as u8)
        .collect()
}

#[divan::bench(args = [(128, 4, 16384), (256, 16, 8192), (768, 24, 1024)], sample_count = 3, sample_size = 1)]
fn forward(bencher: divan::Bencher, (d, n_layer, len): (usize, usize, usize)) {
    let model = Arc::new(Model::random(dims(d, n_layer), 1));
    let toks = tokens(len);
    let Ok(mut engine) = CpuEngine::new(model, 2, 65536) else {
        return;
    };
    let mut state = engine.new_state();
    let mut out = Output::default();
    bencher.counter(ItemsCount::new(len)).bench_local(|| {
        out.clear();
        engine
            .forward_chunk(&toks, &mut state, Want::ALL, &mut out)
            .map(|_| out.rows)
    });
}

#[divan::bench(sample_count = 20)]
fn softplus_exp(bencher: divan::Bencher) {
    let xs: Vec<f32> = (0..65536).map(|i| (i as f32) * 1e-3 - 30.0).collect();
    bencher.counter(ItemsCount::new(xs.len())).bench_local(|| {
        xs.iter()
            .map(|&x| genomamba_model::cpu::fast_softplus::<false>(x))
            .sum::<f32>()
    });
}
