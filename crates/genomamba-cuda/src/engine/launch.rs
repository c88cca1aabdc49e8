//! Kernel launch plumbing: launch shapes, checked 32-bit arguments, and the `launch!` macro that passes
//! arguments by value (the builder keeps pointers to them until the launch).

use cudarc::driver::LaunchConfig;

use crate::{Error, Result};

/// Threads of the 1-D elementwise kernels.
pub(crate) const THREADS: u32 = 256;

pub(crate) fn i32_of(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v)
        .map_err(|_| Error::TooLarge(format!("{what} = {v} exceeds a 32-bit kernel argument")))
}

pub(crate) fn cfg(grid: (u32, u32, u32), block: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: grid,
        block_dim: (block, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Threads per row for the RMSNorm kernels: a multiple of 32, at most 256.
pub(crate) fn norm_threads(d: usize) -> u32 {
    (d.div_ceil(32) * 32).clamp(32, 256) as u32
}

/// One kernel argument by value; the launch builder keeps pointers to these until the launch.
pub(crate) enum KArg {
    U64(u64),
    I64(i64),
    I32(i32),
    F32(f32),
}

impl From<&u64> for KArg {
    fn from(v: &u64) -> Self {
        KArg::U64(*v)
    }
}
impl From<&i64> for KArg {
    fn from(v: &i64) -> Self {
        KArg::I64(*v)
    }
}
impl From<&i32> for KArg {
    fn from(v: &i32) -> Self {
        KArg::I32(*v)
    }
}
impl From<&f32> for KArg {
    fn from(v: &f32) -> Self {
        KArg::F32(*v)
    }
}

macro_rules! launch {
    ($eng:expr, $f:expr, $cfg:expr, $($a:expr),+ $(,)?) => {{
        let f: &cudarc::driver::CudaFunction = $f;
        let args: Vec<$crate::engine::launch::KArg> = vec![$($crate::engine::launch::KArg::from($a)),+];
        let mut b = $eng.stream.launch_builder(f);
        for a in &args {
            use cudarc::driver::PushKernelArg;
            match a {
                $crate::engine::launch::KArg::U64(v) => b.arg(v),
                $crate::engine::launch::KArg::I64(v) => b.arg(v),
                $crate::engine::launch::KArg::I32(v) => b.arg(v),
                $crate::engine::launch::KArg::F32(v) => b.arg(v),
            };
        }
        // SAFETY: every pointer argument is a live device buffer of this engine whose extent the caller
        // checked against the sizes passed alongside; scalar types match the kernel's parameter list in
        // kernels/*.cu (u64 pointer, i64 long long, i32 int, f32 float); `args` outlives the launch; all
        // work is on one stream.
        unsafe { b.launch($cfg) }?;
    }};
}
pub(crate) use launch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_norm_threads() {
        assert_eq!(norm_threads(1), 32);
        assert_eq!(norm_threads(128), 128);
        assert_eq!(norm_threads(130), 160);
        assert_eq!(norm_threads(768), 256);
    }

    #[test]
    fn test_i32_of() {
        assert_eq!(i32_of(5, "x").ok(), Some(5));
        assert!(i32_of(1 << 40, "x").is_err());
    }
}
