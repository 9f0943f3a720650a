//! Parity with the `cfm_meanflow` fixture: initial noise, each Euler step's inputs and
//! velocity, the step-0 time embedding, and the final mel.

use candle_core::{D, Tensor};

use super::fixtures::Fixture;
use super::{Check, Tolerance, compare};
use crate::rng::{RandomSource, RecordedDraws};
use crate::s3gen::cfm::{MeanflowCfm, time_span};
use crate::s3gen::preceding::Preceding;

pub fn checks(fixture: &Fixture) -> candle_core::Result<Vec<Check>> {
    const TOL: Tolerance = Tolerance::Absolute(1e-4);
    let cfg = fixture.config()?;
    let cfm = MeanflowCfm::new(&cfg.decoder, fixture.weights()?.pp("flow.decoder"))?;
    let mu = fixture.tensor("mu")?;
    let mask = fixture.tensor("mask")?;
    let spks = fixture.tensor("spks")?;
    let cond = fixture.tensor("cond")?;
    let param = |name: &str| {
        fixture.json["params"][name]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| candle_core::Error::Msg(format!("cfm_meanflow: params.{name} missing")))
    };
    let n_timesteps = param("n_timesteps")?;
    let generated = param("n_gen_frames")?;
    let prompt_frames = param("prompt_feat_frames")?;
    let device = mu.device();

    // Draw order as in S3Gen.flow_inference: the generated frames' noise, then the CFM's own.
    let mut draws = RecordedDraws::new(fixture.rng_draws()?);
    let noised_mels = draws.randn(&[1, mu.dim(1)?, generated], device)?;
    let x0 = MeanflowCfm::initial_noise(&mu, &noised_mels, &mut draws)?;
    let mut checks = vec![compare(fixture, "x0", &x0, TOL)?];

    let span = time_span(n_timesteps);
    let time_emb = cfm.estimator().time_embedding(
        &Tensor::new(&span[..1], device)?,
        &Tensor::new(&span[1..2], device)?,
    )?;
    checks.push(compare(fixture, "estimator.time_emb", &time_emb, TOL)?);

    let mut x = x0;
    for (i, step) in span.windows(2).enumerate() {
        let (t, r) = (step[0], step[1]);
        checks.push(compare(
            fixture,
            &format!("step{i}.t"),
            &Tensor::new(&[t], device)?,
            Tolerance::Exact,
        )?);
        checks.push(compare(
            fixture,
            &format!("step{i}.r"),
            &Tensor::new(&[r], device)?,
            Tolerance::Exact,
        )?);
        checks.push(compare(fixture, &format!("step{i}.x"), &x, TOL)?);
        let (velocity, next) =
            cfm.euler_step(&x, &mu, &mask, &spks, &cond, t, r, &mut Preceding::none())?;
        checks.push(compare(fixture, &format!("step{i}.out"), &velocity, TOL)?);
        x = next;
    }

    // The production path end to end, replaying the same draws.
    let mut draws = RecordedDraws::new(fixture.rng_draws()?);
    let noised_mels = draws.randn(&[1, mu.dim(1)?, generated], device)?;
    let mel = cfm.forward(
        &mu,
        &mask,
        &spks,
        &cond,
        &noised_mels,
        n_timesteps,
        &mut draws,
    )?;
    checks.push(compare(fixture, "mel", &mel, TOL)?);
    let mel_generated = mel.narrow(D::Minus1, prompt_frames, generated)?;
    checks.push(compare(fixture, "mel_generated", &mel_generated, TOL)?);
    Ok(checks)
}
