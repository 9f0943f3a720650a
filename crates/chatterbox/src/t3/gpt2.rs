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

use super::attention::{self, KvFormat};
use super::precision::Precision;
use crate::config::Gpt2Config;
use crate::kernels::CpuValues;
use crate::matvec::{self, Int8Matrix, Weights};

/// Rows of an f32 [`Conv1D`] input up to which [`matvec`] runs it, beyond which gemm does
/// (measured at full size on 2 cores): decode steps (a few sequences, one position each)
/// go through matvec. `int8` always does: its integer dot products beat gemm over the
/// dequantized weights even for a prefill of 256 positions (1.0 s against 1.6 s).
const F32_MATVEC_ROWS: usize = 16;

/// HF `Conv1D`: a linear layer whose checkpoint weight is stored `(in, out)`.
#[derive(Debug, Clone)]
pub(crate) enum Conv1D {
    /// 16-bit floats, or f32 off the CPU: candle's matmul.
    Dense {
        /// (in, out)
        weight: Tensor,
        bias: Tensor,
    },
    /// f32 on the CPU: [`matvec`] for decode steps, gemm for a long prefill.
    Rows {
        /// (out, in), contiguous.
        weight: Tensor,
        bias: Tensor,
    },
    /// `int8` on the CPU: [`matvec`].
    Int8 { weight: Int8Matrix, bias: Tensor },
    /// Candle's block formats (`int4`, and `int8` off the CPU).
    Quantized {
        /// (out, in), as candle's quantized matmul wants it.
        weight: QMatMul,
        bias: Tensor,
    },
}

impl Conv1D {
    /// A layer whose input width is not a multiple of the format's block (only tiny
    /// test models) stays f32. The quantized weights live on the weights' device
    /// (candle quantizes on the CPU and uploads).
    fn new(in_dim: usize, out_dim: usize, precision: Precision, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((in_dim, out_dim), "weight")?;
        let bias = vb.get(out_dim, "bias")?;
        Self::from_weights(weight, bias, precision)
    }

    /// The layer of `weight` (in, out) and `bias` (out) in `precision`.
    pub(crate) fn from_weights(weight: Tensor, bias: Tensor, precision: Precision) -> Result<Self> {
        let (in_dim, out_dim) = weight.dims2()?;
        let on_cpu = weight.device().is_cpu();
        if weight.dtype() != DType::F32 {
            return Ok(Self::Dense { weight, bias });
        }
        let rows = weight.t()?.contiguous()?;
        if precision == Precision::Int8 && on_cpu && in_dim.is_multiple_of(matvec::BLOCK) {
            let values = rows.flatten_all()?.to_vec1::<f32>()?;
            let weight = Int8Matrix::quantize(&values, out_dim, in_dim);
            return Ok(Self::Int8 { weight, bias });
        }
        let format = precision
            .block_format()
            .filter(|f| in_dim.is_multiple_of(f.block_size()));
        let Some(format) = format else {
            return Ok(if on_cpu {
                Self::Rows { weight: rows, bias }
            } else {
                Self::Dense { weight, bias }
            });
        };
        let weight = QMatMul::from_qtensor(QTensor::quantize(&rows, format)?)?;
        // Kernels may repack the weights on first use: do it now, not on the first request.
        weight.forward(&Tensor::zeros((1, in_dim), DType::F32, bias.device())?)?;
        Ok(Self::Quantized { weight, bias })
    }
}

/// `x` (m, in) times `weights`, plus `bias`, through [`matvec`] on the CPU.
fn matvec_forward(x: &Tensor, weights: Weights, bias: &Tensor) -> Result<Tensor> {
    let m = x.dim(0)?;
    let x = x.contiguous()?;
    let (x, bias) = (CpuValues::of(&x)?, CpuValues::of(bias)?);
    let y = matvec::matmul_t(x.get()?, m, weights, bias.get()?);
    Tensor::from_vec(y, (m, weights.shape().0), &candle_core::Device::Cpu)
}

impl Module for Conv1D {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let x = x.reshape((b * t, d))?;
        let rows = b * t;
        let y = match self {
            Self::Dense { weight, bias } => x.matmul(weight)?.broadcast_add(bias)?,
            Self::Rows { weight, bias } if rows > F32_MATVEC_ROWS => {
                x.matmul(&weight.t()?)?.broadcast_add(bias)?
            }
            Self::Rows { weight, bias } => {
                let (rows, cols) = weight.dims2()?;
                let values = CpuValues::of(weight)?;
                let values = values.get()?;
                matvec_forward(&x, Weights::F32 { values, rows, cols }, bias)?
            }
            Self::Int8 { weight, bias } => matvec_forward(&x, Weights::Int8(weight), bias)?,
            Self::Quantized { weight, bias } => weight.forward(&x)?.broadcast_add(bias)?,
        };
        y.reshape((b, t, ()))
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
        caches: &mut [&mut LayerCache],
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let qkv = self.c_attn.forward(x)?;
        let out = match caches.first() {
            Some(LayerCache::Cpu(_)) => {
                let mut cpu = caches
                    .iter_mut()
                    .map(|cache| match cache {
                        LayerCache::Cpu(cache) => Ok(cache),
                        LayerCache::Tensors(_) => candle_core::bail!("mixed KV caches"),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let values = CpuValues::of(&qkv)?;
                let out = attention::attend(values.get()?, t, &mut cpu);
                Tensor::from_vec(out, (b, t, d), x.device())?
            }
            _ => self.attend_tensors(&qkv, masks, caches)?,
        };
        self.c_proj.forward(&out)
    }

    /// The attention of [`Attention::forward`] in candle's ops (off the CPU, or in 16-bit
    /// floats).
    fn attend_tensors(
        &self,
        qkv: &Tensor,
        masks: &[Option<Tensor>],
        caches: &mut [&mut LayerCache],
    ) -> Result<Tensor> {
        let (b, t, d3) = qkv.dims3()?;
        let d = d3 / 3;
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
                let LayerCache::Tensors(cache) = cache else {
                    candle_core::bail!("mixed KV caches");
                };
                let (k, v) = cache.append(&k.narrow(0, row, 1)?, &v.narrow(0, row, 1)?)?;
                let scores = (q.narrow(0, row, 1)?.matmul(&k.t()?)? / scale)?;
                let scores = match mask {
                    Some(mask) => scores.broadcast_add(mask)?,
                    None => scores,
                };
                candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&rows, 0)?.transpose(1, 2)?.reshape((b, t, d))
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
        // `gelu_new` is the tanh approximation.
        self.c_proj
            .forward(&crate::kernels::gelu_tanh(&self.c_fc.forward(x)?)?)
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
        caches: &mut [&mut LayerCache],
    ) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln_1.forward(x)?, masks, caches)?)?;
        &x + self.mlp.forward(&self.ln_2.forward(&x)?)?
    }
}

/// Keys and values of one layer for one sequence.
#[derive(Debug, Clone)]
enum LayerCache {
    /// f32 activations on the CPU: [`attention`]'s buffers, in half precision when the
    /// weights are quantized.
    Cpu(attention::KvCache),
    /// Off the CPU or in 16-bit floats: candle's, (1, heads, capacity, head_dim).
    Tensors(KvCache),
}

impl LayerCache {
    fn len(&self) -> usize {
        match self {
            Self::Cpu(cache) => cache.len(),
            Self::Tensors(cache) => cache.current_seq_len(),
        }
    }
}

/// Keys and values of one sequence's positions seen so far, one preallocated
/// buffer per layer.
#[derive(Debug, Clone)]
pub struct Gpt2Cache {
    layers: Vec<LayerCache>,
    capacity: usize,
}

impl Gpt2Cache {
    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, LayerCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The keys and values cached so far, to start other sequences from; `None` off
    /// the CPU or in 16-bit floats.
    pub fn prefix(&self) -> Option<Gpt2Prefix> {
        let layers = self.layers.iter().map(|layer| match layer {
            LayerCache::Cpu(cache) => Some(cache.with_room(cache.len())),
            LayerCache::Tensors(_) => None,
        });
        Some(Gpt2Prefix {
            layers: layers.collect::<Option<_>>()?,
        })
    }
}

/// The cached keys and values of a sequence's first positions (see [`Gpt2Cache::prefix`]).
#[derive(Debug, Clone)]
pub struct Gpt2Prefix {
    layers: Vec<attention::KvCache>,
}

impl Gpt2Prefix {
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, attention::KvCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A cache of `capacity` positions that starts with these.
    pub fn to_cache(&self, capacity: usize) -> Result<Gpt2Cache> {
        if capacity < self.len() {
            candle_core::bail!(
                "a cache of {capacity} positions cannot hold a prefix of {}",
                self.len()
            );
        }
        Ok(Gpt2Cache {
            layers: self
                .layers
                .iter()
                .map(|layer| LayerCache::Cpu(layer.with_room(capacity)))
                .collect(),
            capacity,
        })
    }
}

/// GPT-2 over input embeddings. The weights are shared; each sequence carries
/// its own [`Gpt2Cache`].
#[derive(Debug, Clone)]
pub struct Gpt2 {
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    n_head: usize,
    kv_format: KvFormat,
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
            n_head: cfg.n_head,
            kv_format: match precision {
                Precision::Int8 | Precision::Int4 => KvFormat::F16,
                Precision::Fp32 | Precision::Bf16 | Precision::Fp16 => KvFormat::F32,
            },
        })
    }

    /// Learned positions, hence the longest sequence.
    pub fn n_positions(&self) -> usize {
        self.wpe.dims()[0]
    }

    /// Whether its caches are [`attention`]'s (f32 on the CPU), which
    /// [`Gpt2Cache::prefix`] can copy.
    pub fn caches_on_cpu(&self) -> bool {
        self.wpe.device().is_cpu() && self.wpe.dtype() == DType::F32
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
        let on_cpu = self.caches_on_cpu();
        let (heads, head_dim) = (self.n_head, self.wpe.dim(1)? / self.n_head);
        let layer = || {
            if on_cpu {
                LayerCache::Cpu(attention::KvCache::new(
                    self.kv_format,
                    heads,
                    head_dim,
                    capacity,
                ))
            } else {
                LayerCache::Tensors(KvCache::new(2, capacity))
            }
        };
        Ok(Gpt2Cache {
            layers: self.blocks.iter().map(|_| layer()).collect(),
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
            let in_tensors = matches!(cache.layers.first(), Some(LayerCache::Tensors(_)));
            masks.push(if t > 1 && in_tensors {
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
            let mut layer_caches: Vec<&mut LayerCache> = caches
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
