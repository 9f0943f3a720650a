//! HiFT's convolutions on time-major `(B, L, C)` f32 activations.

use std::cell::RefCell;
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Module, Shape, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, ConvTranspose1d, ConvTranspose1dConfig};
use rayon::prelude::*;

use crate::amx::{self, Lhs, SplitRhs};
use crate::kernels::contiguous_f32;
use crate::s3gen::accumulate::{Strided, StridedRows, strided_accumulate};

/// A Conv1d on time-major `(B, L, C)` f32 activations, with a stride or a dilation.
///
/// On the CPU it is one matrix product per phase of the dilation, with every tap in it:
/// output step `t` reads padded input steps `t * stride + tap * dilation`. Grouped by
/// phase (`padded step mod dilation`), those are `kernel` consecutive steps, so the
/// product reads its rows of `kernel * C_in` values in place, overlapping, from one
/// padded (and, when dilated, phase-grouped) copy of the input. Adding the taps one
/// product each instead swept the whole output once per tap, with products of only
/// `C_in` deep: HiFT's 64-channel stage ran at half the speed of its 256-channel one.
/// Other devices run candle's `conv1d` between transposes.
pub enum TimeMajorConv1d {
    Cpu(HostConv1d),
    Device(Conv1d),
}

/// Time steps per parallel task of the copies around the product.
const PARALLEL_ROWS: usize = 512;

/// `steps` time-major rows, each the bias, filled in parallel.
fn bias_rows(bias: &[f32], steps: usize) -> Vec<f32> {
    let mut rows = vec![0f32; steps * bias.len()];
    rows.par_chunks_mut(bias.len())
        .with_min_len(PARALLEL_ROWS)
        .for_each(|row| row.copy_from_slice(bias));
    rows
}

/// A map of each input row (one time step's `C_in` values) that a [`TimeMajorConv1d`]
/// applies as it copies its input: an activation fused into the convolution.
pub trait RowMap: Send + Sync {
    fn map_row(&self, x: &[f32], out: &mut [f32]);
}

pub struct HostConv1d {
    /// `(kernel * C_in, C_out)` row-major: row `tap * C_in + c` is `weight[:, c, tap]`.
    weight: Vec<f32>,
    /// Applied to each input row first, when fused.
    input_map: Option<Arc<dyn RowMap>>,
    /// `weight` split for AMX, when the products run that way.
    split: Option<SplitRhs>,
    bias: Vec<f32>,
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    padding: usize,
    stride: usize,
    dilation: usize,
}

impl TimeMajorConv1d {
    /// `weight (C_out, C_in, kernel)` and `bias (C_out)`, on their device; a dilated
    /// convolution must have stride 1.
    pub fn new(weight: &Tensor, bias: &Tensor, cfg: Conv1dConfig) -> candle_core::Result<Self> {
        let weight = weight.to_dtype(DType::F32)?;
        let bias = bias.to_dtype(DType::F32)?;
        if !weight.device().is_cpu() {
            return Ok(Self::Device(Conv1d::new(weight, Some(bias), cfg)));
        }
        if cfg.groups != 1 || (cfg.dilation > 1 && cfg.stride > 1) {
            candle_core::bail!("time-major conv1d: groups, or a stride with a dilation");
        }
        let (out_channels, in_channels, kernel) = weight.dims3()?;
        Ok(Self::Cpu(HostConv1d {
            weight: weight.permute((2, 1, 0))?.flatten_all()?.to_vec1()?,
            input_map: None,
            split: None,
            bias: bias.to_vec1()?,
            in_channels,
            out_channels,
            kernel,
            padding: cfg.padding,
            stride: cfg.stride.max(1),
            dilation: cfg.dilation.max(1),
        }))
    }

    /// The convolution with its products as three bf16 products of split operands on
    /// AMX tiles ([`crate::amx`]), where AMX is available and the input has an even
    /// number of channels (the rows are bf16 pairs); unchanged elsewhere.
    pub fn split_products(self) -> Self {
        match self {
            Self::Cpu(conv) if amx::available() && conv.in_channels % 2 == 0 => {
                let k = conv.kernel * conv.in_channels;
                let split = SplitRhs::from_row_major(&conv.weight, k, conv.out_channels);
                Self::Cpu(HostConv1d {
                    split: Some(split),
                    ..conv
                })
            }
            other => other,
        }
    }

    /// On the CPU, the convolution of `map(x)`, `map` applied to each input row as the
    /// convolution copies it (no separate pass or tensor); unchanged elsewhere, where
    /// [`TimeMajorConv1d::maps_input`] says the caller must apply it.
    pub fn after(self, map: Arc<dyn RowMap>) -> Self {
        match self {
            Self::Cpu(conv) => Self::Cpu(HostConv1d {
                input_map: Some(map),
                ..conv
            }),
            other => other,
        }
    }

    /// Whether the convolution applies a map to its input ([`TimeMajorConv1d::after`]).
    pub fn maps_input(&self) -> bool {
        matches!(self, Self::Cpu(conv) if conv.input_map.is_some())
    }

    /// `residual + conv(x)` (on the CPU the residual is the output's starting value, no
    /// separate pass); `x` and `residual` are `(B, L, C)`.
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Cpu(conv) => x
                .contiguous()?
                .apply_op2_no_bwd(&residual.contiguous()?, conv),
            Self::Device(_) => residual + self.forward(x)?,
        }
    }
}

impl Module for TimeMajorConv1d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Cpu(conv) => x.contiguous()?.apply_op1_no_bwd(conv),
            Self::Device(conv) => conv.forward(&x.transpose(1, 2)?)?.transpose(1, 2),
        }
    }
}

impl HostConv1d {
    /// Checks `x` and returns it with the output's shape.
    fn input<'a>(
        &self,
        storage: &'a CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(&'a [f32], Shape)> {
        let x = contiguous_f32("conv1d", storage, layout)?;
        let (batch, len, channels) = layout.shape().dims3()?;
        if channels != self.in_channels {
            candle_core::bail!(
                "conv1d: {channels} input channels, expected {}",
                self.in_channels
            );
        }
        let reach = self.dilation * (self.kernel - 1) + 1;
        if len + 2 * self.padding < reach {
            candle_core::bail!("conv1d: {len} steps, shorter than the kernel");
        }
        let out_len = (len + 2 * self.padding - reach) / self.stride + 1;
        Ok((x, Shape::from((batch, out_len, self.out_channels))))
    }

    /// Adds the convolution of `x` to `out`, batch row by batch row.
    fn accumulate(&self, x: &[f32], out: &mut [f32], out_len: usize) {
        let (c_in, c_out, dilation) = (self.in_channels, self.out_channels, self.dilation);
        if out.is_empty() {
            return;
        }
        let batch = out.len() / (out_len * c_out);
        let len = x.len() / (batch * c_in);
        let padded_len = len + 2 * self.padding;
        // Padded steps of phase `r` (`r`, `r + dilation`, ...) are stored from
        // `phase_start[r]` on.
        let phase_len = |r: usize| (padded_len - r).div_ceil(dilation);
        let phase_start: Vec<usize> = (0..dilation)
            .scan(0, |start, r| {
                let this = *start;
                *start += phase_len(r);
                Some(this)
            })
            .collect();
        // Row `at` of the padded copy is padded step `r + i * dilation`, input step
        // `r + i * dilation - padding` (the padding rows are zero).
        let input_step = |at: usize| {
            let r = phase_start.partition_point(|&start| start <= at) - 1;
            let step = r + (at - phase_start[r]) * dilation;
            step.checked_sub(self.padding).filter(|&s| s < len)
        };
        if let Some(split) = &self.split {
            return self.accumulate_split(split, x, out, out_len, &input_step, &phase_start);
        }
        let mut padded = vec![0f32; padded_len * c_in];
        for (x, out) in x
            .chunks_exact(len * c_in)
            .zip(out.chunks_exact_mut(out_len * c_out))
        {
            padded
                .par_chunks_mut(c_in)
                .with_min_len(PARALLEL_ROWS)
                .enumerate()
                .for_each(|(at, row)| {
                    if let Some(input) = input_step(at) {
                        let x = &x[input * c_in..][..c_in];
                        match &self.input_map {
                            Some(map) => map.map_row(x, row),
                            None => row.copy_from_slice(x),
                        }
                    }
                });
            // Output steps `r + s * dilation` of phase `r` (with a dilation, the stride
            // is 1).
            for r in 0..dilation.min(out_len) {
                let rows = (out_len - r).div_ceil(dilation);
                let phase = &padded[phase_start[r] * c_in..][..phase_len(r) * c_in];
                strided_accumulate(
                    StridedRows::new(&mut out[r * c_out..], dilation * c_out),
                    Strided::rows(phase, self.stride * c_in),
                    Strided::rows(&self.weight, c_out),
                    (rows, self.kernel * c_in, c_out),
                    gemm::Parallelism::Rayon(rayon::current_num_threads()),
                );
            }
        }
    }

    /// [`HostConv1d::accumulate`] as split bf16 products on AMX tiles: the padded copy
    /// is made as bf16 pairs straight from the input, into buffers each thread keeps
    /// (fresh ones page-faulted in every call).
    fn accumulate_split(
        &self,
        split: &SplitRhs,
        x: &[f32],
        out: &mut [f32],
        out_len: usize,
        input_step: &(dyn Fn(usize) -> Option<usize> + Sync),
        phase_start: &[usize],
    ) {
        thread_local! {
            static PADDED_PAIRS: RefCell<(Vec<u32>, Vec<u32>)> = const {
                RefCell::new((Vec::new(), Vec::new()))
            };
        }
        let (c_in, c_out, dilation) = (self.in_channels, self.out_channels, self.dilation);
        let row_pairs = c_in / 2;
        let batch = out.len() / (out_len * c_out);
        let len = x.len() / (batch * c_in);
        let padded_len = len + 2 * self.padding;
        // A tile's reads may run 16 pairs past the last row.
        let pairs = padded_len * row_pairs + 16;
        PADDED_PAIRS.with(|kept| {
            // A thread that waits inside a product may run another convolution.
            let mut fresh = (Vec::new(), Vec::new());
            let mut kept = kept.try_borrow_mut();
            let (high, low) = match kept.as_deref_mut() {
                Ok(kept) => kept,
                Err(_) => &mut fresh,
            };
            high.resize(pairs.max(high.len()), 0);
            low.resize(pairs.max(low.len()), 0);
            for (x, out) in x
                .chunks_exact(len * c_in)
                .zip(out.chunks_exact_mut(out_len * c_out))
            {
                high[..padded_len * row_pairs]
                    .par_chunks_mut(row_pairs)
                    .zip(low[..padded_len * row_pairs].par_chunks_mut(row_pairs))
                    .with_min_len(PARALLEL_ROWS)
                    .enumerate()
                    .for_each_init(
                        || vec![0f32; c_in],
                        |mapped, (at, (high, low))| match input_step(at) {
                            Some(input) => {
                                let mut x = &x[input * c_in..][..c_in];
                                if let Some(map) = &self.input_map {
                                    map.map_row(x, mapped);
                                    x = mapped;
                                }
                                amx::split_into(high, low, x)
                            }
                            None => {
                                high.fill(0);
                                low.fill(0);
                            }
                        },
                    );
                high[padded_len * row_pairs..pairs].fill(0);
                low[padded_len * row_pairs..pairs].fill(0);
                for r in 0..dilation.min(out_len) {
                    let rows = (out_len - r).div_ceil(dilation);
                    let at = phase_start[r] * row_pairs;
                    let row_stride = self.stride * row_pairs;
                    let high = Lhs {
                        pairs: &high[at..pairs],
                        row_stride,
                    };
                    let low = Lhs {
                        pairs: &low[at..pairs],
                        row_stride,
                    };
                    amx::accumulate(
                        &mut out[r * c_out..],
                        dilation * c_out,
                        rows,
                        &split.terms(high, low),
                    );
                }
            }
        });
    }
}

impl CustomOp1 for HostConv1d {
    fn name(&self) -> &'static str {
        "time-major-conv1d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, shape) = self.input(storage, layout)?;
        let mut out = bias_rows(&self.bias, shape.elem_count() / self.out_channels);
        self.accumulate(x, &mut out, shape.dims()[1]);
        Ok((CpuStorage::F32(out), shape))
    }
}

impl CustomOp2 for HostConv1d {
    fn name(&self) -> &'static str {
        "time-major-conv1d-residual"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
        residual_storage: &CpuStorage,
        residual_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, shape) = self.input(storage, layout)?;
        let residual = contiguous_f32("conv1d", residual_storage, residual_layout)?;
        if residual_layout.shape() != &shape {
            candle_core::bail!(
                "conv1d: residual {:?}, output {shape:?}",
                residual_layout.shape()
            );
        }
        let mut out = vec![0f32; shape.elem_count()];
        out.par_chunks_mut(self.out_channels)
            .zip(residual.par_chunks(self.out_channels))
            .with_min_len(PARALLEL_ROWS)
            .for_each(|(row, residual)| {
                for ((out, r), b) in row.iter_mut().zip(residual).zip(&self.bias) {
                    *out = r + b;
                }
            });
        self.accumulate(x, &mut out, shape.dims()[1]);
        Ok((CpuStorage::F32(out), shape))
    }
}

/// HiFT's upsampling `ConvTranspose1d` (stride `s`, kernel `K`, `padding = crop`) on
/// time-major `(B, L, C)` f32 activations.
///
/// On the CPU, output step `t` sums `x[q - m] weight[:, :, r + m s]` over `m`, where
/// `t + crop = q s + r`: for each phase `r` a convolution of the input with every `s`-th
/// tap, so one product per phase reads its rows of consecutive input steps in place, as
/// [`TimeMajorConv1d`] does. Other devices run candle's `conv_transpose1d` between
/// transposes.
pub enum TimeMajorUpsample {
    Cpu(HostUpsample),
    Device { conv: ConvTranspose1d, crop: usize },
}

pub struct HostUpsample {
    /// Per phase `r`: its taps `r, r + s, ...` as `(taps * C_in, C_out)` row-major, the
    /// last tap first (it meets the earliest input step).
    phases: Vec<(usize, Vec<f32>)>,
    bias: Vec<f32>,
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    crop: usize,
}

impl TimeMajorUpsample {
    /// `weight (C_in, C_out, kernel)` and `bias (C_out)`, on their device.
    pub fn new(
        weight: &Tensor,
        bias: &Tensor,
        stride: usize,
        crop: usize,
    ) -> candle_core::Result<Self> {
        let weight = weight.to_dtype(DType::F32)?;
        let bias = bias.to_dtype(DType::F32)?;
        let (in_channels, out_channels, kernel) = weight.dims3()?;
        if stride == 0 || 2 * crop >= kernel {
            candle_core::bail!("upsample: stride {stride}, crop {crop}, kernel {kernel}");
        }
        if !weight.device().is_cpu() {
            let cfg = ConvTranspose1dConfig {
                stride,
                ..Default::default()
            };
            let conv = ConvTranspose1d::new(weight, Some(bias), cfg);
            return Ok(Self::Device { conv, crop });
        }
        // (K, C_in, C_out): tap by tap.
        let taps = weight
            .permute((2, 0, 1))?
            .contiguous()?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let tap_len = in_channels * out_channels;
        let phases = (0..stride.min(kernel))
            .map(|r| {
                let taps_here: Vec<usize> = (r..kernel).step_by(stride).collect();
                let matrix = taps_here
                    .iter()
                    .rev()
                    .flat_map(|&tap| &taps[tap * tap_len..][..tap_len])
                    .copied()
                    .collect();
                (taps_here.len(), matrix)
            })
            .collect();
        Ok(Self::Cpu(HostUpsample {
            phases,
            bias: bias.to_vec1()?,
            in_channels,
            out_channels,
            kernel,
            stride,
            crop,
        }))
    }
}

impl Module for TimeMajorUpsample {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Cpu(up) => x.contiguous()?.apply_op1_no_bwd(up),
            Self::Device { conv, crop } => {
                let full = conv.forward(&x.transpose(1, 2)?)?;
                let len = full.dim(2)? - 2 * crop;
                full.narrow(2, *crop, len)?.transpose(1, 2)
            }
        }
    }
}

impl CustomOp1 for HostUpsample {
    fn name(&self) -> &'static str {
        "time-major-upsample"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("upsample", storage, layout)?;
        let (batch, len, channels) = layout.shape().dims3()?;
        if channels != self.in_channels || len == 0 {
            candle_core::bail!(
                "upsample: input {:?}, expected {} channels",
                layout.shape(),
                self.in_channels
            );
        }
        let (c_in, c_out, s) = (self.in_channels, self.out_channels, self.stride);
        let out_len = (len - 1) * s + self.kernel - 2 * self.crop;
        let mut out = bias_rows(&self.bias, batch * out_len);
        // The input after `front` zero steps and before `front + 1`, so that every
        // phase's rows stay inside.
        let front = self.kernel.div_ceil(s) - 1;
        let padded_len = front + len + front + 1;
        let mut padded = vec![0f32; padded_len * c_in];
        for (x, out) in x
            .chunks_exact(len * c_in)
            .zip(out.chunks_exact_mut(out_len * c_out))
        {
            padded[front * c_in..(front + len) * c_in].copy_from_slice(x);
            for (r, (taps, matrix)) in self.phases.iter().enumerate() {
                // The first output step of phase `r`, and its `q`.
                let first = (r + s - self.crop % s) % s;
                if first >= out_len {
                    continue;
                }
                let q = (first + self.crop) / s;
                let rows = (out_len - first).div_ceil(s);
                // Output `q + k` reads input steps `q + k - taps + 1 ..= q + k`.
                let start = (q + front + 1 - taps) * c_in;
                strided_accumulate(
                    StridedRows::new(&mut out[first * c_out..], s * c_out),
                    Strided::rows(&padded[start..], c_in),
                    Strided::rows(matrix, c_out),
                    (rows, taps * c_in, c_out),
                    gemm::Parallelism::Rayon(rayon::current_num_threads()),
                );
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((batch, out_len, c_out))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The time-major convolution (and the other devices' way, run here on the CPU)
    /// against candle's `conv1d`, with and without the residual, dilated and strided,
    /// including inputs shorter than the padding.
    /// The upsampling transposed convolution against candle's, cropped, for HiFT's
    /// strides and kernels and a few more.
    #[test]
    fn time_major_upsample_matches_candle_conv_transpose1d() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (c_in, c_out, kernel, stride) in
            [(6, 3, 16, 8), (4, 5, 11, 5), (3, 2, 7, 3), (2, 3, 4, 2)]
        {
            let crop = (kernel - stride) / 2;
            let weight = Tensor::randn(0f32, 0.3, (c_in, c_out, kernel), &dev)?;
            let bias = Tensor::randn(0f32, 1.0, c_out, &dev)?;
            let host = TimeMajorUpsample::new(&weight, &bias, stride, crop)?;
            assert!(matches!(host, TimeMajorUpsample::Cpu(_)));
            let cfg = ConvTranspose1dConfig {
                stride,
                ..Default::default()
            };
            let device = TimeMajorUpsample::Device {
                conv: ConvTranspose1d::new(weight.clone(), Some(bias.clone()), cfg),
                crop,
            };
            // candle's CPU transposed convolution is wrong for batches of more than
            // one row (candle 0.11.1), so the expected output is made row by row and
            // the other devices' way is run on one row.
            for (up, batch, len) in [&host, &device]
                .into_iter()
                .zip([2, 1])
                .flat_map(|(u, b)| [(u, b, 1), (u, b, 2), (u, b, 13)])
            {
                let x = Tensor::randn(0f32, 1.0, (batch, c_in, len), &dev)?;
                let rows = (0..batch)
                    .map(|row| {
                        let full = x
                            .narrow(0, row, 1)?
                            .conv_transpose1d(&weight, 0, 0, stride, 1, 1)?
                            .broadcast_add(&bias.reshape((1, c_out, 1))?)?;
                        let out_len = full.dim(2)? - 2 * crop;
                        full.narrow(2, crop, out_len)?.transpose(1, 2)
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?;
                let expected = Tensor::cat(&rows, 0)?;
                let ours = up.forward(&x.transpose(1, 2)?.contiguous()?)?;
                assert_eq!(ours.dims(), expected.dims());
                let diff = (ours - expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(
                    diff < 1e-5,
                    "kernel {kernel}, stride {stride}, batch {batch}, len {len}: {diff}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn time_major_conv1d_matches_candle_conv1d() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (c_in, c_out, kernel, cfg) in [
            (5, 5, 7, (9, 1, 3)),
            (5, 5, 3, (1, 1, 1)),
            (6, 4, 7, (3, 1, 1)),
            (3, 5, 10, (2, 5, 1)),
            (3, 5, 1, (0, 1, 1)),
            (64, 48, 11, (25, 1, 5)),
            (18, 64, 6, (3, 3, 1)),
        ] {
            let (padding, stride, dilation) = cfg;
            let cfg = Conv1dConfig {
                padding,
                stride,
                dilation,
                ..Default::default()
            };
            let weight = Tensor::randn(0f32, 0.3, (c_out, c_in, kernel), &dev)?;
            let bias = Tensor::randn(0f32, 1.0, c_out, &dev)?;
            let host = TimeMajorConv1d::new(&weight, &bias, cfg)?;
            assert!(matches!(host, TimeMajorConv1d::Cpu(_)));
            let device =
                TimeMajorConv1d::Device(Conv1d::new(weight.clone(), Some(bias.clone()), cfg));
            // Split bf16 products on AMX, within about 2^-16 of f32's.
            let split = TimeMajorConv1d::new(&weight, &bias, cfg)?.split_products();
            // f32's own rounding grows with the product's depth.
            let f32_tolerance = 1e-7 * (kernel * c_in).max(100) as f32;
            let mut convs = vec![(&host, f32_tolerance), (&device, f32_tolerance)];
            if amx::available() && c_in % 2 == 0 {
                assert!(matches!(&split, TimeMajorConv1d::Cpu(c) if c.split.is_some()));
                convs.push((&split, 2e-4));
            }
            for (conv, tolerance, len) in convs
                .into_iter()
                .flat_map(|(c, t)| [(c, t, 2), (c, t, 9), (c, t, 41), (c, t, 300)])
            {
                if len + 2 * padding < dilation * (kernel - 1) + 1 {
                    continue;
                }
                let x = Tensor::randn(0f32, 1.0, (2, c_in, len), &dev)?;
                let expected = x
                    .conv1d(&weight, padding, stride, dilation, 1)?
                    .broadcast_add(&bias.reshape((1, c_out, 1))?)?
                    .transpose(1, 2)?;
                let ours = conv.forward(&x.transpose(1, 2)?.contiguous()?)?;
                let diff = (&ours - &expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(
                    diff < tolerance,
                    "{cfg:?}, len {len}: max difference {diff}"
                );

                let residual = Tensor::randn(0f32, 1.0, expected.shape(), &dev)?;
                let ours = conv.forward_residual(&x.transpose(1, 2)?.contiguous()?, &residual)?;
                let diff = (ours - (expected + residual)?)?
                    .abs()?
                    .max_all()?
                    .to_scalar::<f32>()?;
                assert!(
                    diff < tolerance,
                    "{cfg:?}, len {len} with residual: max difference {diff}"
                );
            }
        }
        Ok(())
    }
}
