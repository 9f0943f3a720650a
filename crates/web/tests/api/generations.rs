//! The generation API against the real server with an in-process worker running the tone
//! engine: queueing, waiting, history, audio delivery, cancel and delete, bounds, and
//! tenant isolation of every route, on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::tone::{SAMPLES_PER_CHAR, ToneEngine};
use crate::support::{DbKind, TestApp, TestUser, error_code};
use reqwest::{Method, StatusCode};
use resonance_engine::SAMPLE_RATE;
use resonance_service::model_status::ModelState;
use resonance_storage::{KeyPrefix, ObjectKey};
use serde_json::{Value, json};

struct World {
    app: TestApp,
    engine: Arc<ToneEngine>,
    org: String,
    admin: TestUser,
    voice: String,
}

async fn world(db: DbKind) -> World {
    let engine = Arc::new(ToneEngine::default());
    let app = TestApp::builder()
        .db(db)
        .engine(engine.clone())
        .spawn()
        .await;
    let admin = app.signed_up("admin@example.com").await;
    let org = app.create_org(&admin, "Acme").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    World {
        app,
        engine,
        org,
        admin,
        voice,
    }
}

impl World {
    async fn create(&self, client: &reqwest::Client, body: Value) -> reqwest::Response {
        client
            .post(self.app.url("/api/generations"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn queue(&self, text: &str) -> Value {
        let response = self
            .create(
                &self.admin.client,
                json!({ "text": text, "voiceId": self.voice }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        response.json().await.unwrap()
    }

    async fn get(&self, id: &str) -> Value {
        let response = self
            .admin
            .client
            .get(self.app.url(&format!("/api/generations/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn finished(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let generation = self.get(id).await;
            if ["succeeded", "failed", "cancelled"]
                .contains(&generation["status"].as_str().unwrap())
            {
                return generation;
            }
            assert!(Instant::now() < deadline, "still {}", generation["status"]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stored_generations(&self) -> Vec<ObjectKey> {
        let org = resonance_domain::OrgId::parse(&self.org).unwrap();
        self.app
            .state
            .storage
            .list(&KeyPrefix::generations(&org))
            .await
            .unwrap()
    }

    /// Usage events of generations (the voice's creation left out).
    async fn usage_events(&self) -> usize {
        let org = resonance_domain::OrgId::parse(&self.org).unwrap();
        let usage = self.app.db().list_usage_events(&org).await.unwrap();
        usage
            .iter()
            .filter(|event| event.kind == resonance_db::UsageKind::TtsGeneration)
            .count()
    }

    fn audio_url(&self, id: &str) -> String {
        self.app.url(&format!("/api/generations/{id}/audio"))
    }
}

async fn a_generation_is_queued_spoken_stored_and_served(db: DbKind) {
    let w = world(db).await;
    let text = "Hello there. This is a test of the generation queue.";
    let queued = w.queue(text).await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["voiceName"], "Narrator");
    assert_eq!(queued["topK"], 1000);
    assert_eq!(queued["audioUrl"], Value::Null);
    let id = queued["id"].as_str().unwrap();

    let done = w.finished(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["progress"], 100);
    assert_eq!(done["voiceId"], w.voice);
    let audio_url = done["audioUrl"].as_str().unwrap();
    assert_eq!(audio_url, format!("/api/generations/{id}/audio"));

    let response = w
        .admin
        .client
        .get(w.app.url(audio_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    assert_eq!(response.headers()["accept-ranges"], "bytes");
    assert!(response.headers().get("content-disposition").is_none());
    let wav = response.bytes().await.unwrap();
    let audio = resonance_audio::decode(&wav, Some("audio/wav")).unwrap();
    assert_eq!(audio.sample_rate, SAMPLE_RATE);
    assert_eq!(audio.samples.len(), text.len() * SAMPLES_PER_CHAR);

    let response = w
        .admin
        .client
        .get(w.audio_url(id))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        response.headers()["content-range"],
        format!("bytes 10-19/{}", wav.len())
    );
    assert_eq!(response.bytes().await.unwrap(), wav[10..20]);

    let response = w
        .admin
        .client
        .get(format!("{}?download=1", w.audio_url(id)))
        .send()
        .await
        .unwrap();
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"Narrator-{id}.wav\"")
    );

    // Twice as fast: a WAV half as long; a speed out of range is refused.
    let response = w
        .admin
        .client
        .get(format!("{}?speed=2", w.audio_url(id)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let fast =
        resonance_audio::decode(&response.bytes().await.unwrap(), Some("audio/wav")).unwrap();
    assert_eq!(fast.samples.len(), text.len() * SAMPLES_PER_CHAR / 2);
    let response = w
        .admin
        .client
        .get(format!("{}?speed=9", w.audio_url(id)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "INVALID_QUERY");
    assert_eq!(w.usage_events().await, 1);
}

async fn wait_true_answers_once_the_audio_is_ready(db: DbKind) {
    let w = world(db).await;
    let response = w
        .admin
        .client
        .post(w.app.url("/api/generations?wait=true"))
        .json(
            &json!({ "text": "Wait for me.", "voiceId": w.voice, "seed": 42, "temperature": 0.5 }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let done: Value = response.json().await.unwrap();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["seed"], 42);
    assert_eq!(done["temperature"], 0.5);
    let audio = w
        .admin
        .client
        .get(w.audio_url(done["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(audio.status(), 200);
}

/// Without a seed, one is chosen when the job is queued: the API returns it at once, the
/// engine runs with it, and asking for it again reproduces the take.
async fn a_random_seed_is_recorded_and_used(db: DbKind) {
    let w = world(db).await;
    let queued = w.queue("Say it the same way twice.").await;
    let seed = queued["seed"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seed recorded: {queued}"));
    let done = w.finished(queued["id"].as_str().unwrap()).await;
    assert_eq!(done["seed"], seed);
    assert_eq!(w.engine.seeds(), vec![seed]);

    let again = w
        .create(
            &w.admin.client,
            json!({ "text": "Say it the same way twice.", "voiceId": w.voice, "seed": seed }),
        )
        .await;
    let again: Value = again.json().await.unwrap();
    w.finished(again["id"].as_str().unwrap()).await;
    assert_eq!(w.engine.seeds(), vec![seed, seed]);
}

async fn history_is_newest_first_filtered_by_voice_and_deletable(db: DbKind) {
    let w = world(db).await;
    let other_voice = w.app.upload_voice(&w.admin, "Second").await;
    let first = w.queue("First one.").await;
    let second = w.queue("Second one.").await;
    let third = w
        .create(
            &w.admin.client,
            json!({ "text": "Third one.", "voiceId": other_voice }),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    for g in [&first, &second, &third] {
        w.finished(g["id"].as_str().unwrap()).await;
    }
    let list: Value = w
        .admin
        .client
        .get(w.app.url("/api/generations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [&third, &second, &first].map(|g| g["id"].as_str().unwrap())
    );
    assert_eq!(list["total"], 3);

    let filtered: Value = w
        .admin
        .client
        .get(
            w.app
                .url(&format!("/api/generations?voiceId={other_voice}&limit=5")),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["total"], 1);
    assert_eq!(filtered["generations"][0]["id"], third["id"]);

    let first_id = first["id"].as_str().unwrap();
    assert_eq!(w.stored_generations().await.len(), 3);
    let response = w
        .admin
        .client
        .delete(w.app.url(&format!("/api/generations/{first_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(w.stored_generations().await.len(), 2);
    let response = w
        .admin
        .client
        .get(w.app.url(&format!("/api/generations/{first_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Deleting the voice keeps its generations, named, without the link.
    let response = w
        .admin
        .client
        .delete(w.app.url(&format!("/api/voices/{other_voice}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let kept = w.get(third["id"].as_str().unwrap()).await;
    assert_eq!(kept["voiceId"], Value::Null);
    assert_eq!(kept["voiceName"], "Second");
    assert_eq!(kept["status"], "succeeded");
}

async fn out_of_bounds_fields_are_refused_naming_the_field(db: DbKind) {
    let w = world(db).await;
    let long_text = "a".repeat(5001);
    let cases = [
        (json!({ "voiceId": w.voice }), "text"),
        (json!({ "text": "   ", "voiceId": w.voice }), "text"),
        (json!({ "text": long_text, "voiceId": w.voice }), "text"),
        (
            json!({ "text": "Hi.", "voiceId": w.voice, "temperature": 0 }),
            "temperature",
        ),
        (
            json!({ "text": "Hi.", "voiceId": w.voice, "temperature": 2.5 }),
            "temperature",
        ),
        (
            json!({ "text": "Hi.", "voiceId": w.voice, "topP": 1.01 }),
            "topP",
        ),
        (
            json!({ "text": "Hi.", "voiceId": w.voice, "topK": 0 }),
            "topK",
        ),
        (
            json!({ "text": "Hi.", "voiceId": w.voice, "topK": -3 }),
            "topK",
        ),
        (
            json!({ "text": "Hi.", "voiceId": w.voice, "topK": 10001 }),
            "topK",
        ),
        (
            json!({ "text": "Hi.", "voiceId": w.voice, "repetitionPenalty": 0.9 }),
            "repetitionPenalty",
        ),
        (
            json!({ "text": "Hi.", "voiceId": w.voice, "seed": -1 }),
            "seed",
        ),
        (json!({ "text": "Hi." }), "voiceId"),
    ];
    for (body, field) in cases {
        let response = w.create(&w.admin.client, body.clone()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "INVALID_FIELD");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{body}: {message}");
    }
    let response = w.create(&w.admin.client, json!({ "text": 5 })).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "INVALID_BODY");

    // Exactly 5000 characters is allowed.
    let response = w
        .create(
            &w.admin.client,
            json!({ "text": "a".repeat(5000), "voiceId": w.voice }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let list: Value = w
        .admin
        .client
        .get(w.app.url("/api/generations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1, "no refused request created a generation");
}

async fn unknown_and_foreign_voices_are_not_found(db: DbKind) {
    let w = world(db).await;
    let outsider = w.app.signed_up("outsider@example.com").await;
    w.app.create_org(&outsider, "Other").await;
    let foreign_voice = w.app.upload_voice(&outsider, "Theirs").await;
    for voice in [
        foreign_voice.as_str(),
        "zzzzzzzzzzzzzzzzzzzzzzzz",
        "not-an-id",
    ] {
        let response = w
            .create(&w.admin.client, json!({ "text": "Hi.", "voiceId": voice }))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{voice}");
    }
    // The owner can use it.
    let response = w
        .create(
            &outsider.client,
            json!({ "text": "Hi.", "voiceId": foreign_voice }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

async fn an_engine_failure_fails_the_job_and_stores_and_charges_nothing(db: DbKind) {
    let w = world(db).await;
    let queued = w.queue("This will [fail] for sure.").await;
    let id = queued["id"].as_str().unwrap();
    let done = w.finished(id).await;
    assert_eq!(done["status"], "failed");
    let reason = done["failureReason"].as_str().unwrap();
    assert!(reason.contains("synthesis failed"), "{reason}");
    assert!(!reason.contains("secret"), "{reason}");
    assert_eq!(done["audioUrl"], Value::Null);
    let response = w.admin.client.get(w.audio_url(id)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(w.stored_generations().await.is_empty());
    assert_eq!(w.usage_events().await, 0);
}

async fn a_cancelled_job_stops_and_keeps_no_audio(db: DbKind) {
    let w = world(db).await;
    let queued = w.queue("Hold on [stall] please.").await;
    let id = queued["id"].as_str().unwrap();
    w.engine.stalled().await;
    let response = w.admin.client.get(w.audio_url(id)).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CONFLICT,
        "audio while running"
    );

    let cancel = w.app.url(&format!("/api/generations/{id}/cancel"));
    let response = w.admin.client.post(&cancel).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    let response = w.admin.client.post(&cancel).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);

    // The worker gives the job up and takes the next.
    let next = w.queue("Next.").await;
    let done = w.finished(next["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(w.get(id).await["status"], "cancelled");
    assert_eq!(w.stored_generations().await.len(), 1);
    assert_eq!(w.usage_events().await, 1);
}

/// Every route: no session 401; a member or key of another organization 404; a member and
/// a key of the organization may use them.
async fn every_route_checks_who_is_asking(db: DbKind) {
    let w = world(db).await;
    let done = w.queue("Mine.").await;
    let id = done["id"].as_str().unwrap().to_string();
    w.finished(&id).await;

    let outsider = w.app.signed_up("outsider@example.com").await;
    let other_org = w.app.create_org(&outsider, "Other").await;
    let outsider_key = w.app.create_api_key(&outsider, &other_org).await;
    let member = w.app.add_member(&w.admin, &w.org, "member").await;
    let key = w.app.create_api_key(&w.admin, &w.org).await;

    let by_id = [
        (Method::GET, format!("/api/generations/{id}")),
        (Method::GET, format!("/api/generations/{id}/audio")),
        (Method::POST, format!("/api/generations/{id}/cancel")),
        (Method::DELETE, format!("/api/generations/{id}")),
    ];
    let all = by_id.iter().cloned().chain([
        (Method::GET, "/api/generations".to_string()),
        (Method::POST, "/api/generations".to_string()),
    ]);
    for (method, path) in all {
        let response = w
            .app
            .anonymous()
            .request(method.clone(), w.app.url(&path))
            .json(&json!({ "text": "Hi.", "voiceId": w.voice }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
    for client in [outsider.client.clone(), w.app.key_client(&outsider_key)] {
        for (method, path) in &by_id {
            let response = client
                .request(method.clone(), w.app.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        }
        let list: Value = client
            .get(w.app.url("/api/generations"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["total"], 0, "another organization's history is empty");
    }
    assert_eq!(w.get(&id).await["status"], "succeeded", "nothing changed");

    for client in [member.client.clone(), w.app.key_client(&key)] {
        let response = client.get(w.audio_url(&id)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let response = w
            .create(&client, json!({ "text": "Ours too.", "voiceId": w.voice }))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let response = member
        .client
        .delete(w.app.url(&format!("/api/generations/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

on_both_databases!(
    a_generation_is_queued_spoken_stored_and_served,
    wait_true_answers_once_the_audio_is_ready,
    a_random_seed_is_recorded_and_used,
    history_is_newest_first_filtered_by_voice_and_deletable,
    out_of_bounds_fields_are_refused_naming_the_field,
    unknown_and_foreign_voices_are_not_found,
    an_engine_failure_fails_the_job_and_stores_and_charges_nothing,
    a_cancelled_job_stops_and_keeps_no_audio,
    every_route_checks_who_is_asking,
);

/// With S3 storage, the audio is served from the bucket with range requests.
#[tokio::test]
async fn audio_is_served_from_s3() {
    let engine = Arc::new(ToneEngine::default());
    let app = TestApp::builder().s3().engine(engine).spawn().await;
    let admin = app.signed_up("admin@example.com").await;
    app.create_org(&admin, "Acme").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let response = admin
        .client
        .post(app.url("/api/generations?wait=true"))
        .json(&json!({ "text": "Stored in a bucket.", "voiceId": voice }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let done: Value = response.json().await.unwrap();
    let response = admin
        .client
        .get(app.url(done["audioUrl"].as_str().unwrap()))
        .header("range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&response.bytes().await.unwrap()[..], b"RIFF");
}

/// Without a worker, a job stays queued and its audio is not ready.
#[tokio::test]
async fn without_workers_jobs_wait_in_the_queue() {
    let app = TestApp::builder().spawn().await;
    let admin = app.signed_up("admin@example.com").await;
    app.create_org(&admin, "Acme").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let response = admin
        .client
        .post(app.url("/api/generations"))
        .json(&json!({ "text": "Anyone there?", "voiceId": voice }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let queued: Value = response.json().await.unwrap();
    let id = queued["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = admin
        .client
        .get(app.url(&format!("/api/generations/{id}/audio")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(response).await, "CONFLICT");
}

/// While the model downloads, loads or cannot load, a queued generation says so, in the
/// API and on its page; once it is ready, nothing is said.
#[tokio::test]
async fn a_generation_waiting_on_the_model_says_why() {
    let app = TestApp::builder().spawn().await;
    let admin = app.signed_up("admin@example.com").await;
    app.create_org(&admin, "Acme").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    app.state.model.set(ModelState::Downloading);
    let downloading = ModelState::Downloading.waiting_reason().unwrap();
    assert!(downloading.contains("still downloading"), "{downloading}");
    let response = admin
        .client
        .post(app.url("/api/generations"))
        .json(&json!({ "text": "Anyone there?", "voiceId": voice }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let queued: Value = response.json().await.unwrap();
    assert_eq!(queued["waitingReason"], downloading);
    let id = queued["id"].as_str().unwrap();
    let get = |path: String| {
        let client = admin.client.clone();
        let url = app.url(&path);
        async move { client.get(url).send().await.unwrap() }
    };
    let fetched: Value = get(format!("/api/generations/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["waitingReason"], downloading);
    let listed: Value = get("/api/generations".into()).await.json().await.unwrap();
    assert_eq!(listed["generations"][0]["waitingReason"], downloading);
    let page = get(format!("/text-to-speech/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(downloading), "the page shows it: {page}");

    app.state.model.set(ModelState::Unavailable);
    let fetched: Value = get(format!("/api/generations/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        fetched["waitingReason"],
        ModelState::Unavailable.waiting_reason().unwrap()
    );
    app.state.model.set(ModelState::Ready);
    let fetched: Value = get(format!("/api/generations/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["waitingReason"], Value::Null);
}

/// The value of the series `series` (its name and labels, exactly) in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().unwrap())
    })
}

#[tokio::test]
async fn metrics_are_scraped_with_the_token_only() {
    const TOKEN: &str = "scrape-token-for-tests";
    let engine = Arc::new(ToneEngine::default());
    let app = TestApp::builder()
        .engine(engine)
        .metrics_token(TOKEN)
        .spawn()
        .await;
    let admin = app.signed_up("admin@example.com").await;
    app.create_org(&admin, "Acme").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let response = admin
        .client
        .post(app.url("/api/generations?wait=true"))
        .json(&json!({ "text": "Count me.", "voiceId": voice }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let scrape = |token: Option<&str>| {
        let mut request = reqwest::Client::new().get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };
    assert_eq!(scrape(None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        scrape(Some("not-the-token")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = scrape(Some(TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = response.text().await.unwrap();
    let at_least_one = |series: &str| {
        let value = sample(&body, series).unwrap_or_else(|| panic!("no {series} in:\n{body}"));
        assert!(value >= 1.0, "{series} = {value}");
    };
    at_least_one(
        r#"resonance_http_requests_total{method="POST",route="/api/generations",status="201"}"#,
    );
    at_least_one(
        r#"resonance_http_request_duration_seconds_count{method="POST",route="/api/voices"}"#,
    );
    at_least_one(
        r#"resonance_http_request_duration_seconds_bucket{method="POST",route="/api/voices",le="+Inf"}"#,
    );
    at_least_one("resonance_synthesis_real_time_factor_count");
    at_least_one("resonance_synthesis_first_audio_seconds_count");
    assert_eq!(
        sample(&body, r#"resonance_generations{status="succeeded"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&body, r#"resonance_model_state{state="ready"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&body, r#"resonance_model_state{state="downloading"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&body, "resonance_usage_outbox_backlog"),
        Some(2.0),
        "the voice's and the generation's usage, with no Polar to take them"
    );
    assert!(body.contains("# TYPE resonance_http_request_duration_seconds histogram"));

    let without_token = TestApp::builder().spawn().await;
    let response = reqwest::get(without_token.url("/metrics")).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "not served unless a token is set"
    );
}
