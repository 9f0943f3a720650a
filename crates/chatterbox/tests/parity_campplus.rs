//! CAMPPlus (S3Gen speaker x-vector) against the reference fixture.

use chatterbox::campplus::Campplus;
use chatterbox::parity::fixtures::{Fixture, fixture_dir};

#[test]
fn campplus_matches_reference() {
    chatterbox::parity::assert_module_passes("campplus");
}

#[test]
fn embed_gives_one_vector_and_rejects_too_short_waves() -> anyhow::Result<()> {
    let fixture = Fixture::load(&fixture_dir(), "campplus")?;
    let cfg = fixture.config()?.campplus;
    let model = Campplus::new(&cfg, fixture.weights()?.pp("speaker_encoder"))?;
    let wav: Vec<f32> = fixture.tensor("wav_16k")?.flatten_all()?.to_vec1()?;

    let embedding = model.embed(&wav[..16_000])?;
    assert_eq!(embedding.dims(), [cfg.embedding_size]);
    let values: Vec<f32> = embedding.to_vec1()?;
    assert!(values.iter().all(|v| v.is_finite()));

    let err = model.embed(&wav[..300]).unwrap_err().to_string();
    assert!(err.contains("shorter than one 400-sample frame"), "{err}");
    Ok(())
}

#[test]
fn missing_weight_is_named() -> anyhow::Result<()> {
    let fixture = Fixture::load(&fixture_dir(), "campplus")?;
    let cfg = fixture.config()?.campplus;
    let err = match Campplus::new(&cfg, fixture.weights()?.pp("no_such_prefix")) {
        Ok(_) => panic!("loading under a wrong prefix must fail"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("no_such_prefix.head"), "{err}");
    Ok(())
}
