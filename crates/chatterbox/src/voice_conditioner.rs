//! Voice cloning: the conditioning of both models on a user's reference clip
//! (`ChatterboxTurboTTS.prepare_conditionals` in the reference's `tts_turbo.py`).
//!
//! ```text
//! clip (any rate, > 5 s) --resample--> 24 kHz --BS.1770--> -27 LUFS
//!   first 10 s at 24 kHz -> S3Gen (`embed_ref`): Mel24k prompt mel; torchaudio-style
//!       resample to 16 kHz -> S3 prompt tokens (cut to mel frames / 2), CAMPPlus x-vector
//!   whole clip resampled to 16 kHz -> T3: VoiceEncoder speaker embedding,
//!       up to `speech_cond_prompt_len` (375) S3 tokens of its first 15 s
//! ```
//!
//! The reference resamples with librosa (soxr) where this uses resonance-audio's
//! windowed-sinc resampler; `embed_ref`'s own 24 -> 16 kHz step is reproduced sample
//! for sample ([`resample_like_torchaudio`]).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use resonance_audio::loudness::{LoudnessError, normalize_to};
use resonance_audio::resample::{ResampleError, Resampler, resample, resample_like_torchaudio};

use crate::ChatterboxConfig;
use crate::campplus::Campplus;
use crate::conditionals::Conditionals;
use crate::dsp::Mel24k;
use crate::s3gen::S3GenConditionals;
use crate::s3tokenizer::S3Tokenizer;
use crate::t3::T3Conditionals;
use crate::voice_encoder::VoiceEncoder;

/// A reference clip must be longer than this (the reference asserts it).
pub const MIN_REFERENCE_SECONDS: f64 = 5.0;
/// Integrated loudness the clip is normalized to (`norm_loudness`).
pub const REFERENCE_LUFS: f64 = -27.0;
/// S3Gen conditions on the first 10 s (`DEC_COND_LEN`).
pub(crate) const S3GEN_PROMPT_SECONDS: usize = 10;
/// T3's prompt tokens come from the first 15 s (`ENC_COND_LEN`).
const T3_PROMPT_SECONDS: usize = 15;
/// The voice encoder's weights in the official checkpoint.
pub const VOICE_ENCODER_FILE: &str = "ve.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum ConditioningError {
    #[error(
        "the reference clip is {seconds:.2} s long; voice cloning needs more than {MIN_REFERENCE_SECONDS} s"
    )]
    TooShort { seconds: f64 },
    #[error("the reference clip has a non-finite sample at {index}")]
    NonFinite { index: usize },
    #[error("reference clip: {0}")]
    Resample(#[from] ResampleError),
    #[error("reference clip: {0}")]
    Loudness(#[from] LoudnessError),
    #[error("voice conditioning: {0}")]
    Model(#[from] candle_core::Error),
}

/// The networks that turn a reference clip into [`Conditionals`]: the S3 tokenizer and
/// CAMPPlus (from the S3Gen checkpoint), the VoiceEncoder and S3Gen's prompt mel.
pub struct VoiceConditioner {
    tokenizer: S3Tokenizer,
    speaker_encoder: Campplus,
    voice_encoder: VoiceEncoder,
    mel: Mel24k,
    /// S3Gen's rate (24 kHz), at which the clip is normalized.
    pub(crate) s3gen_rate: u32,
    /// The tokenizer's and encoders' rate (16 kHz).
    speech_rate: u32,
    to_speech_rate: Resampler,
    t3_prompt_len: usize,
    device: Device,
}

impl VoiceConditioner {
    /// `s3gen` points at the root of `s3gen_meanflow.safetensors` (`tokenizer.*`,
    /// `speaker_encoder.*`), `ve` at the root of `ve.safetensors`.
    pub fn new(
        cfg: &ChatterboxConfig,
        s3gen: VarBuilder,
        ve: VarBuilder,
    ) -> candle_core::Result<Self> {
        let s3gen_rate = cfg.mel_24k.sampling_rate;
        let speech_rate = cfg.s3tokenizer.sample_rate;
        if cfg.ve.sample_rate != speech_rate {
            candle_core::bail!(
                "voice encoder runs at {} Hz but the tokenizer at {speech_rate} Hz",
                cfg.ve.sample_rate
            );
        }
        Ok(Self {
            tokenizer: S3Tokenizer::new(&cfg.s3tokenizer, s3gen.pp("tokenizer"))?,
            speaker_encoder: Campplus::new(&cfg.campplus, s3gen.pp("speaker_encoder"))?,
            voice_encoder: VoiceEncoder::new(&cfg.ve, ve)?,
            mel: Mel24k::new(&cfg.mel_24k)?,
            s3gen_rate,
            speech_rate,
            to_speech_rate: Resampler::new(s3gen_rate, speech_rate)
                .map_err(|e| candle_core::Error::Msg(e.to_string()))?,
            t3_prompt_len: cfg.t3.speech_cond_prompt_len,
            device: s3gen.device().clone(),
        })
    }

    /// Memory-maps `s3gen_meanflow.safetensors` and `ve.safetensors` from a checkpoint
    /// directory (float32).
    pub fn load(dir: &Path, cfg: &ChatterboxConfig, device: &Device) -> candle_core::Result<Self> {
        let load = |file: &str| crate::weights::load(&[dir.join(file)], DType::F32, device);
        Self::new(
            cfg,
            load(crate::s3gen::CHECKPOINT_FILE)?,
            load(VOICE_ENCODER_FILE)?,
        )
    }

    /// The conditionals of a mono reference clip in [-1, 1] at `sample_rate` Hz.
    pub fn prepare(
        &self,
        samples: &[f32],
        sample_rate: u32,
    ) -> Result<Conditionals, ConditioningError> {
        if let Some(index) = samples.iter().position(|s| !s.is_finite()) {
            return Err(ConditioningError::NonFinite { index });
        }
        let mut wav = resample(samples, sample_rate, self.s3gen_rate)?;
        let seconds = wav.len() as f64 / f64::from(self.s3gen_rate);
        if seconds <= MIN_REFERENCE_SECONDS {
            return Err(ConditioningError::TooShort { seconds });
        }
        normalize_to(&mut wav, self.s3gen_rate, REFERENCE_LUFS)?;
        let wav_speech_rate = self.to_speech_rate.process(&wav);
        let s3gen_len = wav
            .len()
            .min(S3GEN_PROMPT_SECONDS * self.s3gen_rate as usize);
        // The two are independent, and neither keeps both cores busy alone (measured: a
        // 10 s clip in 1.52 to 1.62 s together, 1.68 to 1.86 s one after the other).
        let (t3, s3gen) = rayon::join(
            || self.t3_conditionals(&wav_speech_rate),
            || self.s3gen_conditionals(&wav[..s3gen_len]),
        );
        Ok(Conditionals {
            t3: t3?,
            s3gen: s3gen?,
        })
    }

    /// S3Gen's conditioning on a loudness-normalized clip at 24 kHz (`embed_ref`; the
    /// caller keeps it to 10 s): prompt mel, S3 tokens and x-vector, the tokens cut to
    /// half the mel frames when the clip is not a whole number of 40 ms tokens.
    pub fn s3gen_conditionals(&self, wav_24k: &[f32]) -> candle_core::Result<S3GenConditionals> {
        let (mel, n_frames) = self.mel.compute(wav_24k)?;
        let mel = Tensor::from_vec(mel, (self.mel.filters().n_mels, n_frames), &self.device)?
            .t()?
            .unsqueeze(0)?
            .contiguous()?;
        let wav_16k = resample_like_torchaudio(wav_24k, self.s3gen_rate, self.speech_rate)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let embedding = self
            .speaker_encoder
            .embed(&wav_16k)?
            .to_dtype(DType::F32)?
            .unsqueeze(0)?;
        let mut tokens = self.tokenizer.tokenize(&wav_16k, None)?;
        tokens.truncate(n_frames / 2);
        let n_tokens = tokens.len();
        Ok(S3GenConditionals {
            tokens: Tensor::from_vec(tokens, (1, n_tokens), &self.device)?,
            mel,
            embedding,
        })
    }

    /// T3's conditioning on a loudness-normalized clip at 16 kHz: the VoiceEncoder
    /// embedding of all of it, the S3 tokens of its first 15 s (at most
    /// `speech_cond_prompt_len`).
    pub fn t3_conditionals(&self, wav_16k: &[f32]) -> candle_core::Result<T3Conditionals> {
        let prompt_len = wav_16k
            .len()
            .min(T3_PROMPT_SECONDS * self.speech_rate as usize);
        Ok(T3Conditionals {
            speaker_emb: self
                .voice_encoder
                .embed_utterance(wav_16k)?
                .to_dtype(DType::F32)?
                .unsqueeze(0)?,
            prompt_tokens: self
                .tokenizer
                .tokenize(&wav_16k[..prompt_len], Some(self.t3_prompt_len))?,
        })
    }
}
