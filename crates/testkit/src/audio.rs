//! Audio fixtures made at test time: a speech-like signal (a gliding harmonic voice with
//! syllable-rate loudness changes and breath noise), encoded in each upload format. WAV,
//! MP3, FLAC, Ogg Opus and AAC (ADTS) come from Resonance's own encoders; Ogg Vorbis, M4A
//! and WebM (what Chromium's recorder produces) from Debian's `ffmpeg`, which `.ci/run`
//! installs.

use std::process::Command;

use resonance_audio::encode::SOURCE_RATE;
use resonance_audio::wav::encode_wav_pcm16;
use resonance_audio::{OutputFormat, encode};

/// Every container a voice upload may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadFormat {
    Wav,
    Mp3,
    Flac,
    OggVorbis,
    OggOpus,
    Aac,
    M4a,
    WebmOpus,
}

impl UploadFormat {
    pub const ALL: [UploadFormat; 8] = [
        Self::Wav,
        Self::Mp3,
        Self::Flac,
        Self::OggVorbis,
        Self::OggOpus,
        Self::Aac,
        Self::M4a,
        Self::WebmOpus,
    ];

    /// The Content-Type a browser or client sends with it.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Mp3 => "audio/mpeg",
            Self::Flac => "audio/flac",
            Self::OggVorbis | Self::OggOpus => "audio/ogg",
            Self::Aac => "audio/aac",
            Self::M4a => "audio/mp4",
            Self::WebmOpus => "audio/webm;codecs=opus",
        }
    }
}

/// `seconds` of a speech-like signal at [`SOURCE_RATE`], peak about `level`. `seed` varies
/// the pitch contour so that different fixtures differ.
pub fn speech_like(seconds: f64, level: f32, seed: u32) -> Vec<f32> {
    let rate = f64::from(SOURCE_RATE);
    let len = (seconds * rate).round() as usize;
    let mut phase = 0.0f64;
    let mut noise_state = 0x9E37_79B9u32 ^ seed;
    (0..len)
        .map(|n| {
            let t = n as f64 / rate;
            let pitch = 120.0 + 10.0 * f64::from(seed % 7) + 30.0 * (t * 1.3).sin();
            phase += std::f64::consts::TAU * pitch / rate;
            let voiced: f64 = (1..=8)
                .map(|h| (phase * f64::from(h)).sin() / f64::from(h))
                .sum();
            // Syllables at about 4 per second.
            let envelope = 0.5 + 0.5 * (std::f64::consts::TAU * 4.0 * t).sin();
            noise_state = noise_state
                .wrapping_mul(1_664_525)
                .wrapping_add(1_013_904_223);
            let noise = f64::from(noise_state >> 8) / f64::from(1u32 << 24) - 0.5;
            (f64::from(level) * (0.45 * voiced * envelope + 0.05 * noise)) as f32
        })
        .collect()
}

/// `samples` at [`SOURCE_RATE`] encoded as `format`.
pub fn encode_as(samples: &[f32], format: UploadFormat) -> Vec<u8> {
    match format {
        // Recorders commonly write 48 kHz; the upload path must resample.
        UploadFormat::Wav => {
            let at_48k = resonance_audio::resample::resample(samples, SOURCE_RATE, 48_000)
                .expect("positive rates");
            encode_wav_pcm16(&at_48k, 48_000)
        }
        UploadFormat::Mp3 => encode(samples, OutputFormat::from_name("mp3_44100_128").unwrap()),
        UploadFormat::Flac => encode(samples, OutputFormat::from_name("flac").unwrap()),
        UploadFormat::OggOpus => encode(samples, OutputFormat::from_name("opus").unwrap()),
        UploadFormat::Aac => encode(samples, OutputFormat::from_name("aac").unwrap()),
        UploadFormat::OggVorbis => ffmpeg(samples, &["-c:a", "libvorbis"], "ogg"),
        UploadFormat::M4a => ffmpeg(samples, &["-c:a", "aac"], "m4a"),
        UploadFormat::WebmOpus => ffmpeg(samples, &["-c:a", "libopus"], "webm"),
    }
}

/// Encodes with `ffmpeg` through temporary files (the MP4 muxer needs a seekable output).
fn ffmpeg(samples: &[f32], codec: &[&str], extension: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let input = dir.path().join("input.wav");
    std::fs::write(&input, encode_wav_pcm16(samples, SOURCE_RATE)).expect("writing the input");
    let input = input.to_str().expect("a UTF-8 temporary path");
    let mut args = vec!["-i", input];
    args.extend_from_slice(codec);
    ffmpeg_output(&args, extension)
}

/// What `ffmpeg ARGS output.EXTENSION` writes.
pub(crate) fn ffmpeg_output(args: &[&str], extension: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let output = dir.path().join(format!("output.{extension}"));
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(&output)
        .status()
        .expect("ffmpeg is installed (apt-get install ffmpeg; .ci/run does)");
    assert!(status.success(), "ffmpeg failed to encode {extension}");
    std::fs::read(&output).expect("reading ffmpeg's output")
}
