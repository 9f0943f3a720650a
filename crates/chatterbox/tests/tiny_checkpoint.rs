//! Loading a checkpoint folder laid out like the official one (tiny random
//! weights from the reference's `turbo_e2e` fixture) and speaking with its
//! built-in voice; and what the loader accepts of what a published checkpoint
//! may hold (half precision, extra tensors, another position table) and how it
//! names a missing or misshapen tensor.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use chatterbox::checkpoint;
use chatterbox::testing::load_turbo as load;
use chatterbox::tts::{ChatterboxTurbo, SynthesisOptions};

/// Samples per mel frame (S3Gen makes 2 mel frames per speech token).
const SAMPLES_PER_FRAME: usize = 480;

#[test]
fn a_tiny_checkpoint_speaks_reproducibly_with_its_builtin_voice() {
    let dir = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(dir.path()).unwrap();
    let model = load(dir.path()).unwrap();
    assert_eq!(model.config().t3.hidden_size, 64);
    let voice = model
        .builtin_voice()
        .expect("conds.pt is the built-in voice");
    assert_eq!(voice.t3.prompt_tokens.len(), 138);

    let speak = |seed| {
        model
            .synthesize(
                "Hello [chuckle] there.",
                &voice,
                &SynthesisOptions::seeded(seed),
            )
            .unwrap()
    };
    let wave = speak(7);
    // The built-in voice's prompt has 137 tokens and 275 mel frames, so N speech
    // tokens (3 of them appended silence) give 2 (137 + N) - 275 frames.
    assert_eq!(wave.len() % SAMPLES_PER_FRAME, 0, "{}", wave.len());
    let frames = wave.len() / SAMPLES_PER_FRAME;
    assert!(frames % 2 == 1 && frames >= 5, "{frames} frames");
    assert!(frames <= 2 * (137 + 1001 + 3) - 275, "{frames} frames");
    assert!(wave.iter().any(|&s| s != 0.0), "silent output");
    assert!(
        wave.iter().all(|s| s.abs() <= 1.0),
        "samples outside [-1, 1]"
    );
    assert_eq!(speak(7), wave);
    assert_ne!(speak(8), wave);
}

#[test]
fn a_folder_without_the_checkpoint_names_the_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ChatterboxTurbo::config_for(dir.path(), &chatterbox::checkpoint::TURBO).unwrap();
    let err = ChatterboxTurbo::load(
        dir.path(),
        &chatterbox::checkpoint::TURBO,
        &cfg,
        &Device::Cpu,
    )
    .err()
    .unwrap()
    .to_string();
    for file in [
        "t3_turbo_v1.safetensors",
        "s3gen_meanflow.safetensors",
        "tokenizer.json",
    ] {
        assert!(err.contains(file), "{err}");
    }
}

/// Rewrites one safetensors file of the checkpoint in `dir` through `change`.
fn rewrite(dir: &Path, file: &str, change: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let path = dir.join(file);
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    change(&mut tensors);
    candle_core::safetensors::save(&tensors, &path).unwrap();
}

/// Every floating-point tensor of `tensors` as `dtype`.
fn convert_floats(tensors: &mut HashMap<String, Tensor>, dtype: DType) {
    for tensor in tensors.values_mut() {
        if tensor.dtype().is_float() {
            *tensor = tensor.to_dtype(dtype).unwrap();
        }
    }
}

/// A tiny checkpoint in a new folder, `change` applied to its files.
fn tiny_checkpoint(change: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(dir.path()).unwrap();
    change(dir.path());
    dir
}

fn speak(model: &ChatterboxTurbo) -> Vec<f32> {
    let voice = model.builtin_voice().unwrap();
    model
        .synthesize("Hello there.", &voice, &SynthesisOptions::seeded(3))
        .unwrap()
}

#[test]
fn half_precision_weights_load_as_their_f32_values() {
    // Each file stored in half precision, and the same values stored in f32: the
    // two checkpoints must speak identically.
    let halves = [
        (checkpoint::T3_WEIGHTS, DType::BF16),
        (checkpoint::S3GEN_WEIGHTS, DType::F16),
        (checkpoint::VOICE_ENCODER_WEIGHTS, DType::BF16),
    ];
    let half = tiny_checkpoint(|dir| {
        for (file, dtype) in halves {
            rewrite(dir, file, |t| convert_floats(t, dtype));
        }
    });
    let rounded = tiny_checkpoint(|dir| {
        for (file, dtype) in halves {
            rewrite(dir, file, |t| {
                convert_floats(t, dtype);
                convert_floats(t, DType::F32);
            });
        }
    });
    let model = load(half.path()).unwrap();
    assert!(
        model.load_warnings().is_empty(),
        "{:?}",
        model.load_warnings()
    );
    let wave = speak(&model);
    assert!(wave.iter().any(|&s| s != 0.0), "silent output");
    assert_eq!(wave, speak(&load(rounded.path()).unwrap()));
}

#[test]
fn unexpected_tensors_are_ignored_with_a_warning() {
    let extended = tiny_checkpoint(|dir| {
        rewrite(dir, checkpoint::T3_WEIGHTS, |t| {
            // HF GPT-2's causal-mask buffer, which some exports keep.
            let mask = Tensor::ones((1, 1, 8, 8), DType::U8, &Device::Cpu).unwrap();
            t.insert("tfmr.h.0.attn.bias".into(), mask);
        });
        rewrite(dir, checkpoint::S3GEN_WEIGHTS, |t| {
            let extra = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
            t.insert("mel2wav.extra_buffer".into(), extra);
        });
    });
    let model = load(extended.path()).unwrap();
    let warnings = model.load_warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    for (warning, file, tensor) in [
        (&warnings[0], checkpoint::T3_WEIGHTS, "tfmr.h.0.attn.bias"),
        (
            &warnings[1],
            checkpoint::S3GEN_WEIGHTS,
            "mel2wav.extra_buffer",
        ),
    ] {
        assert!(
            warning.contains(file) && warning.contains(tensor) && warning.contains("ignored"),
            "{warning}"
        );
    }
    let plain = tiny_checkpoint(|_| {});
    let plain = load(plain.path()).unwrap();
    assert!(
        plain.load_warnings().is_empty(),
        "{:?}",
        plain.load_warnings()
    );
    assert_eq!(speak(&model), speak(&plain));
}

#[test]
fn the_position_table_length_is_read_from_the_file() {
    let positions = 450;
    let dir = tiny_checkpoint(|dir| {
        rewrite(dir, checkpoint::T3_WEIGHTS, |t| {
            let table = t["tfmr.wpe.weight"].narrow(0, 0, positions).unwrap();
            t.insert("tfmr.wpe.weight".into(), table);
        });
    });
    let cfg = ChatterboxTurbo::config_for(dir.path(), &chatterbox::checkpoint::TURBO).unwrap();
    assert_eq!(cfg.t3.gpt2.n_positions, positions);
    assert_eq!(cfg.t3.gpt2.n_embd, 64);
    let model = load(dir.path()).unwrap();
    assert!(speak(&model).iter().any(|&s| s != 0.0), "silent output");
}

/// A change to a checkpoint file's tensors.
type Change = Box<dyn Fn(&mut HashMap<String, Tensor>)>;

#[test]
fn a_missing_or_misshapen_tensor_is_named_with_its_file() {
    let cases: [(&str, &str, Change, &[&str]); 3] = [
        (
            checkpoint::T3_WEIGHTS,
            "speech_head.weight",
            Box::new(|t| {
                t.remove("speech_head.weight");
            }),
            &["cannot find tensor speech_head.weight"],
        ),
        (
            checkpoint::T3_WEIGHTS,
            "tfmr.h.1.ln_2.weight",
            Box::new(|t| {
                let longer = Tensor::ones(65, DType::F32, &Device::Cpu).unwrap();
                t.insert("tfmr.h.1.ln_2.weight".into(), longer);
            }),
            &[
                "tensor tfmr.h.1.ln_2.weight has the wrong shape",
                "[64]",
                "[65]",
            ],
        ),
        (
            checkpoint::VOICE_ENCODER_WEIGHTS,
            "proj.weight",
            Box::new(|t| {
                t.remove("proj.weight");
            }),
            &["cannot find tensor proj.weight"],
        ),
    ];
    for (file, tensor, change, expected) in cases {
        let dir = tiny_checkpoint(|dir| rewrite(dir, file, change));
        let err = load(dir.path()).err().expect(tensor).to_string();
        assert!(
            err.contains(&dir.path().join(file).display().to_string()),
            "{err}"
        );
        for part in expected {
            assert!(err.contains(part), "{part} not in {err}");
        }
    }
}
