//! A weight matrix times a few vectors, the shape of a decode step (each of a few
//! sequences brings one new position): `y (m, out) = x (m, in) · Wᵀ + bias`, with `W`
//! stored `(out, in)` in f32 or in 8-bit integers with one f32 scale per block of
//! [`BLOCK`] weights of a row.
//!
//! A decode step is bound by reading the weights, so the rows are split over rayon's
//! threads and read from memory once for all `m` vectors (8-bit rows in packs laid out in
//! the order a pass reads them, one stream the hardware prefetcher follows: measured
//! faster than prefetching in software); a prefill (tens or hundreds of positions) is
//! bound by arithmetic, so each row is read once per group of vectors, the group kept in
//! the L1 cache.
//!
//! With 8-bit weights the vectors are quantized too, per block of [`BLOCK`] values (as
//! llama.cpp's `Q8_0` dot products), and each block's products are summed exactly in
//! 32-bit integers before its two scales apply: AVX-512 VNNI's `vpdpbusd` makes 32 such
//! products in one instruction, AVX2 in four. Which instructions run is checked at run
//! time, so the binary still runs on any x86-64 (portable code otherwise), and all of
//! them give the same integer sums.

use std::ops::Range;

use rayon::prelude::*;

/// Weights of a row sharing one scale in [`Int8Matrix`].
pub const BLOCK: usize = 32;

/// Blocks whose products one 8-bit kernel step sums side by side, one per 32-bit lane of
/// a 256-bit register.
const LANES: usize = 8;

/// Columns the 8-bit kernels take at once: [`LANES`] blocks, stored interleaved so that
/// each 32 bytes hold 4 consecutive values of every block (see [`interleaved`]).
const SPAN: usize = LANES * BLOCK;

/// Vectors handled together by one pass over a row (more would not fit the registers).
const GROUP: usize = 4;

/// Row-vector products the 8-bit kernel sums at once: it takes a [`PACK`]'s span this
/// many over the number of vectors rows at a time (all 8 for a decode step of one
/// sequence, 2 for a group of 4), enough independent sums to hide the latency of the
/// dot products, and each row's bytes serve every vector of the group.
const INT8_ACCUMULATORS: usize = 8;

/// Rows a rayon task takes at once: large enough that scheduling costs nothing next to
/// reading them, small enough to share the rows of a 1024-row matrix between threads.
const ROWS_PER_TASK: usize = 64;

/// Rows of a product that [`matmul_t`] transposes per task.
const TRANSPOSE_TILE: usize = 16;

/// Where column `c` of a [`SPAN`] is stored: block `c / BLOCK`'s values `4j..4j + 4` go
/// to bytes `32j + 4 * block..`, so one 32-byte load brings 4 values of each of the
/// [`LANES`] blocks and a 4-way dot product per lane keeps each block's sum in its own
/// lane.
fn interleaved(c: usize) -> usize {
    let (block, j, k) = (c / BLOCK, c % BLOCK / 4, c % 4);
    j * BLOCK + block * 4 + k
}

/// Columns rounded up to whole [`SPAN`]s: the padding holds zeros.
fn padded(cols: usize) -> usize {
    cols.div_ceil(SPAN) * SPAN
}

/// Symmetric 8-bit values of `x` per block of [`BLOCK`]: `x = scale * q`, `q` in
/// -127..=127, `scale = max |x| / 127` over the block; written in [`interleaved`] order
/// (the tail of `quants` past `x`'s spans stays zero). Compiled for AVX2 when the CPU has
/// it, where rounding is one instruction and not a call into libm.
fn quantize_blocks(x: &[f32], quants: &mut [i8], scales: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { quantize_blocks_avx2(x, quants, scales) };
    }
    quantize_blocks_with(x, quants, scales)
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_blocks_avx2(x: &[f32], quants: &mut [i8], scales: &mut [f32]) {
    quantize_blocks_with(x, quants, scales)
}

#[inline(always)]
fn quantize_blocks_with(x: &[f32], quants: &mut [i8], scales: &mut [f32]) {
    for (b, (block, scale)) in x.chunks(BLOCK).zip(scales.iter_mut()).enumerate() {
        let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        *scale = max / 127.0;
        let inverse = if max > 0.0 { 127.0 / max } else { 0.0 };
        let at = b / LANES * SPAN + b % LANES * 4;
        for (j, four) in block.chunks_exact(4).enumerate() {
            for (q, v) in quants[at + j * BLOCK..][..4].iter_mut().zip(four) {
                *q = (v * inverse).round_ties_even() as i8;
            }
        }
    }
}

/// Rows of an [`Int8Matrix`] stored together, span by span, so that a pass of the 8-bit
/// kernel over them reads one contiguous stream.
const PACK: usize = 8;

/// Where byte `i` (in [`interleaved`] order) of row `r` of a [`PACK`] in its span `s` is
/// stored within the pack: a pack's span holds its rows' first 32 bytes, then their next
/// 32, and so on, so that a pass over the whole pack reads its bytes in order.
fn in_pack(r: usize, s: usize, i: usize) -> usize {
    s * PACK * SPAN + i / BLOCK * PACK * BLOCK + r * BLOCK + i % BLOCK
}

/// `(rows, cols)` weights quantized to symmetric 8 bits per block of [`BLOCK`] (see
/// [`quantize_blocks`]), each row padded to whole [`SPAN`]s and the rows to whole
/// [`PACK`]s. Each `q` is stored plus 128, as `vpdpbusd` wants one operand unsigned.
#[derive(Debug, Clone)]
pub struct Int8Matrix {
    rows: usize,
    cols: usize,
    /// (packs, spans, LANES, PACK, BLOCK): per pack and span, the first 32 bytes of each
    /// of its rows' span (in [`interleaved`] order), then the next 32, and so on
    /// ([`in_pack`]).
    quants: Vec<u8>,
    /// (packs, spans, PACK, LANES): the scales of the blocks in `quants`, in the same order.
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
        let (width, spans) = (padded(cols), padded(cols) / SPAN);
        let packs = rows.div_ceil(PACK);
        let mut quants = vec![0x80u8; packs * PACK * width];
        let mut scales = vec![0f32; packs * PACK * width / BLOCK];
        quants
            .par_chunks_mut(PACK * width)
            .zip(scales.par_chunks_mut(PACK * width / BLOCK))
            .zip(weights.par_chunks(PACK * cols))
            .for_each(|((pack_quants, pack_scales), pack)| {
                let mut row_quants = vec![0i8; width];
                let mut row_scales = vec![0f32; width / BLOCK];
                for (r, row) in pack.chunks_exact(cols).enumerate() {
                    quantize_blocks(row, &mut row_quants, &mut row_scales);
                    for s in 0..spans {
                        let at = s * PACK + r;
                        for (i, &v) in row_quants[s * SPAN..(s + 1) * SPAN].iter().enumerate() {
                            pack_quants[in_pack(r, s, i)] = (v as u8) ^ 0x80;
                        }
                        pack_scales[at * LANES..(at + 1) * LANES]
                            .copy_from_slice(&row_scales[s * LANES..(s + 1) * LANES]);
                    }
                }
            });
        Self {
            rows,
            cols,
            quants,
            scales,
        }
    }

    /// Row `r`'s span `s` among the rows' spans in storage order: its scales start at
    /// this times [`LANES`].
    fn row_span(&self, r: usize, s: usize) -> usize {
        let spans = padded(self.cols) / SPAN;
        (r / PACK * spans + s) * PACK + r % PACK
    }

    /// Where byte `i` of row `r`'s span `s` (in [`interleaved`] order) is stored.
    fn quant_at(&self, r: usize, s: usize, i: usize) -> usize {
        r / PACK * PACK * padded(self.cols) + in_pack(r % PACK, s, i)
    }

    /// The weights as f32, row-major (rows, cols).
    #[cfg(test)]
    fn dequantize(&self) -> Vec<f32> {
        let mut values = vec![0f32; self.rows * self.cols];
        values
            .par_chunks_mut(self.cols)
            .enumerate()
            .for_each(|(r, values)| {
                for (c, v) in values.iter_mut().enumerate() {
                    let (s, i) = (c / SPAN, interleaved(c % SPAN));
                    let q = self.quants[self.quant_at(r, s, i)] ^ 0x80;
                    let scale = self.scales[self.row_span(r, s) * LANES + c % SPAN / BLOCK];
                    *v = f32::from(q as i8) * scale;
                }
            });
        values
    }
}

/// `m` vectors quantized as [`Int8Matrix`] rows, for its kernels.
struct Int8Vectors {
    /// (m, padded(cols)), in [`interleaved`] order.
    quants: Vec<i8>,
    /// (m, padded(cols) / BLOCK)
    scales: Vec<f32>,
    /// (m, padded(cols) / BLOCK): 128 times the sum of each block's `q`, which
    /// `vpdpbusd` adds to a dot product with the weights' offset of 128.
    offsets: Vec<i32>,
}

impl Int8Vectors {
    fn quantize(x: &[f32], m: usize, cols: usize) -> Self {
        let width = padded(cols);
        let mut quants = vec![0i8; m * width];
        let mut scales = vec![0f32; m * width / BLOCK];
        for ((quants, scales), x) in quants
            .chunks_exact_mut(width)
            .zip(scales.chunks_exact_mut(width / BLOCK))
            .zip(x.chunks_exact(cols))
        {
            quantize_blocks(x, quants, scales);
        }
        let offsets = quants
            .chunks_exact(SPAN)
            .flat_map(|span| {
                (0..LANES).map(move |lane| {
                    let values = (0..BLOCK).map(|c| span[interleaved(lane * BLOCK + c)]);
                    128 * values.map(i32::from).sum::<i32>()
                })
            })
            .collect();
        Self {
            quants,
            scales,
            offsets,
        }
    }

    /// `vectors` vectors from vector `first` on.
    fn group(&self, first: usize, vectors: usize, width: usize) -> VectorGroup<'_> {
        let blocks = width / BLOCK;
        VectorGroup {
            quants: &self.quants[first * width..(first + vectors) * width],
            scales: &self.scales[first * blocks..(first + vectors) * blocks],
            offsets: &self.offsets[first * blocks..(first + vectors) * blocks],
        }
    }
}

/// A few vectors of [`Int8Vectors`].
#[derive(Clone, Copy)]
struct VectorGroup<'a> {
    quants: &'a [i8],
    scales: &'a [f32],
    offsets: &'a [i32],
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
    let int8_x = match weights {
        Weights::Int8(_) => Some(Int8Vectors::quantize(x, m, cols)),
        Weights::F32 { .. } => None,
    };
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
                    let x = int8_x.as_ref().expect("8-bit weights quantize the vectors");
                    // Each group of vectors stays in the L1 cache while the task's rows pass.
                    let task_rows = out.len() / m;
                    for g in (0..m).step_by(GROUP) {
                        let vectors = GROUP.min(m - g);
                        let x = x.group(g, vectors, padded(cols));
                        for pack in (0..task_rows).step_by(PACK) {
                            let rows = PACK.min(task_rows - pack);
                            let out = &mut out[pack * m + g..];
                            simd.dot_int8(w, first + pack..first + pack + rows, x, out, m);
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
    // Each task writes a tile of y's rows, reading each of `transposed`'s rows a span at a
    // time: one element a row at a time strided through all of y missed the TLB on
    // nearly every store (4 % of a long prefill).
    let mut y = vec![0f32; m * rows];
    y.par_chunks_mut(TRANSPOSE_TILE * rows)
        .enumerate()
        .for_each(|(tile, y)| {
            let first = tile * TRANSPOSE_TILE;
            for (r, outs) in transposed.chunks_exact(m).enumerate() {
                for (i, &v) in outs[first..].iter().take(y.len() / rows).enumerate() {
                    y[i * rows + r] = v;
                }
            }
        });
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

/// Whether this CPU also has AVX-512 VNNI on 256-bit registers.
fn has_avx512_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    return has_avx2_fma()
        && std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512vl");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The instruction set the kernels use, chosen once per call.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Simd {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

impl Simd {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if has_avx512_vnni() {
            return Self::Avx512Vnni;
        }
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
            Self::Avx2Fma | Self::Avx512Vnni => unsafe { avx2::dot_f32(row, x, out) },
        }
    }

    /// `out[j * m + v] = row · x[v]` for the rows `rows` of `w` (j counting from 0; the
    /// rows of one [`PACK`], from its first) and the vectors of `x` (at most [`GROUP`]).
    fn dot_int8(
        self,
        w: &Int8Matrix,
        rows: Range<usize>,
        x: VectorGroup,
        out: &mut [f32],
        m: usize,
    ) {
        let width = padded(w.cols);
        let vectors = x.quants.len() / width;
        assert!((1..=GROUP).contains(&vectors));
        assert!(rows.start.is_multiple_of(PACK) && rows.len() <= PACK && rows.end <= w.rows);
        assert!(!rows.is_empty() && out.len() >= (rows.len() - 1) * m + vectors);
        match self {
            Self::Portable => portable::dot_int8(w, rows, x, out, m),
            // SAFETY: `detect` saw the instructions on this CPU; the sizes were checked.
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma => unsafe { avx2::dot_int8_avx2(w, rows, x, out, m) },
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Vnni => unsafe { avx2::dot_int8_vnni(w, rows, x, out, m) },
        }
    }
}

mod portable {
    use std::ops::Range;

    use super::{BLOCK, Int8Matrix, LANES, SPAN, VectorGroup, padded};

    pub fn dot_f32(row: &[f32], x: &[f32], out: &mut [f32]) {
        for (out, x) in out.iter_mut().zip(x.chunks_exact(row.len())) {
            *out = row.iter().zip(x).map(|(w, x)| w * x).sum();
        }
    }

    pub fn dot_int8(w: &Int8Matrix, rows: Range<usize>, x: VectorGroup, out: &mut [f32], m: usize) {
        let width = padded(w.cols);
        let blocks = width / BLOCK;
        for (j, r) in rows.enumerate() {
            for (v, x_quants) in x.quants.chunks_exact(width).enumerate() {
                let x_scales = &x.scales[v * blocks..(v + 1) * blocks];
                let mut total = 0f32;
                for (s, x_quants) in x_quants.chunks_exact(SPAN).enumerate() {
                    let mut sums = [0i32; LANES];
                    for (i, &x) in x_quants.iter().enumerate() {
                        let q = w.quants[w.quant_at(r, s, i)] ^ 0x80;
                        sums[i % BLOCK / 4] += i32::from(q as i8) * i32::from(x);
                    }
                    for (lane, &sum) in sums.iter().enumerate() {
                        let row_scale = w.scales[w.row_span(r, s) * LANES + lane];
                        let scale = row_scale * x_scales[s * LANES + lane];
                        total += sum as f32 * scale;
                    }
                }
                out[j * m + v] = total;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{
        BLOCK, GROUP, INT8_ACCUMULATORS, Int8Matrix, LANES, PACK, SPAN, VectorGroup, padded,
    };

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

    /// One 4-way dot product step of the 8-bit kernel: per 32-bit lane, the sum of 4
    /// products of a row's bytes (offset by 128) and a vector's.
    pub trait Int8Dot {
        /// Whether [`Int8Dot::dot`] sums the row's values with their offset of 128 (which
        /// the vector's `offsets` then take back out).
        const OFFSET: bool;

        /// # Safety
        /// The CPU must have the instructions the implementation uses.
        unsafe fn dot(sums: __m256i, w: __m256i, x: __m256i) -> __m256i;
    }

    /// `vpdpbusd`: unsigned bytes times signed ones, 4 to a lane, in one instruction.
    pub struct Vnni;

    impl Int8Dot for Vnni {
        const OFFSET: bool = true;

        #[inline(always)]
        unsafe fn dot(sums: __m256i, w: __m256i, x: __m256i) -> __m256i {
            // SAFETY: the caller's promise.
            unsafe { _mm256_dpbusd_epi32(sums, w, x) }
        }
    }

    /// AVX2's `vpmaddubsw` wants its products to fit 16 bits in pairs, so the row's
    /// values lose their offset and their signs move onto the vector's.
    pub struct Avx2;

    impl Int8Dot for Avx2 {
        const OFFSET: bool = false;

        #[inline(always)]
        unsafe fn dot(sums: __m256i, w: __m256i, x: __m256i) -> __m256i {
            // SAFETY: the caller's promise.
            unsafe {
                let w = _mm256_xor_si256(w, _mm256_set1_epi8(-128));
                let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
                _mm256_add_epi32(sums, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX2, FMA and AVX-512 VNNI with VL; the sizes as
    /// [`super::Simd::dot_int8`] checks them.
    #[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
    pub unsafe fn dot_int8_vnni(
        w: &Int8Matrix,
        rows: Range<usize>,
        x: VectorGroup,
        out: &mut [f32],
        m: usize,
    ) {
        // SAFETY: the caller's promise.
        unsafe { dot_int8::<Vnni>(w, rows, x, out, m) }
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA; the sizes as [`super::Simd::dot_int8`] checks them.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_int8_avx2(
        w: &Int8Matrix,
        rows: Range<usize>,
        x: VectorGroup,
        out: &mut [f32],
        m: usize,
    ) {
        // SAFETY: the caller's promise.
        unsafe { dot_int8::<Avx2>(w, rows, x, out, m) }
    }

    /// # Safety
    /// The CPU must have AVX2, FMA and what `D` uses; the sizes as
    /// [`super::Simd::dot_int8`] checks them.
    #[inline(always)]
    unsafe fn dot_int8<D: Int8Dot>(
        w: &Int8Matrix,
        rows: Range<usize>,
        x: VectorGroup,
        out: &mut [f32],
        m: usize,
    ) {
        let (first, rows) = (rows.start, rows.len());
        // SAFETY: the caller's promise.
        unsafe {
            match x.quants.len() / padded(w.cols) {
                1 => dot_int8_pack::<D, INT8_ACCUMULATORS, 1>(w, first, rows, x, out, m),
                2 => dot_int8_pack::<D, { INT8_ACCUMULATORS / 2 }, 2>(w, first, rows, x, out, m),
                3 => dot_int8_pack::<D, { INT8_ACCUMULATORS / 3 }, 3>(w, first, rows, x, out, m),
                4 => dot_int8_pack::<D, { INT8_ACCUMULATORS / 4 }, 4>(w, first, rows, x, out, m),
                vectors => unreachable!("no 8-bit kernel for {vectors} vectors"),
            }
        }
    }

    /// The first `rows` rows of the [`PACK`] that starts at row `first` of `w` times the
    /// `G` vectors of `x`, into `out[j * m + v]`. Per [`SPAN`], `R` rows at a time (all of
    /// the span's bytes are read within a few hundred cycles, in order), each block's
    /// products are summed exactly in its own 32-bit lane, then scaled by both blocks'
    /// scales into f32 sums.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and what `D` uses; `x` holds `G` vectors.
    #[inline(always)]
    unsafe fn dot_int8_pack<D: Int8Dot, const R: usize, const G: usize>(
        w: &Int8Matrix,
        first: usize,
        rows: usize,
        x: VectorGroup,
        out: &mut [f32],
        m: usize,
    ) {
        let width = padded(w.cols);
        let (spans, blocks) = (width / SPAN, width / BLOCK);
        assert!(first.is_multiple_of(PACK) && PACK.is_multiple_of(R));
        assert!(w.quant_at(first + PACK - 1, spans - 1, SPAN - 1) < w.quants.len());
        assert!(x.quants.len() >= G * width && x.scales.len() >= G * blocks);
        assert!(x.offsets.len() >= G * blocks);
        let (quants, scales) = (w.quants.as_ptr(), w.scales.as_ptr());
        // SAFETY: the pack's rows of every span are within `quants` and `scales` (checked
        // for the last span, the furthest), and the loads from `x` stay within its G
        // vectors of `width` values and `blocks` scales and offsets.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); G]; PACK];
            for s in 0..spans {
                let span = w.quant_at(first, s, 0);
                let row_span = w.row_span(first, s);
                let mut x_scales = [_mm256_setzero_ps(); G];
                let mut x_offsets = [_mm256_setzero_si256(); G];
                for v in 0..G {
                    let at = v * blocks + s * LANES;
                    x_scales[v] = _mm256_loadu_ps(x.scales.as_ptr().add(at));
                    x_offsets[v] = _mm256_loadu_si256(x.offsets.as_ptr().add(at).cast());
                }
                for (pass, acc) in acc.chunks_exact_mut(R).enumerate() {
                    let mut sums = [[_mm256_setzero_si256(); G]; R];
                    for step in 0..LANES {
                        let mut xs = [_mm256_setzero_si256(); G];
                        for (v, xs) in xs.iter_mut().enumerate() {
                            let at = v * width + s * SPAN + step * BLOCK;
                            *xs = _mm256_loadu_si256(x.quants.as_ptr().add(at).cast());
                        }
                        for (r, sums) in sums.iter_mut().enumerate() {
                            let at = span + step * PACK * BLOCK + (pass * R + r) * BLOCK;
                            let row = _mm256_loadu_si256(quants.add(at).cast());
                            for (sums, &xs) in sums.iter_mut().zip(&xs) {
                                *sums = D::dot(*sums, row, xs);
                            }
                        }
                    }
                    for (r, (acc, sums)) in acc.iter_mut().zip(&sums).enumerate() {
                        let at = (row_span + pass * R + r) * LANES;
                        let row_scales = _mm256_loadu_ps(scales.add(at));
                        for (v, (acc, &sums)) in acc.iter_mut().zip(sums).enumerate() {
                            let sums = if D::OFFSET {
                                _mm256_sub_epi32(sums, x_offsets[v])
                            } else {
                                sums
                            };
                            let scale = _mm256_mul_ps(row_scales, x_scales[v]);
                            *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, *acc);
                        }
                    }
                }
            }
            for (j, acc) in acc.iter().take(rows).enumerate() {
                for (v, &acc) in acc.iter().enumerate() {
                    out[j * m + v] = sum(acc);
                }
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
        for m in [1, 2, 3, 4, 5, 9, 37] {
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

    /// The values `x` stands for, row-major (m, cols).
    fn dequantized_vectors(x: &Int8Vectors, cols: usize) -> Vec<f32> {
        let width = padded(cols);
        x.quants
            .chunks_exact(width)
            .zip(x.scales.chunks_exact(width / BLOCK))
            .flat_map(|(quants, scales)| {
                (0..cols).map(|c| {
                    let q = quants[c / SPAN * SPAN + interleaved(c % SPAN)];
                    f32::from(q) * scales[c / BLOCK]
                })
            })
            .collect()
    }

    #[test]
    fn int8_rows_match_the_product_of_the_dequantized_weights_and_vectors() {
        // 288 columns: a whole span, then one block padded to a second span.
        let (rows, cols) = (131, 288);
        let w = values(rows * cols, 4);
        let q = Int8Matrix::quantize(&w, rows, cols);
        let dequantized = q.dequantize();
        let bias = values(rows, 5);
        for m in [1, 2, 3, 4, 6, 9, 37] {
            let x = values(m * cols, 6 + m as u32);
            let xq = dequantized_vectors(&Int8Vectors::quantize(&x, m, cols), cols);
            let got = matmul_t(&x, m, Weights::Int8(&q), &bias);
            assert_close(&got, &reference(&xq, m, &dequantized, rows, &bias), 1e-4);
        }
    }

    #[test]
    fn every_instruction_set_makes_the_same_int8_products() {
        // Two packs, the second with 5 rows.
        let (rows, cols) = (13, 544);
        let w = Int8Matrix::quantize(&values(rows * cols, 8), rows, cols);
        let mut simds = vec![Simd::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx2_fma() {
                simds.push(Simd::Avx2Fma);
            }
            if has_avx512_vnni() {
                simds.push(Simd::Avx512Vnni);
            }
        }
        for vectors in 1..=GROUP {
            let x = Int8Vectors::quantize(&values(vectors * cols, 9), vectors, cols);
            let x = x.group(0, vectors, padded(cols));
            for pack in [0..PACK, PACK..rows] {
                let outputs: Vec<Vec<f32>> = simds
                    .iter()
                    .map(|simd| {
                        let mut out = vec![0f32; pack.len() * vectors];
                        simd.dot_int8(&w, pack.clone(), x, &mut out, vectors);
                        out
                    })
                    .collect();
                for (simd, out) in simds.iter().zip(&outputs) {
                    assert_close(out, &outputs[0], 1e-5);
                    assert!(out.iter().all(|&y| y != 0.0), "{simd:?} left zeros");
                }
            }
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
