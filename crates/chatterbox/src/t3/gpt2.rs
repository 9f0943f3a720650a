//! GPT-2 backbone of T3 (HF `GPT2Model`, fed `inputs_embeds`): learned absolute
//! positions (`wpe`), pre-LN blocks with tanh-GELU MLPs, final `ln_f`, and a
//! preallocated KV cache for incremental decoding. `wte` is in the checkpoint but
//! T3 never uses it (it embeds its own text and speech tokens). The projection
//! weights are f32, 16-bit floats or quantized at load ([`Precision`]). Several
//! sequences, each with its own cache and length, can run one step together
//! ([`Gpt2::forward_batch`]).

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::kv_cache::KvCache;
use candle_nn::{LayerNorm, VarBuilder, layer_norm};

use super::precision::Precision;
use crate::config::Gpt2Config;

/// HF `Conv1D`: a linear layer whose checkpoint weight is stored `(in, out)`.
#[derive(Debug, Clone)]
enum Conv1D {
    Dense {
        /// (in, out)
        weight: Tensor,
        bias: Tensor,
    },
    Quantized {
        /// (out, in), as candle's quantized matmul wants it.
        weight: QMatMul,
        bias: Tensor,
    },
}

impl Conv1D {
    /// A layer whose input width is not a multiple of the format's block (only tiny
    /// test models), or whose weights are not f32, stays as loaded. The quantized
    /// weights live on the weights' device (candle quantizes on the CPU and uploads).
    fn new(in_dim: usize, out_dim: usize, precision: Precision, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((in_dim, out_dim), "weight")?;
        let bias = vb.get(out_dim, "bias")?;
        let format = precision
            .block_format()
            .filter(|f| in_dim.is_multiple_of(f.block_size()))
            .filter(|_| weight.dtype() == DType::F32);
        let Some(format) = format else {
            return Ok(Self::Dense { weight, bias });
        };
        let quantized = QTensor::quantize(&weight.t()?.contiguous()?, format)?;
        let weight = QMatMul::from_qtensor(quantized)?;
        // Kernels may repack the weights on first use: do it now, not on the first request.
        weight.forward(&Tensor::zeros((1, in_dim), DType::F32, bias.device())?)?;
        Ok(Self::Quantized { weight, bias })
    }
}

impl Module for Conv1D {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let x = x.reshape((b * t, d))?;
        let (y, bias) = match self {
            Self::Dense { weight, bias } => (x.matmul(weight)?, bias),
            Self::Quantized { weight, bias } => (weight.forward(&x)?, bias),
        };
        y.broadcast_add(bias)?.reshape((b, t, ()))
    }
}

#[derive(Debug, Clone)]
struct Attention {
    c_attn: Conv1D,
    c_proj: Conv1D,
    n_head: usize,
    head_dim: usize,
}

impl Attention {
    fn new(cfg: &Gpt2Config, precision: Precision, vb: VarBuilder) -> Result<Self> {
        let d = cfg.n_embd;
        Ok(Self {
            c_attn: Conv1D::new(d, 3 * d, precision, vb.pp("c_attn"))?,
            c_proj: Conv1D::new(d, d, precision, vb.pp("c_proj"))?,
            n_head: cfg.n_head,
            head_dim: d / cfg.n_head,
        })
    }

    /// `x`: (B, T, D) for the T newest positions of B sequences, row i cached in
    /// `caches[i]`. The projections run once for all rows; each row attends to its
    /// own cached positions, and within the new ones as `masks[i]` (T, past + T)
    /// allows.
    fn forward(
        &self,
        x: &Tensor,
        masks: &[Option<Tensor>],
        caches: &mut [&mut KvCache],
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let qkv = self.c_attn.forward(x)?;
        let split = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * d, d)?
                .reshape((b, t, self.n_head, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scale = (self.head_dim as f64).sqrt();
        let rows = caches
            .iter_mut()
            .zip(masks)
            .enumerate()
            .map(|(row, (cache, mask))| {
                let (k, v) = cache.append(&k.narrow(0, row, 1)?, &v.narrow(0, row, 1)?)?;
                let scores = (q.narrow(0, row, 1)?.matmul(&k.t()?)? / scale)?;
                let scores = match mask {
                    Some(mask) => scores.broadcast_add(mask)?,
                    None => scores,
                };
                candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)
            })
            .collect::<Result<Vec<_>>>()?;
        let out = Tensor::cat(&rows, 0)?.transpose(1, 2)?.reshape((b, t, d))?;
        self.c_proj.forward(&out)
    }
}

/// (T, past + T) additive mask: new position i sees cached positions and new ones <= i.
fn causal_mask(t: usize, past: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mask: Vec<f32> = (0..t)
        .flat_map(|i| {
            (0..past + t).map(move |j| {
                if j <= past + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::from_vec(mask, (t, past + t), device)
}

#[derive(Debug, Clone)]
struct Mlp {
    c_fc: Conv1D,
    c_proj: Conv1D,
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // `gelu_new` is the tanh approximation, which is candle's `gelu`.
        self.c_proj.forward(&self.c_fc.forward(x)?.gelu()?)
    }
}

#[derive(Debug, Clone)]
struct Block {
    ln_1: LayerNorm,
    attn: Attention,
    ln_2: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn new(cfg: &Gpt2Config, precision: Precision, vb: VarBuilder) -> Result<Self> {
        let d = cfg.n_embd;
        let eps = cfg.layer_norm_epsilon;
        let mlp = vb.pp("mlp");
        Ok(Self {
            ln_1: layer_norm(d, eps, vb.pp("ln_1"))?,
            attn: Attention::new(cfg, precision, vb.pp("attn"))?,
            ln_2: layer_norm(d, eps, vb.pp("ln_2"))?,
            mlp: Mlp {
                c_fc: Conv1D::new(d, 4 * d, precision, mlp.pp("c_fc"))?,
                c_proj: Conv1D::new(4 * d, d, precision, mlp.pp("c_proj"))?,
            },
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        masks: &[Option<Tensor>],
        caches: &mut [&mut KvCache],
    ) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln_1.forward(x)?, masks, caches)?)?;
        &x + self.mlp.forward(&self.ln_2.forward(&x)?)?
    }
}

/// Keys and values of one sequence's positions seen so far, one preallocated
/// buffer per layer (1, heads, capacity, head_dim).
#[derive(Debug, Clone)]
pub struct Gpt2Cache {
    layers: Vec<KvCache>,
    capacity: usize,
}

impl Gpt2Cache {
    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |c| c.current_seq_len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// GPT-2 over input embeddings. The weights are shared; each sequence carries
/// its own [`Gpt2Cache`].
#[derive(Debug, Clone)]
pub struct Gpt2 {
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
}

impl Gpt2 {
    /// `vb` points at the `tfmr` prefix; f32 weights.
    pub fn new(cfg: &Gpt2Config, vb: VarBuilder) -> Result<Self> {
        Self::with_precision(cfg, Precision::Fp32, vb)
    }

    /// [`Gpt2::new`] with the projection weights in `precision`.
    pub fn with_precision(cfg: &Gpt2Config, precision: Precision, vb: VarBuilder) -> Result<Self> {
        if !cfg.n_embd.is_multiple_of(cfg.n_head) {
            candle_core::bail!(
                "GPT-2 n_embd {} is not a multiple of n_head {}",
                cfg.n_embd,
                cfg.n_head
            );
        }
        Ok(Self {
            wpe: vb.get((cfg.n_positions, cfg.n_embd), "wpe.weight")?,
            blocks: (0..cfg.n_layer)
                .map(|i| Block::new(cfg, precision, vb.pp(format!("h.{i}"))))
                .collect::<Result<_>>()?,
            ln_f: layer_norm(cfg.n_embd, cfg.layer_norm_epsilon, vb.pp("ln_f"))?,
        })
    }

    /// Learned positions, hence the longest sequence.
    pub fn n_positions(&self) -> usize {
        self.wpe.dims()[0]
    }

    /// An empty cache for a sequence of at most `capacity` positions (allocated
    /// once, on the first forward).
    pub fn new_cache(&self, capacity: usize) -> Result<Gpt2Cache> {
        if capacity > self.n_positions() {
            candle_core::bail!(
                "GPT-2 sequence of {capacity} positions exceeds its {} learned positions",
                self.n_positions()
            );
        }
        Ok(Gpt2Cache {
            layers: self
                .blocks
                .iter()
                .map(|_| KvCache::new(2, capacity))
                .collect(),
            capacity,
        })
    }

    /// Runs `embeds` (1, T, D) at the positions following the cached ones and
    /// returns every hidden state: index 0 is embeds + positions, index k the
    /// output of block k - 1, and the last one has `ln_f` applied (as HF's
    /// `output_hidden_states`).
    pub fn forward_all(&self, embeds: &Tensor, cache: &mut Gpt2Cache) -> Result<Vec<Tensor>> {
        self.forward_all_batch(embeds, &mut [cache])
    }

    /// Last hidden state (after `ln_f`) for `embeds` (1, T, D).
    pub fn forward(&self, embeds: &Tensor, cache: &mut Gpt2Cache) -> Result<Tensor> {
        self.forward_batch(embeds, &mut [cache])
    }

    /// Last hidden states (B, T, D) for `embeds` (B, T, D) of B sequences, row i
    /// continuing the sequence of `caches[i]` at its own position. The weights are
    /// read once for all rows, which is what makes decoding several sequences
    /// together faster than one after another.
    pub fn forward_batch(&self, embeds: &Tensor, caches: &mut [&mut Gpt2Cache]) -> Result<Tensor> {
        let mut states = self.forward_all_batch(embeds, caches)?;
        Ok(states
            .pop()
            .expect("GPT-2 returns at least the final state"))
    }

    /// [`Gpt2::forward_all`] for B sequences, as [`Gpt2::forward_batch`].
    pub fn forward_all_batch(
        &self,
        embeds: &Tensor,
        caches: &mut [&mut Gpt2Cache],
    ) -> Result<Vec<Tensor>> {
        let (b, t, _) = embeds.dims3()?;
        if b != caches.len() {
            candle_core::bail!("GPT-2 got {b} sequences and {} caches", caches.len());
        }
        let device = embeds.device();
        let mut positions = Vec::with_capacity(b * t);
        let mut masks = Vec::with_capacity(b);
        for cache in caches.iter() {
            let start = cache.len();
            if start + t > cache.capacity {
                candle_core::bail!(
                    "GPT-2 sequence of {} positions exceeds its cache of {}",
                    start + t,
                    cache.capacity
                );
            }
            positions.extend((start..start + t).map(|p| p as u32));
            masks.push(if t > 1 {
                Some(causal_mask(t, start, device)?.to_dtype(embeds.dtype())?)
            } else {
                None
            });
        }
        let positions = Tensor::from_vec(positions, b * t, device)?;
        let wpe = self
            .wpe
            .index_select(&positions, 0)?
            .reshape(embeds.shape())?;
        let mut x = (embeds + wpe)?;
        let mut states = Vec::with_capacity(self.blocks.len() + 1);
        for (layer, block) in self.blocks.iter().enumerate() {
            states.push(x.clone());
            let mut layer_caches: Vec<&mut KvCache> = caches
                .iter_mut()
                .map(|cache| &mut cache.layers[layer])
                .collect();
            x = block.forward(&x, &masks, &mut layer_caches)?;
        }
        states.push(self.ln_f.forward(&x)?);
        Ok(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_mask_sees_past_and_earlier_new_positions() {
        let m = causal_mask(2, 3, &candle_core::Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(m[0][..4], [0.0; 4]);
        assert_eq!(m[0][4], f32::NEG_INFINITY);
        assert_eq!(m[1], [0.0; 5]);
    }
}
