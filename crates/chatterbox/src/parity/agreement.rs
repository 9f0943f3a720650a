//! How close two runs of T3 are, step by step: the next-token distributions (softmax of
//! the raw logits) of a reference run and of another one fed the same tokens (another
//! precision, another device).

/// Mean KL(reference || other) in nats, the share of steps whose most likely token is
/// the same, and the largest difference between two logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    pub mean_kl: f64,
    pub top1: f64,
    pub largest_logit_difference: f32,
}

/// Compares the raw logits of each step of two runs (as many steps in each).
pub fn agreement(reference: &[Vec<f32>], other: &[Vec<f32>]) -> Agreement {
    let steps = reference.len().min(other.len()).max(1) as f64;
    let (mut kl, mut same, mut largest) = (0.0, 0, 0f32);
    for (p, q) in reference.iter().zip(other) {
        kl += kl_divergence(&softmax(p), &softmax(q));
        same += usize::from(argmax(p) == argmax(q));
        largest = p
            .iter()
            .zip(q)
            .fold(largest, |m, (a, b)| m.max((a - b).abs()));
    }
    Agreement {
        mean_kl: kl / steps,
        top1: same as f64 / steps,
        largest_logit_difference: largest,
    }
}

/// Softmax in f64.
pub fn softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::MIN, |m, &l| m.max(l));
    let exp: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The index of the largest value (the first on ties).
pub fn argmax<T: PartialOrd>(values: &[T]) -> usize {
    (0..values.len()).fold(0, |best, i| if values[i] > values[best] { i } else { best })
}

/// Entropy of a distribution, in nats.
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter()
        .filter(|p| **p > 0.0)
        .map(|p| p * p.ln())
        .sum::<f64>()
}

fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(p, _)| **p > 0.0)
        .map(|(p, q)| p * (p / q.max(f64::MIN_POSITIVE)).ln())
        .sum()
}
