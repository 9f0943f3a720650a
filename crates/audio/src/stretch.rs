//! Time-stretching that keeps pitch: WSOLA (waveform-similarity overlap-add, Verhelst and
//! Roelands 1993). Output frames are laid at a fixed hop; each is read from the input near
//! its nominal position `output position × speed`, shifted within a tolerance to the offset
//! whose waveform best continues the previous frame, so periods line up and no phase
//! jumps are heard.

/// Slowest and fastest accepted speeds (OpenAI's `speed` range).
pub const MIN_SPEED: f64 = 0.25;
pub const MAX_SPEED: f64 = 4.0;

/// Analysis frame: 40 ms, longer than two periods of the lowest voice pitch.
const FRAME_SECONDS: f64 = 0.040;
/// Largest shift from the nominal position: a quarter frame covers one pitch period.
const TOLERANCE_FRACTION: usize = 4;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("speed must be between {MIN_SPEED} and {MAX_SPEED}, got {0}")]
pub struct SpeedOutOfRange(pub f64);

/// Plays `samples` (mono, `sample_rate` Hz) `speed` times faster at the same pitch: the
/// output lasts `len / speed` samples.
pub fn stretch(samples: &[f32], sample_rate: u32, speed: f64) -> Result<Vec<f32>, SpeedOutOfRange> {
    if !(MIN_SPEED..=MAX_SPEED).contains(&speed) {
        return Err(SpeedOutOfRange(speed));
    }
    let output_len = (samples.len() as f64 / speed).round() as usize;
    if speed == 1.0 || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let frame = ((FRAME_SECONDS * f64::from(sample_rate)) as usize / 2 * 2).max(4);
    let hop = frame / 2;
    let tolerance = frame / TOLERANCE_FRACTION;
    // Periodic Hann at 50 % overlap sums to exactly one.
    let window: Vec<f32> = (0..frame)
        .map(|n| (0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / frame as f64).cos()) as f32)
        .collect();
    // Silence around the input so that every candidate frame is a plain slice.
    let margin = tolerance + frame;
    let mut padded = vec![0.0f32; margin + samples.len() + margin + frame];
    padded[margin..margin + samples.len()].copy_from_slice(samples);
    let frame_at = |start: usize| &padded[margin + start - tolerance..][..frame];

    let mut output = vec![0.0f32; output_len + frame];
    // The first frame is read from the start as is; `previous` is where the last laid frame
    // was read, shifted by `tolerance` so that candidates stay non-negative.
    let mut previous = tolerance;
    for (index, out_start) in (0..output_len).step_by(hop).enumerate() {
        let nominal = (out_start as f64 * speed).round() as usize;
        if index > 0 {
            // The previous frame's second half overlaps this frame's first half: pick the
            // start whose first half best matches what followed the previous frame's
            // first half in the input.
            let overlap = &frame_at(previous)[hop..];
            previous = (nominal..=nominal + 2 * tolerance)
                .map(|candidate| {
                    let similarity: f32 = overlap
                        .iter()
                        .zip(&frame_at(candidate)[..hop])
                        .map(|(a, b)| a * b)
                        .sum();
                    (candidate, similarity)
                })
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(candidate, _)| candidate)
                .expect("the tolerance range is not empty");
        }
        for ((out, &w), &x) in output[out_start..]
            .iter_mut()
            .zip(&window)
            .zip(frame_at(previous))
        {
            *out += w * x;
        }
    }
    // The first half frame has no frame before it to overlap with: it is the input itself.
    let head = hop.min(samples.len()).min(output_len);
    output[..head].copy_from_slice(&samples[..head]);
    output.truncate(output_len);
    Ok(output)
}
