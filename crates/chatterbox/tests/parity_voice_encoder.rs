//! VoiceEncoder against the reference fixture: silence trimming (exact), power mel,
//! partial windows, per-partial and utterance embeddings.

use chatterbox::parity::fixtures::{Fixture, fixture_dir};
use chatterbox::voice_encoder::VoiceEncoder;

#[test]
fn voice_encoder_matches_reference() {
    chatterbox::parity::assert_module_passes("voice_encoder");
}

#[test]
fn embedding_is_a_unit_vector_of_speaker_embed_size() {
    let fixture = Fixture::load(&fixture_dir(), "voice_encoder").unwrap();
    let cfg = fixture.config().unwrap();
    let encoder = VoiceEncoder::new(&cfg.ve, fixture.weights().unwrap()).unwrap();
    let wav = fixture.tensor("wav_16k").unwrap().to_vec1::<f32>().unwrap();
    let embed = encoder.embed_utterance(&wav).unwrap();
    assert_eq!(embed.dims(), &[cfg.ve.speaker_embed_size]);
    let norm = embed
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((norm - 1.0).abs() < 1e-5, "squared norm {norm}");
}

#[test]
fn too_short_audio_is_a_clear_error() {
    let fixture = Fixture::load(&fixture_dir(), "voice_encoder").unwrap();
    let cfg = fixture.config().unwrap();
    let encoder = VoiceEncoder::new(&cfg.ve, fixture.weights().unwrap()).unwrap();
    let err = encoder.embed_utterance(&[]).unwrap_err();
    assert!(err.to_string().contains("too short"), "{err}");
}
