//! Integrated loudness against pyloudnorm 0.2.0 (the reference's meter).
//!
//! Expected values were computed with `/work/ref-venv/bin/python` (numpy 1.26.4,
//! scipy 1.17.1, as installed with chatterbox-tts 0.1.7) on the same signals,
//! generated in float64 and cast to float32 exactly as below:
//! `ln.Meter(rate).integrated_loudness(x)` and `10 ** ((-27 - L) / 20)` for the gain.

use resonance_audio::loudness::{LoudnessError, integrated_loudness, normalize_to};

/// Agreement with pyloudnorm, in LU (it sums float32 squares; we sum in f64).
const LUFS_TOLERANCE: f64 = 1e-5;

fn sine(rate: u32, seconds: f64, hz: f64, amplitude: f64) -> Vec<f32> {
    let n = (f64::from(rate) * seconds) as usize;
    (0..n)
        .map(|i| {
            (amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
                as f32
        })
        .collect()
}

/// Uniform noise in [-amplitude, amplitude) from the LCG `s = 1664525 s + 1013904223 mod 2^32`.
fn lcg_noise(n: usize, seed: u64, amplitude: f64) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = (state * 1_664_525 + 1_013_904_223) % (1 << 32);
            (amplitude * (state as f64 / 4_294_967_296.0 * 2.0 - 1.0)) as f32
        })
        .collect()
}

/// Eight harmonics of 140 Hz with a 4 Hz envelope: 1.5 s at 0.2, then 0.5 s 40 dB
/// quieter, repeating (the quiet parts fall under the relative gate).
fn speech_like(rate: u32, seconds: f64) -> Vec<f32> {
    let n = (f64::from(rate) * seconds) as usize;
    let tau = 2.0 * std::f64::consts::PI;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let voice: f64 = (1..9)
                .map(|k| (tau * 140.0 * k as f64 * t).sin() / k as f64)
                .sum();
            let envelope = 0.5 * (1.0 + (tau * 4.0 * t).sin());
            let level = if t % 2.0 < 1.5 { 0.2 } else { 0.002 };
            (level * envelope * voice) as f32
        })
        .collect()
}

fn assert_lufs(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= LUFS_TOLERANCE,
        "{what}: {actual} LUFS, pyloudnorm says {expected}"
    );
}

#[test]
fn sine_1khz_at_48k_matches_pyloudnorm() {
    let x = sine(48_000, 3.0, 1000.0, 0.5);
    assert_lufs(
        integrated_loudness(&x, 48_000).unwrap(),
        -9.065615904683206,
        "1 kHz sine",
    );
}

#[test]
fn low_sine_at_24k_matches_pyloudnorm() {
    let x = sine(24_000, 2.5, 100.0, 0.25);
    assert_lufs(
        integrated_loudness(&x, 24_000).unwrap(),
        -16.915149973696487,
        "100 Hz sine",
    );
}

#[test]
fn noise_at_16k_matches_pyloudnorm() {
    let x = lcg_noise((16_000.0 * 5.05) as usize, 12345, 0.3);
    assert_lufs(
        integrated_loudness(&x, 16_000).unwrap(),
        -12.563057273409594,
        "noise",
    );
}

#[test]
fn gated_speech_like_signal_matches_pyloudnorm() {
    let x = speech_like(24_000, 6.0);
    assert_lufs(
        integrated_loudness(&x, 24_000).unwrap(),
        -20.97159013540419,
        "speech-like",
    );
}

#[test]
fn normalize_to_applies_the_reference_gain_and_reaches_the_target() {
    let mut x = speech_like(24_000, 6.0);
    let gain = normalize_to(&mut x, 24_000, -27.0).unwrap();
    assert!((gain - 0.49955062512191545).abs() < 1e-5, "gain {gain}");
    assert_lufs(
        integrated_loudness(&x, 24_000).unwrap(),
        -27.0,
        "normalized",
    );
}

#[test]
fn silence_is_minus_infinity_and_left_unchanged() {
    let mut x = vec![0.0f32; 24_000];
    assert_eq!(integrated_loudness(&x, 24_000).unwrap(), f64::NEG_INFINITY);
    assert_eq!(normalize_to(&mut x, 24_000, -27.0).unwrap(), 1.0);
    assert!(x.iter().all(|&s| s == 0.0));
}

#[test]
fn shorter_than_one_block_is_an_error() {
    let x = vec![0.1f32; 9_599];
    assert_eq!(
        integrated_loudness(&x, 24_000),
        Err(LoudnessError::TooShort {
            samples: 9_599,
            sample_rate: 24_000
        })
    );
    assert_eq!(
        integrated_loudness(&x, 0),
        Err(LoudnessError::ZeroSampleRate)
    );
}
