//! Every output format encoded from a 24 kHz tone, decoded back by an independent decoder
//! (symphonia, libopus, or the G.711 formula), and checked for rate, length and content;
//! streamed output decodes the same way; unknown format names are refused by field.

mod support;

use std::io::Cursor;

use resonance_audio::encode::SOURCE_RATE;
use resonance_audio::{OutputFormat, StreamEncoder, decode, encode};
use support::{dominant_frequency, rms, tone};

const TONE_HZ: f64 = 440.0;
const AMPLITUDE: f32 = 0.5;
const SECONDS: f64 = 1.5;

/// Decoded audio at its own rate, as a listener would get it.
struct Decoded {
    samples: Vec<f32>,
    sample_rate: u32,
}

fn s16le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

/// G.711 μ-law expansion, written from the standard's segment formula.
fn ulaw_to_linear(code: u8) -> f32 {
    let code = !code;
    let exponent = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let value = if code & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    };
    value as f32 / 32768.0
}

/// Ogg Opus through libopus, with the pre-skip and end trimming of RFC 7845.
fn decode_ogg_opus(bytes: &[u8]) -> Decoded {
    let mut reader = ogg::PacketReader::new(Cursor::new(bytes));
    let head = reader.read_packet_expected().expect("OpusHead page");
    assert_eq!(&head.data[..8], b"OpusHead");
    assert_eq!(head.data[9], 1, "mono");
    let pre_skip = usize::from(u16::from_le_bytes([head.data[10], head.data[11]]));
    let tags = reader.read_packet_expected().expect("OpusTags page");
    assert_eq!(&tags.data[..8], b"OpusTags");

    let mut decoder = resonance_audio::opus::Decoder::new(48_000, 1).unwrap();
    let mut samples = Vec::new();
    let mut final_granule = 0;
    let mut saw_end = false;
    while let Some(packet) = reader.read_packet().expect("well-formed Ogg") {
        let mut frame = vec![0.0f32; 5760];
        let len = decoder.decode(&packet.data, &mut frame).unwrap();
        samples.extend_from_slice(&frame[..len]);
        final_granule = packet.absgp_page() as usize;
        saw_end = packet.last_in_stream();
    }
    assert!(saw_end, "the last page carries the end-of-stream flag");
    assert!(final_granule <= samples.len());
    Decoded {
        samples: samples[pre_skip..final_granule].to_vec(),
        sample_rate: 48_000,
    }
}

fn decode_as(format: OutputFormat, bytes: &[u8]) -> Decoded {
    match format {
        OutputFormat::Pcm { sample_rate } => Decoded {
            samples: s16le(bytes),
            sample_rate,
        },
        OutputFormat::Ulaw => Decoded {
            samples: bytes.iter().map(|&b| ulaw_to_linear(b)).collect(),
            sample_rate: 8_000,
        },
        OutputFormat::Opus { .. } => decode_ogg_opus(bytes),
        _ => {
            let audio = decode(bytes, Some(format.content_type()))
                .unwrap_or_else(|e| panic!("{format}: {e}"));
            Decoded {
                samples: audio.samples,
                sample_rate: audio.sample_rate,
            }
        }
    }
}

/// Extra decoded samples allowed at the format's rate: encoder delay and frame padding that
/// the container cannot trim (MP3 without a LAME tag, ADTS).
fn allowed_extra(format: OutputFormat) -> usize {
    match format {
        // 1105 samples of LAME delay plus two 1152-sample frames.
        OutputFormat::Mp3 { .. } => 1105 + 2 * 1152,
        // FDK's delay (2048 samples for AAC-LC) plus two 1024-sample frames.
        OutputFormat::Aac => 2048 + 2 * 1024,
        _ => 0,
    }
}

fn check_tone(format: OutputFormat, bytes: &[u8], input_len: usize) {
    let decoded = decode_as(format, bytes);
    assert_eq!(decoded.sample_rate, format.sample_rate(), "{format}");
    let expected = (input_len as u64 * u64::from(format.sample_rate()))
        .div_ceil(u64::from(SOURCE_RATE)) as usize;
    let extra = decoded.samples.len() as i64 - expected as i64;
    assert!(
        extra >= 0 && extra as usize <= allowed_extra(format),
        "{format}: {} samples decoded, {expected} expected",
        decoded.samples.len()
    );
    // The steady middle of the tone (away from encoder delay and edges).
    let rate = decoded.sample_rate as usize;
    let middle = &decoded.samples[rate / 4..rate / 4 + rate];
    let frequency = dominant_frequency(middle, decoded.sample_rate);
    assert!(
        (frequency - TONE_HZ).abs() < 1.0,
        "{format}: dominant frequency {frequency} Hz"
    );
    let full_level = f64::from(AMPLITUDE) / 2f64.sqrt();
    let level = rms(middle) / full_level;
    assert!(
        (0.9..1.1).contains(&level),
        "{format}: level {level} of the input's"
    );
    // Nothing cut at the end: past the encoder delay (the tone's onset), the tone lasts at
    // full level until 10 ms before its expected end.
    let onset = decoded.samples.iter().position(|s| s.abs() > 0.05).unwrap();
    let end = onset + expected - rate / 100;
    let tail = decoded
        .samples
        .get(end - rate / 20..end)
        .unwrap_or_else(|| panic!("{format}: the tone ends early"));
    let tail_level = rms(tail) / full_level;
    assert!(
        (0.8..1.2).contains(&tail_level),
        "{format}: tail level {tail_level}"
    );
}

fn all_formats() -> Vec<OutputFormat> {
    let openai = ["mp3", "opus", "aac", "flac", "wav", "pcm"]
        .map(|name| OutputFormat::from_openai(name).unwrap());
    let elevenlabs = [
        "mp3_22050_32",
        "mp3_44100_32",
        "mp3_44100_64",
        "mp3_44100_96",
        "mp3_44100_128",
        "mp3_44100_192",
        "pcm_8000",
        "pcm_16000",
        "pcm_22050",
        "pcm_24000",
        "pcm_44100",
        "pcm_48000",
        "ulaw_8000",
        "opus_48000_32",
        "opus_48000_64",
        "opus_48000_96",
        "opus_48000_128",
        "opus_48000_192",
    ]
    .map(|name| OutputFormat::from_elevenlabs(name).unwrap());
    openai.into_iter().chain(elevenlabs).collect()
}

#[test]
fn every_format_decodes_back_to_the_tone_at_its_rate_and_length() {
    let input = tone(SOURCE_RATE, SECONDS, TONE_HZ, AMPLITUDE);
    for format in all_formats() {
        check_tone(format, &encode(&input, format), input.len());
    }
}

/// Sentence-sized pieces of uneven length, as a streaming endpoint pushes them.
fn pieces(input: &[f32]) -> Vec<&[f32]> {
    let mut pieces = Vec::new();
    let mut rest = input;
    for size in [7_013, 11, 4_800, 9_999, 3].into_iter().cycle() {
        if rest.is_empty() {
            return pieces;
        }
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    unreachable!()
}

#[test]
fn streamed_output_decodes_like_the_whole_file_and_arrives_early() {
    let input = tone(SOURCE_RATE, SECONDS, TONE_HZ, AMPLITUDE);
    for format in all_formats() {
        let mut encoder = StreamEncoder::new(format);
        let mut bytes = Vec::new();
        let mut sent_before_finish = 0;
        for piece in pieces(&input) {
            bytes.extend(encoder.push(piece));
            sent_before_finish = bytes.len();
        }
        bytes.extend(encoder.finish());
        if format.streams() {
            assert!(
                sent_before_finish > bytes.len() / 2,
                "{format}: only {sent_before_finish} of {} bytes before finish",
                bytes.len()
            );
        }
        check_tone(format, &bytes, input.len());
    }
}

#[test]
fn streamed_pcm_is_identical_to_the_whole_file_at_every_rate() {
    let input = tone(SOURCE_RATE, SECONDS, TONE_HZ, AMPLITUDE);
    for name in [
        "pcm_8000",
        "pcm_16000",
        "pcm_22050",
        "pcm_24000",
        "pcm_44100",
        "pcm_48000",
        "ulaw_8000",
    ] {
        let format = OutputFormat::from_elevenlabs(name).unwrap();
        let mut encoder = StreamEncoder::new(format);
        let mut streamed = Vec::new();
        for piece in pieces(&input) {
            streamed.extend(encoder.push(piece));
        }
        streamed.extend(encoder.finish());
        assert!(streamed == encode(&input, format), "{name}");
    }
}

#[test]
fn streamed_wav_has_an_open_ended_header() {
    let format = OutputFormat::from_openai("wav").unwrap();
    let mut encoder = StreamEncoder::new(format);
    let first = encoder.push(&[0.25; 2400]);
    assert_eq!(&first[..4], b"RIFF");
    assert_eq!(&first[4..8], &u32::MAX.to_le_bytes());
    assert_eq!(&first[36..40], b"data");
    assert_eq!(&first[40..44], &u32::MAX.to_le_bytes());
    assert_eq!(first.len(), 44 + 2 * 2400);
}

#[test]
fn empty_input_still_makes_a_valid_stream() {
    for format in all_formats() {
        let bytes = encode(&[], format);
        match format {
            OutputFormat::Pcm { .. } | OutputFormat::Ulaw => assert!(bytes.is_empty()),
            OutputFormat::Opus { .. } => assert!(decode_ogg_opus(&bytes).samples.is_empty()),
            _ => assert!(!bytes.is_empty(), "{format}"),
        }
    }
}

#[test]
fn format_metadata_matches_the_apis() {
    let mp3 = OutputFormat::default();
    assert_eq!(mp3, OutputFormat::from_openai("mp3").unwrap());
    assert_eq!(
        (mp3.content_type(), mp3.file_extension(), mp3.sample_rate()),
        ("audio/mpeg", "mp3", 24_000)
    );
    let pcm = OutputFormat::from_openai("pcm").unwrap();
    assert_eq!(
        (pcm.content_type(), pcm.sample_rate()),
        ("audio/pcm", 24_000)
    );
    let opus = OutputFormat::from_elevenlabs("opus_48000_96").unwrap();
    assert_eq!(opus, OutputFormat::Opus { kbps: 96 });
    assert_eq!(
        (
            opus.content_type(),
            opus.file_extension(),
            opus.sample_rate()
        ),
        ("audio/ogg", "opus", 48_000)
    );
    let ulaw = OutputFormat::from_elevenlabs("ulaw_8000").unwrap();
    assert_eq!(
        (ulaw.content_type(), ulaw.sample_rate()),
        ("audio/basic", 8_000)
    );
    assert_eq!(
        OutputFormat::from_elevenlabs("mp3_22050_32").unwrap(),
        OutputFormat::Mp3 {
            sample_rate: 22_050,
            kbps: 32
        }
    );
    assert_eq!(
        OutputFormat::from_openai("aac").unwrap().content_type(),
        "audio/aac"
    );
    assert_eq!(
        OutputFormat::from_openai("flac").unwrap().content_type(),
        "audio/flac"
    );
}

#[test]
fn unknown_formats_are_refused_naming_the_field_and_the_choices() {
    let error = OutputFormat::from_openai("ogg").unwrap_err();
    assert_eq!(error.field, "response_format");
    assert_eq!(error.value, "ogg");
    assert_eq!(error.accepted, ["mp3", "opus", "aac", "flac", "wav", "pcm"]);
    let message = error.to_string();
    assert!(
        message.contains("response_format") && message.contains("\"ogg\""),
        "{message}"
    );
    assert!(
        message.contains("mp3, opus, aac, flac, wav, pcm"),
        "{message}"
    );

    // Each API's names belong to that API only.
    let error = OutputFormat::from_elevenlabs("mp3").unwrap_err();
    assert_eq!(error.field, "output_format");
    assert!(error.accepted.contains(&"mp3_44100_128") && error.accepted.contains(&"ulaw_8000"));
    assert_eq!(error.accepted.len(), 18);
    assert!(OutputFormat::from_openai("mp3_44100_128").is_err());
    assert!(OutputFormat::from_elevenlabs("pcm_96000").is_err());
    assert!(OutputFormat::from_openai("MP3").is_err());

    // Our own download accepts both sets under `format`.
    assert_eq!(
        OutputFormat::from_name("flac"),
        OutputFormat::from_openai("flac")
    );
    assert_eq!(OutputFormat::from_name("ulaw_8000"), Ok(OutputFormat::Ulaw));
    let error = OutputFormat::from_name("aiff").unwrap_err();
    assert_eq!(error.field, "format");
    assert_eq!(error.accepted.len(), 6 + 18);
}
