//! The native engine: Chatterbox Turbo ([`ChatterboxTurbo`]), and Nano when its T3 is in
//! the model folder, loaded once (sharing everything but T3), on the device
//! of the `device` setting ([`DeviceSetting`]), and shared by every request, synthesizing
//! on blocking threads behind [`QueuedEngine`]: at most `concurrency` requests at once,
//! whose T3 decoding runs in one batch on a thread of its own ([`T3Scheduler`]), while
//! each request's prefill, S3Gen and voice conditioning run on its own thread, S3Gen
//! speaking the tokens in windows as they come ([`StreamSchedule`]). A voice reaches
//! the model as its [`Conditionals`](chatterbox::conditionals::Conditionals), which a [`VoiceConditioning`] provider supplies: the
//! platform computes them from the voice's reference audio and caches them
//! ([`StoredVoiceConditioning`]); [`BuiltinVoices`] holds voices already computed, for the
//! command line.

mod conditioning;
mod device;
mod scheduler;
mod voice_cache;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chatterbox::checkpoint::Checkpoint;
use chatterbox::s3gen::S3GenPrecision;
use chatterbox::s3gen::stream::StreamSchedule;
use chatterbox::t3::{Precision, SamplingParams};
use chatterbox::tts::{ChatterboxTurbo, SynthesisError, SynthesisOptions};
use chatterbox::voice_conditioner::VoiceConditioner;
use resonance_domain::{GenerationParams, SpeechModel};
use resonance_storage::Storage;

pub use self::conditioning::{BuiltinVoices, VoiceConditioning};
pub use self::device::{CUDA_BUILT, DeviceSetting, DeviceSettingError, describe};
pub use self::scheduler::T3Scheduler;
pub use self::voice_cache::StoredVoiceConditioning;
use crate::queue::{QueuedEngine, Synthesizer};
use crate::{EngineError, SynthesisRequest};

pub const ENGINE_NAME: &str = "chatterbox";

/// Requests waiting for a synthesis slot; generation workers wait beyond it.
const QUEUE_CAPACITY: usize = 64;

/// What the checkpoint's built-in voice says as its sample in the voice library.
const BUILTIN_SAMPLE_TEXT: &str =
    "Hello! This is the default voice of Resonance. Type anything and I will say it.";

/// The model's sampling settings for a generation's parameters.
pub fn sampling_params(params: &GenerationParams) -> SamplingParams {
    SamplingParams {
        temperature: params.temperature(),
        top_k: params.top_k() as usize,
        top_p: params.top_p(),
        repetition_penalty: params.repetition_penalty(),
        ..SamplingParams::default()
    }
}

/// The checkpoint of `model` (its files in the model folder).
pub fn checkpoint(model: SpeechModel) -> Checkpoint {
    Checkpoint::by_id(model.name()).expect("every speech model has a checkpoint")
}

/// The models a folder holds of `wanted`: `wanted[0]` always (loading names what it
/// lacks), the others when their T3 file is there.
pub fn models_in(model_dir: &Path, wanted: &[SpeechModel]) -> Vec<SpeechModel> {
    wanted
        .iter()
        .enumerate()
        .filter(|(i, model)| *i == 0 || model_dir.join(checkpoint(**model).t3_weights).exists())
        .map(|(_, model)| *model)
        .collect()
}

/// One loaded model with its T3 decoding thread.
struct Served {
    name: SpeechModel,
    model: Arc<ChatterboxTurbo>,
    t3: T3Scheduler,
}

/// Speaks one chunk of text (see [`crate::chunking`]) with the model the request names.
pub struct ChatterboxSynthesizer {
    models: Vec<Served>,
    voices: Arc<dyn VoiceConditioning>,
    max_speech_tokens: Option<usize>,
}

impl ChatterboxSynthesizer {
    /// Serves `model` as the default [`SpeechModel`].
    pub fn new(model: Arc<ChatterboxTurbo>, voices: Arc<dyn VoiceConditioning>) -> Self {
        Self::serving(vec![(SpeechModel::default(), model)], voices)
    }

    /// Serves each model under its name, starting a T3 decoding thread for each.
    pub fn serving(
        models: Vec<(SpeechModel, Arc<ChatterboxTurbo>)>,
        voices: Arc<dyn VoiceConditioning>,
    ) -> Self {
        let models = models
            .into_iter()
            .map(|(name, model)| Served {
                name,
                t3: T3Scheduler::start(model.clone()),
                model,
            })
            .collect();
        Self {
            models,
            voices,
            max_speech_tokens: None,
        }
    }

    /// Caps T3's speech tokens per chunk below the model's 1000 (40 s): benchmarks on
    /// random weights, which rarely sample the stop token, make speech of a set length.
    pub fn with_max_speech_tokens(mut self, tokens: usize) -> Self {
        self.max_speech_tokens = Some(tokens);
        self
    }

    /// The engine: at most `concurrency` syntheses at once (and as many sequences
    /// decoding together), `capacity` waiting.
    pub fn start(self, concurrency: usize, capacity: usize) -> QueuedEngine {
        QueuedEngine::start(ENGINE_NAME, Arc::new(self), concurrency, capacity)
    }
}

impl Synthesizer for ChatterboxSynthesizer {
    fn synthesize(
        &self,
        request: &SynthesisRequest,
        audio: &mut dyn FnMut(Vec<f32>) -> bool,
    ) -> Result<(), EngineError> {
        let wanted = request.params.model();
        let Some(served) = self.models.iter().find(|m| m.name == wanted) else {
            let loaded: Vec<&str> = self.models.iter().map(|m| m.name.name()).collect();
            return Err(EngineError::InvalidRequest(format!(
                "the model {wanted} is not loaded here (loaded: {})",
                loaded.join(", ")
            )));
        };
        let voice = self.voices.conditionals(&request.voice)?;
        let mut options = SynthesisOptions {
            sampling: sampling_params(&request.params),
            seed: request.seed,
        };
        if let Some(tokens) = self.max_speech_tokens {
            options.sampling.max_new_tokens = tokens;
        }
        let mut listening = true;
        let spoken = std::cell::Cell::new(false);
        let result = served.model.synthesize_streaming_with(
            &request.text,
            &voice,
            &options,
            StreamSchedule::default(),
            |text_tokens, on_token| {
                served.t3.speech_tokens(
                    &served.model,
                    text_tokens,
                    &voice.t3,
                    &options,
                    &|| spoken.get(),
                    on_token,
                )
            },
            &mut |piece| {
                spoken.set(true);
                listening = audio(piece.to_vec());
                if listening {
                    Ok(())
                } else {
                    Err(candle_core::Error::Msg("nobody listens any more".into()))
                }
            },
        );
        match result {
            Ok(()) => Ok(()),
            // The caller went away; what it would have got does not matter.
            Err(_) if !listening => Ok(()),
            Err(SynthesisError::Text(e)) => Err(EngineError::InvalidRequest(e.to_string())),
            Err(SynthesisError::Voice(e)) => Err(EngineError::VoiceUnavailable(e.to_string())),
            Err(SynthesisError::Model(e)) => Err(EngineError::Failed(e.to_string())),
        }
    }
}

/// The checkpoint's built-in voice, ready for the voice library.
pub struct BuiltinVoice {
    /// [`BUILTIN_SAMPLE_TEXT`] spoken by it, at [`crate::SAMPLE_RATE`].
    pub sample: Vec<f32>,
    /// Its conditionals as [`StoredVoiceConditioning`] stores them.
    pub conditioning: Vec<u8>,
}

/// The loaded models, and the conditioning of library voices through object storage.
pub struct NativeModel {
    /// The first is the one every part but T3 was loaded with.
    models: Vec<(SpeechModel, Arc<ChatterboxTurbo>)>,
    voices: Arc<StoredVoiceConditioning>,
}

impl NativeModel {
    /// Loads `models` from the checkpoint folder `model_dir` (on a blocking thread, on
    /// `device`, T3 in `precision` or the device's default when `None`, S3Gen in
    /// `s3gen_precision`), the first one whole and the others' T3 beside it; library
    /// voices are conditioned from their reference audio in `storage`.
    pub async fn load(
        model_dir: &Path,
        models: &[SpeechModel],
        device: DeviceSetting,
        precision: Option<Precision>,
        s3gen_precision: S3GenPrecision,
        storage: Storage,
    ) -> anyhow::Result<Self> {
        let dir = model_dir.to_path_buf();
        let names = models.to_vec();
        let (models, conditioner) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let device = device
                .open()
                .with_context(|| format!("opening the device {device}"))?;
            let precision = precision.unwrap_or_else(|| Precision::default_for(&device));
            let mut loaded: Vec<(SpeechModel, Arc<ChatterboxTurbo>)> = Vec::new();
            let mut conditioner = None;
            for name in names {
                let checkpoint = checkpoint(name);
                let cfg = ChatterboxTurbo::config_for(&dir, &checkpoint)?;
                let model = match loaded.first() {
                    Some((_, first)) => first.with_t3_of(&dir, &checkpoint, &cfg, precision)?,
                    None => {
                        conditioner = Some(VoiceConditioner::load(&dir, &cfg, &device)?);
                        ChatterboxTurbo::load_with_precision(
                            &dir,
                            &checkpoint,
                            &cfg,
                            &device,
                            precision,
                            s3gen_precision,
                        )?
                    }
                };
                let s3gen = if s3gen_precision.split_products_on(&device) {
                    "bf16 and split bf16 products on AMX tiles"
                } else if s3gen_precision.bf16_products_on(&device) {
                    "bf16 products"
                } else {
                    "f32 products"
                };
                tracing::info!(
                    "loaded {name} on {} with T3 in {precision} and S3Gen in {s3gen}",
                    describe(&device)
                );
                for warning in model.load_warnings() {
                    tracing::warn!("{warning}");
                }
                loaded.push((name, Arc::new(model)));
            }
            let conditioner = conditioner.context("no model to load")?;
            Ok((loaded, conditioner))
        })
        .await
        .context("loading the model panicked")??;
        let voices = Arc::new(StoredVoiceConditioning::new(
            conditioner,
            storage,
            tokio::runtime::Handle::current(),
            models[0].1.device().clone(),
        ));
        Ok(Self { models, voices })
    }

    /// The checkpoint's built-in voice with its sample spoken (seed 0), when it has one.
    pub async fn builtin_voice(&self) -> anyhow::Result<Option<BuiltinVoice>> {
        let speaker = self.models[0].1.clone();
        let Some(conditionals) = speaker.builtin_voice() else {
            return Ok(None);
        };
        let conditioning = conditionals.to_safetensors()?;
        let sample = tokio::task::spawn_blocking(move || {
            speaker.synthesize(
                BUILTIN_SAMPLE_TEXT,
                &conditionals,
                &SynthesisOptions::seeded(0),
            )
        })
        .await
        .context("speaking the built-in voice's sample panicked")?
        .context("speaking the built-in voice's sample")?;
        Ok(Some(BuiltinVoice {
            sample,
            conditioning,
        }))
    }

    /// The engine: at most `concurrency` syntheses at once, decoding T3 together.
    pub fn start(self, concurrency: usize) -> QueuedEngine {
        ChatterboxSynthesizer::serving(self.models, self.voices).start(concurrency, QUEUE_CAPACITY)
    }
}
