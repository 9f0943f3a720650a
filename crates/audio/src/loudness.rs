//! ITU-R BS.1770-4 integrated loudness of a mono signal, computed exactly as `pyloudnorm`
//! (`Meter(rate).integrated_loudness`, K-weighting from the RBJ cookbook at the input rate)
//! and loudness normalization as Chatterbox's `norm_loudness`.

/// Gating block length in seconds.
const BLOCK_SECONDS: f64 = 0.4;
/// Hop between gating blocks as a fraction of the block (75 % overlap).
const BLOCK_STEP: f64 = 1.0 - 0.75;
const ABSOLUTE_GATE_LUFS: f64 = -70.0;
const RELATIVE_GATE_LU: f64 = -10.0;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LoudnessError {
    #[error("sample rate must be positive")]
    ZeroSampleRate,
    #[error(
        "audio of {samples} samples is shorter than one {BLOCK_SECONDS} s gating block at {sample_rate} Hz"
    )]
    TooShort { samples: usize, sample_rate: u32 },
}

/// A biquad normalized so that `a0 = 1`: `[b0, b1, b2]`, `[a1, a2]`.
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

impl Biquad {
    /// RBJ high shelf (`pyloudnorm` stage 1: +4 dB above 1500 Hz, Q = 1/sqrt 2).
    fn high_shelf(gain_db: f64, q: f64, fc: f64, rate: f64) -> Self {
        let a = 10f64.powf(gain_db / 40.0);
        let w0 = 2.0 * std::f64::consts::PI * (fc / rate);
        let alpha = w0.sin() / (2.0 * q);
        let cos = w0.cos();
        let sqrt_a_alpha = 2.0 * a.sqrt() * alpha;
        let b0 = a * ((a + 1.0) + (a - 1.0) * cos + sqrt_a_alpha);
        let b1 = -2.0 * a * ((a - 1.0) + (a + 1.0) * cos);
        let b2 = a * ((a + 1.0) + (a - 1.0) * cos - sqrt_a_alpha);
        let a0 = (a + 1.0) - (a - 1.0) * cos + sqrt_a_alpha;
        let a1 = 2.0 * ((a - 1.0) - (a + 1.0) * cos);
        let a2 = (a + 1.0) - (a - 1.0) * cos - sqrt_a_alpha;
        Self::normalized([b0, b1, b2], [a0, a1, a2])
    }

    /// RBJ high pass (`pyloudnorm` stage 2: 38 Hz, Q = 0.5).
    fn high_pass(q: f64, fc: f64, rate: f64) -> Self {
        let w0 = 2.0 * std::f64::consts::PI * (fc / rate);
        let alpha = w0.sin() / (2.0 * q);
        let cos = w0.cos();
        let b0 = (1.0 + cos) / 2.0;
        let b1 = -(1.0 + cos);
        let a0 = 1.0 + alpha;
        let a1 = -2.0 * cos;
        let a2 = 1.0 - alpha;
        Self::normalized([b0, b1, b0], [a0, a1, a2])
    }

    fn normalized(b: [f64; 3], a: [f64; 3]) -> Self {
        Self {
            b: b.map(|v| v / a[0]),
            a: [a[1] / a[0], a[2] / a[0]],
        }
    }

    /// `scipy.signal.lfilter` (direct form II transposed) in f64. The result is stored as
    /// f32, as pyloudnorm writes each stage back into the float32 input array.
    fn apply(&self, signal: &mut [f32]) {
        let (mut z0, mut z1) = (0.0f64, 0.0f64);
        for s in signal.iter_mut() {
            let x = f64::from(*s);
            let y = self.b[0] * x + z0;
            z0 = self.b[1] * x - self.a[0] * y + z1;
            z1 = self.b[2] * x - self.a[1] * y;
            *s = y as f32;
        }
    }
}

fn block_loudness(mean_square: f64) -> f64 {
    -0.691 + 10.0 * mean_square.log10()
}

/// Gated integrated loudness in LUFS of a mono signal; `-inf` when every block is below
/// the absolute gate (silence). Needs at least one 400 ms block of audio.
pub fn integrated_loudness(samples: &[f32], sample_rate: u32) -> Result<f64, LoudnessError> {
    if sample_rate == 0 {
        return Err(LoudnessError::ZeroSampleRate);
    }
    let rate = f64::from(sample_rate);
    if (samples.len() as f64) < BLOCK_SECONDS * rate {
        return Err(LoudnessError::TooShort {
            samples: samples.len(),
            sample_rate,
        });
    }
    let mut weighted = samples.to_vec();
    Biquad::high_shelf(4.0, 1.0 / 2f64.sqrt(), 1500.0, rate).apply(&mut weighted);
    Biquad::high_pass(0.5, 38.0, rate).apply(&mut weighted);

    // Block bounds use pyloudnorm's float expressions (truncated) so they land on the same
    // samples; the last block may run past the end and is still divided by the full length.
    let duration = samples.len() as f64 / rate;
    let num_blocks =
        ((duration - BLOCK_SECONDS) / (BLOCK_SECONDS * BLOCK_STEP)).round_ties_even() as usize + 1;
    let mean_squares: Vec<f64> = (0..num_blocks)
        .map(|j| {
            let start = (BLOCK_SECONDS * (j as f64 * BLOCK_STEP) * rate) as usize;
            let end = (BLOCK_SECONDS * (j as f64 * BLOCK_STEP + 1.0) * rate) as usize;
            let block = &weighted[start.min(weighted.len())..end.min(weighted.len())];
            let energy: f64 = block.iter().map(|&s| f64::from(s * s)).sum();
            energy / (BLOCK_SECONDS * rate)
        })
        .collect();
    let loudness: Vec<f64> = mean_squares.iter().map(|&z| block_loudness(z)).collect();

    let gated_mean = |keep: &dyn Fn(f64) -> bool| {
        let kept: Vec<f64> = mean_squares
            .iter()
            .zip(&loudness)
            .filter(|&(_, &l)| keep(l))
            .map(|(&z, _)| z)
            .collect();
        (!kept.is_empty()).then(|| kept.iter().sum::<f64>() / kept.len() as f64)
    };
    let Some(above_absolute) = gated_mean(&|l| l >= ABSOLUTE_GATE_LUFS) else {
        return Ok(f64::NEG_INFINITY);
    };
    let relative_gate = block_loudness(above_absolute) + RELATIVE_GATE_LU;
    let gated = gated_mean(&|l| l > relative_gate && l > ABSOLUTE_GATE_LUFS).unwrap_or(0.0);
    Ok(block_loudness(gated))
}

/// Scales `samples` in place so that their integrated loudness becomes `target_lufs` and
/// returns the linear gain applied. Silent input (loudness `-inf`) is left unchanged and
/// the gain is 1, as in the reference's `norm_loudness`.
pub fn normalize_to(
    samples: &mut [f32],
    sample_rate: u32,
    target_lufs: f64,
) -> Result<f64, LoudnessError> {
    let loudness = integrated_loudness(samples, sample_rate)?;
    let gain = 10f64.powf((target_lufs - loudness) / 20.0);
    if !gain.is_finite() || gain <= 0.0 {
        return Ok(1.0);
    }
    let gain_f32 = gain as f32;
    samples.iter_mut().for_each(|s| *s *= gain_f32);
    Ok(gain)
}
