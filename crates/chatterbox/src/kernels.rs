//! Single-pass f32 kernels with an `exp` the compiler can vectorize: softmax over the
//! last dimension, the erf and tanh GELUs and Mish (candle's call the scalar libm `expf` /
//! `erff` / `tanhf` per element, or chain several tensor ops, which dominated the
//! attention, feed-forward and conv blocks of the 1000-frame CFM decoder and was a tenth
//! of T3's prefill). On other devices (GPUs) the same functions are candle's ops, which
//! these match (tests below).

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Storage, StorageRef, Tensor};
use rayon::prelude::*;

/// Rows per parallel work unit.
const ROWS_PER_UNIT: usize = 16;
/// Independent partial sums and maxima per row, so the reductions vectorize.
const LANES: usize = 8;
/// Below this `exp(x)` is under `f32::MIN_POSITIVE` and is returned as 0 (as for `-inf`).
const EXP_MIN_INPUT: f32 = -87.33;
/// `exp` of anything above is `+inf` in f32.
const EXP_MAX_INPUT: f32 = 88.72;

/// The f32 values of a contiguous CPU tensor, read in place.
pub struct CpuValues<'a> {
    storage: StorageRef<'a>,
    range: std::ops::Range<usize>,
}

impl<'a> CpuValues<'a> {
    pub fn of(tensor: &'a Tensor) -> candle_core::Result<Self> {
        let (storage, layout) = tensor.storage_and_layout();
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("expected a contiguous tensor");
        };
        Ok(Self {
            storage,
            range: start..end,
        })
    }

    pub fn get(&self) -> candle_core::Result<&[f32]> {
        match &*self.storage {
            Storage::Cpu(cpu) => Ok(&cpu.as_slice::<f32>()?[self.range.clone()]),
            _ => candle_core::bail!("expected a CPU tensor"),
        }
    }
}

/// The elements of a contiguous f32 CPU tensor, as a custom op receives it; errors name `op`.
pub fn contiguous_f32<'a>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: only f32 tensors are supported");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: the input must be contiguous");
    };
    Ok(&data[start..end])
}

/// `exp(x)` for f32 to about 1 ulp (Cephes `expf`): `x = n ln2 + r`, `|r| <= ln2 / 2`,
/// `exp(x) = 2^n * p(r)` with a degree-6 polynomial, `2^n` built in the exponent bits.
/// Branch-free, so loops over slices of it vectorize.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // Adding then subtracting 1.5 * 2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let clamped = x.clamp(EXP_MIN_INPUT, EXP_MAX_INPUT);
    let shifted = clamped * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let p = p * r * r + r + 1.0;
    // The low mantissa bits of `shifted` hold n + 2^22; make them the exponent of 2^n.
    let exponent = (shifted.to_bits() as i32 - 0x4B40_0000 + 127) << 23;
    let value = p * f32::from_bits(exponent as u32);
    if x < EXP_MIN_INPUT { 0.0 } else { value }
}

/// Runs `work` compiled for AVX2 and FMA where the CPU has them (checked at run time, so
/// the binary still runs on plain x86-64): loops over [`exp`] and [`sin`] then take 8
/// values an instruction instead of SSE2's 4. Rust never fuses a multiply and an add by
/// itself, so the results are the same bits either way. `work` must be an
/// `#[inline(always)]` closure: the compiler would otherwise keep it apart, in SSE2.
#[inline(always)]
pub fn vectorized<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if crate::matvec::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { with_avx2_fma(work) };
    }
    work()
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2_fma<R>(work: impl FnOnce() -> R) -> R {
    work()
}

/// Largest `|x|` for which [`sin`] is accurate (Cephes' range reduction limit).
pub const SIN_MAX_INPUT: f32 = 8192.0;

/// `sin(x)` for f32 to about 1e-7 absolute error for `|x| <= SIN_MAX_INPUT` (Cephes
/// `sinf`: reduction by pi/4 in three parts, then the sine or cosine polynomial of the
/// octant). Branch-free, so loops over slices of it vectorize; larger inputs must be
/// recomputed with `f32::sin`.
#[inline(always)]
pub fn sin(x: f32) -> f32 {
    const FOUR_OVER_PI: f32 = std::f32::consts::FRAC_2_PI * 2.0;
    const PI_4_A: f32 = 0.785_156_25;
    const PI_4_B: f32 = 2.418_756_5e-4;
    const PI_4_C: f32 = 3.774_895e-8;
    let ax = x.abs();
    // The octant, rounded up to even: `ax = octant * pi/4 + z`, `|z| <= pi/4`.
    let octant = ((ax * FOUR_OVER_PI) as i32 + 1) & !1;
    let y = octant as f32;
    let z = ((ax - y * PI_4_A) - y * PI_4_B) - y * PI_4_C;
    let zz = z * z;
    let cos_z =
        ((2.443_315_7e-5 * zz - 1.388_731_6e-3) * zz + 4.166_664_6e-2) * zz * zz - 0.5 * zz + 1.0;
    let sin_z = ((-1.951_529_6e-4 * zz + 8.332_161e-3) * zz - 1.666_665_5e-1) * zz * z + z;
    let octant = octant & 7;
    let value = if octant == 2 || octant == 6 {
        cos_z
    } else {
        sin_z
    };
    // Octants 4 to 7 are the negated 0 to 3; a negative x negates again.
    let negate = (octant > 3) != (x < 0.0);
    if negate { -value } else { value }
}

/// `dst = softmax(src)`. Inline, so that it vectorizes for the instruction set of its
/// caller.
#[inline(always)]
pub fn softmax_row(src: &[f32], dst: &mut [f32]) {
    let sum = exp_minus_max(src, dst);
    for d in dst.iter_mut() {
        *d /= sum;
    }
}

/// `dst = exp(src - max(src))`, returning the sum of `dst`: a softmax before its division.
/// Inline, so that it vectorizes for the instruction set of its caller.
#[inline(always)]
pub fn exp_minus_max(src: &[f32], dst: &mut [f32]) -> f32 {
    let mut maxima = [f32::NEG_INFINITY; LANES];
    let mut chunks = src.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, &v) in maxima.iter_mut().zip(chunk) {
            *m = if v > *m { v } else { *m };
        }
    }
    let max = chunks
        .remainder()
        .iter()
        .chain(&maxima)
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = exp(s - max);
    }
    let mut sums = [0f32; LANES];
    let mut chunks = dst.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (sum, &v) in sums.iter_mut().zip(chunk) {
            *sum += v;
        }
    }
    sums.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

struct SoftmaxLastDim;

impl CustomOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "softmax-last-dim-f32"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous_f32("softmax", storage, layout)?;
        let width = *layout.shape().dims().last().unwrap_or(&1);
        let mut dst = vec![0f32; src.len()];
        if width > 0 {
            let unit = width * ROWS_PER_UNIT;
            dst.par_chunks_mut(unit)
                .zip(src.par_chunks(unit))
                .for_each(|(dst, src)| {
                    vectorized(
                        #[inline(always)]
                        || {
                            for (dst, src) in
                                dst.chunks_exact_mut(width).zip(src.chunks_exact(width))
                            {
                                softmax_row(src, dst);
                            }
                        },
                    )
                });
        }
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// Softmax over the last dimension of an f32 tensor.
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::ops::softmax_last_dim(x);
    }
    x.contiguous()?.apply_op1_no_bwd(&SoftmaxLastDim)
}

/// Elements per parallel work unit of the elementwise kernels.
const ELEMENTWISE_UNIT: usize = 16 * 1024;

/// `erf(x)` to about 1.5e-7 absolute error (Abramowitz and Stegun 7.1.26), branch-free.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_72) * t
        + 0.254_829_6)
        * t;
    let erf_abs = 1.0 - poly * exp(-z * z);
    if x < 0.0 { -erf_abs } else { erf_abs }
}

/// An f32 function applied to every element, in parallel chunks.
struct Elementwise<F> {
    name: &'static str,
    f: F,
}

impl<F: Fn(f32) -> f32 + Sync> CustomOp1 for Elementwise<F> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(self.name, storage, layout)?;
        let mut dst = vec![0f32; src.len()];
        dst.par_chunks_mut(ELEMENTWISE_UNIT)
            .zip(src.par_chunks(ELEMENTWISE_UNIT))
            .for_each(|(dst, src)| {
                vectorized(
                    #[inline(always)]
                    || {
                        for (d, &x) in dst.iter_mut().zip(src) {
                            *d = (self.f)(x);
                        }
                    },
                )
            });
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// The exact (erf) GELU `x (1 + erf(x / sqrt 2)) / 2` of an f32 tensor, to about 1e-7
/// times `|x|`.
pub fn gelu_erf(x: &Tensor) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return x.gelu_erf();
    }
    x.contiguous()?.apply_op1_no_bwd(&Elementwise {
        name: "gelu-erf-f32",
        f: |x: f32| 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)),
    })
}

/// GPT-2's `gelu_new`, `x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2` (candle's
/// `gelu`) of an f32 tensor, as `x / (1 + e^(-2u))`, the same function in closed form.
pub fn gelu_tanh(x: &Tensor) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return x.gelu();
    }
    x.contiguous()?.apply_op1_no_bwd(&Elementwise {
        name: "gelu-tanh-f32",
        f: |x: f32| {
            const SQRT_2_OVER_PI: f32 = 0.797_884_6;
            let u = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
            x / (1.0 + exp(-2.0 * u))
        },
    })
}

/// Above this, `mish(x) = x` in f32 (`tanh(softplus(x))` rounds to 1).
const MISH_IDENTITY_ABOVE: f32 = 20.0;

/// Mish `x tanh(softplus(x))` of an f32 tensor, as `x n / (n + 2)` with
/// `n = e^x (e^x + 2)` (`tanh(ln(1 + e^x))` in closed form).
pub fn mish(x: &Tensor) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::ops::mish(x);
    }
    x.contiguous()?.apply_op1_no_bwd(&Elementwise {
        name: "mish-f32",
        f: |x: f32| {
            let e = exp(x.min(MISH_IDENTITY_ABOVE));
            let n = e * (e + 2.0);
            if x > MISH_IDENTITY_ABOVE {
                x
            } else {
                x * n / (n + 2.0)
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        for i in -99_000..=100_000 {
            let x = i as f32 * 8.8e-4;
            let (ours, std) = (exp(x), x.exp());
            assert!(
                (ours - std).abs() <= 4.0 * f32::EPSILON * std,
                "exp({x}) = {ours}, std {std}"
            );
        }
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-1e10), 0.0);
        assert!((-88.0f32).exp() < f32::MIN_POSITIVE && exp(-88.0) == 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn sin_matches_std() {
        for i in -2_000_000..=2_000_000 {
            let x = i as f32 * (SIN_MAX_INPUT / 2_000_000.0);
            let (ours, std) = (sin(x), x.sin());
            assert!((ours - std).abs() <= 3e-7, "sin({x}) = {ours}, std {std}");
        }
    }

    #[test]
    fn gelus_match_candle() -> candle_core::Result<()> {
        let x = (Tensor::arange(-12_000f32, 12_000f32, &Device::Cpu)? / 1000.0)?;
        for (name, ours, candle) in [
            ("erf", gelu_erf(&x)?, x.gelu_erf()?),
            ("tanh", gelu_tanh(&x)?, x.gelu()?),
        ] {
            let diff = (ours - candle)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 2e-6, "{name}: max difference {diff}");
        }
        Ok(())
    }

    #[test]
    fn mish_matches_candle() -> candle_core::Result<()> {
        let x = (Tensor::arange(-30_000f32, 30_000f32, &Device::Cpu)? / 1000.0)?;
        let diff = (mish(&x)? - candle_nn::ops::mish(&x)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 2e-6, "max difference {diff}");
        Ok(())
    }

    #[test]
    fn softmax_matches_candle_and_zeroes_masked_keys() -> candle_core::Result<()> {
        let bias: Vec<f32> = (0..50)
            .map(|i| match i {
                5..10 => f32::NEG_INFINITY,
                10..12 => -1e10,
                _ => 0.0,
            })
            .collect();
        let x = (Tensor::randn(0f32, 3.0, (2, 3, 50), &Device::Cpu)?
            .broadcast_add(&Tensor::new(bias, &Device::Cpu)?)?
            + 20.0)?;
        let ours = softmax_last_dim(&x)?;
        let candle = candle_nn::ops::softmax_last_dim(&x)?;
        let diff = (&ours - candle)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "max difference {diff}");
        let masked = ours.narrow(2, 5, 7)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(masked, 0.0);
        Ok(())
    }
}
