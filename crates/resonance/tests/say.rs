//! `resonance say` end to end on a tiny random-weight checkpoint laid out like
//! the official one (built from the reference's `turbo_e2e` fixture).

use std::path::Path;
use std::process::{Command, Output};

/// Samples per mel frame (S3Gen makes 2 mel frames per speech token).
const SAMPLES_PER_FRAME: usize = 480;

fn say(dir: &Path, model_dir: &Path, out: &str, seed: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resonance"))
        .current_dir(dir)
        .env_remove("RESONANCE_CONFIG")
        .args(["--data-dir", "data", "--model-dir"])
        .arg(model_dir)
        .args([
            "say",
            "Hello [chuckle] there.",
            "--out",
            out,
            "--seed",
            seed,
        ])
        .output()
        .unwrap()
}

fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    let samples = reader.into_samples::<i16>().map(Result::unwrap).collect();
    (spec, samples)
}

#[test]
fn say_writes_reproducible_24khz_speech_with_the_builtin_voice() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("tiny-model");
    chatterbox::testing::write_tiny_checkpoint(&model_dir).unwrap();

    let first = say(dir.path(), &model_dir, "a.wav", "7");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("a.wav"));
    let (spec, samples) = read_wav(&dir.path().join("a.wav"));
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (24_000, 1, 16)
    );
    // The built-in voice's prompt has 137 tokens and 275 mel frames, so N speech
    // tokens (3 of them appended silence) give 2 (137 + N) - 275 frames.
    assert_eq!(samples.len() % SAMPLES_PER_FRAME, 0, "{}", samples.len());
    let frames = samples.len() / SAMPLES_PER_FRAME;
    assert!(frames % 2 == 1 && frames >= 5, "{frames} frames");
    assert!(frames <= 2 * (137 + 1001 + 3) - 275, "{frames} frames");
    assert!(samples.iter().any(|&s| s != 0), "silent output");

    let again = say(dir.path(), &model_dir, "b.wav", "7");
    assert!(again.status.success());
    assert_eq!(read_wav(&dir.path().join("b.wav")).1, samples);
    let other = say(dir.path(), &model_dir, "c.wav", "8");
    assert!(other.status.success());
    assert_ne!(read_wav(&dir.path().join("c.wav")).1, samples);

    // `--out -` streams the same speech to standard output as a WAV of unknown length.
    let streamed = say(dir.path(), &model_dir, "-", "7");
    let err = String::from_utf8_lossy(&streamed.stderr);
    assert!(streamed.status.success(), "{err}");
    assert!(
        err.contains("streamed the speech to standard output"),
        "{err}"
    );
    assert_eq!(&streamed.stdout[..4], b"RIFF");
    assert_eq!(&streamed.stdout[36..40], b"data");
    let pcm: Vec<i16> = streamed.stdout[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(pcm, samples);
}

#[test]
fn say_without_a_model_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("empty");
    let output = say(dir.path(), &model_dir, "a.wav", "1");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("resonance model download"), "{err}");
    assert!(
        err.contains("/ResembleAI/chatterbox-turbo/resolve/main/t3_turbo_v1.safetensors"),
        "{err}"
    );
    assert!(err.contains(&model_dir.display().to_string()), "{err}");
    assert!(!dir.path().join("a.wav").exists());
}

#[test]
fn say_clones_the_voice_of_a_recording() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("tiny-model");
    chatterbox::testing::write_tiny_checkpoint(&model_dir).unwrap();
    // Six seconds of a voiced, amplitude-modulated 44.1 kHz signal.
    let rate = 44_100u32;
    let samples: Vec<f32> = (0..6 * rate)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let envelope = 0.5 + 0.5 * (std::f32::consts::TAU * 3.0 * t).sin();
            envelope
                * (0.3 * (std::f32::consts::TAU * 140.0 * t).sin()
                    + 0.1 * (std::f32::consts::TAU * 1100.0 * t).sin())
        })
        .collect();
    std::fs::write(
        dir.path().join("ref.wav"),
        resonance_audio::wav::encode_wav_pcm16(&samples, rate),
    )
    .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_resonance"))
        .current_dir(dir.path())
        .args(["--data-dir", "data", "--model-dir"])
        .arg(&model_dir)
        .args([
            "say",
            "Hello there.",
            "--voice-file",
            "ref.wav",
            "--out",
            "cloned.wav",
            "--seed",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (spec, cloned) = read_wav(&dir.path().join("cloned.wav"));
    assert_eq!((spec.sample_rate, spec.channels), (24_000, 1));
    assert!(cloned.iter().any(|&s| s != 0), "silent output");
    let builtin = say(dir.path(), &model_dir, "builtin.wav", "3");
    assert!(builtin.status.success());
    assert_ne!(
        read_wav(&dir.path().join("builtin.wav")).1,
        cloned,
        "the recording changed nothing"
    );

    std::fs::write(
        dir.path().join("short.wav"),
        resonance_audio::wav::encode_wav_pcm16(&samples[..rate as usize], rate),
    )
    .unwrap();
    let short = Command::new(env!("CARGO_BIN_EXE_resonance"))
        .current_dir(dir.path())
        .args(["--data-dir", "data", "--model-dir"])
        .arg(&model_dir)
        .args(["say", "Hi.", "--voice-file", "short.wav", "--out", "x.wav"])
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("5 s"),
        "{}",
        String::from_utf8_lossy(&short.stderr)
    );
}

#[test]
fn say_speaks_in_a_system_voice_of_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("tiny-model");
    chatterbox::testing::write_tiny_checkpoint(&model_dir).unwrap();
    let clip = resonance_testkit::audio::speech_like(12.0, 0.5, 9);
    std::fs::write(
        dir.path().join("aaron.wav"),
        resonance_audio::wav::encode_wav_pcm16(&clip, 24_000),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("voices.toml"),
        "[[voice]]\nfile = \"aaron.wav\"\nname = \"Aaron\"\ncategory = \"NARRATIVE\"\nlanguage = \"en-US\"\n",
    )
    .unwrap();
    let resonance = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_resonance"))
            .current_dir(dir.path())
            .env_remove("RESONANCE_CONFIG")
            .env_remove("DATABASE_URL")
            .args(["--data-dir", "data", "--model-dir"])
            .arg(&model_dir)
            .args(args)
            .output()
            .unwrap()
    };
    let imported = resonance(&[
        "voices",
        "import",
        "--system",
        "--speakers-consented",
        "voices.toml",
    ]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let spoken = resonance(&[
        "say",
        "Hi.",
        "--voice",
        "aaron",
        "--out",
        "aaron-says.wav",
        "--seed",
        "1",
    ]);
    assert!(
        spoken.status.success(),
        "{}",
        String::from_utf8_lossy(&spoken.stderr)
    );
    let (spec, samples) = read_wav(&dir.path().join("aaron-says.wav"));
    assert_eq!(spec.sample_rate, 24_000);
    assert!(samples.iter().any(|&s| s != 0), "silent output");

    let unknown = resonance(&["say", "Hi.", "--voice", "Nobody", "--out", "x.wav"]);
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(err.contains("Nobody") && err.contains("Aaron"), "{err}");
}
