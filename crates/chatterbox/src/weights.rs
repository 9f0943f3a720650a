//! Loading checkpoints: memory-mapped safetensors under the official tensor names.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Deserialize;

/// Memory-maps safetensors files into a VarBuilder (no copy until a tensor is used).
pub fn load(
    files: &[PathBuf],
    dtype: DType,
    device: &Device,
) -> candle_core::Result<VarBuilder<'static>> {
    for file in files {
        if !file.exists() {
            candle_core::bail!("weights file not found: {}", file.display());
        }
    }
    // SAFETY: the files are mapped read-only and must not change while the model is loaded.
    unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device) }
}

/// A weight-normed parameter: the checkpoint stores `parametrizations.weight.original0`
/// (g, one gain per output channel) and `original1` (v); the weight is
/// `g * v / ||v||` with the norm over every dim except dim 0.
/// Falls back to a plain `weight` tensor when the checkpoint holds one.
pub fn weight_norm(vb: &VarBuilder, shape: &[usize]) -> candle_core::Result<Tensor> {
    if vb.contains_tensor("weight") {
        return vb.get(shape, "weight");
    }
    let p = vb.pp("parametrizations.weight");
    let mut g_shape = vec![1usize; shape.len()];
    g_shape[0] = shape[0];
    let g = p.get(g_shape.as_slice(), "original0")?;
    let v = p.get(shape, "original1")?;
    let dims: Vec<usize> = (1..shape.len()).collect();
    let norm = v.sqr()?.sum_keepdim(dims)?.sqrt()?;
    v.broadcast_mul(&g.broadcast_div(&norm)?)
}

/// Layout of checkpoint files: for each file name, every tensor's name, shape and
/// dtype (the format of the fixtures' `manifest_full.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct CheckpointManifest {
    pub files: BTreeMap<String, CheckpointFile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckpointFile {
    pub tensors: BTreeMap<String, TensorLayout>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TensorLayout {
    pub shape: Vec<usize>,
    /// `float32` or `int64`.
    pub dtype: String,
}

impl CheckpointManifest {
    pub fn load(path: &Path) -> candle_core::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", path.display())))
    }

    /// Keeps the tensors for which `keep(file, tensor)` holds, and the files left with any.
    pub fn retain(&mut self, keep: impl Fn(&str, &str) -> bool) {
        for (file, layout) in &mut self.files {
            layout.tensors.retain(|name, _| keep(file, name));
        }
        self.files.retain(|_, layout| !layout.tensors.is_empty());
    }
}

/// Writes every file of `manifest` into `dir` with random but plausible values (for
/// tests and benchmarks at full size without the official weights), returning the
/// paths. A tensor's values depend only on `seed` and its name. Tensors are generated
/// while the file is written, so memory stays at one tensor.
///
/// Values by role: weight-norm gains (`original0`), Snake `alpha` and BatchNorm
/// `running_var` are positive, `U(0.5, 1.5)`; other 1-D weights (norm scales) are
/// `U(0.9, 1.1)`; biases and running means `U(-0.1, 0.1)`; matrices and kernels have
/// standard deviation `1/sqrt(fan_in)`, `fan_in` being the product of all dims but the
/// first; int64 tensors (`num_batches_tracked`) are zero.
pub fn random_checkpoint(
    manifest: &CheckpointManifest,
    dir: &Path,
    seed: u64,
) -> candle_core::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", dir.display())))?;
    let mut paths = Vec::with_capacity(manifest.files.len());
    for (file, layout) in &manifest.files {
        let tensors = layout
            .tensors
            .iter()
            .map(|(name, layout)| Ok((name.as_str(), RandomTensor::new(name, layout, seed)?)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let path = dir.join(file);
        safetensors::serialize_to_file(tensors, None, &path)
            .map_err(|e| candle_core::Error::Msg(format!("writing {}: {e}", path.display())))?;
        paths.push(path);
    }
    Ok(paths)
}

/// Distribution of one random tensor's values.
#[derive(Debug, Clone, Copy)]
enum Fill {
    Zeros,
    Uniform { low: f32, high: f32 },
}

/// A tensor of `random_checkpoint`, generated when the file writer asks for its bytes.
struct RandomTensor {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    fill: Fill,
    seed: u64,
}

impl RandomTensor {
    fn new(name: &str, layout: &TensorLayout, seed: u64) -> candle_core::Result<Self> {
        let dtype = match layout.dtype.as_str() {
            "float32" => safetensors::Dtype::F32,
            "int64" => safetensors::Dtype::I64,
            other => candle_core::bail!("{name}: unsupported dtype {other}"),
        };
        let leaf = name.rsplit('.').next().unwrap_or(name);
        let fill = if dtype == safetensors::Dtype::I64 {
            Fill::Zeros
        } else if matches!(leaf, "original0" | "alpha" | "running_var") {
            Fill::Uniform {
                low: 0.5,
                high: 1.5,
            }
        } else if leaf.contains("bias") || leaf == "running_mean" {
            Fill::Uniform {
                low: -0.1,
                high: 0.1,
            }
        } else if layout.shape.len() <= 1 {
            Fill::Uniform {
                low: 0.9,
                high: 1.1,
            }
        } else {
            let fan_in: usize = layout.shape[1..].iter().product();
            // U(-a, a) has standard deviation a / sqrt(3).
            let bound = (3.0 / fan_in.max(1) as f32).sqrt();
            Fill::Uniform {
                low: -bound,
                high: bound,
            }
        };
        Ok(Self {
            dtype,
            shape: layout.shape.clone(),
            fill,
            seed: seed ^ fnv1a(name.as_bytes()),
        })
    }

    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

impl safetensors::View for RandomTensor {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        match self.fill {
            Fill::Zeros => Cow::Owned(vec![0; self.data_len()]),
            Fill::Uniform { low, high } => {
                let mut bits = vec![0u32; self.len()];
                StdRng::seed_from_u64(self.seed).fill(bits.as_mut_slice());
                let scale = (high - low) / 2f32.powi(32);
                let mut bytes = Vec::with_capacity(self.data_len());
                for b in bits {
                    bytes.extend_from_slice(&(low + b as f32 * scale).to_le_bytes());
                }
                Cow::Owned(bytes)
            }
        }
    }

    fn data_len(&self) -> usize {
        self.len() * self.dtype.bitsize() / 8
    }
}

/// 64-bit FNV-1a: a stable hash of tensor names (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
