//! The native engine: Chatterbox Turbo ([`ChatterboxTurbo`]) loaded once, on the device
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
use chatterbox::s3gen::stream::StreamSchedule;
use chatterbox::t3::{Precision, SamplingParams};
use chatterbox::tts::{ChatterboxTurbo, SynthesisError, SynthesisOptions};
use chatterbox::voice_conditioner::VoiceConditioner;
use resonance_domain::GenerationParams;
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

/// Speaks one chunk of text (see [`crate::chunking`]) with the model.
pub struct ChatterboxSynthesizer {
    model: Arc<ChatterboxTurbo>,
    voices: Arc<dyn VoiceConditioning>,
    t3: T3Scheduler,
    max_speech_tokens: Option<usize>,
}

impl ChatterboxSynthesizer {
    /// Starts the T3 decoding thread.
    pub fn new(model: Arc<ChatterboxTurbo>, voices: Arc<dyn VoiceConditioning>) -> Self {
        Self {
            t3: T3Scheduler::start(model.clone()),
            model,
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
        let voice = self.voices.conditionals(&request.voice)?;
        let mut options = SynthesisOptions {
            sampling: sampling_params(&request.params),
            seed: request.seed,
        };
        if let Some(tokens) = self.max_speech_tokens {
            options.sampling.max_new_tokens = tokens;
        }
        let mut listening = true;
        let result = self.model.synthesize_streaming_with(
            &request.text,
            &voice,
            &options,
            StreamSchedule::default(),
            |text_tokens, on_token| {
                self.t3
                    .speech_tokens(&self.model, text_tokens, &voice.t3, &options, on_token)
            },
            &mut |piece| {
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

/// The loaded model, and the conditioning of library voices through object storage.
pub struct NativeModel {
    model: Arc<ChatterboxTurbo>,
    voices: Arc<StoredVoiceConditioning>,
}

impl NativeModel {
    /// Loads the checkpoint in `model_dir` (on a blocking thread, on `device`, T3 in
    /// `precision`); library voices are conditioned from their reference audio in
    /// `storage`.
    pub async fn load(
        model_dir: &Path,
        device: DeviceSetting,
        precision: Precision,
        storage: Storage,
    ) -> anyhow::Result<Self> {
        let dir = model_dir.to_path_buf();
        let (model, conditioner) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let cfg = ChatterboxTurbo::config_for(&dir, &chatterbox::checkpoint::TURBO)?;
            let device = device
                .open()
                .with_context(|| format!("opening the device {device}"))?;
            let model = ChatterboxTurbo::load_with_precision(&dir, &chatterbox::checkpoint::TURBO, &cfg, &device, precision)?;
            tracing::info!(
                "loaded the model on {} with T3 in {precision}",
                describe(&device)
            );
            for warning in model.load_warnings() {
                tracing::warn!("{warning}");
            }
            let conditioner = VoiceConditioner::load(&dir, &cfg, &device)?;
            Ok((Arc::new(model), conditioner))
        })
        .await
        .context("loading the model panicked")??;
        let voices = Arc::new(StoredVoiceConditioning::new(
            conditioner,
            storage,
            tokio::runtime::Handle::current(),
            model.device().clone(),
        ));
        Ok(Self { model, voices })
    }

    /// The checkpoint's built-in voice with its sample spoken (seed 0), when it has one.
    pub async fn builtin_voice(&self) -> anyhow::Result<Option<BuiltinVoice>> {
        let Some(conditionals) = self.model.builtin_voice() else {
            return Ok(None);
        };
        let conditioning = conditionals.to_safetensors()?;
        let speaker = self.model.clone();
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
        ChatterboxSynthesizer::new(self.model, self.voices).start(concurrency, QUEUE_CAPACITY)
    }
}
