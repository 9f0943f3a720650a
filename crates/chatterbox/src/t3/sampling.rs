//! Speech-token sampling exactly as the reference's `inference_turbo`: the HF
//! logits processors in its order (temperature -> top-k -> top-p -> repetition
//! penalty), a softmax, then one multinomial draw.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng, rngs::StdRng};

/// Sampling settings of `ChatterboxTurboTTS.generate`.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Logits are divided by it; 0 or 1 leaves them unchanged (as the reference).
    pub temperature: f64,
    /// Keep the `top_k` largest logits (ties kept); 0 disables.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability exceeds
    /// `top_p`; 1 disables.
    pub top_p: f64,
    /// HF repetition penalty on the tokens generated so far; 1 disables.
    pub repetition_penalty: f64,
    /// Most speech tokens sampled, the stop token included.
    pub max_new_tokens: usize,
}

impl Default for SamplingParams {
    /// The reference's defaults. Its `max_gen_len = 1000` decode steps follow the
    /// token sampled from the prefill, hence 1001 tokens at most.
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 1000,
            top_p: 0.95,
            repetition_penalty: 1.2,
            max_new_tokens: 1001,
        }
    }
}

impl SamplingParams {
    /// Rejects the settings the reference's processors reject: a repetition
    /// penalty that is not strictly positive, a top-p outside [0, 1].
    pub fn validate(&self) -> candle_core::Result<()> {
        if self.repetition_penalty.is_nan() || self.repetition_penalty <= 0.0 {
            candle_core::bail!(
                "repetition penalty must be > 0, got {}",
                self.repetition_penalty
            );
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            candle_core::bail!("top_p must be within [0, 1], got {}", self.top_p);
        }
        Ok(())
    }

    /// Applies the reference's processors in place to one step's `logits`;
    /// `context` is what its repetition penalty sees (the BOS at the first step,
    /// then the tokens generated so far). Filtered logits become -inf.
    /// The arithmetic is float32 with the settings rounded to float32, as torch
    /// does with Python scalars.
    pub fn process(&self, logits: &mut [f32], context: &[u32]) {
        if self.temperature > 0.0 && self.temperature != 1.0 {
            let temperature = self.temperature as f32;
            for l in logits.iter_mut() {
                *l /= temperature;
            }
        }
        if self.top_k > 0 {
            top_k(logits, self.top_k);
        }
        if self.top_p < 1.0 {
            top_p(logits, self.top_p);
        }
        if self.repetition_penalty != 1.0 {
            repetition_penalty(logits, context, self.repetition_penalty as f32);
        }
    }
}

/// HF `TopKLogitsWarper`: drops every logit below the k-th largest.
fn top_k(logits: &mut [f32], k: usize) {
    let k = k.min(logits.len());
    let mut descending = logits.to_vec();
    let (_, &mut threshold, _) = descending.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    for l in logits.iter_mut() {
        if *l < threshold {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// HF `TopPLogitsWarper`: in ascending order, drops tokens whose cumulative
/// probability is <= 1 - top_p, always keeping the most likely one.
fn top_p(logits: &mut [f32], top_p: f64) {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
    let max = logits[order[order.len() - 1]] as f64;
    let exps: Vec<f64> = order
        .iter()
        .map(|&i| (logits[i] as f64 - max).exp())
        .collect();
    let total: f64 = exps.iter().sum();
    // The reference accumulates float32 probabilities; float64 here differs from
    // it only for a token within rounding of the cutoff. The cutoff is 1 - top_p
    // rounded to float32, as the reference compares it.
    let cutoff = (1.0 - top_p) as f32 as f64;
    let mut cumulative = 0.0;
    for (&i, e) in order[..order.len() - 1].iter().zip(&exps) {
        cumulative += e / total;
        if cumulative > cutoff {
            break;
        }
        logits[i] = f32::NEG_INFINITY;
    }
}

/// HF `RepetitionPenaltyLogitsProcessor`: each token of `context` (once, however
/// often it occurs) gets its logit divided by `penalty` if positive, multiplied
/// if negative.
fn repetition_penalty(logits: &mut [f32], context: &[u32], penalty: f32) {
    let mut seen = vec![false; logits.len()];
    for &t in context {
        let t = t as usize;
        if t < logits.len() && !seen[t] {
            seen[t] = true;
            let l = logits[t];
            logits[t] = if l < 0.0 { l * penalty } else { l / penalty };
        }
    }
}

/// Softmax in float32 (filtered -inf logits get probability 0).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let total: f32 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// Chooses the next token from the processed probabilities.
pub trait TokenSampler {
    fn sample(&mut self, probs: &[f32]) -> candle_core::Result<usize>;
}

/// Inverse-CDF multinomial draw: the smallest i with cdf[i] > u * cdf[last],
/// cdf the float64 cumulative sum of `probs`.
pub fn inverse_cdf(probs: &[f32], u: f64) -> usize {
    let total: f64 = probs.iter().map(|&p| p as f64).sum();
    let target = u * total;
    let mut cdf = 0.0;
    for (i, &p) in probs.iter().enumerate() {
        cdf += p as f64;
        if cdf > target {
            return i;
        }
    }
    probs.len() - 1
}

/// Multinomial sampling from a seedable RNG (production).
pub struct SeededSampler(StdRng);

impl SeededSampler {
    pub fn new(seed: u64) -> Self {
        Self(StdRng::seed_from_u64(seed))
    }
}

impl TokenSampler for SeededSampler {
    fn sample(&mut self, probs: &[f32]) -> candle_core::Result<usize> {
        Ok(inverse_cdf(probs, self.0.random::<f64>()))
    }
}

/// Multinomial sampling driven by given uniforms, one per token (replays the
/// reference's recorded draws).
pub struct ReplayedUniforms(VecDeque<f64>);

impl ReplayedUniforms {
    pub fn new(uniforms: Vec<f64>) -> Self {
        Self(uniforms.into())
    }
}

impl TokenSampler for ReplayedUniforms {
    fn sample(&mut self, probs: &[f32]) -> candle_core::Result<usize> {
        let u = self
            .0
            .pop_front()
            .ok_or_else(|| candle_core::Error::Msg("no sampler uniform left".into()))?;
        Ok(inverse_cdf(probs, u))
    }
}

/// Always the most likely token (the first one on ties).
pub struct Greedy;

impl TokenSampler for Greedy {
    fn sample(&mut self, probs: &[f32]) -> candle_core::Result<usize> {
        let mut best = 0;
        for (i, &p) in probs.iter().enumerate() {
            if p > probs[best] {
                best = i;
            }
        }
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG_INF: f32 = f32::NEG_INFINITY;

    fn params(
        temperature: f64,
        top_k: usize,
        top_p: f64,
        repetition_penalty: f64,
    ) -> SamplingParams {
        SamplingParams {
            temperature,
            top_k,
            top_p,
            repetition_penalty,
            max_new_tokens: 10,
        }
    }

    #[test]
    fn top_k_keeps_ties_with_the_kth_largest() {
        let mut l = vec![1.0, 3.0, 2.0, 2.0, 0.5];
        params(1.0, 2, 1.0, 1.0).process(&mut l, &[]);
        assert_eq!(l, vec![NEG_INF, 3.0, 2.0, 2.0, NEG_INF]);
    }

    #[test]
    fn top_p_drops_the_unlikely_tail_and_keeps_the_top_token() {
        // probabilities ~ [0.665, 0.245, 0.090]
        let mut l = vec![2.0, 1.0, 0.0];
        params(1.0, 0, 0.8, 1.0).process(&mut l, &[]);
        assert_eq!(l, vec![2.0, 1.0, NEG_INF]);
        let mut l = vec![2.0, 1.0, 0.0];
        params(1.0, 0, 0.01, 1.0).process(&mut l, &[]);
        assert_eq!(l, vec![2.0, NEG_INF, NEG_INF]);
    }

    #[test]
    fn repetition_penalty_divides_positive_multiplies_negative_once() {
        let mut l = vec![2.0, -2.0, 1.0, NEG_INF];
        params(1.0, 0, 1.0, 2.0).process(&mut l, &[0, 1, 0, 3]);
        assert_eq!(l, vec![1.0, -4.0, 1.0, NEG_INF]);
    }

    #[test]
    fn temperature_scales_before_filtering() {
        let mut l = vec![1.0, 0.5];
        params(0.5, 0, 1.0, 1.0).process(&mut l, &[]);
        assert_eq!(l, vec![2.0, 1.0]);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        assert!(params(0.8, 10, 0.95, 1.2).validate().is_ok());
        let err = params(0.8, 10, 0.95, 0.0).validate().unwrap_err();
        assert!(err.to_string().contains("repetition penalty"), "{err}");
        let err = params(0.8, 10, 1.5, 1.2).validate().unwrap_err();
        assert!(err.to_string().contains("top_p"), "{err}");
        assert!(params(0.8, 10, f64::NAN, 1.2).validate().is_err());
    }

    #[test]
    fn inverse_cdf_picks_the_first_bin_past_u() {
        let p = [0.25, 0.0, 0.5, 0.25];
        assert_eq!(inverse_cdf(&p, 0.0), 0);
        assert_eq!(inverse_cdf(&p, 0.25), 2);
        assert_eq!(inverse_cdf(&p, 0.74), 2);
        assert_eq!(inverse_cdf(&p, 0.76), 3);
        assert_eq!(Greedy.sample(&p).unwrap(), 2);
    }

    #[test]
    fn seeded_sampler_is_reproducible_and_follows_the_distribution() {
        let p = softmax(&[0.0, NEG_INF, 1.0]);
        assert_eq!(p[1], 0.0);
        let draws = |seed| {
            let mut s = SeededSampler::new(seed);
            (0..2000).map(|_| s.sample(&p).unwrap()).collect::<Vec<_>>()
        };
        let a = draws(7);
        assert_eq!(a, draws(7));
        assert!(!a.contains(&1));
        let share = a.iter().filter(|&&t| t == 2).count() as f32 / a.len() as f32;
        assert!((share - p[2]).abs() < 0.05, "share {share} vs {}", p[2]);
    }
}
