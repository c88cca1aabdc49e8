//! Reading named tensors from safetensors (single or sharded) and PyTorch `.bin` files, converted to f32.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A tensor converted to f32: `data` is row-major with `shape`.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
    /// Storage dtype in the file (`"f32"`, `"f16"`, `"bf16"`, `"i64"`, `"i32"`). Integer tensors are buffers
    /// (Caduceus' `complement_map`), never weights: [`Tensors::take`] refuses them.
    pub dtype: &'static str,
}

/// All tensors of a checkpoint by name, plus provenance.
#[derive(Debug, Default)]
pub struct Tensors {
    /// Tensors by state-dict name.
    pub map: BTreeMap<String, RawTensor>,
    /// Storage dtypes seen (`"f32"`, `"f16"`, `"bf16"`).
    pub dtypes: BTreeSet<String>,
    /// SHA-256 digests of the files read, in file-name order.
    pub digests: Vec<[u8; 32]>,
}

impl Tensors {
    /// Lower-case hex SHA-256 of the one file, or of the concatenated digests when there are several.
    pub fn sha256_hex(&self) -> String {
        let digest: [u8; 32] = match self.digests.as_slice() {
            [one] => *one,
            many => {
                let mut h = Sha256::new();
                for d in many {
                    h.update(d);
                }
                h.finalize().into()
            }
        };
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Adds every tensor of one safetensors file image (f32/f16/bf16 weights; i64/i32 buffers as exact f32).
    pub fn add_safetensors(&mut self, bytes: &[u8]) -> Result<()> {
        self.digests.push(Sha256::digest(bytes).into());
        let st = SafeTensors::deserialize(bytes)?;
        for (name, view) in st.tensors() {
            let data = view.data();
            let (values, dtype) = match view.dtype() {
                Dtype::F32 => (
                    data.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    "f32",
                ),
                Dtype::F16 => (
                    data.chunks_exact(2)
                        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                        .collect(),
                    "f16",
                ),
                Dtype::BF16 => (
                    data.chunks_exact(2)
                        .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                        .collect(),
                    "bf16",
                ),
                // Integer buffers (Caduceus' `complement_map`): small ids, exact in f32; not a weights dtype.
                Dtype::I64 => (
                    data.chunks_exact(8)
                        .map(|c| {
                            i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                                as f32
                        })
                        .collect(),
                    "i64",
                ),
                Dtype::I32 => (
                    data.chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                        .collect(),
                    "i32",
                ),
                other => {
                    return Err(Error::Dtype {
                        key: name,
                        dtype: format!("{other:?}"),
                    });
                }
            };
            if is_float(dtype) {
                self.dtypes.insert(dtype.to_owned());
            }
            self.map.insert(
                name,
                RawTensor {
                    shape: view.shape().to_vec(),
                    data: values,
                    dtype,
                },
            );
        }
        Ok(())
    }

    /// Adds every tensor of a PyTorch `.bin` (zip + pickle) checkpoint.
    pub fn add_pytorch(&mut self, path: &Path) -> Result<()> {
        let bytes = read(path)?;
        self.digests.push(Sha256::digest(&bytes).into());
        drop(bytes);
        for (name, t) in candle_core::pickle::read_all(path)? {
            let dtype = match t.dtype() {
                candle_core::DType::F32 => "f32",
                candle_core::DType::F16 => "f16",
                candle_core::DType::BF16 => "bf16",
                candle_core::DType::I64 => "i64",
                other => {
                    return Err(Error::Dtype {
                        key: name,
                        dtype: format!("{other:?}"),
                    });
                }
            };
            if is_float(dtype) {
                self.dtypes.insert(dtype.to_owned());
            }
            let shape = t.dims().to_vec();
            let data = t
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            self.map.insert(name, RawTensor { shape, data, dtype });
        }
        Ok(())
    }

    /// Reads the weights of a model directory: `model.safetensors`, else the shards listed in
    /// `model.safetensors.index.json`, else `pytorch_model.bin`.
    pub fn from_dir(dir: &Path) -> Result<Tensors> {
        let mut t = Tensors::default();
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        if single.is_file() {
            t.add_safetensors(&read(&single)?)?;
        } else if index.is_file() {
            let v: serde_json::Value = serde_json::from_slice(&read(&index)?)?;
            let shards: BTreeSet<&str> = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::ConfigValue {
                    key: "weight_map".into(),
                    reason: format!("missing in {}", index.display()),
                })?
                .values()
                .filter_map(|f| f.as_str())
                .collect();
            for shard in shards {
                t.add_safetensors(&read(&dir.join(shard))?)?;
            }
        } else if dir.join("pytorch_model.bin").is_file() {
            t.add_pytorch(&dir.join("pytorch_model.bin"))?;
        } else {
            return Err(Error::Io {
                path: single,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no model.safetensors, model.safetensors.index.json or pytorch_model.bin",
                ),
            });
        }
        Ok(t)
    }

    /// Removes and returns a tensor, checking its shape; `Error::MissingTensor` names it when absent.
    pub fn take(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.take_opt(key, shape)?
            .ok_or_else(|| Error::MissingTensor(key.to_owned()))
    }

    /// Like [`Tensors::take`] for an optional tensor.
    pub fn take_opt(&mut self, key: &str, shape: &[usize]) -> Result<Option<Vec<f32>>> {
        if let Some(t) = self.map.get(key)
            && !is_float(t.dtype)
        {
            return Err(Error::Dtype {
                key: key.to_owned(),
                dtype: t.dtype.to_owned(),
            });
        }
        self.take_any_opt(key, shape)
    }

    /// Like [`Tensors::take_opt`], also accepting integer buffers (token ids, exact in f32).
    pub fn take_any_opt(&mut self, key: &str, shape: &[usize]) -> Result<Option<Vec<f32>>> {
        let Some(t) = self.map.remove(key) else {
            return Ok(None);
        };
        if t.shape != shape {
            return Err(Error::ShapeMismatch {
                key: key.to_owned(),
                expected: shape.to_vec(),
                got: t.shape,
            });
        }
        // A NaN or infinite weight makes every output NaN, which the tables would show as nulls that look like
        // "no context": refuse the model instead.
        if let Some((index, value)) = t.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite {
                key: key.to_owned(),
                index,
                value: *value,
            });
        }
        Ok(Some(t.data))
    }
}

/// Whether a storage dtype is a floating-point weights dtype.
fn is_float(dtype: &str) -> bool {
    matches!(dtype, "f32" | "f16" | "bf16")
}

/// Reads a whole file, naming it on error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: PathBuf::from(path),
        source,
    })
}
