//! A weight matrix times a few vectors, the shape of a decode step (each of a few
//! sequences brings one new position): `y (m, out) = x (m, in) · Wᵀ + bias`, with `W`
//! stored `(out, in)` in f32 or in 8-bit integers with one f32 scale per block of
//! [`BLOCK`] weights of a row.
//!
//! A decode step is bound by reading the weights, so the rows are split over rayon's
//! threads and read from memory once for all `m` vectors (8-bit rows are fetched ahead
//! of their pass); a short prefill (tens of positions) is bound by arithmetic, so each
//! 8-bit weight is widened once per group of vectors, the group kept in the L1 cache.
//! AVX2 with FMA when the CPU has them (checked at run time, so the binary still runs on
//! any x86-64), portable code otherwise.

use std::ops::Range;

use rayon::prelude::*;

/// Weights of a row sharing one scale in [`Int8Matrix`].
pub const BLOCK: usize = 32;

/// Vectors handled together by one pass over a row (more would not fit the registers).
const GROUP: usize = 4;

/// Row-vector products one pass of the 8-bit kernel keeps going: a pass takes this many
/// over the number of vectors rows (8 for a decode step of one sequence, 2 for a group of
/// 4), enough independent sums to hide the latency of the multiply-adds, and each weight
/// widened to f32 serves every vector of the group.
const INT8_ACCUMULATORS: usize = 8;

/// Rows a rayon task takes at once: large enough that scheduling costs nothing next to
/// reading them, small enough to share the rows of a 1024-row matrix between threads.
const ROWS_PER_TASK: usize = 64;

/// `(rows, cols)` weights quantized to symmetric 8 bits per block of [`BLOCK`]: weight
/// `w = scale * q`, `q` in -127..=127, `scale = max |w| / 127` over the block.
#[derive(Debug, Clone)]
pub struct Int8Matrix {
    rows: usize,
    cols: usize,
    quants: Vec<i8>,
    /// (rows, cols / BLOCK)
    scales: Vec<f32>,
}

impl Int8Matrix {
    /// Quantizes row-major `weights` (rows, cols); `cols` must be a multiple of [`BLOCK`].
    pub fn quantize(weights: &[f32], rows: usize, cols: usize) -> Self {
        assert!(
            cols.is_multiple_of(BLOCK),
            "{cols} columns are not whole blocks"
        );
        assert_eq!(weights.len(), rows * cols);
        let mut quants = vec![0i8; weights.len()];
        let mut scales = Vec::with_capacity(weights.len() / BLOCK);
        for (block, q) in weights
            .chunks_exact(BLOCK)
            .zip(quants.chunks_exact_mut(BLOCK))
        {
            let max = block.iter().fold(0f32, |m, w| m.max(w.abs()));
            let scale = max / 127.0;
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            for (q, w) in q.iter_mut().zip(block) {
                *q = (w * inverse).round() as i8;
            }
            scales.push(scale);
        }
        Self {
            rows,
            cols,
            quants,
            scales,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The weights as f32, row-major (rows, cols).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut values = vec![0f32; self.quants.len()];
        values
            .par_chunks_mut(ROWS_PER_TASK * self.cols)
            .zip(self.quants.par_chunks(ROWS_PER_TASK * self.cols))
            .zip(self.scales.par_chunks(ROWS_PER_TASK * self.cols / BLOCK))
            .for_each(|((values, quants), scales)| {
                for ((values, q), &scale) in values
                    .chunks_exact_mut(BLOCK)
                    .zip(quants.chunks_exact(BLOCK))
                    .zip(scales)
                {
                    for (v, &q) in values.iter_mut().zip(q) {
                        *v = f32::from(q) * scale;
                    }
                }
            });
        values
    }

    fn row(&self, r: usize) -> (&[i8], &[f32]) {
        let blocks = self.cols / BLOCK;
        (
            &self.quants[r * self.cols..(r + 1) * self.cols],
            &self.scales[r * blocks..(r + 1) * blocks],
        )
    }
}

/// The weights of a [`matmul_t`].
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    /// Row-major (rows, cols).
    F32 {
        values: &'a [f32],
        rows: usize,
        cols: usize,
    },
    Int8(&'a Int8Matrix),
}

impl Weights<'_> {
    /// (rows, cols)
    pub fn shape(&self) -> (usize, usize) {
        match *self {
            Self::F32 { rows, cols, .. } => (rows, cols),
            Self::Int8(w) => (w.rows, w.cols),
        }
    }
}

/// `x (m, cols) · Wᵀ + bias` as (m, rows), row-major.
pub fn matmul_t(x: &[f32], m: usize, weights: Weights, bias: &[f32]) -> Vec<f32> {
    let (rows, cols) = weights.shape();
    assert_eq!(x.len(), m * cols, "x is not ({m}, {cols})");
    assert_eq!(bias.len(), rows);
    // (rows, m): each task writes the outputs of its own rows.
    let mut transposed = vec![0f32; rows * m];
    let simd = Simd::detect();
    let vectors = |g: usize| &x[g * cols..(g + GROUP.min(m - g)) * cols];
    transposed
        .par_chunks_mut(ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * ROWS_PER_TASK;
            match weights {
                Weights::F32 { values, .. } => {
                    for (i, out) in out.chunks_exact_mut(m).enumerate() {
                        let row = &values[(first + i) * cols..(first + i + 1) * cols];
                        for (g, out) in out.chunks_mut(GROUP).enumerate() {
                            simd.dot_f32(row, vectors(g * GROUP), out);
                        }
                    }
                }
                Weights::Int8(w) => {
                    // Each group of vectors stays in the L1 cache while the task's rows pass.
                    let task_rows = out.len() / m;
                    for g in (0..m).step_by(GROUP) {
                        let x = vectors(g);
                        let per_pass = INT8_ACCUMULATORS / (x.len() / cols);
                        let mut i = 0;
                        while i < task_rows {
                            let rows = if task_rows - i >= per_pass {
                                per_pass
                            } else {
                                1
                            };
                            simd.dot_int8(
                                w,
                                first + i..first + i + rows,
                                x,
                                &mut out[i * m + g..],
                                m,
                            );
                            i += rows;
                        }
                    }
                }
            }
            for (i, out) in out.chunks_exact_mut(m).enumerate() {
                out.iter_mut().for_each(|y| *y += bias[first + i]);
            }
        });
    if m == 1 {
        return transposed;
    }
    let mut y = vec![0f32; m * rows];
    for (r, outs) in transposed.chunks_exact(m).enumerate() {
        for (i, &v) in outs.iter().enumerate() {
            y[i * rows + r] = v;
        }
    }
    y
}

/// Whether this CPU has AVX2 and FMA (the standard library caches the answer).
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The instruction set the kernels use, chosen once per call.
#[derive(Clone, Copy)]
enum Simd {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl Simd {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            return Self::Avx2Fma;
        }
        Self::Portable
    }

    /// `out[g] = row · x[g]` for the `out.len()` vectors of `x` (each `row.len()` long).
    fn dot_f32(self, row: &[f32], x: &[f32], out: &mut [f32]) {
        match self {
            Self::Portable => portable::dot_f32(row, x, out),
            // SAFETY: `detect` saw AVX2 and FMA on this CPU.
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma => unsafe { avx2::dot_f32(row, x, out) },
        }
    }

    /// `out[j * m + v] = row · x[v]` for the rows `rows` of `w` (j counting from 0,
    /// `rows.len() * vectors` at most [`INT8_ACCUMULATORS`]) and the vectors of `x` (at
    /// most [`GROUP`], each `w.cols()` long).
    fn dot_int8(self, w: &Int8Matrix, rows: Range<usize>, x: &[f32], out: &mut [f32], m: usize) {
        let vectors = x.len() / w.cols;
        assert!(vectors <= GROUP && rows.len() * vectors <= INT8_ACCUMULATORS);
        assert!(rows.end <= w.rows && out.len() >= (rows.len() - 1) * m + vectors);
        match self {
            Self::Portable => portable::dot_int8(w, rows, x, out, m),
            // SAFETY: `detect` saw AVX2 and FMA on this CPU; the sizes were checked.
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma => unsafe { avx2::dot_int8(w, rows, x, out, m) },
        }
    }
}

mod portable {
    use std::ops::Range;

    use super::{BLOCK, Int8Matrix};

    pub fn dot_f32(row: &[f32], x: &[f32], out: &mut [f32]) {
        for (out, x) in out.iter_mut().zip(x.chunks_exact(row.len())) {
            *out = row.iter().zip(x).map(|(w, x)| w * x).sum();
        }
    }

    pub fn dot_int8(w: &Int8Matrix, rows: Range<usize>, x: &[f32], out: &mut [f32], m: usize) {
        for (j, r) in rows.enumerate() {
            let (row, scales) = w.row(r);
            for (v, x) in x.chunks_exact(row.len()).enumerate() {
                out[j * m + v] = row
                    .chunks_exact(BLOCK)
                    .zip(x.chunks_exact(BLOCK))
                    .zip(scales)
                    .map(|((q, x), scale)| {
                        scale * q.iter().zip(x).map(|(&q, x)| f32::from(q) * x).sum::<f32>()
                    })
                    .sum();
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{BLOCK, GROUP, Int8Matrix};

    /// Sum of the 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    fn sum(v: __m256) -> f32 {
        let half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pair = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)))
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_f32(row: &[f32], x: &[f32], out: &mut [f32]) {
        match out.len() {
            1 => dot_f32_group::<1>(row, x, out),
            2 => dot_f32_group::<2>(row, x, out),
            3 => dot_f32_group::<3>(row, x, out),
            _ => dot_f32_group::<GROUP>(row, x, out),
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn dot_f32_group<const G: usize>(row: &[f32], x: &[f32], out: &mut [f32]) {
        let n = row.len();
        let whole = n - n % 16;
        let mut acc = [[_mm256_setzero_ps(); 2]; G];
        let mut k = 0;
        while k < whole {
            // SAFETY: k + 16 <= n, and every x[g] is n long.
            unsafe {
                let w0 = _mm256_loadu_ps(row.as_ptr().add(k));
                let w1 = _mm256_loadu_ps(row.as_ptr().add(k + 8));
                for (g, acc) in acc.iter_mut().enumerate() {
                    let xg = x.as_ptr().add(g * n + k);
                    acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(xg), w0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(_mm256_loadu_ps(xg.add(8)), w1, acc[1]);
                }
            }
            k += 16;
        }
        for (g, acc) in acc.iter().enumerate() {
            let tail: f32 = (whole..n).map(|k| row[k] * x[g * n + k]).sum();
            out[g] = sum(_mm256_add_ps(acc[0], acc[1])) + tail;
        }
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA; the sizes as [`super::Simd::dot_int8`] checks them.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_int8(
        w: &Int8Matrix,
        rows: Range<usize>,
        x: &[f32],
        out: &mut [f32],
        m: usize,
    ) {
        let first = rows.start;
        let kernel = match (rows.len(), x.len() / w.cols) {
            (8, 1) => dot_int8_rows::<8, 1>,
            (4, 2) => dot_int8_rows::<4, 2>,
            (2, 3) => dot_int8_rows::<2, 3>,
            (2, 4) => dot_int8_rows::<2, 4>,
            (1, 1) => dot_int8_rows::<1, 1>,
            (1, 2) => dot_int8_rows::<1, 2>,
            (1, 3) => dot_int8_rows::<1, 3>,
            (1, 4) => dot_int8_rows::<1, 4>,
            shape => unreachable!("no 8-bit kernel for {shape:?} rows and vectors"),
        };
        kernel(w, first, x, out, m);
    }

    const CACHE_LINE: usize = 64;

    /// 8 weights from `q` as f32.
    ///
    /// # Safety
    /// `q` must point at 8 readable bytes.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn widen(q: *const i8) -> __m256 {
        // SAFETY: the caller's promise.
        let bytes = unsafe { _mm_loadl_epi64(q.cast()) };
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes))
    }

    /// Rows `first..first + R` of `w` times the `G` vectors of `x`, into
    /// `out[j * m + v]`: each 8 weights are widened and scaled once, then multiplied
    /// into all `G` vectors.
    #[target_feature(enable = "avx2,fma")]
    fn dot_int8_rows<const R: usize, const G: usize>(
        w: &Int8Matrix,
        first: usize,
        x: &[f32],
        out: &mut [f32],
        m: usize,
    ) {
        let (n, blocks) = (w.cols, w.cols / BLOCK);
        let quants = &w.quants[first * n..(first + R) * n];
        let scales = &w.scales[first * blocks..(first + R) * blocks];
        assert!(x.len() >= G * n);
        // The rows of the next pass, fetched while these are multiplied: `R * BLOCK`
        // bytes of them per block of these.
        let next = w.quants.as_ptr().wrapping_add((first + R) * n);
        let mut acc = [[_mm256_setzero_ps(); G]; R];
        for b in 0..blocks {
            for line in (0..R * BLOCK).step_by(CACHE_LINE) {
                // Prefetching is a hint that never faults, wherever it points.
                _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(b * R * BLOCK + line).cast());
            }
            for k in (b * BLOCK..(b + 1) * BLOCK).step_by(8) {
                let mut xs = [_mm256_setzero_ps(); G];
                // SAFETY: k + 8 <= n; x holds G vectors of n, the quants R rows of n.
                unsafe {
                    for (v, xs) in xs.iter_mut().enumerate() {
                        *xs = _mm256_loadu_ps(x.as_ptr().add(v * n + k));
                    }
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let scale = _mm256_set1_ps(scales[r * blocks + b]);
                        let weights = _mm256_mul_ps(widen(quants.as_ptr().add(r * n + k)), scale);
                        for (acc, &xs) in acc.iter_mut().zip(&xs) {
                            *acc = _mm256_fmadd_ps(xs, weights, *acc);
                        }
                    }
                }
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            for (v, &acc) in acc.iter().enumerate() {
                out[j * m + v] = sum(acc);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` values in -0.5..0.5 that depend on `seed`.
    pub(crate) fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761);
                (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// y = x · Wᵀ + bias, one product at a time in f64.
    fn reference(x: &[f32], m: usize, w: &[f32], rows: usize, bias: &[f32]) -> Vec<f32> {
        let cols = x.len() / m;
        (0..m)
            .flat_map(|i| {
                (0..rows).map(move |r| {
                    let dot: f64 = (0..cols)
                        .map(|k| f64::from(x[i * cols + k]) * f64::from(w[r * cols + k]))
                        .sum();
                    (dot + f64::from(bias[r])) as f32
                })
            })
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f32], tolerance: f32) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tolerance, "output {i}: {g} against {w}");
        }
    }

    #[test]
    fn f32_rows_match_the_plain_product_for_every_group_size() {
        // 200 rows: several tasks and a partial one; 72 columns: a tail after 16-wide steps.
        let (rows, cols) = (200, 72);
        let w = values(rows * cols, 1);
        let bias = values(rows, 2);
        for m in [1, 2, 3, 4, 5, 9] {
            let x = values(m * cols, 3 + m as u32);
            let weights = Weights::F32 {
                values: &w,
                rows,
                cols,
            };
            let got = matmul_t(&x, m, weights, &bias);
            assert_close(&got, &reference(&x, m, &w, rows, &bias), 1e-4);
            let mut portable = vec![0.0; m];
            portable::dot_f32(&w[..cols], &x, &mut portable);
            assert_close(&portable, &reference(&x, m, &w[..cols], 1, &[0.0]), 1e-4);
        }
    }

    #[test]
    fn int8_rows_match_the_product_of_the_dequantized_weights() {
        let (rows, cols) = (131, 96);
        let w = values(rows * cols, 4);
        let q = Int8Matrix::quantize(&w, rows, cols);
        let dequantized = q.dequantize();
        let bias = values(rows, 5);
        for m in [1, 2, 3, 4, 6, 9] {
            let x = values(m * cols, 6 + m as u32);
            let got = matmul_t(&x, m, Weights::Int8(&q), &bias);
            assert_close(&got, &reference(&x, m, &dequantized, rows, &bias), 1e-4);
            let mut portable = vec![0.0; 2 * m];
            portable::dot_int8(&q, 0..2, &x, &mut portable, m);
            let want = reference(&x, m, &dequantized, 2, &[0.0; 2]);
            let want: Vec<f32> = (0..2 * m).map(|i| want[(i % m) * 2 + i / m]).collect();
            assert_close(&portable, &want, 1e-4);
        }
    }

    #[test]
    fn quantization_error_is_within_half_a_step_of_each_block() {
        let (rows, cols) = (3, 64);
        let mut w = values(rows * cols, 7);
        w[5] = 40.0; // an outlier only coarsens its own block
        w[128..160].fill(0.0); // an all-zero block stays zero
        let q = Int8Matrix::quantize(&w, rows, cols);
        let d = q.dequantize();
        for (b, (block, got)) in w.chunks(BLOCK).zip(d.chunks(BLOCK)).enumerate() {
            let step = block.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (w, d) in block.iter().zip(got) {
                assert!(
                    (w - d).abs() <= step / 2.0 + 1e-7,
                    "block {b}: {w} became {d}"
                );
            }
        }
        assert!(d[128..160].iter().all(|&v| v == 0.0));
        assert!(
            (d[40] - w[40]).abs() < 0.5 / 127.0,
            "block 1 kept its own scale"
        );
    }
}
