//! The native `chatterbox` engine: one [`ChatterboxTurbo`] loaded once and
//! shared by every request, synthesizing on blocking threads behind
//! [`QueuedEngine`]. A voice reaches the model as its [`Conditionals`], which a
//! [`VoiceConditioning`] provider supplies (the platform computes them from the
//! voice's reference audio and caches them; [`BuiltinVoices`] holds voices
//! already computed, such as the checkpoint's built-in one).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chatterbox::conditionals::Conditionals;
use chatterbox::t3::SamplingParams;
use chatterbox::tts::{ChatterboxTurbo, SynthesisError, SynthesisOptions};
use resonance_engine::chunking::{MAX_CHUNK_CHARS, split_text};
use resonance_engine::queue::{QueuedEngine, Synthesizer};
use resonance_engine::{EngineError, Speech, SynthesisParams, SynthesisRequest, VoiceRef};

pub const ENGINE_NAME: &str = "chatterbox";

/// Supplies a voice's conditionals. Called on a synthesis thread, so it may
/// block (fetch the reference audio, run the conditioning networks).
pub trait VoiceConditioning: Send + Sync + 'static {
    /// `norm_loudness` asks for the reference's -27 LUFS normalization of the
    /// reference clip before conditioning (`prepare_conditionals`).
    fn conditionals(
        &self,
        voice: &VoiceRef,
        norm_loudness: bool,
    ) -> Result<Arc<Conditionals>, EngineError>;
}

/// Voices whose conditionals are already computed, by voice id.
#[derive(Default)]
pub struct BuiltinVoices(RwLock<HashMap<String, Arc<Conditionals>>>);

impl BuiltinVoices {
    pub fn insert(&self, voice_id: &str, conditionals: Conditionals) {
        self.0
            .write()
            .expect("voice table lock")
            .insert(voice_id.to_string(), Arc::new(conditionals));
    }
}

impl VoiceConditioning for BuiltinVoices {
    fn conditionals(
        &self,
        voice: &VoiceRef,
        _norm_loudness: bool,
    ) -> Result<Arc<Conditionals>, EngineError> {
        self.0
            .read()
            .expect("voice table lock")
            .get(&voice.id)
            .cloned()
            .ok_or_else(|| EngineError::VoiceUnavailable(format!("unknown voice {}", voice.id)))
    }
}

pub struct ChatterboxSynthesizer {
    model: Arc<ChatterboxTurbo>,
    voices: Arc<dyn VoiceConditioning>,
}

impl ChatterboxSynthesizer {
    pub fn new(model: Arc<ChatterboxTurbo>, voices: Arc<dyn VoiceConditioning>) -> Self {
        Self { model, voices }
    }

    /// The engine: at most `concurrency` syntheses at once, `capacity` waiting.
    pub fn start(self, concurrency: usize, capacity: usize) -> QueuedEngine {
        QueuedEngine::start(ENGINE_NAME, Arc::new(self), concurrency, capacity)
    }
}

/// The model's options for a request; without a seed, a random one.
pub fn synthesis_options(params: &SynthesisParams) -> SynthesisOptions {
    SynthesisOptions {
        sampling: SamplingParams {
            temperature: f64::from(params.temperature),
            top_k: params.top_k as usize,
            top_p: f64::from(params.top_p),
            repetition_penalty: f64::from(params.repetition_penalty),
            ..SamplingParams::default()
        },
        seed: params.seed.unwrap_or_else(rand::random),
    }
}

impl Synthesizer for ChatterboxSynthesizer {
    /// Long text is spoken chunk by chunk (see [`split_text`]), chunk `i` with
    /// seed `seed + i`, and the waves are concatenated.
    fn synthesize(&self, request: &SynthesisRequest) -> Result<Speech, EngineError> {
        let voice = self
            .voices
            .conditionals(&request.voice, request.params.norm_loudness)?;
        let options = synthesis_options(&request.params);
        options
            .sampling
            .validate()
            .map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
        let chunks = split_text(&request.text, MAX_CHUNK_CHARS);
        if chunks.is_empty() {
            return Err(EngineError::InvalidRequest(
                "there is no text to speak".into(),
            ));
        }
        let mut samples = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let chunk_options = SynthesisOptions {
                seed: options.seed.wrapping_add(i as u64),
                ..options.clone()
            };
            let wave = self
                .model
                .synthesize(chunk, &voice, &chunk_options)
                .map_err(|e| match e {
                    SynthesisError::Text(e) => EngineError::InvalidRequest(e.to_string()),
                    SynthesisError::Voice(e) => EngineError::VoiceUnavailable(e.to_string()),
                    SynthesisError::Model(e) => EngineError::Failed(e.to_string()),
                })?;
            samples.extend(wave);
        }
        Ok(Speech { samples })
    }
}

#[cfg(test)]
mod tests {
    use chatterbox::tts::SynthesisOptions;

    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        model: Arc<ChatterboxTurbo>,
        synthesizer: ChatterboxSynthesizer,
    }

    fn tiny_engine() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        chatterbox::testing::write_tiny_checkpoint(dir.path()).unwrap();
        let cfg = ChatterboxTurbo::config_for(dir.path()).unwrap();
        let model =
            Arc::new(ChatterboxTurbo::load(dir.path(), &cfg, &candle_core::Device::Cpu).unwrap());
        let voices = Arc::new(BuiltinVoices::default());
        voices.insert("v1", model.builtin_voice().unwrap());
        Fixture {
            _dir: dir,
            synthesizer: ChatterboxSynthesizer::new(model.clone(), voices),
            model,
        }
    }

    fn request(text: &str, voice: &str, params: SynthesisParams) -> SynthesisRequest {
        SynthesisRequest {
            text: text.into(),
            voice: VoiceRef {
                id: voice.into(),
                storage_key: format!("voices/{voice}"),
            },
            params,
        }
    }

    fn seeded(seed: u64) -> SynthesisParams {
        SynthesisParams {
            seed: Some(seed),
            ..SynthesisParams::default()
        }
    }

    #[test]
    fn unknown_voices_and_bad_requests_are_refused() {
        let engine = tiny_engine();
        let refuse = |r| engine.synthesizer.synthesize(&r).unwrap_err();
        assert!(matches!(
            refuse(request("Hi.", "nobody", seeded(1))),
            EngineError::VoiceUnavailable(_)
        ));
        assert!(matches!(
            refuse(request("  ", "v1", seeded(1))),
            EngineError::InvalidRequest(_)
        ));
        let bad_top_p = SynthesisParams {
            top_p: 1.5,
            ..seeded(1)
        };
        match refuse(request("Hi.", "v1", bad_top_p)) {
            EngineError::InvalidRequest(m) => assert!(m.contains("top_p"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_text_is_spoken_chunk_by_chunk_with_successive_seeds() {
        let engine = tiny_engine();
        let first = "One sentence that is long enough to matter here. ".repeat(4);
        let second = "Another one follows it, and it is also quite long. ".repeat(4);
        let text = format!("{first}{second}");
        let chunks = split_text(&text, MAX_CHUNK_CHARS);
        assert_eq!(chunks.len(), 2, "{chunks:?}");
        let speech = engine
            .synthesizer
            .synthesize(&request(&text, "v1", seeded(40)))
            .unwrap();
        let voice = engine.model.builtin_voice().unwrap();
        let mut expected = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let options = SynthesisOptions {
                seed: 40 + i as u64,
                ..synthesis_options(&seeded(40))
            };
            expected.extend(engine.model.synthesize(chunk, &voice, &options).unwrap());
        }
        assert_eq!(speech.samples, expected);
    }
}
