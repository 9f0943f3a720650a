//! bf16 matrix products on Intel AMX tiles (Sapphire Rapids and later): `tdpbf16ps`
//! multiplies a 16 x 32 bf16 tile by a 32 x 16 one into 16 x 16 f32 sums, 8192
//! multiply-adds an instruction, about 15 times an AVX-512 core's f32 FMAs. Used where
//! [`crate::matmul_bf16`] would run, and, as the sum of three bf16 products of split
//! operands, for S3Gen's f32 products when its precision is `bf16` ([`SplitRhs`]).
//!
//! The right operand is a [`Bf16Rhs`]: its panels of 32 columns, `k / 2` rows of bf16
//! pairs, are two tiles side by side per 16 pairs (rows 128 bytes apart), the layout AMX
//! reads. The left operand is rows of bf16 pairs (`(a[i][2p], a[i][2p + 1])` in lane
//! `p`), read in place at any row stride, overlapping or not.
//!
//! Linux hands out tile registers only to a process that asks (`arch_prctl`); the
//! instructions are written in `asm!`, since Rust's AMX intrinsics are not stable.

use rayon::prelude::*;

use crate::matmul_bf16::{Bf16Rhs, PANEL};

/// Rows of a block: two tiles of 16.
const BLOCK_ROWS: usize = 32;
/// bf16 pairs (32 values) in a tile's row.
const TILE_PAIRS: usize = 16;
/// Rows per parallel task.
const TASK_ROWS: usize = 4 * BLOCK_ROWS;

/// Whether this CPU has AMX with bf16 and the operating system lets this process use it
/// (checked once, at run time).
pub fn available() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| crate::matmul_bf16::available() && x86::enable())
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        false
    }
}

/// The left operand of a product: row `i` is the bf16 pairs from `pairs[i * row_stride]`.
/// Rows may overlap, as a convolution's taps do in its input. Lanes a row reads past the
/// product's depth (up to a whole tile) meet zero rows of the right operand, so they must
/// hold finite values.
#[derive(Debug, Clone, Copy)]
pub struct Lhs<'a> {
    pub pairs: &'a [u32],
    pub row_stride: usize,
}

/// A right operand `b (k, n)` split into bf16 `high = bf16(b)` and `low = bf16(b - high)`:
/// `a b` is about `a_high high + a_high low + a_low high`, within about `2^-16` of the
/// f32 product's size instead of bf16's `2^-8`.
#[derive(Debug, Clone)]
pub struct SplitRhs {
    pub high: Bf16Rhs,
    pub low: Bf16Rhs,
}

impl SplitRhs {
    /// Splits a row-major `(k, n)` matrix.
    pub fn from_row_major(b: &[f32], k: usize, n: usize) -> Self {
        let high = Bf16Rhs::from_row_major(b, k, n);
        let low: Vec<f32> = b.iter().map(|&x| x - round(x)).collect();
        Self {
            high,
            low: Bf16Rhs::from_row_major(&low, k, n),
        }
    }

    /// The three terms of `lhs x self` for [`accumulate`], given `lhs` split into
    /// `high` and `low` pairs ([`split_pairs`]).
    pub fn terms<'a>(&'a self, high: Lhs<'a>, low: Lhs<'a>) -> [(Lhs<'a>, &'a Bf16Rhs); 3] {
        [(high, &self.high), (high, &self.low), (low, &self.high)]
    }
}

fn round(x: f32) -> f32 {
    half::bf16::from_f32(x).to_f32()
}

/// `x` split into bf16 pairs `high` and `low` (see [`SplitRhs`]), with `tail` zero pairs
/// after each, so that products may read a tile past the end.
pub fn split_pairs(x: &[f32], tail: usize) -> (Vec<u32>, Vec<u32>) {
    let pairs = x.len().div_ceil(2);
    let (mut high, mut low) = (vec![0u32; pairs + tail], vec![0u32; pairs + tail]);
    const CHUNK: usize = 4096;
    high[..pairs]
        .par_chunks_mut(CHUNK)
        .zip(low[..pairs].par_chunks_mut(CHUNK))
        .zip(x.par_chunks(2 * CHUNK))
        .for_each(|((high, low), x)| split_into(high, low, x));
    (high, low)
}

/// [`split_pairs`] of `x` into `high` and `low`, which hold `x.len() / 2` pairs, rounded
/// up.
pub fn split_into(high: &mut [u32], low: &mut [u32], x: &[f32]) {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if available() {
        // SAFETY: AMX machines have AVX-512 BF16 (`available` checks it).
        unsafe { x86::split(high, low, x) };
        return;
    }
    split_scalar(high, low, x);
}

/// [`split_pairs`] of `x` into `high` and `low`, one pair at a time.
fn split_scalar(high: &mut [u32], low: &mut [u32], x: &[f32]) {
    for ((h, l), x) in high.iter_mut().zip(low.iter_mut()).zip(x.chunks(2)) {
        let (x0, x1) = (x[0], x.get(1).copied().unwrap_or(0.0));
        let bits = |v: f32| u32::from(half::bf16::from_f32(v).to_bits());
        *h = bits(x0) | bits(x1) << 16;
        *l = bits(x0 - round(x0)) | bits(x1 - round(x1)) << 16;
    }
}

/// A raw pointer that parallel tasks share; each writes only its own rows.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: the tasks given one write disjoint rows of the output.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// `out (m, n) += sum over terms of lhs (m, k) x rhs (k, n)`, row `i` of `out` from
/// `out[i * out_stride]`, on rayon's threads; every `rhs` has the same shape.
///
/// # Panics
///
/// If AMX is not [`available`], the shapes differ, or a matrix does not fit its slice.
pub fn accumulate(out: &mut [f32], out_stride: usize, m: usize, terms: &[(Lhs, &Bf16Rhs)]) {
    if !check(out, out_stride, m, terms) {
        return;
    }
    let shared = SharedOut(out.as_mut_ptr());
    let out_len = out.len();
    (0..m.div_ceil(TASK_ROWS)).into_par_iter().for_each(|task| {
        let rows = task * TASK_ROWS..((task + 1) * TASK_ROWS).min(m);
        // SAFETY: `check` checked the CPU, the system and the operands; this task writes
        // only rows `rows` of `out`, which no other task writes.
        unsafe { rows_product(shared.ptr(), out_len, out_stride, rows, terms) };
    });
}

/// [`accumulate`] on the calling thread only, for callers that already run one product
/// per rayon task.
pub fn accumulate_here(out: &mut [f32], out_stride: usize, m: usize, terms: &[(Lhs, &Bf16Rhs)]) {
    if check(out, out_stride, m, terms) {
        // SAFETY: `check` checked the CPU, the system and the operands.
        unsafe { rows_product(out.as_mut_ptr(), out.len(), out_stride, 0..m, terms) };
    }
}

/// Asserts that a product can run; false when it is empty.
fn check(out: &[f32], out_stride: usize, m: usize, terms: &[(Lhs, &Bf16Rhs)]) -> bool {
    assert!(available(), "AMX product: this CPU or system has no AMX");
    let Some(&(_, first)) = terms.first() else {
        return false;
    };
    let (k, n) = (first.k(), first.n());
    if m == 0 || n == 0 || k == 0 {
        return false;
    }
    assert!(
        terms
            .iter()
            .all(|(lhs, rhs)| rhs.k() == k && rhs.n() == n && lhs_holds(lhs, m, k)),
        "AMX product: the terms' shapes differ or a left operand is short"
    );
    assert!(
        out_stride >= n && out.len() >= (m - 1) * out_stride + n,
        "AMX product: out does not hold {m} rows of {n}"
    );
    true
}

/// Rows `rows` of a checked product.
///
/// # Safety
///
/// As for `x86::rows`.
unsafe fn rows_product(
    out: *mut f32,
    out_len: usize,
    out_stride: usize,
    rows: std::ops::Range<usize>,
    terms: &[(Lhs, &Bf16Rhs)],
) {
    let n = terms[0].1.n();
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    // SAFETY: the caller's contract.
    unsafe {
        x86::rows(out, out_len, out_stride, n, rows, terms)
    };
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    let _ = (out, out_len, out_stride, n, rows);
}

/// Whether `lhs` holds the `k / 2` pairs of rows `0..m` (the tile-sized reads past
/// them are bounded separately).
fn lhs_holds(lhs: &Lhs, m: usize, k: usize) -> bool {
    lhs.pairs.len() >= (m - 1) * lhs.row_stride + k.div_ceil(2)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86 {
    use std::arch::asm;
    use std::ops::Range;

    use std::arch::x86_64::*;

    use super::{BLOCK_ROWS, Bf16Rhs, Lhs, PANEL, TILE_PAIRS};

    /// [`super::split_pairs`] of `x` into `high` and `low`, 32 values at a time.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512 BF16; `high` and `low` hold `x.len() / 2` pairs, rounded up.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn split(high: &mut [u32], low: &mut [u32], x: &[f32]) {
        let whole = x.len() / 32;
        for i in 0..whole {
            // SAFETY: 32 values of `x` and 16 pairs of `high` and `low` from `32 i`.
            unsafe {
                let x0 = _mm512_loadu_ps(x.as_ptr().add(32 * i));
                let x1 = _mm512_loadu_ps(x.as_ptr().add(32 * i + 16));
                let rounded: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(x1, x0));
                // The rounded values back in f32: each bf16 in a lane's upper half.
                let widen = |half: __m256i| {
                    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16))
                };
                let r0 = _mm512_sub_ps(x0, widen(_mm512_castsi512_si256(rounded)));
                let r1 = _mm512_sub_ps(x1, widen(_mm512_extracti64x4_epi64(rounded, 1)));
                let rest: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(r1, r0));
                _mm512_storeu_si512(high.as_mut_ptr().add(16 * i).cast(), rounded);
                _mm512_storeu_si512(low.as_mut_ptr().add(16 * i).cast(), rest);
            }
        }
        super::split_scalar(
            &mut high[16 * whole..],
            &mut low[16 * whole..],
            &x[32 * whole..],
        );
    }

    /// `arch_prctl` codes (Linux's `asm/prctl.h`) and the tile data state component.
    const SYS_ARCH_PRCTL: usize = 158;
    const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
    const XFEATURE_XTILEDATA: usize = 18;

    /// Whether CPUID lists AMX-TILE and AMX-BF16 and Linux grants this process the tile
    /// registers.
    pub(super) fn enable() -> bool {
        // CPUID leaf 7 exists on every x86-64 CPU with AVX-512 (checked first).
        let leaf = std::arch::x86_64::__cpuid_count(7, 0);
        let (amx_bf16, amx_tile) = (leaf.edx & 1 << 22 != 0, leaf.edx & 1 << 24 != 0);
        if !(amx_bf16 && amx_tile) {
            return false;
        }
        let status: isize;
        // SAFETY: the `arch_prctl` system call only changes which state components this
        // process may use; `syscall` clobbers rcx and r11.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL as isize => status,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        status == 0
    }

    /// Palette 1 with all eight tiles 16 rows of 64 bytes: tmm0 to tmm3 the 2 x 2 sums of
    /// a block, tmm4 and tmm5 its two row tiles of the left operand, tmm6 and tmm7 the
    /// right operand's two column tiles.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    /// Rows `rows` of [`super::accumulate`]'s output, in blocks of 32 rows by a panel.
    ///
    /// # Safety
    ///
    /// AMX is available; `out` holds `out_len` values, rows `rows` of `n` from
    /// `i * out_stride`, which no other thread writes; every term's `lhs` holds rows
    /// `rows` and every `rhs` is `(k, n)`.
    pub(super) unsafe fn rows(
        out: *mut f32,
        out_len: usize,
        out_stride: usize,
        n: usize,
        rows: Range<usize>,
        terms: &[(Lhs, &Bf16Rhs)],
    ) {
        let config = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            bytes_per_row: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
            rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        // SAFETY: the configuration is valid for palette 1.
        unsafe { asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly)) };
        let pairs = terms[0].1.pairs();
        let panels = n.div_ceil(PANEL);
        // Each panel's right operands, one per term.
        let rhs: Vec<Vec<*const u32>> = (0..panels)
            .map(|panel| {
                terms
                    .iter()
                    .map(|(_, rhs)| rhs.panel(panel).as_ptr())
                    .collect()
            })
            .collect();
        // Copies of the left operand's rows and of the sums for blocks at the edges.
        let mut lhs_copy = vec![Vec::new(); terms.len()];
        let mut out_copy = [0f32; BLOCK_ROWS * PANEL];
        let mut block = rows.start;
        while block < rows.end {
            let count = (rows.end - block).min(BLOCK_ROWS);
            // Each term's rows of this block, in place where a whole tile's reads fit.
            let lhs: Vec<(*const u32, usize)> = terms
                .iter()
                .zip(&mut lhs_copy)
                .map(|((lhs, _), copy)| {
                    let reach = (block + BLOCK_ROWS - 1) * lhs.row_stride + pairs;
                    if count == BLOCK_ROWS && reach <= lhs.pairs.len() {
                        (lhs.pairs[block * lhs.row_stride..].as_ptr(), lhs.row_stride)
                    } else {
                        copy.clear();
                        copy.resize(BLOCK_ROWS * pairs, 0);
                        for r in 0..count {
                            let from = &lhs.pairs[(block + r) * lhs.row_stride..];
                            let len = from.len().min(pairs);
                            copy[r * pairs..][..len].copy_from_slice(&from[..len]);
                        }
                        (copy.as_ptr(), pairs)
                    }
                })
                .collect();
            for (panel, rhs) in rhs.iter().enumerate() {
                let cols = panel * PANEL..(panel * PANEL + PANEL).min(n);
                let whole = count == BLOCK_ROWS
                    && cols.len() == PANEL
                    && (block + BLOCK_ROWS - 1) * out_stride + cols.end <= out_len;
                let (sums, sums_stride) = if whole {
                    // SAFETY: the block's 32 rows of 32 columns lie in `out`.
                    (
                        unsafe { out.add(block * out_stride + cols.start) },
                        out_stride,
                    )
                } else {
                    out_copy.fill(0.0);
                    for r in 0..count {
                        for (c, col) in cols.clone().enumerate() {
                            // SAFETY: row `block + r < m` and `col < n` lie in `out`.
                            out_copy[r * PANEL + c] =
                                unsafe { *out.add((block + r) * out_stride + col) };
                        }
                    }
                    (out_copy.as_mut_ptr(), PANEL)
                };
                // SAFETY: `sums` holds 32 rows of 32 values `sums_stride` apart; each
                // term's left rows hold 32 rows of `pairs` lanes and its panel `pairs`
                // rows of 32 lanes; `pairs` is a multiple of 16.
                unsafe { block_product(sums, sums_stride, &lhs, rhs, pairs) };
                if !whole {
                    for r in 0..count {
                        for (c, col) in cols.clone().enumerate() {
                            // SAFETY: as for the copy in.
                            unsafe {
                                *out.add((block + r) * out_stride + col) = out_copy[r * PANEL + c]
                            };
                        }
                    }
                }
            }
            block += count;
        }
        // SAFETY: ends this thread's use of the tiles.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }

    /// `sums (32, 32) += sum over terms of lhs (32, 2 pairs) x rhs (2 pairs, 32)`.
    ///
    /// # Safety
    ///
    /// The tiles are configured ([`rows`]); `sums` holds 32 rows of 32 f32 `sums_stride`
    /// apart; each `lhs` 32 rows of `pairs` lanes at its stride; each `rhs` `pairs` rows
    /// of [`PANEL`] lanes; `pairs` is a multiple of 16.
    unsafe fn block_product(
        sums: *mut f32,
        sums_stride: usize,
        lhs: &[(*const u32, usize)],
        rhs: &[*const u32],
        pairs: usize,
    ) {
        let stride = 4 * sums_stride;
        // SAFETY: the caller's contract bounds every tile's 16 rows of 64 bytes.
        unsafe {
            let lower = sums.add(16 * sums_stride);
            asm!(
                "tileloadd tmm0, [{a} + {s}*1]",
                "tileloadd tmm1, [{a} + {s}*1 + 64]",
                "tileloadd tmm2, [{b} + {s}*1]",
                "tileloadd tmm3, [{b} + {s}*1 + 64]",
                a = in(reg) sums,
                b = in(reg) lower,
                s = in(reg) stride,
                options(nostack, readonly),
            );
            for (&(a, a_stride), &b) in lhs.iter().zip(rhs) {
                let a_bytes = 4 * a_stride;
                let a_lower = a.add(16 * a_stride);
                for step in (0..pairs).step_by(TILE_PAIRS) {
                    asm!(
                        "tileloadd tmm4, [{a} + {sa}*1]",
                        "tileloadd tmm5, [{c} + {sa}*1]",
                        "tileloadd tmm6, [{b} + {sb}*1]",
                        "tileloadd tmm7, [{b} + {sb}*1 + 64]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a = in(reg) a.add(step),
                        c = in(reg) a_lower.add(step),
                        sa = in(reg) a_bytes,
                        b = in(reg) b.add(step * PANEL),
                        sb = in(reg) 4 * PANEL,
                        options(nostack, readonly),
                    );
                }
            }
            asm!(
                "tilestored [{a} + {s}*1], tmm0",
                "tilestored [{a} + {s}*1 + 64], tmm1",
                "tilestored [{b} + {s}*1], tmm2",
                "tilestored [{b} + {s}*1 + 64], tmm3",
                a = in(reg) sums,
                b = in(reg) lower,
                s = in(reg) stride,
                options(nostack),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn draw(rng: &mut rand::rngs::StdRng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// `out (m, n)` at `out_stride` plus the f64 product of `lhs` rows `row_stride` apart
    /// and a row-major `rhs (k, n)`, each operand mapped by `round` first.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        out: &[f32],
        out_stride: usize,
        lhs: &[f32],
        row_stride: usize,
        rhs: &[f32],
        (m, k, n): (usize, usize, usize),
        round: impl Fn(f32) -> f32,
    ) -> Vec<f64> {
        let mut sums = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                sums[i * n + j] = f64::from(out[i * out_stride + j])
                    + (0..k)
                        .map(|p| {
                            f64::from(round(lhs[i * row_stride + p]))
                                * f64::from(round(rhs[p * n + j]))
                        })
                        .sum::<f64>();
            }
        }
        sums
    }

    #[test]
    fn bf16_products_match_the_rounded_product_at_every_edge() {
        if !available() {
            eprintln!("skipped: this CPU or system has no AMX");
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        // Rows below, at and past a block and a task; depths below, at and past a tile,
        // odd; columns below, at and past a panel; output rows wider than `n`.
        for (m, k, n, out_stride) in [
            (1usize, 1usize, 1usize, 1usize),
            (31, 17, 33, 40),
            (32, 32, 32, 32),
            (161, 300, 64, 64),
            (200, 1000, 45, 50),
        ] {
            let pairs = k.div_ceil(32) * 16;
            let lhs = draw(&mut rng, m * k);
            let rhs = draw(&mut rng, k * n);
            let mut a = vec![0u32; m * pairs];
            for (row, lhs) in a.chunks_exact_mut(pairs).zip(lhs.chunks_exact(k)) {
                for (p, pair) in row.iter_mut().enumerate().take(k.div_ceil(2)) {
                    let bits = |i: usize| {
                        lhs.get(i)
                            .map_or(0, |&x| u32::from(half::bf16::from_f32(x).to_bits()))
                    };
                    *pair = bits(2 * p) | bits(2 * p + 1) << 16;
                }
            }
            let mut out = draw(&mut rng, (m - 1) * out_stride + n);
            let want = reference(&out, out_stride, &lhs, k, &rhs, (m, k, n), round);
            let lhs_pairs = Lhs {
                pairs: &a,
                row_stride: pairs,
            };
            accumulate(
                &mut out,
                out_stride,
                m,
                &[(lhs_pairs, &Bf16Rhs::from_row_major(&rhs, k, n))],
            );
            for i in 0..m {
                for j in 0..n {
                    let (got, want) = (out[i * out_stride + j], want[i * n + j]);
                    assert!(
                        (f64::from(got) - want).abs()
                            <= 1e-5 * (k as f64).sqrt() * (1.0 + want.abs()),
                        "{m}x{k}x{n}, ({i}, {j}): {got} against {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn vector_split_gives_the_scalar_split_bits() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        // Past a chunk, odd, with tiny, huge and exactly representable values.
        let mut x: Vec<f32> = draw(&mut rng, 2 * 4096 + 77)
            .iter()
            .enumerate()
            .map(|(i, x)| x * 10f32.powi(i as i32 % 9 - 4))
            .collect();
        x[3] = 1.0;
        x[4] = -0.0;
        let (high, low) = split_pairs(&x, 3);
        let (mut want_high, mut want_low) = (vec![0u32; high.len()], vec![0u32; low.len()]);
        split_scalar(&mut want_high, &mut want_low, &x);
        assert_eq!(high, want_high);
        assert_eq!(low, want_low);
    }

    #[test]
    fn split_products_of_overlapping_rows_are_within_f32_reach() {
        if !available() {
            eprintln!("skipped: this CPU or system has no AMX");
            return;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        // A convolution's rows: 3 taps of 64 channels, consecutive rows 64 values apart.
        let (m, channels, taps, n) = (100, 64, 3, 70);
        let k = taps * channels;
        let input = draw(&mut rng, (m + taps - 1) * channels);
        let rhs: Vec<f32> = draw(&mut rng, k * n).iter().map(|x| x * 1e-3).collect();
        let mut out = vec![0.25f32; m * n];
        let want = reference(&out, n, &input, channels, &rhs, (m, k, n), |x| x);
        let (high, low) = split_pairs(&input, 16);
        let split = SplitRhs::from_row_major(&rhs, k, n);
        let (high, low) = (
            Lhs {
                pairs: &high,
                row_stride: channels / 2,
            },
            Lhs {
                pairs: &low,
                row_stride: channels / 2,
            },
        );
        accumulate(&mut out, n, m, &split.terms(high, low));
        let worst = out
            .iter()
            .zip(&want)
            .map(|(&got, want)| (f64::from(got) - want).abs())
            .fold(0.0, f64::max);
        // bf16 alone is about 1e-3 off here; f32 about 1e-7.
        assert!(worst < 2e-6, "split product off by {worst}");
    }
}
