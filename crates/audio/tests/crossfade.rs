//! Chunk joining: lengths, untouched audio outside the seams, equal-power ramps, and a
//! continuous tone split anywhere rejoined without a loudness dip.

mod support;

use std::time::Duration;

use resonance_audio::crossfade::{DEFAULT_CROSSFADE, join};
use support::{rms, tone};

const RATE: u32 = 24_000;

#[test]
fn neighbours_overlap_by_the_crossfade_and_the_rest_is_untouched() {
    let first = vec![1.0f32; 6_000];
    let second = vec![-0.5f32; 5_000];
    let third = vec![0.25f32; 4_000];
    let joined = join(&[&first, &second, &third], RATE, DEFAULT_CROSSFADE);
    let overlap = 1_200; // 50 ms at 24 kHz
    assert_eq!(joined.len(), 6_000 + 5_000 + 4_000 - 2 * overlap);
    assert!(joined[..6_000 - overlap].iter().all(|&s| s == 1.0));
    let second_alone = &joined[6_000..6_000 + 5_000 - 2 * overlap];
    assert!(second_alone.iter().all(|&s| s == -0.5));
    assert!(
        joined[joined.len() - (4_000 - overlap)..]
            .iter()
            .all(|&s| s == 0.25)
    );
}

#[test]
fn the_ramps_are_equal_power() {
    let ones = vec![1.0f32; 2_400];
    let silence = vec![0.0f32; 2_400];
    let fade_out = join(&[&ones, &silence], RATE, DEFAULT_CROSSFADE);
    let fade_in = join(&[&silence, &ones], RATE, DEFAULT_CROSSFADE);
    let seam = 2_400 - 1_200;
    for n in seam..2_400 {
        let (out, inc) = (fade_out[n], fade_in[n]);
        assert!(
            (out * out + inc * inc - 1.0).abs() < 1e-5,
            "sample {n}: {out} {inc}"
        );
    }
    // Monotonic ramps from nearly full to nearly silent.
    assert!(fade_out[seam] > 0.999 && fade_out[2_399] < 0.002);
    assert!(fade_out[seam..2_400].windows(2).all(|w| w[1] < w[0]));
}

#[test]
fn uncorrelated_chunks_keep_their_loudness_across_the_seam() {
    // Two noise-like chunks (different inharmonic tone mixes) of equal level.
    let a: Vec<f32> = tone(RATE, 0.5, 313.0, 0.5)
        .iter()
        .zip(tone(RATE, 0.5, 1_717.0, 0.5))
        .map(|(x, y)| x + y)
        .collect();
    let b: Vec<f32> = tone(RATE, 0.5, 523.0, 0.5)
        .iter()
        .zip(tone(RATE, 0.5, 2_411.0, 0.5))
        .map(|(x, y)| x + y)
        .collect();
    let joined = join(&[&a, &b], RATE, Duration::from_millis(100));
    let seam = &joined[a.len() - 2_400..a.len()];
    let level = rms(seam) / rms(&a);
    assert!(
        (0.9..1.1).contains(&level),
        "seam level {level} of the chunks'"
    );
}

#[test]
fn short_chunks_shrink_the_overlap_and_empty_ones_vanish() {
    let long = vec![0.5f32; 3_000];
    let short = vec![0.5f32; 100];
    let joined = join(&[&long, &short, &[], &long], RATE, DEFAULT_CROSSFADE);
    assert_eq!(joined.len(), 3_000 + 100 - 100 + 3_000 - 1_200);
    assert!(join(&[], RATE, DEFAULT_CROSSFADE).is_empty());
    assert_eq!(join(&[&long], RATE, DEFAULT_CROSSFADE), long);
}
