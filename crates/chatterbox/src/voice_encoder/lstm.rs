//! A stacked `torch.nn.LSTM` (batch first, gates in the order input, forget, cell,
//! output) on the CPU: each layer projects every step's input in one product, then runs
//! the recurrence with one `(N, H) x (H, 4H)` product and one pass over the gates a
//! step, where candle's `LSTM` makes a dozen small tensors a step.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use crate::kernels;
use crate::s3gen::accumulate::matmul_accumulate;

struct Layer {
    /// `(in, 4H)`: the transposed `weight_ih`.
    input_weight: Vec<f32>,
    /// `(H, 4H)`: the transposed `weight_hh`.
    hidden_weight: Vec<f32>,
    input_bias: Vec<f32>,
    hidden_bias: Vec<f32>,
    input: usize,
}

pub struct HostLstm {
    layers: Vec<Layer>,
    hidden: usize,
}

fn transposed(weight: Tensor) -> Result<Vec<f32>> {
    weight.to_dtype(DType::F32)?.t()?.flatten_all()?.to_vec1()
}

/// Rows of `width` values, each starting as `bias`.
fn rows_of(bias: &[f32], rows: usize) -> Vec<f32> {
    bias.repeat(rows)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + kernels::exp(-x))
}

/// `tanh(x) = 2 sigmoid(2x) - 1`, to about 1e-7 absolute.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    2.0 / (1.0 + kernels::exp(-2.0 * x)) - 1.0
}

/// One step's `c` and `h` from its gate sums `[i | f | g | o]` (`4H`) and the last `c`.
#[inline(always)]
fn update(sums: &[f32], c: &mut [f32], h: &mut [f32]) {
    let h_len = c.len();
    let (i, rest) = sums.split_at(h_len);
    let (f, rest) = rest.split_at(h_len);
    let (g, o) = rest.split_at(h_len);
    for (((((c, h), i), f), g), o) in c.iter_mut().zip(h).zip(i).zip(f).zip(g).zip(o) {
        *c = sigmoid(*f) * *c + sigmoid(*i) * tanh(*g);
        *h = sigmoid(*o) * tanh(*c);
    }
}

impl HostLstm {
    /// `layers` layers from `vb` (`weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`,
    /// `bias_hh_l{k}`), the first taking `input` features.
    pub fn new(input: usize, hidden: usize, layers: usize, vb: VarBuilder) -> Result<Self> {
        if layers == 0 {
            candle_core::bail!("lstm: no layers");
        }
        let layers = (0..layers)
            .map(|k| {
                let input = if k == 0 { input } else { hidden };
                let vector = |name: &str| -> Result<Vec<f32>> {
                    vb.get(4 * hidden, &format!("{name}_l{k}"))?
                        .to_dtype(DType::F32)?
                        .to_vec1()
                };
                Ok(Layer {
                    input_weight: transposed(
                        vb.get((4 * hidden, input), &format!("weight_ih_l{k}"))?,
                    )?,
                    hidden_weight: transposed(
                        vb.get((4 * hidden, hidden), &format!("weight_hh_l{k}"))?,
                    )?,
                    input_bias: vector("bias_ih")?,
                    hidden_bias: vector("bias_hh")?,
                    input,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers, hidden })
    }

    /// The last layer's hidden state after the last step, `(N, H)`, of `x (N, T, in)`
    /// from zero states.
    pub fn last_hidden(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, steps, features) = x.dims3()?;
        if steps == 0 {
            candle_core::bail!("lstm: no steps");
        }
        let mut sequence: Vec<f32> = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let mut input = features;
        let h_len = self.hidden;
        let gates_len = 4 * h_len;
        let mut h = vec![0f32; batch * h_len];
        for layer in &self.layers {
            if input != layer.input {
                candle_core::bail!("lstm: {input} input features, expected {}", layer.input);
            }
            // Every step's `x W_ih^T + b_ih`, then `+ (h W_hh^T + b_hh)` a step at a time
            // (the reference's order of additions).
            let mut projected = rows_of(&layer.input_bias, batch * steps);
            matmul_accumulate(
                &mut projected,
                &sequence,
                &layer.input_weight,
                batch * steps,
                input,
                gates_len,
            );
            let mut outputs = vec![0f32; batch * steps * h_len];
            let mut c = vec![0f32; batch * h_len];
            h.fill(0.0);
            for step in 0..steps {
                let mut gates = rows_of(&layer.hidden_bias, batch);
                matmul_accumulate(
                    &mut gates,
                    &h,
                    &layer.hidden_weight,
                    batch,
                    h_len,
                    gates_len,
                );
                for n in 0..batch {
                    let from_input = &projected[(n * steps + step) * gates_len..][..gates_len];
                    let sums = &mut gates[n * gates_len..][..gates_len];
                    sums.iter_mut().zip(from_input).for_each(|(s, x)| *s += x);
                    let (c, h) = (&mut c[n * h_len..][..h_len], &mut h[n * h_len..][..h_len]);
                    kernels::vectorized(
                        #[inline(always)]
                        || update(sums, c, h),
                    );
                    outputs[(n * steps + step) * h_len..][..h_len].copy_from_slice(h);
                }
            }
            sequence = outputs;
            input = h_len;
        }
        Tensor::from_vec(h, (batch, h_len), x.device())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::rnn::{LSTM, LSTMConfig, RNN};
    use std::collections::HashMap;

    /// Against candle's `LSTM` (what other devices run), for one and several sequences,
    /// one and several steps.
    #[test]
    fn matches_candle_lstm() -> Result<()> {
        let device = Device::Cpu;
        let (input, hidden, layers) = (5, 8, 3);
        let mut tensors = HashMap::new();
        for k in 0..layers {
            let width = if k == 0 { input } else { hidden };
            let mut add = |name: String, shape: &[usize]| -> Result<()> {
                tensors.insert(name, Tensor::randn(0f32, 0.5, shape, &device)?);
                Ok(())
            };
            add(format!("weight_ih_l{k}"), &[4 * hidden, width])?;
            add(format!("weight_hh_l{k}"), &[4 * hidden, hidden])?;
            add(format!("bias_ih_l{k}"), &[4 * hidden])?;
            add(format!("bias_hh_l{k}"), &[4 * hidden])?;
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let ours = HostLstm::new(input, hidden, layers, vb.clone())?;
        let candle: Vec<LSTM> = (0..layers)
            .map(|k| {
                let width = if k == 0 { input } else { hidden };
                let config = LSTMConfig {
                    layer_idx: k,
                    ..Default::default()
                };
                candle_nn::rnn::lstm(width, hidden, config, vb.clone())
            })
            .collect::<Result<_>>()?;
        for (batch, steps) in [(1, 1), (3, 7)] {
            let x = Tensor::randn(0f32, 1.0, (batch, steps, input), &device)?;
            let mut sequence = x.clone();
            let mut last = None;
            for layer in &candle {
                let states = layer.seq(&sequence)?;
                last = states.last().map(|s| s.h().clone());
                sequence = layer.states_to_tensor(&states)?;
            }
            let want = last.expect("three layers");
            let diff = (ours.last_hidden(&x)? - want)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(diff < 1e-5, "batch {batch}, steps {steps}: {diff}");
        }
        Ok(())
    }
}
