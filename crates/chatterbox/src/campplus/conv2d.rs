//! The FCM head's 2-D convolutions on the CPU: square kernels, "same" padding, a stride
//! along frequency only, over `(B, C, freq, time)`. The input is unfolded once into
//! `(C_in * k * k, F_out * T)` rows, each a shifted copy of one input row (candle's
//! conv2d gathers the same matrix one value at a time, and has one stride for both
//! axes, so the strided layers computed every frequency row and dropped half), then
//! multiplied by the `(C_out, C_in * k * k)` kernel in one matmul, which leaves the
//! output in `(C_out, F_out, T)` order.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

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
    let rows_per_channel = k * k * freq_out * time;
    let x = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let kernel = kernel.reshape((c_out, c_in * k * k))?;
    let mut outputs = Vec::with_capacity(batch);
    for planes in x.chunks_exact(c_in * freq * time) {
        let mut unfolded = vec![0f32; c_in * rows_per_channel];
        unfolded
            .par_chunks_mut(rows_per_channel)
            .zip(planes.par_chunks(freq * time))
            .for_each(|(unfolded, plane)| {
                // Row (kf, kt, fo) holds input row fo * stride + kf - pad, shifted by
                // kt - pad along time; what falls outside stays zero.
                for (tap, rows) in unfolded.chunks_exact_mut(freq_out * time).enumerate() {
                    let (kf, kt) = (tap / k, tap % k);
                    for (fo, row) in rows.chunks_exact_mut(time).enumerate() {
                        let Some(fi) = (fo * stride_freq + kf).checked_sub(pad) else {
                            continue;
                        };
                        let Some(source) = plane.get(fi * time..(fi + 1) * time) else {
                            continue;
                        };
                        let width = time.saturating_sub(kt.abs_diff(pad));
                        if width == 0 {
                            continue;
                        }
                        if kt >= pad {
                            row[..width].copy_from_slice(&source[kt - pad..][..width]);
                        } else {
                            row[pad - kt..].copy_from_slice(&source[..width]);
                        }
                    }
                }
            });
        let unfolded =
            Tensor::from_vec(unfolded, (c_in * k * k, freq_out * time), kernel.device())?;
        outputs.push(
            kernel
                .matmul(&unfolded)?
                .reshape((1, c_out, freq_out, time))?,
        );
    }
    Tensor::cat(&outputs, 0)
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
