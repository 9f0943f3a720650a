//! The official checkpoint (Hugging Face `ResembleAI/chatterbox-turbo`): its
//! files and the tensor layout its safetensors files must have. Verification
//! reads only the safetensors headers, so it is cheap even at full size.
//! Layouts are [`CheckpointManifest`]s.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use crate::weights::{CheckpointFile, CheckpointManifest, TensorLayout};

/// Hugging Face repository of the official Turbo weights.
pub const REPO_ID: &str = "ResembleAI/chatterbox-turbo";
pub const T3_WEIGHTS: &str = "t3_turbo_v1.safetensors";
/// Chatterbox Nano's T3 (GPT-2 small); its other files are Turbo's.
pub const NANO_T3_WEIGHTS: &str = "t3_nano_v1.safetensors";
pub const S3GEN_WEIGHTS: &str = "s3gen_meanflow.safetensors";
pub const VOICE_ENCODER_WEIGHTS: &str = "ve.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";
/// The built-in voice: a torch pickle of the reference's `Conditionals`.
pub const BUILTIN_VOICE: &str = "conds.pt";
/// Optional [`crate::ChatterboxConfig`] JSON of a checkpoint that is not the
/// official size (tiny test checkpoints); without it the official config applies.
pub const CONFIG_OVERRIDE: &str = "chatterbox_config.json";

/// The checkpoint's safetensors files.
pub const WEIGHT_FILES: [&str; 3] = [T3_WEIGHTS, S3GEN_WEIGHTS, VOICE_ENCODER_WEIGHTS];

/// Every file the engine needs, in download order (small ones first).
pub const FILES: [&str; 5] = [
    TOKENIZER,
    BUILTIN_VOICE,
    VOICE_ENCODER_WEIGHTS,
    S3GEN_WEIGHTS,
    T3_WEIGHTS,
];

/// A published model: its Hugging Face repository and its T3 file. Every model
/// shares the other files of [`FILES`] (byte-identical in each repository), so
/// one folder holds them once beside each model's T3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The model's name in settings and APIs.
    pub id: &'static str,
    pub repo_id: &'static str,
    pub t3_weights: &'static str,
}

pub const TURBO: Checkpoint = Checkpoint {
    id: "chatterbox-turbo",
    repo_id: REPO_ID,
    t3_weights: T3_WEIGHTS,
};

/// Turbo with a GPT-2 small T3 (12 layers, 768 wide, 12 heads).
pub const NANO: Checkpoint = Checkpoint {
    id: "chatterbox-nano",
    repo_id: "ResembleAI/chatterbox-nano",
    t3_weights: NANO_T3_WEIGHTS,
};

pub const CHECKPOINTS: [Checkpoint; 2] = [TURBO, NANO];

impl Checkpoint {
    pub fn by_id(id: &str) -> Option<Self> {
        CHECKPOINTS.into_iter().find(|c| c.id == id)
    }

    /// [`FILES`] with this model's T3.
    pub fn files(&self) -> [&'static str; 5] {
        FILES.map(|f| if f == T3_WEIGHTS { self.t3_weights } else { f })
    }

    /// [`WEIGHT_FILES`] with this model's T3.
    pub fn weight_files(&self) -> [&'static str; 3] {
        WEIGHT_FILES.map(|f| if f == T3_WEIGHTS { self.t3_weights } else { f })
    }
}

/// Largest safetensors header accepted (the official ones are under 300 KB).
const MAX_HEADER_BYTES: u64 = 64 << 20;
/// Problems listed in an error before the rest are only counted.
const LISTED_PROBLEMS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid safetensors file: {reason}")]
    NotSafetensors { path: String, reason: String },
    #[error("{file} does not have the expected layout: {}", list(.problems))]
    Mismatch { file: String, problems: Vec<String> },
    #[error("no expected layout for {0}")]
    UnknownFile(String),
}

/// The first items of `problems` joined by "; ", then how many more there are.
pub fn list(problems: &[String]) -> String {
    let mut text = problems
        .iter()
        .take(LISTED_PROBLEMS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > LISTED_PROBLEMS {
        text += &format!("; and {} more", problems.len() - LISTED_PROBLEMS);
    }
    text
}

impl CheckpointManifest {
    /// The layout of the official full-size checkpoint (every tensor of
    /// `t3_turbo_v1`, `s3gen_meanflow` and `ve`, as in the reference's strict
    /// `load_state_dict`).
    pub fn official() -> Self {
        serde_json::from_str(include_str!("checkpoint_layout.json"))
            .expect("embedded checkpoint layout parses")
    }

    /// The official layout of `checkpoint`'s files. Nano's T3 is Turbo's with
    /// GPT-2 small's 12 layers and width 768 (attention 3 × 768, MLP 4 × 768).
    pub fn of(checkpoint: &Checkpoint) -> Self {
        let mut manifest = Self::official();
        if checkpoint.t3_weights != T3_WEIGHTS {
            let turbo = manifest
                .files
                .remove(T3_WEIGHTS)
                .expect("Turbo's T3 layout");
            let tensors = turbo
                .tensors
                .into_iter()
                .filter(|(name, _)| layer(name).is_none_or(|layer| layer < 12))
                .map(|(name, mut layout)| {
                    for dim in &mut layout.shape {
                        *dim = match *dim {
                            1024 => 768,
                            3072 => 3 * 768,
                            4096 => 4 * 768,
                            other => other,
                        };
                    }
                    (name, layout)
                })
                .collect();
            manifest.files.insert(
                checkpoint.t3_weights.to_string(),
                CheckpointFile { tensors },
            );
        }
        manifest
    }

    /// Checks that the safetensors file at `path` holds every tensor expected for
    /// `file` (a name of [`CheckpointManifest::files`]) with its shape, and that its
    /// data is complete. A floating-point tensor may be stored in float32, float16
    /// or bfloat16 (the loader converts it); other dtypes must match. Tensors the
    /// layout does not list are accepted: the returned warnings name them.
    pub fn verify_file(&self, file: &str, path: &Path) -> Result<Vec<String>, LayoutError> {
        let expected = self
            .files
            .get(file)
            .ok_or_else(|| LayoutError::UnknownFile(file.to_string()))?;
        let found = read_header(path)?;
        let mut problems = Vec::new();
        for (name, want) in &expected.tensors {
            match found.get(name) {
                None => problems.push(format!("tensor {name} is missing")),
                Some(have)
                    if have.shape != want.shape || !interchangeable(&have.dtype, &want.dtype) =>
                {
                    problems.push(format!(
                        "tensor {name} is {} {:?}, expected {} {:?}",
                        have.dtype, have.shape, want.dtype, want.shape
                    ))
                }
                Some(_) => {}
            }
        }
        if !problems.is_empty() {
            return Err(LayoutError::Mismatch {
                file: path.display().to_string(),
                problems,
            });
        }
        let unexpected: Vec<String> = found
            .into_keys()
            .filter(|name| !expected.tensors.contains_key(name))
            .collect();
        Ok(if unexpected.is_empty() {
            Vec::new()
        } else {
            vec![format!(
                "{} holds {} tensors the official layout does not list; they are ignored: {}.",
                path.display(),
                unexpected.len(),
                list(&unexpected)
            )]
        })
    }

    /// The layout the safetensors `files` in `dir` have (to describe a
    /// checkpoint that is not the official one).
    pub fn read(dir: &Path, files: &[&str]) -> Result<Self, LayoutError> {
        let files = files
            .iter()
            .map(|f| {
                let tensors = read_header(&dir.join(f))?;
                Ok((f.to_string(), CheckpointFile { tensors }))
            })
            .collect::<Result<_, LayoutError>>()?;
        Ok(Self { files })
    }
}

/// The GPT-2 layer a T3 tensor belongs to (`tfmr.h.<layer>.*`).
pub fn layer(tensor: &str) -> Option<usize> {
    tensor
        .strip_prefix("tfmr.h.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Whether a tensor stored as `have` can stand for one expected as `want`: the
/// same dtype, or two floating-point ones (the loader converts on reading).
fn interchangeable(have: &str, want: &str) -> bool {
    const FLOATS: [&str; 3] = ["float32", "float16", "bfloat16"];
    have == want || (FLOATS.contains(&have) && FLOATS.contains(&want))
}

/// One tensor entry of a safetensors header.
#[derive(Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// Reads a safetensors header: tensor name -> layout, with dtypes in torch
/// names. Fails when the header is malformed or the data is cut short.
fn read_header(path: &Path) -> Result<BTreeMap<String, TensorLayout>, LayoutError> {
    let read_err = |source| LayoutError::Read {
        path: path.display().to_string(),
        source,
    };
    let invalid = |reason: String| LayoutError::NotSafetensors {
        path: path.display().to_string(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let file_len = file.metadata().map_err(read_err)?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .map_err(|_| invalid("shorter than a header".into()))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
        return Err(invalid(format!(
            "header length {header_len} does not fit a {file_len}-byte file"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(read_err)?;
    let mut entries: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| invalid(format!("header: {e}")))?;
    entries.remove("__metadata__");
    let data_len = file_len - 8 - header_len;
    let mut tensors = BTreeMap::new();
    for (name, value) in entries {
        let entry: HeaderEntry =
            serde_json::from_value(value).map_err(|e| invalid(format!("tensor {name}: {e}")))?;
        let (dtype, width) = match entry.dtype.as_str() {
            "F32" => ("float32", 4),
            "F16" => ("float16", 2),
            "BF16" => ("bfloat16", 2),
            "F64" => ("float64", 8),
            "I64" => ("int64", 8),
            "I32" => ("int32", 4),
            "I16" => ("int16", 2),
            "I8" => ("int8", 1),
            "U8" => ("uint8", 1),
            "BOOL" => ("bool", 1),
            other => (other, 0),
        };
        let [start, end] = entry.data_offsets;
        let bytes = entry.shape.iter().product::<usize>() as u64 * width;
        if width > 0 && (end < start || end - start != bytes) {
            return Err(invalid(format!(
                "tensor {name} has {} data bytes for shape {:?} {}",
                end.saturating_sub(start),
                entry.shape,
                entry.dtype
            )));
        }
        if end > data_len {
            return Err(invalid(format!(
                "tensor {name} ends at byte {end} of the data but the file holds {data_len} \
                 (incomplete download?)"
            )));
        }
        tensors.insert(
            name,
            TensorLayout {
                shape: entry.shape,
                dtype: dtype.to_string(),
            },
        );
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{DType, Device, Tensor};

    use super::*;

    fn layout(tensors: &[(&str, &[usize], &str)]) -> CheckpointManifest {
        CheckpointManifest {
            files: BTreeMap::from([(
                "w.safetensors".to_string(),
                CheckpointFile {
                    tensors: tensors
                        .iter()
                        .map(|(n, s, d)| {
                            (
                                n.to_string(),
                                TensorLayout {
                                    shape: s.to_vec(),
                                    dtype: d.to_string(),
                                },
                            )
                        })
                        .collect(),
                },
            )]),
        }
    }

    fn write(dir: &Path, tensors: &[(&str, Tensor)]) -> std::path::PathBuf {
        let path = dir.join("w.safetensors");
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    }

    #[test]
    fn a_matching_file_passes_and_every_mismatch_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::Cpu;
        let want = layout(&[
            ("a.weight", &[2, 3], "float32"),
            ("b.count", &[], "int64"),
            ("c.bias", &[4], "float32"),
        ]);
        let good = write(
            dir.path(),
            &[
                ("a.weight", Tensor::zeros((2, 3), DType::F32, &dev).unwrap()),
                ("b.count", Tensor::new(3i64, &dev).unwrap()),
                ("c.bias", Tensor::zeros(4, DType::F32, &dev).unwrap()),
            ],
        );
        assert!(want.verify_file("w.safetensors", &good).unwrap().is_empty());

        let bad = write(
            dir.path(),
            &[
                ("a.weight", Tensor::zeros((3, 2), DType::F32, &dev).unwrap()),
                ("b.count", Tensor::new(3f32, &dev).unwrap()),
                ("extra", Tensor::zeros(1, DType::F32, &dev).unwrap()),
            ],
        );
        let err = want.verify_file("w.safetensors", &bad).unwrap_err();
        let text = err.to_string();
        for part in [
            "tensor a.weight is float32 [3, 2], expected float32 [2, 3]",
            "tensor b.count is float32 [], expected int64 []",
            "tensor c.bias is missing",
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
        assert!(!text.contains("extra"), "{text}");
    }

    #[test]
    fn half_precision_and_extra_tensors_pass_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::Cpu;
        let want = layout(&[
            ("a.weight", &[2, 3], "float32"),
            ("c.bias", &[4], "float32"),
        ]);
        let path = write(
            dir.path(),
            &[
                (
                    "a.weight",
                    Tensor::zeros((2, 3), DType::BF16, &dev).unwrap(),
                ),
                ("c.bias", Tensor::zeros(4, DType::F16, &dev).unwrap()),
                ("z.buffer", Tensor::zeros(7, DType::F32, &dev).unwrap()),
                ("y.extra", Tensor::zeros(1, DType::I64, &dev).unwrap()),
            ],
        );
        let warnings = want.verify_file("w.safetensors", &path).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains(&path.display().to_string())
                && warnings[0].contains("2 tensors")
                && warnings[0].contains("y.extra; z.buffer"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::Cpu;
        let want = layout(&[("a", &[256], "float32")]);
        let path = write(
            dir.path(),
            &[("a", Tensor::zeros(256, DType::F32, &dev).unwrap())],
        );
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let err = want.verify_file("w.safetensors", &path).unwrap_err();
        assert!(err.to_string().contains("incomplete download"), "{err}");

        std::fs::write(&path, b"<html>not found</html>").unwrap();
        let err = want.verify_file("w.safetensors", &path).unwrap_err();
        assert!(matches!(err, LayoutError::NotSafetensors { .. }), "{err}");
        let err = want
            .verify_file("w.safetensors", &dir.path().join("absent"))
            .unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
    }
}
