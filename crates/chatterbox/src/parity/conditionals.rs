//! Parity with the conditioning part of the `turbo_e2e` fixture. The clip is at 24 kHz
//! already, and T3's part gets the reference's own 16 kHz wave (librosa's soxr output),
//! so every step compared runs exactly as in the reference.

use candle_core::{Device, Tensor};
use resonance_audio::loudness::{LoudnessError, normalize_to};

use super::fixtures::Fixture;
use super::{Check, Tolerance, compare};
use crate::voice_conditioner::{REFERENCE_LUFS, S3GEN_PROMPT_SECONDS, VoiceConditioner};

pub fn checks(fixture: &Fixture) -> candle_core::Result<Vec<Check>> {
    let cfg = fixture.config()?;
    let weights = fixture.weights()?;
    let conditioner = VoiceConditioner::new(&cfg, weights.pp("s3gen"), weights.pp("ve"))?;
    let msg = |e: LoudnessError| candle_core::Error::Msg(e.to_string());

    let mut wav: Vec<f32> = fixture.tensor("ref_wav_24k")?.to_vec1()?;
    let lufs = resonance_audio::loudness::integrated_loudness(&wav, conditioner.s3gen_rate)
        .map_err(msg)?;
    normalize_to(&mut wav, conditioner.s3gen_rate, REFERENCE_LUFS).map_err(msg)?;
    let s3gen_len = wav
        .len()
        .min(S3GEN_PROMPT_SECONDS * conditioner.s3gen_rate as usize);
    let s3gen = conditioner.s3gen_conditionals(&wav[..s3gen_len])?;
    let wav_16k: Vec<f32> = fixture.tensor("ref_wav_16k")?.to_vec1()?;
    let t3 = conditioner.t3_conditionals(&wav_16k)?;

    let tokens = |ids: &[u32]| Tensor::from_vec(ids.to_vec(), (1, ids.len()), &Device::Cpu);
    let count = |n: usize| Tensor::new(&[n as i64], &Device::Cpu);
    Ok(vec![
        compare(
            fixture,
            "ref_loudness_lufs",
            &Tensor::new(&[lufs], &Device::Cpu)?,
            Tolerance::Absolute(1e-6),
        )?,
        compare(
            fixture,
            "ref_wav_24k_loudnorm",
            &Tensor::new(wav.as_slice(), &Device::Cpu)?,
            Tolerance::Absolute(1e-6),
        )?,
        compare(fixture, "ref.prompt_token", &s3gen.tokens, Tolerance::Exact)?,
        compare(
            fixture,
            "ref.prompt_token_len",
            &count(s3gen.tokens.dim(1)?)?,
            Tolerance::Exact,
        )?,
        compare(
            fixture,
            "ref.prompt_feat",
            &s3gen.mel,
            Tolerance::Absolute(1e-4),
        )?,
        compare(
            fixture,
            "ref.embedding",
            &s3gen.embedding,
            Tolerance::Absolute(1e-4),
        )?,
        compare(
            fixture,
            "t3_cond_prompt_tokens",
            &tokens(&t3.prompt_tokens)?,
            Tolerance::Exact,
        )?,
        compare(
            fixture,
            "ve_speaker_emb",
            &t3.speaker_emb,
            Tolerance::Absolute(1e-4),
        )?,
    ])
}
