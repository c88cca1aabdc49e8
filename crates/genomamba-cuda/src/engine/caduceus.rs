//! The CUDA engine of Caduceus (Ph and PS): one call = one window, run layer by layer over the whole window
//! (reference/mamba.md §3, the same schedule as the CPU engine in `genomamba_model::caduceus`).
//!
//! The window's residual stream lives on the GPU as `(L, D)` f32 (two halves for RCPS). Each BiMamba runs
//! its forward Mamba over chunks of `chunk` rows left to right and its reverse Mamba over the row-flipped
//! window, also in chunks, carrying conv and SSM state from chunk to chunk ([`Gpu::mixer`], the kernels of
//! the causal engine), so memory is O(L x D + chunk x E), never O(L x E x N). The reverse Mamba's rows go
//! back to their window rows as they are combined (`combine_rows` with step -1).

use std::ops::Range;
use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaStream};
use genomamba_model::caduceus::{CaduceusConfig, CaduceusModel, Hidden, Strategy};
use genomamba_model::engine::{BASE_TOKENS, Engine, ModelInfo, Output, Want, check_segments};

use super::launch::{THREADS, cfg, i32_of, launch, norm_threads};
use super::mixer::Gpu;
use super::sums::SumBufs;
use super::workspace::{Workspace, scratch_for};
use super::{AUTO_CHUNK_MAX, OpenGpu};
use crate::buf::DevBuf;
use crate::kernels::Dtype;
use crate::modules::Kernels;
use crate::probe::DeviceInfo;
use crate::scan_plan::grid_1d;
use crate::weights::{DevLayer, HostLayer, upload_layer};
use crate::{Error, Result};

/// One block on the device: the forward Mamba and, when bidirectional, the reverse one (tied projections
/// uploaded twice; the block norm is each direction's `norm`).
struct DevBlock {
    fwd: DevLayer,
    rev: Option<DevLayer>,
}

/// Window-sized device buffers, grown to the largest window seen.
struct Window {
    rows: usize,
    /// Tokens then, for RCPS, their complements: `(2L,)` u8.
    tokens: DevBuf,
    /// Residual stream halves `(L, D)` f32 (`s2` unused by Ph).
    s1: DevBuf,
    s2: DevBuf,
    /// The mixer output `(L, D)` f32; after the last layer, `h1`.
    acc: DevBuf,
    /// The flipped input of a reverse Mamba `(L, D)` f32; after the last layer, `g = reverse_channels(h2)`.
    flip: DevBuf,
    /// `rcL(s2)` during an RCPS layer `(L, D)` f32.
    rc: DevBuf,
    /// RCPS hidden rows `(L, 2D)` f32.
    hidden: DevBuf,
    /// Base probabilities `(L, 4)` f32.
    probs: DevBuf,
}

impl Window {
    fn new(stream: &Arc<CudaStream>, rows: usize, d: usize) -> Result<Window> {
        let a = |bytes: usize| DevBuf::alloc(stream, bytes);
        Ok(Window {
            rows,
            tokens: a(2 * rows)?,
            s1: a(rows * d * 4)?,
            s2: a(rows * d * 4)?,
            acc: a(rows * d * 4)?,
            flip: a(rows * d * 4)?,
            rc: a(rows * d * 4)?,
            hidden: a(rows * 2 * d * 4)?,
            probs: a(rows * 16)?,
        })
    }
}

/// A Caduceus model on a CUDA GPU. Implements [`Engine`] (not causal: every call is a whole window).
pub struct CudaCaduceusEngine {
    info: ModelInfo,
    config: CaduceusConfig,
    hidden_kind: Hidden,
    dtype: Dtype,
    device: DeviceInfo,
    sms: usize,
    chunk: usize,
    kernels: Kernels,
    blocks: Vec<DevBlock>,
    embedding: DevBuf,
    norm_f: DevBuf,
    /// LM-head rows of A, C, G, T `(4, D)` and of their complements `(4, D)`.
    head: DevBuf,
    head_c: DevBuf,
    ws: Workspace,
    /// The carried state of the direction being run: conv `(E, K-1)`, SSM `(E, N)`, f32.
    conv: DevBuf,
    ssm: DevBuf,
    win: Option<Window>,
    /// Buffers of the pooling sums.
    sums: SumBufs,
    blas: CudaBlas,
    stream: Arc<CudaStream>,
    ctx: Arc<CudaContext>,
}

impl Drop for CudaCaduceusEngine {
    /// Drains the stream before the fields go (in declaration order: the kernels' modules are unloaded and the
    /// buffers freed before the cuBLAS handle and the stream, while work may still be queued).
    fn drop(&mut self) {
        let _ = self.bind();
        let _ = self.stream.synchronize();
    }
}

/// The host view of one direction of a Caduceus block for [`upload_layer`].
fn host_layer<'a>(
    norm: &'a [f32],
    p: &'a genomamba_model::caduceus::Projections,
    s: &'a genomamba_model::caduceus::Ssm,
) -> HostLayer<'a> {
    HostLayer {
        norm,
        in_proj: &p.in_proj,
        in_bias: p.in_proj_bias.as_deref(),
        conv_w: &s.conv_weight,
        conv_b: s.conv_bias.as_deref(),
        x_proj: &s.x_proj,
        dt_proj: &s.dt_proj,
        dt_bias: &s.dt_bias,
        a_log: &s.a_log,
        d_skip: &s.d,
        out_proj: &p.out_proj,
        out_bias: p.out_proj_bias.as_deref(),
    }
}

impl CudaCaduceusEngine {
    /// Uploads `model` to GPU `ordinal` and compiles its kernels. `chunk`: rows per scan chunk (0 = 65,536);
    /// `hidden`: the embedding a PS model gives.
    pub fn new(
        model: &CaduceusModel,
        ordinal: usize,
        dtype: Dtype,
        chunk: usize,
        hidden: Hidden,
    ) -> Result<CudaCaduceusEngine> {
        let dims = model.info.dims;
        let c = &model.config;
        if BASE_TOKENS.iter().any(|&t| t >= dims.vocab_size) {
            return Err(Error::Unsupported(
                "the vocabulary has no A/C/G/T tokens (ids 7..10)".into(),
            ));
        }
        let OpenGpu {
            ctx,
            device,
            sms,
            stream,
            blas,
            kernels,
        } = OpenGpu::new(ordinal, &dims, dtype)?;
        let mut blocks = Vec::with_capacity(model.layers.len());
        for l in &model.layers {
            let fwd = upload_layer(
                &stream,
                &host_layer(&l.norm, &l.fwd_proj, &l.fwd),
                dims.d_inner,
                dtype,
            )?;
            let rev = match &l.rev {
                Some(s) => Some(upload_layer(
                    &stream,
                    &host_layer(&l.norm, l.rev_projections(), s),
                    dims.d_inner,
                    dtype,
                )?),
                None => None,
            };
            blocks.push(DevBlock { fwd, rev });
        }
        let d = dims.d_model;
        let lm = model.lm_head();
        let rows = |ids: [usize; 4]| -> Vec<f32> {
            ids.iter()
                .flat_map(|&t| lm[t * d..(t + 1) * d].iter().copied())
                .collect()
        };
        let head = DevBuf::from_f32(&stream, &rows(BASE_TOKENS))?;
        let head_c = DevBuf::from_f32(&stream, &rows(BASE_TOKENS.map(|b| c.complement[b])))?;
        let chunk = if chunk == 0 { 65_536 } else { chunk }.min(AUTO_CHUNK_MAX);
        let ws = Workspace::new(
            &stream,
            &dims,
            dtype,
            chunk,
            scratch_for(chunk, 1, &dims, sms),
        )?;
        let (e, n, k) = (dims.d_inner, dims.d_state, dims.d_conv);
        let conv = DevBuf::zeros(&stream, e * (k - 1) * 4)?;
        let ssm = DevBuf::zeros(&stream, e * n * 4)?;
        stream.synchronize()?;
        Ok(CudaCaduceusEngine {
            info: model.info.clone(),
            config: c.clone(),
            hidden_kind: hidden,
            dtype,
            device,
            sms,
            chunk,
            kernels,
            blocks,
            embedding: DevBuf::from_f32(&stream, &model.embedding)?,
            norm_f: DevBuf::from_f32(&stream, &model.norm_f)?,
            head,
            head_c,
            ws,
            conv,
            ssm,
            win: None,
            sums: SumBufs::default(),
            blas,
            stream,
            ctx,
        })
    }

    /// Rows per scan chunk.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// What the device probe found.
    pub fn device_info(&self) -> &DeviceInfo {
        &self.device
    }

    /// Makes this engine's context current on the calling thread (see `CudaEngine::bind`).
    fn bind(&self) -> Result<()> {
        self.ctx.bind_to_thread()?;
        Ok(())
    }

    fn gpu(&self) -> Gpu<'_> {
        Gpu {
            stream: &self.stream,
            blas: &self.blas,
            kernels: &self.kernels,
            dtype: self.dtype,
            dims: self.info.dims,
        }
    }

    /// The whole window `tokens` through the model, then the sums of its hidden rows over `segments`
    /// summed on the GPU into `sums`, `(segments.len(), width)` f64: only the sums cross PCIe.
    fn window_sums(
        &mut self,
        tokens: &[u8],
        segments: &[Range<usize>],
        sums: &mut Vec<f64>,
    ) -> Result<()> {
        check_segments(segments, tokens.len())?;
        let width = self.config.hidden_width(self.hidden_kind);
        sums.clear();
        sums.resize(segments.len() * width, 0.0);
        if tokens.is_empty() || segments.is_empty() {
            return Ok(());
        }
        self.forward(tokens)?;
        let win = self
            .win
            .as_ref()
            .ok_or_else(|| Error::TooLarge("window buffers".into()))?;
        let hidden = if self.config.rcps {
            &win.hidden
        } else {
            &win.acc
        };
        let hidden = (hidden.ptr(), tokens.len(), width);
        let mut bufs = std::mem::take(&mut self.sums);
        let src = bufs.enqueue(&self.gpu(), &[&self.stream], hidden, 0, segments);
        self.sums = bufs;
        let src = src?;
        // SAFETY: `src` holds `sums.len()` f64 written on this stream; pageable destination of that length,
        // and the stream is synchronised before `sums` is read.
        unsafe {
            cudarc::driver::result::memcpy_dtoh_async(
                sums.as_mut_slice(),
                src,
                self.stream.cu_stream(),
            )
        }?;
        self.stream.synchronize()?;
        Ok(())
    }

    /// Enqueues `dst = src` with rows and/or channels reversed; both `(rows, D)` f32.
    fn flip(
        &self,
        src: &DevBuf,
        dst: &DevBuf,
        rows: usize,
        flip_rows: bool,
        flip_cols: bool,
    ) -> Result<()> {
        let d = self.info.dims.d_model;
        let (rows_i, d_i) = (rows as i64, i32_of(d, "d_model")?);
        let (fr, fc) = (i32::from(flip_rows), i32::from(flip_cols));
        launch!(
            self,
            &self.kernels.flip_f32,
            cfg((grid_1d(rows * d, THREADS), 1, 1), THREADS),
            &src.ptr(),
            &dst.ptr(),
            &rows_i,
            &d_i,
            &fr,
            &fc
        );
        Ok(())
    }

    /// Enqueues `dst = RMSNorm(src) * w` row by row, `(rows, D)` f32 in and out (`out` act when `act`).
    fn norm_rows(&self, src: u64, w: &DevBuf, dst: u64, rows: usize, act: bool) -> Result<()> {
        let d = self.info.dims.d_model;
        let d_i = i32_of(d, "d_model")?;
        let eps = self.info.norm_eps as f32;
        let null = 0u64;
        let f = if act {
            &self.kernels.add_rmsnorm
        } else {
            &self.kernels.add_rmsnorm_f32
        };
        launch!(
            self,
            f,
            cfg((rows as u32, 1, 1), norm_threads(d)),
            &src,
            &null,
            &w.ptr(),
            &dst,
            &d_i,
            &eps
        );
        Ok(())
    }

    /// One Mamba over the window `src` `(L, D)` f32, chunk by chunk, combining its output into `acc`:
    /// `mode` 0 writes, 1 adds, 2 multiplies; `reverse`: `src` is the row-flipped window, and its row `i`
    /// belongs to window row `L-1-i`.
    #[allow(clippy::too_many_arguments)]
    fn direction(
        &self,
        layer: &DevLayer,
        src: &DevBuf,
        acc: &DevBuf,
        len: usize,
        reverse: bool,
        mode: i32,
    ) -> Result<()> {
        let dims = self.info.dims;
        let d = dims.d_model;
        let gpu = self.gpu();
        self.conv.zero(&self.stream)?;
        self.ssm.zero(&self.stream)?;
        let d_i = i32_of(d, "d_model")?;
        let mut start = 0;
        while start < len {
            let t = self.chunk.min(len - start);
            self.norm_rows(
                src.at(start * d * 4)?,
                &layer.norm,
                self.ws.normed.ptr(),
                t,
                true,
            )?;
            let plan = self.ws.plan(1, t, &dims, self.sms);
            gpu.mixer(layer, &self.ws, self.conv.ptr(), self.ssm.ptr(), 1, t, plan)?;
            let (row0, step) = if reverse {
                ((len - 1 - start) as i64, -1i64)
            } else {
                (start as i64, 1i64)
            };
            let rows_i = t as i64;
            launch!(
                self,
                &self.kernels.combine_rows,
                cfg((grid_1d(t * d, THREADS), 1, 1), THREADS),
                &self.ws.mix.ptr(),
                &acc.ptr(),
                &rows_i,
                &d_i,
                &row0,
                &step,
                &mode
            );
            start += t;
        }
        Ok(())
    }

    /// `s += BiMamba(RMSNorm(s) w)` over the window `s` `(L, D)`; `acc` and `flip` are scratch `(L, D)`.
    fn block_update(
        &self,
        b: &DevBlock,
        s: &DevBuf,
        acc: &DevBuf,
        flip: &DevBuf,
        len: usize,
    ) -> Result<()> {
        self.direction(&b.fwd, s, acc, len, false, 0)?;
        if let Some(rev) = &b.rev {
            self.flip(s, flip, len, true, false)?;
            let mode = match self.config.strategy {
                Strategy::Add => 1,
                Strategy::EwMultiply => 2,
            };
            self.direction(rev, flip, acc, len, true, mode)?;
        }
        let n = (len * self.info.dims.d_model) as i64;
        launch!(
            self,
            &self.kernels.add_f32,
            cfg(
                (grid_1d(len * self.info.dims.d_model, THREADS), 1, 1),
                THREADS
            ),
            &s.ptr(),
            &acc.ptr(),
            &n
        );
        Ok(())
    }

    /// The whole window through the model; leaves `h1` in `acc`, `g` in `flip` (RCPS) and the
    /// probabilities in `probs`, and the hidden rows to hand out in `acc` (Ph) or `hidden` (RCPS).
    fn forward(&mut self, tokens: &[u8]) -> Result<()> {
        let len = tokens.len();
        let d = self.info.dims.d_model;
        if self.win.as_ref().is_none_or(|w| w.rows < len) {
            self.win = None; // free the old buffers first
            self.win = Some(Window::new(&self.stream, len, d)?);
        }
        let mut win = self
            .win
            .take()
            .ok_or_else(|| Error::TooLarge("window buffers".into()))?;
        let res = self.forward_in(&mut win, tokens);
        self.win = Some(win);
        res
    }

    fn forward_in(&self, w: &mut Window, tokens: &[u8]) -> Result<()> {
        let len = tokens.len();
        let c = &self.config;
        let d = c.d_model;
        let (rows_i, d_i) = (len as i64, i32_of(d, "d_model")?);
        let mut host = tokens.to_vec();
        if c.rcps {
            host.extend(tokens.iter().map(|&t| c.complement[usize::from(t)] as u8));
        }
        w.tokens.upload_bytes(&self.stream, &host)?;
        let gather = |tok: u64, out: &DevBuf| -> Result<()> {
            launch!(
                self,
                &self.kernels.embed_gather,
                cfg((grid_1d(len * d, THREADS), 1, 1), THREADS),
                &tok,
                &self.embedding.ptr(),
                &out.ptr(),
                &rows_i,
                &d_i
            );
            Ok(())
        };
        gather(w.tokens.ptr(), &w.s1)?;
        if c.rcps {
            // s2[t] = reverse_channels(E[complement[tokens[t]]]).
            gather(w.tokens.at(len)?, &w.flip)?;
            self.flip(&w.flip, &w.s2, len, false, true)?;
        }
        for b in &self.blocks {
            if c.rcps && c.fused_add_norm {
                std::mem::swap(&mut w.s1, &mut w.s2);
            }
            self.block_update(b, &w.s1, &w.acc, &w.flip, len)?;
            if c.rcps {
                self.flip(&w.s2, &w.rc, len, true, true)?;
                self.block_update(b, &w.rc, &w.acc, &w.flip, len)?;
                self.flip(&w.rc, &w.s2, len, true, true)?;
            }
        }
        // h1 = RMSNorm(s1) w_f into acc; for RCPS g = RMSNorm(reverse_channels(s2)) w_f into flip.
        self.norm_rows(w.s1.ptr(), &self.norm_f, w.acc.ptr(), len, false)?;
        let null = 0u64;
        let g = if c.rcps {
            self.flip(&w.s2, &w.rc, len, false, true)?;
            self.norm_rows(w.rc.ptr(), &self.norm_f, w.flip.ptr(), len, false)?;
            let raw = i32::from(self.hidden_kind == Hidden::Raw);
            launch!(
                self,
                &self.kernels.rcps_hidden,
                cfg((grid_1d(len * 2 * d, THREADS), 1, 1), THREADS),
                &w.acc.ptr(),
                &w.flip.ptr(),
                &w.hidden.ptr(),
                &rows_i,
                &d_i,
                &raw
            );
            w.flip.ptr()
        } else {
            null
        };
        let (head_c, warps) = (if c.rcps { self.head_c.ptr() } else { null }, THREADS / 32);
        launch!(
            self,
            &self.kernels.mlm_head,
            cfg((len.div_ceil(warps as usize) as u32, 1, 1), THREADS),
            &w.acc.ptr(),
            &g,
            &self.head.ptr(),
            &head_c,
            &w.probs.ptr(),
            &rows_i,
            &d_i
        );
        Ok(())
    }
}

impl Engine for CudaCaduceusEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn hidden_width(&self) -> usize {
        self.config.hidden_width(self.hidden_kind)
    }

    fn compute_dtype(&self) -> &'static str {
        self.dtype.as_str()
    }

    fn is_causal(&self) -> bool {
        false
    }

    fn device(&self) -> String {
        format!(
            "cuda:{} ({}, {})",
            self.device.ordinal,
            self.device.name,
            self.dtype.as_str()
        )
    }

    fn strand_symmetric(&self) -> bool {
        self.config.strand_symmetric(self.hidden_kind)
    }

    /// Runs one whole window: `fresh` must be true (a bidirectional model carries nothing between calls).
    fn run(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        want: Want,
        out: &mut Output,
    ) -> genomamba_model::Result<()> {
        genomamba_model::cpu::check_tokens(tokens, self.info.dims.vocab_size, want)?;
        self.bind()?;
        if !fresh {
            return Err(genomamba_model::Error::Usage(
                "Caduceus is bidirectional: each call must be a whole window (fresh = true)".into(),
            ));
        }
        out.clear();
        if tokens.is_empty() {
            return Ok(());
        }
        let res = (|| -> Result<()> {
            self.forward(tokens)?;
            let len = tokens.len();
            let width = self.config.hidden_width(self.hidden_kind);
            let win = self
                .win
                .as_ref()
                .ok_or_else(|| Error::TooLarge("window buffers".into()))?;
            if want.hidden {
                let src = if self.config.rcps {
                    &win.hidden
                } else {
                    &win.acc
                };
                src.download_f32(&self.stream, len * width, &mut out.hidden)?;
            }
            if want.base_probs {
                let mut flat = Vec::new();
                win.probs.download_f32(&self.stream, len * 4, &mut flat)?;
                out.base_probs = flat
                    .chunks_exact(4)
                    .map(|p| [p[0], p[1], p[2], p[3]])
                    .collect();
            }
            out.rows = len;
            Ok(())
        })();
        Ok(res?)
    }

    fn sums_on_device(&self) -> bool {
        true
    }

    /// Sums over one whole window: `fresh` must be true, as for [`Engine::run`].
    fn run_sums(
        &mut self,
        tokens: &[u8],
        fresh: bool,
        segments: &[Range<usize>],
        sums: &mut Vec<f64>,
    ) -> genomamba_model::Result<()> {
        let hidden = Want {
            hidden: true,
            base_probs: false,
        };
        genomamba_model::cpu::check_tokens(tokens, self.info.dims.vocab_size, hidden)?;
        self.bind()?;
        if !fresh {
            return Err(genomamba_model::Error::Usage(
                "Caduceus is bidirectional: each call must be a whole window (fresh = true)".into(),
            ));
        }
        Ok(self.window_sums(tokens, segments, sums)?)
    }
}
