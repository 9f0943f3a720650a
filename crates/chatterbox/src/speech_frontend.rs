//! Spectral front end of the 16 kHz speech models (S3Tokenizer, VoiceEncoder):
//! centred STFT power spectra and librosa's Slaney mel filter bank.

use std::f64::consts::PI;

use candle_core::{Result, bail};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// Periodic Hann window (`torch.hann_window(n)`, `scipy.signal.get_window("hann", n)`).
pub fn hann_window(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (0.5 - 0.5 * (2.0 * PI * i as f64 / n as f64).cos()) as f32)
        .collect()
}

/// `|STFT|^2` of `wav` with the window centred on every hop (`center=True`, reflect
/// padding by `n_fft / 2`), as `librosa.stft` / `torch.stft` compute it.
/// Returns `1 + len / hop` frames of `n_fft / 2 + 1` bins, frame-major.
pub fn power_spectrogram(
    wav: &[f32],
    n_fft: usize,
    hop: usize,
    window: &[f32],
) -> Result<Vec<Vec<f64>>> {
    let pad = n_fft / 2;
    if wav.len() <= pad {
        bail!(
            "audio too short: {} samples, the STFT needs more than {pad}",
            wav.len()
        );
    }
    if window.len() != n_fft {
        bail!("STFT window has {} samples, expected {n_fft}", window.len());
    }
    let len = wav.len() as isize;
    let padded: Vec<f64> = (-(pad as isize)..len + pad as isize)
        .map(|i| {
            let reflected = if i < 0 {
                -i
            } else if i >= len {
                2 * (len - 1) - i
            } else {
                i
            };
            f64::from(wav[reflected as usize])
        })
        .collect();
    let n_frames = 1 + wav.len() / hop;
    let fft = FftPlanner::<f64>::new().plan_fft_forward(n_fft);
    let mut buffer = vec![Complex::new(0.0, 0.0); n_fft];
    let mut frames = Vec::with_capacity(n_frames);
    for frame in 0..n_frames {
        let start = frame * hop;
        for (slot, (&x, &w)) in buffer
            .iter_mut()
            .zip(padded[start..start + n_fft].iter().zip(window))
        {
            *slot = Complex::new(x * f64::from(w), 0.0);
        }
        fft.process(&mut buffer);
        frames.push(buffer[..=n_fft / 2].iter().map(|c| c.norm_sqr()).collect());
    }
    Ok(frames)
}

/// `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)` with the defaults
/// (Slaney mel scale, Slaney area normalisation): `n_mels` rows of `n_fft / 2 + 1`.
pub fn slaney_mel_filters(
    sample_rate: f64,
    n_fft: usize,
    n_mels: usize,
    fmin: f64,
    fmax: f64,
) -> Vec<Vec<f32>> {
    let n_bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|i| i as f64 * sample_rate / n_fft as f64)
        .collect();
    let (mel_min, mel_max) = (hz_to_slaney_mel(fmin), hz_to_slaney_mel(fmax));
    let mel_freqs: Vec<f64> = (0..n_mels + 2)
        .map(|i| slaney_mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (n_mels + 1) as f64))
        .collect();
    (0..n_mels)
        .map(|m| {
            let (lo, centre, hi) = (mel_freqs[m], mel_freqs[m + 1], mel_freqs[m + 2]);
            let area_norm = 2.0 / (hi - lo);
            fft_freqs
                .iter()
                .map(|&f| {
                    let rising = (f - lo) / (centre - lo);
                    let falling = (hi - f) / (hi - centre);
                    (rising.min(falling).max(0.0) * area_norm) as f32
                })
                .collect()
        })
        .collect()
}

// Slaney's auditory-toolbox scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above.
const SLANEY_HZ_PER_MEL: f64 = 200.0 / 3.0;
const SLANEY_LOG_START_HZ: f64 = 1000.0;
const SLANEY_LOG_START_MEL: f64 = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL;

fn slaney_log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_slaney_mel(hz: f64) -> f64 {
    if hz >= SLANEY_LOG_START_HZ {
        SLANEY_LOG_START_MEL + (hz / SLANEY_LOG_START_HZ).ln() / slaney_log_step()
    } else {
        hz / SLANEY_HZ_PER_MEL
    }
}

fn slaney_mel_to_hz(mel: f64) -> f64 {
    if mel >= SLANEY_LOG_START_MEL {
        SLANEY_LOG_START_HZ * (slaney_log_step() * (mel - SLANEY_LOG_START_MEL)).exp()
    } else {
        mel * SLANEY_HZ_PER_MEL
    }
}

/// Applies a mel filter bank to a power spectrogram: `frames x n_mels`.
pub fn mel_spectrogram(power: &[Vec<f64>], filters: &[Vec<f32>]) -> Vec<Vec<f32>> {
    power
        .iter()
        .map(|frame| {
            filters
                .iter()
                .map(|filter| {
                    filter
                        .iter()
                        .zip(frame)
                        .map(|(&w, &p)| f64::from(w) * p)
                        .sum::<f64>() as f32
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_padding_and_frame_count_follow_centred_stft() {
        let wav: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.05).sin()).collect();
        let frames = power_spectrogram(&wav, 400, 160, &hann_window(400)).unwrap();
        assert_eq!(frames.len(), 1 + 1000 / 160);
        assert_eq!(frames[0].len(), 201);
        // A constant through a periodic Hann window of N: DC = N/2, bin 1 = -N/4, rest 0
        // (up to the window's f32 rounding).
        let dc = power_spectrogram(&[1.0; 800], 400, 160, &hann_window(400)).unwrap();
        assert!((dc[2][0] - 200.0f64.powi(2)).abs() < 1e-2);
        assert!((dc[2][1] - 100.0f64.powi(2)).abs() < 1e-2);
        assert!(dc[2][2..].iter().all(|&p| p < 1e-6));
    }

    #[test]
    fn short_audio_is_rejected() {
        let err = power_spectrogram(&[0.0; 200], 400, 160, &hann_window(400)).unwrap_err();
        assert!(err.to_string().contains("too short"));
    }

    #[test]
    fn slaney_scale_round_trips() {
        for hz in [0.0, 440.0, 1000.0, 3000.0, 8000.0] {
            assert!((slaney_mel_to_hz(hz_to_slaney_mel(hz)) - hz).abs() < 1e-9);
        }
    }
}
