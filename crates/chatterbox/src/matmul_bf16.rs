//! f32 matrix products computed in bfloat16 with f32 sums: AVX-512 BF16's `vdpbf16ps`
//! multiplies and adds two pairs of bf16 per f32 lane, twice the multiply-adds of an f32
//! FMA per cycle on this project's CPUs (AMD Zen 4: 116 against 58 GMAC/s a core).
//! Both operands are rounded to bf16 (8 significant bits, to nearest even); the sums stay
//! f32. Used by S3Gen when its precision is `bf16` and the CPU has the instructions
//! ([`available`]); everything else keeps f32 and the reference's numbers.
//!
//! The right operand is packed once into panels of [`PANEL`] columns, each a sequence of
//! `k / 2` rows of 32-bit lanes holding the bf16 pair `(b[2p][j], b[2p + 1][j])`; the left
//! operand is converted per call to bf16 rows, whose consecutive pairs are those same
//! `(a[i][2p], a[i][2p + 1])`.

use rayon::prelude::*;

/// Columns per packed panel: two 16-lane vectors (two AMX tiles).
pub(crate) const PANEL: usize = 32;
/// Rows per microkernel call: 12 rows by 2 vectors are 24 of AVX-512's 32 registers.
const ROWS: usize = 12;
/// Rows per parallel task.
const TASK_ROWS: usize = 8 * ROWS;
/// k pairs per pass over a panel: 128 pairs of 32 lanes are 16 KiB, half of L1.
const PAIRS_PER_PASS: usize = 128;

/// Whether this CPU has AVX-512 BF16 (checked once, at run time).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bf16")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The right operand `(k, n)` of a product, packed in bf16 pairs.
#[derive(Debug, Clone)]
pub struct Bf16Rhs {
    /// `panels x pairs x PANEL` lanes; columns past `n` and pairs past `k` are 0.
    lanes: Vec<u32>,
    k: usize,
    n: usize,
    pairs: usize,
}

fn bf16_bits(x: f32) -> u32 {
    u32::from(half::bf16::from_f32(x).to_bits())
}

impl Bf16Rhs {
    /// Packs `b (k, n)`, where `b(p, j)` reads element `(p, j)`.
    fn pack(k: usize, n: usize, b: impl Fn(usize, usize) -> f32 + Sync) -> Self {
        let mut packed = Self::zeroed(k, n);
        let pairs = packed.pairs;
        packed
            .lanes
            .par_chunks_mut(pairs * PANEL)
            .enumerate()
            .for_each(|(panel, lanes)| {
                for (p, row) in lanes
                    .chunks_exact_mut(PANEL)
                    .take(k.div_ceil(2))
                    .enumerate()
                {
                    for (lane, value) in row.iter_mut().enumerate() {
                        let j = panel * PANEL + lane;
                        if j >= n {
                            break;
                        }
                        let low = bf16_bits(b(2 * p, j));
                        let high = if 2 * p + 1 < k {
                            bf16_bits(b(2 * p + 1, j))
                        } else {
                            0
                        };
                        *value = low | high << 16;
                    }
                }
            });
        packed
    }

    /// Packs a row-major `(k, n)` matrix.
    pub fn from_row_major(b: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(b.len(), k * n, "Bf16Rhs: the matrix is not {k} x {n}");
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: the CPU has AVX-512 BF16; `b` is `k x n`.
            return unsafe { x86::pack_row_major(b, k, n) };
        }
        Self::pack(k, n, |p, j| b[p * n + j])
    }

    /// Packs the transpose of a row-major `(n, k)` matrix, such as a linear layer's
    /// `(out, in)` weight.
    pub fn from_transposed(b_t: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(b_t.len(), k * n, "Bf16Rhs: the matrix is not {n} x {k}");
        #[cfg(target_arch = "x86_64")]
        if available() {
            // SAFETY: the CPU has AVX-512 BF16; `b_t` is `n x k`.
            return unsafe { x86::pack_transposed(b_t, k, n) };
        }
        Self::pack(k, n, |p, j| b_t[j * k + p])
    }

    /// An empty packing of a `(k, n)` matrix, its pairs a whole number of AMX tiles' 16.
    fn zeroed(k: usize, n: usize) -> Self {
        let pairs = k.div_ceil(32) * 16;
        Self {
            lanes: vec![0u32; n.div_ceil(PANEL) * pairs * PANEL],
            k,
            n,
            pairs,
        }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// Pairs per column: `k / 2` rounded up to a multiple of 16.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// Panel `i`'s `pairs x PANEL` lanes.
    pub(crate) fn panel(&self, i: usize) -> &[u32] {
        &self.lanes[i * self.pairs * PANEL..][..self.pairs * PANEL]
    }
}

/// A raw pointer that parallel tasks share; each writes only its own tile.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: the tasks given one write disjoint tiles of the output.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer; a method, so that closures capture the whole `SharedOut`.
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// `dst (m, n) += lhs (m, k) x rhs`, `dst` and `lhs` row-major f32.
///
/// # Panics
///
/// If the CPU lacks AVX-512 BF16 ([`available`]) or a slice's length does not match its
/// shape.
pub fn matmul_accumulate(dst: &mut [f32], lhs: &[f32], rhs: &Bf16Rhs, m: usize) {
    matmul_accumulate_on(Tiles::best(), dst, lhs, rhs, m)
}

/// Which instructions run the products: AMX tiles where the CPU and system have them,
/// else AVX-512 BF16 dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tiles {
    Amx,
    Avx512,
}

impl Tiles {
    fn best() -> Self {
        match crate::amx::available() {
            true => Self::Amx,
            false => Self::Avx512,
        }
    }
}

/// [`matmul_accumulate`] on `tiles`.
fn matmul_accumulate_on(tiles: Tiles, dst: &mut [f32], lhs: &[f32], rhs: &Bf16Rhs, m: usize) {
    let (k, n) = (rhs.k, rhs.n);
    assert_eq!(dst.len(), m * n, "bf16 matmul: dst is not {m} x {n}");
    assert_eq!(lhs.len(), m * k, "bf16 matmul: lhs is not {m} x {k}");
    assert!(available(), "bf16 matmul: this CPU has no AVX-512 BF16");
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let pairs = rhs.pairs;
        let mut a = vec![0u32; m * pairs];
        a.par_chunks_mut(pairs * 16)
            .zip(lhs.par_chunks(k * 16))
            .for_each(|(a, lhs)| {
                for (a, row) in a.chunks_exact_mut(pairs).zip(lhs.chunks_exact(k)) {
                    // SAFETY: `available` checked the CPU's features.
                    unsafe { x86::to_bf16_pairs(a, row) };
                }
            });
        if tiles == Tiles::Amx {
            let lhs = crate::amx::Lhs {
                pairs: &a,
                row_stride: pairs,
            };
            crate::amx::accumulate(dst, n, m, &[(lhs, rhs)]);
            return;
        }
        let row_tasks = m.div_ceil(TASK_ROWS);
        let panels = n.div_ceil(PANEL);
        let out = SharedOut(dst.as_mut_ptr());
        (0..row_tasks * panels).into_par_iter().for_each(|task| {
            let (rows, panel) = (task / panels * TASK_ROWS, task % panels);
            let rows = rows..(rows + TASK_ROWS).min(m);
            let cols = panel * PANEL..(panel * PANEL + PANEL).min(n);
            let panel = &rhs.lanes[panel * pairs * PANEL..(panel + 1) * pairs * PANEL];
            // SAFETY: `available` checked the CPU's features; this task writes only rows
            // `rows` of columns `cols`, which no other task writes, inside `dst`'s `m x n`.
            unsafe { x86::panel_rows(out.ptr(), n, &a, pairs, panel, rows, cols) };
        });
    }
}

/// Query rows per parallel task of [`attention`].
const ATTENTION_TASK_ROWS: usize = 4 * ROWS;

/// `softmax(q k^T + key_bias) v` of every head: `q (heads, frames, head_dim)`, `k` and
/// `v (heads, keys, head_dim)`, `key_bias (keys)` added to every row of scores; into
/// `out (frames, heads * head_dim)`. Both products in bf16 with f32 sums, the softmax in
/// f32; each task keeps a few rows' scores in cache instead of a head's whole matrix.
///
/// # Panics
///
/// If the CPU lacks AVX-512 BF16 or the lengths do not match these shapes.
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    key_bias: Option<&[f32]>,
    heads: usize,
    head_dim: usize,
    out: &mut [f32],
) {
    attention_on(Tiles::best(), q, (k, v), key_bias, (heads, head_dim), out)
}

/// [`attention`] on `tiles`.
fn attention_on(
    tiles: Tiles,
    q: &[f32],
    (k, v): (&[f32], &[f32]),
    key_bias: Option<&[f32]>,
    (heads, head_dim): (usize, usize),
    out: &mut [f32],
) {
    assert!(available(), "bf16 attention: this CPU has no AVX-512 BF16");
    let head_len = heads * head_dim;
    let (frames, keys) = (q.len() / head_len.max(1), k.len() / head_len.max(1));
    assert!(
        q.len() == frames * head_len
            && k.len() == keys * head_len
            && v.len() == k.len()
            && out.len() == q.len()
            && key_bias.is_none_or(|b| b.len() == keys),
        "bf16 attention: q, k, v, key bias and out do not fit {heads} heads of {head_dim}"
    );
    if frames == 0 || head_dim == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let packed: Vec<(Bf16Rhs, Bf16Rhs)> = (0..heads)
            .into_par_iter()
            .map(|h| {
                let (k, v) = (&k[h * keys * head_dim..], &v[h * keys * head_dim..]);
                (
                    Bf16Rhs::from_transposed(&k[..keys * head_dim], head_dim, keys),
                    Bf16Rhs::from_row_major(&v[..keys * head_dim], keys, head_dim),
                )
            })
            .collect();
        let shared = SharedOut(out.as_mut_ptr());
        if tiles == Tiles::Amx {
            let row_tasks = frames.div_ceil(AMX_ATTENTION_TASK_ROWS);
            (0..heads * row_tasks).into_par_iter().for_each(|task| {
                let (h, start) = (task / row_tasks, task % row_tasks * AMX_ATTENTION_TASK_ROWS);
                let (keys_t, values) = &packed[h];
                let q = &q[h * frames * head_dim..][..frames * head_dim];
                let rows = start..(start + AMX_ATTENTION_TASK_ROWS).min(frames);
                // SAFETY: this task writes only its rows of head `h`'s columns, inside
                // `out`'s `frames x heads * head_dim`.
                unsafe {
                    attention_rows_amx(
                        q,
                        keys_t,
                        values,
                        key_bias,
                        rows,
                        shared.ptr().add(h * head_dim),
                        head_len,
                    )
                };
            });
            return;
        }
        let row_tasks = frames.div_ceil(ATTENTION_TASK_ROWS);
        (0..heads * row_tasks).into_par_iter().for_each(|task| {
            let (h, start) = (task / row_tasks, task % row_tasks * ATTENTION_TASK_ROWS);
            let (keys_t, values) = &packed[h];
            let q = &q[h * frames * head_dim..][..frames * head_dim];
            // SAFETY: `available` checked the CPU's features; this task writes only its
            // rows of head `h`'s columns, inside `out`'s `frames x heads * head_dim`.
            unsafe {
                x86::attention_rows(
                    q,
                    keys_t,
                    values,
                    key_bias,
                    start..(start + ATTENTION_TASK_ROWS).min(frames),
                    shared.ptr().add(h * head_dim),
                    head_len,
                )
            };
        });
    }
}

/// Query rows per parallel task of [`attention`] on AMX.
const AMX_ATTENTION_TASK_ROWS: usize = 64;

/// Rows `rows` of one head of [`attention`] on AMX tiles: the scores start from the key
/// bias, the products run on [`crate::amx`], the softmax as on AVX-512.
///
/// # Safety
///
/// AMX is available; `out` holds `rows.end` rows of `values.n()` columns `out_stride`
/// apart, which no other thread writes. (AMX machines have AVX-512 BF16: the softmax
/// compiles for it.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn attention_rows_amx(
    q: &[f32],
    keys_t: &Bf16Rhs,
    values: &Bf16Rhs,
    key_bias: Option<&[f32]>,
    rows: std::ops::Range<usize>,
    out: *mut f32,
    out_stride: usize,
) {
    use crate::amx::{Lhs, accumulate_here};
    let (head_dim, keys, count) = (keys_t.k, keys_t.n, rows.len());
    let (q_pairs, key_pairs) = (keys_t.pairs, values.pairs);
    let mut queries = vec![0u32; count * q_pairs];
    for (r, pairs) in queries.chunks_exact_mut(q_pairs).enumerate() {
        // SAFETY: AMX machines have AVX-512 BF16 (`amx::available` checks it).
        unsafe { x86::to_bf16_pairs(pairs, &q[(rows.start + r) * head_dim..][..head_dim]) };
    }
    let mut scores = vec![0f32; count * keys];
    if let Some(bias) = key_bias {
        scores
            .chunks_exact_mut(keys)
            .for_each(|row| row.copy_from_slice(bias));
    }
    let queries = Lhs {
        pairs: &queries,
        row_stride: q_pairs,
    };
    accumulate_here(&mut scores, keys, count, &[(queries, keys_t)]);
    // Each row's exponentials stay unnormalized; the context is divided by their sum.
    let mut exps = vec![0f32; keys];
    let mut weights = vec![0u32; count * key_pairs];
    let mut inverse_sums = vec![0f32; count];
    for (r, row_scores) in scores.chunks_exact_mut(keys).enumerate() {
        inverse_sums[r] = 1.0 / crate::kernels::exp_minus_max(row_scores, &mut exps);
        // SAFETY: as above.
        unsafe { x86::to_bf16_pairs(&mut weights[r * key_pairs..][..key_pairs], &exps) };
    }
    let mut context = vec![0f32; count * head_dim];
    let weights = Lhs {
        pairs: &weights,
        row_stride: key_pairs,
    };
    accumulate_here(&mut context, head_dim, count, &[(weights, values)]);
    for (r, context) in context.chunks_exact(head_dim).enumerate() {
        // SAFETY: row `rows.start + r` of `out` is the caller's.
        let out = unsafe {
            std::slice::from_raw_parts_mut(out.add((rows.start + r) * out_stride), head_dim)
        };
        out.iter_mut()
            .zip(context)
            .for_each(|(o, c)| *o = c * inverse_sums[r]);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{Bf16Rhs, PAIRS_PER_PASS, PANEL, ROWS};

    /// [`Bf16Rhs::from_row_major`]: each pair of rows, 32 columns at a time, rounded and
    /// interleaved with vector instructions.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 BF16 and `b` holds `k x n` values.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn pack_row_major(b: &[f32], k: usize, n: usize) -> Bf16Rhs {
        let mut packed = Bf16Rhs::zeroed(k, n);
        let pairs = packed.pairs;
        let (mut even, mut odd) = ([0f32; PANEL], [0f32; PANEL]);
        for (panel, lanes) in packed.lanes.chunks_exact_mut(pairs * PANEL).enumerate() {
            let start = panel * PANEL;
            let width = (n - start).min(PANEL);
            for (p, lanes) in lanes
                .chunks_exact_mut(PANEL)
                .take(k.div_ceil(2))
                .enumerate()
            {
                // Columns past `n` and the row past an odd `k` are zeros.
                even.fill(0.0);
                odd.fill(0.0);
                even[..width].copy_from_slice(&b[2 * p * n + start..][..width]);
                if 2 * p + 1 < k {
                    odd[..width].copy_from_slice(&b[(2 * p + 1) * n + start..][..width]);
                }
                for half in 0..2 {
                    // SAFETY: `even`, `odd` and `lanes` hold 32 values, two halves of 16.
                    unsafe {
                        let round = |row: &[f32; PANEL]| {
                            let bf16 =
                                _mm512_cvtneps_pbh(_mm512_loadu_ps(row.as_ptr().add(16 * half)));
                            _mm512_cvtepu16_epi32(std::mem::transmute::<__m256bh, __m256i>(bf16))
                        };
                        let pair =
                            _mm512_or_si512(round(&even), _mm512_slli_epi32(round(&odd), 16));
                        _mm512_storeu_si512(lanes.as_mut_ptr().add(16 * half).cast(), pair);
                    }
                }
            }
        }
        packed
    }

    /// [`Bf16Rhs::from_transposed`]: each row of `b_t` (a column of `b`) rounded to pairs
    /// with vector instructions, then spread over its panel's lanes.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 BF16 and `b_t` holds `n x k` values.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn pack_transposed(b_t: &[f32], k: usize, n: usize) -> Bf16Rhs {
        let mut packed = Bf16Rhs::zeroed(k, n);
        let pairs = packed.pairs;
        let mut column = vec![0u32; pairs];
        for (j, row) in b_t.chunks_exact(k.max(1)).take(n).enumerate() {
            // SAFETY: the caller's CPU has AVX-512 BF16; `column` holds the row's pairs.
            unsafe { to_bf16_pairs(&mut column, row) };
            let panel = &mut packed.lanes[j / PANEL * pairs * PANEL..][..pairs * PANEL];
            for (p, &pair) in column.iter().enumerate() {
                panel[p * PANEL + j % PANEL] = pair;
            }
        }
        packed
    }

    /// Rounds `row` to bf16 into `pairs` (the pair past an odd length gets a 0).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn to_bf16_pairs(pairs: &mut [u32], row: &[f32]) {
        let mut chunks = row.chunks_exact(32);
        let mut out = pairs.chunks_exact_mut(16);
        for (chunk, out) in (&mut chunks).zip(&mut out) {
            // SAFETY: each chunk has 32 f32 and each `out` 16 u32 (32 bf16).
            unsafe {
                let low = _mm512_loadu_ps(chunk.as_ptr());
                let high = _mm512_loadu_ps(chunk.as_ptr().add(16));
                let packed = _mm512_cvtne2ps_pbh(high, low);
                _mm512_storeu_si512(
                    out.as_mut_ptr().cast(),
                    std::mem::transmute::<__m512bh, __m512i>(packed),
                );
            }
        }
        let done = row.len() / 32 * 16;
        for (p, pair) in pairs[done..].iter_mut().enumerate() {
            let at = |i: usize| row.get(2 * done + i).map_or(0, |&x| super::bf16_bits(x));
            *pair = at(2 * p) | at(2 * p + 1) << 16;
        }
    }

    /// `out[rows, cols] += a[rows] x panel`, in passes of [`PAIRS_PER_PASS`] pairs.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 BF16; `out` is a row-major matrix of `stride` columns with at
    /// least `rows.end` rows, `cols` within them and at most [`PANEL`] wide; `a` holds
    /// `pairs` lanes per row for at least `rows.end` rows; `panel` is `pairs x PANEL`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn panel_rows(
        out: *mut f32,
        stride: usize,
        a: &[u32],
        pairs: usize,
        panel: &[u32],
        rows: Range<usize>,
        cols: Range<usize>,
    ) {
        let masks = column_masks(cols.len());
        let mut start = 0;
        while start < pairs {
            let pass = start..(start + PAIRS_PER_PASS).min(pairs);
            let mut row = rows.start;
            while row < rows.end {
                let count = (rows.end - row).min(ROWS);
                // SAFETY: rows `row..row + count` and `cols` lie in `out` (the caller's
                // contract); the kernel reads `pass` pairs of `count` rows of `a` and of
                // the panel.
                unsafe {
                    tile(
                        count,
                        Tile {
                            out: out.add(row * stride + cols.start),
                            stride,
                            load: true,
                            masks,
                            a: a.as_ptr().add(row * pairs + pass.start),
                            a_stride: pairs,
                            b: panel.as_ptr().add(pass.start * PANEL),
                            pairs: pass.len(),
                        },
                    )
                };
                row += count;
            }
            start = pass.end;
        }
    }

    /// The lanes of a panel's two vectors that hold its first `width` columns.
    fn column_masks(width: usize) -> [u16; 2] {
        let mask = if width >= 32 {
            u32::MAX
        } else {
            (1u32 << width) - 1
        };
        [mask as u16, (mask >> 16) as u16]
    }

    /// One microkernel call: `out (rows, 32) += a (rows, pairs) x b (pairs, 32)` (`=`
    /// unless `load`), the columns under `masks`.
    #[derive(Clone, Copy)]
    struct Tile {
        /// The first row's first column; rows are `stride` apart.
        out: *mut f32,
        stride: usize,
        load: bool,
        masks: [u16; 2],
        /// The first row's first pair; rows are `a_stride` lanes apart.
        a: *const u32,
        a_stride: usize,
        /// `pairs x PANEL` lanes.
        b: *const u32,
        pairs: usize,
    }

    /// [`kernel`] for `rows` rows, at most [`ROWS`].
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 BF16; `tile`'s pointers hold `rows` rows of what it says.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile(rows: usize, tile: Tile) {
        // SAFETY: the caller's contract.
        unsafe {
            match rows {
                12 => kernel::<12>(tile),
                11 => kernel::<11>(tile),
                10 => kernel::<10>(tile),
                9 => kernel::<9>(tile),
                8 => kernel::<8>(tile),
                7 => kernel::<7>(tile),
                6 => kernel::<6>(tile),
                5 => kernel::<5>(tile),
                4 => kernel::<4>(tile),
                3 => kernel::<3>(tile),
                2 => kernel::<2>(tile),
                _ => kernel::<1>(tile),
            }
        }
    }

    /// `R` rows of a [`Tile`].
    ///
    /// # Safety
    ///
    /// As for [`tile`].
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn kernel<const R: usize>(tile: Tile) {
        let Tile {
            out,
            stride,
            load,
            masks,
            a,
            a_stride,
            b,
            pairs,
        } = tile;
        // SAFETY: the caller's contract bounds every read and write.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            if load {
                for (r, acc) in acc.iter_mut().enumerate() {
                    for (v, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm512_maskz_loadu_ps(masks[v], out.add(r * stride + 16 * v));
                    }
                }
            }
            for p in 0..pairs {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * PANEL).cast()));
                let b1: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(b.add(p * PANEL + 16).cast()));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let pair = _mm512_set1_epi32(*a.add(r * a_stride + p) as i32);
                    let pair: __m512bh = std::mem::transmute(pair);
                    acc[0] = _mm512_dpbf16_ps(acc[0], pair, b0);
                    acc[1] = _mm512_dpbf16_ps(acc[1], pair, b1);
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                for (v, acc) in acc.iter().enumerate() {
                    _mm512_mask_storeu_ps(out.add(r * stride + 16 * v), masks[v], *acc);
                }
            }
        }
    }

    /// `out (rows, rhs.n) = a (rows, rhs.pairs) x rhs`, for at most [`ROWS`] rows.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 BF16; `a` and `out` hold `rows` rows of `rhs.pairs` and
    /// `rhs.n` values.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn rows_times(rows: usize, a: &[u32], out: &mut [f32], rhs: &Bf16Rhs) {
        for panel in 0..rhs.n.div_ceil(PANEL) {
            // SAFETY: the caller's contract; the panel's `rhs.pairs x PANEL` lanes.
            unsafe {
                tile(
                    rows,
                    Tile {
                        out: out.as_mut_ptr().add(panel * PANEL),
                        stride: rhs.n,
                        load: false,
                        masks: column_masks((rhs.n - panel * PANEL).min(PANEL)),
                        a: a.as_ptr(),
                        a_stride: rhs.pairs,
                        b: rhs.lanes.as_ptr().add(panel * rhs.pairs * PANEL),
                        pairs: rhs.pairs,
                    },
                )
            };
        }
    }

    /// Rows `rows` of one head of [`super::attention`]: `q` holds the head's queries
    /// `(frames, head_dim)`, `keys_t` and `values` its packed `k^T` and `v`; the results go
    /// to `out` (row `i` at `out + i * out_stride`).
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 BF16; `out` holds `rows.end` rows of `values.n()` columns
    /// `out_stride` apart; `key_bias` has `keys_t.n()` values.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn attention_rows(
        q: &[f32],
        keys_t: &Bf16Rhs,
        values: &Bf16Rhs,
        key_bias: Option<&[f32]>,
        rows: Range<usize>,
        out: *mut f32,
        out_stride: usize,
    ) {
        let (head_dim, keys) = (keys_t.k, keys_t.n);
        let (q_pairs, key_pairs) = (keys_t.pairs, values.pairs);
        let mut queries = vec![0u32; ROWS * q_pairs];
        let mut scores = vec![0f32; ROWS * keys];
        let mut exps = vec![0f32; keys];
        let mut weights = vec![0u32; ROWS * key_pairs];
        let mut context = vec![0f32; ROWS * head_dim];
        let mut inverse_sums = [0f32; ROWS];
        let mut row = rows.start;
        while row < rows.end {
            let count = (rows.end - row).min(ROWS);
            for (r, pairs) in queries.chunks_exact_mut(q_pairs).take(count).enumerate() {
                // SAFETY: the caller checked the CPU's features.
                unsafe { to_bf16_pairs(pairs, &q[(row + r) * head_dim..][..head_dim]) };
            }
            // SAFETY: `count` rows of `keys` scores and of `q_pairs` query pairs.
            unsafe { rows_times(count, &queries, &mut scores, keys_t) };
            // Each row's exponentials stay unnormalized; the context is divided by their
            // sum instead of every weight.
            for r in 0..count {
                let row_scores = &mut scores[r * keys..][..keys];
                if let Some(bias) = key_bias {
                    row_scores.iter_mut().zip(bias).for_each(|(s, b)| *s += b);
                }
                inverse_sums[r] = 1.0 / crate::kernels::exp_minus_max(row_scores, &mut exps);
                // SAFETY: the caller checked the CPU's features.
                unsafe { to_bf16_pairs(&mut weights[r * key_pairs..][..key_pairs], &exps) };
            }
            // SAFETY: `count` rows of `head_dim` context values and of `key_pairs` weights.
            unsafe { rows_times(count, &weights, &mut context, values) };
            for (r, context) in context.chunks_exact(head_dim).take(count).enumerate() {
                // SAFETY: row `row + r` of `out` is in the caller's range.
                let out = unsafe {
                    std::slice::from_raw_parts_mut(out.add((row + r) * out_stride), head_dim)
                };
                out.iter_mut()
                    .zip(context)
                    .for_each(|(o, c)| *o = c * inverse_sums[r]);
            }
            row += count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(lhs: &[f32], rhs: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let round = |x: f32| half::bf16::from_f32(x).to_f32();
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = 0.5
                    + (0..k)
                        .map(|p| f64::from(round(lhs[i * k + p]) * round(rhs[p * n + j])))
                        .sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn matches_the_bf16_rounded_product_at_every_edge() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 BF16");
            return;
        }
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Row counts below, at and past a microkernel and a task; odd k and k past a
        // pass; n below, at and past a panel.
        for (m, k, n) in [
            (1, 1, 1),
            (13, 7, 33),
            (97, 300, 64),
            (200, 257, 45),
            (12, 64, 32),
        ] {
            let lhs: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let rhs: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let expected = reference(&lhs, &rhs, m, k, n);
            for tiles in every_tiles() {
                let mut out = vec![0.5; m * n];
                matmul_accumulate_on(
                    tiles,
                    &mut out,
                    &lhs,
                    &Bf16Rhs::from_row_major(&rhs, k, n),
                    m,
                );
                for (i, (got, want)) in out.iter().zip(&expected).enumerate() {
                    assert!(
                        (got - want).abs() <= 1e-4 * (k as f32).sqrt() * (1.0 + want.abs()),
                        "{tiles:?}, {m}x{k}x{n}, element {i}: {got} against {want}"
                    );
                }
            }
            let mut out = vec![0.5; m * n];
            matmul_accumulate(&mut out, &lhs, &Bf16Rhs::from_row_major(&rhs, k, n), m);
            let transposed: Vec<f32> = (0..n * k).map(|i| rhs[(i % k) * n + i / k]).collect();
            let mut out_t = vec![0.5; m * n];
            matmul_accumulate(
                &mut out_t,
                &lhs,
                &Bf16Rhs::from_transposed(&transposed, k, n),
                m,
            );
            assert_eq!(out, out_t, "{m}x{k}x{n}: packing a transpose");
            let scalar = Bf16Rhs::pack(k, n, |p, j| rhs[p * n + j]);
            assert_eq!(
                Bf16Rhs::from_row_major(&rhs, k, n).lanes,
                scalar.lanes,
                "{m}x{k}x{n}: vector packing"
            );
            assert_eq!(
                Bf16Rhs::from_transposed(&transposed, k, n).lanes,
                scalar.lanes,
                "{m}x{k}x{n}: vector packing of a transpose"
            );
        }
    }

    #[test]
    fn attention_matches_f64_softmax_attention() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 BF16");
            return;
        }
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        // A head narrower than a panel, frames past a task, an odd number of keys.
        let (heads, head_dim, frames, keys) = (3, 40, 50, 37);
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (q, k, v) = (
            draw(heads * frames * head_dim),
            draw(heads * keys * head_dim),
            draw(heads * keys * head_dim),
        );
        let mut bias = vec![0.0f32; keys];
        bias[5] = -1.0e10; // a padded key
        bias[6] = 0.7;
        for tiles in every_tiles() {
            let mut out = vec![f32::NAN; frames * heads * head_dim];
            attention_on(
                tiles,
                &q,
                (&k, &v),
                Some(&bias),
                (heads, head_dim),
                &mut out,
            );
            for h in 0..heads {
                for i in 0..frames {
                    let scores: Vec<f64> = (0..keys)
                        .map(|j| {
                            f64::from(bias[j])
                                + (0..head_dim)
                                    .map(|d| {
                                        f64::from(q[(h * frames + i) * head_dim + d])
                                            * f64::from(k[(h * keys + j) * head_dim + d])
                                    })
                                    .sum::<f64>()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let sum: f64 = weights.iter().sum();
                    for d in 0..head_dim {
                        let want: f64 = (0..keys)
                            .map(|j| weights[j] / sum * f64::from(v[(h * keys + j) * head_dim + d]))
                            .sum();
                        let got = f64::from(out[i * heads * head_dim + h * head_dim + d]);
                        assert!(
                            (got - want).abs() < 1e-2,
                            "{tiles:?}, head {h}, frame {i}, dim {d}: {got} against {want}"
                        );
                    }
                }
            }
        }
    }

    /// The instructions this machine can run the products on.
    fn every_tiles() -> Vec<Tiles> {
        match crate::amx::available() {
            true => vec![Tiles::Amx, Tiles::Avx512],
            false => vec![Tiles::Avx512],
        }
    }
}
