//! Checking an uploaded voice recording and turning it into the canonical voice sample:
//! mono 16-bit WAV at [`SAMPLE_RATE`].

use std::sync::atomic::AtomicBool;

use crate::decode::{Bounds, DecodeError, decode_bounded};
use crate::loudness::integrated_loudness;
use crate::wav::encode_wav_pcm16;

/// Sample rate of stored voice samples (the speech model's rate).
pub const SAMPLE_RATE: u32 = 24_000;
/// Shortest accepted recording, in seconds.
pub const MIN_SECONDS: f64 = 10.0;
/// Longest accepted recording, in seconds.
pub const MAX_SECONDS: f64 = 300.0;
/// Recordings quieter than this integrated loudness (LUFS) hold no usable voice.
pub const SILENCE_LUFS: f64 = -55.0;

/// Why a recording cannot become a voice sample.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("the audio could not be decoded: {0}")]
    Undecodable(DecodeError),
    #[error("{0}")]
    UnsupportedSampleRate(DecodeError),
    #[error("the recording is {seconds:.1} s long; at least {MIN_SECONDS} s are needed")]
    TooShort { seconds: f64 },
    #[error("the recording is longer than {MAX_SECONDS} s")]
    TooLong,
    #[error("the recording is silent or too quiet to clone a voice from")]
    Silent,
}

/// A checked recording ready to store.
#[derive(Debug, Clone)]
pub struct VoiceSample {
    /// The canonical WAV file.
    pub wav: Vec<u8>,
    pub duration_secs: f64,
}

/// Decodes `bytes` (`content_type` helps recognize the container), checks its length and
/// level, and converts it to the canonical mono WAV at [`SAMPLE_RATE`]. Stops with
/// [`DecodeError::Cancelled`] soon after `cancelled` is raised.
pub fn prepare(
    bytes: &[u8],
    content_type: Option<&str>,
    cancelled: &AtomicBool,
) -> Result<VoiceSample, SampleError> {
    let bounds = Bounds {
        sample_rate: SAMPLE_RATE,
        max_secs: MAX_SECONDS,
        cancelled,
    };
    let audio = decode_bounded(bytes, content_type, &bounds).map_err(sample_error)?;
    let duration_secs = audio.duration_secs();
    if duration_secs < MIN_SECONDS {
        return Err(SampleError::TooShort {
            seconds: duration_secs,
        });
    }
    // At least 10 s of audio is always longer than one 400 ms loudness block.
    let loudness =
        integrated_loudness(&audio.samples, audio.sample_rate).map_err(|_| SampleError::Silent)?;
    if loudness < SILENCE_LUFS {
        return Err(SampleError::Silent);
    }
    Ok(VoiceSample {
        wav: encode_wav_pcm16(&audio.samples, SAMPLE_RATE),
        duration_secs,
    })
}

/// Why decoding an upload failed, in the terms of a voice sample.
pub fn sample_error(error: DecodeError) -> SampleError {
    match error {
        DecodeError::TooLong { .. } => SampleError::TooLong,
        e @ DecodeError::UnsupportedSampleRate { .. } => SampleError::UnsupportedSampleRate(e),
        other => SampleError::Undecodable(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, seconds: f64, amplitude: f32) -> Vec<f32> {
        let len = (seconds * f64::from(rate)) as usize;
        (0..len)
            .map(|n| amplitude * (std::f32::consts::TAU * 220.0 * n as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn a_clear_recording_becomes_mono_24k_wav() {
        let wav = encode_wav_pcm16(&tone(44_100, 12.0, 0.3), 44_100);
        let sample = prepare(&wav, Some("audio/wav"), &AtomicBool::new(false)).unwrap();
        assert!((sample.duration_secs - 12.0).abs() < 0.01);
        let spec = hound::WavReader::new(sample.wav.as_slice()).unwrap().spec();
        assert_eq!((spec.channels, spec.sample_rate), (1, SAMPLE_RATE));
        let stored = crate::decode(&sample.wav, None).unwrap();
        assert!((stored.duration_secs() - 12.0).abs() < 0.01);
    }

    #[test]
    fn refuses_short_long_silent_and_undecodable_input() {
        let short = encode_wav_pcm16(&tone(16_000, 9.5, 0.3), 16_000);
        assert!(matches!(
            prepare(&short, None, &AtomicBool::new(false)),
            Err(SampleError::TooShort { seconds }) if (seconds - 9.5).abs() < 0.01
        ));
        let long = encode_wav_pcm16(&tone(8_000, MAX_SECONDS + 1.0, 0.3), 8_000);
        assert!(matches!(
            prepare(&long, None, &AtomicBool::new(false)),
            Err(SampleError::TooLong)
        ));
        let silent = encode_wav_pcm16(&vec![0.0; 16_000 * 12], 16_000);
        assert!(matches!(
            prepare(&silent, None, &AtomicBool::new(false)),
            Err(SampleError::Silent)
        ));
        let hiss = encode_wav_pcm16(&tone(16_000, 12.0, 0.0005), 16_000);
        assert!(matches!(
            prepare(&hiss, None, &AtomicBool::new(false)),
            Err(SampleError::Silent)
        ));
        assert!(matches!(
            prepare(
                b"RIFF not really a wave file",
                Some("audio/wav"),
                &AtomicBool::new(false)
            ),
            Err(SampleError::Undecodable(_))
        ));
    }
}
