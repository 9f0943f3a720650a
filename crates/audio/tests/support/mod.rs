//! Signals and measurements shared by the integration tests.
#![allow(dead_code)]

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

pub fn tone(rate: u32, seconds: f64, hz: f64, amplitude: f32) -> Vec<f32> {
    let len = (seconds * f64::from(rate)).round() as usize;
    (0..len)
        .map(|n| amplitude * (std::f64::consts::TAU * hz * n as f64 / f64::from(rate)).sin() as f32)
        .collect()
}

/// Frequency of the strongest spectral peak, in Hz (Hann window, parabolic interpolation
/// between bins).
pub fn dominant_frequency(samples: &[f32], rate: u32) -> f64 {
    let len = samples.len();
    let mut spectrum: Vec<Complex<f64>> = samples
        .iter()
        .enumerate()
        .map(|(n, &s)| {
            let window = 0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / len as f64).cos();
            Complex::new(f64::from(s) * window, 0.0)
        })
        .collect();
    FftPlanner::new()
        .plan_fft_forward(len)
        .process(&mut spectrum);
    let magnitudes: Vec<f64> = spectrum[..len / 2].iter().map(|c| c.norm()).collect();
    let peak = (1..magnitudes.len() - 1)
        .max_by(|&a, &b| magnitudes[a].total_cmp(&magnitudes[b]))
        .expect("signal long enough for a spectrum");
    let (left, centre, right) = (
        magnitudes[peak - 1].ln(),
        magnitudes[peak].ln(),
        magnitudes[peak + 1].ln(),
    );
    let offset = 0.5 * (left - right) / (left - 2.0 * centre + right);
    (peak as f64 + offset) * f64::from(rate) / len as f64
}

pub fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}
