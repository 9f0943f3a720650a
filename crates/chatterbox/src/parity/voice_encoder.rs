//! Parity against the `voice_encoder` fixture.

use candle_core::{Device, Result, Tensor};

use super::fixtures::Fixture;
use super::{Check, Tolerance, compare};
use crate::voice_encoder::{VoiceEncoder, trim_silence};

pub fn checks(fixture: &Fixture) -> Result<Vec<Check>> {
    let cfg = fixture.config()?;
    let encoder = VoiceEncoder::new(&cfg.ve, fixture.weights()?)?;
    let wav = fixture.tensor("wav_16k")?.to_vec1::<f32>()?;

    let (start, end) = trim_silence(&wav, cfg.ve.embeds_from_wavs.trim_top_db);
    let trim_index = Tensor::new(&[start as i64, end as i64], &Device::Cpu)?;
    let trimmed = &wav[start..end];
    let wav_trimmed = Tensor::new(trimmed, &Device::Cpu)?;
    let mel_basis = encoder.mel_filters.to_tensor(&Device::Cpu)?;
    let mel = encoder.mel_spectrogram(trimmed)?;
    let partials = encoder.partials(&mel)?;
    let partial_embeds = encoder.forward(&partials)?;
    let embeds = encoder.embed_utterance(&wav)?.unsqueeze(0)?;

    Ok(vec![
        compare(fixture, "trim_index", &trim_index, Tolerance::Exact)?,
        compare(fixture, "wav_trimmed", &wav_trimmed, Tolerance::Exact)?,
        compare(fixture, "mel_basis", &mel_basis, Tolerance::Absolute(1e-6))?,
        compare(fixture, "mel", &mel, Tolerance::Absolute(1e-4))?,
        compare(fixture, "partials", &partials, Tolerance::Absolute(1e-4))?,
        compare(
            fixture,
            "partial_embeds",
            &partial_embeds,
            Tolerance::Absolute(1e-4),
        )?,
        compare(fixture, "embeds", &embeds, Tolerance::Absolute(1e-4))?,
        compare(fixture, "speaker_emb", &embeds, Tolerance::Absolute(1e-4))?,
    ])
}
