//! Every upload fixture is a file that Resonance's decoder reads back as the signal it was
//! made from: its container, its length and its loudness.

use resonance_testkit::audio::{UploadFormat, encode_as, speech_like};

fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

#[test]
fn every_upload_format_decodes_to_the_signal() {
    let signal = speech_like(12.0, 0.5, 3);
    for format in UploadFormat::ALL {
        let bytes = encode_as(&signal, format);
        let magic: &[u8] = match format {
            UploadFormat::Wav => b"RIFF",
            UploadFormat::Mp3 => &[0xFF],
            UploadFormat::Flac => b"fLaC",
            UploadFormat::OggVorbis | UploadFormat::OggOpus => b"OggS",
            UploadFormat::Aac => &[0xFF],
            UploadFormat::M4a => b"\0\0\0\x1cftypM4A ",
            UploadFormat::WebmOpus => &[0x1A, 0x45, 0xDF, 0xA3],
        };
        assert!(bytes.starts_with(magic), "{format:?} starts with {magic:?}");

        let decoded = resonance_audio::decode(&bytes, Some(format.content_type()))
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        let seconds = decoded.duration_secs();
        assert!((seconds - 12.0).abs() < 0.15, "{format:?}: {seconds} s");
        let (expected, actual) = (rms(&signal), rms(&decoded.samples));
        assert!(
            (actual / expected - 1.0).abs() < 0.1,
            "{format:?}: RMS {actual:.4}, expected {expected:.4}"
        );
    }
}

#[test]
fn webm_and_m4a_carry_the_codec_of_their_source() {
    let signal = speech_like(12.0, 0.5, 1);
    let webm = encode_as(&signal, UploadFormat::WebmOpus);
    assert!(
        webm.windows(6).any(|w| w == b"A_OPUS"),
        "WebM names its codec"
    );
    assert!(
        webm.windows(8).any(|w| w == b"OpusHead"),
        "WebM carries OpusHead"
    );
    let m4a = encode_as(&signal, UploadFormat::M4a);
    for box_type in [b"moov", b"mp4a", b"esds", b"mdat"] {
        assert!(
            m4a.windows(4).any(|w| w == box_type),
            "M4A has {box_type:?}"
        );
    }
    let decoded = resonance_audio::decode(&m4a, Some("audio/mp4")).unwrap();
    assert_eq!(decoded.sample_rate, 24_000, "AAC at the encoder's rate");
}
