//! S3Gen at full size: a random checkpoint with the official layout of
//! `s3gen_meanflow.safetensors` (`manifest_full.json`) loads with the default (official)
//! configuration, every tensor of the loaded modules is used, and a missing or
//! misshapen tensor is named in the error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;
use chatterbox::ChatterboxConfig;
use chatterbox::parity::fixtures::fixture_dir;
use chatterbox::rng::SeededRandom;
use chatterbox::s3gen::{CHECKPOINT_FILE, S3Gen, S3GenConditionals};
use chatterbox::weights::{CheckpointFile, CheckpointManifest, TensorLayout, random_checkpoint};

/// One tensor of each loaded part, left out of the base checkpoint for the error cases.
const PROBES: [&str; 3] = [
    "flow.encoder.encoders.2.self_attn.pos_bias_u",
    "flow.decoder.estimator.time_embed_mixer.weight",
    "mel2wav.source_resblocks.1.convs2.2.parametrizations.weight.original1",
];

fn s3gen_manifest() -> CheckpointManifest {
    let mut manifest = CheckpointManifest::load(&fixture_dir().join("manifest_full.json")).unwrap();
    manifest.retain(|file, name| {
        file == CHECKPOINT_FILE && S3Gen::WEIGHT_PREFIXES.iter().any(|p| name.starts_with(p))
    });
    manifest
}

/// A VarBuilder backend over safetensors files that records the tensors asked for.
struct Recording {
    tensors: MmapedSafetensors,
    used: Arc<Mutex<BTreeSet<String>>>,
}

impl SimpleBackend for Recording {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.used.lock().unwrap().insert(name.to_string());
        SimpleBackend::get(&self.tensors, shape, name, init, dtype, device)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.used.lock().unwrap().insert(name.to_string());
        SimpleBackend::get_unchecked(&self.tensors, name, dtype, device)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        SimpleBackend::contains_tensor(&self.tensors, name)
    }
}

/// Writes one small file holding `name` with `shape`.
fn single_tensor_file(dir: &std::path::Path, file: &str, name: &str, shape: &[usize]) -> PathBuf {
    let manifest = CheckpointManifest {
        files: BTreeMap::from([(
            file.to_string(),
            CheckpointFile {
                tensors: BTreeMap::from([(
                    name.to_string(),
                    TensorLayout {
                        shape: shape.to_vec(),
                        dtype: "float32".into(),
                    },
                )]),
            },
        )]),
    };
    random_checkpoint(&manifest, dir, 7).unwrap().remove(0)
}

fn load_error(files: &[PathBuf]) -> String {
    let cfg = ChatterboxConfig::default();
    let vb = chatterbox::weights::load(files, DType::F32, &Device::Cpu).unwrap();
    match S3Gen::new(&cfg, vb) {
        Ok(_) => panic!("S3Gen loaded from {files:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn full_size_checkpoint_loads_exactly_the_official_layout() {
    let manifest = s3gen_manifest();
    let layout = &manifest.files[CHECKPOINT_FILE].tensors;
    for probe in PROBES {
        assert!(layout.contains_key(probe), "{probe} not in the manifest");
    }
    let dir = tempfile::tempdir().unwrap();

    let mut base = manifest.clone();
    base.retain(|_, name| !PROBES.contains(&name));
    let base = random_checkpoint(&base, dir.path(), 1).unwrap();
    let good: Vec<PathBuf> = PROBES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            single_tensor_file(
                dir.path(),
                &format!("good{i}.safetensors"),
                name,
                &layout[*name].shape,
            )
        })
        .collect();

    // Every probe missing or misshapen in turn, the others present: the error names it.
    for (i, probe) in PROBES.iter().enumerate() {
        let mut files = base.clone();
        files.extend(
            good.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, f)| f.clone()),
        );
        let err = load_error(&files);
        assert!(err.contains(probe), "missing {probe}: {err}");

        let mut shape = layout[*probe].shape.clone();
        shape[0] += 1;
        files.push(single_tensor_file(
            dir.path(),
            &format!("bad{i}.safetensors"),
            probe,
            &shape,
        ));
        let err = load_error(&files);
        assert!(
            err.contains(probe) && err.contains("shape"),
            "misshapen {probe}: {err}"
        );
    }

    // Complete: loads with the official config and asks for every tensor of the layout.
    let mut files = base.clone();
    files.extend(good.iter().cloned());
    let used = Arc::new(Mutex::new(BTreeSet::new()));
    let backend = Recording {
        // SAFETY: the files are read-only and outlive the mapping.
        tensors: unsafe { MmapedSafetensors::multi(&files).unwrap() },
        used: used.clone(),
    };
    let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, Device::Cpu);
    let cfg = ChatterboxConfig::default();
    let s3gen = S3Gen::new(&cfg, vb).unwrap();
    let expected: BTreeSet<String> = layout.keys().cloned().collect();
    let used = used.lock().unwrap().clone();
    let unused: Vec<_> = expected.difference(&used).collect();
    let unknown: Vec<_> = used.difference(&expected).collect();
    assert!(unused.is_empty(), "tensors not loaded: {unused:?}");
    assert!(
        unknown.is_empty(),
        "tensors outside the layout: {unknown:?}"
    );

    // A short synthesis at full size: 4 tokens after a 6-token prompt.
    let tokens = Tensor::new(&[[10u32, 200, 3000, 4299]], &Device::Cpu).unwrap();
    let mut rng = SeededRandom::new(5);
    let conditionals = S3GenConditionals {
        tokens: Tensor::new(&[[1u32, 2, 3, 4, 5, 6]], &Device::Cpu).unwrap(),
        mel: Tensor::zeros((1, 12, 80), DType::F32, &Device::Cpu).unwrap(),
        embedding: Tensor::ones((1, 192), DType::F32, &Device::Cpu).unwrap(),
    };
    let wave = s3gen.inference(&tokens, &conditionals, &mut rng).unwrap();
    assert_eq!(wave.dims(), &[1, 8 * 480]);
    let peak = chatterbox::parity::fixtures::max_abs(&wave).unwrap();
    assert!(peak.is_finite() && peak > 0.0, "peak {peak}");
}
