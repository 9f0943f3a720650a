//! Randomness the model draws (meanflow initial noise, SineGen phase and noise).
//! Production draws from a seedable RNG; parity tests replay the reference's
//! recorded draws (`fixture.rng.NN.<fn>`) in call order.

use std::collections::VecDeque;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng, rngs::StdRng};

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
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| standard_normal(&mut self.0)).collect();
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

/// Box-Muller standard normal sample.
fn standard_normal(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}
