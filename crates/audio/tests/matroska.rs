//! The Matroska reader on hand-built files: unknown-size segments and clusters as a live
//! recording writes them, each lacing of RFC 9559, other tracks skipped, a cut-off end.

use resonance_audio::matroska::{AudioTrack, MatroskaError, for_each_audio_frame};

/// An element with a 1-byte-marker size of 8 bytes (or unknown).
fn element(id: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.push(0x01);
    out.extend_from_slice(&(data.len() as u64).to_be_bytes()[1..]);
    out.extend_from_slice(data);
    out
}

fn unknown_size(id: &[u8], data: &[u8]) -> Vec<u8> {
    [id, &[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], data].concat()
}

fn track(number: u8, kind: u8, codec: &str, channels: u8) -> Vec<u8> {
    element(
        &[0xAE],
        &[
            element(&[0xD7], &[number]),
            element(&[0x83], &[kind]),
            element(&[0x86], codec.as_bytes()),
            element(&[0xE1], &element(&[0x9F], &[channels])),
        ]
        .concat(),
    )
}

/// A `SimpleBlock` of track `number` with `lacing` flags and the bytes after the flags.
fn block(number: u8, lacing: u8, body: &[u8]) -> Vec<u8> {
    element(
        &[0xA3],
        &[&[0x80 | number, 0, 0, lacing << 1], body].concat(),
    )
}

fn file(tracks: &[Vec<u8>], clusters: &[Vec<u8>]) -> Vec<u8> {
    let header = element(&[0x1A, 0x45, 0xDF, 0xA3], &element(&[0x42, 0x82], b"webm"));
    let tracks = element(&[0x16, 0x54, 0xAE, 0x6B], &tracks.concat());
    let clusters: Vec<u8> = clusters
        .iter()
        .flat_map(|blocks| unknown_size(&[0x1F, 0x43, 0xB6, 0x75], blocks))
        .collect();
    [
        header,
        unknown_size(&[0x18, 0x53, 0x80, 0x67], &[tracks, clusters].concat()),
    ]
    .concat()
}

fn frames(bytes: &[u8]) -> Result<(AudioTrack, Vec<Vec<u8>>), MatroskaError> {
    let mut frames = Vec::new();
    let track = for_each_audio_frame(bytes, |_, frame| {
        frames.push(frame.to_vec());
        Ok::<_, MatroskaError>(())
    })?;
    Ok((track, frames))
}

#[test]
fn frames_of_the_audio_track_in_every_lacing() {
    let bytes = file(
        &[track(1, 1, "V_VP8", 0), track(2, 2, "A_OPUS", 2)],
        &[
            [
                block(2, 0, b"plain"),
                block(1, 0, b"video"),
                // Xiph: 2 sizes (3 and 256 = 255 + 1), then the rest.
                block(
                    2,
                    0b01,
                    &[&[2, 3, 255, 1][..], b"abc", &[7; 256], b"last"].concat(),
                ),
            ]
            .concat(),
            [
                // EBML: first size 2, then +1 (0xC0: 64 less the bias of 63).
                block(
                    2,
                    0b11,
                    &[&[2, 0x82, 0xC0][..], b"ab", b"cde", b"tail"].concat(),
                ),
                // Fixed: 3 frames of 2 bytes.
                block(2, 0b10, &[&[2][..], b"xxyyzz"].concat()),
            ]
            .concat(),
        ],
    );
    let (track, frames) = frames(&bytes).unwrap();
    assert_eq!(
        track,
        AudioTrack {
            number: 2,
            codec: "A_OPUS".into(),
            channels: 2
        }
    );
    let expected: Vec<Vec<u8>> = vec![
        b"plain".to_vec(),
        b"abc".to_vec(),
        vec![7; 256],
        b"last".to_vec(),
        b"ab".to_vec(),
        b"cde".to_vec(),
        b"tail".to_vec(),
        b"xx".to_vec(),
        b"yy".to_vec(),
        b"zz".to_vec(),
    ];
    assert_eq!(frames, expected);
}

#[test]
fn a_cut_off_recording_keeps_the_frames_before_the_cut() {
    let bytes = file(
        &[track(1, 2, "A_OPUS", 1)],
        &[[block(1, 0, b"one"), block(1, 0, b"two")].concat()],
    );
    let (_, frames) = frames(&bytes[..bytes.len() - 2]).unwrap();
    assert_eq!(frames, vec![b"one".to_vec()]);
}

#[test]
fn lying_sizes_and_lacing_are_errors() {
    let no_audio = file(&[track(1, 1, "V_VP8", 0)], &[block(1, 0, b"video")]);
    assert_eq!(
        frames(&no_audio).unwrap_err().to_string(),
        "the file has no audio track"
    );
    // Fixed lacing of 3 frames over 5 bytes.
    let uneven = file(
        &[track(1, 2, "A_OPUS", 1)],
        &[block(1, 0b10, &[&[2][..], b"12345"].concat())],
    );
    assert!(frames(&uneven).is_err());
    // Xiph lacing claiming more than the block holds.
    let overlong = file(
        &[track(1, 2, "A_OPUS", 1)],
        &[block(1, 0b01, &[&[1, 200][..], b"short"].concat())],
    );
    assert!(frames(&overlong).is_err());
    // A track entry larger than its Tracks element.
    let mut bad_entry = file(&[track(1, 2, "A_OPUS", 1)], &[]);
    let entry = bad_entry
        .windows(2)
        .position(|w| w == [0xAE, 0x01])
        .unwrap();
    bad_entry[entry + 8] = 0xFF;
    assert!(frames(&bad_entry).is_err());
    // A first byte of 0 is no size at all (symphonia's reader overflows on it).
    let mut zero_size = file(&[track(1, 2, "A_OPUS", 1)], &[]);
    zero_size[4] = 0;
    assert!(frames(&zero_size).is_err());
}

#[test]
fn webm_with_another_codec_is_refused_by_name() {
    let vorbis = file(&[track(1, 2, "A_VORBIS", 1)], &[block(1, 0, b"packet")]);
    let error = resonance_audio::decode(&vorbis, Some("audio/webm")).unwrap_err();
    assert!(
        matches!(error, resonance_audio::DecodeError::UnsupportedCodec),
        "{error}"
    );
}
