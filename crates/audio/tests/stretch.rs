//! Time-stretching: the output lasts input / speed, a tone keeps its pitch and level, and
//! the splices are smooth (no sample-to-sample jump beyond what the tone itself makes).

mod support;

use resonance_audio::stretch::{SpeedOutOfRange, stretch};
use support::{dominant_frequency, rms, tone};

const RATE: u32 = 24_000;
const SPEEDS: [f64; 7] = [0.25, 0.5, 0.8, 1.25, 1.5, 2.0, 4.0];

/// A voiced-speech-like signal: 150 Hz fundamental with two weaker harmonics.
fn harmonic_tone(seconds: f64) -> Vec<f32> {
    let fundamental = tone(RATE, seconds, 150.0, 0.4);
    let second = tone(RATE, seconds, 300.0, 0.2);
    let third = tone(RATE, seconds, 450.0, 0.1);
    fundamental
        .iter()
        .zip(&second)
        .zip(&third)
        .map(|((a, b), c)| a + b + c)
        .collect()
}

fn middle(samples: &[f32]) -> &[f32] {
    &samples[samples.len() / 4..samples.len() * 3 / 4]
}

#[test]
fn duration_scales_by_one_over_speed() {
    let input = tone(RATE, 2.0, 220.0, 0.5);
    for speed in SPEEDS {
        let output = stretch(&input, RATE, speed).unwrap();
        let expected = input.len() as f64 / speed;
        assert!(
            (output.len() as f64 - expected).abs() <= 1.0,
            "speed {speed}: {} samples, expected {expected}",
            output.len()
        );
    }
}

#[test]
fn a_tone_keeps_its_pitch_and_level() {
    for hz in [110.0, 220.0, 1_000.0] {
        let input = tone(RATE, 2.0, hz, 0.5);
        let input_level = rms(middle(&input));
        for speed in SPEEDS {
            let output = stretch(&input, RATE, speed).unwrap();
            let frequency = dominant_frequency(middle(&output), RATE);
            assert!(
                (frequency / hz - 1.0).abs() < 0.005,
                "{hz} Hz at speed {speed} came out at {frequency} Hz"
            );
            let level = rms(middle(&output)) / input_level;
            assert!(
                (0.9..1.1).contains(&level),
                "{hz} Hz at speed {speed}: level {level}"
            );
        }
    }
}

#[test]
fn a_harmonic_signal_keeps_its_fundamental_without_clicks() {
    let input = harmonic_tone(2.0);
    let largest_step = |s: &[f32]| {
        s.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    };
    let input_step = largest_step(&input);
    for speed in SPEEDS {
        let output = stretch(&input, RATE, speed).unwrap();
        let frequency = dominant_frequency(middle(&output), RATE);
        assert!(
            (frequency - 150.0).abs() < 1.0,
            "speed {speed}: {frequency} Hz"
        );
        let step = largest_step(&output);
        assert!(
            step < 1.5 * input_step,
            "speed {speed}: jump {step} vs {input_step}"
        );
    }
}

#[test]
fn speed_one_is_the_identity_and_out_of_range_speeds_are_refused() {
    let input = harmonic_tone(0.5);
    assert_eq!(stretch(&input, RATE, 1.0).unwrap(), input);
    for speed in [0.2, 4.01, 0.0, -1.0, f64::NAN] {
        let error = stretch(&input, RATE, speed).unwrap_err();
        assert!(error.to_string().contains("between 0.25 and 4"), "{error}");
        assert!(matches!(error, SpeedOutOfRange(s) if s.is_nan() || s == speed));
    }
}

#[test]
fn short_and_empty_inputs_stretch_too() {
    assert!(stretch(&[], RATE, 2.0).unwrap().is_empty());
    let blip = tone(RATE, 0.01, 440.0, 0.5);
    assert_eq!(stretch(&blip, RATE, 0.5).unwrap().len(), 2 * blip.len());
}
