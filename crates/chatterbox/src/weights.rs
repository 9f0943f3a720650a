//! Loading checkpoints: memory-mapped safetensors under the official tensor names.
//! Writing random checkpoints with the official layout, for tests and benchmarks at full size.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;
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

/// Memory-maps safetensors files into one VarBuilder, each file's tensor names
/// under a prefix (`""` for none: `("t3.", path)` serves `t3.tfmr.wpe.weight` from
/// `tfmr.wpe.weight` of `path`). Every tensor is converted to `dtype` when read, so
/// a checkpoint stored in float16 or bfloat16 loads as f32. The returned
/// [`ReadTensors`] records the names the model read.
pub fn open(
    files: &[(&str, &Path)],
    dtype: DType,
    device: &Device,
) -> candle_core::Result<(VarBuilder<'static>, ReadTensors)> {
    let mut parts = Vec::with_capacity(files.len());
    for (prefix, file) in files {
        if !file.exists() {
            candle_core::bail!("weights file not found: {}", file.display());
        }
        // SAFETY: the files are mapped read-only and must not change while the model is loaded.
        parts.push((prefix.to_string(), unsafe { MmapedSafetensors::new(file)? }));
    }
    let read = ReadTensors::default();
    let backend = PrefixedFiles {
        parts,
        read: read.clone(),
    };
    Ok((
        VarBuilder::from_backend(Box::new(backend), dtype, device.clone()),
        read,
    ))
}

/// The names of the tensors read through a VarBuilder of [`open`].
#[derive(Debug, Clone, Default)]
pub struct ReadTensors(Arc<Mutex<BTreeSet<String>>>);

impl ReadTensors {
    pub fn contains(&self, name: &str) -> bool {
        self.lock().contains(name)
    }

    fn insert(&self, name: &str) {
        self.lock().insert(name.to_string());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // A panic while holding the lock leaves a usable set of names.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The backend of [`open`].
struct PrefixedFiles {
    parts: Vec<(String, MmapedSafetensors)>,
    read: ReadTensors,
}

impl PrefixedFiles {
    fn load(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        let (tensors, key) =
            self.find(name)
                .ok_or_else(|| candle_core::Error::CannotFindTensor {
                    path: name.to_string(),
                })?;
        let tensor = tensors.load(key, device)?.to_dtype(dtype)?;
        self.read.insert(name);
        Ok(tensor)
    }

    fn find<'a>(&'a self, name: &'a str) -> Option<(&'a MmapedSafetensors, &'a str)> {
        self.parts.iter().find_map(|(prefix, tensors)| {
            let key = name.strip_prefix(prefix.as_str())?;
            tensors.get(key).is_ok().then_some((tensors, key))
        })
    }
}

impl SimpleBackend for PrefixedFiles {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.load(name, dtype, device)?;
        if tensor.shape() != &shape {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("tensor {name} has the wrong shape"),
                expected: shape,
                got: tensor.shape().clone(),
            });
        }
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.load(name, dtype, device)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::safetensors::MmapedSafetensors;

    fn manifest(tensors: &[(&str, &[usize], &str)]) -> CheckpointManifest {
        let tensors = tensors
            .iter()
            .map(|(name, shape, dtype)| {
                let layout = TensorLayout {
                    shape: shape.to_vec(),
                    dtype: dtype.to_string(),
                };
                (name.to_string(), layout)
            })
            .collect();
        CheckpointManifest {
            files: BTreeMap::from([("m.safetensors".to_string(), CheckpointFile { tensors })]),
        }
    }

    fn values(dir: &Path, name: &str) -> Vec<f32> {
        // SAFETY: test files are not modified while mapped.
        let st = unsafe { MmapedSafetensors::new(dir.join("m.safetensors")).unwrap() };
        st.load(name, &Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    const LAYOUT: [(&str, &[usize], &str); 6] = [
        ("a.bn.running_var", &[64], "float32"),
        ("a.bn.num_batches_tracked", &[], "int64"),
        (
            "a.conv.parametrizations.weight.original0",
            &[64, 1, 1],
            "float32",
        ),
        (
            "a.conv.parametrizations.weight.original1",
            &[64, 32, 3],
            "float32",
        ),
        ("a.conv.bias", &[64], "float32"),
        ("a.norm.weight", &[64], "float32"),
    ];

    #[test]
    fn random_checkpoint_has_the_layout_and_plausible_values() {
        let dir = tempfile::tempdir().unwrap();
        let paths = random_checkpoint(&manifest(&LAYOUT), dir.path(), 3).unwrap();
        assert_eq!(paths, vec![dir.path().join("m.safetensors")]);
        // SAFETY: as above.
        let st = unsafe { MmapedSafetensors::new(&paths[0]).unwrap() };
        for (name, shape, _) in LAYOUT {
            assert_eq!(st.load(name, &Device::Cpu).unwrap().dims(), shape, "{name}");
        }
        let counter = st.load("a.bn.num_batches_tracked", &Device::Cpu).unwrap();
        assert_eq!(counter.dtype(), DType::I64);
        assert_eq!(counter.to_scalar::<i64>().unwrap(), 0);

        let within = |name: &str, low: f32, high: f32| {
            let v = values(dir.path(), name);
            assert!(
                v.iter().all(|x| (low..=high).contains(x)),
                "{name} outside [{low}, {high}]"
            );
            let (min, max) = v
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
            assert!(max - min > (high - low) / 2.0, "{name} barely varies");
        };
        within("a.bn.running_var", 0.5, 1.5);
        within("a.conv.parametrizations.weight.original0", 0.5, 1.5);
        within("a.conv.bias", -0.1, 0.1);
        within("a.norm.weight", 0.9, 1.1);
        let kernel = values(dir.path(), "a.conv.parametrizations.weight.original1");
        let std = (kernel.iter().map(|x| x * x).sum::<f32>() / kernel.len() as f32).sqrt();
        let expected = 1.0 / (32.0f32 * 3.0).sqrt();
        assert!(
            (std / expected - 1.0).abs() < 0.1,
            "kernel std {std}, expected {expected}"
        );
    }

    #[test]
    fn values_depend_on_seed_and_name_only() {
        let [a, b, c] = [0, 1, 2].map(|_| tempfile::tempdir().unwrap());
        random_checkpoint(&manifest(&LAYOUT), a.path(), 3).unwrap();
        random_checkpoint(&manifest(&LAYOUT[3..4]), b.path(), 3).unwrap();
        random_checkpoint(&manifest(&LAYOUT), c.path(), 4).unwrap();
        let name = LAYOUT[3].0;
        assert_eq!(values(a.path(), name), values(b.path(), name));
        assert_ne!(values(a.path(), name), values(c.path(), name));
    }

    #[test]
    fn unsupported_dtype_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = random_checkpoint(&manifest(&[("x.y", &[2], "bfloat16")]), dir.path(), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.y") && err.contains("bfloat16"), "{err}");
    }
}
