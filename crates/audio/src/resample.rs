//! Band-limited resampling between arbitrary integer rates: a Kaiser-windowed sinc evaluated
//! exactly at every output position (polyphase for the reduced ratio `to / from = L / M`).
//!
//! The low-pass cutoff sits at 95 % of the lower Nyquist frequency, with 64 zero crossings
//! of the sinc on each side and a Kaiser beta for about 100 dB of stopband rejection: flat to
//! about 90 % of the lower Nyquist, fully attenuated from the lower Nyquist on. Samples
//! outside the input count as zero. Not bit-compatible with librosa/soxr.
//!
//! [`resample_like_torchaudio`] reproduces `torchaudio.transforms.Resample` with its
//! defaults, for the places where Chatterbox resamples with torchaudio (S3Gen `embed_ref`).

use std::borrow::Cow;

/// Cutoff as a fraction of the lower of the two Nyquist frequencies.
const ROLLOFF: f64 = 0.95;
/// Sinc zero crossings on each side of the kernel centre.
const ZERO_CROSSINGS: f64 = 64.0;
/// Kaiser window shape: `0.1102 (A - 8.7)` for A = 100 dB of attenuation.
const KAISER_BETA: f64 = 10.06;
/// Largest polyphase table kept in memory (coefficients); rarer ratios compute the kernel
/// per output sample instead.
const MAX_TABLE_COEFFICIENTS: usize = 1 << 22;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResampleError {
    #[error("sample rates must be positive (from {from_hz} Hz to {to_hz} Hz)")]
    ZeroRate { from_hz: u32, to_hz: u32 },
}

/// A resampler for one rate pair; reuse it for many signals at the same rates.
pub struct Resampler {
    /// Reduced ratio: `up` output samples for every `down` input samples.
    up: u64,
    down: u64,
    /// Kernel scale: cutoff relative to the input Nyquist frequency.
    scale: f64,
    /// Kernel support on each side of the centre, in input samples.
    half_width: f64,
    /// Taps per output sample; tap `j` reads input `base + j - radius`.
    taps: usize,
    radius: usize,
    /// `up` rows of `taps` coefficients, one row per fractional phase.
    table: Option<Vec<f32>>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Modified Bessel function of the first kind, order zero (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half_sq = x * x / 4.0;
    for k in 1..200 {
        term *= half_sq / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

impl Resampler {
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, ResampleError> {
        if from_hz == 0 || to_hz == 0 {
            return Err(ResampleError::ZeroRate { from_hz, to_hz });
        }
        let divisor = gcd(u64::from(from_hz), u64::from(to_hz));
        let up = u64::from(to_hz) / divisor;
        let down = u64::from(from_hz) / divisor;
        let scale = ROLLOFF * (up as f64 / down as f64).min(1.0);
        let half_width = ZERO_CROSSINGS / scale;
        let radius = half_width.ceil() as usize;
        let taps = 2 * radius + 1;
        let mut resampler = Self {
            up,
            down,
            scale,
            half_width,
            taps,
            radius,
            table: None,
        };
        if (up as usize).saturating_mul(taps) <= MAX_TABLE_COEFFICIENTS {
            let table = (0..up)
                .flat_map(|phase| resampler.phase_taps(phase))
                .collect();
            resampler.table = Some(table);
        }
        Ok(resampler)
    }

    /// Windowed-sinc kernel at `t` input samples from the centre.
    fn kernel(&self, t: f64) -> f64 {
        let r = t / self.half_width;
        if r.abs() >= 1.0 {
            return 0.0;
        }
        let x = std::f64::consts::PI * self.scale * t;
        let sinc = if x == 0.0 { 1.0 } else { x.sin() / x };
        let window = bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / bessel_i0(KAISER_BETA);
        sinc * window
    }

    /// Coefficients for an output that falls `phase / up` of a sample after an input
    /// sample, normalized to unit DC gain.
    fn phase_taps(&self, phase: u64) -> Vec<f32> {
        let frac = phase as f64 / self.up as f64;
        let raw: Vec<f64> = (0..self.taps)
            .map(|j| self.kernel(frac + self.radius as f64 - j as f64))
            .collect();
        let sum: f64 = raw.iter().sum();
        raw.iter().map(|&c| (c / sum) as f32).collect()
    }

    fn taps_for(&self, phase: u64) -> Cow<'_, [f32]> {
        match &self.table {
            Some(table) => {
                let start = phase as usize * self.taps;
                Cow::Borrowed(&table[start..start + self.taps])
            }
            None => Cow::Owned(self.phase_taps(phase)),
        }
    }

    /// Output length for `input_len` samples: `ceil(input_len * to / from)`.
    pub fn output_len(&self, input_len: usize) -> usize {
        (input_len as u64 * self.up).div_ceil(self.down) as usize
    }

    pub fn process(&self, samples: &[f32]) -> Vec<f32> {
        if self.up == self.down {
            return samples.to_vec();
        }
        let len = samples.len() as i64;
        (0..self.output_len(samples.len()) as u64)
            .map(|n| {
                let position = n * self.down;
                let base = (position / self.up) as i64;
                let coefficients = self.taps_for(position % self.up);
                let first = base - self.radius as i64;
                let lo = (-first).max(0) as usize;
                let hi = ((len - first).min(self.taps as i64)).max(0) as usize;
                if lo >= hi {
                    return 0.0;
                }
                let start = (first + lo as i64) as usize;
                coefficients[lo..hi]
                    .iter()
                    .zip(&samples[start..start + (hi - lo)])
                    .map(|(c, x)| c * x)
                    .sum()
            })
            .collect()
    }
}

/// Resamples a mono signal from `from_hz` to `to_hz`.
pub fn resample(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>, ResampleError> {
    Ok(Resampler::new(from_hz, to_hz)?.process(samples))
}

/// `torchaudio.transforms.Resample(from_hz, to_hz)` with its defaults (`sinc_interp_hann`,
/// `lowpass_filter_width` 6, `rolloff` 0.99), sample for sample: a Hann-windowed sinc at
/// 99 % of the lower Nyquist, zero padding, output length `ceil(len * to / from)`.
pub fn resample_like_torchaudio(
    samples: &[f32],
    from_hz: u32,
    to_hz: u32,
) -> Result<Vec<f32>, ResampleError> {
    const LOWPASS_FILTER_WIDTH: f64 = 6.0;
    const ROLLOFF: f64 = 0.99;
    if from_hz == 0 || to_hz == 0 {
        return Err(ResampleError::ZeroRate { from_hz, to_hz });
    }
    if from_hz == to_hz {
        return Ok(samples.to_vec());
    }
    let divisor = gcd(u64::from(from_hz), u64::from(to_hz));
    let orig = (u64::from(from_hz) / divisor) as usize;
    let new = (u64::from(to_hz) / divisor) as usize;
    let base_freq = orig.min(new) as f64 * ROLLOFF;
    let width = (LOWPASS_FILTER_WIDTH * orig as f64 / base_freq).ceil() as usize;
    let kernel_len = 2 * width + orig;
    // kernels[phase][k] for input offsets k - width (in input samples) around output
    // phase / new; the phase term is computed in float32 as torch does.
    let kernels: Vec<Vec<f32>> = (0..new)
        .map(|phase| {
            let phase_offset = f64::from(-(phase as f32) / new as f32);
            (0..kernel_len)
                .map(|k| {
                    let idx = (k as f64 - width as f64) / orig as f64;
                    let t = ((phase_offset + idx) * base_freq)
                        .clamp(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH);
                    let window = (t * std::f64::consts::PI / LOWPASS_FILTER_WIDTH / 2.0)
                        .cos()
                        .powi(2);
                    let t = t * std::f64::consts::PI;
                    let sinc = if t == 0.0 { 1.0 } else { t.sin() / t };
                    (sinc * window * base_freq / orig as f64) as f32
                })
                .collect()
        })
        .collect();
    let output_len = (samples.len() as u64 * new as u64).div_ceil(orig as u64) as usize;
    // Input index of kernel tap 0 for output block i is i * orig - width (zero outside).
    let at = |index: i64| -> f64 {
        usize::try_from(index)
            .ok()
            .and_then(|i| samples.get(i))
            .map_or(0.0, |&s| f64::from(s))
    };
    Ok((0..output_len)
        .map(|n| {
            let (block, phase) = (n / new, n % new);
            let start = (block * orig) as i64 - width as i64;
            kernels[phase]
                .iter()
                .enumerate()
                .map(|(k, &c)| f64::from(c) * at(start + k as i64))
                .sum::<f64>() as f32
        })
        .collect())
}
