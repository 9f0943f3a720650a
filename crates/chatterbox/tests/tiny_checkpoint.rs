//! Loading a checkpoint folder laid out like the official one (tiny random
//! weights from the reference's `turbo_e2e` fixture) and speaking with its
//! built-in voice.

use candle_core::Device;
use chatterbox::tts::{ChatterboxTurbo, SynthesisOptions};

/// Samples per mel frame (S3Gen makes 2 mel frames per speech token).
const SAMPLES_PER_FRAME: usize = 480;

#[test]
fn a_tiny_checkpoint_speaks_reproducibly_with_its_builtin_voice() {
    let dir = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(dir.path()).unwrap();
    let cfg = ChatterboxTurbo::config_for(dir.path()).unwrap();
    assert_eq!(cfg.t3.hidden_size, 64);
    let model = ChatterboxTurbo::load(dir.path(), &cfg, &Device::Cpu).unwrap();
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
    let cfg = ChatterboxTurbo::config_for(dir.path()).unwrap();
    let err = ChatterboxTurbo::load(dir.path(), &cfg, &Device::Cpu)
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
