//! M4A (an MP4 file with one AAC track), as phones and desktop recorders write it: `ftyp`,
//! the sample tables in `moov`, then the frames in `mdat`. Box layout from ISO/IEC
//! 14496-12 (ISO base media file format) and 14496-14 (`esds`); the AAC configuration from
//! ISO/IEC 14496-3 (AudioSpecificConfig, ADTS).

/// Samples per AAC-LC frame.
const AAC_FRAME: u32 = 1024;
/// ISO/IEC 14496-3 sampling frequency indices.
const ADTS_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];
/// 1.0 in 16.16 fixed point; the identity matrix's `w` entry is 1.0 in 2.30.
const FIXED_ONE: u32 = 0x0001_0000;
const IDENTITY_MATRIX: [u32; 9] = [FIXED_ONE, 0, 0, 0, FIXED_ONE, 0, 0, 0, 0x4000_0000];
/// "und" packed as three 5-bit letters (ISO 639-2 minus 0x60).
const LANGUAGE_UNDETERMINED: u16 = 0x55C4;

/// The stream parameters an ADTS header carries.
struct AdtsConfig {
    object_type: u8,
    rate_index: u8,
    channels: u8,
}

/// Rewraps an ADTS stream (Resonance's AAC encoder) as M4A: the headers become one
/// AudioSpecificConfig in `esds`, the raw frames the track's samples.
pub fn m4a_from_adts(adts: &[u8]) -> Vec<u8> {
    let (config, frames) = split_adts(adts);
    let rate = ADTS_RATES[usize::from(config.rate_index)];
    let duration = frames.len() as u32 * AAC_FRAME;

    let file_type = mp4_box(
        b"ftyp",
        &[b"M4A ".as_slice(), &0u32.to_be_bytes(), b"M4A mp42isom"].concat(),
    );
    // The sample table points into `mdat`, which follows `moov`: its offset depends on
    // `moov`'s size, which does not depend on the offset's value.
    let movie_without_offset = movie(&config, rate, duration, &frames, 0);
    let data_offset = (file_type.len() + movie_without_offset.len() + 8) as u32;
    let movie = movie(&config, rate, duration, &frames, data_offset);
    let media_data = mp4_box(b"mdat", &frames.concat());
    [file_type, movie, media_data].concat()
}

/// The stream's configuration and its raw frames (headers removed).
fn split_adts(mut adts: &[u8]) -> (AdtsConfig, Vec<&[u8]>) {
    let mut config = None;
    let mut frames = Vec::new();
    while !adts.is_empty() {
        assert!(
            adts.len() >= 7 && adts[0] == 0xFF && adts[1] & 0xF0 == 0xF0,
            "an ADTS sync word"
        );
        let protection_absent = adts[1] & 1 == 1;
        let header_len = if protection_absent { 7 } else { 9 };
        let frame_len = (usize::from(adts[3] & 0x03) << 11)
            | (usize::from(adts[4]) << 3)
            | usize::from(adts[5] >> 5);
        config.get_or_insert(AdtsConfig {
            object_type: (adts[2] >> 6) + 1,
            rate_index: (adts[2] >> 2) & 0x0F,
            channels: ((adts[2] & 0x01) << 2) | (adts[3] >> 6),
        });
        frames.push(&adts[header_len..frame_len]);
        adts = &adts[frame_len..];
    }
    (config.expect("at least one ADTS frame"), frames)
}

fn movie(
    config: &AdtsConfig,
    rate: u32,
    duration: u32,
    frames: &[&[u8]],
    data_offset: u32,
) -> Vec<u8> {
    let movie_header = full_box(
        b"mvhd",
        0,
        &[
            u32s(&[0, 0, rate, duration, FIXED_ONE]),
            0x0100u16.to_be_bytes().to_vec(), // volume 1.0
            vec![0; 10],
            u32s(&IDENTITY_MATRIX),
            vec![0; 24],
            u32s(&[2]), // next track id
        ]
        .concat(),
    );
    let track_header = full_box(
        b"tkhd",
        0x03, // enabled, in movie
        &[
            u32s(&[0, 0, 1, 0, duration, 0, 0]),
            vec![0; 4],                       // layer, alternate group
            0x0100u16.to_be_bytes().to_vec(), // volume 1.0
            vec![0; 2],
            u32s(&IDENTITY_MATRIX),
            u32s(&[0, 0]), // width, height
        ]
        .concat(),
    );
    let media_header = full_box(
        b"mdhd",
        0,
        &[
            u32s(&[0, 0, rate, duration]),
            LANGUAGE_UNDETERMINED.to_be_bytes().to_vec(),
            vec![0; 2],
        ]
        .concat(),
    );
    let handler = full_box(
        b"hdlr",
        0,
        &[
            vec![0; 4],
            b"soun".to_vec(),
            vec![0; 12],
            b"SoundHandler\0".to_vec(),
        ]
        .concat(),
    );
    let data_information = mp4_box(
        b"dinf",
        &full_box(
            b"dref",
            0,
            &[u32s(&[1]), full_box(b"url ", 0x01, &[])].concat(), // data in this file
        ),
    );
    let sample_table = mp4_box(
        b"stbl",
        &[
            full_box(
                b"stsd",
                0,
                &[u32s(&[1]), sample_entry(config, rate)].concat(),
            ),
            full_box(b"stts", 0, &u32s(&[1, frames.len() as u32, AAC_FRAME])),
            full_box(b"stsc", 0, &u32s(&[1, 1, frames.len() as u32, 1])),
            full_box(
                b"stsz",
                0,
                &[
                    u32s(&[0, frames.len() as u32]),
                    frames
                        .iter()
                        .flat_map(|frame| (frame.len() as u32).to_be_bytes())
                        .collect(),
                ]
                .concat(),
            ),
            full_box(b"stco", 0, &u32s(&[1, data_offset])),
        ]
        .concat(),
    );
    let media_information = mp4_box(
        b"minf",
        &[
            full_box(b"smhd", 0, &[0; 4]),
            data_information,
            sample_table,
        ]
        .concat(),
    );
    let media = mp4_box(
        b"mdia",
        &[media_header, handler, media_information].concat(),
    );
    let track = mp4_box(b"trak", &[track_header, media].concat());
    mp4_box(b"moov", &[movie_header, track].concat())
}

/// `mp4a` with its `esds`: an MPEG-4 audio elementary stream whose decoder-specific info
/// is the AudioSpecificConfig.
fn sample_entry(config: &AdtsConfig, rate: u32) -> Vec<u8> {
    const ES_DESCRIPTOR: u8 = 0x03;
    const DECODER_CONFIG_DESCRIPTOR: u8 = 0x04;
    const DECODER_SPECIFIC_INFO: u8 = 0x05;
    const SL_CONFIG_DESCRIPTOR: u8 = 0x06;
    const OBJECT_TYPE_MPEG4_AUDIO: u8 = 0x40;
    /// Stream type 5 (audio) in the upper six bits, then upstream 0 and reserved 1.
    const STREAM_TYPE_AUDIO: u8 = (0x05 << 2) | 1;
    /// Predefined SL configuration for MP4 files.
    const SL_PREDEFINED_MP4: u8 = 0x02;

    let audio_specific_config = [
        (config.object_type << 3) | (config.rate_index >> 1),
        ((config.rate_index & 1) << 7) | (config.channels << 3),
    ];
    let decoder_config = descriptor(
        DECODER_CONFIG_DESCRIPTOR,
        &[
            vec![OBJECT_TYPE_MPEG4_AUDIO, STREAM_TYPE_AUDIO, 0, 0, 0], // buffer size unknown
            u32s(&[0, 0]), // maximum and average bitrate unknown
            descriptor(DECODER_SPECIFIC_INFO, &audio_specific_config),
        ]
        .concat(),
    );
    let es = descriptor(
        ES_DESCRIPTOR,
        &[
            vec![0, 1, 0], // ES_ID 1, no dependencies, URL or OCR stream
            decoder_config,
            descriptor(SL_CONFIG_DESCRIPTOR, &[SL_PREDEFINED_MP4]),
        ]
        .concat(),
    );
    mp4_box(
        b"mp4a",
        &[
            vec![0; 6],
            1u16.to_be_bytes().to_vec(), // data reference index
            vec![0; 8],
            u16::from(config.channels).to_be_bytes().to_vec(),
            16u16.to_be_bytes().to_vec(), // sample size
            vec![0; 4],
            u32s(&[rate << 16]), // 16.16 fixed point
            full_box(b"esds", 0, &es),
        ]
        .concat(),
    )
}

/// An MPEG-4 descriptor with a one-byte length (all of ours are shorter than 128 bytes).
fn descriptor(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = u8::try_from(body.len()).expect("a short descriptor");
    assert!(len < 0x80, "a one-byte descriptor length");
    [&[tag, len], body].concat()
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let size = (8 + body.len()) as u32;
    [&size.to_be_bytes(), kind.as_slice(), body].concat()
}

/// A box with a version byte and 24 bits of flags; version 0 for all of ours.
fn full_box(kind: &[u8; 4], flags: u32, body: &[u8]) -> Vec<u8> {
    mp4_box(kind, &[&flags.to_be_bytes(), body].concat())
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}
