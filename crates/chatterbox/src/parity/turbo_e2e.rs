//! Parity with the reference's `generate` on the `turbo_e2e` fixture, from the
//! conditionals the reference computed and its text token ids (the fixture does
//! not use the GPT-2 tokenizer): `punc_norm`, T3's tokens (exact, sampled with
//! the recorded uniforms), S3Gen's tokens (exact) and the wave (S3Gen's noise
//! replayed).

use candle_core::{Device, Result, Tensor};

use super::fixtures::Fixture;
use super::{Check, Tolerance, compare};
use crate::conditionals::Conditionals;
use crate::rng::RecordedDraws;
use crate::s3gen::{S3Gen, S3GenConditionals};
use crate::t3::{ReplayedUniforms, SamplingParams, T3, T3Conditionals};
use crate::text::punc_norm;
use crate::tts::s3gen_tokens;

pub fn checks(fixture: &Fixture) -> Result<Vec<Check>> {
    // As S3Gen's own end-to-end check: SineGen integrates F0 over the clip, so
    // rounding-level differences in the mel grow into a small phase difference.
    const WAVE_TOL: f64 = 5e-4;
    let cfg = fixture.config()?;
    let weights = fixture.weights()?;
    let t3 = T3::new(&cfg.t3, weights.pp("t3"))?;
    let s3gen = S3Gen::new(&cfg, weights.pp("s3gen"))?;
    let voice = reference_conditionals(fixture)?;
    let params = &fixture.json["params"];
    let setting = |key: &str| {
        params["generate_kwargs"][key]
            .as_f64()
            .ok_or_else(|| candle_core::Error::Msg(format!("turbo_e2e params lack {key}")))
    };
    let max_gen_len = params["max_gen_len"]
        .as_u64()
        .ok_or_else(|| candle_core::Error::Msg("turbo_e2e params lack max_gen_len".into()))?;
    let sampling = SamplingParams {
        temperature: setting("temperature")?,
        top_k: setting("top_k")? as usize,
        top_p: setting("top_p")?,
        repetition_penalty: setting("repetition_penalty")?,
        max_new_tokens: max_gen_len as usize + 1,
    };

    let text = params["text"].as_str().unwrap_or_default();
    let normalized_matches = Some(punc_norm(text).as_str()) == params["normalized_text"].as_str();
    let mut checks = vec![
        Check::new(
            fixture,
            "punc_norm(text)",
            if normalized_matches { 0.0 } else { 1.0 },
            0.0,
        )
        .with_note("1 when the normalized text differs"),
    ];

    let uniforms = fixture.tensor("uniforms")?.to_vec1::<f64>()?;
    let text_tokens = fixture.token_ids("text_tokens")?;
    let speech = t3.generate(
        &text_tokens,
        &voice.t3,
        &sampling,
        &mut ReplayedUniforms::new(uniforms),
    )?;
    let row = |tokens: &[u32]| Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0);
    checks.push(compare(
        fixture,
        "t3_speech_tokens",
        &row(&speech)?,
        Tolerance::Exact,
    )?);
    let tokens = s3gen_tokens(&speech, cfg.t3.start_speech_token);
    checks.push(compare(
        fixture,
        "s3gen_speech_tokens",
        &Tensor::new(tokens.as_slice(), &Device::Cpu)?,
        Tolerance::Exact,
    )?);
    let mut draws = RecordedDraws::new(fixture.rng_draws()?);
    let wave = s3gen.inference(&row(&tokens)?, &voice.s3gen, &mut draws)?;
    checks.push(compare(
        fixture,
        "wav",
        &wave,
        Tolerance::Absolute(WAVE_TOL),
    )?);
    Ok(checks)
}

/// The conditionals the reference computed from its clip.
fn reference_conditionals(fixture: &Fixture) -> Result<Conditionals> {
    Ok(Conditionals {
        t3: T3Conditionals {
            speaker_emb: fixture.tensor("ve_speaker_emb")?,
            prompt_tokens: fixture.token_ids("t3_cond_prompt_tokens")?,
        },
        s3gen: S3GenConditionals {
            tokens: fixture.tensor("ref.prompt_token")?,
            mel: fixture.tensor("ref.prompt_feat")?,
            embedding: fixture.tensor("ref.embedding")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditionals::token_ids;
    use crate::parity::fixtures::{fixture_dir, max_abs_diff};

    fn assert_same(a: &Conditionals, b: &Conditionals) {
        assert_eq!(a.t3.prompt_tokens, b.t3.prompt_tokens);
        assert_eq!(
            token_ids(&a.s3gen.tokens).unwrap(),
            token_ids(&b.s3gen.tokens).unwrap()
        );
        assert_eq!(a.s3gen.tokens.dims(), b.s3gen.tokens.dims());
        for (x, y) in [
            (&a.t3.speaker_emb, &b.t3.speaker_emb),
            (&a.s3gen.mel, &b.s3gen.mel),
            (&a.s3gen.embedding, &b.s3gen.embedding),
        ] {
            assert_eq!(x.dims(), y.dims());
            assert_eq!(max_abs_diff(x, y).unwrap(), 0.0);
        }
    }

    #[test]
    fn torch_conds_file_reads_as_the_reference_saved_it() {
        let fixture = Fixture::load(&fixture_dir(), "turbo_e2e").unwrap();
        let expected = reference_conditionals(&fixture).unwrap();
        let conds =
            Conditionals::from_torch_file(&fixture_dir().join("turbo_e2e_conds.pt"), &Device::Cpu)
                .unwrap();
        assert_same(&conds, &expected);
        assert_eq!(conds.t3.prompt_tokens.len(), 138);
        assert_eq!(conds.s3gen.mel.dims(), &[1, 275, 80]);
        conds.validate(&fixture.config().unwrap()).unwrap();
    }

    #[test]
    fn safetensors_round_trip_is_exact() {
        let fixture = Fixture::load(&fixture_dir(), "turbo_e2e").unwrap();
        let conds = reference_conditionals(&fixture).unwrap();
        let bytes = conds.to_safetensors().unwrap();
        let back = Conditionals::from_safetensors(&bytes, &Device::Cpu).unwrap();
        assert_same(&conds, &back);
        let err = Conditionals::from_safetensors(b"junk", &Device::Cpu).unwrap_err();
        assert!(!err.to_string().is_empty());
    }

    #[test]
    fn misshapen_conditionals_are_refused() {
        let fixture = Fixture::load(&fixture_dir(), "turbo_e2e").unwrap();
        let cfg = fixture.config().unwrap();
        let conds = reference_conditionals(&fixture).unwrap();
        let mut bad = conds.clone();
        bad.s3gen.embedding = bad.s3gen.embedding.narrow(1, 0, 100).unwrap();
        let err = bad.validate(&cfg).unwrap_err();
        assert!(err.to_string().contains("x-vector has 100 values"), "{err}");
        let mut bad = conds.clone();
        bad.t3.prompt_tokens.push(6561);
        let err = bad.validate(&cfg).unwrap_err();
        assert!(err.to_string().contains("6561"), "{err}");
    }
}
