//! Generation workers against a real database (SQLite file and PostgreSQL), local object
//! storage and the deterministic tone engine of the tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use resonance_db::{Database, Generation, NewGeneration, NewVoice, UsageEvent, UsageKind};
use resonance_domain::{
    GenerationId, GenerationParams, GenerationStatus, GenerationText, Language, OrgId,
    OrganizationName, VoiceCategory, VoiceId, VoiceName, VoiceOwner,
};
use resonance_engine::chunking::CHUNK_CROSSFADE;
use resonance_engine::remote::RemoteEngine;
use resonance_engine::{SAMPLE_RATE, SpeechEngine};
use resonance_service::generations::cancellation::Cancellations;
use resonance_service::generations::events::JobEvents;
use resonance_service::generations::worker::Worker;
use resonance_storage::{KeyPrefix, ObjectKey, Storage, UrlSigningSecret};
use resonance_testkit::postgres::TestPostgres;
use tokio::sync::Notify;

use crate::support::tone::{SAMPLES_PER_CHAR, ToneEngine, tone};

struct Setup {
    db: Arc<dyn Database>,
    url: String,
    storage: Storage,
    org: OrgId,
    voice: VoiceId,
    _dir: tempfile::TempDir,
    _postgres: Option<TestPostgres>,
}

async fn setup(postgres: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = if postgres {
        let pg = TestPostgres::new().await.unwrap();
        (pg.url().to_string(), Some(pg))
    } else {
        (
            format!("sqlite://{}", dir.path().join("db.sqlite").display()),
            None,
        )
    };
    let db = resonance_db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let storage = Storage::local(
        dir.path().join("objects"),
        UrlSigningSecret::new(vec![7u8; 32]).unwrap(),
    )
    .unwrap();
    let org = db
        .create_organization(&OrganizationName::parse("Acme").unwrap())
        .await
        .unwrap()
        .id;
    let voice = VoiceId::new();
    let key = ObjectKey::custom_voice(&org, &voice);
    db.create_voice(&NewVoice {
        id: voice.clone(),
        owner: VoiceOwner::Org(org.clone()),
        name: VoiceName::parse("Narrator").unwrap(),
        description: None,
        category: VoiceCategory::General,
        language: Language::default(),
        object_key: Some(key.as_str().to_string()),
        consent: None,
    })
    .await
    .unwrap();
    Setup {
        db,
        url,
        storage,
        org,
        voice,
        _dir: dir,
        _postgres: pg,
    }
}

impl Setup {
    /// The organization's usage from generations (its voice's creation left out).
    async fn generation_usage(&self) -> Vec<UsageEvent> {
        let mut usage = self.db.list_usage_events(&self.org).await.unwrap();
        usage.retain(|event| event.kind == UsageKind::TtsGeneration);
        usage
    }

    fn worker(&self, db: Arc<dyn Database>, engine: Arc<dyn SpeechEngine>) -> Worker {
        Worker {
            db,
            storage: self.storage.clone(),
            engine,
            new_jobs: Arc::new(Notify::new()),
            events: JobEvents::default(),
            cancellations: Cancellations::default(),
            settings: crate::support::test_worker_settings(),
            record_timings: None,
        }
    }

    async fn queue(&self, text: &str) -> Generation {
        self.db
            .create_generation(&NewGeneration {
                id: GenerationId::new(),
                org_id: self.org.clone(),
                voice_id: self.voice.clone(),
                text: GenerationText::parse(text).unwrap(),
                params: GenerationParams::default(),
                seed: Some(7),
            })
            .await
            .unwrap()
    }

    /// Waits until the generation has finished.
    async fn finished(&self, id: &GenerationId) -> Generation {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let generation = self.db.get_generation(&self.org, id).await.unwrap();
            if generation.status.is_finished() {
                return generation;
            }
            assert!(
                Instant::now() < deadline,
                "generation still {:?}",
                generation.status
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stored_generations(&self) -> Vec<ObjectKey> {
        self.storage
            .list(&KeyPrefix::generations(&self.org))
            .await
            .unwrap()
    }
}

fn decoded_len(wav: &[u8]) -> usize {
    let audio = resonance_audio::decode(wav, Some("audio/wav")).unwrap();
    assert_eq!(audio.sample_rate, SAMPLE_RATE);
    audio.samples.len()
}

async fn long_text_is_spoken_in_order_and_joined(postgres: bool) {
    let s = setup(postgres).await;
    let engine = Arc::new(ToneEngine::default());
    let workers = s.worker(s.db.clone(), engine.clone()).spawn("w", 1);
    let text = (1..=24)
        .map(|n| format!("Sentence number {n} is here to make the text long enough."))
        .collect::<Vec<_>>()
        .join(" ");
    let job = s.queue(&text).await;
    let done = s.finished(&job.id).await;
    assert_eq!(
        done.status,
        GenerationStatus::Succeeded,
        "{:?}",
        done.failure_reason
    );
    assert_eq!(done.progress, 100);

    let spoken = engine.spoken();
    assert!(spoken.len() >= 4, "{} chunks", spoken.len());
    assert_eq!(
        spoken.join(" "),
        text,
        "chunks spoken in order, nothing lost"
    );
    let key = ObjectKey::generation(&s.org, &job.id);
    assert_eq!(done.object_key.as_deref(), Some(key.as_str()));
    let overlap = (CHUNK_CROSSFADE.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize;
    let expected = spoken
        .iter()
        .map(|c| c.chars().count() * SAMPLES_PER_CHAR)
        .sum::<usize>()
        - overlap * (spoken.len() - 1);
    assert_eq!(decoded_len(&s.storage.get(&key).await.unwrap()), expected);

    let usage = s.generation_usage().await;
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].quantity, text.chars().count() as u64);
    workers.into_iter().for_each(|w| w.abort());
}

async fn engine_failure_fails_the_job_and_stores_and_charges_nothing(postgres: bool) {
    let s = setup(postgres).await;
    let workers = s
        .worker(s.db.clone(), Arc::new(ToneEngine::default()))
        .spawn("w", 1);
    let job = s.queue("This one will [fail] to speak.").await;
    let done = s.finished(&job.id).await;
    assert_eq!(done.status, GenerationStatus::Failed);
    let reason = done.failure_reason.unwrap();
    assert!(reason.contains("synthesis failed"), "{reason}");
    assert!(
        !reason.contains("secret"),
        "internal detail leaked: {reason}"
    );
    assert_eq!(done.object_key, None);
    assert!(s.stored_generations().await.is_empty());
    assert!(s.generation_usage().await.is_empty());
    workers.into_iter().for_each(|w| w.abort());
}

async fn a_killed_worker_s_job_is_run_again_once(postgres: bool) {
    let s = setup(postgres).await;
    let engine = Arc::new(ToneEngine::default());
    let job = s.queue("Hello [stall] world.").await;
    let doomed = s.worker(s.db.clone(), engine.clone()).spawn("doomed", 1);
    engine.stalled().await;
    doomed.into_iter().for_each(|w| w.abort());
    let running = s.db.get_generation(&s.org, &job.id).await.unwrap();
    assert_eq!(running.status, GenerationStatus::Running);

    let rescuer = s.worker(s.db.clone(), engine.clone()).spawn("rescuer", 1);
    let done = s.finished(&job.id).await;
    assert_eq!(done.status, GenerationStatus::Succeeded);
    assert_eq!(done.attempts, 2);
    assert_eq!(
        s.stored_generations().await,
        vec![ObjectKey::generation(&s.org, &job.id)]
    );
    assert_eq!(s.generation_usage().await.len(), 1);
    rescuer.into_iter().for_each(|w| w.abort());
}

async fn cancelling_a_running_job_stops_it_without_audio(postgres: bool) {
    let s = setup(postgres).await;
    let engine = Arc::new(ToneEngine::default());
    let job = s.queue("Hello [stall] world.").await;
    let workers = s.worker(s.db.clone(), engine.clone()).spawn("w", 1);
    engine.stalled().await;
    s.db.cancel_generation(&s.org, &job.id).await.unwrap();
    // The worker notices at its next heartbeat and moves on to the next job.
    let next = s.queue("Next one.").await;
    assert_eq!(
        s.finished(&next.id).await.status,
        GenerationStatus::Succeeded
    );
    let cancelled = s.db.get_generation(&s.org, &job.id).await.unwrap();
    assert_eq!(cancelled.status, GenerationStatus::Cancelled);
    assert_eq!(
        s.stored_generations().await,
        vec![ObjectKey::generation(&s.org, &next.id)]
    );
    workers.into_iter().for_each(|w| w.abort());
}

/// Defines `sqlite::<test>` and `postgres::<test>` for each `async fn <test>(postgres: bool)`.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(false).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(true).await;
                }
            )*
        }
    };
}

on_both_backends!(
    long_text_is_spoken_in_order_and_joined,
    engine_failure_fails_the_job_and_stores_and_charges_nothing,
    a_killed_worker_s_job_is_run_again_once,
    cancelling_a_running_job_stops_it_without_audio,
);

/// Two worker processes (separate connection pools) with three workers each on one
/// PostgreSQL: every job is spoken exactly once.
#[tokio::test]
async fn two_worker_processes_on_one_postgres_never_run_the_same_job() {
    let s = setup(true).await;
    let engine = Arc::new(ToneEngine::default());
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(s.queue(&format!("Job number {n}.")).await.id);
    }
    let other_pool = resonance_db::connect(&s.url).await.unwrap();
    let mut workers = s.worker(s.db.clone(), engine.clone()).spawn("a", 3);
    workers.extend(s.worker(other_pool, engine.clone()).spawn("b", 3));
    for id in &ids {
        let done = s.finished(id).await;
        assert_eq!(done.status, GenerationStatus::Succeeded);
        assert_eq!(done.attempts, 1);
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for text in engine.spoken.lock().unwrap().iter() {
        *counts.entry(text.clone()).or_default() += 1;
    }
    assert_eq!(counts.len(), 30);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    assert_eq!(s.generation_usage().await.len(), 30);
    workers.into_iter().for_each(|w| w.abort());
}

/// The `remote` engine through the whole job path, against a server speaking the inference
/// service's `/generate` contract.
#[tokio::test]
async fn remote_engine_runs_jobs_end_to_end() {
    use axum::Json;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    let s = setup(false).await;
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/generate",
        post(
            move |headers: HeaderMap, Json(body): Json<serde_json::Value>| {
                let recorded = recorded.clone();
                async move {
                    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("remote-key")
                    {
                        return Err(StatusCode::UNAUTHORIZED);
                    }
                    let chars = body["prompt"].as_str().unwrap().chars().count();
                    recorded.lock().unwrap().push(body);
                    Ok(resonance_audio::wav::encode_wav_pcm16(
                        &tone(chars),
                        SAMPLE_RATE,
                    ))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let text = "Hello from the remote service.";
    let engine = Arc::new(RemoteEngine::new(&url, "remote-key", 2));
    let workers = s.worker(s.db.clone(), engine).spawn("w", 1);
    let job = s.queue(text).await;
    let done = s.finished(&job.id).await;
    assert_eq!(
        done.status,
        GenerationStatus::Succeeded,
        "{:?}",
        done.failure_reason
    );
    let wav = s
        .storage
        .get(&ObjectKey::generation(&s.org, &job.id))
        .await
        .unwrap();
    assert_eq!(decoded_len(&wav), text.len() * SAMPLES_PER_CHAR);
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["prompt"], text);
    assert_eq!(
        bodies[0]["voice_key"],
        ObjectKey::custom_voice(&s.org, &s.voice).as_str()
    );
    assert_eq!(bodies[0]["top_k"], 1000);
    workers.into_iter().for_each(|w| w.abort());

    // A remote that refuses the key fails the job with a reason and stores nothing.
    let refused = Arc::new(RemoteEngine::new(&url, "wrong-key", 1));
    let workers = s.worker(s.db.clone(), refused).spawn("w2", 1);
    let job = s.queue("Refused.").await;
    let done = s.finished(&job.id).await;
    assert_eq!(done.status, GenerationStatus::Failed);
    assert!(done.failure_reason.unwrap().contains("unavailable"));
    assert_eq!(s.stored_generations().await.len(), 1);
    workers.into_iter().for_each(|w| w.abort());
}
