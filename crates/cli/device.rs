//! `--device`: picks the engine. `auto` uses a GPU when one is usable and says which, else the CPU.

use std::sync::Arc;

use anyhow::Context;
use genomamba_model::caduceus::Hidden;
use genomamba_model::engine::Engine;
use genomamba_model::{AnyModel, Model};

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

/// The engine for `device`; `chunk` bases per step, `threads` CPU threads, `hidden` the embedding of a
/// Caduceus-PS model. Caduceus runs on the CPU only: `--device cuda` refuses it, `auto` says so and uses the CPU.
pub fn engine(
    device: &str,
    model: &AnyModel,
    threads: usize,
    chunk: usize,
    hidden: Hidden,
    quiet: bool,
) -> anyhow::Result<Box<dyn Engine>> {
    let device = parse(device)?;
    match model {
        AnyModel::Mamba(m) => mamba_engine(device, Arc::clone(m), threads, chunk, quiet),
        AnyModel::Caduceus(_) => {
            match device {
                Device::Cuda(ordinal) => anyhow::bail!(
                    "--device cuda:{ordinal}: the CUDA engine does not run Caduceus models yet; use --device cpu"
                ),
                Device::Auto if !quiet => eprintln!(
                    "genomamba: Caduceus runs on the CPU (no CUDA engine for it yet), {threads} threads"
                ),
                _ => {}
            }
            model
                .cpu_engine(threads, chunk, hidden)
                .context("starting the Caduceus CPU engine")
        }
    }
}

fn mamba_engine(
    device: Device,
    model: Arc<Model>,
    threads: usize,
    chunk: usize,
    quiet: bool,
) -> anyhow::Result<Box<dyn Engine>> {
    let cpu = |model: Arc<Model>| {
        genomamba_model::cpu_engine(model, threads, chunk).context("starting the CPU engine")
    };
    match device {
        Device::Cpu => cpu(model),
        Device::Cuda(ordinal) => {
            genomamba_cuda::cuda_engine(&model, ordinal, genomamba_cuda::Dtype::F32, chunk)
                .with_context(|| format!("starting the CUDA engine on cuda:{ordinal}"))
        }
        Device::Auto => match genomamba_cuda::probe(0) {
            Ok(info) => {
                match genomamba_cuda::cuda_engine(&model, 0, genomamba_cuda::Dtype::F32, chunk) {
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
                        cpu(model)
                    }
                }
            }
            Err(e) => {
                if !quiet {
                    eprintln!(
                        "genomamba: no usable GPU ({e}); running on the CPU with {threads} threads"
                    );
                }
                cpu(model)
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
