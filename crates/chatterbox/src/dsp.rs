//! Short-time Fourier transforms and mel filter banks shared by the model.
//!
//! - [`Stft`]: `torch.stft` / `torch.istft` (and `librosa.stft`) semantics: a window
//!   shorter than `n_fft` is zero-padded to the centre, `center` pads `n_fft / 2` on
//!   both sides (reflect or zeros), output is one-sided. FFTs run in f64 (rustfft).
//! - [`MelFilterBank`]: `librosa.filters.mel` (Slaney or HTK scale, Slaney or no
//!   area normalization), bit-compatible with librosa's float32 result.
//! - [`Mel24k`]: the 80-bin 24 kHz log-mel of S3Gen prompt features
//!   (`s3gen/utils/mel.py` `mel_spectrogram`).

use std::f64::consts::PI;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::config::Mel24kConfig;

/// Hann window of `len` samples (`torch.hann_window`; `periodic` is torch's default
/// and `scipy.signal.get_window("hann", n, fftbins=True)`).
pub fn hann_window(len: usize, periodic: bool) -> Vec<f32> {
    let denominator = if periodic { len } else { len.saturating_sub(1) };
    if denominator == 0 {
        return vec![1.0; len];
    }
    (0..len)
        .map(|n| (0.5 - 0.5 * (2.0 * PI * n as f64 / denominator as f64).cos()) as f32)
        .collect()
}

/// How `center = true` pads the signal by `n_fft / 2` on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// Mirror without repeating the edge sample (`torch` `"reflect"`).
    Reflect,
    /// Zeros (`"constant"`).
    Constant,
}

/// Pads `signal` by `left` and `right` samples.
pub fn pad(
    signal: &[f32],
    left: usize,
    right: usize,
    mode: PadMode,
) -> candle_core::Result<Vec<f32>> {
    let n = signal.len();
    let mut out = Vec::with_capacity(n + left + right);
    match mode {
        PadMode::Reflect => {
            if left >= n || right >= n {
                candle_core::bail!(
                    "signal too short: reflect padding of {left}/{right} samples needs more samples than that, got {n}"
                );
            }
            out.extend((1..=left).rev().map(|i| signal[i]));
            out.extend_from_slice(signal);
            out.extend((1..=right).map(|i| signal[n - 1 - i]));
        }
        PadMode::Constant => {
            out.resize(left, 0.0);
            out.extend_from_slice(signal);
            out.resize(n + left + right, 0.0);
        }
    }
    Ok(out)
}

/// A one-sided complex spectrogram, frequency-major: bin `f` of frame `t` is at
/// `f * n_frames + t` (the layout of `torch.stft`'s `(n_freqs, n_frames)` output).
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    pub n_freqs: usize,
    pub n_frames: usize,
    pub re: Vec<f64>,
    pub im: Vec<f64>,
}

impl Spectrum {
    /// `sqrt(re^2 + im^2 + eps)` per bin (eps = 0 gives `abs`).
    pub fn magnitude(&self, eps: f64) -> Vec<f64> {
        self.re
            .iter()
            .zip(&self.im)
            .map(|(r, i)| (r * r + i * i + eps).sqrt())
            .collect()
    }

    /// `re^2 + im^2` per bin.
    pub fn power(&self) -> Vec<f64> {
        self.re
            .iter()
            .zip(&self.im)
            .map(|(r, i)| r * r + i * i)
            .collect()
    }
}

/// A short-time Fourier transform and its inverse with fixed parameters.
pub struct Stft {
    n_fft: usize,
    hop_length: usize,
    /// The analysis window zero-padded to `n_fft`.
    window: Vec<f64>,
    center: bool,
    pad_mode: PadMode,
    forward_fft: Arc<dyn Fft<f64>>,
    inverse_fft: Arc<dyn Fft<f64>>,
}

impl Stft {
    /// `window` may be shorter than `n_fft` (its `win_length`); it is then centred
    /// in `n_fft` zeros as torch and librosa do.
    pub fn new(
        n_fft: usize,
        hop_length: usize,
        window: &[f32],
        center: bool,
        pad_mode: PadMode,
    ) -> candle_core::Result<Self> {
        if n_fft == 0 || hop_length == 0 {
            candle_core::bail!(
                "stft needs n_fft > 0 and hop_length > 0 (got {n_fft}, {hop_length})"
            );
        }
        if window.is_empty() || window.len() > n_fft {
            candle_core::bail!(
                "stft window of {} samples must be non-empty and at most n_fft = {n_fft}",
                window.len()
            );
        }
        let left = (n_fft - window.len()) / 2;
        let mut padded = vec![0.0; n_fft];
        for (slot, w) in padded[left..].iter_mut().zip(window) {
            *slot = f64::from(*w);
        }
        let mut planner = FftPlanner::new();
        Ok(Self {
            n_fft,
            hop_length,
            window: padded,
            center,
            pad_mode,
            forward_fft: planner.plan_fft_forward(n_fft),
            inverse_fft: planner.plan_fft_inverse(n_fft),
        })
    }

    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    pub fn hop_length(&self) -> usize {
        self.hop_length
    }

    /// Bins of the one-sided spectrum: `n_fft / 2 + 1`.
    pub fn n_freqs(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// `torch.stft(signal, n_fft, hop, window=..., center, pad_mode, normalized=False,
    /// onesided=True)`.
    pub fn forward(&self, signal: &[f32]) -> candle_core::Result<Spectrum> {
        let padded;
        let signal = if self.center {
            let half = self.n_fft / 2;
            padded = pad(signal, half, half, self.pad_mode)?;
            &padded[..]
        } else {
            signal
        };
        if signal.len() < self.n_fft {
            candle_core::bail!(
                "stft input of {} samples is shorter than n_fft = {}",
                signal.len(),
                self.n_fft
            );
        }
        let n_frames = 1 + (signal.len() - self.n_fft) / self.hop_length;
        let n_freqs = self.n_freqs();
        let mut re = vec![0.0; n_freqs * n_frames];
        let mut im = vec![0.0; n_freqs * n_frames];
        let mut buffer = vec![Complex::new(0.0, 0.0); self.n_fft];
        let mut scratch = vec![Complex::new(0.0, 0.0); self.forward_fft.get_inplace_scratch_len()];
        for t in 0..n_frames {
            let frame = &signal[t * self.hop_length..t * self.hop_length + self.n_fft];
            for ((slot, x), w) in buffer.iter_mut().zip(frame).zip(&self.window) {
                *slot = Complex::new(f64::from(*x) * w, 0.0);
            }
            self.forward_fft
                .process_with_scratch(&mut buffer, &mut scratch);
            for (f, bin) in buffer[..n_freqs].iter().enumerate() {
                re[f * n_frames + t] = bin.re;
                im[f * n_frames + t] = bin.im;
            }
        }
        Ok(Spectrum {
            n_freqs,
            n_frames,
            re,
            im,
        })
    }

    /// `torch.istft(spectrum, n_fft, hop, window=..., center, normalized=False,
    /// onesided=True)`: inverse real FFT per frame (the imaginary parts of the DC and
    /// Nyquist bins are ignored), windowed overlap-add divided by the summed squared
    /// window, `n_fft / 2` trimmed at both ends when centred.
    pub fn inverse(&self, spectrum: &Spectrum) -> candle_core::Result<Vec<f32>> {
        let n_freqs = self.n_freqs();
        if spectrum.n_freqs != n_freqs {
            candle_core::bail!(
                "istft expects {n_freqs} frequency bins for n_fft = {}, got {}",
                self.n_fft,
                spectrum.n_freqs
            );
        }
        let n_frames = spectrum.n_frames;
        if n_frames == 0 {
            candle_core::bail!("istft needs at least one frame");
        }
        let full_len = self.n_fft + self.hop_length * (n_frames - 1);
        let mut signal = vec![0.0f64; full_len];
        let mut envelope = vec![0.0f64; full_len];
        let mut buffer = vec![Complex::new(0.0, 0.0); self.n_fft];
        let mut scratch = vec![Complex::new(0.0, 0.0); self.inverse_fft.get_inplace_scratch_len()];
        let nyquist = self.n_fft.is_multiple_of(2).then_some(self.n_fft / 2);
        for t in 0..n_frames {
            for f in 0..n_freqs {
                let im = if f == 0 || Some(f) == nyquist {
                    0.0
                } else {
                    spectrum.im[f * n_frames + t]
                };
                let bin = Complex::new(spectrum.re[f * n_frames + t], im);
                buffer[f] = bin;
                if f != 0 && Some(f) != nyquist {
                    buffer[self.n_fft - f] = bin.conj();
                }
            }
            self.inverse_fft
                .process_with_scratch(&mut buffer, &mut scratch);
            let start = t * self.hop_length;
            for (i, (bin, w)) in buffer.iter().zip(&self.window).enumerate() {
                signal[start + i] += bin.re / self.n_fft as f64 * w;
                envelope[start + i] += w * w;
            }
        }
        let (start, end) = if self.center {
            (self.n_fft / 2, full_len - self.n_fft / 2)
        } else {
            (0, full_len)
        };
        signal[start..end]
            .iter()
            .zip(&envelope[start..end])
            .map(|(x, env)| {
                if env.abs() > 1e-11 {
                    Ok((x / env) as f32)
                } else {
                    Err(candle_core::Error::Msg(
                        "istft window overlap-add is zero somewhere (window/hop not invertible)"
                            .into(),
                    ))
                }
            })
            .collect()
    }
}

/// Area normalization of mel filters (`librosa.filters.mel(norm=...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MelNorm {
    /// Triangles of peak 1.
    None,
    /// Divide each triangle by its width in Hz (`norm="slaney"`, librosa's default).
    Slaney,
}

/// Parameters of `librosa.filters.mel`.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilterConfig {
    pub sample_rate: f64,
    pub n_fft: usize,
    pub n_mels: usize,
    pub fmin: f64,
    /// Upper edge in Hz; `None` means `sample_rate / 2`.
    pub fmax: Option<f64>,
    /// HTK mel scale instead of Slaney's (librosa's `htk=False` default).
    pub htk: bool,
    pub norm: MelNorm,
}

impl MelFilterConfig {
    /// librosa's defaults: Slaney scale and normalization, `fmin = 0`, `fmax = sr / 2`.
    pub fn librosa(sample_rate: f64, n_fft: usize, n_mels: usize) -> Self {
        Self {
            sample_rate,
            n_fft,
            n_mels,
            fmin: 0.0,
            fmax: None,
            htk: false,
            norm: MelNorm::Slaney,
        }
    }
}

/// A mel filter bank, row-major `(n_mels, n_fft / 2 + 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilterBank {
    pub n_mels: usize,
    pub n_freqs: usize,
    pub weights: Vec<f32>,
}

const SLANEY_HZ_PER_MEL: f64 = 200.0 / 3.0;
const SLANEY_LOG_START_HZ: f64 = 1000.0;

fn slaney_log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// `librosa.hz_to_mel`.
pub fn hz_to_mel(hz: f64, htk: bool) -> f64 {
    if htk {
        return 2595.0 * (1.0 + hz / 700.0).log10();
    }
    let log_start_mel = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL;
    if hz >= SLANEY_LOG_START_HZ {
        log_start_mel + (hz / SLANEY_LOG_START_HZ).ln() / slaney_log_step()
    } else {
        hz / SLANEY_HZ_PER_MEL
    }
}

/// `librosa.mel_to_hz`.
pub fn mel_to_hz(mel: f64, htk: bool) -> f64 {
    if htk {
        return 700.0 * (10f64.powf(mel / 2595.0) - 1.0);
    }
    let log_start_mel = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL;
    if mel >= log_start_mel {
        SLANEY_LOG_START_HZ * (slaney_log_step() * (mel - log_start_mel)).exp()
    } else {
        SLANEY_HZ_PER_MEL * mel
    }
}

impl MelFilterBank {
    /// `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk, norm)` in float32.
    pub fn new(cfg: &MelFilterConfig) -> candle_core::Result<Self> {
        let fmax = cfg.fmax.unwrap_or(cfg.sample_rate / 2.0);
        if cfg.n_fft == 0 || cfg.n_mels == 0 || !(0.0..fmax).contains(&cfg.fmin) {
            candle_core::bail!(
                "invalid mel filter bank: n_fft {}, n_mels {}, fmin {} Hz, fmax {fmax} Hz",
                cfg.n_fft,
                cfg.n_mels,
                cfg.fmin
            );
        }
        let n_freqs = cfg.n_fft / 2 + 1;
        // np.fft.rfftfreq(n_fft, 1 / sr), rounding included.
        let bin_hz = 1.0 / (cfg.n_fft as f64 * (1.0 / cfg.sample_rate));
        let fft_freqs: Vec<f64> = (0..n_freqs).map(|k| k as f64 * bin_hz).collect();
        // n_mels + 2 band edges equally spaced on the mel scale (np.linspace).
        let (min_mel, max_mel) = (hz_to_mel(cfg.fmin, cfg.htk), hz_to_mel(fmax, cfg.htk));
        let n_edges = cfg.n_mels + 2;
        let step = (max_mel - min_mel) / (n_edges - 1) as f64;
        let edges: Vec<f64> = (0..n_edges)
            .map(|i| {
                let mel = if i == n_edges - 1 {
                    max_mel
                } else {
                    min_mel + i as f64 * step
                };
                mel_to_hz(mel, cfg.htk)
            })
            .collect();
        let mut weights = Vec::with_capacity(cfg.n_mels * n_freqs);
        for m in 0..cfg.n_mels {
            let (lower_width, upper_width) = (edges[m + 1] - edges[m], edges[m + 2] - edges[m + 1]);
            let enorm = match cfg.norm {
                MelNorm::Slaney => 2.0 / (edges[m + 2] - edges[m]),
                MelNorm::None => 1.0,
            };
            weights.extend(fft_freqs.iter().map(|&f| {
                let rising = (f - edges[m]) / lower_width;
                let falling = (edges[m + 2] - f) / upper_width;
                // librosa stores the triangle in float32, then scales it in float64.
                let triangle = rising.min(falling).max(0.0) as f32;
                (f64::from(triangle) * enorm) as f32
            }));
        }
        Ok(Self {
            n_mels: cfg.n_mels,
            n_freqs,
            weights,
        })
    }

    /// Mel energies `(n_mels, n_frames)` of a frequency-major `(n_freqs, n_frames)`
    /// spectrogram, accumulated in f64.
    pub fn apply(&self, spectrogram: &[f64], n_frames: usize) -> candle_core::Result<Vec<f64>> {
        if spectrogram.len() != self.n_freqs * n_frames {
            candle_core::bail!(
                "mel filter bank expects {} x {n_frames} bins, got {}",
                self.n_freqs,
                spectrogram.len()
            );
        }
        let mut out = vec![0.0f64; self.n_mels * n_frames];
        for (m, row) in self.weights.chunks_exact(self.n_freqs).enumerate() {
            let out_row = &mut out[m * n_frames..(m + 1) * n_frames];
            for (f, &w) in row.iter().enumerate() {
                if w == 0.0 {
                    continue;
                }
                let w = f64::from(w);
                let bins = &spectrogram[f * n_frames..(f + 1) * n_frames];
                for (acc, x) in out_row.iter_mut().zip(bins) {
                    *acc += w * x;
                }
            }
        }
        Ok(out)
    }

    /// The weights as a `(n_mels, n_freqs)` f32 tensor.
    pub fn to_tensor(&self, device: &Device) -> candle_core::Result<Tensor> {
        Tensor::from_slice(&self.weights, (self.n_mels, self.n_freqs), device)
    }
}

/// Floor of the magnitude inside the square root (`sqrt(re^2 + im^2 + 1e-9)`).
const MEL_24K_MAGNITUDE_EPS: f64 = 1e-9;
/// Floor of the mel energy before the natural log.
const MEL_24K_LOG_FLOOR: f64 = 1e-5;

/// The S3Gen prompt-feature mel (`s3gen/utils/mel.py` `mel_spectrogram`, from
/// Matcha-TTS): reflect-pad `(n_fft - hop) / 2` on both sides, STFT with a periodic
/// Hann window and `center = false`, magnitude `sqrt(|X|^2 + 1e-9)`, Slaney mel filter
/// bank, `ln(max(mel, 1e-5))`. `floor(L / hop)` frames for `L` samples.
pub struct Mel24k {
    stft: Stft,
    filters: MelFilterBank,
    pad: usize,
}

impl Mel24k {
    pub fn new(cfg: &Mel24kConfig) -> candle_core::Result<Self> {
        if cfg.hop_size > cfg.n_fft {
            candle_core::bail!("mel_24k hop {} exceeds n_fft {}", cfg.hop_size, cfg.n_fft);
        }
        let window = hann_window(cfg.win_size, true);
        let stft = Stft::new(
            cfg.n_fft,
            cfg.hop_size,
            &window,
            cfg.center,
            PadMode::Reflect,
        )?;
        let filters = MelFilterBank::new(&MelFilterConfig {
            sample_rate: f64::from(cfg.sampling_rate),
            n_fft: cfg.n_fft,
            n_mels: cfg.num_mels,
            fmin: cfg.fmin,
            fmax: Some(cfg.fmax),
            htk: false,
            norm: MelNorm::Slaney,
        })?;
        Ok(Self {
            stft,
            filters,
            pad: (cfg.n_fft - cfg.hop_size) / 2,
        })
    }

    pub fn filters(&self) -> &MelFilterBank {
        &self.filters
    }

    /// Log-mel `(n_mels, n_frames)` of one wave, row-major.
    pub fn compute(&self, wave: &[f32]) -> candle_core::Result<(Vec<f32>, usize)> {
        let padded = pad(wave, self.pad, self.pad, PadMode::Reflect)?;
        let spectrum = self.stft.forward(&padded)?;
        let magnitude = spectrum.magnitude(MEL_24K_MAGNITUDE_EPS);
        let mel = self.filters.apply(&magnitude, spectrum.n_frames)?;
        let log_mel = mel
            .iter()
            .map(|&m| m.max(MEL_24K_LOG_FLOOR).ln() as f32)
            .collect();
        Ok((log_mel, spectrum.n_frames))
    }

    /// Log-mel `(B, n_mels, T)` of waves `(B, L)` or `(L,)` (f32 samples in [-1, 1]).
    pub fn forward(&self, wave: &Tensor) -> candle_core::Result<Tensor> {
        let wave = match wave.rank() {
            1 => wave.unsqueeze(0)?,
            2 => wave.clone(),
            r => candle_core::bail!("mel_24k expects a (L) or (B, L) wave, got rank {r}"),
        };
        let rows: Vec<Vec<f32>> = wave.to_dtype(candle_core::DType::F32)?.to_vec2()?;
        let mut data = Vec::new();
        let mut n_frames = 0;
        for row in &rows {
            let (mel, frames) = self.compute(row)?;
            data.extend(mel);
            n_frames = frames;
        }
        Tensor::from_vec(
            data,
            (rows.len(), self.filters.n_mels, n_frames),
            wave.device(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_and_symmetric_hann() {
        let periodic = hann_window(4, true);
        assert_eq!(periodic, vec![0.0, 0.5, 1.0, 0.5]);
        let symmetric = hann_window(5, false);
        assert_eq!(symmetric, vec![0.0, 0.5, 1.0, 0.5, 0.0]);
    }

    #[test]
    fn reflect_pad_mirrors_without_the_edge() {
        let padded = pad(&[1.0, 2.0, 3.0, 4.0], 2, 3, PadMode::Reflect).unwrap();
        assert_eq!(padded, vec![3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0]);
        assert!(pad(&[1.0, 2.0], 2, 0, PadMode::Reflect).is_err());
        let zeros = pad(&[1.0], 1, 2, PadMode::Constant).unwrap();
        assert_eq!(zeros, vec![0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn stft_of_a_cosine_peaks_at_its_bin() {
        let n_fft = 64;
        let signal: Vec<f32> = (0..512)
            .map(|n| (2.0 * PI * 8.0 * n as f64 / n_fft as f64).cos() as f32)
            .collect();
        let stft = Stft::new(n_fft, 16, &hann_window(n_fft, true), true, PadMode::Reflect).unwrap();
        let spec = stft.forward(&signal).unwrap();
        assert_eq!((spec.n_freqs, spec.n_frames), (33, 1 + 512 / 16));
        let magnitude = spec.magnitude(0.0);
        let frame = spec.n_frames / 2;
        let column: Vec<f64> = (0..spec.n_freqs)
            .map(|f| magnitude[f * spec.n_frames + frame])
            .collect();
        let peak = column
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(peak, 8);
        // A periodic Hann window of n samples has sum n / 2: the bin holds n / 4.
        assert!((column[8] - n_fft as f64 / 4.0).abs() < 1e-5);
    }

    #[test]
    fn istft_inverts_stft() {
        let signal: Vec<f32> = (0..1000)
            .map(|n| ((n * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        for (n_fft, hop, win) in [(16, 4, 16), (400, 160, 400), (512, 128, 400)] {
            let stft =
                Stft::new(n_fft, hop, &hann_window(win, true), true, PadMode::Reflect).unwrap();
            let back = stft.inverse(&stft.forward(&signal).unwrap()).unwrap();
            let expected_len = hop * (signal.len() / hop);
            assert_eq!(back.len(), expected_len, "n_fft {n_fft}");
            let err = back
                .iter()
                .zip(&signal)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 1e-5, "n_fft {n_fft}: max err {err}");
        }
    }

    #[test]
    fn mel_scales_round_trip() {
        for hz in [0.0, 300.0, 1000.0, 4321.0, 12000.0] {
            for htk in [false, true] {
                assert!((mel_to_hz(hz_to_mel(hz, htk), htk) - hz).abs() < 1e-6);
            }
        }
        // Slaney: linear below 1 kHz (15 mels), logarithmic above; HTK value from librosa.
        assert!((hz_to_mel(1000.0, false) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(1000.0, true) - 999.985_537_139_6).abs() < 1e-9);
    }

    #[test]
    fn slaney_filters_have_unit_area_per_hz() {
        let cfg = MelFilterConfig::librosa(16000.0, 400, 40);
        let bank = MelFilterBank::new(&cfg).unwrap();
        assert_eq!((bank.n_mels, bank.n_freqs), (40, 201));
        let hz_per_bin = 16000.0 / 400.0;
        // Each Slaney triangle integrates to ~1 over Hz: sum(w) * bin width ~ 1.
        for row in bank.weights.chunks_exact(bank.n_freqs).skip(5) {
            let area: f64 = row.iter().map(|&w| f64::from(w) * hz_per_bin).sum();
            assert!((area - 1.0).abs() < 0.1, "area {area}");
        }
        let unnormalized = MelFilterBank::new(&MelFilterConfig {
            norm: MelNorm::None,
            ..cfg
        })
        .unwrap();
        let peak = unnormalized.weights.iter().fold(0.0f32, |a, &b| a.max(b));
        assert!(peak <= 1.0 && peak > 0.9);
    }
}
