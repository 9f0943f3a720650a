//! Output formats of the speech APIs (OpenAI `response_format`, ElevenLabs `output_format`) and
//! their encoders, whole-file and streaming. Input is always the engine's mono audio at
//! [`SOURCE_RATE`]; it is resampled to the format's rate with the windowed-sinc resampler.
//!
//! Containers: MP3 (LAME, CBR), Opus in Ogg (libopus, 20 ms packets), AAC-LC in ADTS
//! (Fraunhofer FDK), FLAC (16-bit), WAV (16-bit PCM), raw PCM s16le, G.711 μ-law.

use std::fmt;

use crate::resample::{Resampler, StreamResampler};

/// Sample rate of the audio handed to the encoders (the speech engine's output).
pub const SOURCE_RATE: u32 = 24_000;

/// One concrete output encoding. Get one from the parsers: a hand-built value with a rate or
/// bitrate the codec lacks makes the encoder panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// MPEG layer III, constant bitrate.
    Mp3 {
        sample_rate: u32,
        kbps: u32,
    },
    /// Opus in Ogg; Opus decoders always run at 48 kHz.
    Opus {
        kbps: u32,
    },
    /// AAC-LC in ADTS frames, 24 kHz.
    Aac,
    Flac {
        sample_rate: u32,
    },
    Wav {
        sample_rate: u32,
    },
    /// Headerless signed 16-bit little-endian mono.
    Pcm {
        sample_rate: u32,
    },
    /// G.711 μ-law, 8 kHz, no header.
    Ulaw,
}

const AAC_RATE: u32 = 24_000;
const AAC_BITS_PER_SECOND: u32 = 64_000;
const OPUS_RATE: u32 = 48_000;
const ULAW_RATE: u32 = 8_000;

/// OpenAI `response_format` values (its 24 kHz speech output).
const OPENAI_FORMATS: &[(&str, OutputFormat)] = &[
    (
        "mp3",
        OutputFormat::Mp3 {
            sample_rate: 24_000,
            kbps: 128,
        },
    ),
    ("opus", OutputFormat::Opus { kbps: 64 }),
    ("aac", OutputFormat::Aac),
    (
        "flac",
        OutputFormat::Flac {
            sample_rate: 24_000,
        },
    ),
    (
        "wav",
        OutputFormat::Wav {
            sample_rate: 24_000,
        },
    ),
    (
        "pcm",
        OutputFormat::Pcm {
            sample_rate: 24_000,
        },
    ),
];

const fn mp3(sample_rate: u32, kbps: u32) -> OutputFormat {
    OutputFormat::Mp3 { sample_rate, kbps }
}

const fn pcm(sample_rate: u32) -> OutputFormat {
    OutputFormat::Pcm { sample_rate }
}

const fn opus(kbps: u32) -> OutputFormat {
    OutputFormat::Opus { kbps }
}

/// ElevenLabs `output_format` values: `codec_samplerate[_kbps]`.
const ELEVENLABS_FORMATS: &[(&str, OutputFormat)] = &[
    ("mp3_22050_32", mp3(22_050, 32)),
    ("mp3_44100_32", mp3(44_100, 32)),
    ("mp3_44100_64", mp3(44_100, 64)),
    ("mp3_44100_96", mp3(44_100, 96)),
    ("mp3_44100_128", mp3(44_100, 128)),
    ("mp3_44100_192", mp3(44_100, 192)),
    ("pcm_8000", pcm(8_000)),
    ("pcm_16000", pcm(16_000)),
    ("pcm_22050", pcm(22_050)),
    ("pcm_24000", pcm(24_000)),
    ("pcm_44100", pcm(44_100)),
    ("pcm_48000", pcm(48_000)),
    ("ulaw_8000", OutputFormat::Ulaw),
    ("opus_48000_32", opus(32)),
    ("opus_48000_64", opus(64)),
    ("opus_48000_96", opus(96)),
    ("opus_48000_128", opus(128)),
    ("opus_48000_192", opus(192)),
];

/// A format string that the named request field does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported {field} {value:?}; accepted values: {}", accepted.join(", "))]
pub struct UnsupportedFormat {
    /// The request field, e.g. `response_format`.
    pub field: &'static str,
    pub value: String,
    pub accepted: Vec<&'static str>,
}

fn lookup(
    table: &[(&'static str, OutputFormat)],
    field: &'static str,
    value: &str,
) -> Result<OutputFormat, UnsupportedFormat> {
    table
        .iter()
        .find(|(name, _)| *name == value)
        .map(|&(_, format)| format)
        .ok_or_else(|| UnsupportedFormat {
            field,
            value: value.to_owned(),
            accepted: table.iter().map(|&(name, _)| name).collect(),
        })
}

impl Default for OutputFormat {
    /// OpenAI's default `response_format`, `mp3`.
    fn default() -> Self {
        OPENAI_FORMATS[0].1
    }
}

impl OutputFormat {
    /// Parses OpenAI's `response_format`.
    pub fn from_openai(value: &str) -> Result<Self, UnsupportedFormat> {
        lookup(OPENAI_FORMATS, "response_format", value)
    }

    /// Parses ElevenLabs' `output_format`.
    pub fn from_elevenlabs(value: &str) -> Result<Self, UnsupportedFormat> {
        lookup(ELEVENLABS_FORMATS, "output_format", value)
    }

    /// Parses the `format` query parameter of Resonance's own audio download: any OpenAI
    /// or ElevenLabs name.
    pub fn from_name(value: &str) -> Result<Self, UnsupportedFormat> {
        Self::from_openai(value)
            .or_else(|_| Self::from_elevenlabs(value))
            .map_err(|_| UnsupportedFormat {
                field: "format",
                value: value.to_owned(),
                accepted: OPENAI_FORMATS
                    .iter()
                    .chain(ELEVENLABS_FORMATS)
                    .map(|&(name, _)| name)
                    .collect(),
            })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp3 { .. } => "audio/mpeg",
            Self::Opus { .. } => "audio/ogg",
            Self::Aac => "audio/aac",
            Self::Flac { .. } => "audio/flac",
            Self::Wav { .. } => "audio/wav",
            Self::Pcm { .. } => "audio/pcm",
            Self::Ulaw => "audio/basic",
        }
    }

    pub fn file_extension(self) -> &'static str {
        match self {
            Self::Mp3 { .. } => "mp3",
            Self::Opus { .. } => "opus",
            Self::Aac => "aac",
            Self::Flac { .. } => "flac",
            Self::Wav { .. } => "wav",
            Self::Pcm { .. } => "pcm",
            Self::Ulaw => "ulaw",
        }
    }

    /// Sample rate of the encoded audio, in Hz.
    pub fn sample_rate(self) -> u32 {
        match self {
            Self::Mp3 { sample_rate, .. }
            | Self::Flac { sample_rate }
            | Self::Wav { sample_rate }
            | Self::Pcm { sample_rate } => sample_rate,
            Self::Opus { .. } => OPUS_RATE,
            Self::Aac => AAC_RATE,
            Self::Ulaw => ULAW_RATE,
        }
    }

    /// Whether [`StreamEncoder::push`] returns audio before [`StreamEncoder::finish`]
    /// (FLAC is written whole at the end).
    pub fn streams(self) -> bool {
        !matches!(self, Self::Flac { .. })
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Mp3 { sample_rate, kbps } => write!(f, "mp3 {sample_rate} Hz {kbps} kbps"),
            Self::Opus { kbps } => write!(f, "opus {kbps} kbps"),
            other => write!(f, "{} {} Hz", other.file_extension(), other.sample_rate()),
        }
    }
}

/// Encodes a whole clip of mono audio at [`SOURCE_RATE`].
pub fn encode(samples: &[f32], format: OutputFormat) -> Vec<u8> {
    if let OutputFormat::Wav { sample_rate } = format {
        let resampled = Resampler::new(SOURCE_RATE, sample_rate)
            .expect("output sample rates are positive")
            .process(samples);
        return crate::wav::encode_wav_pcm16(&resampled, sample_rate);
    }
    let mut encoder = StreamEncoder::new(format);
    let mut bytes = encoder.push(samples);
    bytes.extend(encoder.finish());
    bytes
}

/// Encodes audio that arrives in pieces (one per synthesized sentence): each
/// [`push`](Self::push) returns the bytes that can be sent now, [`finish`](Self::finish) the
/// rest. The concatenation is one valid file. WAV streams with the "unknown length" header
/// (sizes 0xFFFFFFFF); FLAC comes out whole from `finish`.
pub struct StreamEncoder {
    resampler: StreamResampler,
    sink: Box<dyn FormatEncoder + Send>,
}

impl StreamEncoder {
    pub fn new(format: OutputFormat) -> Self {
        let sink: Box<dyn FormatEncoder + Send> = match format {
            OutputFormat::Mp3 { sample_rate, kbps } => Box::new(Mp3Encoder::new(sample_rate, kbps)),
            OutputFormat::Opus { kbps } => Box::new(OggOpusEncoder::new(kbps)),
            OutputFormat::Aac => Box::new(AacEncoder::new()),
            OutputFormat::Flac { sample_rate } => Box::new(FlacEncoder::new(sample_rate)),
            OutputFormat::Wav { sample_rate } => Box::new(StreamingWav {
                sample_rate,
                header_sent: false,
            }),
            OutputFormat::Pcm { .. } => Box::new(Pcm16),
            OutputFormat::Ulaw => Box::new(Ulaw),
        };
        Self {
            resampler: StreamResampler::new(SOURCE_RATE, format.sample_rate())
                .expect("output sample rates are positive"),
            sink,
        }
    }

    /// Adds mono samples at [`SOURCE_RATE`]; returns the encoded bytes ready to send.
    pub fn push(&mut self, samples: &[f32]) -> Vec<u8> {
        let resampled = self.resampler.push(samples);
        self.sink.push(&resampled)
    }

    /// Flushes everything still buffered; the encoder is done afterwards.
    pub fn finish(mut self) -> Vec<u8> {
        let tail = self.resampler.finish();
        let mut bytes = self.sink.push(&tail);
        bytes.extend(self.sink.finish());
        bytes
    }
}

trait FormatEncoder {
    /// Samples at the format's rate in; bytes ready to send out.
    fn push(&mut self, samples: &[f32]) -> Vec<u8>;
    fn finish(&mut self) -> Vec<u8>;
}

fn to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16
}

struct Pcm16;

impl FormatEncoder for Pcm16 {
    fn push(&mut self, samples: &[f32]) -> Vec<u8> {
        samples
            .iter()
            .flat_map(|&s| to_i16(s).to_le_bytes())
            .collect()
    }

    fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// WAV for streaming: RIFF and data sizes set to 0xFFFFFFFF ("unknown length", as streaming
/// servers do), then raw 16-bit PCM.
struct StreamingWav {
    sample_rate: u32,
    header_sent: bool,
}

impl FormatEncoder for StreamingWav {
    fn push(&mut self, samples: &[f32]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(44 + samples.len() * 2);
        if !self.header_sent {
            self.header_sent = true;
            let header = crate::wav::encode_wav_pcm16(&[], self.sample_rate);
            bytes.extend_from_slice(&header);
            bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
            let data_size_at = header.len() - 4;
            bytes[data_size_at..data_size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        bytes.extend(Pcm16.push(samples));
        bytes
    }

    fn finish(&mut self) -> Vec<u8> {
        self.push(&[])
    }
}

/// G.711 μ-law (ITU-T G.711 with the usual 0x84 bias, 14-bit magnitude clipped at 32635).
fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let value = i32::from(sample);
    let sign = if value < 0 { 0x80 } else { 0 };
    let magnitude = value.abs().min(CLIP) + BIAS;
    let exponent = (magnitude >> 7).max(1).ilog2() as i32;
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

struct Ulaw;

impl FormatEncoder for Ulaw {
    fn push(&mut self, samples: &[f32]) -> Vec<u8> {
        samples.iter().map(|&s| linear_to_ulaw(to_i16(s))).collect()
    }

    fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

struct Mp3Encoder {
    lame: mp3lame_encoder::Encoder,
}

impl Mp3Encoder {
    fn new(sample_rate: u32, kbps: u32) -> Self {
        use mp3lame_encoder::{Bitrate, Builder, Mode, Quality};
        let bitrate = match kbps {
            8 => Bitrate::Kbps8,
            16 => Bitrate::Kbps16,
            24 => Bitrate::Kbps24,
            32 => Bitrate::Kbps32,
            40 => Bitrate::Kbps40,
            48 => Bitrate::Kbps48,
            64 => Bitrate::Kbps64,
            80 => Bitrate::Kbps80,
            96 => Bitrate::Kbps96,
            112 => Bitrate::Kbps112,
            128 => Bitrate::Kbps128,
            160 => Bitrate::Kbps160,
            192 => Bitrate::Kbps192,
            224 => Bitrate::Kbps224,
            256 => Bitrate::Kbps256,
            320 => Bitrate::Kbps320,
            other => panic!("{other} kbps is not an MP3 bitrate"),
        };
        let mut builder = Builder::new().expect("LAME allocates its encoder");
        builder.set_num_channels(1).expect("mono is valid");
        builder
            .set_sample_rate(sample_rate)
            .expect("valid MP3 rate");
        // Otherwise LAME picks a lower output rate for low bitrates.
        builder
            .set_output_sample_rate(std::num::NonZeroU32::new(sample_rate))
            .expect("valid MP3 rate");
        builder.set_brate(bitrate).expect("valid MP3 bitrate");
        builder.set_mode(Mode::Mono).expect("mono is valid");
        builder.set_quality(Quality::Good).expect("valid quality");
        builder
            .set_to_write_vbr_tag(false)
            .expect("a CBR stream has no VBR tag");
        Self {
            lame: builder.build().expect("LAME accepts the parameters"),
        }
    }
}

impl FormatEncoder for Mp3Encoder {
    fn push(&mut self, samples: &[f32]) -> Vec<u8> {
        let mut bytes =
            Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(samples.len()));
        self.lame
            .encode_to_vec(mp3lame_encoder::MonoPcm(samples), &mut bytes)
            .expect("the buffer has LAME's worst-case size");
        bytes
    }

    fn finish(&mut self) -> Vec<u8> {
        // LAME's documented upper bound for the final flush.
        let mut bytes = Vec::with_capacity(7200);
        self.lame
            .flush_to_vec::<mp3lame_encoder::FlushGap>(&mut bytes)
            .expect("the buffer holds the final frames");
        bytes
    }
}

/// 20 ms at 48 kHz.
const OPUS_FRAME: usize = 960;
/// Largest Opus packet (RFC 6716, 3.4).
const OPUS_MAX_PACKET: usize = 1275 * 3 + 7;
const OGG_SERIAL: u32 = 0x5245_534f;

/// Ogg Opus (RFC 7845): identification and comment headers, then one 20 ms packet per
/// frame. Every push ends its page so that the bytes can be sent at once.
struct OggOpusEncoder {
    opus: crate::opus::MonoEncoder,
    /// Encoder lookahead: decoded samples to drop at the start, at 48 kHz.
    pre_skip: u64,
    ogg: ogg::PacketWriter<'static, Vec<u8>>,
    /// Samples waiting to fill a frame.
    partial_frame: Vec<f32>,
    frames_encoded: u64,
}

impl OggOpusEncoder {
    fn new(kbps: u32) -> Self {
        let mut opus = crate::opus::MonoEncoder::new(OPUS_RATE, kbps as i32 * 1000)
            .expect("libopus accepts 48 kHz mono at every bitrate we offer");
        let pre_skip = opus.lookahead().expect("libopus reports its lookahead") as u16;

        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(1); // channels
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&OPUS_RATE.to_le_bytes()); // original input rate
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family 0: mono or stereo
        let vendor = b"resonance";
        let mut tags = Vec::with_capacity(20 + vendor.len());
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments

        let mut ogg = ogg::PacketWriter::new(Vec::new());
        for header in [head, tags] {
            ogg.write_packet(header, OGG_SERIAL, ogg::PacketWriteEndInfo::EndPage, 0)
                .expect("writing to memory cannot fail");
        }
        Self {
            opus,
            pre_skip: u64::from(pre_skip),
            ogg,
            partial_frame: Vec::with_capacity(OPUS_FRAME),
            frames_encoded: 0,
        }
    }

    fn encode_frame(&mut self, frame: &[f32]) -> Vec<u8> {
        let mut packet = vec![0; OPUS_MAX_PACKET];
        let len = self
            .opus
            .encode(frame, &mut packet)
            .expect("a 20 ms frame encodes");
        packet.truncate(len);
        self.frames_encoded += 1;
        packet
    }

    /// Writes packets with their granule positions, the last one ending the page (or the
    /// stream), and returns the finished pages.
    fn write_pages(
        &mut self,
        packets: Vec<(Vec<u8>, u64)>,
        last: ogg::PacketWriteEndInfo,
    ) -> Vec<u8> {
        let count = packets.len();
        for (index, (packet, granule)) in packets.into_iter().enumerate() {
            let end = if index + 1 == count {
                last
            } else {
                ogg::PacketWriteEndInfo::NormalPacket
            };
            self.ogg
                .write_packet(packet, OGG_SERIAL, end, granule)
                .expect("writing to memory cannot fail");
        }
        std::mem::take(self.ogg.inner_mut())
    }
}

impl FormatEncoder for OggOpusEncoder {
    fn push(&mut self, samples: &[f32]) -> Vec<u8> {
        let mut packets = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (OPUS_FRAME - self.partial_frame.len()).min(rest.len());
            self.partial_frame.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial_frame.len() == OPUS_FRAME {
                let frame = std::mem::take(&mut self.partial_frame);
                let packet = self.encode_frame(&frame);
                self.partial_frame = frame;
                self.partial_frame.clear();
                packets.push((packet, self.frames_encoded * OPUS_FRAME as u64));
            }
        }
        if packets.is_empty() {
            return Vec::new();
        }
        self.write_pages(packets, ogg::PacketWriteEndInfo::EndPage)
    }

    fn finish(&mut self) -> Vec<u8> {
        let real_samples =
            self.frames_encoded * OPUS_FRAME as u64 + self.partial_frame.len() as u64;
        // The decoder's output lags the input by `pre_skip`: encode silence until the last
        // real sample is out, then trim the padding with the final granule position.
        let decoded_needed = self.pre_skip + real_samples;
        let mut packets = Vec::new();
        let mut frame = std::mem::take(&mut self.partial_frame);
        while packets.is_empty() || self.frames_encoded * (OPUS_FRAME as u64) < decoded_needed {
            frame.resize(OPUS_FRAME, 0.0);
            let packet = self.encode_frame(&frame);
            packets.push((packet, self.frames_encoded * OPUS_FRAME as u64));
            frame.clear();
        }
        if let Some(last) = packets.last_mut() {
            last.1 = decoded_needed;
        }
        self.write_pages(packets, ogg::PacketWriteEndInfo::EndStream)
    }
}

const AAC_FRAME: usize = 1024;

/// AAC-LC in ADTS: self-framed, so it streams and plays as `audio/aac` in browsers.
struct AacEncoder {
    fdk: fdk_aac::enc::Encoder,
    /// Encoder delay in samples (decoders output it as leading silence).
    delay: u64,
    samples_in: u64,
}

impl AacEncoder {
    fn new() -> Self {
        use fdk_aac::enc::{
            AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams, Transport,
        };
        let fdk = Encoder::new(EncoderParams {
            bit_rate: BitRate::Cbr(AAC_BITS_PER_SECOND),
            sample_rate: AAC_RATE,
            transport: Transport::Adts,
            channels: ChannelMode::Mono,
            audio_object_type: AudioObjectType::Mpeg4LowComplexity,
        })
        .expect("FDK accepts 24 kHz mono AAC-LC");
        let delay = u64::from(fdk.info().expect("FDK reports its delay").nDelay);
        Self {
            fdk,
            delay,
            samples_in: 0,
        }
    }

    fn encode(&mut self, samples: &[i16]) -> Vec<u8> {
        self.samples_in += samples.len() as u64;
        let mut bytes = Vec::new();
        // One ADTS frame at most per call: 6144 bits per channel.
        let mut frame = [0u8; 768];
        let mut rest = samples;
        loop {
            let info = self
                .fdk
                .encode(rest, &mut frame)
                .expect("FDK encodes 16-bit mono");
            bytes.extend_from_slice(&frame[..info.output_size]);
            rest = &rest[info.input_consumed..];
            if info.output_size == 0 && (rest.is_empty() || info.input_consumed == 0) {
                return bytes;
            }
        }
    }
}

impl FormatEncoder for AacEncoder {
    fn push(&mut self, samples: &[f32]) -> Vec<u8> {
        let pcm: Vec<i16> = samples.iter().map(|&s| to_i16(s)).collect();
        self.encode(&pcm)
    }

    fn finish(&mut self) -> Vec<u8> {
        // Silence until every real sample has passed the encoder delay, in whole frames.
        let needed = (self.samples_in + self.delay).next_multiple_of(AAC_FRAME as u64);
        let padding = vec![0i16; (needed - self.samples_in) as usize];
        self.encode(&padding)
    }
}

/// FLAC needs the whole signal (its header carries the length and checksum): buffers until
/// `finish`.
struct FlacEncoder {
    sample_rate: u32,
    samples: Vec<i32>,
}

impl FlacEncoder {
    fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            samples: Vec::new(),
        }
    }
}

const FLAC_BLOCK_SIZE: usize = 4096;

impl FormatEncoder for FlacEncoder {
    fn push(&mut self, samples: &[f32]) -> Vec<u8> {
        self.samples
            .extend(samples.iter().map(|&s| i32::from(to_i16(s))));
        Vec::new()
    }

    fn finish(&mut self) -> Vec<u8> {
        use flacenc::component::BitRepr;
        use flacenc::error::Verify;
        let config = flacenc::config::Encoder::default()
            .into_verified()
            .expect("the default FLAC configuration is valid");
        let source = flacenc::source::MemSource::from_samples(
            &self.samples,
            1,
            16,
            self.sample_rate as usize,
        );
        let mut stream = flacenc::encode_with_fixed_block_size(&config, source, FLAC_BLOCK_SIZE)
            .expect("16-bit mono FLAC encodes");
        // flacenc counts the short last block as the minimum block size; the format excludes
        // it, and decoders (symphonia) take min != max for a variable-block-size stream.
        stream
            .stream_info_mut()
            .set_block_sizes(FLAC_BLOCK_SIZE, FLAC_BLOCK_SIZE)
            .expect("a valid FLAC block size");
        let mut sink = flacenc::bitsink::ByteSink::new();
        stream
            .write(&mut sink)
            .expect("writing to memory cannot fail");
        sink.into_inner()
    }
}
