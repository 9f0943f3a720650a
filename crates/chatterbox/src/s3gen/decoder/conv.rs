//! The decoder's unpadded convolutions on channels-first `(B, C, L)` f32 activations.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Shape, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, VarBuilder};
use rayon::prelude::*;

use crate::kernels::contiguous_f32;
use crate::s3gen::accumulate::{Strided, StridedRows, strided_accumulate};

/// A stride-1 Conv1d without padding (its caller pads). On the CPU the output starts as
/// the bias and each tap adds `weight[:, :, tap] (C_out, C_in) x x[:, tap..] (C_in, L)`,
/// the shifted input read in place: no im2col copy, which made candle's `conv1d` half as
/// fast on the decoder's 1000-frame convolutions. Other devices run candle's `conv1d`.
pub enum ChannelsFirstConv1d {
    Cpu(HostConv1d),
    Device(Conv1d),
}

pub struct HostConv1d {
    /// `(kernel, C_out, C_in)` row-major: tap by tap, `weight[:, :, tap]`.
    taps: Vec<f32>,
    bias: Vec<f32>,
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
}

impl ChannelsFirstConv1d {
    /// Loads `weight (C_out, C_in, kernel)` and `bias (C_out)` from `vb`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        if !vb.device().is_cpu() {
            let cfg = Conv1dConfig::default();
            return candle_nn::conv1d(in_channels, out_channels, kernel, cfg, vb).map(Self::Device);
        }
        let weight = vb
            .get((out_channels, in_channels, kernel), "weight")?
            .to_dtype(DType::F32)?;
        Ok(Self::Cpu(HostConv1d {
            taps: weight.permute((2, 0, 1))?.flatten_all()?.to_vec1()?,
            bias: vb
                .get(out_channels, "bias")?
                .to_dtype(DType::F32)?
                .to_vec1()?,
            in_channels,
            out_channels,
            kernel,
        }))
    }
}

impl Module for ChannelsFirstConv1d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Cpu(conv) => x.contiguous()?.apply_op1_no_bwd(conv),
            Self::Device(conv) => conv.forward(x),
        }
    }
}

impl CustomOp1 for HostConv1d {
    fn name(&self) -> &'static str {
        "channels-first-conv1d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("conv1d", storage, layout)?;
        let (batch, channels, len) = layout.shape().dims3()?;
        if channels != self.in_channels || len < self.kernel {
            candle_core::bail!(
                "conv1d: input {:?}, expected {} channels and at least {} steps",
                layout.shape(),
                self.in_channels,
                self.kernel
            );
        }
        let (c_in, c_out) = (self.in_channels, self.out_channels);
        let out_len = len - self.kernel + 1;
        let mut out = vec![0f32; batch * c_out * out_len];
        out.par_chunks_mut(out_len)
            .enumerate()
            .for_each(|(row, values)| values.fill(self.bias[row % c_out]));
        for (x, out) in x
            .chunks_exact(c_in * len)
            .zip(out.chunks_exact_mut(c_out * out_len))
        {
            for (tap, weight) in self.taps.chunks_exact(c_out * c_in).enumerate() {
                strided_accumulate(
                    StridedRows::new(out, out_len),
                    Strided::rows(weight, c_in),
                    Strided::rows(&x[tap..], len),
                    (c_out, c_in, out_len),
                    gemm::Parallelism::Rayon(rayon::current_num_threads()),
                );
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((batch, c_out, out_len))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use std::collections::HashMap;

    #[test]
    fn matches_candle_conv1d() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (c_in, c_out, kernel) in [(5, 7, 3), (6, 4, 1)] {
            let weight = Tensor::randn(0f32, 0.3, (c_out, c_in, kernel), &dev)?;
            let bias = Tensor::randn(0f32, 1.0, c_out, &dev)?;
            let vb = VarBuilder::from_tensors(
                HashMap::from([
                    ("weight".to_string(), weight.clone()),
                    ("bias".to_string(), bias.clone()),
                ]),
                DType::F32,
                &dev,
            );
            let conv = ChannelsFirstConv1d::new(c_in, c_out, kernel, vb)?;
            assert!(matches!(conv, ChannelsFirstConv1d::Cpu(_)));
            let x = Tensor::randn(0f32, 1.0, (2, c_in, 30), &dev)?;
            let expected = Conv1d::new(weight, Some(bias), Conv1dConfig::default()).forward(&x)?;
            let diff = (conv.forward(&x)? - expected)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(diff < 1e-5, "{c_in} -> {c_out}, kernel {kernel}: {diff}");
        }
        Ok(())
    }
}
