//! Parity against the `s3tokenizer_v2` fixture.

use candle_core::{DType, Device, Result, Tensor};

use super::fixtures::Fixture;
use super::{Check, Tolerance, compare};
use crate::s3tokenizer::S3Tokenizer;

pub fn checks(fixture: &Fixture) -> Result<Vec<Check>> {
    let cfg = fixture.config()?;
    let tokenizer = S3Tokenizer::new(&cfg.s3tokenizer, fixture.weights()?.pp("tokenizer"))?;
    let wav = fixture.tensor("wav_16k")?.to_vec1::<f32>()?;
    let tokens_tensor = |tokens: Vec<u32>| -> Result<Tensor> {
        let n = tokens.len();
        Tensor::from_vec(tokens, (1, n), &Device::Cpu)?.to_dtype(DType::I64)
    };
    let lens_tensor = |n: usize| Tensor::new(&[n as i64], &Device::Cpu);

    let log_mel = tokenizer.log_mel_spectrogram(&wav)?;
    let encoder_out = tokenizer.encoder.forward(&log_mel)?;
    let fsq_proj = tokenizer.quantizer.project(&encoder_out)?;
    let tokens = tokenizer.tokenize(&wav, None)?;
    let token_lens = lens_tensor(tokens.len())?;
    let max_len = fixture.json["params"]["max_len"]
        .as_u64()
        .ok_or_else(|| candle_core::Error::Msg("s3tokenizer_v2: params.max_len".into()))?
        as usize;
    let tokens_max_len = tokenizer.tokenize(&wav, Some(max_len))?;
    let token_lens_max_len = lens_tensor(tokens_max_len.len())?;
    Ok(vec![
        compare(fixture, "log_mel", &log_mel, Tolerance::Absolute(1e-4))?,
        compare(
            fixture,
            "encoder_out",
            &encoder_out,
            Tolerance::Absolute(1e-4),
        )?,
        compare(fixture, "fsq_proj", &fsq_proj, Tolerance::Absolute(1e-4))?,
        compare(fixture, "tokens", &tokens_tensor(tokens)?, Tolerance::Exact)?,
        compare(fixture, "token_lens", &token_lens, Tolerance::Exact)?,
        compare(
            fixture,
            "tokens_max_len",
            &tokens_tensor(tokens_max_len)?,
            Tolerance::Exact,
        )?,
        compare(
            fixture,
            "token_lens_max_len",
            &token_lens_max_len,
            Tolerance::Exact,
        )?,
    ])
}
