//! ConditionalDecoder: the causal 1-D U-Net that estimates the meanflow velocity
//! (`chatterbox/models/s3gen/decoder.py`, `causal=True`, `meanflow=True`).
//!
//! Tensors are channels-first `(batch, channels, frames)` as in the reference; the
//! transformer blocks work on `(batch, frames, channels)`.

mod conv;

use candle_core::{D, DType, Module, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};

use super::accumulate::{AccumulatingLinear, BF16_MIN_ROWS, Products};
use super::preceding::Preceding;
use super::precision::S3GenPrecision;
use crate::config::DecoderConfig;
use crate::matmul_bf16;
use conv::ChannelsFirstConv1d;

/// LayerNorm epsilon of every norm in the decoder (PyTorch's default).
const LAYER_NORM_EPS: f64 = 1e-5;
/// Scale applied to t before the sinusoidal embedding (`SinusoidalPosEmb`, `scale=1000`).
const TIME_EMBEDDING_SCALE: f32 = 1000.0;
/// Additive attention bias of padded keys (`mask_to_bias`).
const MASKED_KEY_BIAS: f64 = -1.0e10;
/// Kernel size of every causal convolution in the U-Net.
const CONV_KERNEL: usize = 3;
/// Attention scores of all heads at once up to this many (16 MB of f32; a stream's window
/// after its prompt), one head at a time beyond (a one-shot synthesis: 8 x 1000 x 1000).
const ALL_HEADS_SCORES: usize = 1 << 22;
/// The feed-forward hidden size is this many times the block width (diffusers `FeedForward`).
const FEED_FORWARD_MULT: usize = 4;

/// `SinusoidalPosEmb(dim)` of `scale * t`: `[sin(scale t f_i) | cos(scale t f_i)]` with
/// `f_i = exp(-i ln(10000) / (dim/2 - 1))`. `t` holds one time per batch row; the
/// result is `(batch, dim)`. Computed in f32 in the reference's operation order.
pub fn sinusoidal_embedding(t: &Tensor, dim: usize) -> candle_core::Result<Tensor> {
    if !dim.is_multiple_of(2) || dim < 4 {
        candle_core::bail!("sinusoidal embedding needs an even size of at least 4, got {dim}");
    }
    let half = dim / 2;
    let step = -((10000f64).ln() / (half - 1) as f64) as f32;
    let times = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut values = Vec::with_capacity(times.len() * dim);
    for time in &times {
        let scaled = TIME_EMBEDDING_SCALE * time;
        let args: Vec<f32> = (0..half)
            .map(|i| scaled * (i as f32 * step).exp())
            .collect();
        values.extend(args.iter().map(|a| a.sin()));
        values.extend(args.iter().map(|a| a.cos()));
    }
    Tensor::from_vec(values, (times.len(), dim), t.device())
}

/// diffusers `TimestepEmbedding`: Linear, SiLU, Linear.
struct TimestepEmbedding {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimestepEmbedding {
    fn new(in_dim: usize, embed_dim: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            linear_1: candle_nn::linear(in_dim, embed_dim, vb.pp("linear_1"))?,
            linear_2: candle_nn::linear(embed_dim, embed_dim, vb.pp("linear_2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.linear_2.forward(&self.linear_1.forward(x)?.silu()?)
    }
}

/// Conv1d padded on the left only (`kernel - 1` zeros), so frame i sees frames <= i.
struct CausalConv1d {
    conv: ChannelsFirstConv1d,
    left_pad: usize,
}

impl CausalConv1d {
    fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            conv: ChannelsFirstConv1d::new(in_channels, out_channels, kernel, vb)?,
            left_pad: kernel - 1,
        })
    }

    fn forward(&self, x: &Tensor, preceding: &mut Preceding) -> candle_core::Result<Tensor> {
        self.conv.forward(&preceding.conv_input(x, self.left_pad)?)
    }
}

/// LayerNorm over the channels of a `(batch, channels, frames)` tensor.
fn channel_layer_norm(norm: &LayerNorm, x: &Tensor) -> candle_core::Result<Tensor> {
    norm.forward(&x.transpose(1, 2)?.contiguous()?)?
        .transpose(1, 2)
}

/// `CausalBlock1D`: masked causal conv, channel LayerNorm, Mish, masked again.
struct CausalBlock1D {
    conv: CausalConv1d,
    norm: LayerNorm,
}

impl CausalBlock1D {
    fn new(dim: usize, dim_out: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let vb = vb.pp("block");
        Ok(Self {
            conv: CausalConv1d::new(dim, dim_out, CONV_KERNEL, vb.pp("0"))?,
            norm: candle_nn::layer_norm(dim_out, LAYER_NORM_EPS, vb.pp("2"))?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        preceding: &mut Preceding,
    ) -> candle_core::Result<Tensor> {
        let h = self.conv.forward(&x.broadcast_mul(mask)?, preceding)?;
        let h = crate::kernels::mish(&channel_layer_norm(&self.norm, &h)?)?;
        h.broadcast_mul(mask)
    }
}

/// `CausalResnetBlock1D`: two causal blocks with the time embedding added between
/// them, plus a 1x1 residual projection.
struct CausalResnetBlock1D {
    time_proj: Linear,
    block1: CausalBlock1D,
    block2: CausalBlock1D,
    res_conv: ChannelsFirstConv1d,
}

impl CausalResnetBlock1D {
    fn new(
        dim: usize,
        dim_out: usize,
        time_embed_dim: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            time_proj: candle_nn::linear(time_embed_dim, dim_out, vb.pp("mlp.1"))?,
            block1: CausalBlock1D::new(dim, dim_out, vb.pp("block1"))?,
            block2: CausalBlock1D::new(dim_out, dim_out, vb.pp("block2"))?,
            res_conv: ChannelsFirstConv1d::new(dim, dim_out, 1, vb.pp("res_conv"))?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        time_emb: &Tensor,
        preceding: &mut Preceding,
    ) -> candle_core::Result<Tensor> {
        let h = self.block1.forward(x, mask, preceding)?;
        let time = self
            .time_proj
            .forward(&crate::kernels::mish(time_emb)?)?
            .unsqueeze(D::Minus1)?;
        let h = self
            .block2
            .forward(&h.broadcast_add(&time)?, mask, preceding)?;
        h + self.res_conv.forward(&x.broadcast_mul(mask)?)?
    }
}

/// diffusers `Attention` as self-attention: bias-free q/k/v, `to_out.0` with bias,
/// softmax(q k^T / sqrt(head_dim) + key bias) v.
struct SelfAttention {
    to_q: AccumulatingLinear,
    to_k: AccumulatingLinear,
    to_v: AccumulatingLinear,
    to_out: AccumulatingLinear,
    num_heads: usize,
    head_dim: usize,
    /// Scores and weighted values in bf16 ([`attention_bf16`]) for [`BF16_MIN_ROWS`]
    /// queries or more (fewer: packing the keys and values costs what bf16 saves).
    bf16: bool,
}

impl SelfAttention {
    fn new(
        dim: usize,
        num_heads: usize,
        head_dim: usize,
        precision: S3GenPrecision,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let inner = num_heads * head_dim;
        // The projections stay near f32 in every precision: rounded to bf16 too, a random
        // full-size checkpoint's waveform was 28.3 dB from fp32's, under the 30 dB gate.
        let products = Products::near_f32(precision, vb.device());
        let no_bias = |name| AccumulatingLinear::load(dim, inner, false, products, vb.pp(name));
        Ok(Self {
            to_q: no_bias("to_q")?,
            to_k: no_bias("to_k")?,
            to_v: no_bias("to_v")?,
            to_out: AccumulatingLinear::load(inner, dim, true, products, vb.pp("to_out.0"))?,
            num_heads,
            head_dim,
            bf16: precision.bf16_products_on(vb.device()),
        })
    }

    /// `x`: `(batch, frames, dim)` after the frames of `preceding`; `key_bias`:
    /// `(batch, 1, 1, frames)`, `None` when no key is masked (always, after a prompt).
    /// One head at a time when the scores of all heads would be large.
    fn forward(
        &self,
        x: &Tensor,
        key_bias: Option<&Tensor>,
        preceding: &mut Preceding,
    ) -> candle_core::Result<Tensor> {
        let (batch, frames, _) = x.dims3()?;
        let heads = |t: Tensor| {
            t.reshape((batch, frames, self.num_heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let q = heads((self.to_q.forward(x)? * scale)?)?;
        let (k, v) =
            preceding.keys_values(heads(self.to_k.forward(x)?)?, heads(self.to_v.forward(x)?)?)?;
        if key_bias.is_some() && k.dim(2)? != frames {
            candle_core::bail!("decoder: padded frames cannot follow a prompt");
        }
        if self.bf16 && frames >= BF16_MIN_ROWS {
            return self.to_out.forward(&attention_bf16(&q, &k, &v, key_bias)?);
        }
        let scores_len = self.num_heads * frames * k.dim(2)?;
        if scores_len <= ALL_HEADS_SCORES {
            let scores = q.matmul(&k.t()?)?;
            let scores = match key_bias {
                Some(bias) => scores.broadcast_add(bias)?,
                None => scores,
            };
            let out = crate::kernels::softmax_last_dim(&scores)?
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((batch, frames, self.num_heads * self.head_dim))?;
            return self.to_out.forward(&out);
        }
        let per_head = (0..self.num_heads)
            .map(|h| {
                let scores = q.narrow(1, h, 1)?.matmul(&k.narrow(1, h, 1)?.t()?)?;
                let scores = match key_bias {
                    Some(bias) => scores.broadcast_add(bias)?,
                    None => scores,
                };
                crate::kernels::softmax_last_dim(&scores)?.matmul(&v.narrow(1, h, 1)?)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let out = Tensor::cat(&per_head, 1)?.transpose(1, 2)?.reshape((
            batch,
            frames,
            self.num_heads * self.head_dim,
        ))?;
        self.to_out.forward(&out)
    }
}

/// `softmax(q k^T + key_bias) v` of `(batch, heads, frames, head_dim)` tensors in bf16
/// products ([`matmul_bf16::attention`]); returns `(batch, frames, heads * head_dim)`.
fn attention_bf16(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    key_bias: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (batch, heads, frames, head_dim) = q.dims4()?;
    let keys = k.dim(2)?;
    let values = |t: &Tensor| t.contiguous()?.flatten_all()?.to_vec1::<f32>();
    let (q_all, k_all, v_all) = (values(q)?, values(k)?, values(v)?);
    let key_bias = key_bias.map(values).transpose()?;
    let (width, keys_len) = (heads * head_dim, heads * keys * head_dim);
    let mut out = vec![0f32; batch * frames * width];
    for (b, out) in out.chunks_exact_mut(frames * width).enumerate() {
        matmul_bf16::attention(
            &q_all[b * frames * width..][..frames * width],
            &k_all[b * keys_len..][..keys_len],
            &v_all[b * keys_len..][..keys_len],
            key_bias.as_ref().map(|bias| &bias[b * keys..][..keys]),
            heads,
            head_dim,
            out,
        );
    }
    Tensor::from_vec(out, (batch, frames, width), q.device())
}

/// diffusers `BasicTransformerBlock` (layer_norm, no cross-attention): pre-norm
/// self-attention and pre-norm feed-forward (Linear, exact erf GELU, Linear), each residual.
struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: SelfAttention,
    norm3: LayerNorm,
    ff_in: AccumulatingLinear,
    ff_out: AccumulatingLinear,
}

impl BasicTransformerBlock {
    fn new(
        cfg: &DecoderConfig,
        dim: usize,
        precision: S3GenPrecision,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let ff_dim = dim * FEED_FORWARD_MULT;
        let (heads, head_dim) = (cfg.num_heads, cfg.attention_head_dim);
        Ok(Self {
            norm1: candle_nn::layer_norm(dim, LAYER_NORM_EPS, vb.pp("norm1"))?,
            attn1: SelfAttention::new(dim, heads, head_dim, precision, vb.pp("attn1"))?,
            norm3: candle_nn::layer_norm(dim, LAYER_NORM_EPS, vb.pp("norm3"))?,
            ff_in: AccumulatingLinear::new(dim, ff_dim, precision, vb.pp("ff.net.0.proj"))?,
            ff_out: AccumulatingLinear::new(ff_dim, dim, precision, vb.pp("ff.net.2"))?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        key_bias: Option<&Tensor>,
        preceding: &mut Preceding,
    ) -> candle_core::Result<Tensor> {
        let x = (self
            .attn1
            .forward(&self.norm1.forward(x)?, key_bias, preceding)?
            + x)?;
        let ff = self.ff_out.forward(&crate::kernels::gelu_erf(
            &self.ff_in.forward(&self.norm3.forward(&x)?)?,
        )?)?;
        ff + x
    }
}

/// One U-Net stage: a resnet block followed by transformer blocks.
struct Stage {
    resnet: CausalResnetBlock1D,
    transformers: Vec<BasicTransformerBlock>,
}

impl Stage {
    fn new(
        cfg: &DecoderConfig,
        dim: usize,
        dim_out: usize,
        precision: S3GenPrecision,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let transformers = (0..cfg.n_blocks)
            .map(|i| BasicTransformerBlock::new(cfg, dim_out, precision, vb.pp("1").pp(i)))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            resnet: CausalResnetBlock1D::new(dim, dim_out, cfg.time_embed_dim, vb.pp("0"))?,
            transformers,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        key_bias: Option<&Tensor>,
        time_emb: &Tensor,
        preceding: &mut Preceding,
    ) -> candle_core::Result<Tensor> {
        let mut h = self
            .resnet
            .forward(x, mask, time_emb, preceding)?
            .transpose(1, 2)?
            .contiguous()?;
        for block in &self.transformers {
            h = block.forward(&h, key_bias, preceding)?;
        }
        h.transpose(1, 2)?.contiguous()
    }
}

/// The meanflow velocity estimator of Chatterbox Turbo (`flow.decoder.estimator`).
pub struct ConditionalDecoder {
    in_channels: usize,
    time_mlp: TimestepEmbedding,
    time_embed_mixer: Linear,
    down: Stage,
    /// With a single U-Net level the "downsample" is a plain causal conv (`down_blocks.0.2`).
    down_conv: CausalConv1d,
    mid: Vec<Stage>,
    up: Stage,
    /// Likewise the "upsample" is a causal conv (`up_blocks.0.2`).
    up_conv: CausalConv1d,
    final_block: CausalBlock1D,
    final_proj: ChannelsFirstConv1d,
}

impl ConditionalDecoder {
    /// Loads the estimator from `vb` (the checkpoint's `flow.decoder.estimator`).
    /// Supports the Turbo layout: causal, meanflow, a single U-Net level. The transformer
    /// blocks' products run in `precision`.
    pub fn new(
        cfg: &DecoderConfig,
        precision: S3GenPrecision,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        if !cfg.causal || !cfg.meanflow {
            candle_core::bail!(
                "decoder: only the causal meanflow decoder (Chatterbox Turbo) is supported \
                 (causal={}, meanflow={})",
                cfg.causal,
                cfg.meanflow
            );
        }
        let &[width] = cfg.channels.as_slice() else {
            candle_core::bail!(
                "decoder: only a single U-Net level is supported, channels = {:?}",
                cfg.channels
            );
        };
        let time_dim = cfg.time_embed_dim;
        let mid = (0..cfg.num_mid_blocks)
            .map(|i| Stage::new(cfg, width, width, precision, vb.pp("mid_blocks").pp(i)))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            in_channels: cfg.in_channels,
            time_mlp: TimestepEmbedding::new(cfg.in_channels, time_dim, vb.pp("time_mlp"))?,
            time_embed_mixer: candle_nn::linear_no_bias(
                2 * time_dim,
                time_dim,
                vb.pp("time_embed_mixer"),
            )?,
            down: Stage::new(
                cfg,
                cfg.in_channels,
                width,
                precision,
                vb.pp("down_blocks.0"),
            )?,
            down_conv: CausalConv1d::new(width, width, CONV_KERNEL, vb.pp("down_blocks.0.2"))?,
            mid,
            up: Stage::new(cfg, 2 * width, width, precision, vb.pp("up_blocks.0"))?,
            up_conv: CausalConv1d::new(width, width, CONV_KERNEL, vb.pp("up_blocks.0.2"))?,
            final_block: CausalBlock1D::new(width, width, vb.pp("final_block"))?,
            final_proj: ChannelsFirstConv1d::new(width, cfg.out_channels, 1, vb.pp("final_proj"))?,
        })
    }

    /// The mixed time embedding `(batch, time_embed_dim)` of a meanflow step from `t`
    /// to `r` (each `(batch,)`): `mixer([time_mlp(sin(t)) | time_mlp(sin(r))])`.
    pub fn time_embedding(&self, t: &Tensor, r: &Tensor) -> candle_core::Result<Tensor> {
        let t = self
            .time_mlp
            .forward(&sinusoidal_embedding(t, self.in_channels)?)?;
        let r = self
            .time_mlp
            .forward(&sinusoidal_embedding(r, self.in_channels)?)?;
        self.time_embed_mixer.forward(&Tensor::cat(&[t, r], 1)?)
    }

    /// Velocity `(batch, out_channels, frames)` at `x` for the step from `t` to `r`.
    /// `x`, `mu`, `cond`: `(batch, 80, frames)`; `mask`: `(batch, 1, frames)` of 0/1;
    /// `spks`: `(batch, 80)`; `t`, `r`: `(batch,)` or `(1,)`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        mu: &Tensor,
        t: &Tensor,
        spks: &Tensor,
        cond: &Tensor,
        r: &Tensor,
    ) -> candle_core::Result<Tensor> {
        self.forward_after(x, mask, mu, t, spks, cond, r, &mut Preceding::none())
    }

    /// [`ConditionalDecoder::forward`] over frames that follow those of `preceding`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_after(
        &self,
        x: &Tensor,
        mask: &Tensor,
        mu: &Tensor,
        t: &Tensor,
        spks: &Tensor,
        cond: &Tensor,
        r: &Tensor,
        preceding: &mut Preceding,
    ) -> candle_core::Result<Tensor> {
        let time_emb = self.time_embedding(t, r)?;
        let frames = x.dim(D::Minus1)?;
        let spks = spks.unsqueeze(D::Minus1)?.repeat((1, 1, frames))?;
        let x = Tensor::cat(&[x, mu, &spks, cond], 1)?;
        if x.dim(1)? != self.in_channels {
            candle_core::bail!(
                "decoder: x, mu, spks and cond give {} channels, the decoder takes {}",
                x.dim(1)?,
                self.in_channels
            );
        }
        // Padded keys get a large negative bias; every query attends to all valid keys.
        // Without padding the bias is all zeros and is left out.
        let key_bias = if mask.min_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()? < 1.0 {
            Some(((1.0 - mask)? * MASKED_KEY_BIAS)?.unsqueeze(1)?)
        } else {
            None
        };
        let key_bias = key_bias.as_ref();

        let skip = self
            .down
            .forward(&x, mask, key_bias, &time_emb, preceding)?;
        let mut x = self
            .down_conv
            .forward(&skip.broadcast_mul(mask)?, preceding)?;
        for stage in &self.mid {
            x = stage.forward(&x, mask, key_bias, &time_emb, preceding)?;
        }
        let x = Tensor::cat(&[&x.narrow(D::Minus1, 0, skip.dim(D::Minus1)?)?, &skip], 1)?;
        let x = self.up.forward(&x, mask, key_bias, &time_emb, preceding)?;
        let x = self.up_conv.forward(&x.broadcast_mul(mask)?, preceding)?;
        let x = self.final_block.forward(&x, mask, preceding)?;
        self.final_proj
            .forward(&x.broadcast_mul(mask)?)?
            .broadcast_mul(mask)
    }
}
