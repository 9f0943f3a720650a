//! S3Tokenizer V2: 16 kHz audio to 25 Hz speech tokens (codes `0..3^8`).
//!
//! Whisper-style 128-bin log-mel (100 frames/s) → `AudioEncoderV2` (two strided
//! convolutions, FSMN-augmented attention blocks with RoPE) → FSQ: eight base-3
//! digits per token. Weights under the `tokenizer.` prefix of `s3gen_meanflow.safetensors`.

use candle_core::{DType, Device, Module, Result, Tensor, bail};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear, VarBuilder};

use crate::config::S3TokenizerConfig;
use crate::dsp::{self, MelFilterBank, MelFilterConfig, PadMode, Stft};

/// Longest mel (frames) encoded in one pass; longer audio goes through
/// overlapping 30 s windows (`S3TokenizerV2._quantize_mixed_batch`).
const MAX_FRAMES: usize = 3000;
/// Frames between the starts of two long-audio windows (30 s minus a 4 s overlap).
const LONG_AUDIO_STRIDE_FRAMES: usize = 2600;
/// Tokens dropped on each side of a window seam: half the 4 s overlap at 25 tokens/s.
const SEAM_TOKENS: usize = 50;
/// Mel frames per speech token (the encoder downsamples by 2 twice).
const FRAMES_PER_TOKEN: usize = 4;

/// Multi-head self-attention whose value path also feeds an FSMN memory
/// (depthwise convolution over time, plus the value itself).
struct FsmnAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    /// Depthwise kernel, `(1, kernel, channels)` so it broadcasts over `(B, T, C)`.
    fsmn_taps: Vec<Tensor>,
    n_head: usize,
    head_dim: usize,
}

impl FsmnAttention {
    fn new(cfg: &S3TokenizerConfig, vb: VarBuilder) -> Result<Self> {
        let n = cfg.n_audio_state;
        let k = cfg.fsmn_kernel_size;
        let weight = vb.get((n, 1, k), "fsmn_block.weight")?;
        let fsmn_taps = (0..k)
            .map(|tap| weight.narrow(2, tap, 1)?.reshape((1, 1, n)))
            .collect::<Result<_>>()?;
        Ok(Self {
            query: candle_nn::linear(n, n, vb.pp("query"))?,
            key: candle_nn::linear_no_bias(n, n, vb.pp("key"))?,
            value: candle_nn::linear(n, n, vb.pp("value"))?,
            out: candle_nn::linear(n, n, vb.pp("out"))?,
            fsmn_taps,
            n_head: cfg.n_audio_head,
            head_dim: n / cfg.n_audio_head,
        })
    }

    /// Depthwise convolution over time with zero padding (`(K-1)/2` left), plus the input.
    fn fsmn_memory(&self, v: &Tensor) -> Result<Tensor> {
        let (_, t, _) = v.dims3()?;
        let k = self.fsmn_taps.len();
        let left = (k - 1) / 2;
        let padded = v.pad_with_zeros(1, left, k - 1 - left)?;
        let mut memory = v.clone();
        for (tap, w) in self.fsmn_taps.iter().enumerate() {
            memory = (memory + padded.narrow(1, tap, t)?.broadcast_mul(w)?)?;
        }
        Ok(memory)
    }

    fn forward(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let heads = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, self.n_head, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        // q and k are each scaled by head_dim^-1/4 (their product by head_dim^-1/2).
        let scale = (self.head_dim as f64).powf(-0.25);
        let q = candle_nn::rotary_emb::rope(&heads(self.query.forward(x)?)?, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&heads(self.key.forward(x)?)?, cos, sin)?;
        let v = self.value.forward(x)?;
        let memory = self.fsmn_memory(&v)?;
        let scores = ((q * scale)?.matmul(&(k * scale)?.t()?))?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let attended = weights
            .matmul(&heads(v)?)?
            .transpose(1, 2)?
            .reshape((b, t, c))?;
        self.out.forward(&attended)? + memory
    }
}

struct ResidualAttentionBlock {
    attn: FsmnAttention,
    attn_ln: LayerNorm,
    mlp_in: Linear,
    mlp_out: Linear,
    mlp_ln: LayerNorm,
}

impl ResidualAttentionBlock {
    fn new(cfg: &S3TokenizerConfig, vb: VarBuilder) -> Result<Self> {
        let n = cfg.n_audio_state;
        Ok(Self {
            attn: FsmnAttention::new(cfg, vb.pp("attn"))?,
            attn_ln: candle_nn::layer_norm(n, 1e-5, vb.pp("attn_ln"))?,
            mlp_in: candle_nn::linear(n, 4 * n, vb.pp("mlp.0"))?,
            mlp_out: candle_nn::linear(4 * n, n, vb.pp("mlp.2"))?,
            mlp_ln: candle_nn::layer_norm(n, 1e-5, vb.pp("mlp_ln"))?,
        })
    }

    fn forward(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.attn_ln.forward(x)?, cos, sin)?)?;
        let hidden = crate::kernels::gelu_erf(&self.mlp_in.forward(&self.mlp_ln.forward(&x)?)?)?;
        x + self.mlp_out.forward(&hidden)?
    }
}

/// `AudioEncoderV2`: conv stem (each conv halves the frame rate) and attention blocks,
/// no final norm.
pub struct AudioEncoderV2 {
    conv1: Conv1d,
    conv2: Conv1d,
    blocks: Vec<ResidualAttentionBlock>,
    head_dim: usize,
    rope_theta: f64,
}

impl AudioEncoderV2 {
    pub fn new(cfg: &S3TokenizerConfig, vb: VarBuilder) -> Result<Self> {
        let n = cfg.n_audio_state;
        let head_dim = n / cfg.n_audio_head;
        if head_dim * cfg.n_audio_head != n || head_dim != cfg.rope_dim {
            bail!(
                "s3tokenizer: head_dim {n}/{} must equal rope_dim {}",
                cfg.n_audio_head,
                cfg.rope_dim
            );
        }
        let conv = |stride| Conv1dConfig {
            padding: 1,
            stride,
            ..Default::default()
        };
        Ok(Self {
            conv1: candle_nn::conv1d(cfg.n_mels, n, 3, conv(cfg.conv_stride), vb.pp("conv1"))?,
            conv2: candle_nn::conv1d(n, n, 3, conv(2), vb.pp("conv2"))?,
            blocks: (0..cfg.n_audio_layer)
                .map(|i| ResidualAttentionBlock::new(cfg, vb.pp(format!("blocks.{i}"))))
                .collect::<Result<_>>()?,
            head_dim,
            rope_theta: cfg.rope_theta,
        })
    }

    /// RoPE tables `(T, head_dim / 2)`, angles in f32 as `precompute_freqs_cis` makes them.
    fn rope_tables(&self, t: usize, device: &Device, dtype: DType) -> Result<(Tensor, Tensor)> {
        let half = self.head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / (self.rope_theta as f32).powf((2 * i) as f32 / self.head_dim as f32))
            .collect();
        let angles: Vec<f32> = (0..t)
            .flat_map(|pos| inv_freq.iter().map(move |&f| pos as f32 * f))
            .collect();
        let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
        let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
        let table = |v: Vec<f32>| Tensor::from_vec(v, (t, half), device)?.to_dtype(dtype);
        Ok((table(cos)?, table(sin)?))
    }

    /// `(B, n_mels, T)` log-mel → `(B, T', n_state)` with `T' = ceil(ceil(T/2)/2)`.
    pub fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let x = crate::kernels::gelu_erf(&self.conv1.forward(mel)?)?;
        let x = crate::kernels::gelu_erf(&self.conv2.forward(&x)?)?.transpose(1, 2)?;
        let (cos, sin) = self.rope_tables(x.dim(1)?, x.device(), x.dtype())?;
        let mut x = x.contiguous()?;
        for block in &self.blocks {
            x = block.forward(&x, &cos, &sin)?;
        }
        Ok(x)
    }
}

/// Finite scalar quantization: `project_down` to eight dims, each rounded to {-1, 0, 1}.
pub struct FsqCodebook {
    project_down: Linear,
    levels: u32,
}

impl FsqCodebook {
    pub fn new(cfg: &S3TokenizerConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            project_down: candle_nn::linear(cfg.n_audio_state, cfg.fsq_dim, vb.pp("project_down"))?,
            levels: cfg.fsq_levels as u32,
        })
    }

    /// `(B, T, C)` → `(B*T, fsq_dim)` projections before rounding.
    pub fn project(&self, hidden: &Tensor) -> Result<Tensor> {
        let hidden = hidden.flatten_to(1)?;
        self.project_down.forward(&hidden)
    }

    /// Token of each projected row: `sum_i (round(tanh(h_i) * 0.999) + 1) * levels^i`.
    pub fn codes(&self, projected: &Tensor) -> Result<Vec<u32>> {
        let rows = projected.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        // The reference writes 0.9990000128746033, which is exactly f32 0.999.
        const SHRINK: f32 = 0.999;
        Ok(rows
            .iter()
            .map(|row| {
                row.iter().rev().fold(0u32, |code, &h| {
                    let digit = ((h.tanh() * SHRINK).round_ties_even() + 1.0) as u32;
                    code * self.levels + digit
                })
            })
            .collect())
    }
}

/// The S3 speech tokenizer (`chatterbox.models.s3tokenizer.S3Tokenizer`).
pub struct S3Tokenizer {
    /// Centred STFT (reflect padding), `n_fft` 400, hop 160.
    stft: Stft,
    mel_filters: MelFilterBank,
    pub(crate) encoder: AudioEncoderV2,
    pub(crate) quantizer: FsqCodebook,
    device: Device,
    dtype: DType,
}

impl S3Tokenizer {
    /// `vb` points at the tokenizer (`tokenizer.` inside `s3gen_meanflow.safetensors`).
    /// Uses the checkpoint's `_mel_filters` and `window` buffers when present, else
    /// librosa's Slaney filters and a periodic Hann window, as the reference builds them.
    pub fn new(cfg: &S3TokenizerConfig, vb: VarBuilder) -> Result<Self> {
        let n_freqs = cfg.n_fft / 2 + 1;
        let mel_filters = if vb.contains_tensor("_mel_filters") {
            MelFilterBank {
                n_mels: cfg.n_mels,
                n_freqs,
                weights: vb
                    .get((cfg.n_mels, n_freqs), "_mel_filters")?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            }
        } else {
            MelFilterBank::new(&MelFilterConfig::librosa(
                f64::from(cfg.sample_rate),
                cfg.n_fft,
                cfg.n_mels,
            ))?
        };
        let window = if vb.contains_tensor("window") {
            vb.get(cfg.n_fft, "window")?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?
        } else {
            dsp::hann_window(cfg.n_fft, true)
        };
        Ok(Self {
            stft: Stft::new(cfg.n_fft, cfg.hop, &window, true, PadMode::Reflect)?,
            mel_filters,
            encoder: AudioEncoderV2::new(cfg, vb.pp("encoder"))?,
            quantizer: FsqCodebook::new(cfg, vb.pp("quantizer._codebook"))?,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// `(1, n_mels, T)` log-mel of 16 kHz audio, `T = len / hop`: power STFT (last
    /// frame dropped), mel, `log10(max(x, 1e-10))`, floored at 8 below the maximum,
    /// then `(x + 4) / 4`.
    pub fn log_mel_spectrogram(&self, wav_16k: &[f32]) -> Result<Tensor> {
        let spectrum = self.stft.forward(wav_16k)?;
        let mel = self
            .mel_filters
            .apply(&spectrum.power(), spectrum.n_frames)?;
        let n_frames = spectrum.n_frames - 1;
        let log: Vec<f32> = mel
            .chunks_exact(spectrum.n_frames)
            .flat_map(|row| &row[..n_frames])
            .map(|&x| (x as f32).max(1e-10).log10())
            .collect();
        let floor = log.iter().copied().fold(f32::NEG_INFINITY, f32::max) - 8.0;
        let scaled: Vec<f32> = log.iter().map(|&x| (x.max(floor) + 4.0) / 4.0).collect();
        Tensor::from_vec(scaled, (1, self.mel_filters.n_mels, n_frames), &self.device)?
            .to_dtype(self.dtype)
    }

    /// Tokens of a `(1, n_mels, T)` log-mel with `T <= 3000`.
    fn quantize_window(&self, mel: &Tensor) -> Result<Vec<u32>> {
        let hidden = self.encoder.forward(mel)?;
        self.quantizer.codes(&self.quantizer.project(&hidden)?)
    }

    /// Speech tokens of a `(1, n_mels, T)` log-mel. Mels over 30 s are cut into 30 s
    /// windows every 26 s whose tokens are joined dropping 2 s on each side of a seam.
    pub fn quantize(&self, mel: &Tensor) -> Result<Vec<u32>> {
        let n_frames = mel.dim(2)?;
        if n_frames <= MAX_FRAMES {
            return self.quantize_window(mel);
        }
        let starts: Vec<usize> = (0..n_frames).step_by(LONG_AUDIO_STRIDE_FRAMES).collect();
        let mut tokens = Vec::new();
        for (i, &start) in starts.iter().enumerate() {
            let len = MAX_FRAMES.min(n_frames - start);
            let window = self.quantize_window(&mel.narrow(2, start, len)?)?;
            let keep_from = if i == 0 { 0 } else { SEAM_TOKENS };
            let keep_to = if i + 1 == starts.len() {
                window.len()
            } else {
                window.len().saturating_sub(SEAM_TOKENS)
            };
            if keep_from < keep_to {
                tokens.extend_from_slice(&window[keep_from..keep_to]);
            }
        }
        Ok(tokens)
    }

    /// Speech tokens (25 per second) of 16 kHz audio, as `S3Tokenizer.forward`:
    /// with `max_len`, the log-mel is cut to `4 * max_len` frames first.
    pub fn tokenize(&self, wav_16k: &[f32], max_len: Option<usize>) -> Result<Vec<u32>> {
        if max_len == Some(0) {
            return Ok(Vec::new());
        }
        let mel = self.log_mel_spectrogram(wav_16k)?;
        let mel = match max_len {
            Some(max_len) if FRAMES_PER_TOKEN * max_len < mel.dim(2)? => {
                mel.narrow(2, 0, FRAMES_PER_TOKEN * max_len)?
            }
            _ => mel,
        };
        self.quantize(&mel)
    }
}
