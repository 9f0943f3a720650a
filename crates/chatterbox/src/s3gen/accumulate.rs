//! Matmuls that accumulate into their output, which candle does not offer: a linear layer
//! that starts from its bias, and the per-tap sums of HiFT's convolutions, without a
//! separate pass over the output for each addition; in f32, or in bf16 for the products
//! that `s3gen_precision` allows.

use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Module, Shape, Tensor};
use candle_nn::VarBuilder;

use super::precision::S3GenPrecision;
use crate::amx::{self, Lhs, SplitRhs};
use crate::kernels::contiguous_f32;
use crate::matmul_bf16::Bf16Rhs;

/// `dst (m, n) += lhs (m, k) x rhs (k, n)`, all row-major f32, on rayon's threads.
///
/// # Panics
///
/// If a slice's length does not match its shape.
pub fn matmul_accumulate(dst: &mut [f32], lhs: &[f32], rhs: &[f32], m: usize, k: usize, n: usize) {
    let threads = gemm::Parallelism::Rayon(rayon::current_num_threads());
    gemm_accumulate(dst, lhs, rhs, (m, k, n), threads);
}

/// [`matmul_accumulate`] on the calling thread only, for callers that already run one
/// product per rayon task.
pub fn matmul_accumulate_here(
    dst: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    m: usize,
    k: usize,
    n: usize,
) {
    gemm_accumulate(dst, lhs, rhs, (m, k, n), gemm::Parallelism::None);
}

fn gemm_accumulate(
    dst: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    (m, k, n): (usize, usize, usize),
    parallelism: gemm::Parallelism,
) {
    assert_eq!(dst.len(), m * n, "matmul_accumulate: dst is not {m} x {n}");
    assert_eq!(lhs.len(), m * k, "matmul_accumulate: lhs is not {m} x {k}");
    assert_eq!(rhs.len(), k * n, "matmul_accumulate: rhs is not {k} x {n}");
    strided_accumulate(
        StridedRows::new(dst, n),
        Strided::rows(lhs, k),
        Strided::rows(rhs, n),
        (m, k, n),
        parallelism,
    );
}

/// A matrix read in place: element `(i, j)` is `values[i * row_stride + j * col_stride]`.
/// Rows may overlap, as a convolution's taps do in its input.
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    pub values: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Strided<'a> {
    /// Rows `row_stride` apart, each contiguous.
    pub fn rows(values: &'a [f32], row_stride: usize) -> Self {
        Self {
            values,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose of [`Strided::rows`]: columns `col_stride` apart, each contiguous.
    pub fn columns(values: &'a [f32], col_stride: usize) -> Self {
        Self {
            values,
            row_stride: 1,
            col_stride,
        }
    }

    fn holds(&self, rows: usize, cols: usize) -> bool {
        self.values.len() > (rows - 1) * self.row_stride + (cols - 1) * self.col_stride
    }
}

/// A mutable matrix whose row `i` is the contiguous values from `values[i * row_stride]`.
pub struct StridedRows<'a> {
    pub values: &'a mut [f32],
    pub row_stride: usize,
}

impl<'a> StridedRows<'a> {
    pub fn new(values: &'a mut [f32], row_stride: usize) -> Self {
        Self { values, row_stride }
    }
}

/// `dst (m, n) += lhs (m, k) x rhs (k, n)`, every matrix read and written in place.
///
/// # Panics
///
/// If a matrix does not fit its slice, or rows of `dst` overlap.
pub fn strided_accumulate(
    dst: StridedRows,
    lhs: Strided,
    rhs: Strided,
    (m, k, n): (usize, usize, usize),
    parallelism: gemm::Parallelism,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(dst.row_stride >= n, "matmul_accumulate: dst rows overlap");
    assert!(
        dst.values.len() >= (m - 1) * dst.row_stride + n,
        "matmul_accumulate: dst is shorter than {m} rows of {n}"
    );
    assert!(
        lhs.holds(m, k),
        "matmul_accumulate: lhs does not hold {m} x {k}"
    );
    assert!(
        rhs.holds(k, n),
        "matmul_accumulate: rhs does not hold {k} x {n}"
    );
    // SAFETY: gemm reads the `m x k` elements of `lhs` and the `k x n` of `rhs` at their
    // strides, and reads and writes `m` rows of `n` at `dst.row_stride` apart in `dst`:
    // all within the lengths asserted above. `dst` is a unique borrow, so it overlaps
    // neither input, and its rows do not overlap each other.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.values.as_mut_ptr(),
            1,
            dst.row_stride as isize,
            true,
            lhs.values.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.values.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Rows from which a product with a bf16 copy runs in bf16. Smaller products (a stream's
/// windows) stay f32: they gain little, and the first audio of a stream measured 0.05 to
/// 0.2 s later with them in bf16.
pub const BF16_MIN_ROWS: usize = 256;

/// How a layer's products run on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Products {
    F32,
    /// Both operands rounded to bf16 ([`crate::matmul_bf16`]).
    Bf16,
    /// Three bf16 products of split operands on AMX, near f32 ([`crate::amx::SplitRhs`]).
    SplitBf16,
}

impl Products {
    /// bf16 where `precision` allows it on `device`, else f32.
    pub fn rounded(precision: S3GenPrecision, device: &Device) -> Self {
        match precision.bf16_products_on(device) {
            true => Self::Bf16,
            false => Self::F32,
        }
    }

    /// Split bf16 where `precision` allows it on `device`, else f32.
    pub fn near_f32(precision: S3GenPrecision, device: &Device) -> Self {
        match precision.split_products_on(device) {
            true => Self::SplitBf16,
            false => Self::F32,
        }
    }
}

/// A layer's right operand `(k, n)` in f32, kept for every product, with a copy for
/// bf16 or split bf16 products of [`BF16_MIN_ROWS`] rows or more.
#[derive(Debug, Clone)]
pub struct HostMatrix {
    /// Row-major `(k, n)`.
    values: Vec<f32>,
    k: usize,
    n: usize,
    packed: Packed,
}

#[derive(Debug, Clone)]
enum Packed {
    None,
    Bf16(Bf16Rhs),
    Split(SplitRhs),
}

impl HostMatrix {
    /// The transpose of `weight (n, k)` (a linear layer's `(out, in)`), packed for
    /// `products`. Split products need an even `k` (rows of bf16 pairs); with an odd one
    /// they stay f32.
    pub fn transposed(weight: &Tensor, products: Products) -> candle_core::Result<Self> {
        let (n, k) = weight.dims2()?;
        let weight = weight.to_dtype(DType::F32)?;
        let values: Vec<f32> = weight.t()?.flatten_all()?.to_vec1()?;
        let packed = match products {
            Products::Bf16 => {
                let weight = weight.flatten_all()?.to_vec1()?;
                Packed::Bf16(Bf16Rhs::from_transposed(&weight, k, n))
            }
            Products::SplitBf16 if k % 2 == 0 => {
                Packed::Split(SplitRhs::from_row_major(&values, k, n))
            }
            _ => Packed::None,
        };
        Ok(Self {
            values,
            k,
            n,
            packed,
        })
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// `dst (m, n) += lhs (m, k) x self`.
    pub fn accumulate(&self, dst: &mut [f32], lhs: &[f32], m: usize) {
        match &self.packed {
            Packed::Bf16(packed) if m >= BF16_MIN_ROWS => {
                crate::matmul_bf16::matmul_accumulate(dst, lhs, packed, m)
            }
            Packed::Split(split) if m >= BF16_MIN_ROWS => {
                assert_eq!(
                    lhs.len(),
                    m * self.k,
                    "split product: lhs is not {m} x {}",
                    self.k
                );
                assert_eq!(
                    dst.len(),
                    m * self.n,
                    "split product: dst is not {m} x {}",
                    self.n
                );
                // A tile's reads may run 16 pairs past the last row.
                let (high, low) = amx::split_pairs(lhs, 16);
                let row_stride = self.k / 2;
                let high = Lhs {
                    pairs: &high,
                    row_stride,
                };
                let low = Lhs {
                    pairs: &low,
                    row_stride,
                };
                amx::accumulate(dst, self.n, m, &split.terms(high, low));
            }
            _ => matmul_accumulate(dst, lhs, &self.values, m, self.k, self.n),
        }
    }
}

/// `nn.Linear` on f32 `(..., in)` tensors: on the CPU the output starts as the bias (or
/// zeros) and the matmul accumulates into it, in f32 or bf16; elsewhere it is candle's
/// `Linear`.
#[derive(Debug, Clone)]
pub enum AccumulatingLinear {
    Cpu(HostLinear),
    Device(candle_nn::Linear),
}

/// The weights of an [`AccumulatingLinear`] on the CPU.
#[derive(Debug, Clone)]
pub struct HostLinear {
    /// `(in, out)`: the transposed weight.
    weight: HostMatrix,
    bias: Vec<f32>,
}

impl AccumulatingLinear {
    /// Loads `weight` `(out, in)` and `bias` from `vb`; the products run in bf16 when
    /// `precision` says so on this device.
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        precision: S3GenPrecision,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let products = Products::rounded(precision, vb.device());
        Self::load(in_dim, out_dim, true, products, vb)
    }

    /// [`AccumulatingLinear::new`] for a layer without a bias.
    pub fn no_bias(
        in_dim: usize,
        out_dim: usize,
        precision: S3GenPrecision,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let products = Products::rounded(precision, vb.device());
        Self::load(in_dim, out_dim, false, products, vb)
    }

    /// Loads a layer whose products run as `products` on the CPU.
    pub fn load(
        in_dim: usize,
        out_dim: usize,
        has_bias: bool,
        products: Products,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        if !vb.device().is_cpu() {
            let linear = match has_bias {
                true => candle_nn::linear(in_dim, out_dim, vb),
                false => candle_nn::linear_no_bias(in_dim, out_dim, vb),
            };
            return linear.map(Self::Device);
        }
        let bias = match has_bias {
            true => vb.get(out_dim, "bias")?.to_dtype(DType::F32)?.to_vec1()?,
            false => vec![0.0; out_dim],
        };
        let weight = HostMatrix::transposed(&vb.get((out_dim, in_dim), "weight")?, products)?;
        Ok(Self::Cpu(HostLinear { weight, bias }))
    }
}

impl Module for AccumulatingLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Cpu(linear) => x.contiguous()?.apply_op1_no_bwd(linear),
            Self::Device(linear) => linear.forward(x),
        }
    }
}

impl CustomOp1 for HostLinear {
    fn name(&self) -> &'static str {
        "accumulating-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("linear", storage, layout)?;
        let mut dims = layout.shape().dims().to_vec();
        let in_dim = self.weight.k();
        if dims.last() != Some(&in_dim) {
            candle_core::bail!("linear: input {dims:?}, expected {in_dim} features");
        }
        let out_dim = self.bias.len();
        let rows = layout.shape().elem_count() / in_dim;
        let mut out = self.bias.repeat(rows);
        self.weight.accumulate(&mut out, x, rows);
        *dims.last_mut().expect("checked above") = out_dim;
        Ok((CpuStorage::F32(out), Shape::from_dims(&dims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    #[test]
    fn matches_candle_linear_with_and_without_bias() -> candle_core::Result<()> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let candle = candle_nn::linear(40, 37, vb.pp("l"))?;
        let x = Tensor::randn(0f32, 1.0, (2, 5, 40), &Device::Cpu)?;
        let expected = candle.forward(&x)?;
        let max_diff = |linear: AccumulatingLinear, expected: &Tensor| {
            (linear.forward(&x)? - expected)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()
        };
        let fp32 = AccumulatingLinear::new(40, 37, S3GenPrecision::Fp32, vb.pp("l"))?;
        assert!(max_diff(fp32, &expected)? < 1e-5);
        let no_bias = (&expected
            - candle
                .bias()
                .expect("biased")
                .broadcast_as(expected.shape()))?;
        let unbiased = AccumulatingLinear::no_bias(40, 37, S3GenPrecision::Fp32, vb.pp("l"))?;
        assert!(max_diff(unbiased, &no_bias)? < 1e-5);
        if crate::matmul_bf16::available() {
            // bf16 rounds each operand to 8 significant bits: near, not equal; fewer rows
            // than BF16_MIN_ROWS stay f32.
            let bf16 = AccumulatingLinear::new(40, 37, S3GenPrecision::Bf16, vb.pp("l"))?;
            assert!(max_diff(bf16.clone(), &expected)? < 1e-5);
            let rows = Tensor::randn(0f32, 1.0, (BF16_MIN_ROWS, 40), &Device::Cpu)?;
            let diff = (bf16.forward(&rows)? - candle.forward(&rows)?)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(diff > 0.0 && diff < 0.05, "bf16 max difference {diff}");
        }
        if amx::available() {
            // Split products are within about 2^-16 of f32's.
            let split = AccumulatingLinear::load(40, 37, true, Products::SplitBf16, vb.pp("l"))?;
            assert!(
                matches!(&split, AccumulatingLinear::Cpu(l) if matches!(l.weight.packed, Packed::Split(_)))
            );
            let rows = Tensor::randn(0f32, 1.0, (BF16_MIN_ROWS + 33, 40), &Device::Cpu)?;
            let diff = (split.forward(&rows)? - candle.forward(&rows)?)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(
                diff > 0.0 && diff < 1e-4,
                "split bf16 max difference {diff}"
            );
        }
        Ok(())
    }
}
