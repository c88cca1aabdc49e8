//! Timing helpers for the GPU benchmark (tests/gpu_bench.rs): where one layer's time goes (each stage of layer
//! 0 timed alone), the scan passes' achieved bandwidth and exp2 rate under any time-block count and as each
//! variant of `scan.cu` ([`ScanTuning`], checked against the engine's own scan), and a device-to-device copy
//! measured in the same run as the bandwidth ceiling to compare with.
//!
//! The figures are device time between events on the compute stream, each the mean of `reps` launches after
//! one untimed launch. A [`Bench`] runs over the activations that one forward pass of its tokens left in the
//! workspace; it leaves the carried state undefined, so the engine's next `run` must start fresh.

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaStream, result,
    sys::{CUdevice_attribute, CUevent_flags},
};

use super::CudaEngine;
use super::mixer::{Gpu, MixerStage};
use super::scan::ScanPass;
use super::stream::Step;
use crate::buf::DevBuf;
use crate::kernels::{Dtype, ScanTuning};
use crate::modules::Kernels;
use crate::scan_plan::{ScanPlan, vector_rows};
use crate::{Error, Result};

/// exp2 results per clock per SM of the special-function units (MUFU.EX2) on sm_80 to sm_90 (CUDA C
/// Programming Guide, arithmetic instruction throughput): the scan computes `N` exp2 per row and channel in
/// each pass that runs the recurrence, so this bounds it from the compute side.
pub const EX2_PER_CLOCK_PER_SM: f64 = 16.0;

/// One timed launch group: a mixer stage, a scan pass, or the pre-norm.
#[derive(Clone, Debug, PartialEq)]
pub struct StageTime {
    /// `norm`, a mixer stage (`in_proj`, `conv`, `x_proj`, `dt_proj`, `out_proj`), or a scan pass
    /// (`scan_local`, `scan_carry`, `scan_output`).
    pub name: &'static str,
    /// Mean device milliseconds.
    pub ms: f64,
    /// TFLOP/s of its GEMM (None for the stages without one).
    pub tflops: Option<f64>,
}

/// What [`Bench::layer`] measured: layer 0, stage by stage, over `rows` rows.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerBench {
    /// Rows per launch.
    pub rows: usize,
    /// The pre-norm, then the mixer's stages in launch order, the scan split into its passes.
    pub stages: Vec<StageTime>,
}

impl LayerBench {
    /// Milliseconds of the whole layer (the sum of its stages).
    pub fn ms(&self) -> f64 {
        self.stages.iter().map(|s| s.ms).sum()
    }
}

/// What [`Bench::scan`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanBench {
    /// Rows (time steps) scanned per call.
    pub rows: usize,
    /// Time blocks of the plan.
    pub nblk: usize,
    /// Mean milliseconds per scan (the sum of its passes).
    pub ms: f64,
    /// Each pass of the plan, in launch order.
    pub passes: Vec<StageTime>,
    /// Bytes the scan must move at least (inputs read once per pass, output written once).
    pub bytes: f64,
    /// `bytes / ms`, in GB/s.
    pub gbps: f64,
    /// exp2 evaluations per second of the passes that compute them (`scan_local`, `scan_output`: their count
    /// over their time, without `scan_carry`'s).
    pub ex2_per_s: f64,
}

/// What [`Bench::scan_variant`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantBench {
    /// [`ScanTuning::name`].
    pub name: String,
    /// Its timing, as [`Bench::scan`] reports the engine's own scan.
    pub scan: ScanBench,
    /// Largest `|y_variant - y_default|` over the largest `|y_default|`, on the rows compared.
    pub max_rel_diff: f64,
}

/// Rows at each end of the window whose scan output a variant's is compared with.
pub const COMPARED_ROWS: usize = 8192;

/// The device's own ceilings, from its attributes: the exp2 rate of its special-function units and the DRAM
/// bandwidth its memory clock and bus width imply (None where the driver reports no such attribute).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DevicePeaks {
    /// Multiprocessors.
    pub sms: usize,
    /// Peak SM clock in MHz.
    pub sm_clock_mhz: Option<f64>,
    /// `sms x EX2_PER_CLOCK_PER_SM x clock`, exp2 per second.
    pub ex2_per_s: Option<f64>,
    /// `2 x memory clock x bus width`, GB/s (read plus write).
    pub dram_gbps: Option<f64>,
}

/// Reads [`DevicePeaks`] of the device of `ctx`.
pub fn device_peaks(ctx: &Arc<CudaContext>) -> DevicePeaks {
    // A driver may report 0 for, or refuse, an attribute it does not support: either way, no figure.
    let attr = |a| -> Option<f64> {
        let v = ctx.attribute(a).ok()?;
        (v > 0).then_some(f64::from(v))
    };
    let sms = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).unwrap_or(1.0);
    let sm_khz = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CLOCK_RATE);
    let mem_khz = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE);
    let bus_bits = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
    DevicePeaks {
        sms: sms as usize,
        sm_clock_mhz: sm_khz.map(|k| k / 1e3),
        ex2_per_s: sm_khz.map(|k| sms * EX2_PER_CLOCK_PER_SM * k * 1e3),
        dram_gbps: mem_khz
            .zip(bus_bits)
            .map(|(k, b)| 2.0 * k * 1e3 * b / 8.0 / 1e9),
    }
}

/// An engine with one chunk's activations in its workspace, ready to time its launches one by one.
pub struct Bench<'a> {
    eng: &'a mut CudaEngine,
    rows: usize,
    /// The engine's scan scratch before the benchmark grew it, restored on drop (the engine's own plans are
    /// capped by it).
    scratch: usize,
}

impl Drop for Bench<'_> {
    fn drop(&mut self) {
        // Best effort: if the allocation fails, the engine is left without scratch and its plans fall back to
        // one time block, which needs none.
        let _ = self.eng.bind();
        let _ = self.eng.ws.resize_scratch(&self.eng.stream, self.scratch);
    }
}

impl CudaEngine {
    /// Runs `tokens` (one window, at most one chunk) through the model once from a fresh state, so that every
    /// stage's inputs hold real activations, and returns the [`Bench`] that times them.
    pub fn bench(&mut self, tokens: &[u8]) -> Result<Bench<'_>> {
        self.bind()?;
        let rows = tokens.len();
        if rows == 0 || rows > self.chunk {
            return Err(Error::TooLarge(format!(
                "a benchmark wants 1..={} tokens",
                self.chunk
            )));
        }
        if self.model.layers.is_empty() {
            return Err(Error::Unsupported(
                "a benchmark of a model without layers".into(),
            ));
        }
        self.check_tokens(tokens)?;
        self.states.reset(&self.stream)?;
        self.streaming = false;
        let step = Step {
            members: &[0],
            t0: 0,
            t: rows,
            reset: false,
        };
        self.upload_step(0, &[tokens], &step)?;
        self.forward(1, rows, 0, false)?;
        let scratch = self.ws.scratch;
        Ok(Bench {
            eng: self,
            rows,
            scratch,
        })
    }
}

impl Bench<'_> {
    /// Mean device milliseconds of `f` on the engine's compute stream ([`time_on`]).
    fn time_ms(
        &mut self,
        reps: usize,
        mut f: impl FnMut(&CudaEngine) -> Result<()>,
    ) -> Result<f64> {
        let eng = &*self.eng;
        time_on(&eng.stream, reps, || f(eng))
    }

    /// Times layer 0 stage by stage: its pre-norm, each mixer stage (the scan pass by pass, on the engine's
    /// own plan), `reps` launches each.
    pub fn layer(&mut self, reps: usize) -> Result<LayerBench> {
        self.eng.bind()?;
        let rows = self.rows;
        let dims = self.eng.info.dims;
        let plan = self.eng.ws.plan(1, rows, &dims, self.eng.sms);
        let mut stages = vec![StageTime {
            name: "norm",
            ms: self.time_ms(reps, |e| e.norm(0, rows))?,
            tflops: None,
        }];
        for stage in MixerStage::ALL {
            if stage == MixerStage::Scan {
                stages.extend(self.scan_passes(plan, reps, None)?);
                continue;
            }
            let ms = self.time_ms(reps, |e| {
                let (conv, ssm) = (e.states.conv[0].ptr(), e.states.ssm[0].ptr());
                e.gpu()
                    .mixer_stage(stage, e.layer(0)?, &e.ws, conv, ssm, 1, rows, plan)
            })?;
            let flops = stage.gemm_flops(rows, &dims);
            stages.push(StageTime {
                name: stage.name(),
                ms,
                tflops: (flops > 0.0).then(|| flops / (ms * 1e9)),
            });
        }
        Ok(LayerBench { rows, stages })
    }

    /// Each pass of layer 0's scan under `plan`, timed alone, with `kernels` (None: the engine's own).
    fn scan_passes(
        &mut self,
        plan: ScanPlan,
        reps: usize,
        kernels: Option<&Kernels>,
    ) -> Result<Vec<StageTime>> {
        let rows = self.rows;
        let mut passes = Vec::new();
        for &pass in ScanPass::of(plan) {
            let ms = self.time_ms(reps, |e| {
                let gpu = Gpu {
                    kernels: kernels.unwrap_or(&e.kernels),
                    ..e.gpu()
                };
                gpu.scan_pass(
                    pass,
                    e.layer(0)?,
                    &e.ws,
                    e.states.ssm[0].ptr(),
                    1,
                    rows,
                    plan,
                )
            })?;
            passes.push(StageTime {
                name: pass.name(),
                ms,
                tflops: None,
            });
        }
        Ok(passes)
    }

    /// Times layer 0's scan pass by pass, cut into `nblk` time blocks (None: the engine's own plan), growing
    /// the scan scratch when the plan needs more (until the `Bench` drops).
    pub fn scan(&mut self, reps: usize, nblk: Option<usize>) -> Result<ScanBench> {
        self.eng.bind()?;
        let plan = self.plan(nblk)?;
        self.scan_with(plan, reps, None)
    }

    /// Times layer 0's scan as the variant `tuning` of `scan.cu` on the engine's plan, and compares its
    /// output with the engine's own scan from the same state (zero) over the window's first and last rows.
    /// None when the variant cannot run on this model (`vec_bc` on rows that do not allow it).
    pub fn scan_variant(
        &mut self,
        tuning: ScanTuning,
        reps: usize,
    ) -> Result<Option<VariantBench>> {
        self.eng.bind()?;
        let dims = self.eng.info.dims;
        let (n, r) = (dims.d_state, dims.dt_rank);
        let size = self.eng.dtype.size();
        let base = self.eng.ws.xdbl.ptr();
        if tuning.vec_bc && !vector_rows(n, size, base, r + 2 * n, r, r + n) {
            return Ok(None);
        }
        let (maj, min) = self.eng.device.compute_capability;
        let variant = self.eng.kernels.with_scan(
            &self.eng.ctx,
            self.eng.dtype,
            n,
            tuning,
            &format!("sm_{maj}{min}"),
        )?;
        let plan = self.plan(None)?;
        let want = self.scan_y(plan, None)?;
        let got = self.scan_y(plan, Some(&variant))?;
        let scale = want.iter().fold(1e-30f64, |m, v| m.max(f64::from(v.abs())));
        let max_rel_diff = got
            .iter()
            .zip(&want)
            .map(|(g, w)| f64::from((g - w).abs()) / scale)
            .fold(
                0.0,
                |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
            );
        let scan = self.scan_with(plan, reps, Some(&variant))?;
        Ok(Some(VariantBench {
            name: tuning.name(),
            scan,
            max_rel_diff,
        }))
    }

    /// `nblk` time blocks over the window (None: the engine's plan), with the scratch grown to fit.
    fn plan(&mut self, nblk: Option<usize>) -> Result<ScanPlan> {
        let rows = self.rows;
        let dims = self.eng.info.dims;
        let plan = match nblk {
            Some(k) => ScanPlan::with_blocks(rows, k),
            None => self.eng.ws.plan(1, rows, &dims, self.eng.sms),
        };
        let need = plan.scratch_len(1, dims.d_inner, dims.d_state);
        if plan.nblk > 1 && need > self.eng.ws.scratch {
            self.eng.ws.resize_scratch(&self.eng.stream, need)?;
        }
        Ok(plan)
    }

    /// Layer 0's whole scan under `plan` from a zero state, with `kernels` (None: the engine's own), and the
    /// first and last [`COMPARED_ROWS`] rows of its output `y` as f32.
    fn scan_y(&mut self, plan: ScanPlan, kernels: Option<&Kernels>) -> Result<Vec<f32>> {
        let eng = &*self.eng;
        let (rows, e) = (self.rows, eng.info.dims.d_inner);
        let ssm = &eng.states.ssm[0];
        ssm.zero(&eng.stream)?;
        let gpu = Gpu {
            kernels: kernels.unwrap_or(&eng.kernels),
            ..eng.gpu()
        };
        gpu.scan(eng.layer(0)?, &eng.ws, ssm.ptr(), 1, rows, plan)?;
        let k = COMPARED_ROWS.min(rows.div_ceil(2));
        let row_bytes = e * eng.dtype.size();
        let mut out = Vec::with_capacity(2 * k * e);
        let mut bytes = Vec::new();
        for first in [0, rows - k] {
            eng.ws.y.download_bytes(
                &eng.stream,
                first * row_bytes..(first + k) * row_bytes,
                &mut bytes,
            )?;
            match eng.dtype {
                Dtype::F32 => out.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                ),
                Dtype::Bf16 => out.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
                ),
            }
        }
        Ok(out)
    }

    /// Times the passes of layer 0's scan under `plan` with `kernels` (None: the engine's own).
    fn scan_with(
        &mut self,
        plan: ScanPlan,
        reps: usize,
        kernels: Option<&Kernels>,
    ) -> Result<ScanBench> {
        let rows = self.rows;
        let dims = self.eng.info.dims;
        let (e, n) = (dims.d_inner, dims.d_state);
        let passes = self.scan_passes(plan, reps, kernels)?;
        let ms: f64 = passes.iter().map(|p| p.ms).sum();
        let (e, n, s) = (e as f64, n as f64, self.eng.dtype.size() as f64);
        // scan_local reads dt, x, B; scan_output reads dt, x, z, B, C and writes y.
        let local = plan.nblk > 1;
        let per_row = if local { s * (2.0 * e + n) } else { 0.0 } + s * (4.0 * e + 2.0 * n);
        let bytes = per_row * rows as f64;
        let ex2 = rows as f64 * e * n * if local { 2.0 } else { 1.0 };
        let ex2_ms: f64 = ScanPass::of(plan)
            .iter()
            .zip(&passes)
            .filter(|(pass, _)| **pass != ScanPass::Carry)
            .map(|(_, t)| t.ms)
            .sum();
        Ok(ScanBench {
            rows,
            nblk: plan.nblk,
            ms,
            passes,
            bytes,
            gbps: bytes / (ms * 1e6),
            ex2_per_s: ex2 / (ex2_ms * 1e-3),
        })
    }
}

/// Mean device milliseconds of the work `f` enqueues on `stream`, timed between events over `reps`
/// repetitions after one untimed one.
fn time_on(
    stream: &Arc<CudaStream>,
    reps: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    let ctx = stream.context();
    let start = ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
    let end = ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
    f()?;
    start.record(stream)?;
    for _ in 0..reps.max(1) {
        f()?;
    }
    end.record(stream)?;
    end.synchronize()?;
    Ok(f64::from(start.elapsed_ms(&end)?) / reps.max(1) as f64)
}

/// Device-to-device copy bandwidth on `ctx` in GB/s, counting bytes read plus bytes written, for a copy of
/// `bytes` bytes timed over `reps` repetitions.
pub fn copy_bandwidth(ctx: &Arc<CudaContext>, bytes: usize, reps: usize) -> Result<f64> {
    let stream = ctx.new_stream()?;
    let src = DevBuf::zeros(&stream, bytes)?;
    let dst = DevBuf::alloc(&stream, bytes)?;
    let ms = time_on(&stream, reps, || {
        // SAFETY: both buffers hold `bytes` bytes and are distinct allocations.
        unsafe { result::memcpy_dtod_async(dst.ptr(), src.ptr(), bytes, stream.cu_stream()) }?;
        Ok(())
    })?;
    Ok(2.0 * bytes as f64 / (ms * 1e6))
}
