//! Decoding uploaded audio (WAV, MP3, FLAC, OGG/Vorbis, M4A/AAC, and Opus in Ogg or WebM as
//! browsers record it) to mono f32 samples.
//!
//! Every file is untrusted: a sample rate outside [`SAMPLE_RATES`] or more than
//! [`MAX_CHANNELS`] channels is refused before anything is decoded, a codec that panics on a
//! malformed file yields [`DecodeError::Corrupt`], and [`decode_bounded`] resamples while it
//! decodes, so that its memory follows the output's rate and length limit rather than what
//! the file declares. Matroska / WebM is read by [`crate::matroska`], not symphonia, whose
//! reader overflows on lying element sizes.

use std::io::Cursor;
use std::ops::RangeInclusive;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, CODEC_TYPE_OPUS, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader, Packet, Track};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::matroska::{self, MatroskaError};
use crate::resample::StreamResampler;

/// Opus always decodes at 48 kHz.
const OPUS_RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz, per channel.
const OPUS_MAX_PACKET_SAMPLES: usize = 5760;

/// Sample rates accepted from a file: telephone quality to studio masters.
pub const SAMPLE_RATES: RangeInclusive<u32> = 8_000..=192_000;
/// Most channels accepted from a file (7.1 surround).
pub const MAX_CHANNELS: usize = 8;

/// Mono audio: samples in [-1, 1] at `sample_rate` Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct MonoAudio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl MonoAudio {
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the audio format is not recognized or not supported")]
    UnsupportedFormat,
    #[error("the file has no audio track")]
    NoAudioTrack,
    #[error("the audio codec is not supported")]
    UnsupportedCodec,
    #[error("the audio data is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "the sample rate of {hz} Hz is not supported; recordings must be between {} and {} Hz",
        SAMPLE_RATES.start(),
        SAMPLE_RATES.end()
    )]
    UnsupportedSampleRate { hz: u32 },
    #[error("the file declares {channels} channels; 1 to {MAX_CHANNELS} are supported")]
    UnsupportedChannels { channels: usize },
    #[error("the audio is longer than {max_secs} seconds")]
    TooLong { max_secs: f64 },
    #[error("decoding was cancelled")]
    Cancelled,
}

/// What [`decode_bounded`] produces and how much work it may do.
pub struct Bounds<'a> {
    /// The output's sample rate, whatever the file's.
    pub sample_rate: u32,
    /// Longest accepted audio: decoding stops with [`DecodeError::TooLong`] past it.
    pub max_secs: f64,
    /// Raised when nobody waits for the result any more: decoding stops at the next packet
    /// with [`DecodeError::Cancelled`].
    pub cancelled: &'a AtomicBool,
}

/// Decodes a whole file at its own sample rate, mixing all channels down to mono. `mime`
/// (the upload's Content-Type) helps recognize the container when given. For files of
/// known size and origin; uploads go through [`decode_bounded`].
pub fn decode(bytes: &[u8], mime: Option<&str>) -> Result<MonoAudio, DecodeError> {
    let mut sink = MonoSink::new(None, f64::INFINITY);
    decode_into(bytes, mime, &mut sink, &AtomicBool::new(false))?;
    sink.finish()
}

/// Decodes an untrusted file to mono at `bounds.sample_rate`, refusing more than
/// `bounds.max_secs` seconds: at most that much output is ever held, and the work done is
/// linear in the audio decoded.
pub fn decode_bounded(
    bytes: &[u8],
    mime: Option<&str>,
    bounds: &Bounds<'_>,
) -> Result<MonoAudio, DecodeError> {
    if !SAMPLE_RATES.contains(&bounds.sample_rate) {
        return Err(DecodeError::UnsupportedSampleRate {
            hz: bounds.sample_rate,
        });
    }
    let mut sink = MonoSink::new(Some(bounds.sample_rate), bounds.max_secs);
    decode_into(bytes, mime, &mut sink, bounds.cancelled)?;
    sink.finish()
}

/// Feeds every packet of the file's audio track to `sink`. Codecs are third-party code
/// reading hostile input: a panic in one is the file's fault and reported as corruption.
fn decode_into(
    bytes: &[u8],
    mime: Option<&str>,
    sink: &mut MonoSink,
    cancelled: &AtomicBool,
) -> Result<(), DecodeError> {
    catch_unwind(AssertUnwindSafe(|| {
        decode_packets(bytes, mime, sink, cancelled)
    }))
    .unwrap_or_else(|_| {
        Err(DecodeError::Corrupt(
            "the file's structure is malformed".into(),
        ))
    })
}

fn decode_packets(
    bytes: &[u8],
    mime: Option<&str>,
    sink: &mut MonoSink,
    cancelled: &AtomicBool,
) -> Result<(), DecodeError> {
    if bytes.starts_with(&matroska::MAGIC) {
        return decode_matroska(bytes, sink, cancelled);
    }
    check_wav_header(bytes)?;
    let mut hint = Hint::new();
    if let Some(mime) = mime {
        hint.mime_type(mime.split(';').next().unwrap_or(mime).trim());
    }
    let source = MediaSourceStream::new(
        Box::new(Cursor::new(bytes.to_vec())),
        MediaSourceStreamOptions::default(),
    );
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|_| DecodeError::UnsupportedFormat)?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| {
            let codec = t.codec_params.codec;
            // Skips video and other non-audio tracks; Opus always runs at 48 kHz, whether
            // or not the container says so.
            codec != CODEC_TYPE_NULL
                && (t.codec_params.sample_rate.is_some() || codec == CODEC_TYPE_OPUS)
        })
        .ok_or(DecodeError::NoAudioTrack)?
        .clone();
    let mut decoder = if track.codec_params.codec == CODEC_TYPE_OPUS {
        PacketDecoder::Opus(OpusPackets::new(
            track.codec_params.channels.map_or(1, |c| c.count()),
        )?)
    } else {
        check_rate(track.codec_params.sample_rate.unwrap_or(0))?;
        if let Some(channels) = track.codec_params.channels {
            check_channels(channels.count())?;
        }
        PacketDecoder::symphonia(&track)?
    };
    while let Some(packet) = next_packet(format.as_mut())? {
        if cancelled.load(Ordering::Relaxed) {
            return Err(DecodeError::Cancelled);
        }
        if packet.track_id() == track.id {
            decoder.decode(&packet, sink)?;
        }
    }
    Ok(())
}

/// Matroska / WebM, read by [`matroska`]: browsers record Opus in it, the one codec
/// accepted there.
fn decode_matroska(
    bytes: &[u8],
    sink: &mut MonoSink,
    cancelled: &AtomicBool,
) -> Result<(), DecodeError> {
    let mut opus = None;
    matroska::for_each_audio_frame(bytes, |track, frame| {
        if cancelled.load(Ordering::Relaxed) {
            return Err(DecodeError::Cancelled);
        }
        let opus = match &mut opus {
            Some(opus) => opus,
            None if track.codec == "A_OPUS" => opus.insert(OpusPackets::new(track.channels)?),
            None => return Err(DecodeError::UnsupportedCodec),
        };
        opus.decode(frame, sink)
    })?;
    Ok(())
}

impl From<MatroskaError> for DecodeError {
    fn from(error: MatroskaError) -> Self {
        Self::Corrupt(error.to_string())
    }
}

/// A WAV file's rate and channel count, checked before symphonia reads them: its WAV
/// reader panics on a rate of 0 (a time base of 1/0).
fn check_wav_header(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Ok(());
    }
    let mut chunk = 12;
    while let Some(header) = bytes.get(chunk..chunk + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if &header[..4] == b"fmt " {
            let format = bytes
                .get(chunk + 8..chunk + 16)
                .ok_or_else(|| DecodeError::Corrupt("the WAV format chunk is cut short".into()))?;
            check_channels(usize::from(u16::from_le_bytes([format[2], format[3]])))?;
            return check_rate(u32::from_le_bytes([
                format[4], format[5], format[6], format[7],
            ]));
        }
        // Chunks are padded to an even length.
        chunk = chunk
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size % 2);
    }
    Err(DecodeError::Corrupt(
        "the WAV file has no format chunk".into(),
    ))
}

fn check_rate(hz: u32) -> Result<(), DecodeError> {
    if SAMPLE_RATES.contains(&hz) {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedSampleRate { hz })
    }
}

fn check_channels(channels: usize) -> Result<(), DecodeError> {
    if (1..=MAX_CHANNELS).contains(&channels) {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedChannels { channels })
    }
}

fn next_packet(format: &mut dyn FormatReader) -> Result<Option<Packet>, DecodeError> {
    match format.next_packet() {
        Ok(packet) => Ok(Some(packet)),
        Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Ok(None)
        }
        Err(SymphoniaError::ResetRequired) => Ok(None),
        Err(e) => Err(DecodeError::Corrupt(e.to_string())),
    }
}

/// Collects decoded frames (of a checked rate and channel count) as mono samples at the
/// stream's rate, or resampled to a fixed rate as they arrive, refusing to go past
/// `max_secs`.
struct MonoSink {
    samples: Vec<f32>,
    /// Output rate when resampling.
    target_rate: Option<u32>,
    /// The stream's rate, set by its first packet.
    source_rate: Option<u32>,
    resampler: Option<StreamResampler>,
    frames: u64,
    max_secs: f64,
    mono: Vec<f32>,
}

impl MonoSink {
    fn new(target_rate: Option<u32>, max_secs: f64) -> Self {
        Self {
            samples: Vec::new(),
            target_rate,
            source_rate: None,
            resampler: None,
            frames: 0,
            max_secs,
            mono: Vec::new(),
        }
    }

    fn push_interleaved(
        &mut self,
        interleaved: &[f32],
        channels: usize,
        sample_rate: u32,
    ) -> Result<(), DecodeError> {
        match self.source_rate {
            None => {
                self.source_rate = Some(sample_rate);
                if let Some(target) = self.target_rate {
                    let resampler = StreamResampler::new(sample_rate, target)
                        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
                    self.resampler = Some(resampler);
                }
            }
            Some(rate) if rate != sample_rate => {
                return Err(DecodeError::Corrupt(format!(
                    "the sample rate changes from {rate} Hz to {sample_rate} Hz within the stream"
                )));
            }
            Some(_) => {}
        }
        self.frames += (interleaved.len() / channels) as u64;
        if self.frames as f64 > self.max_secs * f64::from(sample_rate) {
            return Err(DecodeError::TooLong {
                max_secs: self.max_secs,
            });
        }
        self.mono.clear();
        self.mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
        match &mut self.resampler {
            Some(resampler) => self.samples.extend(resampler.push(&self.mono)),
            None => self.samples.extend_from_slice(&self.mono),
        }
        Ok(())
    }

    fn finish(mut self) -> Result<MonoAudio, DecodeError> {
        let Some(source_rate) = self.source_rate.filter(|_| self.frames > 0) else {
            return Err(DecodeError::Corrupt(
                "no audio samples could be decoded".into(),
            ));
        };
        if let Some(resampler) = &mut self.resampler {
            self.samples.extend(resampler.finish());
        }
        Ok(MonoAudio {
            samples: self.samples,
            sample_rate: self.target_rate.unwrap_or(source_rate),
        })
    }
}

/// Turns one packet of the chosen track into samples: symphonia's decoders, or libopus
/// (translated to Rust) for Opus, which symphonia does not decode.
enum PacketDecoder {
    Symphonia {
        decoder: Box<dyn symphonia::core::codecs::Decoder>,
        buffer: Option<SampleBuffer<f32>>,
    },
    Opus(OpusPackets),
}

impl PacketDecoder {
    fn symphonia(track: &Track) -> Result<Self, DecodeError> {
        let decoder = symphonia::default::get_codecs()
            .make(&track.codec_params, &DecoderOptions::default())
            .map_err(|_| DecodeError::UnsupportedCodec)?;
        Ok(Self::Symphonia {
            decoder,
            buffer: None,
        })
    }

    fn decode(&mut self, packet: &Packet, sink: &mut MonoSink) -> Result<(), DecodeError> {
        match self {
            Self::Symphonia { decoder, buffer } => {
                let decoded = match decoder.decode(packet) {
                    Ok(decoded) => decoded,
                    Err(SymphoniaError::DecodeError(_)) => return Ok(()),
                    Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
                };
                let spec = *decoded.spec();
                check_rate(spec.rate)?;
                let channels = spec.channels.count();
                check_channels(channels)?;
                let buf = match buffer {
                    Some(b) if b.capacity() >= decoded.capacity() * channels => b,
                    _ => buffer.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
                };
                buf.copy_interleaved_ref(decoded);
                sink.push_interleaved(buf.samples(), channels, spec.rate)
            }
            Self::Opus(opus) => opus.decode(&packet.data, sink),
        }
    }
}

/// Opus packets of `channels` channels, decoded at 48 kHz.
struct OpusPackets {
    decoder: crate::opus::Decoder,
    channels: usize,
    output: Vec<f32>,
}

impl OpusPackets {
    fn new(channels: usize) -> Result<Self, DecodeError> {
        check_channels(channels)?;
        let decoder = crate::opus::Decoder::new(OPUS_RATE, channels)
            .map_err(|_| DecodeError::UnsupportedCodec)?;
        Ok(Self {
            decoder,
            channels,
            output: vec![0.0; OPUS_MAX_PACKET_SAMPLES * channels],
        })
    }

    fn decode(&mut self, packet: &[u8], sink: &mut MonoSink) -> Result<(), DecodeError> {
        let frames = self
            .decoder
            .decode(packet, &mut self.output)
            .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        sink.push_interleaved(
            &self.output[..frames * self.channels],
            self.channels,
            OPUS_RATE,
        )
    }
}
