//! Meanflow integration of `CausalConditionalCFM` (`chatterbox/models/s3gen/flow_matching.py`,
//! `meanflow=True`): from noise to mel in a few Euler steps of the averaged velocity, with
//! no classifier-free guidance (the Turbo decoder was distilled with guidance baked in).

use candle_core::{D, Tensor};
use candle_nn::VarBuilder;

use super::decoder::ConditionalDecoder;
use super::flow_encoder::DecoderConditioning;
use super::preceding::{Preceding, PromptState};
use super::precision::S3GenPrecision;
use crate::config::DecoderConfig;
use crate::rng::RandomSource;

/// `torch.linspace(0, 1, n_timesteps + 1)` in f32 (meanflow uses no cosine schedule).
/// Like torch, the first half counts up from 0 and the second half down from 1.
pub fn time_span(n_timesteps: usize) -> Vec<f32> {
    let step = 1.0 / n_timesteps as f32;
    let steps = n_timesteps + 1;
    let halfway = steps / 2;
    (0..=n_timesteps)
        .map(|i| {
            if i < halfway {
                i as f32 * step
            } else {
                1.0 - (n_timesteps - i) as f32 * step
            }
        })
        .collect()
}

/// The meanflow sampler around the decoder (`flow.decoder` in the checkpoint).
pub struct MeanflowCfm {
    estimator: ConditionalDecoder,
}

impl MeanflowCfm {
    /// Loads from `vb` = the checkpoint's `flow.decoder` (the estimator is under `estimator`).
    pub fn new(cfg: &DecoderConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Self::with_precision(cfg, S3GenPrecision::Fp32, vb)
    }

    /// [`MeanflowCfm::new`] with the decoder's products in `precision`.
    pub fn with_precision(
        cfg: &DecoderConfig,
        precision: S3GenPrecision,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            estimator: ConditionalDecoder::new(cfg, precision, vb.pp("estimator"))?,
        })
    }

    pub fn estimator(&self) -> &ConditionalDecoder {
        &self.estimator
    }

    /// The starting point of the integration: a fresh standard normal draw shaped like
    /// `mu` whose last frames are replaced by `noised_mels` (the noise S3Gen drew for
    /// the generated frames), so only the prompt frames keep this draw.
    pub fn initial_noise(
        mu: &Tensor,
        noised_mels: &Tensor,
        rng: &mut dyn RandomSource,
    ) -> candle_core::Result<Tensor> {
        let (batch, channels, frames) = mu.dims3()?;
        let generated = noised_mels.dim(D::Minus1)?;
        if generated > frames {
            candle_core::bail!("cfm: noised_mels has {generated} frames, more than mu's {frames}");
        }
        let z = rng.randn(mu.dims(), mu.device())?;
        let noised_mels = noised_mels
            .to_dtype(mu.dtype())?
            .broadcast_as((batch, channels, generated))?;
        Tensor::cat(&[&z.narrow(2, 0, frames - generated)?, &noised_mels], 2)
    }

    /// One Euler step from time `t` to `r`, over frames after those of `preceding`:
    /// returns the estimated velocity and `x + (r - t) * velocity`.
    #[allow(clippy::too_many_arguments)]
    pub fn euler_step(
        &self,
        x: &Tensor,
        mu: &Tensor,
        mask: &Tensor,
        spks: &Tensor,
        cond: &Tensor,
        t: f32,
        r: f32,
        preceding: &mut Preceding,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let t_in = Tensor::new(&[t], x.device())?;
        let r_in = Tensor::new(&[r], x.device())?;
        let velocity = self
            .estimator
            .forward_after(x, mask, mu, &t_in, spks, cond, &r_in, preceding)?;
        let next = (x + (&velocity * f64::from(r - t))?)?;
        Ok((velocity, next))
    }

    /// Generates mel frames over the whole of `mu`, prompt frames included (the caller
    /// drops the first `prompt_frames`, as `flow.inference` does).
    ///
    /// `mu`, `cond`: `(batch, 80, frames)` encoder output and prompt mel (zeros after the
    /// prompt); `mask`: `(batch, 1, frames)`; `spks`: `(batch, 80)` projected speaker
    /// embedding; `noised_mels`: `(1 or batch, 80, generated frames)` noise for the frames
    /// after the prompt. Draws one `randn` shaped like `mu`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        mu: &Tensor,
        mask: &Tensor,
        spks: &Tensor,
        cond: &Tensor,
        noised_mels: &Tensor,
        n_timesteps: usize,
        rng: &mut dyn RandomSource,
    ) -> candle_core::Result<Tensor> {
        let x = Self::initial_noise(mu, noised_mels, rng)?;
        let mut steps: Vec<Preceding> = (0..n_timesteps).map(|_| Preceding::none()).collect();
        self.run_steps(x, mu, mask, spks, cond, &mut steps)
    }

    /// The Euler steps of [`MeanflowCfm::forward`] from `x`, over a voice prompt's frames
    /// alone ([`super::flow_encoder::FlowEncoder::encode_prompt`]): the state they leave
    /// at each step, for [`MeanflowCfm::integrate_after`].
    pub fn integrate_prompt(
        &self,
        x: Tensor,
        prompt: &DecoderConditioning,
        n_timesteps: usize,
    ) -> candle_core::Result<Vec<PromptState>> {
        let mut states = vec![PromptState::default(); n_timesteps];
        let mut steps: Vec<Preceding> = states.iter_mut().map(Preceding::record).collect();
        self.integrate_after(x, prompt, &mut steps)?;
        drop(steps);
        Ok(states)
    }

    /// The Euler steps, one per entry of `steps`, step `i`'s frames after those of
    /// `steps[i]`.
    pub fn integrate_after(
        &self,
        x: Tensor,
        conditioning: &DecoderConditioning,
        steps: &mut [Preceding],
    ) -> candle_core::Result<Tensor> {
        let DecoderConditioning {
            mu,
            mask,
            spks,
            cond,
            ..
        } = conditioning;
        self.run_steps(x, mu, mask, spks, cond, steps)
    }

    fn run_steps(
        &self,
        mut x: Tensor,
        mu: &Tensor,
        mask: &Tensor,
        spks: &Tensor,
        cond: &Tensor,
        steps: &mut [Preceding],
    ) -> candle_core::Result<Tensor> {
        check_inputs(mu, mask, spks, cond)?;
        if steps.is_empty() {
            candle_core::bail!("cfm: n_timesteps must be at least 1");
        }
        for (span, preceding) in time_span(steps.len()).windows(2).zip(steps) {
            x = self
                .euler_step(&x, mu, mask, spks, cond, span[0], span[1], preceding)?
                .1;
        }
        Ok(x)
    }
}

fn check_inputs(
    mu: &Tensor,
    mask: &Tensor,
    spks: &Tensor,
    cond: &Tensor,
) -> candle_core::Result<()> {
    let (batch, channels, frames) = mu.dims3()?;
    let expect = |name: &str, t: &Tensor, want: &[usize]| {
        if t.dims() != want {
            candle_core::bail!(
                "cfm: {name} has shape {:?}, expected {want:?} (mu is {:?})",
                t.dims(),
                mu.dims()
            );
        }
        Ok(())
    };
    expect("mask", mask, &[batch, 1, frames])?;
    expect("spks", spks, &[batch, channels])?;
    expect("cond", cond, &[batch, channels, frames])
}
