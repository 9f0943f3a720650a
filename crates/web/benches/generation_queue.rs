//! The generation queue's own cost: 200 generations through real workers on SQLite and on
//! PostgreSQL with an engine that answers at once (a short tone), so what is measured is
//! claiming, leasing, storing and completing.
//!
//! - throughput: 200 jobs queued at once, 4 workers; jobs per second until all succeeded.
//! - added latency: 200 jobs queued one every 20 ms (the API notifies the workers, as
//!   `POST /api/generations` does); time from queueing to the engine being called, p50/p99.
//!
//! Run: `cargo bench -p resonance-web --bench generation_queue` (release), or `cargo test`
//! with the same arguments (dev profile; the cost is in the database and storage). Prints
//! PostgreSQL / SQLite ratios.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use resonance_db::{Database, NewGeneration, NewVoice};
use resonance_domain::{
    GenerationId, GenerationParams, GenerationText, Language, OrgId, OrganizationName,
    VoiceCategory, VoiceId, VoiceName, VoiceOwner,
};
use resonance_engine::{EngineError, Speech, SpeechEngine, SynthesisRequest};
use resonance_service::generations::cancellation::Cancellations;
use resonance_service::generations::events::JobEvents;
use resonance_service::generations::worker::{Worker, WorkerSettings};
use resonance_storage::{ObjectKey, Storage, UrlSigningSecret};
use resonance_testkit::postgres::TestPostgres;
use tokio::sync::Notify;

const JOBS: usize = 200;
const WORKERS: usize = 4;

/// Answers at once with 0.1 s of silence and records when each text reached it.
#[derive(Default)]
struct InstantEngine {
    started: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl SpeechEngine for InstantEngine {
    fn name(&self) -> &str {
        "instant"
    }

    async fn synthesize(&self, request: SynthesisRequest) -> Result<Speech, EngineError> {
        self.started
            .lock()
            .unwrap()
            .entry(request.text)
            .or_insert_with(Instant::now);
        Ok(Speech {
            samples: vec![0.0; 2400],
        })
    }
}

struct Bench {
    db: Arc<dyn Database>,
    org: OrgId,
    voice: VoiceId,
    worker: Worker,
    engine: Arc<InstantEngine>,
}

async fn bench_setup(url: &str, dir: &std::path::Path) -> Bench {
    let db = resonance_db::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    let storage = Storage::local(
        dir.join("objects"),
        UrlSigningSecret::new(vec![7u8; 32]).unwrap(),
    )
    .unwrap();
    let org = db
        .create_organization(&OrganizationName::parse("Bench").unwrap())
        .await
        .unwrap()
        .id;
    let voice = VoiceId::new();
    db.create_voice(&NewVoice {
        id: voice.clone(),
        owner: VoiceOwner::Org(org.clone()),
        name: VoiceName::parse("Narrator").unwrap(),
        description: None,
        category: VoiceCategory::General,
        language: Language::default(),
        object_key: Some(ObjectKey::custom_voice(&org, &voice).as_str().to_string()),
        consent: None,
    })
    .await
    .unwrap();
    let engine = Arc::new(InstantEngine::default());
    let worker = Worker {
        db: db.clone(),
        storage,
        engine: engine.clone(),
        new_jobs: Arc::new(Notify::new()),
        events: JobEvents::default(),
        cancellations: Cancellations::default(),
        settings: WorkerSettings::default(),
        record_timings: None,
    };
    Bench {
        db,
        org,
        voice,
        worker,
        engine,
    }
}

impl Bench {
    async fn queue(&self, text: &str) -> GenerationId {
        let id = GenerationId::new();
        self.db
            .create_generation(&NewGeneration {
                id: id.clone(),
                org_id: self.org.clone(),
                voice_id: self.voice.clone(),
                text: GenerationText::parse(text).unwrap(),
                params: GenerationParams::default(),
                seed: None,
            })
            .await
            .unwrap();
        self.worker.new_jobs.notify_one();
        id
    }

    async fn wait_all(&self, ids: &[GenerationId]) {
        for id in ids {
            loop {
                let g = self.db.get_generation(&self.org, id).await.unwrap();
                if g.status.is_finished() {
                    assert!(g.object_key.is_some(), "{:?}", g.failure_reason);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Throughput (jobs/s) and the added latency's p50 and p99.
struct QueueMeasure {
    jobs_per_s: f64,
    p50: Duration,
    p99: Duration,
}

async fn run(backend: &str, url: &str, dir: &std::path::Path) -> QueueMeasure {
    let bench = bench_setup(url, dir).await;
    let workers = bench.worker.spawn("bench", WORKERS);

    let start = Instant::now();
    let mut ids = Vec::with_capacity(JOBS);
    for n in 0..JOBS {
        ids.push(bench.queue(&format!("Burst job {n}.")).await);
    }
    bench.wait_all(&ids).await;
    let elapsed = start.elapsed();

    let mut queued_at = Vec::with_capacity(JOBS);
    let mut ids = Vec::with_capacity(JOBS);
    for n in 0..JOBS {
        let text = format!("Paced job {n}.");
        queued_at.push((text.clone(), Instant::now()));
        ids.push(bench.queue(&text).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bench.wait_all(&ids).await;
    let started = bench.engine.started.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = queued_at
        .iter()
        .map(|(text, at)| started[text].duration_since(*at))
        .collect();
    latencies.sort();
    workers.iter().for_each(|w| w.abort());

    let measure = QueueMeasure {
        jobs_per_s: JOBS as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    };
    println!(
        "{backend:<10} {WORKERS} workers: {:.0} jobs/s ({JOBS} queued at once, {:.2} s); \
         added latency p50 {:.1} ms, p99 {:.1} ms ({JOBS} paced jobs)",
        measure.jobs_per_s,
        elapsed.as_secs_f64(),
        measure.p50.as_secs_f64() * 1000.0,
        measure.p99.as_secs_f64() * 1000.0,
    );
    measure
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite = run("SQLite", &sqlite, &dir.path().join("sqlite")).await;
    let postgres_server = TestPostgres::new().await.unwrap();
    let postgres = run(
        "PostgreSQL",
        postgres_server.url(),
        &dir.path().join("postgres"),
    )
    .await;
    println!(
        "PostgreSQL / SQLite: throughput {:.2}, p50 latency {:.2}, p99 latency {:.2}",
        postgres.jobs_per_s / sqlite.jobs_per_s,
        postgres.p50.as_secs_f64() / sqlite.p50.as_secs_f64(),
        postgres.p99.as_secs_f64() / sqlite.p99.as_secs_f64(),
    );
}
