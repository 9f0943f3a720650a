//! The native `chatterbox` engine: one [`ChatterboxTurbo`] loaded once and
//! shared by every request, synthesizing on blocking threads behind
//! [`QueuedEngine`]. A voice reaches the model as its [`Conditionals`], which a
//! [`VoiceConditioning`] provider supplies (the platform computes them from the
//! voice's reference audio and caches them, [`StoredVoiceConditioning`];
//! [`BuiltinVoices`] holds voices already computed, for the command line).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use bytes::Bytes;
use candle_core::Device;
use chatterbox::conditionals::Conditionals;
use chatterbox::t3::{Precision, SamplingParams};
use chatterbox::tts::{BUILTIN_VOICE_NAME, ChatterboxTurbo, SynthesisError, SynthesisOptions};
use chatterbox::voice_conditioner::VoiceConditioner;
use resonance_audio::wav::encode_wav_pcm16;
use resonance_db::{Database, DbError, NewVoice};
use resonance_domain::{Language, VoiceCategory, VoiceDescription, VoiceId, VoiceName, VoiceOwner};
use resonance_engine::chunking::{MAX_CHUNK_CHARS, split_text};
use resonance_engine::queue::{QueuedEngine, Synthesizer};
use resonance_engine::{
    EngineError, SAMPLE_RATE, Speech, SynthesisParams, SynthesisRequest, VoiceRef,
};
use resonance_storage::{ObjectKey, Storage};

use crate::voice_cache::StoredVoiceConditioning;

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

/// What the checkpoint's built-in voice says as its sample in the voice library.
const BUILTIN_SAMPLE_TEXT: &str =
    "Hello! This is the default voice of Resonance. Type anything and I will say it.";

/// Loads the checkpoint in `model_dir` (on a blocking thread, T3 in `precision`) and starts
/// the engine, which
/// conditions library voices through `storage` ([`StoredVoiceConditioning`]). The
/// checkpoint's built-in voice becomes the SYSTEM voice [`BUILTIN_VOICE_NAME`] the first
/// time, with a sample spoken by it.
pub async fn start_native(
    model_dir: &Path,
    precision: Precision,
    concurrency: usize,
    db: &dyn Database,
    storage: &Storage,
) -> anyhow::Result<QueuedEngine> {
    let dir = model_dir.to_path_buf();
    let (model, conditioner) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let cfg = ChatterboxTurbo::config_for(&dir)?;
        let device = Device::Cpu;
        let model = ChatterboxTurbo::load_with_precision(&dir, &cfg, &device, precision)?;
        tracing::info!("loaded the model with T3 in {precision}");
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
        storage.clone(),
        tokio::runtime::Handle::current(),
        model.device().clone(),
    ));
    install_builtin_voice(&model, &voices, db, storage).await?;
    Ok(ChatterboxSynthesizer::new(model, voices).start(concurrency, QUEUE_CAPACITY))
}

/// Requests waiting for a synthesis slot; generation workers wait beyond it.
const QUEUE_CAPACITY: usize = 64;

async fn install_builtin_voice(
    model: &Arc<ChatterboxTurbo>,
    voices: &StoredVoiceConditioning,
    db: &dyn Database,
    storage: &Storage,
) -> anyhow::Result<()> {
    let Some(conditionals) = model.builtin_voice() else {
        return Ok(());
    };
    if builtin_voice_installed(db).await? {
        return Ok(());
    }
    let speaker = model.clone();
    let voice = conditionals.clone();
    let sample = tokio::task::spawn_blocking(move || {
        speaker.synthesize(BUILTIN_SAMPLE_TEXT, &voice, &SynthesisOptions::seeded(0))
    })
    .await
    .context("speaking the built-in voice's sample panicked")?
    .context("speaking the built-in voice's sample")?;
    let id = VoiceId::new();
    voices.insert(&id, conditionals).await?;
    let key = ObjectKey::system_voice(&id);
    storage
        .put(
            &key,
            Bytes::from(encode_wav_pcm16(&sample, SAMPLE_RATE)),
            "audio/wav",
        )
        .await?;
    let created = db
        .create_voice(&NewVoice {
            id: id.clone(),
            owner: VoiceOwner::System,
            name: VoiceName::parse(BUILTIN_VOICE_NAME)?,
            description: Some(VoiceDescription::parse(
                "The built-in voice of the Chatterbox Turbo checkpoint.",
            )?),
            category: VoiceCategory::General,
            language: Language::default(),
            object_key: Some(key.as_str().to_string()),
            consent: None,
        })
        .await;
    match created {
        Ok(_) => tracing::info!(
            "installed the checkpoint's built-in voice as the system voice \"{BUILTIN_VOICE_NAME}\""
        ),
        // System voice names are unique: another server starting on the same database
        // installed it first, and this one's copy goes.
        Err(DbError::Conflict(_)) if builtin_voice_installed(db).await? => {
            for object in [key, ObjectKey::voice_conditionals(&id)] {
                storage.delete(&object).await?;
            }
            tracing::info!("another server installed the built-in voice first");
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

async fn builtin_voice_installed(db: &dyn Database) -> anyhow::Result<bool> {
    Ok(db
        .system_voices()
        .await?
        .iter()
        .any(|voice| voice.name.as_str() == BUILTIN_VOICE_NAME))
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

    /// One server's start-up: its own model and conditioner from `checkpoint`, installing
    /// the built-in voice into the shared `db` and `storage`.
    async fn start_server(checkpoint: &Path, db: &dyn Database, storage: &Storage) {
        let cfg = ChatterboxTurbo::config_for(checkpoint).unwrap();
        let device = candle_core::Device::Cpu;
        let model = Arc::new(ChatterboxTurbo::load(checkpoint, &cfg, &device).unwrap());
        let conditioner = VoiceConditioner::load(checkpoint, &cfg, &device).unwrap();
        let voices = StoredVoiceConditioning::new(
            conditioner,
            storage.clone(),
            tokio::runtime::Handle::current(),
            device,
        );
        install_builtin_voice(&model, &voices, db, storage)
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_servers_on_one_new_database_install_the_builtin_voice_once() {
        let checkpoint = tempfile::tempdir().unwrap();
        chatterbox::testing::write_tiny_checkpoint(checkpoint.path()).unwrap();
        let postgres = resonance_testkit::postgres::TestPostgres::new()
            .await
            .unwrap();
        for postgres_url in [None, Some(postgres.url())] {
            let dir = tempfile::tempdir().unwrap();
            let url = postgres_url.map_or_else(
                || format!("sqlite://{}", dir.path().join("resonance.db").display()),
                str::to_string,
            );
            let db = resonance_db::connect(&url).await.unwrap();
            db.migrate().await.unwrap();
            let secret = resonance_storage::UrlSigningSecret::new(vec![7u8; 32]).unwrap();
            let storage = Storage::local(dir.path().join("objects"), secret).unwrap();
            tokio::join!(
                start_server(checkpoint.path(), db.as_ref(), &storage),
                start_server(checkpoint.path(), db.as_ref(), &storage),
            );
            let system = db.system_voices().await.unwrap();
            assert_eq!(system.len(), 1, "{url}");
            assert_eq!(system[0].name.as_str(), BUILTIN_VOICE_NAME);
            let stored = storage
                .list(&resonance_storage::KeyPrefix::everything())
                .await
                .unwrap();
            assert_eq!(
                stored.len(),
                2,
                "one sample and one set of conditionals: {stored:?}"
            );
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
