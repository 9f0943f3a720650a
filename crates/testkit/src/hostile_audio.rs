//! Uploads made to hurt: every container with broken, truncated or lying headers, WAV and
//! FLAC headers declaring sample rates and channel counts no recording has, and files a few
//! kilobytes long that decode to hours of audio. For tests that the decode path refuses
//! them with a clean error, and benchmarks that it does so in bounded time and memory.

use resonance_audio::wav::encode_wav_pcm16;

use crate::audio::{UploadFormat, encode_as, speech_like};

/// One hostile upload.
pub struct HostileUpload {
    /// What is wrong with it, for messages.
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The fields of a PCM WAV header, written as given whether or not they add up.
#[derive(Debug, Clone, Copy)]
pub struct WavHeader {
    pub format_tag: u16,
    pub channels: u16,
    pub sample_rate: u32,
    pub bits_per_sample: u16,
    pub block_align: u16,
    pub byte_rate: u32,
    /// The RIFF and data chunk sizes; the true ones when `None`.
    pub riff_size: Option<u32>,
    pub data_size: Option<u32>,
}

impl WavHeader {
    /// A truthful 16-bit PCM header.
    pub fn pcm16(channels: u16, sample_rate: u32) -> Self {
        Self {
            format_tag: 1,
            channels,
            sample_rate,
            bits_per_sample: 16,
            block_align: channels.wrapping_mul(2),
            byte_rate: sample_rate.wrapping_mul(u32::from(channels) * 2),
            riff_size: None,
            data_size: None,
        }
    }

    /// The header followed by `data` as the data chunk.
    pub fn file(&self, data: &[u8]) -> Vec<u8> {
        let data_size = self.data_size.unwrap_or(data.len() as u32);
        let riff_size = self.riff_size.unwrap_or(36 + data.len() as u32);
        let mut bytes = Vec::with_capacity(44 + data.len());
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&riff_size.to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&self.format_tag.to_le_bytes());
        bytes.extend_from_slice(&self.channels.to_le_bytes());
        bytes.extend_from_slice(&self.sample_rate.to_le_bytes());
        bytes.extend_from_slice(&self.byte_rate.to_le_bytes());
        bytes.extend_from_slice(&self.block_align.to_le_bytes());
        bytes.extend_from_slice(&self.bits_per_sample.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data_size.to_le_bytes());
        bytes.extend_from_slice(data);
        bytes
    }
}

/// `seconds` of a 440 Hz tone at `rate` as 16-bit PCM bytes.
fn pcm16_tone(rate: u32, seconds: f64) -> Vec<u8> {
    let len = (seconds * f64::from(rate)) as usize;
    (0..len)
        .flat_map(|n| {
            let phase = std::f64::consts::TAU * 440.0 * n as f64 / f64::from(rate);
            ((0.3 * phase.sin() * f64::from(i16::MAX)) as i16).to_le_bytes()
        })
        .collect()
}

/// WAV headers declaring what no recording has, each with a little data behind it: the
/// decode path must refuse every one with a clean error. Names say which.
pub fn impossible_wavs() -> Vec<HostileUpload> {
    let data = pcm16_tone(8_000, 0.5);
    let pcm = WavHeader::pcm16(1, 16_000);
    let cases = [
        ("sample rate 0", WavHeader::pcm16(1, 0)),
        ("sample rate 1 Hz", WavHeader::pcm16(1, 1)),
        ("sample rate 7999 Hz", WavHeader::pcm16(1, 7_999)),
        ("sample rate 200003 Hz", WavHeader::pcm16(1, 200_003)),
        ("sample rate 4294967295 Hz", WavHeader::pcm16(1, u32::MAX)),
        ("0 channels", WavHeader::pcm16(0, 16_000)),
        ("9 channels", WavHeader::pcm16(9, 16_000)),
        ("65535 channels", WavHeader::pcm16(u16::MAX, 16_000)),
        (
            "0 bits per sample",
            WavHeader {
                bits_per_sample: 0,
                block_align: 0,
                ..pcm
            },
        ),
        (
            "7 bits per sample",
            WavHeader {
                bits_per_sample: 7,
                ..pcm
            },
        ),
        (
            "block align 0",
            WavHeader {
                block_align: 0,
                ..pcm
            },
        ),
        (
            "block align 65535",
            WavHeader {
                block_align: u16::MAX,
                ..pcm
            },
        ),
        (
            "format tag 0xFFFF",
            WavHeader {
                format_tag: u16::MAX,
                ..pcm
            },
        ),
    ];
    let mut uploads: Vec<HostileUpload> = cases
        .into_iter()
        .map(|(name, header)| HostileUpload {
            name: format!("WAV with {name}"),
            content_type: "audio/wav",
            bytes: header.file(&data),
        })
        .collect();
    let lying_size = WavHeader {
        data_size: Some(u32::MAX),
        riff_size: Some(u32::MAX),
        ..pcm
    };
    uploads.push(HostileUpload {
        name: "WAV whose sizes claim 4 GB over half a second of audio".into(),
        content_type: "audio/wav",
        bytes: lying_size.file(&data),
    });
    uploads.push(HostileUpload {
        name: "WAV cut inside its header".into(),
        content_type: "audio/wav",
        bytes: pcm.file(&data)[..30].to_vec(),
    });
    uploads
}

/// A FLAC file that says it runs at `rate` Hz: a real one with its STREAMINFO patched (the
/// rate is 20 bits from byte 18).
pub fn flac_declaring_rate(rate: u32) -> Vec<u8> {
    let mut flac = encode_as(&speech_like(12.0, 0.5, 3), UploadFormat::Flac);
    assert_eq!(&flac[..4], b"fLaC", "a FLAC stream");
    let field = (rate & 0xF_FFFF) << 12;
    let [a, b, c, _] = field.to_be_bytes();
    flac[18] = a;
    flac[19] = b;
    flac[20] = (flac[20] & 0x0F) | (c & 0xF0);
    flac
}

/// `seconds` of silence as FLAC at `rate` Hz: a few kilobytes that decode to
/// `seconds * rate` samples. Written by hand (RFC 9639): STREAMINFO, then frames of the
/// largest block size, each one CONSTANT subframe of 16-bit zeros.
pub fn silent_flac(rate: u32, seconds: u32) -> Vec<u8> {
    const BLOCK: u64 = 65_535;
    let total = u64::from(rate) * u64::from(seconds);
    let mut flac = b"fLaC".to_vec();
    // Last metadata block, type 0 (STREAMINFO), 34 bytes.
    flac.extend_from_slice(&[0x80, 0, 0, 34]);
    let block_sizes = (BLOCK as u16).to_be_bytes();
    flac.extend_from_slice(&block_sizes);
    flac.extend_from_slice(&block_sizes);
    flac.extend_from_slice(&[0; 6]); // frame sizes unknown
    // Sample rate (20 bits), channels - 1 (3 bits), bits per sample - 1 (5 bits), total
    // samples (36 bits).
    let packed = (u64::from(rate) << 44) | (15 << 36) | total;
    flac.extend_from_slice(&packed.to_be_bytes());
    flac.extend_from_slice(&[0; 16]); // no MD5
    let mut number = 0u64;
    let mut left = total;
    while left > 0 {
        let block = left.min(BLOCK);
        let start = flac.len();
        // Sync, fixed block size; block size from the end of the header (16 bits), rate
        // from STREAMINFO; mono, sample size from STREAMINFO.
        flac.extend_from_slice(&[0xFF, 0xF8, 0x70, 0x00]);
        flac.extend_from_slice(&utf8_coded(number));
        flac.extend_from_slice(&((block - 1) as u16).to_be_bytes());
        let header_crc = crc8(&flac[start..]);
        flac.push(header_crc);
        // CONSTANT subframe, no wasted bits, value 0 in 16 bits.
        flac.extend_from_slice(&[0x00, 0x00, 0x00]);
        let frame_crc = crc16(&flac[start..]);
        flac.extend_from_slice(&frame_crc.to_be_bytes());
        number += 1;
        left -= block;
    }
    flac
}

/// FLAC's frame number coding: UTF-8's scheme extended to 36 bits.
fn utf8_coded(value: u64) -> Vec<u8> {
    if value < 0x80 {
        return vec![value as u8];
    }
    let continuation_bytes = (1..=6)
        .find(|&n| value < 1u64 << (6 * n + 6 - n))
        .expect("frame numbers fit 36 bits");
    let mut bytes = Vec::with_capacity(continuation_bytes + 1);
    let lead_marker = !(0xFFu8 >> (continuation_bytes + 1));
    bytes.push(lead_marker | (value >> (6 * continuation_bytes)) as u8);
    for i in (0..continuation_bytes).rev() {
        bytes.push(0x80 | ((value >> (6 * i)) & 0x3F) as u8);
    }
    bytes
}

fn crc8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |mut crc, &byte| {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &byte| {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// 12 s of speech as WAV at an uncommon rate (no small ratio to 24 kHz).
pub fn wav_at(rate: u32) -> Vec<u8> {
    let samples = speech_like(12.0, 0.5, 4);
    let at_rate =
        resonance_audio::resample::resample(&samples, resonance_audio::encode::SOURCE_RATE, rate)
            .expect("positive rates");
    encode_wav_pcm16(&at_rate, rate)
}

/// Each upload format, `seconds` of speech, broken in each way a header breaks: cut short,
/// scrambled, and every 32-bit field of its first 64 bytes replaced by 0xFFFFFFFF (sizes
/// and counts that lie) or 0. What they decode to, if anything, depends on the container.
pub fn broken_containers(seconds: f64) -> Vec<HostileUpload> {
    let samples = speech_like(seconds, 0.5, 5);
    let mut uploads = Vec::new();
    for format in UploadFormat::ALL {
        let valid = encode_as(&samples, format);
        let mut variant = |what: String, bytes: Vec<u8>| {
            uploads.push(HostileUpload {
                name: format!("{format:?} {what}"),
                content_type: format.content_type(),
                bytes,
            })
        };
        for cut in [4, 16, 40, 100, 1000] {
            variant(
                format!("cut to {cut} bytes"),
                valid[..cut.min(valid.len())].to_vec(),
            );
        }
        let mut scrambled = valid.clone();
        scrambled[4..64].iter_mut().for_each(|b| *b ^= 0x5A);
        variant("with bytes 4-63 scrambled".into(), scrambled);
        for offset in (0..64).step_by(4) {
            for word in [u32::MAX, 0] {
                let mut lying = valid.clone();
                lying[offset..offset + 4].copy_from_slice(&word.to_le_bytes());
                variant(
                    format!("with bytes {offset}-{} set to {word:#x}", offset + 3),
                    lying,
                );
            }
        }
    }
    uploads
}

/// A WebM recording of `seconds` of speech with each of its first `count` bytes set to 0 and
/// to 0xFF in turn: every element ID, size and block header of its start lying once.
pub fn webm_with_each_byte_replaced(seconds: f64, count: usize) -> Vec<HostileUpload> {
    let format = UploadFormat::WebmOpus;
    let valid = encode_as(&speech_like(seconds, 0.5, 5), format);
    (0..count.min(valid.len()))
        .flat_map(|at| [0u8, 0xFF].map(|byte| (at, byte)))
        .map(|(at, byte)| {
            let mut bytes = valid.clone();
            bytes[at] = byte;
            HostileUpload {
                name: format!("{format:?} with byte {at} set to {byte:#x}"),
                content_type: format.content_type(),
                bytes,
            }
        })
        .collect()
}
