//! Chatterbox Nano: Turbo's files with a GPT-2 small T3 (`t3_nano_v1.safetensors`),
//! its shape read from the file; a folder holding both models shares every other file.

use candle_core::Device;
use chatterbox::ChatterboxConfig;
use chatterbox::checkpoint::{self, NANO, NANO_T3_WEIGHTS, T3_WEIGHTS, TURBO};
use chatterbox::t3::Precision;
use chatterbox::tts::{ChatterboxTurbo, SynthesisOptions};
use chatterbox::weights::{CheckpointManifest, random_checkpoint};

/// A short speech so that a T3 of random weights stops soon.
fn short(seed: u64) -> SynthesisOptions {
    let mut options = SynthesisOptions::seeded(seed);
    options.sampling.max_new_tokens = 12;
    options
}

#[test]
fn nanos_official_layout_is_turbos_with_a_gpt2_small_t3() {
    let nano = CheckpointManifest::of(&NANO);
    let turbo = CheckpointManifest::of(&TURBO);
    assert_eq!(
        nano.files.keys().collect::<Vec<_>>(),
        [
            checkpoint::S3GEN_WEIGHTS,
            NANO_T3_WEIGHTS,
            checkpoint::VOICE_ENCODER_WEIGHTS
        ]
    );
    for shared in [checkpoint::S3GEN_WEIGHTS, checkpoint::VOICE_ENCODER_WEIGHTS] {
        assert_eq!(nano.files[shared].tensors, turbo.files[shared].tensors);
    }
    let t3 = &nano.files[NANO_T3_WEIGHTS].tensors;
    let shape = |name: &str| t3[name].shape.clone();
    assert_eq!(shape("tfmr.wpe.weight"), [8196, 768]);
    assert_eq!(shape("tfmr.h.11.attn.c_attn.weight"), [768, 2304]);
    assert_eq!(shape("tfmr.h.11.mlp.c_proj.weight"), [3072, 768]);
    assert_eq!(shape("cond_enc.spkr_enc.weight"), [768, 256]);
    assert!(!t3.contains_key("tfmr.h.12.ln_1.weight"));
    assert_eq!(t3.len(), 12 * 12 + 11);

    let official = ChatterboxConfig::default().t3;
    let cfg = official.with_checkpoint_shapes(t3).unwrap();
    assert_eq!(
        (cfg.gpt2.n_embd, cfg.gpt2.n_head, cfg.gpt2.n_layer),
        (768, 12, 12)
    );
    assert_eq!(cfg.hidden_size, 768);
    assert_eq!(
        (
            official.gpt2.n_embd,
            official.gpt2.n_head,
            official.gpt2.n_layer
        ),
        (1024, 16, 24)
    );
}

/// A nano-shaped T3 (12 layers, 768 wide, 12 heads) with random weights, its text
/// vocabulary cut to the tiny tokenizer's and its position table to 1024, beside the
/// tiny checkpoint's S3Gen and voice encoder, whose configuration keeps the official
/// T3's (GPT-2 medium) so that only the file can make it Nano.
#[test]
fn a_nano_shaped_t3_is_read_from_its_file_and_speaks() {
    let dir = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(dir.path()).unwrap();
    let override_path = dir.path().join(checkpoint::CONFIG_OVERRIDE);
    let mut cfg: ChatterboxConfig =
        serde_json::from_slice(&std::fs::read(&override_path).unwrap()).unwrap();
    cfg.t3 = ChatterboxConfig::default().t3;
    std::fs::write(&override_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    std::fs::remove_file(dir.path().join(T3_WEIGHTS)).unwrap();

    let mut manifest = CheckpointManifest::of(&NANO);
    manifest.retain(|file, _| file == NANO_T3_WEIGHTS);
    for (name, layout) in &mut manifest.files.get_mut(NANO_T3_WEIGHTS).unwrap().tensors {
        match name.as_str() {
            "tfmr.wte.weight" | "text_emb.weight" | "text_head.weight" => layout.shape[0] = 704,
            "tfmr.wpe.weight" => layout.shape[0] = 1024,
            _ => {}
        }
    }
    random_checkpoint(&manifest, dir.path(), 5).unwrap();

    let cfg = ChatterboxTurbo::config_for(dir.path(), &NANO).unwrap();
    let gpt2 = &cfg.t3.gpt2;
    assert_eq!((gpt2.n_embd, gpt2.n_head, gpt2.n_layer), (768, 12, 12));
    assert_eq!(
        (gpt2.n_positions, cfg.t3.text_tokens_dict_size),
        (1024, 704)
    );
    let model = ChatterboxTurbo::load(dir.path(), &NANO, &cfg, &Device::Cpu).unwrap();
    assert!(
        model.load_warnings().is_empty(),
        "{:?}",
        model.load_warnings()
    );
    let voice = model.builtin_voice().unwrap();
    let wave = model.synthesize("Hello there.", &voice, &short(3)).unwrap();
    assert!(wave.iter().any(|&s| s != 0.0), "silent output");
    assert!(wave.iter().all(|s| s.is_finite() && s.abs() <= 1.0));

    let err = ChatterboxTurbo::load(dir.path(), &TURBO, &cfg, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(T3_WEIGHTS) && !err.contains("s3gen"), "{err}");
}

#[test]
fn models_of_one_folder_share_all_but_t3() {
    let dir = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(dir.path()).unwrap();
    chatterbox::testing::write_tiny_nano_t3(dir.path()).unwrap();
    let turbo_cfg = ChatterboxTurbo::config_for(dir.path(), &TURBO).unwrap();
    let nano_cfg = ChatterboxTurbo::config_for(dir.path(), &NANO).unwrap();
    assert_eq!(turbo_cfg.t3.gpt2.n_layer, 2);
    assert_eq!(nano_cfg.t3.gpt2.n_layer, 3);
    let with_turbos_t3 = ChatterboxConfig {
        t3: turbo_cfg.t3.clone(),
        ..nano_cfg.clone()
    };
    assert_eq!(with_turbos_t3, turbo_cfg);

    let turbo = ChatterboxTurbo::load(dir.path(), &TURBO, &turbo_cfg, &Device::Cpu).unwrap();
    let nano = turbo
        .with_t3_of(dir.path(), &NANO, &nano_cfg, Precision::default())
        .unwrap();
    assert!(std::ptr::eq(turbo.s3gen(), nano.s3gen()));
    assert!(std::ptr::eq(turbo.voice_encoder(), nano.voice_encoder()));
    assert_eq!(nano.config().t3.gpt2.n_layer, 3);

    let voice = turbo.builtin_voice().unwrap();
    let alone = ChatterboxTurbo::load(dir.path(), &NANO, &nano_cfg, &Device::Cpu).unwrap();
    let spoken = nano.synthesize("Hello there.", &voice, &short(4)).unwrap();
    assert_eq!(
        spoken,
        alone.synthesize("Hello there.", &voice, &short(4)).unwrap()
    );
    assert_ne!(
        spoken,
        turbo.synthesize("Hello there.", &voice, &short(4)).unwrap()
    );
}
