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
    let mut joiner = Joiner::new(sample_rate, crossfade);
    for chunk in chunks {
        joiner.push(chunk);
    }
    joiner.into_samples()
}

/// [`join`] one chunk at a time, telling after each chunk which samples are final (no later
/// chunk's crossfade reaches them), so that they can be streamed while later chunks are
/// still being synthesized. The final samples, then [`Joiner::pending`], make exactly what
/// [`join`] returns.
pub struct Joiner {
    overlap: usize,
    joined: Vec<f32>,
    /// How many samples `push` has already handed out.
    released: usize,
    /// No chunk follows the one pushed last: nothing is held back for a crossfade.
    last_chunk: bool,
}

impl Joiner {
    pub fn new(sample_rate: u32, crossfade: Duration) -> Self {
        Self {
            overlap: (crossfade.as_secs_f64() * f64::from(sample_rate)).round() as usize,
            joined: Vec::new(),
            released: 0,
            last_chunk: false,
        }
    }

    /// Says that the next chunk pushed is the last, so that its samples are final as they
    /// come (it still fades in from the chunk before).
    pub fn next_chunk_is_last(&mut self) {
        self.last_chunk = true;
    }

    /// Appends `chunk` and returns the samples that became final with it.
    pub fn push(&mut self, chunk: &[f32]) -> &[f32] {
        let fade = self.overlap.min(self.joined.len()).min(chunk.len());
        let seam = self.joined.len() - fade;
        for (n, (out, &incoming)) in self.joined[seam..]
            .iter_mut()
            .zip(&chunk[..fade])
            .enumerate()
        {
            // Quarter-period ramps sampled at segment midpoints, symmetric about the seam.
            let phase = std::f32::consts::FRAC_PI_2 * (n as f32 + 0.5) / fade as f32;
            *out = *out * phase.cos() + incoming * phase.sin();
        }
        self.joined.extend_from_slice(&chunk[fade..]);
        self.release()
    }

    /// Appends `piece` to the chunk pushed last, with no crossfade (a chunk arriving in
    /// pieces), and returns the samples that became final with it.
    pub fn extend(&mut self, piece: &[f32]) -> &[f32] {
        self.joined.extend_from_slice(piece);
        self.release()
    }

    fn release(&mut self) -> &[f32] {
        // A later chunk fades into at most the last `overlap` samples.
        let held = if self.last_chunk { 0 } else { self.overlap };
        let settled = self.joined.len().saturating_sub(held);
        let start = self.released.min(settled);
        self.released = self.released.max(settled);
        &self.joined[start..settled]
    }

    /// The samples not yet handed out: final once no chunk follows.
    pub fn pending(&self) -> &[f32] {
        &self.joined[self.released..]
    }

    /// The whole joined audio.
    pub fn into_samples(self) -> Vec<f32> {
        self.joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(len: usize, offset: f32) -> Vec<f32> {
        (0..len).map(|i| offset + i as f32 * 1e-3).collect()
    }

    #[test]
    fn released_samples_and_the_pending_tail_equal_the_whole_join() {
        // Chunks shorter and longer than the 1200-sample overlap at 24 kHz.
        let chunks = [
            ramp(5000, 0.1),
            ramp(300, -0.2),
            ramp(4000, 0.3),
            ramp(900, 0.0),
        ];
        let slices: Vec<&[f32]> = chunks.iter().map(Vec::as_slice).collect();
        let whole = join(&slices, 24_000, DEFAULT_CROSSFADE);

        let mut joiner = Joiner::new(24_000, DEFAULT_CROSSFADE);
        let mut streamed = Vec::new();
        for chunk in &chunks {
            streamed.extend_from_slice(joiner.push(chunk));
        }
        streamed.extend_from_slice(joiner.pending());
        assert_eq!(streamed, whole);
        assert_eq!(joiner.into_samples(), whole);
        assert_eq!(whole.len(), 5000 + 300 + 4000 + 900 - 300 - 1200 - 900);
    }

    #[test]
    fn a_chunk_in_pieces_joins_as_the_whole_chunk() {
        let chunks = [ramp(5000, 0.1), ramp(4000, 0.3)];
        let slices: Vec<&[f32]> = chunks.iter().map(Vec::as_slice).collect();
        let whole = join(&slices, 24_000, DEFAULT_CROSSFADE);

        let mut joiner = Joiner::new(24_000, DEFAULT_CROSSFADE);
        let mut streamed = joiner.push(&chunks[0][..700]).to_vec();
        streamed.extend_from_slice(joiner.extend(&chunks[0][700..]));
        streamed.extend_from_slice(joiner.push(&chunks[1][..3000]));
        streamed.extend_from_slice(joiner.extend(&chunks[1][3000..]));
        streamed.extend_from_slice(joiner.pending());
        assert_eq!(streamed, whole);
    }

    #[test]
    fn the_last_chunk_is_released_as_it_comes() {
        let chunks = [ramp(5000, 0.1), ramp(4000, 0.3)];
        let slices: Vec<&[f32]> = chunks.iter().map(Vec::as_slice).collect();
        let whole = join(&slices, 24_000, DEFAULT_CROSSFADE);

        let mut joiner = Joiner::new(24_000, DEFAULT_CROSSFADE);
        let mut streamed = joiner.push(&chunks[0]).to_vec();
        joiner.next_chunk_is_last();
        streamed.extend_from_slice(joiner.push(&chunks[1][..2000]));
        assert_eq!(streamed.len(), 5000 + 2000 - 1200);
        streamed.extend_from_slice(joiner.extend(&chunks[1][2000..]));
        assert!(joiner.pending().is_empty());
        assert_eq!(streamed, whole);

        // A text of one chunk: nothing is held back at all.
        let mut joiner = Joiner::new(24_000, DEFAULT_CROSSFADE);
        joiner.next_chunk_is_last();
        assert_eq!(joiner.push(&ramp(960, 0.0)).len(), 960);
    }

    #[test]
    fn the_first_chunk_is_released_up_to_the_overlap() {
        let mut joiner = Joiner::new(24_000, DEFAULT_CROSSFADE);
        assert_eq!(joiner.push(&ramp(5000, 0.0)).len(), 5000 - 1200);
        assert_eq!(joiner.pending().len(), 1200);
    }
}
