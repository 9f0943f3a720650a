//! T3 Turbo: text tokens to speech tokens (GPT-2 backbone).
//!
//! The reference is `T3.inference_turbo` (`chatterbox/models/t3/t3.py`). The
//! GPT-2 input is `[spkr_enc(speaker_emb) | speech_emb(prompt tokens) |
//! text_emb(text) | speech_emb(BOS)]`; the first speech token is sampled from the
//! prefill, then one token per KV-cached step until the stop token.
//!
//! ```no_run
//! use chatterbox::t3::{SamplingParams, SeededSampler, T3, T3Conditionals};
//! # fn run(vb: candle_nn::VarBuilder, speaker_emb: candle_core::Tensor,
//! #        prompt_tokens: Vec<u32>, text_tokens: Vec<u32>) -> candle_core::Result<()> {
//! let cfg = chatterbox::ChatterboxConfig::default();
//! let t3 = T3::new(&cfg.t3, vb)?; // vb over t3_turbo_v1.safetensors
//! let cond = T3Conditionals { speaker_emb, prompt_tokens };
//! let speech_tokens = t3.generate(
//!     &text_tokens,
//!     &cond,
//!     &SamplingParams::default(),
//!     &mut SeededSampler::new(42),
//! )?;
//! # Ok(()) }
//! ```

mod attention;
pub mod batch;
pub mod gpt2;
pub mod precision;
pub mod sampling;

use std::sync::Arc;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, embedding, linear, linear_no_bias};

use crate::config::T3Config;
use crate::recent::Recent;
pub use batch::T3Batch;
use gpt2::Conv1D;
pub use gpt2::{Gpt2, Gpt2Cache, Gpt2Prefix};
pub use precision::{Precision, UnknownPrecision};
pub use sampling::{Greedy, ReplayedUniforms, SamplingParams, SeededSampler, TokenSampler};

/// Voice conditioning of T3 (`T3Cond` in the reference).
#[derive(Debug, Clone)]
pub struct T3Conditionals {
    /// VoiceEncoder speaker embedding, (1, speaker_embed_size) or (speaker_embed_size,).
    pub speaker_emb: Tensor,
    /// S3 speech tokens of the reference clip (at most `speech_cond_prompt_len`,
    /// 375 = 15 s in the reference).
    pub prompt_tokens: Vec<u32>,
}

/// What one sampling step saw (for parity checks and diagnostics).
pub struct SampleStep<'a> {
    pub raw_logits: &'a [f32],
    pub processed_logits: &'a [f32],
    pub probs: &'a [f32],
    pub token: u32,
}

/// Voices whose conditioning keys and values [`T3`] keeps (about 50 MB each at full
/// size with a 10 s prompt).
const PREFIXES_KEPT: usize = 4;

/// What a voice's conditioning prefix depends on.
#[derive(PartialEq, Eq)]
struct ConditioningKey {
    speaker: Vec<u32>,
    prompt_tokens: Vec<u32>,
}

/// The speech head: 8-bit rows in `int8` on the CPU (a quarter of the 27 MB a decode
/// step reads at full size), candle's f32 `Linear` otherwise.
enum SpeechHead {
    Linear(Linear),
    Int8(Conv1D),
}

impl SpeechHead {
    fn new(linear: Linear, precision: Precision) -> Result<Self> {
        let weight = linear.weight();
        if precision != Precision::Int8 || !weight.device().is_cpu() {
            return Ok(Self::Linear(linear));
        }
        let bias = match linear.bias() {
            Some(bias) => bias.clone(),
            None => Tensor::zeros(weight.dim(0)?, DType::F32, weight.device())?,
        };
        match Conv1D::from_weights(weight.t()?, bias, precision)? {
            int8 @ Conv1D::Int8 { .. } => Ok(Self::Int8(int8)),
            _ => Ok(Self::Linear(linear)),
        }
    }

    /// Logits (B, V) of `hidden` (B, D).
    fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        match self {
            Self::Linear(linear) => linear.forward(hidden),
            Self::Int8(int8) => int8.forward(&hidden.unsqueeze(1)?)?.squeeze(1),
        }
    }
}

pub struct T3 {
    pub(crate) tfmr: Gpt2,
    prefixes: Recent<ConditioningKey, Gpt2Prefix>,
    text_emb: Embedding,
    speech_emb: Embedding,
    spkr_enc: Linear,
    speech_head: SpeechHead,
    cfg: T3Config,
    device: Device,
    dtype: DType,
}

impl T3 {
    /// Loads T3 from the official `t3_turbo_v1.safetensors` names (`tfmr.*`,
    /// `text_emb`, `speech_emb`, `cond_enc.spkr_enc`, `speech_head`), f32 weights.
    pub fn new(cfg: &T3Config, vb: VarBuilder) -> Result<Self> {
        Self::with_precision(cfg, Precision::Fp32, vb)
    }

    /// [`T3::new`] in `precision`.
    pub fn with_precision(cfg: &T3Config, precision: Precision, vb: VarBuilder) -> Result<Self> {
        let vb = vb.set_dtype(precision.dtype());
        let d = cfg.hidden_size;
        if cfg.gpt2.n_embd != d {
            candle_core::bail!(
                "T3 hidden_size {d} differs from GPT-2 n_embd {}",
                cfg.gpt2.n_embd
            );
        }
        let head = if cfg.speech_head_bias {
            linear
        } else {
            linear_no_bias
        };
        Ok(Self {
            tfmr: Gpt2::with_precision(&cfg.gpt2, precision, vb.pp("tfmr"))?,
            prefixes: Recent::new(PREFIXES_KEPT),
            text_emb: embedding(cfg.text_tokens_dict_size, d, vb.pp("text_emb"))?,
            speech_emb: embedding(cfg.speech_tokens_dict_size, d, vb.pp("speech_emb"))?,
            spkr_enc: linear(cfg.speaker_embed_size, d, vb.pp("cond_enc.spkr_enc"))?,
            speech_head: SpeechHead::new(
                head(d, cfg.speech_tokens_dict_size, vb.pp("speech_head"))?,
                precision,
            )?,
            cfg: cfg.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// `[spkr_enc(speaker_emb) | speech_emb(prompt tokens)]`: (1, 1 + P, D).
    pub fn conditioning_embeds(&self, cond: &T3Conditionals) -> Result<Tensor> {
        let n = cond.speaker_emb.elem_count();
        if n != self.cfg.speaker_embed_size {
            candle_core::bail!(
                "speaker embedding has {n} values, T3 expects {}",
                self.cfg.speaker_embed_size
            );
        }
        let speaker = self
            .spkr_enc
            .forward(
                &cond
                    .speaker_emb
                    .reshape((1, n))?
                    .to_device(&self.device)?
                    .to_dtype(self.dtype)?,
            )?
            .unsqueeze(1)?;
        let prompt = self.embed_speech(&cond.prompt_tokens)?;
        Tensor::cat(&[&speaker, &prompt], 1)
    }

    /// The prefill input `[conditioning | text_emb(text) | speech_emb(BOS)]`: (1, L, D).
    pub fn prefill_embeds(&self, text_tokens: &[u32], cond: &T3Conditionals) -> Result<Tensor> {
        let text = self.text_embeds(text_tokens)?;
        Tensor::cat(&[&self.conditioning_embeds(cond)?, &text], 1)
    }

    /// `[text_emb(text) | speech_emb(BOS)]`: (1, T + 1, D), what follows the conditioning.
    fn text_embeds(&self, text_tokens: &[u32]) -> Result<Tensor> {
        let text = self.embed(&self.text_emb, text_tokens, self.cfg.text_tokens_dict_size)?;
        let bos = self.embed_speech(&[self.cfg.start_speech_token])?;
        Tensor::cat(&[&text, &bos], 1)
    }

    /// The keys and values of a voice's conditioning positions, the same for all of its
    /// requests: computed on its first request, then kept for the [`PREFIXES_KEPT`]
    /// voices used last. `None` where caches cannot be copied (off the CPU).
    fn conditioning_prefix(
        &self,
        cond: &T3Conditionals,
        conditioning: &Tensor,
    ) -> Result<Option<Arc<Gpt2Prefix>>> {
        if !self.tfmr.caches_on_cpu() {
            return Ok(None);
        }
        let key = ConditioningKey {
            speaker: crate::recent::value_bits(&cond.speaker_emb)?,
            prompt_tokens: cond.prompt_tokens.clone(),
        };
        if let Some(prefix) = self.prefixes.get(&key) {
            return Ok(Some(prefix));
        }
        let mut cache = self.tfmr.new_cache(conditioning.dim(1)?)?;
        self.tfmr.forward(conditioning, &mut cache)?;
        let Some(prefix) = cache.prefix().map(Arc::new) else {
            return Ok(None);
        };
        self.prefixes.insert(key, Arc::clone(&prefix));
        Ok(Some(prefix))
    }

    pub(crate) fn embed_speech(&self, tokens: &[u32]) -> Result<Tensor> {
        self.embed(&self.speech_emb, tokens, self.cfg.speech_tokens_dict_size)
    }

    /// (1, N, D) embeddings of `tokens`, rejecting ids outside the vocabulary.
    fn embed(&self, table: &Embedding, tokens: &[u32], vocab: usize) -> Result<Tensor> {
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            candle_core::bail!("token id {bad} is outside the vocabulary of {vocab}");
        }
        let ids = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        table.forward(&ids)
    }

    /// Speech logits (B, V) of the last position of `hidden` (B, T, D).
    pub(crate) fn last_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let t = hidden.dim(1)?;
        self.speech_head
            .forward(&hidden.narrow(1, t - 1, 1)?.squeeze(1)?)
    }

    /// Generates speech tokens for `text_tokens` (GPT-2 BPE ids, no start/stop
    /// text tokens) in the voice of `cond`, as the reference's `inference_turbo`:
    /// sampling stops after the stop token (6562), which is not returned, or
    /// after `params.max_new_tokens` tokens. The KV cache is preallocated for
    /// the prefix plus `max_new_tokens`.
    pub fn generate(
        &self,
        text_tokens: &[u32],
        cond: &T3Conditionals,
        params: &SamplingParams,
        sampler: &mut dyn TokenSampler,
    ) -> Result<Vec<u32>> {
        self.generate_observed(text_tokens, cond, params, sampler, &mut |_| {})
    }

    /// [`T3::generate`], showing every sampling step to `observe`.
    pub fn generate_observed(
        &self,
        text_tokens: &[u32],
        cond: &T3Conditionals,
        params: &SamplingParams,
        sampler: &mut dyn TokenSampler,
        observe: &mut dyn FnMut(SampleStep),
    ) -> Result<Vec<u32>> {
        let mut sequence = self.prefill(text_tokens, cond, params)?;
        while !sequence.is_finished() {
            self.sample_next(&mut sequence, sampler, observe)?;
            if !sequence.is_finished() {
                self.decode_step(&mut [&mut sequence])?;
            }
        }
        Ok(sequence.into_speech_tokens())
    }

    /// Starts a generation (see [`T3::generate`]): runs the prefill into a new
    /// sequence, whose first token [`T3::sample_next`] then samples. The voice's
    /// conditioning positions come from the keys and values kept from its last request
    /// when there is one (on the CPU), so only the text's positions are computed.
    pub fn prefill(
        &self,
        text_tokens: &[u32],
        cond: &T3Conditionals,
        params: &SamplingParams,
    ) -> Result<T3Sequence> {
        params.validate()?;
        let conditioning = self.conditioning_embeds(cond)?;
        let text = self.text_embeds(text_tokens)?;
        let length = conditioning.dim(1)? + text.dim(1)?;
        let capacity = (length + params.max_new_tokens).min(self.tfmr.n_positions());
        let (mut cache, embeds) = match self.conditioning_prefix(cond, &conditioning)? {
            Some(prefix) => (prefix.to_cache(capacity)?, text),
            None => (
                self.tfmr.new_cache(capacity)?,
                Tensor::cat(&[&conditioning, &text], 1)?,
            ),
        };
        let hidden = crate::on_rayon_thread(|| self.tfmr.forward(&embeds, &mut cache))?;
        let next_logits = self.logits_rows(&hidden)?.pop();
        Ok(T3Sequence {
            cache,
            tokens: Vec::new(),
            params: params.clone(),
            next_logits,
            finished: params.max_new_tokens == 0,
            stop_token: self.cfg.stop_speech_token,
        })
    }

    /// Samples the next token of `sequence` from the logits of its last step, with
    /// the sequence's own settings; the sequence finishes at the stop token (not
    /// as its first token, as the reference), after `max_new_tokens`, when its
    /// cache is full, or when every token is filtered out.
    pub fn sample_next(
        &self,
        sequence: &mut T3Sequence,
        sampler: &mut dyn TokenSampler,
        observe: &mut dyn FnMut(SampleStep),
    ) -> Result<()> {
        let Some(raw) = sequence.next_logits.take() else {
            candle_core::bail!("T3 sequence has no logits to sample from");
        };
        let mut processed = raw.clone();
        // The repetition penalty sees the BOS at the first step, then only
        // the generated tokens.
        let bos = [self.cfg.start_speech_token];
        let context = if sequence.tokens.is_empty() {
            &bos[..]
        } else {
            &sequence.tokens[..]
        };
        sequence.params.process(&mut processed, context);
        if processed.iter().all(|&l| l == f32::NEG_INFINITY) {
            sequence.finished = true;
            return Ok(());
        }
        let probs = sampling::softmax(&processed);
        let token = sampler.sample(&probs)? as u32;
        observe(SampleStep {
            raw_logits: &raw,
            processed_logits: &processed,
            probs: &probs,
            token,
        });
        sequence.tokens.push(token);
        let tokens = sequence.tokens.len();
        // Quirk of the reference: only tokens after the first one can stop.
        sequence.finished = (token == sequence.stop_token && tokens > 1)
            || tokens >= sequence.params.max_new_tokens
            || sequence.cache.len() == sequence.cache.capacity();
        Ok(())
    }

    /// One decode step of several unfinished sequences together: each is fed its
    /// last sampled token at its own position and gets the logits of its next
    /// token. The projections and the speech head run once for all of them.
    pub fn decode_step(&self, sequences: &mut [&mut T3Sequence]) -> Result<()> {
        if sequences.is_empty() {
            return Ok(());
        }
        let mut last = Vec::with_capacity(sequences.len());
        for sequence in sequences.iter() {
            match (sequence.finished, sequence.tokens.last()) {
                (false, Some(&token)) => last.push(token),
                _ => candle_core::bail!("T3 decode step of a finished or unsampled sequence"),
            }
        }
        let embeds = self.embed_speech(&last)?.reshape((last.len(), 1, ()))?;
        let mut caches: Vec<&mut Gpt2Cache> = sequences.iter_mut().map(|s| &mut s.cache).collect();
        let hidden = crate::on_rayon_thread(|| self.tfmr.forward_batch(&embeds, &mut caches))?;
        for (sequence, logits) in sequences.iter_mut().zip(self.logits_rows(&hidden)?) {
            sequence.next_logits = Some(logits);
        }
        Ok(())
    }

    /// The speech logits of the last position of each row of `hidden` (B, T, D).
    fn logits_rows(&self, hidden: &Tensor) -> Result<Vec<Vec<f32>>> {
        self.last_logits(hidden)?
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()
    }
}

/// One generation in progress: its KV cache, the speech tokens sampled so far and
/// the logits of the next one. Made by [`T3::prefill`], advanced by
/// [`T3::sample_next`] and [`T3::decode_step`], alone or with others.
pub struct T3Sequence {
    cache: Gpt2Cache,
    tokens: Vec<u32>,
    params: SamplingParams,
    next_logits: Option<Vec<f32>>,
    finished: bool,
    stop_token: u32,
}

impl T3Sequence {
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The tokens sampled so far (with the stop token once sampled).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The generated speech tokens, without the stop token.
    pub fn into_speech_tokens(mut self) -> Vec<u32> {
        if self.tokens.last() == Some(&self.stop_token) {
            self.tokens.pop();
        }
        self.tokens
    }
}
