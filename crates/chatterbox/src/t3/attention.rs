//! GPT-2's causal self-attention on the CPU, for the prefill and the decode steps
//! alike: the new positions' queries attend to the sequence's cached keys and values
//! and to the new positions up to their own. Each sequence's cache is one buffer per
//! layer, allocated once and written in place, in f32 or in IEEE half precision
//! ([`KvFormat`]); the arithmetic is f32 either way. The (sequence, head) pairs are
//! split over rayon's threads.

use rayon::prelude::*;

/// How a [`KvCache`] stores its keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvFormat {
    /// The values as computed: `fp32`'s parity with the reference needs them.
    F32,
    /// IEEE half precision (11 significant bits): half the bytes a decode step reads
    /// at long positions, where attention is bound by memory.
    F16,
}

/// Keys or values of one layer, laid out (heads, capacity, head_dim).
#[derive(Debug, Clone)]
enum KvBuffer {
    F32(Vec<f32>),
    /// The bits of `half::f16` values.
    F16(Vec<u16>),
}

impl KvBuffer {
    fn new(format: KvFormat, len: usize) -> Self {
        match format {
            KvFormat::F32 => Self::F32(vec![0.0; len]),
            KvFormat::F16 => Self::F16(vec![0; len]),
        }
    }

    fn format(&self) -> KvFormat {
        match self {
            Self::F32(_) => KvFormat::F32,
            Self::F16(_) => KvFormat::F16,
        }
    }

    fn write(&mut self, at: usize, values: &[f32]) {
        match self {
            Self::F32(buffer) => buffer[at..at + values.len()].copy_from_slice(values),
            Self::F16(buffer) => {
                for (to, &v) in buffer[at..at + values.len()].iter_mut().zip(values) {
                    *to = half::f16::from_f32(v).to_bits();
                }
            }
        }
    }

    /// Copies `len` values from `from` in `source` (of the same format) to `to`.
    fn copy_from(&mut self, to: usize, source: &Self, from: usize, len: usize) {
        match (self, source) {
            (Self::F32(this), Self::F32(source)) => {
                this[to..to + len].copy_from_slice(&source[from..from + len]);
            }
            (Self::F16(this), Self::F16(source)) => {
                this[to..to + len].copy_from_slice(&source[from..from + len]);
            }
            _ => unreachable!("caches of one format"),
        }
    }
}

/// Keys and values of the positions one sequence has seen, for one layer.
#[derive(Debug, Clone)]
pub struct KvCache {
    keys: KvBuffer,
    values: KvBuffer,
    heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// The buffers are zeroed by the allocator, which maps fresh pages lazily: the part
    /// of `capacity` a sequence never reaches costs no memory.
    pub fn new(format: KvFormat, heads: usize, head_dim: usize, capacity: usize) -> Self {
        let len = heads * capacity * head_dim;
        Self {
            keys: KvBuffer::new(format, len),
            values: KvBuffer::new(format, len),
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
        let mut cache = Self::new(self.keys.format(), self.heads, self.head_dim, capacity);
        let used = self.len * self.head_dim;
        for h in 0..self.heads {
            let (from, to) = (
                h * self.capacity * self.head_dim,
                h * capacity * self.head_dim,
            );
            cache.keys.copy_from(to, &self.keys, from, used);
            cache.values.copy_from(to, &self.values, from, used);
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
                self.keys
                    .write(at, &row[width + from..width + from + self.head_dim]);
                self.values
                    .write(at, &row[2 * width + from..2 * width + from + self.head_dim]);
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

/// Cached keys or values in one storage format, and the attention's arithmetic over
/// them.
trait Rows {
    type Element: Copy;

    /// `scores[j] = scale * query · keys[j]`, for the rows `keys[j]` of `query.len()`
    /// values.
    ///
    /// # Safety
    /// The CPU must have the instructions the implementation names.
    unsafe fn scores(query: &[f32], keys: &[Self::Element], scale: f32, scores: &mut [f32]);

    /// `out = Σ_j weights[j] * values[j]`, for the rows `values[j]` of `out.len()` values.
    ///
    /// # Safety
    /// As [`Rows::scores`].
    unsafe fn weighted_sum(weights: &[f32], values: &[Self::Element], out: &mut [f32]);

    /// The softmax's `exp`.
    fn exp(x: f32) -> f32;
}

/// f32 rows, in code the compiler vectorizes for whatever the caller enables, with libm's
/// `exp`: `fp32`'s reference parity.
struct F32Rows;

impl Rows for F32Rows {
    type Element = f32;

    #[inline(always)]
    unsafe fn scores(query: &[f32], keys: &[f32], scale: f32, scores: &mut [f32]) {
        for (score, key) in scores.iter_mut().zip(keys.chunks_exact(query.len())) {
            *score = dot(query, key) * scale;
        }
    }

    #[inline(always)]
    unsafe fn weighted_sum(weights: &[f32], values: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        for (&w, value) in weights.iter().zip(values.chunks_exact(out.len())) {
            for (o, v) in out.iter_mut().zip(value) {
                *o += w * v;
            }
        }
    }

    #[inline(always)]
    fn exp(x: f32) -> f32 {
        x.exp()
    }
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

fn widen(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

/// Half-precision rows, widened one value at a time.
struct F16Rows;

impl Rows for F16Rows {
    type Element = u16;

    #[inline(always)]
    unsafe fn scores(query: &[f32], keys: &[u16], scale: f32, scores: &mut [f32]) {
        for (score, key) in scores.iter_mut().zip(keys.chunks_exact(query.len())) {
            let dot: f32 = query.iter().zip(key).map(|(&q, &k)| q * widen(k)).sum();
            *score = dot * scale;
        }
    }

    #[inline(always)]
    unsafe fn weighted_sum(weights: &[f32], values: &[u16], out: &mut [f32]) {
        out.fill(0.0);
        for (&w, value) in weights.iter().zip(values.chunks_exact(out.len())) {
            for (o, &v) in out.iter_mut().zip(value) {
                *o += w * widen(v);
            }
        }
    }

    /// The quantized precisions' attention needs no more than [`crate::kernels::exp`]'s
    /// 1 ulp, and it vectorizes.
    #[inline(always)]
    fn exp(x: f32) -> f32 {
        crate::kernels::exp(x)
    }
}

/// Half-precision rows widened 8 values at a time by F16C's `vcvtph2ps`, with kernels
/// for GPT-2's heads of 64 values (the portable ones for other sizes).
#[cfg(target_arch = "x86_64")]
struct F16cRows;

/// The head size [`F16cRows`] has kernels for: 8 vectors of 8 lanes.
#[cfg(target_arch = "x86_64")]
const F16C_HEAD_DIM: usize = 64;

#[cfg(target_arch = "x86_64")]
impl Rows for F16cRows {
    type Element = u16;

    /// Four keys at a time, their four sums reduced together.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn scores(query: &[f32], keys: &[u16], scale: f32, scores: &mut [f32]) {
        use std::arch::x86_64::*;
        const D: usize = F16C_HEAD_DIM;
        if query.len() != D {
            // SAFETY: the portable rows need no particular instructions.
            return unsafe { F16Rows::scores(query, keys, scale, scores) };
        }
        let rows = scores.len().min(keys.len() / D);
        let (keys, scores) = (&keys[..rows * D], &mut scores[..rows]);
        // SAFETY: every load below reads 8 values within `query` or a 64-value row.
        unsafe {
            let q: [__m256; D / 8] = std::array::from_fn(|c| _mm256_loadu_ps(&query[c * 8]));
            let key = |row: &[u16], c: usize| {
                _mm256_cvtph_ps(_mm_loadu_si128(row[c * 8..].as_ptr().cast()))
            };
            let mut groups = keys.chunks_exact(4 * D);
            let mut outs = scores.chunks_exact_mut(4);
            for (group, out) in (&mut groups).zip(&mut outs) {
                let mut sums = [_mm256_setzero_ps(); 4];
                for (r, sum) in sums.iter_mut().enumerate() {
                    let row = &group[r * D..(r + 1) * D];
                    for (c, &q) in q.iter().enumerate() {
                        *sum = _mm256_fmadd_ps(q, key(row, c), *sum);
                    }
                }
                // Lanes of row r end in lane r of the low half plus lane r of the high half.
                let pairs = _mm256_hadd_ps(
                    _mm256_hadd_ps(sums[0], sums[1]),
                    _mm256_hadd_ps(sums[2], sums[3]),
                );
                let four = _mm_add_ps(
                    _mm256_castps256_ps128(pairs),
                    _mm256_extractf128_ps(pairs, 1),
                );
                _mm_storeu_ps(out.as_mut_ptr(), _mm_mul_ps(four, _mm_set1_ps(scale)));
            }
            F16Rows::scores(query, groups.remainder(), scale, outs.into_remainder());
        }
    }

    /// The 64 sums held in 8 registers over all the rows.
    ///
    /// # Safety
    /// As [`F16cRows::scores`].
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn weighted_sum(weights: &[f32], values: &[u16], out: &mut [f32]) {
        use std::arch::x86_64::*;
        const D: usize = F16C_HEAD_DIM;
        if out.len() != D {
            // SAFETY: the portable rows need no particular instructions.
            return unsafe { F16Rows::weighted_sum(weights, values, out) };
        }
        // SAFETY: every load and store below covers 8 values within a 64-value row or
        // `out`.
        unsafe {
            let mut sums = [_mm256_setzero_ps(); D / 8];
            for (&w, row) in weights.iter().zip(values.chunks_exact(D)) {
                let w = _mm256_set1_ps(w);
                for (c, sum) in sums.iter_mut().enumerate() {
                    let v = _mm256_cvtph_ps(_mm_loadu_si128(row[c * 8..].as_ptr().cast()));
                    *sum = _mm256_fmadd_ps(w, v, *sum);
                }
            }
            for (c, sum) in sums.iter().enumerate() {
                _mm256_storeu_ps(out[c * 8..].as_mut_ptr(), *sum);
            }
        }
    }

    #[inline(always)]
    fn exp(x: f32) -> f32 {
        crate::kernels::exp(x)
    }
}

/// Head `h`'s output (t, head_dim) for the `t` new positions whose rows of `qkv`
/// (t, 3 * width) are given; `keys` and `values` (heads, capacity, head_dim) already
/// hold them.
///
/// # Safety
/// The CPU must have the instructions `R` names.
#[inline(always)]
unsafe fn attend_head_with<R: Rows>(
    qkv: &[f32],
    t: usize,
    (keys, values): (&[R::Element], &[R::Element]),
    cache: &KvCache,
    h: usize,
) -> Vec<f32> {
    let d = cache.head_dim;
    let width = cache.heads * d;
    let past = cache.len - t;
    let keys = &keys[h * cache.capacity * d..];
    let values = &values[h * cache.capacity * d..];
    let scale = 1.0 / (d as f32).sqrt();
    let mut out = vec![0f32; t * d];
    let mut weights = vec![0f32; cache.len];
    for (i, out) in out.chunks_exact_mut(d).enumerate() {
        let query = &qkv[i * 3 * width + h * d..][..d];
        let seen = past + i + 1;
        let weights = &mut weights[..seen];
        // SAFETY: the caller's CPU has what `R` needs.
        unsafe { R::scores(query, &keys[..seen * d], scale, weights) };
        let max = weights.iter().fold(f32::NEG_INFINITY, |m, &w| m.max(w));
        weights.iter_mut().for_each(|w| *w = R::exp(*w - max));
        let total: f32 = weights.iter().sum();
        // SAFETY: as above.
        unsafe { R::weighted_sum(weights, &values[..seen * d], out) };
        out.iter_mut().for_each(|o| *o /= total);
    }
    out
}

/// [`attend_head_with`] for the cache's format, compiled for AVX2, FMA and F16C when
/// the CPU has them.
fn attend_head(qkv: &[f32], t: usize, cache: &KvCache, h: usize) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if crate::matvec::has_avx2_fma() && std::arch::is_x86_feature_detected!("f16c") {
        // SAFETY: the CPU has AVX2, FMA and F16C.
        return unsafe { attend_head_avx2(qkv, t, cache, h) };
    }
    // SAFETY: the portable rows need no particular instructions.
    unsafe { attend_head_in::<F16Rows>(qkv, t, cache, h) }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn attend_head_avx2(qkv: &[f32], t: usize, cache: &KvCache, h: usize) -> Vec<f32> {
    // SAFETY: the caller's CPU has AVX2, FMA and F16C.
    unsafe { attend_head_in::<F16cRows>(qkv, t, cache, h) }
}

/// [`attend_head_with`] over the cache's buffers, its half-precision ones read as `H`.
///
/// # Safety
/// The CPU must have the instructions `H` names.
#[inline(always)]
unsafe fn attend_head_in<H: Rows<Element = u16>>(
    qkv: &[f32],
    t: usize,
    cache: &KvCache,
    h: usize,
) -> Vec<f32> {
    // SAFETY: the caller's promise.
    unsafe {
        match (&cache.keys, &cache.values) {
            (KvBuffer::F32(k), KvBuffer::F32(v)) => {
                attend_head_with::<F32Rows>(qkv, t, (k, v), cache, h)
            }
            (KvBuffer::F16(k), KvBuffer::F16(v)) => attend_head_with::<H>(qkv, t, (k, v), cache, h),
            _ => unreachable!("keys and values of one format"),
        }
    }
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
        // Half precision keeps 11 significant bits of each key and value.
        let formats = [(KvFormat::F32, 1e-5), (KvFormat::F16, 2e-3)];
        let shapes = [(3, 20), (2, 64)];
        for ((format, tolerance), (heads, head_dim)) in formats
            .into_iter()
            .flat_map(|f| shapes.into_iter().map(move |s| (f, s)))
        {
            let width = heads * head_dim;
            let (prefill, steps) = (5, 3);
            let len = prefill + steps;
            let sequences = [values(len * 3 * width, 1), values(len * 3 * width, 2)];
            let mut caches = [
                KvCache::new(format, heads, head_dim, len),
                KvCache::new(format, heads, head_dim, len),
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
                        (g - w).abs() < tolerance,
                        "{format:?}, heads of {head_dim}, sequence {b}, output {i}: {g} against {w}"
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn f16c_rows_give_the_portable_rows_results() {
        if !(crate::matvec::has_avx2_fma() && std::arch::is_x86_feature_detected!("f16c")) {
            return;
        }
        // GPT-2's heads of 64 values run the F16C kernels, other sizes the portable code;
        // 7 rows are a group of 4 and 3 left over.
        for d in [F16C_HEAD_DIM, 20] {
            let rows = 7;
            let query = values(d, 3);
            let cached: Vec<u16> = values(rows * d, 4)
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect();
            let weights = values(rows, 5);
            let (mut fast, mut portable) = (vec![0f32; rows], vec![0f32; rows]);
            let (mut fast_sum, mut portable_sum) = (vec![0f32; d], vec![0f32; d]);
            // SAFETY: checked above that the CPU has AVX2, FMA and F16C.
            unsafe {
                F16cRows::scores(&query, &cached, 0.125, &mut fast);
                F16Rows::scores(&query, &cached, 0.125, &mut portable);
                F16cRows::weighted_sum(&weights, &cached, &mut fast_sum);
                F16Rows::weighted_sum(&weights, &cached, &mut portable_sum);
            }
            // Fused multiply-adds and another order of sums round differently.
            for (f, p) in fast
                .iter()
                .chain(&fast_sum)
                .zip(portable.iter().chain(&portable_sum))
            {
                assert!((f - p).abs() < 1e-5, "head of {d}: {f} against {p}");
            }
        }
    }
}
