//! The reference's conditioning audio steps against the end-to-end fixtures: pyloudnorm
//! loudness normalization to -27 LUFS (`norm_loudness`), torchaudio's 24 -> 16 kHz
//! resample inside S3Gen `embed_ref`, and the CAMPPlus x-vector of that resampled wave.

use candle_core::{IndexOp, Tensor};
use chatterbox::campplus::Campplus;
use chatterbox::parity::fixtures::{Fixture, fixture_dir, max_abs_diff};
use resonance_audio::loudness::{integrated_loudness, normalize_to};
use resonance_audio::resample::resample_like_torchaudio;

const TARGET_LUFS: f64 = -27.0;

fn wave(fixture: &Fixture, name: &str) -> anyhow::Result<Vec<f32>> {
    Ok(fixture.tensor(name)?.flatten_all()?.to_vec1()?)
}

fn max_err(ours: &[f32], expected: &Tensor) -> anyhow::Result<f64> {
    let ours = Tensor::from_slice(ours, ours.len(), expected.device())?;
    Ok(max_abs_diff(&ours, &expected.flatten_all()?)?)
}

#[test]
fn loudness_normalization_matches_turbo_conditioning() -> anyhow::Result<()> {
    let fixture = Fixture::load(&fixture_dir(), "turbo_e2e")?;
    let mut wav = wave(&fixture, "ref_wav_24k")?;
    let expected_lufs: Vec<f64> = fixture.tensor("ref_loudness_lufs")?.to_vec1()?;
    let lufs = integrated_loudness(&wav, 24_000)?;
    assert!(
        (lufs - expected_lufs[0]).abs() < 1e-5,
        "{lufs} vs {}",
        expected_lufs[0]
    );

    normalize_to(&mut wav, 24_000, TARGET_LUFS)?;
    let err = max_err(&wav, &fixture.tensor("ref_wav_24k_loudnorm")?)?;
    assert!(err < 1e-6, "normalized wave differs by {err:e}");
    Ok(())
}

#[test]
fn torchaudio_resample_matches_embed_ref() -> anyhow::Result<()> {
    for (module, input, expected) in [
        ("s3gen_meanflow_e2e", "ref_wav_24k", "ref.wav_16k"),
        ("turbo_e2e", "ref_wav_24k_loudnorm", "embed_ref_wav_16k"),
    ] {
        let fixture = Fixture::load(&fixture_dir(), module)?;
        let wav_16k = resample_like_torchaudio(&wave(&fixture, input)?, 24_000, 16_000)?;
        let err = max_err(&wav_16k, &fixture.tensor(expected)?)?;
        assert!(err < 1e-6, "{module}: 16 kHz wave differs by {err:e}");
    }
    Ok(())
}

#[test]
fn campplus_embedding_of_embed_ref_matches() -> anyhow::Result<()> {
    for (module, prefix, input) in [
        ("s3gen_meanflow_e2e", "speaker_encoder", "ref_wav_24k"),
        ("turbo_e2e", "s3gen.speaker_encoder", "ref_wav_24k_loudnorm"),
    ] {
        let fixture = Fixture::load(&fixture_dir(), module)?;
        let model = Campplus::new(&fixture.config()?.campplus, fixture.weights()?.pp(prefix))?;
        let wav_16k = resample_like_torchaudio(&wave(&fixture, input)?, 24_000, 16_000)?;
        let embedding = model.embed(&wav_16k)?;
        let expected = fixture.tensor("ref.embedding")?.i(0)?;
        let err = max_abs_diff(&embedding, &expected)?;
        assert!(err < 1e-4, "{module}: x-vector differs by {err:e}");
    }
    Ok(())
}
