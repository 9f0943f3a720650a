//! The FCM head's 2-D convolutions on the CPU: square kernels, "same" padding, a stride
//! along frequency only, over `(B, C, freq, time)`. Each output frequency row is one
//! product: its `(C_in * k * k, T)` input rows (each a shifted copy of one input row)
//! unfolded into a per-thread buffer that stays in cache, multiplied by the
//! `(C_out, C_in * k * k)` kernel. candle's conv2d gathers the whole unfolded matrix one
//! value at a time (tens of MB for these layers), and has one stride for both axes, so
//! the strided layers would compute every frequency row and drop half.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use crate::s3gen::accumulate::matmul_accumulate_here;

/// `x` (B, C_in, F, T) convolved with `kernel` (C_out, C_in, k, k), odd `k`, padding
/// `k / 2`, stride `stride_freq` along F and 1 along T: (B, C_out, F_out, T).
pub fn conv2d_freq_strided(x: &Tensor, kernel: &Tensor, stride_freq: usize) -> Result<Tensor> {
    let (batch, c_in, freq, time) = x.dims4()?;
    let (c_out, kernel_c_in, k, k_time) = kernel.dims4()?;
    if kernel_c_in != c_in || k != k_time || k.is_multiple_of(2) || stride_freq == 0 {
        candle_core::bail!(
            "conv2d_freq_strided: input of {c_in} channels, kernel {:?}, stride {stride_freq}",
            kernel.dims()
        );
    }
    let pad = k / 2;
    let freq_out = (freq + 2 * pad - k) / stride_freq + 1;
    let taps = c_in * k * k;
    let device = x.device().clone();
    let x = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let kernel = kernel.flatten_all()?.to_vec1::<f32>()?;
    // One `(C_out, T)` block per (batch, output frequency row).
    let blocks: Vec<Vec<f32>> = (0..batch * freq_out)
        .into_par_iter()
        .map_init(
            || vec![0f32; taps * time],
            |unfolded, block| {
                let (b, fo) = (block / freq_out, block % freq_out);
                let planes = &x[b * c_in * freq * time..][..c_in * freq * time];
                // Row (c, kf, kt) holds input row fo * stride + kf - pad of channel c,
                // shifted by kt - pad along time; what falls outside is zero.
                for (tap, row) in unfolded.chunks_exact_mut(time).enumerate() {
                    let (c, kf, kt) = (tap / (k * k), tap / k % k, tap % k);
                    row.fill(0.0);
                    let Some(fi) = (fo * stride_freq + kf).checked_sub(pad) else {
                        continue;
                    };
                    if fi >= freq {
                        continue;
                    }
                    let source = &planes[(c * freq + fi) * time..][..time];
                    let width = time.saturating_sub(kt.abs_diff(pad));
                    if kt >= pad {
                        row[..width].copy_from_slice(&source[kt - pad..][..width]);
                    } else {
                        row[pad - kt..].copy_from_slice(&source[..width]);
                    }
                }
                let mut out = vec![0f32; c_out * time];
                matmul_accumulate_here(&mut out, &kernel, unfolded, c_out, taps, time);
                out
            },
        )
        .collect();
    let mut out = vec![0f32; batch * c_out * freq_out * time];
    for (block, values) in blocks.iter().enumerate() {
        let (b, fo) = (block / freq_out, block % freq_out);
        for (c, row) in values.chunks_exact(time).enumerate() {
            out[((b * c_out + c) * freq_out + fo) * time..][..time].copy_from_slice(row);
        }
    }
    Tensor::from_vec(out, (batch, c_out, freq_out, time), &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module};
    use candle_nn::{Conv2d, Conv2dConfig};

    #[test]
    fn matches_candle_conv2d_with_every_stride_th_frequency_row_kept() -> Result<()> {
        let device = Device::Cpu;
        for (k, stride, time) in [(3, 1, 7), (3, 2, 7), (1, 2, 5), (3, 2, 1)] {
            let (batch, c_in, c_out, freq) = (2, 3, 4, 9);
            let x = Tensor::randn(0f32, 1.0, (batch, c_in, freq, time), &device)?;
            let kernel = Tensor::randn(0f32, 1.0, (c_out, c_in, k, k), &device)?;
            let config = Conv2dConfig {
                padding: k / 2,
                ..Default::default()
            };
            let full = Conv2d::new(kernel.clone(), None, config).forward(&x)?;
            let rows: Vec<u32> = (0..freq as u32).step_by(stride).collect();
            let want = full.index_select(&Tensor::new(rows.as_slice(), &device)?, 2)?;
            let got = conv2d_freq_strided(&x, &kernel, stride)?;
            assert_eq!(got.dims(), want.dims(), "k {k}, stride {stride}");
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "k {k}, stride {stride}, time {time}: {diff}");
        }
        Ok(())
    }
}
