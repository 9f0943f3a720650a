//! GPT-2's causal self-attention on the CPU in f32, for the prefill and the decode
//! steps alike: the new positions' queries attend to the sequence's cached keys and
//! values and to the new positions up to their own. Each sequence's cache is one
//! buffer per layer, allocated once and written in place. The (sequence, head) pairs
//! are split over rayon's threads.

use rayon::prelude::*;

/// Keys and values of the positions one sequence has seen, for one layer, each laid out
/// (heads, capacity, head_dim).
#[derive(Debug, Clone)]
pub struct KvCache {
    keys: Vec<f32>,
    values: Vec<f32>,
    heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// The buffers are zeroed by the allocator, which maps fresh pages lazily: the part
    /// of `capacity` a sequence never reaches costs no memory.
    pub fn new(heads: usize, head_dim: usize, capacity: usize) -> Self {
        Self {
            keys: vec![0.0; heads * capacity * head_dim],
            values: vec![0.0; heads * capacity * head_dim],
            heads,
            head_dim,
            capacity,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// A cache of `capacity` positions starting with this one's.
    pub fn with_room(&self, capacity: usize) -> Self {
        let mut cache = Self::new(self.heads, self.head_dim, capacity);
        let used = self.len * self.head_dim;
        for h in 0..self.heads {
            let (from, to) = (
                h * self.capacity * self.head_dim,
                h * capacity * self.head_dim,
            );
            cache.keys[to..to + used].copy_from_slice(&self.keys[from..from + used]);
            cache.values[to..to + used].copy_from_slice(&self.values[from..from + used]);
        }
        cache.len = self.len;
        cache
    }

    /// Writes the keys and values of `t` new positions from their rows of `qkv`
    /// (t, 3 * width).
    fn append(&mut self, qkv: &[f32], t: usize) {
        let width = self.heads * self.head_dim;
        assert!(self.len + t <= self.capacity, "KV cache overflow");
        for (i, row) in qkv.chunks_exact(3 * width).take(t).enumerate() {
            let position = self.len + i;
            for h in 0..self.heads {
                let at = (h * self.capacity + position) * self.head_dim;
                let from = h * self.head_dim;
                self.keys[at..at + self.head_dim]
                    .copy_from_slice(&row[width + from..width + from + self.head_dim]);
                self.values[at..at + self.head_dim]
                    .copy_from_slice(&row[2 * width + from..2 * width + from + self.head_dim]);
            }
        }
        self.len += t;
    }
}

/// Attention of `t` new positions of `caches.len()` sequences: `qkv` (B, t, 3 * width)
/// holds their queries, keys and values (HF GPT-2's `c_attn` output), row `b`
/// continuing `caches[b]`. Returns the heads' outputs (B, t, width), before `c_proj`.
pub fn attend(qkv: &[f32], t: usize, caches: &mut [&mut KvCache]) -> Vec<f32> {
    let Some(first) = caches.first() else {
        return Vec::new();
    };
    let (heads, head_dim) = (first.heads, first.head_dim);
    let width = heads * head_dim;
    let sequence_len = t * 3 * width;
    assert_eq!(qkv.len(), caches.len() * sequence_len);
    for (cache, qkv) in caches.iter_mut().zip(qkv.chunks_exact(sequence_len)) {
        cache.append(qkv, t);
    }
    let caches: Vec<&KvCache> = caches.iter().map(|c| &**c).collect();
    let heads_out: Vec<Vec<f32>> = (0..caches.len() * heads)
        .into_par_iter()
        .map(|task| {
            let (b, h) = (task / heads, task % heads);
            let queries = &qkv[b * sequence_len..(b + 1) * sequence_len];
            attend_head(queries, t, caches[b], h)
        })
        .collect();
    let mut out = vec![0f32; caches.len() * t * width];
    for (task, head_out) in heads_out.iter().enumerate() {
        let (b, h) = (task / heads, task % heads);
        for (i, values) in head_out.chunks_exact(head_dim).enumerate() {
            let at = (b * t + i) * width + h * head_dim;
            out[at..at + head_dim].copy_from_slice(values);
        }
    }
    out
}

/// Head `h`'s output (t, head_dim) for the `t` new positions whose rows of `qkv`
/// (t, 3 * width) are given; `cache` already holds them.
#[inline(always)]
fn attend_head_with(qkv: &[f32], t: usize, cache: &KvCache, h: usize) -> Vec<f32> {
    let d = cache.head_dim;
    let width = cache.heads * d;
    let past = cache.len - t;
    let keys = &cache.keys[h * cache.capacity * d..];
    let values = &cache.values[h * cache.capacity * d..];
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = vec![0f32; t * d];
    let mut weights = vec![0f32; cache.len];
    for (i, out) in out.chunks_exact_mut(d).enumerate() {
        let query = &qkv[i * 3 * width + h * d..][..d];
        let seen = past + i + 1;
        let weights = &mut weights[..seen];
        for (w, key) in weights.iter_mut().zip(keys.chunks_exact(d)) {
            *w = dot(query, key) * scale;
        }
        let max = weights.iter().fold(f32::NEG_INFINITY, |m, &w| m.max(w));
        let mut total = 0.0;
        for w in weights.iter_mut() {
            *w = (*w - max).exp();
            total += *w;
        }
        for (&w, value) in weights.iter().zip(values.chunks_exact(d)) {
            for (o, v) in out.iter_mut().zip(value) {
                *o += w * v;
            }
        }
        out.iter_mut().for_each(|o| *o /= total);
    }
    out
}

/// `a · b` in 8 independent lanes, which the compiler turns into SIMD.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (a, b) in a8.zip(b8) {
        for k in 0..8 {
            lanes[k] += a[k] * b[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// [`attend_head_with`] compiled for AVX2 and FMA when the CPU has them.
fn attend_head(qkv: &[f32], t: usize, cache: &KvCache, h: usize) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if crate::matvec::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { attend_head_avx2(qkv, t, cache, h) };
    }
    attend_head_with(qkv, t, cache, h)
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_head_avx2(qkv: &[f32], t: usize, cache: &KvCache, h: usize) -> Vec<f32> {
    attend_head_with(qkv, t, cache, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matvec::tests::values;

    /// Softmax attention of every position of one sequence over itself and the positions
    /// before it, computed directly in f64: (len, width).
    fn reference(qkv: &[f32], len: usize, heads: usize, head_dim: usize) -> Vec<f32> {
        let width = heads * head_dim;
        let at = |p: usize, part: usize, h: usize, k: usize| {
            f64::from(qkv[p * 3 * width + part * width + h * head_dim + k])
        };
        let mut out = vec![0f32; len * width];
        for h in 0..heads {
            for i in 0..len {
                let scores: Vec<f64> = (0..=i)
                    .map(|j| {
                        let dot: f64 = (0..head_dim).map(|k| at(i, 0, h, k) * at(j, 1, h, k)).sum();
                        dot / (head_dim as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for k in 0..head_dim {
                    let v: f64 = (0..=i).map(|j| weights[j] * at(j, 2, h, k)).sum();
                    out[i * width + h * head_dim + k] = (v / total) as f32;
                }
            }
        }
        out
    }

    #[test]
    fn a_prefill_then_decode_steps_of_two_sequences_match_full_causal_attention() {
        let (heads, head_dim) = (3, 12);
        let width = heads * head_dim;
        let (prefill, steps) = (5, 3);
        let len = prefill + steps;
        let sequences = [values(len * 3 * width, 1), values(len * 3 * width, 2)];
        let mut caches = [
            KvCache::new(heads, head_dim, len),
            KvCache::new(heads, head_dim, len),
        ];
        // Both sequences prefill together, then take their decode steps together.
        let mut got = [Vec::new(), Vec::new()];
        let mut position = 0;
        for t in std::iter::once(prefill).chain(std::iter::repeat_n(1, steps)) {
            let rows = position * 3 * width..(position + t) * 3 * width;
            let qkv: Vec<f32> = sequences
                .iter()
                .flat_map(|s| s[rows.clone()].to_vec())
                .collect();
            let mut refs: Vec<&mut KvCache> = caches.iter_mut().collect();
            let out = attend(&qkv, t, &mut refs);
            for (b, out) in out.chunks_exact(t * width).enumerate() {
                got[b].extend_from_slice(out);
            }
            position += t;
        }
        for (b, sequence) in sequences.iter().enumerate() {
            let want = reference(sequence, len, heads, head_dim);
            assert_eq!(caches[b].len(), len);
            for (i, (g, w)) in got[b].iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() < 1e-5,
                    "sequence {b}, output {i}: {g} against {w}"
                );
            }
        }
    }
}
