//! Joining separately synthesized chunks (long texts are synthesized sentence by sentence)
//! with a short equal-power crossfade, so the seams neither click nor dip in loudness.

use std::time::Duration;

/// The usual overlap between chunks.
pub const DEFAULT_CROSSFADE: Duration = Duration::from_millis(50);

/// Concatenates `chunks` (mono, `sample_rate` Hz), overlapping each neighbouring pair by
/// `crossfade` (less where a chunk is shorter): the earlier chunk fades out with a cosine
/// while the next fades in with a sine, so the summed power of uncorrelated signals stays
/// constant across the seam.
pub fn join(chunks: &[&[f32]], sample_rate: u32, crossfade: Duration) -> Vec<f32> {
    let overlap = (crossfade.as_secs_f64() * f64::from(sample_rate)).round() as usize;
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut joined = Vec::with_capacity(total);
    for chunk in chunks {
        let fade = overlap.min(joined.len()).min(chunk.len());
        let seam = joined.len() - fade;
        for (n, (out, &incoming)) in joined[seam..].iter_mut().zip(&chunk[..fade]).enumerate() {
            // Quarter-period ramps sampled at segment midpoints, symmetric about the seam.
            let phase = std::f32::consts::FRAC_PI_2 * (n as f32 + 0.5) / fade as f32;
            *out = *out * phase.cos() + incoming * phase.sin();
        }
        joined.extend_from_slice(&chunk[fade..]);
    }
    joined
}
