//! Reference fixtures made by the Python reference (`make_fixtures.py`): one
//! safetensors file per module holding `fixture.*` tensors (inputs, outputs,
//! intermediates, recorded random draws) and, for the tiny fixtures, the module's
//! weights under the official names. Full-size fixtures take their weights from
//! the checkpoint files beside them.

use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

/// The fixture directory shipped with the repository (`fixtures/chatterbox-turbo`),
/// or `RESONANCE_FIXTURES` when set.
pub fn fixture_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("RESONANCE_FIXTURES") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/chatterbox-turbo")
}

pub struct Fixture {
    pub module: String,
    pub dir: PathBuf,
    pub json: serde_json::Value,
    tensors: MmapedSafetensors,
}

impl Fixture {
    /// Opens `<dir>/<module>.safetensors` and its JSON sidecar.
    pub fn load(dir: &Path, module: &str) -> candle_core::Result<Self> {
        let file = dir.join(format!("{module}.safetensors"));
        // SAFETY: the file is memory-mapped read-only and not modified while mapped.
        let tensors = unsafe { MmapedSafetensors::new(&file)? };
        let json_path = dir.join(format!("{module}.json"));
        let json = std::fs::read_to_string(&json_path)
            .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", json_path.display())))?;
        let json = serde_json::from_str(&json)
            .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", json_path.display())))?;
        Ok(Self {
            module: module.to_string(),
            dir: dir.to_path_buf(),
            json,
            tensors,
        })
    }

    /// The fixture's model configuration.
    pub fn config(&self) -> candle_core::Result<crate::ChatterboxConfig> {
        serde_json::from_value(self.json["config"].clone())
            .map_err(|e| candle_core::Error::Msg(format!("{} config: {e}", self.module)))
    }

    /// A `fixture.<name>` tensor, on the CPU, in its stored dtype.
    /// candle has no bool dtype: a bool tensor (one byte per element) loads as u8 0/1.
    pub fn tensor(&self, name: &str) -> candle_core::Result<Tensor> {
        let key = format!("fixture.{name}");
        if self.json["tensors"][&key]["dtype"] == "bool" {
            let view = self.tensors.get(&key)?;
            return Tensor::from_raw_buffer(view.data(), DType::U8, view.shape(), &Device::Cpu);
        }
        self.tensors.load(&key, &Device::Cpu)
    }

    /// The token ids of the integer tensor `fixture.<name>`, flattened.
    pub fn token_ids(&self, name: &str) -> candle_core::Result<Vec<u32>> {
        self.tensor(name)?
            .flatten_all()?
            .to_dtype(DType::U32)?
            .to_vec1::<u32>()
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.get(&format!("fixture.{name}")).is_ok()
    }

    /// The recorded random draws `fixture.rng.NN.<fn>`, in call order.
    pub fn rng_draws(&self) -> candle_core::Result<Vec<Tensor>> {
        let mut names: Vec<(u64, String)> = self
            .tensors
            .tensors()
            .into_iter()
            .filter_map(|(name, _)| {
                let index = name
                    .strip_prefix("fixture.rng.")?
                    .split('.')
                    .next()?
                    .parse()
                    .ok()?;
                Some((index, name))
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|(_, n)| self.tensors.load(n, &Device::Cpu))
            .collect()
    }

    /// The module weights as an fp32 VarBuilder. Tiny fixtures hold them (every
    /// non-`fixture.` tensor of the file); full-size fixtures (`weights_included`
    /// false, made with `--full-fixtures`) hold only `fixture.*` tensors and name
    /// in `weights` the checkpoint files beside them (`official_file`, written by
    /// `--save-full-weights` with the same seed) and the prefix their names take
    /// in the module (`file_key_prefix`).
    pub fn weights(&self) -> candle_core::Result<VarBuilder<'static>> {
        if self.json["weights_included"].as_bool() != Some(false) {
            let file = self.dir.join(format!("{}.safetensors", self.module));
            return crate::weights::load(&[file], DType::F32, &Device::Cpu);
        }
        let entries = self.json["weights"].as_array().cloned().unwrap_or_default();
        let mut files = Vec::with_capacity(entries.len());
        for entry in &entries {
            let (Some(prefix), Some(file)) = (
                entry["file_key_prefix"].as_str(),
                entry["official_file"].as_str(),
            ) else {
                candle_core::bail!(
                    "{}.json: a weights entry lacks file_key_prefix or official_file",
                    self.module
                );
            };
            files.push((prefix.to_string(), self.dir.join(file)));
        }
        let files: Vec<(&str, &Path)> = files
            .iter()
            .map(|(prefix, file)| (prefix.as_str(), file.as_path()))
            .collect();
        Ok(crate::weights::open(&files, DType::F32, &Device::Cpu)?.0)
    }
}

/// Largest absolute elementwise difference, computed in f64. Infinite as soon as
/// either side holds a non-finite value (NaN, +inf or -inf), so that no bound
/// passes it (candle's `max` skips NaN unless it comes first).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> candle_core::Result<f64> {
    if a.dims() != b.dims() {
        candle_core::bail!("shape mismatch: {:?} vs {:?}", a.dims(), b.dims());
    }
    let (a, b) = (values_f64(a)?, values_f64(b)?);
    let mut largest = 0f64;
    for (x, y) in a.iter().zip(&b) {
        if !x.is_finite() || !y.is_finite() {
            return Ok(f64::INFINITY);
        }
        largest = largest.max((x - y).abs());
    }
    Ok(largest)
}

/// `10 log10(sum reference^2 / sum (reference - other)^2)` in dB: how far `other` is from
/// `reference` (two waves, or two spectra), measured against `reference`'s energy.
pub fn snr_db(reference: &[f32], other: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|&s| f64::from(s).powi(2)).sum();
    let noise: f64 = reference
        .iter()
        .zip(other)
        .map(|(&a, &b)| f64::from(a - b).powi(2))
        .sum();
    10.0 * (signal / noise.max(1e-30)).log10()
}

/// Largest absolute value of a tensor, computed in f64 (for relative bounds);
/// infinite when it holds a non-finite value.
pub fn max_abs(a: &Tensor) -> candle_core::Result<f64> {
    Ok(values_f64(a)?.iter().fold(0f64, |largest, x| {
        if x.is_finite() {
            largest.max(x.abs())
        } else {
            f64::INFINITY
        }
    }))
}

/// Index (in row-major order) and value of the first non-finite element.
pub fn first_non_finite(a: &Tensor) -> candle_core::Result<Option<(usize, f64)>> {
    Ok(values_f64(a)?
        .into_iter()
        .enumerate()
        .find(|(_, x)| !x.is_finite()))
}

fn values_f64(a: &Tensor) -> candle_core::Result<Vec<f64>> {
    a.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()
}

/// The shipped fixtures agree with what the crate embeds.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::checkpoint::{S3GEN_WEIGHTS, T3_WEIGHTS, VOICE_ENCODER_WEIGHTS};
    use crate::weights::TensorLayout;

    #[test]
    fn tiny_config_loads_from_fixture_index() {
        let path = fixture_dir().join("index.json");
        let cfg = crate::ChatterboxConfig::from_index_json(&path).unwrap();
        assert_eq!(cfg.name, "tiny");
        assert_eq!(cfg.t3.gpt2.n_embd, 64);
        assert_eq!(cfg.decoder.channels, vec![32]);
    }

    #[test]
    fn official_layout_is_the_reference_manifest() {
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture_dir().join("manifest_full.json")).unwrap(),
        )
        .unwrap();
        let official = crate::weights::CheckpointManifest::official();
        let files = manifest["files"].as_object().unwrap();
        assert_eq!(official.files.len(), files.len());
        for (file, entry) in files {
            let expected: BTreeMap<String, TensorLayout> =
                serde_json::from_value(entry["tensors"].clone()).unwrap();
            assert_eq!(official.files[file].tensors, expected, "{file}");
            assert_eq!(expected.len() as u64, entry["count"].as_u64().unwrap());
        }
        let mut names: Vec<_> = official.files.keys().map(String::as_str).collect();
        names.sort();
        let mut wanted = vec![T3_WEIGHTS, S3GEN_WEIGHTS, VOICE_ENCODER_WEIGHTS];
        wanted.sort();
        assert_eq!(names, wanted);
    }
}
