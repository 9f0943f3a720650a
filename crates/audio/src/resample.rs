//! Band-limited resampling between arbitrary integer rates: a Kaiser-windowed sinc,
//! polyphase for the reduced ratio `to / from = L / M`.
//!
//! The low-pass cutoff sits at 95 % of the lower Nyquist frequency, with 64 zero crossings
//! of the sinc on each side and a Kaiser beta for about 100 dB of stopband rejection: flat to
//! about 90 % of the lower Nyquist, fully attenuated from the lower Nyquist on. Samples
//! outside the input count as zero. Not bit-compatible with librosa/soxr.
//!
//! Ratios with few phases (`L` small enough) use one exact row of coefficients per phase.
//! Others (44 101 Hz, 200 003 Hz) tabulate [`INTERPOLATED_PHASES`] evenly spaced phases and
//! interpolate linearly between the two nearest, as libsamplerate's sinc converters do, so
//! that the cost stays linear in the signal's length for any pair of rates.
//!
//! [`resample_like_torchaudio`] reproduces `torchaudio.transforms.Resample` with its
//! defaults, for the places where Chatterbox resamples with torchaudio (S3Gen `embed_ref`).

/// Cutoff as a fraction of the lower of the two Nyquist frequencies.
const ROLLOFF: f64 = 0.95;
/// Sinc zero crossings on each side of the kernel centre.
const ZERO_CROSSINGS: f64 = 64.0;
/// Kaiser window shape: `0.1102 (A - 8.7)` for A = 100 dB of attenuation.
const KAISER_BETA: f64 = 10.06;
/// Largest table of coefficients kept in memory (16 MB); ratios needing more exact phases
/// interpolate between tabulated ones instead.
const MAX_TABLE_COEFFICIENTS: usize = 1 << 22;
/// Tabulated phases for interpolation: the error of linear interpolation falls with the
/// square of the spacing, well under the stopband at this density.
pub const INTERPOLATED_PHASES: u64 = 4096;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResampleError {
    #[error("sample rates must be positive (from {from_hz} Hz to {to_hz} Hz)")]
    ZeroRate { from_hz: u32, to_hz: u32 },
}

/// Rows of `taps` coefficients.
enum PhaseTable {
    /// Row `p` for an output `p / up` of a sample after an input sample.
    Exact(Vec<f32>),
    /// `phases + 1` rows, row `k` at `k / phases` of a sample.
    Interpolated { phases: u64, rows: Vec<f32> },
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
    table: PhaseTable,
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

fn dot(coefficients: &[f32], samples: &[f32]) -> f32 {
    coefficients.iter().zip(samples).map(|(c, x)| c * x).sum()
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
            table: PhaseTable::Exact(Vec::new()),
        };
        resampler.table = if (up as usize).saturating_mul(taps) <= MAX_TABLE_COEFFICIENTS {
            PhaseTable::Exact(
                (0..up)
                    .flat_map(|phase| resampler.taps_at(phase as f64 / up as f64))
                    .collect(),
            )
        } else {
            let phases = INTERPOLATED_PHASES.min((MAX_TABLE_COEFFICIENTS / taps) as u64 - 1);
            PhaseTable::Interpolated {
                phases,
                rows: (0..=phases)
                    .flat_map(|k| resampler.taps_at(k as f64 / phases as f64))
                    .collect(),
            }
        };
        Ok(resampler)
    }

    /// Input samples an output sample reaches on either side of its position.
    pub fn reach(&self) -> usize {
        self.radius + 1
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

    /// Coefficients for an output that falls `frac` of a sample after an input sample,
    /// normalized to unit DC gain.
    fn taps_at(&self, frac: f64) -> Vec<f32> {
        let raw: Vec<f64> = (0..self.taps)
            .map(|j| self.kernel(frac + self.radius as f64 - j as f64))
            .collect();
        let sum: f64 = raw.iter().sum();
        raw.iter().map(|&c| (c / sum) as f32).collect()
    }

    /// The output at `phase / up` of a sample after the first of `window` (`taps` inputs,
    /// or fewer at the signal's edges starting at tap `skip`).
    fn output_at(&self, phase: u64, skip: usize, window: &[f32]) -> f32 {
        let taps = self.taps;
        let range = skip..skip + window.len();
        match &self.table {
            PhaseTable::Exact(table) => {
                let row = &table[phase as usize * taps..][..taps];
                dot(&row[range], window)
            }
            PhaseTable::Interpolated { phases, rows } => {
                let at = phase as f64 / self.up as f64 * *phases as f64;
                let k = (at.floor() as usize).min(*phases as usize - 1);
                let weight = (at - k as f64) as f32;
                let below = &rows[k * taps..][..taps];
                let above = &rows[(k + 1) * taps..][..taps];
                (1.0 - weight) * dot(&below[range.clone()], window)
                    + weight * dot(&above[range], window)
            }
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
        self.outputs(samples, 0..self.output_len(samples.len()) as u64)
    }

    /// Output samples `range` of [`process`](Self::process)`(samples)`.
    fn outputs(&self, samples: &[f32], range: std::ops::Range<u64>) -> Vec<f32> {
        let len = samples.len() as i64;
        range
            .map(|n| {
                let position = n * self.down;
                let base = (position / self.up) as i64;
                let first = base - self.radius as i64;
                let lo = (-first).max(0) as usize;
                let hi = ((len - first).min(self.taps as i64)).max(0) as usize;
                if lo >= hi {
                    return 0.0;
                }
                let start = (first + lo as i64) as usize;
                self.output_at(position % self.up, lo, &samples[start..start + (hi - lo)])
            })
            .collect()
    }
}

/// Resamples a mono signal from `from_hz` to `to_hz`.
pub fn resample(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>, ResampleError> {
    Ok(Resampler::new(from_hz, to_hz)?.process(samples))
}

/// Resamples a signal arriving in pieces to exactly what [`Resampler::process`] gives for
/// the whole signal: an output sample is produced once the input it depends on has arrived,
/// and only the input still needed is kept.
pub struct StreamResampler {
    resampler: Option<Resampler>,
    /// Reduced ratio: `up` output samples per `down` input samples.
    up: u64,
    down: u64,
    /// Input samples kept on either side of an output sample.
    context: u64,
    /// Input not yet needed by emitted output; starts at absolute input index `pending_start`,
    /// a multiple of `down` so that it maps onto a whole output index.
    pending: Vec<f32>,
    pending_start: u64,
    emitted: u64,
}

impl StreamResampler {
    pub fn new(from_hz: u32, to_hz: u32) -> Result<Self, ResampleError> {
        let resampler = Resampler::new(from_hz, to_hz)?;
        Ok(Self {
            up: resampler.up,
            down: resampler.down,
            context: resampler.reach() as u64,
            resampler: (from_hz != to_hz).then_some(resampler),
            pending: Vec::new(),
            pending_start: 0,
            emitted: 0,
        })
    }

    fn input_end(&self) -> u64 {
        self.pending_start + self.pending.len() as u64
    }

    /// Adds input; returns the output that no later input changes.
    pub fn push(&mut self, samples: &[f32]) -> Vec<f32> {
        if self.resampler.is_none() {
            return samples.to_vec();
        }
        self.pending.extend_from_slice(samples);
        let complete = self.input_end().saturating_sub(self.context) * self.up / self.down;
        self.emit_until(complete)
    }

    /// The rest of the output, as if the input ended with zeros.
    pub fn finish(&mut self) -> Vec<f32> {
        let end = (self.input_end() * self.up).div_ceil(self.down);
        self.emit_until(end)
    }

    fn emit_until(&mut self, end: u64) -> Vec<f32> {
        let Some(resampler) = &self.resampler else {
            return Vec::new();
        };
        if end <= self.emitted {
            return Vec::new();
        }
        let first_output = self.pending_start / self.down * self.up;
        let ready = resampler.outputs(
            &self.pending,
            self.emitted - first_output..end - first_output,
        );
        self.emitted = end;
        let still_needed = (self.emitted * self.down / self.up).saturating_sub(self.context)
            / self.down
            * self.down;
        if still_needed > self.pending_start {
            self.pending
                .drain(..(still_needed - self.pending_start) as usize);
            self.pending_start = still_needed;
        }
        ready
    }
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
