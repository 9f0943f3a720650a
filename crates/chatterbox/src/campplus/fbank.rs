//! Kaldi log mel filter bank, as `torchaudio.compliance.kaldi.fbank` with the arguments
//! CAMPPlus uses: povey window, pre-emphasis 0.97, per-frame DC removal, FFT size rounded up
//! to a power of two, `snip_edges`, power spectrum, mel bins from 20 Hz to Nyquist, log with
//! a float32-epsilon floor, no dither, no energy column.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::config::FbankConfig;

const PREEMPHASIS: f64 = 0.97;
const LOW_FREQ_HZ: f64 = 20.0;
/// The povey window is a Hann window raised to this power.
const POVEY_EXPONENT: f64 = 0.85;

pub struct Fbank {
    window: Vec<f64>,
    window_shift: usize,
    fft_size: usize,
    fft: Arc<dyn Fft<f64>>,
    mel_banks: Vec<MelBank>,
}

impl Fbank {
    pub fn new(cfg: &FbankConfig, sample_rate: u32) -> candle_core::Result<Self> {
        if cfg.dither != 0.0 {
            candle_core::bail!("fbank: dither {} is not supported (only 0)", cfg.dither);
        }
        if cfg.num_mel_bins <= 3 {
            candle_core::bail!(
                "fbank: needs more than 3 mel bins, got {}",
                cfg.num_mel_bins
            );
        }
        let sample_rate = f64::from(sample_rate);
        // Same truncation as torchaudio: int(sample_frequency * ms * 0.001).
        let window_size = (sample_rate * cfg.frame_length_ms * 0.001) as usize;
        let window_shift = (sample_rate * cfg.frame_shift_ms * 0.001) as usize;
        if window_size < 2 || window_shift == 0 {
            candle_core::bail!(
                "fbank: frame length {} ms / shift {} ms too short at {sample_rate} Hz",
                cfg.frame_length_ms,
                cfg.frame_shift_ms
            );
        }
        let fft_size = window_size.next_power_of_two();
        let denom = (window_size - 1) as f64;
        let window = (0..window_size)
            .map(|n| {
                let hann = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / denom).cos();
                hann.powf(POVEY_EXPONENT)
            })
            .collect();
        Ok(Self {
            window,
            window_shift,
            fft_size,
            fft: FftPlanner::new().plan_fft_forward(fft_size),
            mel_banks: mel_banks(cfg.num_mel_bins, fft_size, sample_rate),
        })
    }

    pub fn num_mel_bins(&self) -> usize {
        self.mel_banks.len()
    }

    /// Log mel energies of a mono wave, shape `(frames, num_mel_bins)`.
    pub fn compute(&self, wave: &[f32]) -> candle_core::Result<Tensor> {
        let window_size = self.window.len();
        if wave.len() < window_size {
            candle_core::bail!(
                "fbank: wave of {} samples is shorter than one {window_size}-sample frame",
                wave.len()
            );
        }
        let frames = 1 + (wave.len() - window_size) / self.window_shift;
        let num_bins = self.num_mel_bins();
        let mut out = Vec::with_capacity(frames * num_bins);
        let mut buffer = vec![Complex::new(0.0, 0.0); self.fft_size];
        let mut frame = vec![0.0f64; window_size];
        let mut power = vec![0.0f64; self.fft_size / 2];
        for f in 0..frames {
            let start = f * self.window_shift;
            for (dst, &src) in frame.iter_mut().zip(&wave[start..start + window_size]) {
                *dst = f64::from(src);
            }
            let mean = frame.iter().sum::<f64>() / window_size as f64;
            frame.iter_mut().for_each(|s| *s -= mean);
            // Pre-emphasis backwards so each sample sees its unmodified predecessor;
            // the first sample uses itself (Kaldi's replicate padding).
            for j in (1..window_size).rev() {
                frame[j] -= PREEMPHASIS * frame[j - 1];
            }
            frame[0] -= PREEMPHASIS * frame[0];
            for (j, slot) in buffer.iter_mut().enumerate() {
                let sample = if j < window_size {
                    frame[j] * self.window[j]
                } else {
                    0.0
                };
                *slot = Complex::new(sample, 0.0);
            }
            self.fft.process(&mut buffer);
            for (p, c) in power.iter_mut().zip(&buffer) {
                *p = c.norm_sqr();
            }
            for bank in &self.mel_banks {
                let bins = &power[bank.first_bin..bank.first_bin + bank.weights.len()];
                let energy: f64 = bank.weights.iter().zip(bins).map(|(w, p)| w * p).sum();
                out.push(energy.max(f64::from(f32::EPSILON)).ln() as f32);
            }
        }
        Tensor::from_vec(out, (frames, num_bins), &Device::Cpu)
    }
}

/// One triangular filter: its non-zero weights, starting at FFT bin `first_bin`.
struct MelBank {
    first_bin: usize,
    weights: Vec<f64>,
}

/// Kaldi's mel scale: `1127 ln(1 + f / 700)`.
fn mel_scale(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

/// Triangular filters equally spaced on the mel scale between 20 Hz and Nyquist, evaluated
/// at the FFT bin frequencies `k * rate / fft_size` for `k < fft_size / 2` (the Nyquist bin
/// gets no weight). The filter edges and bin mels are computed in float32, as torchaudio
/// does: the narrow low filters are sensitive to that rounding.
fn mel_banks(num_bins: usize, fft_size: usize, sample_rate: f64) -> Vec<MelBank> {
    let nyquist = 0.5 * sample_rate;
    let mel_low = mel_scale(LOW_FREQ_HZ);
    let mel_delta = ((mel_scale(nyquist) - mel_low) / (num_bins + 1) as f64) as f32;
    let bin_width = (sample_rate / fft_size as f64) as f32;
    let edge = |i: usize| mel_low as f32 + i as f32 * mel_delta;
    let bin_mels: Vec<f32> = (0..fft_size / 2)
        .map(|k| 1127.0f32 * (1.0f32 + bin_width * k as f32 / 700.0f32).ln())
        .collect();
    (0..num_bins)
        .map(|b| {
            let (left, center, right) = (edge(b), edge(b + 1), edge(b + 2));
            let row: Vec<f64> = bin_mels
                .iter()
                .map(|&mel| {
                    let up = (mel - left) / (center - left);
                    let down = (right - mel) / (right - center);
                    f64::from(up.min(down).max(0.0))
                })
                .collect();
            let first_bin = row.iter().position(|&w| w > 0.0).unwrap_or(0);
            let end = row
                .iter()
                .rposition(|&w| w > 0.0)
                .map_or(first_bin, |i| i + 1);
            MelBank {
                first_bin,
                weights: row[first_bin..end].to_vec(),
            }
        })
        .collect()
}
