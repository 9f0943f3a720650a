//! The native engine on a tiny random-weight checkpoint: voices it does not know are
//! refused, the domain's default parameters are the model's, long text is spoken chunk
//! by chunk with successive seeds, joined as [`chunking::speak`] joins every text, and
//! requests in flight together, whose T3 decoding shares steps, sound as they do alone; a
//! folder's second model (Nano) speaks the requests that name it.

use std::sync::Arc;

use chatterbox::checkpoint::NANO;
use chatterbox::s3gen::stream::StreamSchedule;
use chatterbox::t3::{Precision, SamplingParams};
use chatterbox::tts::{ChatterboxTurbo, SynthesisOptions};
use resonance_audio::crossfade;
use resonance_domain::{GenerationParams, SpeechModel, VoiceId};
use resonance_engine::chunking::{self, CHUNK_CROSSFADE, MAX_CHUNK_CHARS, split_text};
use resonance_engine::native::{BuiltinVoices, ChatterboxSynthesizer, sampling_params};
use resonance_engine::queue::QueuedEngine;
use resonance_engine::{EngineError, SAMPLE_RATE, SpeechEngine, SynthesisRequest, VoiceRef};
use resonance_storage::ObjectKey;

struct Fixture {
    _dir: tempfile::TempDir,
    model: Arc<ChatterboxTurbo>,
    engine: QueuedEngine,
    voice: VoiceRef,
}

fn tiny_engine() -> Fixture {
    tiny_engine_with(1)
}

fn tiny_engine_with(concurrency: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(dir.path()).unwrap();
    let model = Arc::new(chatterbox::testing::load_turbo(dir.path()).unwrap());
    let voices = Arc::new(BuiltinVoices::default());
    let voice = voice_ref(VoiceId::new());
    voices.insert(&voice.id, model.builtin_voice().unwrap());
    Fixture {
        _dir: dir,
        engine: ChatterboxSynthesizer::new(model.clone(), voices).start(concurrency, 8),
        model,
        voice,
    }
}

/// What the model speaks for `text` alone, streaming as the engine does.
fn streamed(model: &ChatterboxTurbo, text: &str, options: &SynthesisOptions) -> Vec<f32> {
    let voice = model.builtin_voice().unwrap();
    let mut samples = Vec::new();
    model
        .synthesize_streaming(
            text,
            &voice,
            options,
            StreamSchedule::default(),
            &mut |piece| {
                samples.extend_from_slice(piece);
                Ok(())
            },
        )
        .unwrap();
    samples
}

fn voice_ref(id: VoiceId) -> VoiceRef {
    VoiceRef {
        reference: ObjectKey::system_voice(&id),
        id,
    }
}

#[test]
fn the_domains_default_parameters_are_the_models() {
    assert_eq!(
        sampling_params(&GenerationParams::default()),
        SamplingParams::default()
    );
}

#[tokio::test]
async fn unknown_voices_and_blank_text_are_refused() {
    let fixture = tiny_engine();
    let unknown = SynthesisRequest {
        text: "Hi.".into(),
        voice: voice_ref(VoiceId::new()),
        params: GenerationParams::default(),
        seed: 1,
    };
    assert!(matches!(
        fixture.engine.synthesize(unknown).await,
        Err(EngineError::VoiceUnavailable(_))
    ));
    let blank = chunking::speak(
        &fixture.engine,
        "  ",
        &fixture.voice,
        GenerationParams::default(),
        1,
        |_| {},
    )
    .await;
    assert!(matches!(blank, Err(EngineError::InvalidRequest(_))));
}

#[tokio::test]
async fn long_text_is_spoken_chunk_by_chunk_with_successive_seeds() {
    let fixture = tiny_engine();
    let first = "One sentence that is long enough to matter here. ".repeat(4);
    let second = "Another one follows it, and it is also quite long. ".repeat(4);
    let text = format!("{first}{second}");
    let chunks = split_text(&text, MAX_CHUNK_CHARS);
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    let mut reported = Vec::new();
    let spoken = chunking::speak(
        &fixture.engine,
        &text,
        &fixture.voice,
        GenerationParams::default(),
        40,
        |step| reported.extend_from_slice(step.audio),
    )
    .await
    .unwrap();
    let waves: Vec<Vec<f32>> = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let options = SynthesisOptions {
                sampling: SamplingParams::default(),
                seed: 40 + i as u64,
            };
            streamed(&fixture.model, chunk, &options)
        })
        .collect();
    let waves: Vec<&[f32]> = waves.iter().map(Vec::as_slice).collect();
    let expected = crossfade::join(&waves, SAMPLE_RATE, CHUNK_CROSSFADE);
    assert_eq!(spoken.samples, expected);
    assert_eq!(reported, expected, "what is reported is what is spoken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_decoded_together_sound_as_they_do_alone() {
    let fixture = Arc::new(tiny_engine_with(3));
    let texts = ["Hello there.", "A somewhat longer sentence.", "Short."];
    let params = GenerationParams::default();
    let tasks: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let fixture = fixture.clone();
            let request = SynthesisRequest {
                text: text.to_string(),
                voice: fixture.voice.clone(),
                params,
                seed: 100 + i as u64,
            };
            tokio::spawn(async move { fixture.engine.synthesize(request).await })
        })
        .collect();
    for (i, (task, text)) in tasks.into_iter().zip(texts).enumerate() {
        let spoken = task.await.unwrap().unwrap();
        let alone = streamed(
            &fixture.model,
            text,
            &SynthesisOptions::seeded(100 + i as u64),
        );
        assert_eq!(spoken.samples, alone, "request {i}");
    }
}

#[tokio::test]
async fn speech_comes_in_pieces_and_stops_when_nobody_listens() {
    let fixture = tiny_engine();
    let request = SynthesisRequest {
        text: "Hello there, this is a somewhat longer sentence to stream.".into(),
        voice: fixture.voice.clone(),
        params: GenerationParams::default(),
        seed: 5,
    };
    let (audio, mut pieces) = tokio::sync::mpsc::unbounded_channel();
    fixture
        .engine
        .synthesize_streaming(request.clone(), audio)
        .await
        .unwrap();
    let mut all = Vec::new();
    while let Ok(piece) = pieces.try_recv() {
        all.push(piece);
    }
    assert!(all.len() >= 2, "{} pieces", all.len());

    // The synthesizer hears that the listener has gone and stops after that piece.
    let model = fixture.model.clone();
    let voices = Arc::new(BuiltinVoices::default());
    voices.insert(&fixture.voice.id, model.builtin_voice().unwrap());
    let synthesizer = ChatterboxSynthesizer::new(model, voices);
    let mut heard = 0;
    let stopped = tokio::task::spawn_blocking(move || {
        resonance_engine::queue::Synthesizer::synthesize(&synthesizer, &request, &mut |_| {
            heard += 1;
            false
        })
        .map(|()| heard)
    })
    .await
    .unwrap();
    assert_eq!(stopped, Ok(1));
}

#[tokio::test]
async fn each_request_is_spoken_by_the_model_it_names() {
    let fixture = tiny_engine();
    let dir = fixture._dir.path();
    chatterbox::testing::write_tiny_nano_t3(dir).unwrap();
    let nano_cfg = ChatterboxTurbo::config_for(dir, &NANO).unwrap();
    let nano = Arc::new(
        fixture
            .model
            .with_t3_of(dir, &NANO, &nano_cfg, Precision::default())
            .unwrap(),
    );
    let voices = Arc::new(BuiltinVoices::default());
    voices.insert(&fixture.voice.id, fixture.model.builtin_voice().unwrap());
    let engine = ChatterboxSynthesizer::serving(
        vec![
            (SpeechModel::ChatterboxTurbo, fixture.model.clone()),
            (SpeechModel::ChatterboxNano, nano.clone()),
        ],
        voices,
    )
    .start(2, 8);
    let request = |model| SynthesisRequest {
        text: "Hello there.".into(),
        voice: fixture.voice.clone(),
        params: GenerationParams::default().with_model(model),
        seed: 4,
    };
    let options = SynthesisOptions::seeded(4);
    let spoken_by_nano = engine
        .synthesize(request(SpeechModel::ChatterboxNano))
        .await
        .unwrap()
        .samples;
    assert_eq!(spoken_by_nano, streamed(&nano, "Hello there.", &options));
    let spoken_by_turbo = engine
        .synthesize(request(SpeechModel::ChatterboxTurbo))
        .await
        .unwrap()
        .samples;
    assert_eq!(
        spoken_by_turbo,
        streamed(&fixture.model, "Hello there.", &options)
    );
    assert_ne!(spoken_by_nano, spoken_by_turbo);

    match fixture
        .engine
        .synthesize(request(SpeechModel::ChatterboxNano))
        .await
    {
        Err(EngineError::InvalidRequest(message)) => assert!(
            message.contains("chatterbox-nano is not loaded here (loaded: chatterbox-turbo)"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}
