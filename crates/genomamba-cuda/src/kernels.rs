//! The kernel sources of `kernels/`, embedded in the binary, and their specialisations.
//!
//! Each `.cu` file is compiled with `kernels/prelude.cuh` prepended and `-D` options for the activation
//! dtype, `D_STATE` and `D_CONV`; files that do not use a macro get the same key whatever the model's value,
//! so they are compiled once per dtype.

/// Activation dtype of the engine. SSM and conv state, the residual stream and all accumulation stay f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dtype {
    /// f32 activations; f32 cuBLAS GEMMs (no TF32).
    F32,
    /// bf16 activations and weights for the projections (tensor cores, f32 accumulation).
    Bf16,
}

impl Dtype {
    /// Short name (`"f32"`, `"bf16"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Bf16 => "bf16",
        }
    }

    /// Bytes per activation element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::Bf16 => 2,
        }
    }
}

/// One kernel source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelId {
    /// `embed.cu`: `embed_gather`, `add_bias`.
    Embed,
    /// `rmsnorm.cu`: `add_rmsnorm`, `add_rmsnorm_f32`.
    RmsNorm,
    /// `conv.cu`: `conv_silu`, `conv_state_update`.
    Conv,
    /// `scan.cu`: `scan_local`, `scan_carry`, `scan_output`.
    Scan,
    /// `head.cu`: `base_head`.
    Head,
    /// `pool.cu`: `sum_tiles`, `sum_tile_runs`.
    Pool,
    /// `bidir.cu`: `flip_f32`, `combine_rows`, `add_f32`, `rcps_hidden`, `mlm_head` (Caduceus).
    Bidir,
}

/// The prelude prepended to every source.
pub const PRELUDE: &str = include_str!("../../../kernels/prelude.cuh");

impl KernelId {
    /// Every kernel file.
    pub const ALL: [KernelId; 7] = [
        KernelId::Embed,
        KernelId::RmsNorm,
        KernelId::Conv,
        KernelId::Scan,
        KernelId::Head,
        KernelId::Pool,
        KernelId::Bidir,
    ];

    /// File name under `kernels/`.
    pub fn file(self) -> &'static str {
        match self {
            KernelId::Embed => "embed.cu",
            KernelId::RmsNorm => "rmsnorm.cu",
            KernelId::Conv => "conv.cu",
            KernelId::Scan => "scan.cu",
            KernelId::Head => "head.cu",
            KernelId::Pool => "pool.cu",
            KernelId::Bidir => "bidir.cu",
        }
    }

    /// The source text (without the prelude).
    pub fn source(self) -> &'static str {
        match self {
            KernelId::Embed => include_str!("../../../kernels/embed.cu"),
            KernelId::RmsNorm => include_str!("../../../kernels/rmsnorm.cu"),
            KernelId::Conv => include_str!("../../../kernels/conv.cu"),
            KernelId::Scan => include_str!("../../../kernels/scan.cu"),
            KernelId::Head => include_str!("../../../kernels/head.cu"),
            KernelId::Pool => include_str!("../../../kernels/pool.cu"),
            KernelId::Bidir => include_str!("../../../kernels/bidir.cu"),
        }
    }

    /// `extern "C"` entry points defined by the file.
    pub fn functions(self) -> &'static [&'static str] {
        match self {
            KernelId::Embed => &["embed_gather", "add_bias"],
            KernelId::RmsNorm => &["add_rmsnorm", "add_rmsnorm_f32"],
            KernelId::Conv => &["conv_silu", "conv_state_update"],
            KernelId::Scan => &["scan_local", "scan_carry", "scan_output"],
            KernelId::Head => &["base_head"],
            KernelId::Pool => &["sum_tiles", "sum_tile_runs"],
            KernelId::Bidir => &[
                "flip_f32",
                "combine_rows",
                "add_f32",
                "rcps_hidden",
                "mlm_head",
            ],
        }
    }

    /// Which specialisation macros the file reads: (dtype, `D_STATE`, `D_CONV`).
    fn uses(self) -> (bool, bool, bool) {
        match self {
            KernelId::Embed | KernelId::RmsNorm | KernelId::Bidir => (true, false, false),
            KernelId::Conv => (true, false, true),
            KernelId::Scan => (true, true, false),
            KernelId::Head | KernelId::Pool => (false, false, false),
        }
    }
}

/// Compile-time variants of `scan.cu` that the GPU benchmark times against the default (every field off; the
/// engine always runs the default). See the macros at the top of kernels/scan.cu.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScanTuning {
    /// States `n < ex2_poly` take their decay from a polynomial on the FMA pipes (`SCAN_EX2_POLY`).
    pub ex2_poly: usize,
    /// B and C read 16 bytes at a time (`SCAN_VEC_BC`); only for rows that allow it
    /// ([`crate::scan_plan::vector_rows`]).
    pub vec_bc: bool,
    /// The next step's inputs loaded before the current step's arithmetic (`SCAN_PREFETCH`).
    pub prefetch: bool,
}

impl ScanTuning {
    /// The variants the benchmark tries, each on its own and all together.
    pub const CANDIDATES: [ScanTuning; 6] = [
        ScanTuning {
            ex2_poly: 2,
            vec_bc: false,
            prefetch: false,
        },
        ScanTuning {
            ex2_poly: 4,
            vec_bc: false,
            prefetch: false,
        },
        ScanTuning {
            ex2_poly: 8,
            vec_bc: false,
            prefetch: false,
        },
        ScanTuning {
            ex2_poly: 0,
            vec_bc: true,
            prefetch: false,
        },
        ScanTuning {
            ex2_poly: 0,
            vec_bc: false,
            prefetch: true,
        },
        ScanTuning {
            ex2_poly: 4,
            vec_bc: true,
            prefetch: true,
        },
    ];

    /// The options set: (macro, its value, file-name tag, name).
    fn options(&self) -> Vec<(&'static str, usize, String, String)> {
        let mut v = Vec::new();
        if self.ex2_poly > 0 {
            let k = self.ex2_poly;
            v.push(("SCAN_EX2_POLY", k, format!("p{k}"), format!("ex2_poly={k}")));
        }
        if self.vec_bc {
            v.push(("SCAN_VEC_BC", 1, "vec".into(), "vec_bc".into()));
        }
        if self.prefetch {
            v.push(("SCAN_PREFETCH", 1, "pf".into(), "prefetch".into()));
        }
        v
    }

    /// A short name, e.g. `default` or `ex2_poly=4+vec_bc+prefetch`.
    pub fn name(&self) -> String {
        let names: Vec<String> = self.options().into_iter().map(|o| o.3).collect();
        if names.is_empty() {
            "default".to_owned()
        } else {
            names.join("+")
        }
    }

    fn defines(&self) -> Vec<String> {
        self.options()
            .into_iter()
            .map(|(m, v, ..)| format!("-D{m}={v}"))
            .collect()
    }

    /// File-name tag: empty for the default, else e.g. `-p4-vec-pf`.
    fn tag(&self) -> String {
        self.options()
            .into_iter()
            .map(|o| format!("-{}", o.2))
            .collect()
    }
}

/// A specialisation: the values of the `-D` macros. Build with [`Spec::for_kernel`] so irrelevant fields are
/// normalised and the compile cache does not hold duplicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Spec {
    /// Activation dtype.
    pub dtype: Dtype,
    /// `D_STATE` (0 when unused).
    pub d_state: usize,
    /// `D_CONV` (0 when unused).
    pub d_conv: usize,
    /// The scan variant (default for every other file).
    pub scan: ScanTuning,
}

impl Spec {
    /// The specialisation of `kernel` for a model with these sizes.
    pub fn for_kernel(kernel: KernelId, dtype: Dtype, d_state: usize, d_conv: usize) -> Spec {
        let (u_dtype, u_state, u_conv) = kernel.uses();
        Spec {
            dtype: if u_dtype { dtype } else { Dtype::F32 },
            d_state: if u_state { d_state } else { 0 },
            d_conv: if u_conv { d_conv } else { 0 },
            scan: ScanTuning::default(),
        }
    }

    /// `scan.cu` for a model of `dtype` and `d_state` as the variant `tuning`.
    pub fn scan(dtype: Dtype, d_state: usize, tuning: ScanTuning) -> Spec {
        Spec {
            scan: tuning,
            ..Spec::for_kernel(KernelId::Scan, dtype, d_state, 0)
        }
    }

    /// The `-D` options for NVRTC.
    pub fn defines(&self) -> Vec<String> {
        let mut v = vec![format!(
            "-DACT_BF16={}",
            u8::from(self.dtype == Dtype::Bf16)
        )];
        if self.d_state > 0 {
            v.push(format!("-DD_STATE={}", self.d_state));
        }
        if self.d_conv > 0 {
            v.push(format!("-DD_CONV={}", self.d_conv));
        }
        v.extend(self.scan.defines());
        v
    }

    /// A file-name-safe tag, e.g. `bf16-n16-k4`, or `f32-n16-k0-p4` for a scan variant.
    pub fn tag(&self) -> String {
        format!(
            "{}-n{}-k{}{}",
            self.dtype.as_str(),
            self.d_state,
            self.d_conv,
            self.scan.tag()
        )
    }
}

/// The full text handed to NVRTC for `kernel`.
pub fn full_source(kernel: KernelId) -> String {
    let mut s = String::with_capacity(PRELUDE.len() + kernel.source().len() + 1);
    s.push_str(PRELUDE);
    s.push('\n');
    s.push_str(kernel.source());
    s
}

/// `d_state` values the engine accepts (each kept in registers by the scan).
pub const D_STATES: [usize; 5] = [4, 8, 16, 32, 64];
/// `d_conv` values the engine accepts.
pub const D_CONVS: [usize; 3] = [2, 3, 4];

/// `d_state` of the scan variants the benchmark compiles (its random models' and mamba-130m's).
pub const BENCH_D_STATE: usize = 16;

/// Every distinct specialisation of every kernel, and the benchmark's scan variants for
/// [`BENCH_D_STATE`]: what the `nvrtc-check` test compiles (and prebuilds for a GPU machine without NVRTC).
pub fn all_specs() -> Vec<(KernelId, Spec)> {
    let mut v = Vec::new();
    for k in KernelId::ALL {
        for dtype in [Dtype::F32, Dtype::Bf16] {
            for n in D_STATES {
                for c in D_CONVS {
                    let s = Spec::for_kernel(k, dtype, n, c);
                    if !v.contains(&(k, s)) {
                        v.push((k, s));
                    }
                }
            }
        }
    }
    for dtype in [Dtype::F32, Dtype::Bf16] {
        for t in ScanTuning::CANDIDATES {
            v.push((KernelId::Scan, Spec::scan(dtype, BENCH_D_STATE, t)));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_every_function_is_defined_extern_c() {
        for k in KernelId::ALL {
            for f in k.functions() {
                let decl = format!("extern \"C\" __global__ void {f}(");
                assert!(k.source().contains(&decl), "{} lacks {decl}", k.file());
            }
        }
    }

    #[test]
    fn test_spec_normalisation() {
        let a = Spec::for_kernel(KernelId::Head, Dtype::Bf16, 16, 4);
        let b = Spec::for_kernel(KernelId::Head, Dtype::F32, 32, 2);
        assert_eq!(a, b);
        let s = Spec::for_kernel(KernelId::Scan, Dtype::Bf16, 16, 4);
        assert_eq!(s.defines(), ["-DACT_BF16=1", "-DD_STATE=16"]);
        assert_eq!(s.tag(), "bf16-n16-k0");
    }

    #[test]
    fn test_all_specs_count() {
        // embed, rmsnorm: 2 dtypes; conv: 2 x 3; scan: 2 x 5, and 2 x 6 variants; head, pool: 1; bidir: 2.
        assert_eq!(all_specs().len(), 2 + 2 + 6 + 10 + 12 + 1 + 1 + 2);
    }

    #[test]
    fn test_scan_variants() {
        let d = Spec::for_kernel(KernelId::Scan, Dtype::F32, 16, 4);
        assert_eq!(Spec::scan(Dtype::F32, 16, ScanTuning::default()), d);
        let all = ScanTuning::CANDIDATES[5];
        let s = Spec::scan(Dtype::Bf16, 16, all);
        assert_eq!(
            s.defines(),
            [
                "-DACT_BF16=1",
                "-DD_STATE=16",
                "-DSCAN_EX2_POLY=4",
                "-DSCAN_VEC_BC=1",
                "-DSCAN_PREFETCH=1"
            ]
        );
        assert_eq!(s.tag(), "bf16-n16-k0-p4-vec-pf");
        assert_eq!(all.name(), "ex2_poly=4+vec_bc+prefetch");
        assert_eq!(ScanTuning::default().name(), "default");
        assert!(
            ScanTuning::CANDIDATES
                .iter()
                .all(|t| *t != ScanTuning::default())
        );
        // Every macro the variants set is read by scan.cu, with the default it documents.
        for m in ["SCAN_EX2_POLY", "SCAN_VEC_BC", "SCAN_PREFETCH"] {
            assert!(
                KernelId::Scan
                    .source()
                    .contains(&format!("#ifndef {m}\n#define {m} 0")),
                "{m}"
            );
        }
    }

    #[test]
    fn test_sources_are_header_free() {
        for k in KernelId::ALL {
            assert!(!k.source().contains("#include"), "{}", k.file());
        }
        assert!(!PRELUDE.contains("#include"));
    }
}
