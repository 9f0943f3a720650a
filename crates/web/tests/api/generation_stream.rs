//! `GET /api/generations/{id}/stream` over HTTP against the real server: a listener that
//! comes after the first audio still hears all of it, exactly the stored file; leaving does
//! not cancel the job; another organization's job is a 404; a finished job, or one run by
//! a worker of another process, streams its stored audio.

use std::sync::Arc;
use std::time::Duration;

use crate::support::gated::GatedEngine;
use crate::support::tone::ToneEngine;
use crate::support::{TestApp, TestUser, long_text, pcm16, test_worker};
use resonance_domain::GenerationId;
use resonance_service::generations::events::{JobEvent, JobEvents};
use serde_json::{Value, json};

struct World {
    app: TestApp,
    admin: TestUser,
    voice: String,
}

async fn world(app: TestApp) -> World {
    let admin = app.signed_up("admin@listen.example").await;
    app.create_org(&admin, "Listeners").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    World { app, admin, voice }
}

impl World {
    /// Queues `text` without waiting; returns the generation's id.
    async fn queue(&self, text: &str) -> String {
        let response = self
            .admin
            .client
            .post(self.app.url("/api/generations"))
            .json(&json!({ "text": text, "voiceId": self.voice }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let generation: Value = response.json().await.unwrap();
        generation["id"].as_str().unwrap().to_string()
    }

    async fn listen(&self, generation: &str, query: &str) -> reqwest::Response {
        self.admin
            .client
            .get(
                self.app
                    .url(&format!("/api/generations/{generation}/stream{query}")),
            )
            .send()
            .await
            .unwrap()
    }
}

/// Reads the rest of the body after `first`.
async fn rest(mut response: reqwest::Response, first: &[u8]) -> Vec<u8> {
    let mut all = first.to_vec();
    while let Some(more) = response.chunk().await.unwrap() {
        all.extend_from_slice(&more);
    }
    all
}

/// Waits until the worker of the server's process has published audio of `generation`.
async fn first_audio_published(app: &TestApp, generation: &str) {
    let id = GenerationId::parse(generation).unwrap();
    let mut peek = app.state.job_events.subscribe(&id);
    assert!(peek.is_claimed(), "the server's worker runs the job");
    let event = tokio::time::timeout(Duration::from_secs(10), peek.next())
        .await
        .expect("audio was published");
    assert!(matches!(event, Some(JobEvent::Audio(samples)) if !samples.is_empty()));
}

#[tokio::test]
async fn a_listener_after_the_first_audio_hears_all_of_it_while_the_job_runs() {
    let engine = Arc::new(GatedEngine::default());
    let w = world(TestApp::builder().engine(engine.clone()).spawn().await).await;
    let generation = w.queue(&long_text()).await;
    engine.gated().await;
    first_audio_published(&w.app, &generation).await;

    let mut response = w.listen(&generation, "").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/pcm;rate=24000");
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("the audio made so far comes at once")
        .unwrap()
        .unwrap();
    assert!(!first.is_empty());
    assert_eq!(
        w.app.generation_status(&w.admin, &generation).await,
        "running"
    );

    // A second listener at the same time hears the same.
    let second = w.listen(&generation, "").await;
    assert_eq!(second.status(), 200);

    engine.release(10);
    let streamed = pcm16(&rest(response, &first).await);
    let stored = w.app.stored_samples(&w.admin, &generation).await;
    assert!(!stored.is_empty());
    assert_eq!(streamed, stored, "exactly the stored audio");
    assert_eq!(pcm16(&rest(second, &[]).await), stored);
    assert_eq!(
        w.app.state.job_events.jobs(),
        0,
        "the published audio is freed"
    );
}

#[tokio::test]
async fn a_queued_job_is_waited_for_and_can_be_listened_to_in_another_format() {
    let engine = Arc::new(GatedEngine::default());
    let w = world(TestApp::builder().engine(engine.clone()).spawn().await).await;
    let generation = w.queue(&long_text()).await;
    // Possibly before the worker has claimed the job.
    let response = w.listen(&generation, "?format=wav").await;
    engine.gated().await;
    engine.release(10);
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let wav = rest(response, &[]).await;
    let streamed = resonance_audio::decode(&wav, Some("audio/wav")).unwrap();
    assert_eq!(
        streamed.samples.len(),
        w.app.stored_samples(&w.admin, &generation).await.len()
    );
}

#[tokio::test]
async fn a_listener_leaving_is_forgotten_at_once_and_does_not_cancel_the_job() {
    let engine = Arc::new(GatedEngine::default());
    let w = world(TestApp::builder().engine(engine.clone()).spawn().await).await;
    let generation = w.queue(&long_text()).await;
    engine.gated().await;
    let id = GenerationId::parse(&generation).unwrap();
    let mut response = w.listen(&generation, "").await;
    response.chunk().await.unwrap().expect("some audio");
    assert_eq!(w.app.state.job_events.listeners(&id), 1);
    drop(response);
    // While the engine still holds the next chunk.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while w.app.state.job_events.listeners(&id) > 0 {
        assert!(std::time::Instant::now() < deadline, "the listener stayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        w.app.generation_status(&w.admin, &generation).await,
        "running"
    );
    engine.release(10);
    w.app
        .wait_for_status(&w.admin, &generation, "succeeded")
        .await;
}

#[tokio::test]
async fn a_finished_job_streams_its_stored_audio() {
    let w = world(
        TestApp::builder()
            .engine(Arc::new(ToneEngine::default()))
            .spawn()
            .await,
    )
    .await;
    let generation = w
        .queue("Hello there. This was spoken before anyone listened.")
        .await;
    w.app
        .wait_for_status(&w.admin, &generation, "succeeded")
        .await;
    let response = w.listen(&generation, "").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        pcm16(&rest(response, &[]).await),
        w.app.stored_samples(&w.admin, &generation).await
    );
}

#[tokio::test]
async fn a_job_run_by_another_process_streams_its_stored_audio_once_done() {
    let w = world(TestApp::builder().spawn().await).await;
    let generation = w.queue(&long_text()).await;
    let listening = {
        let client = w.admin.client.clone();
        let url = w.app.url(&format!("/api/generations/{generation}/stream"));
        tokio::spawn(async move { client.get(url).send().await.unwrap() })
    };
    // A worker of another process: it shares the database and storage but not the events.
    let mut remote = test_worker(&w.app.state, Arc::new(ToneEngine::default()));
    remote.events = JobEvents::default();
    let handles = remote.spawn("remote", 1);
    let response = listening.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        pcm16(&rest(response, &[]).await),
        w.app.stored_samples(&w.admin, &generation).await
    );
    handles.iter().for_each(|handle| handle.abort());
}

#[tokio::test]
async fn a_failed_job_has_nothing_to_stream() {
    let w = world(
        TestApp::builder()
            .engine(Arc::new(ToneEngine::default()))
            .spawn()
            .await,
    )
    .await;
    let generation = w.queue("This one [fail] cannot be spoken.").await;
    let response = w.listen(&generation, "").await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "CONFLICT");
}

#[tokio::test]
async fn another_organizations_generation_is_not_found() {
    let engine = Arc::new(GatedEngine::default());
    let w = world(TestApp::builder().engine(engine.clone()).spawn().await).await;
    let generation = w.queue(&long_text()).await;
    engine.gated().await;
    let mallory = w.app.signed_up("mallory@elsewhere.example").await;
    w.app.create_org(&mallory, "Elsewhere").await;
    let response = mallory
        .client
        .get(w.app.url(&format!("/api/generations/{generation}/stream")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let unknown = w
        .admin
        .client
        .get(w.app.url("/api/generations/not-an-id/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    engine.release(10);
}
