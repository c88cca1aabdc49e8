//! `--device`: picks the engine. `auto` uses a GPU when one is usable and says which, else the CPU.

use anyhow::Context;
use genomamba_cuda::Dtype;
use genomamba_model::AnyModel;
use genomamba_model::caduceus::Hidden;
use genomamba_model::engine::Engine;

use crate::UsageError;

/// Where the user asked to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Device {
    Auto,
    Cpu,
    Cuda(usize),
}

fn parse(text: &str) -> Result<Device, UsageError> {
    match text {
        "auto" => Ok(Device::Auto),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => Ok(Device::Cuda(0)),
        _ => text
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda)
            .ok_or_else(|| {
                UsageError(format!(
                    "--device takes auto, cpu, cuda or cuda:N, not `{text}`"
                ))
            }),
    }
}

/// The engine for `device` computing in `precision`; `chunk` bases per step, `threads` CPU threads, `hidden`
/// the embedding of a Caduceus-PS model. `auto` takes GPU 0 when it is usable and says which, else the CPU
/// (which computes in f32 only: `--device cpu --precision bf16` is refused, `auto` says it falls back).
pub fn engine(
    device: &str,
    precision: Dtype,
    model: &AnyModel,
    threads: usize,
    chunk: usize,
    hidden: Hidden,
    quiet: bool,
) -> anyhow::Result<Box<dyn Engine>> {
    let device = parse(device)?;
    if device == Device::Cpu && precision != Dtype::F32 {
        return Err(UsageError(format!(
            "--precision {} needs the CUDA engine (--device cuda); the CPU engine computes in f32",
            precision.as_str()
        ))
        .into());
    }
    let cpu = || {
        if precision != Dtype::F32 && !quiet {
            eprintln!(
                "genomamba: --precision {} is for the CUDA engine; the CPU computes in f32",
                precision.as_str()
            );
        }
        model
            .cpu_engine(threads, chunk, hidden)
            .context("starting the CPU engine")
    };
    let cuda = |ordinal: usize| -> genomamba_cuda::Result<Box<dyn Engine>> {
        let dtype = precision;
        match model {
            AnyModel::Mamba(m) => genomamba_cuda::cuda_engine(m, ordinal, dtype, chunk),
            AnyModel::Caduceus(m) => {
                genomamba_cuda::cuda_caduceus_engine(m, ordinal, dtype, chunk, hidden)
            }
        }
    };
    match device {
        Device::Cpu => cpu(),
        Device::Cuda(ordinal) => {
            cuda(ordinal).with_context(|| format!("starting the CUDA engine on cuda:{ordinal}"))
        }
        Device::Auto => match genomamba_cuda::probe(0) {
            Ok(info) => match cuda(0) {
                Ok(engine) => {
                    if !quiet {
                        eprintln!("genomamba: running on {info}");
                    }
                    Ok(engine)
                }
                Err(e) => {
                    if !quiet {
                        eprintln!(
                            "genomamba: the GPU {info} is not usable ({e}); running on the CPU"
                        );
                    }
                    cpu()
                }
            },
            Err(e) => {
                if !quiet {
                    eprintln!(
                        "genomamba: no usable GPU ({e}); running on the CPU with {threads} threads"
                    );
                }
                cpu()
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert_eq!(parse("auto").ok(), Some(Device::Auto));
        assert_eq!(parse("cpu").ok(), Some(Device::Cpu));
        assert_eq!(parse("cuda").ok(), Some(Device::Cuda(0)));
        assert_eq!(parse("cuda:3").ok(), Some(Device::Cuda(3)));
        assert!(parse("cuda:x").is_err());
        assert!(parse("tpu").is_err());
    }
}
