//! Front half of S3Gen's flow (`CausalMaskedDiffWithXvec.inference`, Turbo
//! settings, `finalize=True`): speech tokens (after the voice's prompt tokens)
//! through the token embedding and the `UpsampleConformerEncoder` to the 80-dim
//! mel prior `mu` at twice the token rate, plus the other inputs of the meanflow
//! decoder: the projected speaker x-vector, the prompt-mel condition and the
//! frame mask.
//!
//! ```text
//! tokens = [prompt tokens | speech tokens]          (B, N)
//! input_embedding(tokens) * pad mask                (B, N, D)
//! embed: Linear -> LayerNorm -> *sqrt(D)  (+ rel-pos table for N)
//! PreLookaheadLayer -> num_blocks conformer layers
//! Upsample1D (x2) -> up_embed (+ table for 2N) -> num_up_blocks conformer layers
//! after_norm -> encoder_proj                        mu: (B, 80, 2N)
//! ```

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{
    Conv1d, Conv1dConfig, Embedding, LayerNorm, Linear, VarBuilder, conv1d, embedding, linear,
};

use super::accumulate::Products;
use super::conformer::{ConformerLayer, length_mask, rel_position_table};
use super::preceding::{Preceding, PromptState};
use super::precision::S3GenPrecision;
use crate::config::{FlowConfig, FlowEncoderConfig};

/// The voice side of S3Gen's conditioning (the reference's `ref_dict`), made once
/// per reference clip.
#[derive(Debug, Clone)]
pub struct FlowPrompt {
    /// `(1, Np)` integer S3 speech tokens of the reference clip (u32 or i64).
    pub tokens: Tensor,
    /// `(1, Tp, 80)` log-mel of the reference clip at 24 kHz, 50 frames/s
    /// (`Tp = 2 * Np` when made by `embed_ref`).
    pub mel: Tensor,
    /// `(1, 192)` CAMPPlus x-vector (not normalised; the flow L2-normalises it).
    pub embedding: Tensor,
}

/// What the meanflow decoder needs, for the whole sequence (prompt frames first).
#[derive(Debug, Clone)]
pub struct DecoderConditioning {
    /// `(B, 80, T)` mel prior from the encoder, `T = 2 * (Np + Ng)`.
    pub mu: Tensor,
    /// `(B, 1, T)` float frame mask, 1 for real frames.
    pub mask: Tensor,
    /// `(B, 80)` projected speaker embedding.
    pub spks: Tensor,
    /// `(B, 80, T)` prompt mel in the first `prompt_frames` frames, zeros after.
    pub cond: Tensor,
    /// Frames of the prompt at the start of `T`; the decoder's output keeps the
    /// frames after them.
    pub prompt_frames: usize,
}

/// `PreLookaheadLayer`: each frame sees `lookahead` future frames through a causal
/// pair of convolutions, added back to the input.
#[derive(Debug, Clone)]
struct PreLookahead {
    conv1: Conv1d,
    conv2: Conv1d,
    lookahead: usize,
}

impl PreLookahead {
    const CONV2_KERNEL: usize = 3;

    fn new(channels: usize, lookahead: usize, vb: VarBuilder) -> Result<Self> {
        let cfg = Conv1dConfig::default();
        Ok(Self {
            conv1: conv1d(channels, channels, lookahead + 1, cfg, vb.pp("conv1"))?,
            conv2: conv1d(channels, channels, Self::CONV2_KERNEL, cfg, vb.pp("conv2"))?,
            lookahead,
        })
    }

    /// `x`: `(B, T, C)`.
    fn forward(&self, x: &Tensor, preceding: &mut Preceding) -> Result<Tensor> {
        let y = x
            .transpose(1, 2)?
            .pad_with_zeros(D::Minus1, 0, self.lookahead)?;
        let y = candle_nn::ops::leaky_relu(&self.conv1.forward(&y)?, 0.01)?;
        let y = preceding.conv_input(&y, Self::CONV2_KERNEL - 1)?;
        let y = self.conv2.forward(&y)?.transpose(1, 2)?;
        y + x
    }
}

/// `Upsample1D`: nearest-neighbour repeat by `stride`, left zero pad of
/// `2 * stride`, convolution of kernel `2 * stride + 1`.
#[derive(Debug, Clone)]
struct Upsample1D {
    conv: Conv1d,
    stride: usize,
}

impl Upsample1D {
    fn new(channels: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let conv = conv1d(
            channels,
            channels,
            2 * stride + 1,
            Conv1dConfig::default(),
            vb.pp("conv"),
        )?;
        Ok(Self { conv, stride })
    }

    /// `x`: `(B, C, T)` to `(B, C, stride * T)`.
    fn forward(&self, x: &Tensor, preceding: &mut Preceding) -> Result<Tensor> {
        let (b, c, t) = x.dims3()?;
        let repeated = x
            .unsqueeze(3)?
            .broadcast_as((b, c, t, self.stride))?
            .reshape((b, c, t * self.stride))?;
        self.conv
            .forward(&preceding.conv_input(&repeated, 2 * self.stride)?)
    }
}

/// `LinearNoSubsampling` with `EspnetRelPositionalEncoding`: `Linear -> LayerNorm
/// -> * sqrt(D)`, returning the relative positional table alongside.
#[derive(Debug, Clone)]
struct LinearEmbed {
    linear: Linear,
    norm: LayerNorm,
    size: usize,
}

impl LinearEmbed {
    fn new(input: usize, size: usize, norm_eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear: linear(input, size, vb.pp("out.0"))?,
            norm: candle_nn::layer_norm(size, norm_eps, vb.pp("out.1"))?,
            size,
        })
    }

    /// `x`: `(B, T, input)` after `before` earlier frames, to `((B, T, D), (1, before +
    /// 2T - 1, D))`, the table's relative positions from `before + T - 1` down to `-(T - 1)`.
    fn forward(&self, x: &Tensor, before: usize) -> Result<(Tensor, Tensor)> {
        // contiguous: candle 0.11's CPU matmul folds the batch of a transposed
        // (B > 1) input into its rows, which mixes up the batches.
        let y = self.norm.forward(&self.linear.forward(&x.contiguous()?)?)?;
        let y = (y * (self.size as f64).sqrt())?;
        let t = x.dim(1)?;
        let table = rel_position_table(before + t, self.size, x.device())?
            .narrow(1, 0, before + 2 * t - 1)?
            .to_dtype(y.dtype())?;
        Ok((y, table))
    }
}

/// CosyVoice's `UpsampleConformerEncoder` (full attention, `static_chunk_size 0`).
#[derive(Debug, Clone)]
pub struct UpsampleConformerEncoder {
    embed: LinearEmbed,
    pre_lookahead_layer: PreLookahead,
    encoders: Vec<ConformerLayer>,
    up_layer: Upsample1D,
    up_embed: LinearEmbed,
    up_encoders: Vec<ConformerLayer>,
    after_norm: LayerNorm,
    stride: usize,
}

impl UpsampleConformerEncoder {
    /// `vb` points at the encoder (`flow.encoder.`); the conformer layers' linear
    /// products run as `products` on the CPU.
    pub fn new(cfg: &FlowEncoderConfig, products: Products, vb: VarBuilder) -> Result<Self> {
        let d = cfg.output_size;
        if !cfg.normalize_before {
            candle_core::bail!(
                "flow encoder: only pre-norm layers (normalize_before) are supported"
            );
        }
        if cfg.input_size != d {
            // up_embed maps the upsampled D channels with a Linear(input_size, D).
            candle_core::bail!(
                "flow encoder: input_size {} must equal output_size {d}",
                cfg.input_size
            );
        }
        let eps = &cfg.layer_norm_eps;
        let layers = |count: usize, vb: VarBuilder| -> Result<Vec<ConformerLayer>> {
            (0..count)
                .map(|i| {
                    ConformerLayer::new(
                        d,
                        cfg.attention_heads,
                        cfg.linear_units,
                        (cfg.key_bias, eps.layers),
                        products,
                        vb.pp(i),
                    )
                })
                .collect()
        };
        Ok(Self {
            embed: LinearEmbed::new(cfg.input_size, d, eps.embed, vb.pp("embed"))?,
            pre_lookahead_layer: PreLookahead::new(
                d,
                cfg.pre_lookahead_len,
                vb.pp("pre_lookahead_layer"),
            )?,
            encoders: layers(cfg.num_blocks, vb.pp("encoders"))?,
            up_layer: Upsample1D::new(d, cfg.upsample_stride, vb.pp("up_layer"))?,
            up_embed: LinearEmbed::new(cfg.input_size, d, eps.embed, vb.pp("up_embed"))?,
            up_encoders: layers(cfg.num_up_blocks, vb.pp("up_encoders"))?,
            after_norm: candle_nn::layer_norm(d, eps.after_norm, vb.pp("after_norm"))?,
            stride: cfg.upsample_stride,
        })
    }

    /// `xs`: `(B, N, D)` embedded tokens with per-sequence `lengths`; returns
    /// `(B, stride * N, D)` and the upsampled lengths.
    pub fn forward(&self, xs: &Tensor, lengths: &[usize]) -> Result<(Tensor, Vec<usize>)> {
        self.forward_observed(xs, lengths, &mut Preceding::none(), &mut |_, _| {})
    }

    /// [`Self::forward`] after the frames of `preceding`, handing each named
    /// intermediate to `observe`.
    fn forward_observed(
        &self,
        xs: &Tensor,
        lengths: &[usize],
        preceding: &mut Preceding,
        observe: &mut dyn FnMut(&'static str, &Tensor),
    ) -> Result<(Tensor, Vec<usize>)> {
        let key_mask = |lengths: &[usize], t: usize| -> Result<Option<Tensor>> {
            if lengths.iter().all(|&len| len == t) {
                Ok(None)
            } else {
                length_mask(lengths, t, xs.device()).map(Some)
            }
        };
        let mask = key_mask(lengths, xs.dim(1)?)?;
        let (mut xs, pos_emb) = self
            .embed
            .forward(xs, preceding.frames_before_attention()?)?;
        observe("embed_out", &xs);
        observe("pos_emb", &pos_emb);
        xs = self.pre_lookahead_layer.forward(&xs, preceding)?;
        observe("pre_lookahead_out", &xs);
        for layer in &self.encoders {
            xs = layer.forward(&xs, &pos_emb, mask.as_ref(), preceding)?;
        }
        observe("encoders_out", &xs);

        let up = self.up_layer.forward(&xs.transpose(1, 2)?, preceding)?;
        observe("up_layer_out", &up);
        let lengths: Vec<usize> = lengths.iter().map(|&len| len * self.stride).collect();
        let mask = key_mask(&lengths, up.dim(2)?)?;
        let (mut xs, pos_emb) = self
            .up_embed
            .forward(&up.transpose(1, 2)?, preceding.frames_before_attention()?)?;
        observe("up_embed_out", &xs);
        observe("up_pos_emb", &pos_emb);
        for layer in &self.up_encoders {
            xs = layer.forward(&xs, &pos_emb, mask.as_ref(), preceding)?;
        }
        observe("up_encoders_out", &xs);
        let xs = self.after_norm.forward(&xs)?;
        observe("encoder_out", &xs);
        Ok((xs, lengths))
    }
}

/// S3Gen flow up to the decoder: weights under `flow.` (`input_embedding`,
/// `spk_embed_affine_layer`, `encoder`, `encoder_proj`).
#[derive(Debug, Clone)]
pub struct FlowEncoder {
    input_embedding: Embedding,
    spk_embed_affine_layer: Linear,
    encoder: UpsampleConformerEncoder,
    encoder_proj: Linear,
    vocab_size: usize,
    mel_bins: usize,
}

impl FlowEncoder {
    /// `vb` points at the flow (`flow.` in `s3gen_meanflow.safetensors`); every product
    /// in f32.
    pub fn new(cfg: &FlowConfig, vb: VarBuilder) -> Result<Self> {
        Self::with_precision(cfg, S3GenPrecision::Fp32, vb)
    }

    /// [`FlowEncoder::new`] with the conformer layers' linear products near f32 where
    /// `precision` allows split bf16 products ([`S3GenPrecision::split_products_on`]).
    pub fn with_precision(
        cfg: &FlowConfig,
        precision: S3GenPrecision,
        vb: VarBuilder,
    ) -> Result<Self> {
        let products = Products::near_f32(precision, vb.device());
        Ok(Self {
            input_embedding: embedding(cfg.vocab_size, cfg.input_size, vb.pp("input_embedding"))?,
            spk_embed_affine_layer: linear(
                cfg.spk_embed_dim,
                cfg.output_size,
                vb.pp("spk_embed_affine_layer"),
            )?,
            encoder: UpsampleConformerEncoder::new(&cfg.encoder, products, vb.pp("encoder"))?,
            encoder_proj: linear(
                cfg.encoder.output_size,
                cfg.output_size,
                vb.pp("encoder_proj"),
            )?,
            vocab_size: cfg.vocab_size,
            mel_bins: cfg.output_size,
        })
    }

    /// `(B, 192)` x-vectors to the decoder's `(B, 80)` speaker input:
    /// `spk_embed_affine_layer(x / max(||x||, 1e-12))`.
    pub fn speaker_projection(&self, embedding: &Tensor) -> Result<Tensor> {
        let norm = embedding
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12, f64::INFINITY)?;
        self.spk_embed_affine_layer
            .forward(&embedding.broadcast_div(&norm)?)
    }

    /// Speech tokens `(B, Ng)` (u32 or i64; row `b` holds `token_lens[b]` real
    /// tokens, then padding) after the voice `prompt`, to the decoder's inputs.
    /// The prompt (batch 1) is shared by every row.
    pub fn forward(
        &self,
        tokens: &Tensor,
        token_lens: &[usize],
        prompt: &FlowPrompt,
    ) -> Result<DecoderConditioning> {
        self.forward_observed(tokens, token_lens, prompt, &mut |_, _| {})
    }

    /// The voice prompt on its own, attending only to itself: the decoder's inputs over
    /// its frames (`cond` the prompt mel, cut or padded to the `2 Np` encoded frames),
    /// and the state those frames leave for the tokens after them
    /// ([`FlowEncoder::forward_after_prompt`]).
    pub fn encode_prompt(&self, prompt: &FlowPrompt) -> Result<(DecoderConditioning, PromptState)> {
        let mut state = PromptState::default();
        let mu = self.encode_alone(&prompt.tokens, &mut Preceding::record(&mut state))?;
        let frames = mu.dim(D::Minus1)?;
        let mel = prompt.mel.to_dtype(mu.dtype())?;
        let kept = mel.dim(1)?.min(frames);
        let cond = mel
            .narrow(1, 0, kept)?
            .pad_with_zeros(1, 0, frames - kept)?
            .transpose(1, 2)?
            .contiguous()?;
        let conditioning = DecoderConditioning {
            mask: Tensor::ones((1, 1, frames), mu.dtype(), mu.device())?,
            spks: self.speaker_projection(&prompt.embedding)?,
            cond,
            prompt_frames: frames,
            mu,
        };
        Ok((conditioning, state))
    }

    /// Speech tokens `(1, N)` after a prompt whose state `prompt` keeps (from
    /// [`FlowEncoder::encode_prompt`]), to the decoder's inputs over their `2N` frames
    /// only (`cond` zeros, `prompt_frames` 0); `spks` is the prompt's.
    pub fn forward_after_prompt(
        &self,
        tokens: &Tensor,
        prompt: &PromptState,
        spks: &Tensor,
    ) -> Result<DecoderConditioning> {
        let mu = self.encode_alone(tokens, &mut Preceding::prompt(prompt))?;
        let (_, mel_bins, frames) = mu.dims3()?;
        Ok(DecoderConditioning {
            mask: Tensor::ones((1, 1, frames), mu.dtype(), mu.device())?,
            spks: spks.clone(),
            cond: Tensor::zeros((1, mel_bins, frames), mu.dtype(), mu.device())?,
            prompt_frames: 0,
            mu,
        })
    }

    /// `mu` `(1, 80, 2N)` of tokens `(1, N)`, none of them padding, after `preceding`.
    fn encode_alone(&self, tokens: &Tensor, preceding: &mut Preceding) -> Result<Tensor> {
        let (batch, len) = tokens.dims2()?;
        if batch != 1 || len == 0 {
            candle_core::bail!("flow: expected tokens (1, N > 0), got ({batch}, {len})");
        }
        self.check_token_range(tokens)?;
        let embedded = self.input_embedding.forward(tokens)?;
        let (h, _) = self
            .encoder
            .forward_observed(&embedded, &[len], preceding, &mut |_, _| {})?;
        self.encoder_proj.forward(&h)?.transpose(1, 2)?.contiguous()
    }

    pub(crate) fn forward_observed(
        &self,
        tokens: &Tensor,
        token_lens: &[usize],
        prompt: &FlowPrompt,
        observe: &mut dyn FnMut(&'static str, &Tensor),
    ) -> Result<DecoderConditioning> {
        let (batch, generated) = tokens.dims2()?;
        if token_lens.len() != batch || token_lens.iter().any(|&len| len == 0 || len > generated) {
            candle_core::bail!(
                "flow: token_lens {token_lens:?} do not fit tokens of shape ({batch}, {generated})"
            );
        }
        let prompt_len = prompt.tokens.dim(1)?;
        let (_, prompt_frames, mel_bins) = prompt.mel.dims3()?;
        if mel_bins != self.mel_bins {
            candle_core::bail!(
                "flow: prompt mel has {mel_bins} bins, expected {}",
                self.mel_bins
            );
        }
        let to_batch = |t: &Tensor, what: &str| -> Result<Tensor> {
            match t.dim(0)? {
                1 => {
                    let mut dims = t.dims().to_vec();
                    dims[0] = batch;
                    t.broadcast_as(dims)?.contiguous()
                }
                n if n == batch => Ok(t.clone()),
                n => candle_core::bail!("flow: prompt {what} has batch {n}, tokens have {batch}"),
            }
        };

        let spks = to_batch(&self.speaker_projection(&prompt.embedding)?, "embedding")?;
        observe("spks", &spks);

        let tokens = Tensor::cat(
            &[
                to_batch(&prompt.tokens, "tokens")?.to_dtype(tokens.dtype())?,
                tokens.clone(),
            ],
            1,
        )?;
        self.check_token_range(&tokens)?;
        let lengths: Vec<usize> = token_lens.iter().map(|len| prompt_len + len).collect();
        let embedded = self.input_embedding.forward(&tokens)?;
        observe("token_embed", &embedded);
        let embedded = if token_lens.iter().all(|&len| len == generated) {
            embedded
        } else {
            let mask = length_mask(&lengths, tokens.dim(1)?, tokens.device())?;
            embedded.broadcast_mul(&mask.to_dtype(embedded.dtype())?.transpose(1, 2)?)?
        };

        let (h, frame_lengths) =
            self.encoder
                .forward_observed(&embedded, &lengths, &mut Preceding::none(), observe)?;
        let frames = h.dim(1)?;
        if prompt_frames > frames {
            candle_core::bail!(
                "flow: prompt mel has {prompt_frames} frames, more than the {frames} encoded frames"
            );
        }
        let mu = self
            .encoder_proj
            .forward(&h)?
            .transpose(1, 2)?
            .contiguous()?;
        let mask = length_mask(&frame_lengths, frames, h.device())?.to_dtype(mu.dtype())?;
        let prompt_mel = to_batch(&prompt.mel, "mel")?.to_dtype(mu.dtype())?;
        let cond = Tensor::cat(
            &[
                prompt_mel,
                Tensor::zeros(
                    (batch, frames - prompt_frames, mel_bins),
                    mu.dtype(),
                    mu.device(),
                )?,
            ],
            1,
        )?
        .transpose(1, 2)?
        .contiguous()?;
        Ok(DecoderConditioning {
            mu,
            mask,
            spks,
            cond,
            prompt_frames,
        })
    }

    fn check_token_range(&self, tokens: &Tensor) -> Result<()> {
        let tokens = tokens.flatten_all()?.to_dtype(DType::I64)?;
        let (min, max) = (
            tokens.min(0)?.to_scalar::<i64>()?,
            tokens.max(0)?.to_scalar::<i64>()?,
        );
        if min < 0 || max >= self.vocab_size as i64 {
            candle_core::bail!(
                "flow: speech token out of range [0, {}): min {min}, max {max}",
                self.vocab_size
            );
        }
        Ok(())
    }
}
