//! Audio fixtures made at test time: a speech-like signal (a gliding harmonic voice with
//! syllable-rate loudness changes and breath noise), encoded in each upload format with
//! Resonance's own encoders: WAV, MP3, FLAC, Ogg Opus and AAC (ADTS) directly, M4A and WebM
//! (what Chromium's recorder produces) by rewrapping the AAC and Opus frames. Resonance
//! encodes no Vorbis: that upload is a committed file (`fixtures/audio/`).

mod mp4;
mod webm;

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

/// 12 s of [`speech_like`] audio in Ogg Vorbis (see `fixtures/audio/README.md`).
pub const SPEECH_OGG_VORBIS: &[u8] = include_bytes!("../../../fixtures/audio/speech-12s.ogg");

/// `samples` at [`SOURCE_RATE`] encoded as `format`; for [`UploadFormat::OggVorbis`], which
/// no encoder of ours writes, always the 12 s file [`SPEECH_OGG_VORBIS`].
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
        UploadFormat::OggVorbis => SPEECH_OGG_VORBIS.to_vec(),
        UploadFormat::M4a => {
            mp4::m4a_from_adts(&encode(samples, OutputFormat::from_name("aac").unwrap()))
        }
        UploadFormat::WebmOpus => {
            webm::webm_from_ogg_opus(&encode(samples, OutputFormat::from_name("opus").unwrap()))
        }
    }
}
