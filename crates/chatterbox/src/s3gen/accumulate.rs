//! Matmuls that accumulate into their output, which candle does not offer: a biased
//! linear layer that starts from the bias, and the per-tap sums of HiFT's convolutions,
//! without a separate pass over the output for each addition.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Shape, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::contiguous_f32;

/// `dst (m, n) += lhs (m, k) x rhs (k, n)`, all row-major f32.
///
/// # Panics
///
/// If a slice's length does not match its shape.
pub fn matmul_accumulate(dst: &mut [f32], lhs: &[f32], rhs: &[f32], m: usize, k: usize, n: usize) {
    assert_eq!(dst.len(), m * n, "matmul_accumulate: dst is not {m} x {n}");
    assert_eq!(lhs.len(), m * k, "matmul_accumulate: lhs is not {m} x {k}");
    assert_eq!(rhs.len(), k * n, "matmul_accumulate: rhs is not {k} x {n}");
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // SAFETY: gemm reads `m x k` row-major elements from `lhs` and `k x n` from `rhs`,
    // and reads and writes `m x n` in `dst`: the lengths asserted above. `dst` is a
    // unique borrow, so it overlaps neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
    }
}

/// `nn.Linear` with a bias on f32 `(..., in)` tensors: on the CPU the output starts as
/// the bias and the matmul accumulates into it; elsewhere it is candle's `Linear`.
#[derive(Debug, Clone)]
pub enum BiasedLinear {
    Cpu(HostLinear),
    Device(candle_nn::Linear),
}

/// The weights of a [`BiasedLinear`] on the CPU.
#[derive(Debug, Clone)]
pub struct HostLinear {
    /// `(in, out)` row-major: the transposed weight.
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    in_dim: usize,
}

impl BiasedLinear {
    /// Loads `weight` `(out, in)` and `bias` from `vb`.
    pub fn new(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        if !vb.device().is_cpu() {
            return candle_nn::linear(in_dim, out_dim, vb).map(Self::Device);
        }
        let weight = vb.get((out_dim, in_dim), "weight")?.to_dtype(DType::F32)?;
        Ok(Self::Cpu(HostLinear {
            weight_t: weight.t()?.flatten_all()?.to_vec1()?,
            bias: vb.get(out_dim, "bias")?.to_dtype(DType::F32)?.to_vec1()?,
            in_dim,
        }))
    }
}

impl Module for BiasedLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Cpu(linear) => x.contiguous()?.apply_op1_no_bwd(linear),
            Self::Device(linear) => linear.forward(x),
        }
    }
}

impl CustomOp1 for HostLinear {
    fn name(&self) -> &'static str {
        "biased-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("linear", storage, layout)?;
        let mut dims = layout.shape().dims().to_vec();
        if dims.last() != Some(&self.in_dim) {
            candle_core::bail!("linear: input {dims:?}, expected {} features", self.in_dim);
        }
        let out_dim = self.bias.len();
        let rows = layout.shape().elem_count() / self.in_dim;
        let mut out: Vec<f32> = self
            .bias
            .iter()
            .copied()
            .cycle()
            .take(rows * out_dim)
            .collect();
        matmul_accumulate(&mut out, x, &self.weight_t, rows, self.in_dim, out_dim);
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
    fn biased_linear_matches_candle_linear() -> candle_core::Result<()> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let candle = candle_nn::linear(12, 7, vb.pp("l"))?;
        let ours = BiasedLinear::new(12, 7, vb.pp("l"))?;
        let x = Tensor::randn(0f32, 1.0, (2, 5, 12), &Device::Cpu)?;
        let diff = (ours.forward(&x)? - candle.forward(&x)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-5, "max difference {diff}");
        Ok(())
    }
}
