//! The whole model: text to a 24 kHz waveform in a voice, as the reference's
//! `ChatterboxTurboTTS.generate` (`chatterbox/tts_turbo.py`): `punc_norm` ->
//! GPT-2 tokenizer -> T3 -> drop non-speech tokens, append 3 silence tokens ->
//! S3Gen. The Perth watermark of the reference is not applied.
//!
//! ```no_run
//! use chatterbox::checkpoint::TURBO;
//! use chatterbox::tts::{ChatterboxTurbo, SynthesisOptions};
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::path::Path::new("data/models/chatterbox-turbo");
//! let cfg = ChatterboxTurbo::config_for(dir, &TURBO)?;
//! let model = ChatterboxTurbo::load(dir, &TURBO, &cfg, &candle_core::Device::Cpu)?;
//! let voice = model.builtin_voice().expect("the checkpoint has conds.pt");
//! let wave = model.synthesize("Hello [chuckle] there.", &voice, &SynthesisOptions::seeded(7))?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::checkpoint::{self, Checkpoint, LayoutError};
use crate::conditionals::Conditionals;
use crate::config::{ChatterboxConfig, ConfigError};
use crate::rng::{RandomSource, SeededRandom};
use crate::s3gen::stream::{S3GenStream, StreamSchedule};
use crate::s3gen::{S3Gen, S3GenPrecision};
use crate::t3::{Precision, SampleStep, SamplingParams, SeededSampler, T3, TokenSampler};
use crate::text::{TextError, TextTokenizer, punc_norm};
use crate::voice_encoder::VoiceEncoder;
use crate::weights::{CheckpointManifest, ReadTensors};

/// Output sample rate (Hz).
pub const SAMPLE_RATE: u32 = 24_000;
/// S3Gen's silence token, appended 3 times after T3's tokens.
pub const SILENCE_TOKEN: u32 = 4299;
/// Name under which the checkpoint's built-in voice is offered.
pub const BUILTIN_VOICE_NAME: &str = "Default";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the model folder {dir} lacks {}", .files.join(", "))]
    MissingFiles {
        dir: String,
        files: Vec<&'static str>,
    },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tokenizer(#[from] TextError),
    #[error("cannot load the model from {file}: {source}")]
    Weights {
        file: String,
        source: candle_core::Error,
    },
    #[error("cannot load the model: {0}")]
    Model(#[from] candle_core::Error),
}

/// One weights file of a checkpoint being loaded: where it is and which of its
/// tensors the model read.
struct WeightsFile {
    name: &'static str,
    path: PathBuf,
    read: ReadTensors,
}

impl WeightsFile {
    fn open(
        dir: &Path,
        name: &'static str,
        device: &Device,
    ) -> Result<(VarBuilder<'static>, Self), LoadError> {
        let path = dir.join(name);
        let file = |read| Self {
            name,
            path: path.clone(),
            read,
        };
        match crate::weights::open(&[("", &path)], DType::F32, device) {
            Ok((weights, read)) => Ok((weights, file(read))),
            Err(e) => Err(file(ReadTensors::default()).error(e)),
        }
    }

    /// A model part failed to load from this file (a tensor missing or misshapen).
    fn error(&self, source: candle_core::Error) -> LoadError {
        LoadError::Weights {
            file: self.path.display().to_string(),
            source,
        }
    }

    /// A warning naming the tensors of the file (`found`: the checkpoint's
    /// headers) that the model did not read and `official` does not list.
    fn unused_tensors(
        &self,
        found: &CheckpointManifest,
        official: &CheckpointManifest,
    ) -> Option<String> {
        let known = official.files.get(self.name).map(|f| &f.tensors);
        let unused: Vec<String> = found
            .files
            .get(self.name)?
            .tensors
            .keys()
            .filter(|name| !self.read.contains(name))
            .filter(|name| known.is_none_or(|k| !k.contains_key(*name)))
            .cloned()
            .collect();
        (!unused.is_empty()).then(|| {
            format!(
                "{} holds {} tensors the model does not use; they are ignored: {}.",
                self.path.display(),
                unused.len(),
                checkpoint::list(&unused)
            )
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SynthesisError {
    #[error(transparent)]
    Text(#[from] TextError),
    #[error("the voice does not fit this model: {0}")]
    Voice(candle_core::Error),
    #[error(transparent)]
    Model(#[from] candle_core::Error),
}

/// Per-request settings: sampling of T3 and the seed of every random draw
/// (T3 sampling and S3Gen noise), so a seed reproduces the same audio.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthesisOptions {
    pub sampling: SamplingParams,
    pub seed: u64,
}

impl SynthesisOptions {
    /// The reference's default sampling with `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self {
            sampling: SamplingParams::default(),
            seed,
        }
    }
}

/// One model of a checkpoint folder. Models of the same folder share everything
/// but T3 ([`ChatterboxTurbo::with_t3_of`]).
pub struct ChatterboxTurbo {
    cfg: ChatterboxConfig,
    t3: T3,
    s3gen: Arc<S3Gen>,
    voice_encoder: Arc<VoiceEncoder>,
    tokenizer: Arc<TextTokenizer>,
    builtin_voice: Option<Conditionals>,
    load_warnings: Vec<String>,
    device: Device,
}

impl ChatterboxTurbo {
    /// The configuration of `model` in `dir`: the folder's
    /// [`checkpoint::CONFIG_OVERRIDE`] when present, else the official one, with
    /// T3's sizes read from the model's T3 file when the folder has it
    /// ([`crate::config::T3Config::with_checkpoint_shapes`]: a Nano-sized T3, or
    /// another position table, loads as it is).
    pub fn config_for(dir: &Path, model: &Checkpoint) -> Result<ChatterboxConfig, LoadError> {
        let path = dir.join(checkpoint::CONFIG_OVERRIDE);
        let mut cfg = if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.display().to_string(),
                source,
            })?
        } else {
            ChatterboxConfig::default()
        };
        if dir.join(model.t3_weights).exists() {
            let header = CheckpointManifest::read(dir, &[model.t3_weights])?;
            let tensors = &header.files[model.t3_weights].tensors;
            cfg.t3 = cfg.t3.with_checkpoint_shapes(tensors).map_err(|reason| {
                ConfigError::Checkpoint {
                    path: dir.join(model.t3_weights).display().to_string(),
                    reason,
                }
            })?;
        }
        Ok(cfg)
    }

    /// Loads `model`'s T3, S3Gen, the VoiceEncoder, the tokenizer and the built-in
    /// voice (`conds.pt`, when the folder has one) from a checkpoint folder. Weights
    /// stored in float16 or bfloat16 are converted to f32. A tensor the model needs
    /// that is missing or of the wrong shape fails, naming it and its file; tensors
    /// that neither the model nor the official layout know are ignored and listed
    /// in [`ChatterboxTurbo::load_warnings`]. T3 runs in the device's default
    /// [`Precision`] ([`Precision::default_for`]), S3Gen in the default
    /// [`S3GenPrecision`].
    pub fn load(
        dir: &Path,
        model: &Checkpoint,
        cfg: &ChatterboxConfig,
        device: &Device,
    ) -> Result<Self, LoadError> {
        let precision = Precision::default_for(device);
        Self::load_with_precision(
            dir,
            model,
            cfg,
            device,
            precision,
            S3GenPrecision::default(),
        )
    }

    /// [`ChatterboxTurbo::load`] with T3's GPT-2 weights in `precision` and S3Gen's
    /// products in `s3gen_precision`.
    pub fn load_with_precision(
        dir: &Path,
        model: &Checkpoint,
        cfg: &ChatterboxConfig,
        device: &Device,
        precision: Precision,
        s3gen_precision: S3GenPrecision,
    ) -> Result<Self, LoadError> {
        let missing: Vec<&'static str> = model
            .files()
            .into_iter()
            .filter(|f| *f != checkpoint::BUILTIN_VOICE && !dir.join(f).exists())
            .collect();
        if !missing.is_empty() {
            return Err(LoadError::MissingFiles {
                dir: dir.display().to_string(),
                files: missing,
            });
        }
        // Headers only: a cut-short or foreign file is named before anything is mapped.
        let found = CheckpointManifest::read(dir, &model.weight_files())?;
        let (t3, t3_file) = load_t3(dir, model, cfg, device, precision)?;
        let (weights, s3gen_file) = WeightsFile::open(dir, checkpoint::S3GEN_WEIGHTS, device)?;
        let s3gen = S3Gen::with_precision(cfg, s3gen_precision, weights)
            .map_err(|e| s3gen_file.error(e))?;
        let (weights, ve_file) = WeightsFile::open(dir, checkpoint::VOICE_ENCODER_WEIGHTS, device)?;
        let voice_encoder = VoiceEncoder::new(&cfg.ve, weights).map_err(|e| ve_file.error(e))?;
        let official = CheckpointManifest::of(model);
        let load_warnings = [t3_file, s3gen_file, ve_file]
            .iter()
            .filter_map(|file| file.unused_tensors(&found, &official))
            .collect();
        let tokenizer = TextTokenizer::from_file(&dir.join(checkpoint::TOKENIZER))?;
        let conds_path = dir.join(checkpoint::BUILTIN_VOICE);
        let builtin_voice = if conds_path.exists() {
            let conds = Conditionals::from_torch_file(&conds_path, device)?;
            conds.validate(cfg)?;
            Some(conds)
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            t3,
            s3gen: Arc::new(s3gen),
            voice_encoder: Arc::new(voice_encoder),
            tokenizer: Arc::new(tokenizer),
            builtin_voice,
            load_warnings,
            device: device.clone(),
        })
    }

    /// `model` of the folder `dir` this model was loaded from, sharing everything
    /// but T3 with it (`cfg` from [`ChatterboxTurbo::config_for`]).
    pub fn with_t3_of(
        &self,
        dir: &Path,
        model: &Checkpoint,
        cfg: &ChatterboxConfig,
        precision: Precision,
    ) -> Result<Self, LoadError> {
        if !dir.join(model.t3_weights).exists() {
            return Err(LoadError::MissingFiles {
                dir: dir.display().to_string(),
                files: vec![model.t3_weights],
            });
        }
        let found = CheckpointManifest::read(dir, &[model.t3_weights])?;
        let (t3, t3_file) = load_t3(dir, model, cfg, &self.device, precision)?;
        Ok(Self {
            cfg: cfg.clone(),
            t3,
            s3gen: self.s3gen.clone(),
            voice_encoder: self.voice_encoder.clone(),
            tokenizer: self.tokenizer.clone(),
            builtin_voice: self.builtin_voice.clone(),
            load_warnings: t3_file
                .unused_tensors(&found, &CheckpointManifest::of(model))
                .into_iter()
                .collect(),
            device: self.device.clone(),
        })
    }

    /// What loading ignored: per weights file, the tensors neither the model nor
    /// the official layout use (each a sentence naming the file and the tensors).
    pub fn load_warnings(&self) -> &[String] {
        &self.load_warnings
    }

    pub fn config(&self) -> &ChatterboxConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// T3, for decoding speech tokens step by step ([`crate::t3::T3Batch`]).
    pub fn t3(&self) -> &T3 {
        &self.t3
    }

    /// S3Gen, for vocoding speech tokens as they come ([`S3GenStream`]).
    pub fn s3gen(&self) -> &S3Gen {
        &self.s3gen
    }

    /// The VoiceEncoder (T3's speaker embedding of a reference clip).
    pub fn voice_encoder(&self) -> &VoiceEncoder {
        &self.voice_encoder
    }

    /// The checkpoint's built-in voice (offered as [`BUILTIN_VOICE_NAME`]).
    pub fn builtin_voice(&self) -> Option<Conditionals> {
        self.builtin_voice.clone()
    }

    /// `punc_norm` then the GPT-2 tokenizer, as the reference.
    pub fn text_tokens(&self, text: &str) -> Result<Vec<u32>, TextError> {
        self.tokenizer.encode(&punc_norm(text))
    }

    /// T3: speech tokens for `text_tokens` in the voice (stop token excluded).
    pub fn speech_tokens(
        &self,
        text_tokens: &[u32],
        voice: &Conditionals,
        sampling: &SamplingParams,
        sampler: &mut dyn TokenSampler,
    ) -> candle_core::Result<Vec<u32>> {
        self.t3.generate(text_tokens, &voice.t3, sampling, sampler)
    }

    /// [`ChatterboxTurbo::speech_tokens`], showing every sampling step to
    /// `observe` (the first step comes right after the prefill).
    pub fn speech_tokens_observed(
        &self,
        text_tokens: &[u32],
        voice: &Conditionals,
        sampling: &SamplingParams,
        sampler: &mut dyn TokenSampler,
        observe: &mut dyn FnMut(SampleStep),
    ) -> candle_core::Result<Vec<u32>> {
        self.t3
            .generate_observed(text_tokens, &voice.t3, sampling, sampler, observe)
    }

    /// S3Gen: a (samples,) 24 kHz waveform for T3's tokens.
    pub fn vocode(
        &self,
        speech_tokens: &[u32],
        voice: &Conditionals,
        rng: &mut dyn RandomSource,
    ) -> candle_core::Result<Tensor> {
        let tokens = s3gen_tokens(speech_tokens, self.cfg.t3.start_speech_token);
        let tokens = Tensor::new(tokens.as_slice(), &self.device)?.unsqueeze(0)?;
        self.s3gen
            .inference(&tokens, &voice.s3gen, rng)?
            .flatten_all()
    }

    /// Text to 24 kHz mono samples in the voice.
    pub fn synthesize(
        &self,
        text: &str,
        voice: &Conditionals,
        options: &SynthesisOptions,
    ) -> Result<Vec<f32>, SynthesisError> {
        voice.validate(&self.cfg).map_err(SynthesisError::Voice)?;
        let text_tokens = self.text_tokens(text)?;
        let mut sampler = SeededSampler::new(options.seed);
        let speech = self.speech_tokens(&text_tokens, voice, &options.sampling, &mut sampler)?;
        let mut rng = SeededRandom::new(options.seed);
        let wave = self.vocode(&speech, voice, &mut rng)?;
        Ok(wave.to_dtype(DType::F32)?.to_vec1::<f32>()?)
    }

    /// [`ChatterboxTurbo::synthesize`] speaking while T3 decodes: `on_audio` gets each
    /// stretch of audio as soon as it is final (see [`S3GenStream`]); together they are
    /// the speech. An error from `on_audio` (say, nobody listens any more) stops it.
    pub fn synthesize_streaming(
        &self,
        text: &str,
        voice: &Conditionals,
        options: &SynthesisOptions,
        schedule: StreamSchedule,
        on_audio: &mut dyn FnMut(&[f32]) -> candle_core::Result<()>,
    ) -> Result<(), SynthesisError> {
        let speech_tokens =
            |text_tokens: &[u32], on_token: &mut dyn FnMut(u32) -> candle_core::Result<()>| {
                let mut sampler = SeededSampler::new(options.seed);
                let mut failed = Ok(());
                self.speech_tokens_observed(
                    text_tokens,
                    voice,
                    &options.sampling,
                    &mut sampler,
                    &mut |step| {
                        if failed.is_ok() {
                            failed = on_token(step.token);
                        }
                    },
                )?;
                failed
            };
        self.synthesize_streaming_with(text, voice, options, schedule, speech_tokens, on_audio)
    }

    /// [`ChatterboxTurbo::synthesize_streaming`] with T3's part done by `speech_tokens`,
    /// given the text's tokens and where to hand each token as it is sampled (e.g.
    /// decoded in a [`crate::t3::T3Batch`] with `SeededSampler::new(options.seed)`).
    pub fn synthesize_streaming_with(
        &self,
        text: &str,
        voice: &Conditionals,
        options: &SynthesisOptions,
        schedule: StreamSchedule,
        speech_tokens: impl FnOnce(
            &[u32],
            &mut dyn FnMut(u32) -> candle_core::Result<()>,
        ) -> candle_core::Result<()>,
        on_audio: &mut dyn FnMut(&[f32]) -> candle_core::Result<()>,
    ) -> Result<(), SynthesisError> {
        voice.validate(&self.cfg).map_err(SynthesisError::Voice)?;
        let text_tokens = self.text_tokens(text)?;
        let mut stream = S3GenStream::new(&self.s3gen, &voice.s3gen, schedule, options.seed)?;
        let speech_vocab = self.cfg.t3.start_speech_token;
        speech_tokens(&text_tokens, &mut |token| {
            if token >= speech_vocab {
                return Ok(());
            }
            let audio = stream.push(token)?;
            if audio.is_empty() {
                Ok(())
            } else {
                on_audio(&audio)
            }
        })?;
        on_audio(&stream.finish()?)?;
        Ok(())
    }
}

/// `model`'s T3 from its file in `dir`.
fn load_t3(
    dir: &Path,
    model: &Checkpoint,
    cfg: &ChatterboxConfig,
    device: &Device,
    precision: Precision,
) -> Result<(T3, WeightsFile), LoadError> {
    let (weights, file) = WeightsFile::open(dir, model.t3_weights, device)?;
    let t3 = T3::with_precision(&cfg.t3, precision, weights).map_err(|e| file.error(e))?;
    Ok((t3, file))
}

/// What S3Gen gets from T3's tokens: the speech codes (< `speech_vocab`: BOS,
/// EOS and anything above are dropped) followed by 3 silence tokens.
pub fn s3gen_tokens(speech_tokens: &[u32], speech_vocab: u32) -> Vec<u32> {
    speech_tokens
        .iter()
        .copied()
        .filter(|&t| t < speech_vocab)
        .chain([SILENCE_TOKEN; 3])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_speech_tokens_are_dropped_and_silence_appended() {
        assert_eq!(
            s3gen_tokens(&[5, 6561, 6560, 6562, 7000, 0], 6561),
            vec![5, 6560, 0, 4299, 4299, 4299]
        );
        assert_eq!(s3gen_tokens(&[], 6561), vec![4299; 3]);
    }
}
