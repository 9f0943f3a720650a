//! Parity with the `flow_encoder` fixture: every output and intermediate.

use candle_core::{DType, Result, Tensor};

use super::fixtures::Fixture;
use super::{Check, Tolerance, compare};
use crate::s3gen::flow_encoder::{FlowEncoder, FlowPrompt};

pub fn checks(fixture: &Fixture) -> Result<Vec<Check>> {
    const TOLERANCE: f64 = 1e-4;
    let cfg = fixture.config()?;
    let flow = FlowEncoder::new(&cfg.flow, fixture.weights()?.pp("flow"))?;
    let tokens = fixture.tensor("token")?;
    let token_lens = lengths(&fixture.tensor("token_len")?)?;
    let prompt = FlowPrompt {
        tokens: fixture.tensor("prompt_token")?,
        mel: fixture.tensor("prompt_feat")?,
        embedding: fixture.tensor("embedding")?,
    };
    if lengths(&fixture.tensor("prompt_token_len")?)? != [prompt.tokens.dim(1)?] {
        candle_core::bail!("flow_encoder fixture: prompt_token_len must be the prompt width");
    }
    let mut observed = Vec::new();
    let out = flow.forward_observed(&tokens, &token_lens, &prompt, &mut |name, t| {
        observed.push((name, t.clone()))
    })?;
    observed.extend([
        ("mu", out.mu.clone()),
        ("mask", out.mask.clone()),
        ("cond", out.cond.clone()),
        ("encoder_mask", out.mask.to_dtype(DType::U8)?),
    ]);
    observed
        .iter()
        .map(|(name, ours)| compare(fixture, name, ours, Tolerance::Absolute(TOLERANCE)))
        .collect()
}

fn lengths(t: &Tensor) -> Result<Vec<usize>> {
    Ok(t.to_dtype(DType::I64)?
        .to_vec1::<i64>()?
        .into_iter()
        .map(|len| len.max(0) as usize)
        .collect())
}
