//! S3Gen meanflow: speech tokens to 24 kHz audio (`S3Token2Wav.inference` of
//! `chatterbox/models/s3gen/s3gen.py` with `meanflow=True`).
//!
//! ```text
//! noise = randn(1, 80, 2 * Ng)                       flow_inference's first draw
//! [prompt | speech tokens] --FlowEncoder--> mu, mask, spks, cond   (1, 80, 2 (Np + Ng))
//! MeanflowCfm (2 Euler steps, from noise) --> mel; drop the Tp prompt frames
//! Hift --> wave (1, 480 per mel frame); trim_fade: 20 ms of silence, 20 ms raised-cosine fade-in
//! ```

pub mod accumulate;
pub mod cfm;
pub mod conformer;
pub mod decoder;
pub mod flow_encoder;
pub mod hift;
pub mod preceding;
pub mod precision;
pub mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::{D, Tensor};
use candle_nn::VarBuilder;

use crate::ChatterboxConfig;
use crate::recent::{Recent, value_bits};
use crate::rng::{RandomSource, SeededRandom};
use cfm::MeanflowCfm;
use flow_encoder::{DecoderConditioning, FlowEncoder, FlowPrompt};
use hift::Hift;
use preceding::PromptState;

/// The official checkpoint file holding S3Gen's weights.
pub const CHECKPOINT_FILE: &str = "s3gen_meanflow.safetensors";

/// The voice S3Gen speaks with (the reference's `ref_dict` from `embed_ref`): prompt
/// tokens, prompt mel and x-vector of a reference clip.
pub use flow_encoder::FlowPrompt as S3GenConditionals;
pub use precision::{S3GenPrecision, UnknownS3GenPrecision};

/// Wall-clock time of each stage of one [`S3Gen::inference_timed`] call.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    pub flow_encoder: Duration,
    pub cfm: Duration,
    pub hift: Duration,
}

impl StageTimings {
    pub fn total(&self) -> Duration {
        self.flow_encoder + self.cfm + self.hift
    }
}

/// Voices whose [`StreamPrompt`] S3Gen keeps (about 240 MB each at full size with a
/// 10 s prompt: keys and values of 56 attentions, 2 steps, 500 frames).
const STREAM_PROMPTS_KEPT: usize = 2;

/// Seed of the CFM's starting noise over a voice prompt's frames in a stream: fixed, so
/// that the prompt's state is the voice's, whatever the request's seed.
const PROMPT_NOISE_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// What a stream's windows find before their frames: the state the voice prompt's
/// frames leave in the flow encoder and at each CFM step ([`preceding`]).
pub struct StreamPrompt {
    pub(crate) encoder: PromptState,
    pub(crate) decoder: Vec<PromptState>,
    /// `(1, 80)` projected speaker embedding.
    pub(crate) spks: Tensor,
    /// Generated frames a one-shot synthesis drops because the prompt mel is longer than
    /// its `2 Np` encoded frames (`Tp - 2 Np`, at most 1 for a voice from `embed_ref`).
    pub(crate) dropped_frames: usize,
}

/// What a voice's [`StreamPrompt`] depends on (f32 values as bits).
#[derive(PartialEq, Eq)]
struct StreamPromptKey {
    tokens: Vec<u32>,
    mel: Vec<u32>,
    embedding: Vec<u32>,
}

impl StreamPromptKey {
    fn of(voice: &FlowPrompt) -> candle_core::Result<Self> {
        Ok(Self {
            tokens: voice
                .tokens
                .flatten_all()?
                .to_dtype(candle_core::DType::U32)?
                .to_vec1()?,
            mel: value_bits(&voice.mel)?,
            embedding: value_bits(&voice.embedding)?,
        })
    }
}

/// S3Gen: flow encoder, meanflow CFM decoder and HiFT vocoder.
pub struct S3Gen {
    flow: FlowEncoder,
    cfm: MeanflowCfm,
    hift: Hift,
    mel_bins: usize,
    token_mel_ratio: usize,
    n_timesteps: usize,
    /// Tokens ahead of a token that its mel depends on (`pre_lookahead_len`).
    lookahead_tokens: usize,
    /// Samples zeroed, then faded in, at the start of the wave (`S3GEN_SR // 50`, 20 ms).
    fade_samples: usize,
    stream_prompts: Recent<StreamPromptKey, StreamPrompt>,
}

impl S3Gen {
    /// Prefixes of the tensors of [`CHECKPOINT_FILE`] that `S3Gen` loads (the S3
    /// tokenizer and the CAMPPlus speaker encoder in the same file are separate models).
    pub const WEIGHT_PREFIXES: [&str; 2] = ["flow.", "mel2wav."];

    /// `vb` at the root of `s3gen_meanflow.safetensors` (weights under `flow.` and
    /// `mel2wav.`; the tokenizer and speaker encoder are loaded by their own modules).
    pub fn new(cfg: &ChatterboxConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Self::with_precision(cfg, S3GenPrecision::Fp32, vb)
    }

    /// [`S3Gen::new`] with the matrix products in `precision`.
    pub fn with_precision(
        cfg: &ChatterboxConfig,
        precision: S3GenPrecision,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        if !cfg.decoder.meanflow {
            candle_core::bail!("s3gen: only the meanflow decoder (Chatterbox Turbo) is supported");
        }
        Ok(Self {
            flow: FlowEncoder::with_precision(&cfg.flow, precision, vb.pp("flow"))?,
            cfm: MeanflowCfm::with_precision(&cfg.decoder, precision, vb.pp("flow.decoder"))?,
            hift: Hift::with_precision(&cfg.hift, precision, vb.pp("mel2wav"))?,
            mel_bins: cfg.flow.output_size,
            token_mel_ratio: cfg.flow.token_mel_ratio,
            n_timesteps: cfg.cfm.n_timesteps,
            lookahead_tokens: cfg.flow.pre_lookahead_len,
            fade_samples: cfg.hift.sampling_rate as usize / 50,
            stream_prompts: Recent::new(STREAM_PROMPTS_KEPT),
        })
    }

    /// The state `voice`'s prompt leaves for a stream's windows: computed on the voice's
    /// first stream (the flow encoder and the CFM over the prompt alone), then kept for
    /// the [`STREAM_PROMPTS_KEPT`] voices streamed last.
    pub fn stream_prompt(&self, voice: &FlowPrompt) -> candle_core::Result<Arc<StreamPrompt>> {
        let key = StreamPromptKey::of(voice)?;
        if let Some(prompt) = self.stream_prompts.get(&key) {
            return Ok(prompt);
        }
        let (conditioning, encoder) = self.flow.encode_prompt(voice)?;
        let frames = conditioning.prompt_frames;
        let noise = SeededRandom::new(PROMPT_NOISE_SEED)
            .randn(&[1, self.mel_bins, frames], voice.mel.device())?
            .to_dtype(conditioning.mu.dtype())?;
        let decoder = self
            .cfm
            .integrate_prompt(noise, &conditioning, self.n_timesteps)?;
        let prompt = Arc::new(StreamPrompt {
            encoder,
            decoder,
            spks: conditioning.spks,
            dropped_frames: voice.mel.dim(1)?.saturating_sub(frames),
        });
        self.stream_prompts.insert(key, Arc::clone(&prompt));
        Ok(prompt)
    }

    pub fn flow(&self) -> &FlowEncoder {
        &self.flow
    }

    pub fn cfm(&self) -> &MeanflowCfm {
        &self.cfm
    }

    pub fn hift(&self) -> &Hift {
        &self.hift
    }

    /// Speech tokens `(1, Ng)` (u32 or i64, all below the speech vocabulary size) to the
    /// faded-in wave `(1, 480 * (2 (Np + Ng) - Tp))` at 24 kHz.
    ///
    /// Random draws, in the reference's order: the generated frames' noise
    /// `randn (1, 80, 2 Ng)`, the CFM's `randn` shaped like `mu`, then HiFT's SineGen
    /// phases, sine noise and (unused) NSF noise.
    pub fn inference(
        &self,
        speech_tokens: &Tensor,
        conditionals: &S3GenConditionals,
        rng: &mut dyn RandomSource,
    ) -> candle_core::Result<Tensor> {
        Ok(self.inference_timed(speech_tokens, conditionals, rng)?.0)
    }

    /// [`S3Gen::inference`], also returning the time each stage took.
    pub fn inference_timed(
        &self,
        speech_tokens: &Tensor,
        conditionals: &S3GenConditionals,
        rng: &mut dyn RandomSource,
    ) -> candle_core::Result<(Tensor, StageTimings)> {
        let start = Instant::now();
        let noise = self.generated_noise(speech_tokens, rng)?;
        let conditioning = self.encode(speech_tokens, conditionals)?;
        let encoded = Instant::now();
        let mel = self.generate_mel(&conditioning, &noise, rng)?;
        let generated = Instant::now();
        let wave = self.trim_fade(&self.hift.inference(&mel, rng)?)?;
        let timings = StageTimings {
            flow_encoder: encoded - start,
            cfm: generated - encoded,
            hift: generated.elapsed(),
        };
        Ok((wave, timings))
    }

    /// The meanflow starting noise of the generated frames: `randn (1, 80, 2 Ng)`, drawn
    /// before anything else (`noised_mels`).
    pub(crate) fn generated_noise(
        &self,
        speech_tokens: &Tensor,
        rng: &mut dyn RandomSource,
    ) -> candle_core::Result<Tensor> {
        let (batch, n_tokens) = speech_tokens.dims2()?;
        if batch != 1 {
            candle_core::bail!("s3gen: speech tokens must be one row (1, N), got batch {batch}");
        }
        if n_tokens == 0 {
            candle_core::bail!("s3gen: no speech tokens to synthesize");
        }
        rng.randn(
            &[1, self.mel_bins, self.token_mel_ratio * n_tokens],
            speech_tokens.device(),
        )
    }

    /// Flow encoder: the decoder's inputs over prompt and generated frames.
    pub(crate) fn encode(
        &self,
        speech_tokens: &Tensor,
        conditionals: &S3GenConditionals,
    ) -> candle_core::Result<DecoderConditioning> {
        self.flow
            .forward(speech_tokens, &[speech_tokens.dim(1)?], conditionals)
    }

    /// Meanflow CFM over the whole sequence, then the prompt frames dropped.
    pub(crate) fn generate_mel(
        &self,
        conditioning: &DecoderConditioning,
        noise: &Tensor,
        rng: &mut dyn RandomSource,
    ) -> candle_core::Result<Tensor> {
        let DecoderConditioning {
            mu,
            mask,
            spks,
            cond,
            prompt_frames,
        } = conditioning;
        let mel = self
            .cfm
            .forward(mu, mask, spks, cond, noise, self.n_timesteps, rng)?;
        let frames = mel.dim(D::Minus1)?;
        mel.narrow(D::Minus1, *prompt_frames, frames - prompt_frames)
    }

    /// `trim_fade`: the first `fade_samples` samples zeroed, the next `fade_samples`
    /// multiplied by `(cos(linspace(pi, 0, n)) + 1) / 2`, to hide spill-over from the
    /// prompt. Waves shorter than the fade are faded as far as they go.
    pub fn trim_fade(&self, wave: &Tensor) -> candle_core::Result<Tensor> {
        let (_, len) = wave.dims2()?;
        let faded = len.min(2 * self.fade_samples);
        let fade: Vec<f32> = (0..faded).map(|i| self.fade_gain(i)).collect();
        let fade = Tensor::from_vec(fade, (1, faded), wave.device())?.to_dtype(wave.dtype())?;
        let head = wave.narrow(1, 0, faded)?.broadcast_mul(&fade)?;
        Tensor::cat(&[&head, &wave.narrow(1, faded, len - faded)?], 1)
    }

    /// The gain [`S3Gen::trim_fade`] gives sample `index` of a wave.
    pub fn fade_gain(&self, index: usize) -> f32 {
        let n = self.fade_samples;
        if index < n {
            return 0.0;
        }
        if index >= 2 * n {
            return 1.0;
        }
        let step = 1.0 / n.saturating_sub(1).max(1) as f32;
        // torch.linspace(pi, 0, n)
        let angle = std::f32::consts::PI * (1.0 - (index - n) as f32 * step);
        (angle.cos() + 1.0) / 2.0
    }
}
