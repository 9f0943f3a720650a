//! A client that goes away from a streamed speech request cancels its generation (giving
//! back its quota, charging nothing), unless it asked with `keep_on_disconnect=true`; the
//! cancel stops this process's worker at once, not at its next heartbeat.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use resonance_engine::{EngineError, Speech, SpeechEngine, SynthesisRequest};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::tone::ToneEngine;
use crate::support::{TestApp, TestUser, long_text, test_worker};

/// The tone engine, answering its first call at once and every later one only when
/// allowed.
struct GatedEngine {
    tone: ToneEngine,
    later_calls: Semaphore,
    calls: AtomicUsize,
}

#[async_trait]
impl SpeechEngine for GatedEngine {
    fn name(&self) -> &str {
        "gated tone"
    }

    async fn synthesize(&self, request: SynthesisRequest) -> Result<Speech, EngineError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) > 0 {
            self.later_calls.acquire().await.unwrap().forget();
        }
        self.tone.synthesize(request).await
    }
}

struct World {
    app: TestApp,
    admin: TestUser,
    org: String,
    key: String,
    voice: String,
    engine: Arc<GatedEngine>,
    _worker: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for World {
    fn drop(&mut self) {
        self._worker.iter().for_each(|h| h.abort());
    }
}

/// A server whose worker renews its lease only every 30 s, so that only the in-process
/// cancel can stop it within a test.
async fn world() -> World {
    let app = TestApp::builder().spawn().await;
    let engine = Arc::new(GatedEngine {
        tone: ToneEngine::default(),
        later_calls: Semaphore::new(0),
        calls: AtomicUsize::new(0),
    });
    let mut worker = test_worker(&app.state, engine.clone());
    worker.settings.heartbeat = Duration::from_secs(30);
    worker.settings.lease = Duration::from_secs(90);
    let worker = worker.spawn("slow-heartbeat", 1);
    let admin = app.signed_up("admin@disconnect.example").await;
    let org = app.create_org(&admin, "Leavers").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let key = app.create_api_key(&admin, &org).await;
    World {
        app,
        admin,
        org,
        key,
        voice,
        engine,
        _worker: worker,
    }
}

/// The text of a job queued to see whether the worker is free.
const FREE: &str = "Are you free?";

impl World {
    /// Starts a streamed OpenAI request, reads its first audio, then drops the connection;
    /// the generation's id.
    async fn leave_after_first_audio(&self, query: &str) -> String {
        let client = self.app.key_client(&self.key);
        let mut response = client
            .post(self.app.url(&format!("/v1/audio/speech{query}")))
            .json(&json!({ "model": "tts-1", "input": long_text(), "voice": "Narrator", "response_format": "pcm" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let generation = response.headers()["history-item-id"]
            .to_str()
            .unwrap()
            .to_string();
        let first = response.chunk().await.unwrap().unwrap();
        assert!(!first.is_empty());
        assert_eq!(
            self.engine.calls.load(Ordering::SeqCst),
            2,
            "the second chunk waits in the engine"
        );
        drop(response);
        drop(client);
        generation
    }

    /// Queues a short job and waits for the worker to claim it (claiming needs no engine
    /// permit); its id once claimed.
    async fn worker_takes_a_new_job(&self) -> Option<String> {
        let queued: Value = self
            .admin
            .client
            .post(self.app.url("/api/generations"))
            .json(&json!({ "text": FREE, "voiceId": self.voice }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = queued["id"].as_str().unwrap().to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while tokio::time::Instant::now() < deadline {
            if self.app.generation_status(&self.admin, &id).await != "queued" {
                return Some(id);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

#[tokio::test]
async fn a_client_leaving_a_stream_cancels_its_generation_and_is_not_charged() {
    let w = world().await;
    let generation = w.leave_after_first_audio("").await;
    w.app
        .wait_for_status(&w.admin, &generation, "cancelled")
        .await;
    let next = w
        .worker_takes_a_new_job()
        .await
        .expect("the worker stopped at once, not at its next heartbeat");
    w.engine.later_calls.add_permits(10);
    w.app.wait_for_status(&w.admin, &next, "succeeded").await;
    assert_eq!(
        w.app.generation_status(&w.admin, &generation).await,
        "cancelled"
    );
    assert_eq!(
        w.app.characters_metered(&w.org).await,
        FREE.chars().count() as u64,
        "only the job that finished is charged"
    );
}

#[tokio::test]
async fn keep_on_disconnect_lets_the_generation_finish() {
    let w = world().await;
    let generation = w.leave_after_first_audio("?keep_on_disconnect=true").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.app.generation_status(&w.admin, &generation).await,
        "running"
    );
    w.engine.later_calls.add_permits(10);
    w.app
        .wait_for_status(&w.admin, &generation, "succeeded")
        .await;
    assert_eq!(
        w.app.characters_metered(&w.org).await,
        long_text().chars().count() as u64
    );
}

#[tokio::test]
async fn a_websocket_client_leaving_cancels_its_generations() {
    let w = world().await;
    let url = w
        .app
        .url("/v1/text-to-speech/Narrator/stream-input?output_format=pcm_24000")
        .replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("xi-api-key", w.key.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::Text(json!({ "text": " " }).to_string().into()))
        .await
        .unwrap();
    socket
        .send(Message::Text(
            json!({ "text": long_text(), "flush": true })
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert!(first["audio"].is_string(), "{first}");
    drop(socket);
    let history: Value = w
        .admin
        .client
        .get(w.app.url("/api/generations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let generation = history["generations"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.app
        .wait_for_status(&w.admin, &generation, "cancelled")
        .await;
    assert_eq!(w.app.characters_metered(&w.org).await, 0);
}
