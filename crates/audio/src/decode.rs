//! Decoding uploaded audio (WAV, MP3, FLAC, OGG/Vorbis, M4A/AAC, and Opus in Ogg or WebM as
//! browsers record it) to mono f32 samples.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, CODEC_TYPE_OPUS, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader, Packet, Track};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Opus always decodes at 48 kHz.
const OPUS_RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz, per channel.
const OPUS_MAX_PACKET_SAMPLES: usize = 5760;

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
    #[error("the audio is longer than {max_secs} seconds")]
    TooLong { max_secs: f64 },
}

/// Decodes a whole file, mixing all channels down to mono. `mime` (the upload's
/// Content-Type) helps recognize the container when given.
pub fn decode(bytes: &[u8], mime: Option<&str>) -> Result<MonoAudio, DecodeError> {
    decode_at_most(bytes, mime, f64::INFINITY)
}

/// Like [`decode`], but stops with [`DecodeError::TooLong`] as soon as more than
/// `max_secs` seconds have been decoded, so that a small, highly compressed upload cannot
/// expand into unbounded memory.
pub fn decode_at_most(
    bytes: &[u8],
    mime: Option<&str>,
    max_secs: f64,
) -> Result<MonoAudio, DecodeError> {
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
    let mut sink = if track.codec_params.codec == CODEC_TYPE_OPUS {
        PacketDecoder::opus(&track)?
    } else {
        PacketDecoder::symphonia(&track)?
    };
    let mut mono = MonoSink {
        samples: Vec::new(),
        sample_rate: track.codec_params.sample_rate.unwrap_or(0),
        max_secs,
    };
    loop {
        let packet = match next_packet(format.as_mut()) {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(e) => return Err(e),
        };
        if packet.track_id() != track.id {
            continue;
        }
        sink.decode(&packet, &mut mono)?;
    }
    if mono.sample_rate == 0 || mono.samples.is_empty() {
        return Err(DecodeError::Corrupt(
            "no audio samples could be decoded".into(),
        ));
    }
    Ok(MonoAudio {
        samples: mono.samples,
        sample_rate: mono.sample_rate,
    })
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

/// Collects decoded frames as mono samples, refusing to grow past `max_secs`.
struct MonoSink {
    samples: Vec<f32>,
    sample_rate: u32,
    max_secs: f64,
}

impl MonoSink {
    fn push_interleaved(
        &mut self,
        interleaved: &[f32],
        channels: usize,
        sample_rate: u32,
    ) -> Result<(), DecodeError> {
        self.sample_rate = sample_rate;
        let channels = channels.max(1);
        self.samples.extend(
            interleaved
                .chunks(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
        if self.samples.len() as f64 > self.max_secs * f64::from(sample_rate) {
            return Err(DecodeError::TooLong {
                max_secs: self.max_secs,
            });
        }
        Ok(())
    }
}

/// Turns one packet of the chosen track into samples: symphonia's decoders, or libopus (translated to Rust) for
/// Opus, which symphonia does not decode.
enum PacketDecoder {
    Symphonia {
        decoder: Box<dyn symphonia::core::codecs::Decoder>,
        buffer: Option<SampleBuffer<f32>>,
    },
    Opus {
        decoder: crate::opus::Decoder,
        channels: usize,
        output: Vec<f32>,
    },
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

    fn opus(track: &Track) -> Result<Self, DecodeError> {
        let channels = track.codec_params.channels.map_or(1, |c| c.count());
        let decoder = crate::opus::Decoder::new(OPUS_RATE, channels)
            .map_err(|_| DecodeError::UnsupportedCodec)?;
        Ok(Self::Opus {
            decoder,
            channels,
            output: vec![0.0; OPUS_MAX_PACKET_SAMPLES * channels],
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
                let channels = spec.channels.count().max(1);
                let buf = match buffer {
                    Some(b) if b.capacity() >= decoded.capacity() * channels => b,
                    _ => buffer.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
                };
                buf.copy_interleaved_ref(decoded);
                sink.push_interleaved(buf.samples(), channels, spec.rate)
            }
            Self::Opus {
                decoder,
                channels,
                output,
            } => {
                let frames = decoder
                    .decode(&packet.data, output)
                    .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
                sink.push_interleaved(&output[..frames * *channels], *channels, OPUS_RATE)
            }
        }
    }
}
