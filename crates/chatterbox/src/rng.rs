//! Randomness the model draws (meanflow initial noise, SineGen phase and noise).
//! Production draws from a seedable RNG; parity tests replay the reference's
//! recorded draws (`fixture.rng.NN.<fn>`) in call order.

use std::collections::VecDeque;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rayon::prelude::*;

pub trait RandomSource: Send {
    /// Standard normal draws (`torch.randn`).
    fn randn(&mut self, shape: &[usize], device: &Device) -> candle_core::Result<Tensor>;
    /// Uniform draws in [0, 1) (`torch.rand`).
    fn rand(&mut self, shape: &[usize], device: &Device) -> candle_core::Result<Tensor>;
}

/// Seedable production randomness.
pub struct SeededRandom(StdRng);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(StdRng::seed_from_u64(seed))
    }
}

impl RandomSource for SeededRandom {
    fn randn(&mut self, shape: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let n: usize = shape.iter().product();
        // The uniform pairs are drawn in order, then transformed in parallel: the same
        // values as one sample at a time.
        let uniforms: Vec<(f64, f64)> = (0..n)
            .map(|_| (self.0.random::<f64>(), self.0.random::<f64>()))
            .collect();
        let v: Vec<f32> = uniforms
            .par_iter()
            .with_min_len(PARALLEL_DRAWS)
            .map(|&(u1, u2)| box_muller(u1, u2))
            .collect();
        Tensor::from_vec(v, shape, device)
    }

    fn rand(&mut self, shape: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| self.0.random::<f32>()).collect();
        Tensor::from_vec(v, shape, device)
    }
}

/// Replays recorded draws; each call takes the next one and checks its shape.
pub struct RecordedDraws(VecDeque<Tensor>);

impl RecordedDraws {
    pub fn new(draws: Vec<Tensor>) -> Self {
        Self(draws.into())
    }

    fn next(&mut self, shape: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let t = self
            .0
            .pop_front()
            .ok_or_else(|| candle_core::Error::Msg("no recorded random draw left".into()))?;
        if t.dims() != shape {
            candle_core::bail!(
                "recorded draw has shape {:?}, the model asked for {:?}",
                t.dims(),
                shape
            );
        }
        t.to_dtype(candle_core::DType::F32)?.to_device(device)
    }
}

impl RandomSource for RecordedDraws {
    fn randn(&mut self, shape: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        self.next(shape, device)
    }

    fn rand(&mut self, shape: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        self.next(shape, device)
    }
}

/// Normal samples per parallel task of [`SeededRandom::randn`].
const PARALLEL_DRAWS: usize = 16 * 1024;

/// Box-Muller standard normal sample from two uniform draws in [0, 1).
fn box_muller(u1: f64, u2: f64) -> f32 {
    let u1 = u1.max(f64::MIN_POSITIVE);
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drawn in parallel, the samples are those of one draw at a time, in order.
    #[test]
    fn randn_draws_one_sample_after_another() -> candle_core::Result<()> {
        let n = 3 * PARALLEL_DRAWS + 5;
        let drawn = SeededRandom::new(7)
            .randn(&[n], &Device::Cpu)?
            .to_vec1::<f32>()?;
        let mut rng = StdRng::seed_from_u64(7);
        let one_by_one: Vec<f32> = (0..n)
            .map(|_| {
                let u1 = rng.random::<f64>();
                box_muller(u1, rng.random::<f64>())
            })
            .collect();
        assert_eq!(drawn, one_by_one);
        Ok(())
    }
}
