//! The SIMD level of the fast engine's own kernels (conv, scan): the best this CPU has by default, or a lower
//! one on request, so that every path can be tested end to end and timed on one machine. The projections are
//! the `gemm` crate's, which always picks its own best level.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A SIMD level of the tile kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// Baseline instructions only, 4 lanes, no FMA (any CPU).
    Portable,
    /// AVX2 + FMA, 8 lanes (x86-64 since Haswell / Zen).
    Avx2,
    /// AVX-512 F + DQ, 16 lanes (x86-64 Skylake-SP and later servers, Zen 4).
    Avx512,
}

impl Simd {
    /// Every level, lowest first.
    pub const ALL: [Simd; 3] = [Simd::Portable, Simd::Avx2, Simd::Avx512];

    /// Whether this CPU can run `self`.
    pub fn is_available(self) -> bool {
        match self {
            Simd::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// `self`, or an error naming it if this CPU cannot run it.
    pub fn checked(self) -> Result<Simd> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(Error::Usage(format!(
                "this CPU cannot run the {self} kernels"
            )))
        }
    }

    /// The best level this CPU has.
    pub fn best() -> Simd {
        Simd::ALL
            .into_iter()
            .rev()
            .find(|s| s.is_available())
            .unwrap_or(Simd::Portable)
    }

    /// The levels this CPU has, lowest first.
    pub fn available() -> Vec<Simd> {
        Simd::ALL.into_iter().filter(|s| s.is_available()).collect()
    }

    /// f32 lanes per vector: the channels one scan block covers.
    pub fn width(self) -> usize {
        match self {
            Simd::Portable => 4,
            Simd::Avx2 => 8,
            Simd::Avx512 => 16,
        }
    }

    /// The name [`FromStr`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Portable => "portable",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
    }
}

impl fmt::Display for Simd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Simd {
    type Err = Error;

    fn from_str(s: &str) -> Result<Simd> {
        Simd::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown SIMD level {s:?} (expected portable, avx2 or avx512)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_levels_parse_and_the_best_is_available() -> Result<()> {
        for s in Simd::ALL {
            assert_eq!(s.name().parse::<Simd>()?, s);
        }
        assert!("sse9".parse::<Simd>().is_err());
        assert!(Simd::best().is_available() && Simd::Portable.is_available());
        assert_eq!(Simd::available().last(), Some(&Simd::best()));
        for s in Simd::ALL {
            assert_eq!(s.checked().is_ok(), Simd::available().contains(&s));
        }
        Ok(())
    }
}
