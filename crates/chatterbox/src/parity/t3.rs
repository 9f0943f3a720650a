//! Parity with the `t3_turbo` fixture: conditioning, prefill hidden states and
//! logits, KV-cached decode steps, and the sampled and greedy generations.

use candle_core::{Result, Tensor};

use super::fixtures::{Fixture, max_abs, max_abs_diff};
use super::{Check, Tolerance, compare};
use crate::t3::{Greedy, ReplayedUniforms, SamplingParams, T3, T3Conditionals, TokenSampler};

const TOLERANCE: f64 = 1e-4;

pub fn checks(fixture: &Fixture) -> Result<Vec<Check>> {
    let cfg = fixture.config()?;
    let t3 = T3::new(&cfg.t3, fixture.weights()?)?;
    let cond = T3Conditionals {
        speaker_emb: fixture.tensor("speaker_emb")?,
        prompt_tokens: fixture.token_ids("cond_prompt_speech_tokens")?,
    };
    let text = fixture.token_ids("text_tokens")?;
    let mut checks = vec![compare(
        fixture,
        "cond_emb",
        &t3.conditioning_embeds(&cond)?,
        Tolerance::Absolute(TOLERANCE),
    )?];

    let embeds = t3.prefill_embeds(&text, &cond)?;
    checks.push(compare(
        fixture,
        "prefill.inputs_embeds",
        &embeds,
        Tolerance::Absolute(TOLERANCE),
    )?);
    let decode_tokens = fixture.token_ids("decode_tokens")?;
    let mut cache = t3.tfmr.new_cache(embeds.dim(1)? + decode_tokens.len())?;
    let states = t3.tfmr.forward_all(&embeds, &mut cache)?;
    for (k, state) in states.iter().enumerate() {
        checks.push(scaled(
            fixture,
            &format!("prefill.hidden_states.{k}"),
            state,
        )?);
    }
    let last = states.last().expect("GPT-2 returns hidden states");
    checks.push(scaled(
        fixture,
        "prefill.logits_last",
        &t3.last_logits(last)?,
    )?);

    let mut hidden = Vec::new();
    let mut logits = Vec::new();
    for &token in &decode_tokens {
        let h = t3.tfmr.forward(&t3.embed_speech(&[token])?, &mut cache)?;
        logits.push(t3.last_logits(&h)?);
        hidden.push(h.squeeze(1)?);
    }
    checks.push(scaled(fixture, "decode.hidden", &Tensor::cat(&hidden, 0)?)?);
    checks.push(scaled(fixture, "decode.logits", &Tensor::cat(&logits, 0)?)?);

    let params = sampling_params(fixture)?;
    let uniforms = fixture.tensor("uniforms")?.to_vec1::<f64>()?;
    let (mut raw, mut processed, mut probs) = (Vec::new(), Vec::new(), Vec::new());
    let sampled = t3.generate_observed(
        &text,
        &cond,
        &params,
        &mut ReplayedUniforms::new(uniforms),
        &mut |step| {
            raw.extend_from_slice(step.raw_logits);
            processed.extend_from_slice(step.processed_logits);
            probs.extend_from_slice(step.probs);
        },
    )?;
    let steps = raw.len() / cfg.t3.speech_tokens_dict_size;
    let rows = |v: Vec<f32>| {
        Tensor::from_vec(
            v,
            (steps, cfg.t3.speech_tokens_dict_size),
            &candle_core::Device::Cpu,
        )
    };
    checks.push(scaled(fixture, "sampled.raw_logits", &rows(raw)?)?);
    checks.push(filtered_logits(
        fixture,
        "sampled.processed_logits",
        &rows(processed)?,
    )?);
    checks.push(compare(
        fixture,
        "sampled.probs",
        &rows(probs)?,
        Tolerance::Absolute(TOLERANCE),
    )?);
    checks.push(tokens(fixture, "sampled.tokens", &sampled)?);

    let greedy = t3.generate(&text, &cond, &params, &mut Greedy as &mut dyn TokenSampler)?;
    checks.push(tokens(fixture, "greedy.tokens", &greedy)?);
    Ok(checks)
}

/// The fixture's sampling settings; its `max_gen_len` decode steps follow the
/// prefill's token.
fn sampling_params(fixture: &Fixture) -> Result<SamplingParams> {
    let p = &fixture.json["params"];
    let number = |key: &str| {
        p[key]
            .as_f64()
            .ok_or_else(|| candle_core::Error::Msg(format!("t3_turbo params lack {key}")))
    };
    Ok(SamplingParams {
        temperature: number("temperature")?,
        top_k: number("top_k")? as usize,
        top_p: number("top_p")?,
        repetition_penalty: number("repetition_penalty")?,
        max_new_tokens: number("max_gen_len")? as usize + 1,
    })
}

/// Absolute bound 1e-4, relative to the reference's magnitude where it exceeds 1.
fn scaled(fixture: &Fixture, name: &str, ours: &Tensor) -> Result<Check> {
    compare(fixture, name, ours, Tolerance::Relative(TOLERANCE))
}

/// Processed logits: the filtered (-inf) sets must be identical, the kept
/// values within the scaled bound.
fn filtered_logits(fixture: &Fixture, name: &str, ours: &Tensor) -> Result<Check> {
    let expected = fixture.tensor(name)?;
    let (ours_v, expected_v) = (
        ours.flatten_all()?.to_vec1::<f32>()?,
        expected.flatten_all()?.to_vec1::<f32>()?,
    );
    let kept = |v: &[f32]| -> Vec<f32> {
        v.iter()
            .map(|&x| if x.is_finite() { x } else { 0.0 })
            .collect()
    };
    let masks_equal = ours.dims() == expected.dims()
        && ours_v
            .iter()
            .zip(&expected_v)
            .all(|(a, b)| a.is_finite() == b.is_finite());
    let finite = |v: Vec<f32>| Tensor::from_vec(v, ours.dims(), ours.device());
    let expected_kept = finite(kept(&expected_v))?;
    let magnitude = max_abs(&expected_kept)?;
    let err = if masks_equal {
        max_abs_diff(&finite(kept(&ours_v))?, &expected_kept)?
    } else {
        f64::INFINITY
    };
    let bound = Tolerance::Relative(TOLERANCE).bound(magnitude);
    Ok(Check::new(fixture, name, err, bound).with_note(format!(
        "same filtered set required; 1e-4 x max|reference kept| = {magnitude:.3}"
    )))
}

/// Token sequences must match exactly (error 0, else the number of differences).
fn tokens(fixture: &Fixture, name: &str, ours: &[u32]) -> Result<Check> {
    let expected = fixture.token_ids(name)?;
    let differences = if expected.len() == ours.len() {
        expected.iter().zip(ours).filter(|(a, b)| a != b).count() as f64
    } else {
        f64::INFINITY
    };
    Ok(Check::new(fixture, name, differences, 0.0)
        .with_note("exact: error = number of differing tokens"))
}
