//! Conformer blocks of S3Gen's flow encoder (CosyVoice / ESPnet): relative
//! positional encoding, relative-position multi-head self-attention with
//! `pos_bias_u` / `pos_bias_v` (Transformer-XL, arXiv:1901.02860 §3.3), the
//! swish feed-forward and the pre-norm encoder layer. No macaron feed-forward and
//! no convolution module (Turbo's `use_cnn_module: false`, `macaron_style: false`).

mod host_attention;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder, linear, linear_no_bias};

use super::accumulate::{AccumulatingLinear, Products};
use super::preceding::Preceding;
use crate::kernels::CpuValues;

/// ESPnet's relative positional table for a sequence of `len` frames:
/// `(1, 2*len-1, d_model)`, row `r` encoding the relative position `len-1-r`
/// (from `+(len-1)` down to `-(len-1)`), each frequency as an interleaved
/// `[sin, cos]` pair. The arithmetic mirrors the reference's float32 steps
/// (`exp(2i * -ln(10000)/d)`, then `position * div_term`) so that long sequences
/// keep the same rounding.
pub fn rel_position_table(len: usize, d_model: usize, device: &Device) -> Result<Tensor> {
    if len == 0 || !d_model.is_multiple_of(2) {
        candle_core::bail!(
            "rel_position_table: need len > 0 and an even width, got len {len}, d_model {d_model}"
        );
    }
    let exponent_scale = (-(10000f64.ln()) / d_model as f64) as f32;
    let div_terms: Vec<f32> = (0..d_model / 2)
        .map(|i| f64::from((2 * i) as f32 * exponent_scale).exp() as f32)
        .collect();
    let rows = 2 * len - 1;
    let mut table = Vec::with_capacity(rows * d_model);
    for row in 0..rows {
        let relative = (len - 1) as f32 - row as f32;
        for &div in &div_terms {
            let angle = f64::from(relative * div);
            table.push(angle.sin() as f32);
            table.push(angle.cos() as f32);
        }
    }
    Tensor::from_vec(table, (1, rows, d_model), device)
}

/// ESPnet `rel_shift`, for `n` queries after `keys - n` earlier frames: turns the
/// position scores `(B, H, n, keys + n - 1)`, whose column `c` is relative position
/// `keys - 1 - c`, into `(B, H, n, keys)` with `out[i][j] = x[i][n-1-i+j]` (query
/// `keys - n + i`, key `j`). Flattened, that element sits at `(n-1) + i*(width-1) + j`,
/// so the result is a strided window of the flat scores.
fn rel_shift(x: &Tensor, keys: usize) -> Result<Tensor> {
    let (b, h, n, width) = x.dims4()?;
    if width != keys + n - 1 {
        candle_core::bail!(
            "rel_shift: expected keys + n - 1 = {} columns, got {width}",
            keys + n - 1
        );
    }
    if n == 1 {
        return Ok(x.clone());
    }
    x.contiguous()?
        .reshape((b, h, n * width))?
        .narrow(2, n - 1, n * (width - 1))?
        .reshape((b, h, n, width - 1))?
        .narrow(3, 0, keys)
}

/// `RelPositionMultiHeadedAttention` (full, non-causal self-attention).
#[derive(Debug, Clone)]
pub struct RelPositionAttention {
    linear_q: AccumulatingLinear,
    linear_k: Linear,
    linear_v: AccumulatingLinear,
    linear_out: AccumulatingLinear,
    linear_pos: Linear,
    /// `(H, d_k)` bias added to the query for the content scores.
    pos_bias_u: Tensor,
    /// `(H, d_k)` bias added to the query for the position scores.
    pos_bias_v: Tensor,
    heads: usize,
    head_dim: usize,
}

impl RelPositionAttention {
    /// The q, v and output projections run as `products` on the CPU.
    pub fn new(
        size: usize,
        heads: usize,
        key_bias: bool,
        products: Products,
        vb: VarBuilder,
    ) -> Result<Self> {
        if heads == 0 || !size.is_multiple_of(heads) {
            candle_core::bail!("attention width {size} is not divisible by {heads} heads");
        }
        let head_dim = size / heads;
        let linear_k = if key_bias {
            linear(size, size, vb.pp("linear_k"))?
        } else {
            linear_no_bias(size, size, vb.pp("linear_k"))?
        };
        Ok(Self {
            linear_q: AccumulatingLinear::load(size, size, true, products, vb.pp("linear_q"))?,
            linear_k,
            linear_v: AccumulatingLinear::load(size, size, true, products, vb.pp("linear_v"))?,
            linear_out: AccumulatingLinear::load(size, size, true, products, vb.pp("linear_out"))?,
            linear_pos: linear_no_bias(size, size, vb.pp("linear_pos"))?,
            pos_bias_u: vb.get((heads, head_dim), "pos_bias_u")?,
            pos_bias_v: vb.get((heads, head_dim), "pos_bias_v")?,
            heads,
            head_dim,
        })
    }

    /// `x`: `(B, T, D)` after the `P` frames of `preceding`; `pos_emb`: `(1, P+2T-1, D)`,
    /// relative positions `P+T-1` down to `-(T-1)` (the first rows of
    /// [`rel_position_table`] for `P+T` frames); `key_mask`: `(B, 1, T)` u8, 1 for real
    /// frames, or `None` when no frame is padding (always, when there are frames before).
    pub fn forward(
        &self,
        x: &Tensor,
        pos_emb: &Tensor,
        key_mask: Option<&Tensor>,
        preceding: &mut Preceding,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (h, dk) = (self.heads, self.head_dim);
        let heads_first = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, h, dk))?.transpose(1, 2)?.contiguous()
        };
        let q = self.linear_q.forward(x)?.reshape((b, t, h, dk))?;
        let (k, v) = preceding.keys_values(
            heads_first(self.linear_k.forward(x)?)?,
            heads_first(self.linear_v.forward(x)?)?,
        )?;
        let keys = k.dim(2)?;
        if key_mask.is_some() && keys != t {
            candle_core::bail!("attention: padded frames cannot follow a prompt");
        }
        let p = self.linear_pos.forward(pos_emb)?;
        let context = if x.device().is_cpu() && x.dtype() == DType::F32 && p.dim(0)? == 1 {
            self.attend_on_host(&q, &k, &v, &p, key_mask)?
        } else {
            self.attend(q, &k, &v, &p, key_mask)?
        };
        self.linear_out.forward(&context)
    }

    /// The scores, softmax and weighted values, step by step in candle's ops: `q`
    /// `(B, T, H, d_k)`, `k` and `v` `(B, H, keys, d_k)`, `p` the projected position
    /// table `(1 or B, keys + T - 1, D)`; returns the context `(B, T, D)`.
    fn attend(
        &self,
        q: Tensor,
        k: &Tensor,
        v: &Tensor,
        p: &Tensor,
        key_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, t, h, dk) = q.dims4()?;
        let keys = k.dim(2)?;
        let positions = p.dim(1)?;
        let p = p
            .reshape((p.dim(0)?, positions, h, dk))?
            .transpose(1, 2)?
            .contiguous()?;

        let q_u = q
            .broadcast_add(&self.pos_bias_u)?
            .transpose(1, 2)?
            .contiguous()?;
        let q_v = q
            .broadcast_add(&self.pos_bias_v)?
            .transpose(1, 2)?
            .contiguous()?;
        let content = q_u.matmul(&k.t()?)?;
        let position = q_v.broadcast_matmul(&p.t()?)?;
        let position = rel_shift(&position, keys)?;
        let scores = ((content + position)? / (dk as f64).sqrt())?;
        let scores = match key_mask {
            // Masked keys get -inf, hence exactly zero weight after the softmax; every
            // query keeps at least one key (lengths are >= 1), so no row is all -inf.
            Some(mask) => {
                let mask = mask.unsqueeze(1)?.broadcast_as(scores.shape())?;
                let neg_inf = Tensor::new(f32::NEG_INFINITY, scores.device())?
                    .to_dtype(scores.dtype())?
                    .broadcast_as(scores.shape())?;
                mask.where_cond(&scores, &neg_inf)?
            }
            None => scores,
        };
        let weights = crate::kernels::softmax_last_dim(&scores)?;
        weights.matmul(v)?.transpose(1, 2)?.reshape((b, t, h * dk))
    }

    /// [`Self::attend`] on the CPU in f32, a block of query rows at a time
    /// ([`host_attention`]).
    fn attend_on_host(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        p: &Tensor,
        key_mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, t, h, dk) = q.dims4()?;
        let keys = k.dim(2)?;
        let width = h * dk;
        let (q, k, v, p) = (
            q.contiguous()?,
            k.contiguous()?,
            v.contiguous()?,
            p.contiguous()?,
        );
        let (u, w) = (
            self.pos_bias_u.to_dtype(DType::F32)?.contiguous()?,
            self.pos_bias_v.to_dtype(DType::F32)?.contiguous()?,
        );
        let (q, k, v, p, u, w) = (
            CpuValues::of(&q)?,
            CpuValues::of(&k)?,
            CpuValues::of(&v)?,
            CpuValues::of(&p)?,
            CpuValues::of(&u)?,
            CpuValues::of(&w)?,
        );
        let (q, k, v, p, pos_bias_u, pos_bias_v) =
            (q.get()?, k.get()?, v.get()?, p.get()?, u.get()?, w.get()?);
        let mask = key_mask
            .map(|mask| mask.flatten_all()?.to_vec1::<u8>())
            .transpose()?;
        let mut context = vec![0f32; b * t * width];
        for (row, context) in context.chunks_exact_mut(t * width).enumerate() {
            host_attention::attend(
                &host_attention::RelAttentionInputs {
                    q: &q[row * t * width..][..t * width],
                    k: &k[row * keys * width..][..keys * width],
                    v: &v[row * keys * width..][..keys * width],
                    p,
                    pos_bias_u,
                    pos_bias_v,
                    key_mask: mask.as_ref().map(|mask| &mask[row * keys..][..keys]),
                    heads: h,
                    head_dim: dk,
                },
                context,
            );
        }
        Tensor::from_vec(context, (b, t, width), self.pos_bias_u.device())
    }
}

/// `PositionwiseFeedForward` with swish: `w_2(silu(w_1(x)))`.
#[derive(Debug, Clone)]
pub struct FeedForward {
    w_1: AccumulatingLinear,
    w_2: AccumulatingLinear,
}

impl FeedForward {
    /// The two layers run as `products` on the CPU.
    pub fn new(size: usize, hidden: usize, products: Products, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            w_1: AccumulatingLinear::load(size, hidden, true, products, vb.pp("w_1"))?,
            w_2: AccumulatingLinear::load(hidden, size, true, products, vb.pp("w_2"))?,
        })
    }
}

impl Module for FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.w_2
            .forward(&candle_nn::ops::silu(&self.w_1.forward(x)?)?)
    }
}

/// Pre-norm `ConformerEncoderLayer`: `x + attn(norm_mha(x))`, then
/// `x + ff(norm_ff(x))`.
#[derive(Debug, Clone)]
pub struct ConformerLayer {
    self_attn: RelPositionAttention,
    feed_forward: FeedForward,
    norm_mha: LayerNorm,
    norm_ff: LayerNorm,
}

impl ConformerLayer {
    /// `norm_eps` is the layers' LayerNorm epsilon (1e-12 in the reference); the linear
    /// layers' products run as `products` on the CPU.
    pub fn new(
        size: usize,
        heads: usize,
        ff_hidden: usize,
        (key_bias, norm_eps): (bool, f64),
        products: Products,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            self_attn: RelPositionAttention::new(
                size,
                heads,
                key_bias,
                products,
                vb.pp("self_attn"),
            )?,
            feed_forward: FeedForward::new(size, ff_hidden, products, vb.pp("feed_forward"))?,
            norm_mha: candle_nn::layer_norm(size, norm_eps, vb.pp("norm_mha"))?,
            norm_ff: candle_nn::layer_norm(size, norm_eps, vb.pp("norm_ff"))?,
        })
    }

    /// Same arguments as [`RelPositionAttention::forward`].
    pub fn forward(
        &self,
        x: &Tensor,
        pos_emb: &Tensor,
        key_mask: Option<&Tensor>,
        preceding: &mut Preceding,
    ) -> Result<Tensor> {
        let attended =
            self.self_attn
                .forward(&self.norm_mha.forward(x)?, pos_emb, key_mask, preceding)?;
        let x = (x + attended)?;
        let fed = self.feed_forward.forward(&self.norm_ff.forward(&x)?)?;
        x + fed
    }
}

/// `(B, 1, T)` u8 mask, 1 where `t < lengths[b]`.
pub fn length_mask(lengths: &[usize], t: usize, device: &Device) -> Result<Tensor> {
    let mask: Vec<u8> = lengths
        .iter()
        .flat_map(|&len| (0..t).map(move |i| u8::from(i < len)))
        .collect();
    Tensor::from_vec(mask, (lengths.len(), 1, t), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    /// An attention layer with random weights and non-zero position biases, so that the
    /// position scores count.
    fn random_attention(size: usize, heads: usize) -> Result<RelPositionAttention> {
        let mut varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let attention = RelPositionAttention::new(size, heads, true, Products::F32, vb.clone())?;
        for name in ["pos_bias_u", "pos_bias_v"] {
            let bias = vb.get((heads, size / heads), name)?;
            varmap.set_one(name, Tensor::randn(0f32, 1.0, bias.shape(), &Device::Cpu)?)?;
        }
        Ok(attention)
    }

    #[test]
    fn rel_shift_picks_relative_position_i_minus_j() -> Result<()> {
        let t = 4;
        let width = 2 * t - 1;
        let x =
            Tensor::arange(0f32, (t * width) as f32, &Device::Cpu)?.reshape((1, 1, t, width))?;
        let shifted = rel_shift(&x, t)?.squeeze(0)?.squeeze(0)?.to_vec2::<f32>()?;
        for (i, row) in shifted.iter().enumerate() {
            for (j, &value) in row.iter().enumerate() {
                assert_eq!(value, (i * width + t - 1 - i + j) as f32);
            }
        }
        Ok(())
    }

    /// One attention layer sees the same keys either way, so frames after a recorded
    /// prompt attend exactly as in the whole sequence (relative positions included).
    #[test]
    fn frames_after_a_recorded_prompt_attend_as_in_the_whole_sequence() -> Result<()> {
        use crate::s3gen::preceding::{Preceding, PromptState};
        let device = Device::Cpu;
        let (size, heads) = (16, 2);
        let attention = random_attention(size, heads)?;
        let table = |before: usize, t: usize| -> Result<Tensor> {
            rel_position_table(before + t, size, &device)?.narrow(1, 0, before + 2 * t - 1)
        };
        for (prompt, after) in [(5, 3), (4, 1), (1, 6)] {
            let x = Tensor::randn(0f32, 1.0, (1, prompt + after, size), &device)?;
            let whole = attention
                .forward(&x, &table(0, prompt + after)?, None, &mut Preceding::none())?
                .narrow(1, prompt, after)?;
            let mut state = PromptState::default();
            let head = x.narrow(1, 0, prompt)?;
            attention.forward(
                &head,
                &table(0, prompt)?,
                None,
                &mut Preceding::record(&mut state),
            )?;
            let tail = x.narrow(1, prompt, after)?;
            let followed = attention.forward(
                &tail,
                &table(prompt, after)?,
                None,
                &mut Preceding::prompt(&state),
            )?;
            let diff = (whole - followed)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "prompt {prompt}, after {after}: {diff}");
        }
        Ok(())
    }

    /// The CPU's block-by-block attention against candle's ops step by step: several
    /// blocks of query rows, keys after a prompt, and padded keys in a batch.
    #[test]
    fn host_attention_matches_candle_ops() -> Result<()> {
        let device = Device::Cpu;
        let (size, heads) = (16, 2);
        let attention = random_attention(size, heads)?;
        let dk = size / heads;
        for (batch, t, keys, lengths) in [
            (1, 70, 70, None),
            (1, 9, 40, None),
            (2, 45, 45, Some([45, 20])),
        ] {
            let q = Tensor::randn(0f32, 1.0, (batch, t, heads, dk), &device)?;
            let k = Tensor::randn(0f32, 1.0, (batch, heads, keys, dk), &device)?;
            let v = Tensor::randn(0f32, 1.0, (batch, heads, keys, dk), &device)?;
            let p = Tensor::randn(0f32, 1.0, (1, keys + t - 1, size), &device)?;
            let mask = lengths
                .map(|l| length_mask(&l, keys, &device))
                .transpose()?;
            let expected = attention.attend(q.clone(), &k, &v, &p, mask.as_ref())?;
            let ours = attention.attend_on_host(&q, &k, &v, &p, mask.as_ref())?;
            let diff = (ours - expected)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(
                diff < 1e-5,
                "batch {batch}, {t} frames, {keys} keys: {diff}"
            );
        }
        Ok(())
    }

    #[test]
    fn rel_position_table_is_centred_on_zero() -> Result<()> {
        let table = rel_position_table(3, 4, &Device::Cpu)?.squeeze(0)?;
        let rows = table.to_vec2::<f32>()?;
        // Middle row is relative position 0: sin 0 = 0, cos 0 = 1.
        assert_eq!(rows[2], vec![0.0, 1.0, 0.0, 1.0]);
        // Rows 2 apart are +/- the same position: sines flip sign, cosines agree.
        for (a, b) in rows[1].iter().zip(&rows[3]).step_by(2) {
            assert_eq!(*a, -*b);
        }
        assert!((rows[0][0] - 2f32.sin()).abs() < 1e-7);
        Ok(())
    }

    #[test]
    fn length_mask_marks_padding() -> Result<()> {
        let mask = length_mask(&[3, 1], 3, &Device::Cpu)?;
        assert_eq!(
            mask.to_dtype(DType::U32)?.squeeze(1)?.to_vec2::<u32>()?,
            vec![vec![1, 1, 1], vec![1, 0, 0]]
        );
        Ok(())
    }
}
