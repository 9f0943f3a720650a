//! The drop-in APIs over HTTP against the real server: OpenAI's speech endpoint and
//! ElevenLabs' text-to-speech, voices, history and subscription, their error shapes,
//! streaming (audio before the whole text is spoken, identical to the stored file), and
//! `?format=` on the generation audio. The official SDKs run in `sdk.rs`.

use std::sync::Arc;
use std::time::Duration;

use crate::support::gated::GatedEngine;
use crate::support::tone::{SAMPLES_PER_CHAR, ToneEngine, tone};
use crate::support::{DbKind, TestApp, TestUser, long_text, pcm16, test_worker};
use base64::Engine as _;
use resonance_db::Plan;
use resonance_domain::OrgId;
use resonance_service::generations::events::JobEvents;
use serde_json::{Value, json};

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) admin: TestUser,
    org: String,
    pub(crate) key: String,
    pub(crate) voice: String,
}

/// An organization with a voice and an API key on `app`.
pub(crate) async fn world(app: TestApp) -> World {
    let admin = app.signed_up("admin@compat.example").await;
    let org = app.create_org(&admin, "Compat").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let key = app.create_api_key(&admin, &org).await;
    World {
        app,
        admin,
        org,
        key,
        voice,
    }
}

async fn tone_world() -> World {
    tone_world_on(DbKind::Sqlite).await
}

async fn tone_world_on(db: DbKind) -> World {
    world(
        TestApp::builder()
            .db(db)
            .engine(Arc::new(ToneEngine::default()))
            .spawn()
            .await,
    )
    .await
}

impl World {
    pub(crate) fn xi(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("xi-api-key", self.key.parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    pub(crate) fn bearer(&self) -> reqwest::Client {
        self.app.key_client(&self.key)
    }
}

fn history_item(response: &reqwest::Response) -> String {
    response.headers()["history-item-id"]
        .to_str()
        .unwrap()
        .to_string()
}

async fn openai_speech_is_a_metered_generation_in_the_history(db: DbKind) {
    let w = tone_world_on(db).await;
    let text = "Hello there. This is Resonance.";
    let response = w
        .bearer()
        .post(w.app.url("/v1/audio/speech"))
        .json(&json!({ "model": "tts-1", "input": text, "voice": "narrator", "response_format": "pcm" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/pcm");
    let generation = history_item(&response);
    let pcm = pcm16(&response.bytes().await.unwrap());
    assert_eq!(pcm.len(), text.chars().count() * SAMPLES_PER_CHAR);
    assert_eq!(pcm, w.app.stored_samples(&w.admin, &generation).await);

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
    assert_eq!(history["generations"][0]["id"], generation);
    assert_eq!(history["generations"][0]["text"], text);
    assert_eq!(
        w.app.characters_metered(&w.org).await,
        text.chars().count() as u64
    );

    // The voice by id, as OpenAI's `{"id": ...}` object; MP3 by default, at 24 kHz.
    let response = w
        .bearer()
        .post(w.app.url("/v1/audio/speech"))
        .json(&json!({ "model": "gpt-4o-mini-tts", "input": text, "voice": { "id": w.voice }, "instructions": "cheerful" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/mpeg");
    let mp3 =
        resonance_audio::decode(&response.bytes().await.unwrap(), Some("audio/mpeg")).unwrap();
    assert_eq!(mp3.sample_rate, 24_000);
    assert!(
        (mp3.duration_secs() - 0.31).abs() < 0.1,
        "{}",
        mp3.duration_secs()
    );
}

#[tokio::test]
async fn openai_speed_stretches_time_and_sse_carries_the_same_audio() {
    let w = tone_world().await;
    let text = "Speed and events.";
    let speech = |body: Value| {
        w.bearer()
            .post(w.app.url("/v1/audio/speech"))
            .json(&body)
            .send()
    };
    let fast = speech(json!({ "model": "tts-1", "input": text, "voice": "Narrator", "response_format": "pcm", "speed": 2.0 }))
        .await
        .unwrap();
    assert_eq!(fast.status(), 200);
    let expected = text.chars().count() * SAMPLES_PER_CHAR;
    assert_eq!(pcm16(&fast.bytes().await.unwrap()).len(), expected / 2);

    let events = speech(json!({ "model": "tts-1", "input": text, "voice": "Narrator", "response_format": "pcm", "stream_format": "sse" }))
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let generation = history_item(&events);
    let body = events.text().await.unwrap();
    let events: Vec<Value> = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let (done, deltas) = events.split_last().unwrap();
    assert_eq!(done["type"], "speech.audio.done");
    assert_eq!(done["usage"]["input_tokens"], text.chars().count());
    let mut audio = Vec::new();
    for delta in deltas {
        assert_eq!(delta["type"], "speech.audio.delta");
        audio.extend(
            base64::engine::general_purpose::STANDARD
                .decode(delta["audio"].as_str().unwrap())
                .unwrap(),
        );
    }
    assert_eq!(
        pcm16(&audio),
        w.app.stored_samples(&w.admin, &generation).await
    );
}

#[tokio::test]
async fn openai_errors_name_the_parameter_in_openai_shape() {
    let w = tone_world().await;
    let valid = json!({ "model": "tts-1", "input": "Hi.", "voice": "Narrator" });
    let cases = [
        ("model", json!("whisper-1")),
        ("input", json!("")),
        ("input", json!("a".repeat(4097))),
        ("voice", json!("alloy")),
        ("response_format", json!("ogg")),
        ("speed", json!(4.5)),
        ("stream_format", json!("websocket")),
    ];
    for (param, value) in cases {
        let mut body = valid.clone();
        body[param] = value;
        let response = w
            .bearer()
            .post(w.app.url("/v1/audio/speech"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{param}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["param"], param, "{error}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert!(error["error"]["message"].as_str().unwrap().len() > 5);
    }
    let response = reqwest::Client::new()
        .post(w.app.url("/v1/audio/speech"))
        .json(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");

    let models: Value = w
        .bearer()
        .get(w.app.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"tts-1") && ids.contains(&"chatterbox-turbo"),
        "{ids:?}"
    );
    let models: Value = w
        .xi()
        .get(w.app.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        models
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["model_id"] == "eleven_multilingual_v2")
    );
}

#[tokio::test]
async fn streaming_sends_the_first_chunk_before_the_rest_is_spoken() {
    let engine = Arc::new(GatedEngine::default());
    let w = world(TestApp::builder().engine(engine.clone()).spawn().await).await;
    let mut response = w
        .xi()
        .post(w.app.url(&format!(
            "/v1/text-to-speech/{}/stream?output_format=pcm_24000",
            w.voice
        )))
        .json(&json!({ "text": long_text(), "model_id": "eleven_multilingual_v2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let generation = history_item(&response);
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("audio arrives while the later chunks wait")
        .unwrap()
        .unwrap();
    assert!(!first.is_empty());
    assert_eq!(
        engine.calls(),
        2,
        "the second chunk is waiting in the engine"
    );
    engine.release(10);
    let mut streamed = first.to_vec();
    while let Some(more) = response.chunk().await.unwrap() {
        streamed.extend_from_slice(&more);
    }
    // Exactly the stored file, crossfades included.
    let stored = w.app.stored_samples(&w.admin, &generation).await;
    assert_eq!(pcm16(&streamed), stored);
    // Three chunks (the spaces between them are not spoken), two 50 ms crossfades.
    let spoken_chars = long_text().chars().count() - 2;
    assert_eq!(stored.len(), spoken_chars * SAMPLES_PER_CHAR - 2 * 1200);
}

#[tokio::test]
async fn streaming_falls_back_to_the_stored_audio_of_a_worker_elsewhere() {
    let w = world(TestApp::builder().spawn().await).await;
    // A worker of another process: it shares the database and storage but not the events.
    let mut remote = test_worker(&w.app.state, Arc::new(ToneEngine::default()));
    remote.events = JobEvents::default();
    let handles = remote.spawn("remote", 1);
    let response = w
        .xi()
        .post(w.app.url(&format!(
            "/v1/text-to-speech/{}/stream?output_format=pcm_24000",
            w.voice
        )))
        .json(&json!({ "text": long_text() }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let generation = history_item(&response);
    let streamed = pcm16(&response.bytes().await.unwrap());
    assert_eq!(streamed, w.app.stored_samples(&w.admin, &generation).await);
    handles.iter().for_each(|h| h.abort());
}

#[tokio::test]
async fn elevenlabs_speech_formats_settings_and_errors() {
    let w = tone_world().await;
    let text = "Formats and settings.";
    let samples = text.chars().count() * SAMPLES_PER_CHAR;
    let tts = |format: &str, body: Value| {
        w.xi()
            .post(w.app.url(&format!(
                "/v1/text-to-speech/{}?output_format={format}",
                w.voice
            )))
            .json(&body)
            .send()
    };
    let response = tts("pcm_16000", json!({ "text": text, "seed": 7 }))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let pcm = pcm16(&response.bytes().await.unwrap());
    assert!(
        (pcm.len() as i64 - (samples * 2 / 3) as i64).abs() <= 2,
        "{}",
        pcm.len()
    );

    let response = tts(
        "ulaw_8000",
        json!({ "text": text, "voice_settings": { "speed": 0.5 } }),
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["content-type"], "audio/basic");
    let ulaw = response.bytes().await.unwrap();
    assert!(
        (ulaw.len() as i64 - (samples * 2 / 3) as i64).abs() <= 2,
        "{}",
        ulaw.len()
    );

    let response = tts("mp3_44100_128", json!({ "text": text })).await.unwrap();
    let mp3 =
        resonance_audio::decode(&response.bytes().await.unwrap(), Some("audio/mpeg")).unwrap();
    assert_eq!(mp3.sample_rate, 44_100);

    let response = tts(
        "mp3_44100_128",
        json!({ "text": text, "voice_settings": { "stability": 1.0, "style": 0.5 } }),
    )
    .await
    .unwrap();
    let generation = history_item(&response);
    let item: Value = w
        .xi()
        .get(w.app.url(&format!("/v1/history/{generation}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(item["settings"]["top_k"], 1500);
    assert!((item["settings"]["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);

    let cases = [
        ("wav_44100", json!({ "text": text }), "output_format"),
        (
            "pcm_16000",
            json!({ "text": text, "voice_settings": { "stability": 2 } }),
            "voice_settings.stability",
        ),
        (
            "pcm_16000",
            json!({ "text": text, "model_id": "eleven_v9" }),
            "model_id",
        ),
        ("pcm_16000", json!({ "text": "" }), "text"),
    ];
    for (format, body, field) in cases {
        let response = tts(format, body).await.unwrap();
        assert_eq!(response.status(), 400, "{field}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["detail"]["status"], "invalid_request");
        assert!(
            error["detail"]["message"].as_str().unwrap().contains(field),
            "{error}"
        );
    }
    let response = w
        .xi()
        .post(w.app.url("/v1/text-to-speech/nobody"))
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["detail"]["status"], "voice_not_found");
}

fn recording(seconds: f64) -> Vec<u8> {
    let samples = resonance_testkit::audio::speech_like(seconds, 0.5, 3);
    resonance_testkit::audio::encode_as(&samples, resonance_testkit::audio::UploadFormat::Wav)
}

fn voice_form(name: &str, files: &[Vec<u8>]) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new()
        .text("name", name.to_string())
        .text("labels", r#"{"language": "en-GB", "accent": "british"}"#)
        .text("consent", "true");
    for (n, file) in files.iter().enumerate() {
        form = form.part(
            "files",
            reqwest::multipart::Part::bytes(file.clone())
                .file_name(format!("take{n}.wav"))
                .mime_str("audio/wav")
                .unwrap(),
        );
    }
    form
}

async fn elevenlabs_voices_history_and_subscription(db: DbKind) {
    let w = tone_world_on(db).await;
    // ElevenLabs has no consent field: Resonance's `consent=true` is required on top.
    let voices_before = w.app.db().all_voices().await.unwrap().len();
    let without_consent = reqwest::multipart::Form::new()
        .text("name", "Unconfirmed")
        .part(
            "files",
            reqwest::multipart::Part::bytes(recording(12.0))
                .file_name("take.wav")
                .mime_str("audio/wav")
                .unwrap(),
        );
    let response = w
        .xi()
        .post(w.app.url("/v1/voices/add"))
        .multipart(without_consent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["detail"]["status"], "consent_required", "{error}");
    assert!(
        error["detail"]["message"]
            .as_str()
            .unwrap()
            .contains("consent=true"),
        "{error}"
    );
    assert_eq!(w.app.db().all_voices().await.unwrap().len(), voices_before);
    // Two recordings of 6 s: each too short alone, long enough together.
    let response = w
        .xi()
        .post(w.app.url("/v1/voices/add"))
        .multipart(voice_form("Duo", &[recording(6.0), recording(6.0)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let added: Value = response.json().await.unwrap();
    let duo = added["voice_id"].as_str().unwrap().to_string();
    let response = w
        .xi()
        .post(w.app.url("/v1/voices/add"))
        .multipart(voice_form("Short", &[recording(6.0)]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["detail"]["status"], "audio_too_short");

    let voice: Value = w
        .xi()
        .get(w.app.url(&format!("/v1/voices/{duo}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(voice["name"], "Duo");
    assert_eq!(voice["category"], "cloned");
    assert_eq!(voice["labels"]["language"], "en-GB");

    let page: Value = w
        .xi()
        .get(w.app.url("/v2/voices?page_size=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total_count"], 2);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["voices"][0]["name"], "Duo");
    let token = page["next_page_token"].as_str().unwrap();
    let next: Value = w
        .xi()
        .get(
            w.app
                .url(&format!("/v2/voices?page_size=1&next_page_token={token}")),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(next["voices"][0]["name"], "Narrator");
    assert_eq!(next["has_more"], false);

    let mut generations = Vec::new();
    for text in ["One.", "Two two.", "Three three three."] {
        let response = w
            .xi()
            .post(w.app.url(&format!("/v1/text-to-speech/{duo}")))
            .json(&json!({ "text": text }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        generations.push(history_item(&response));
    }
    let history: Value = w
        .xi()
        .get(w.app.url("/v1/history?page_size=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["history"][0]["history_item_id"], generations[2]);
    assert_eq!(history["history"][0]["text"], "Three three three.");
    assert_eq!(history["history"][0]["voice_id"], duo);
    assert_eq!(history["has_more"], true);
    let last = history["last_history_item_id"].as_str().unwrap();
    let rest: Value = w
        .xi()
        .get(w.app.url(&format!(
            "/v1/history?page_size=2&start_after_history_item_id={last}"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["history"].as_array().unwrap().len(), 1);
    assert_eq!(rest["history"][0]["history_item_id"], generations[0]);
    assert_eq!(rest["has_more"], false);

    let audio = w
        .xi()
        .get(w.app.url(&format!("/v1/history/{}/audio", generations[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(audio.headers()["content-type"], "audio/mpeg");
    let mp3 = resonance_audio::decode(&audio.bytes().await.unwrap(), Some("audio/mpeg")).unwrap();
    assert!(
        (mp3.duration_secs() - 0.04).abs() < 0.1,
        "{}",
        mp3.duration_secs()
    );

    let subscription: Value = w
        .xi()
        .get(w.app.url("/v1/user/subscription"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(subscription["character_count"], 4 + 8 + 18);
    assert_eq!(subscription["voice_slots_used"], 2);
    assert!(
        subscription["next_character_count_reset_unix"]
            .as_i64()
            .unwrap()
            > 0
    );

    let deleted: Value = w
        .xi()
        .delete(w.app.url(&format!("/v1/history/{}", generations[0])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["status"], "ok");
    let gone = w
        .xi()
        .get(w.app.url(&format!("/v1/history/{}", generations[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let error: Value = gone.json().await.unwrap();
    assert_eq!(error["detail"]["status"], "history_item_not_found");

    let deleted = w
        .xi()
        .delete(w.app.url(&format!("/v1/voices/{duo}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let gone = w
        .xi()
        .get(w.app.url(&format!("/v1/voices/{duo}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn generation_audio_is_encoded_on_request() {
    let w = tone_world().await;
    let response = w
        .admin
        .client
        .post(w.app.url("/api/generations?wait=true"))
        .json(&json!({ "text": "Encode me.", "voiceId": w.voice }))
        .send()
        .await
        .unwrap();
    let generation: Value = response.json().await.unwrap();
    let id = generation["id"].as_str().unwrap();
    let audio_url = |format: &str| {
        w.app
            .url(&format!("/api/generations/{id}/audio?format={format}"))
    };
    let flac = w.admin.client.get(audio_url("flac")).send().await.unwrap();
    assert_eq!(flac.status(), 200);
    assert_eq!(flac.headers()["content-type"], "audio/flac");
    let decoded =
        resonance_audio::decode(&flac.bytes().await.unwrap(), Some("audio/flac")).unwrap();
    assert_eq!(decoded.sample_rate, 24_000);
    let expected = tone(10);
    assert_eq!(decoded.samples.len(), expected.len());
    let max_error = decoded
        .samples
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_error < 1e-3, "{max_error}");

    let opus = w
        .admin
        .client
        .get(audio_url("opus_48000_64"))
        .send()
        .await
        .unwrap();
    assert_eq!(opus.headers()["content-type"], "audio/ogg");
    assert!(opus.bytes().await.unwrap().starts_with(b"OggS"));

    let bad = w.admin.client.get(audio_url("mp4")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("format"),
        "{error}"
    );
}

async fn the_plan_shows_in_the_subscription_and_quotas_refuse_in_each_peers_shape(db: DbKind) {
    let w = tone_world_on(db).await;
    let org = OrgId::parse(&w.org).unwrap();
    let plan = Plan {
        characters_per_month: Some(50),
        voice_slots: Some(1),
        max_concurrent_jobs: None,
    };
    w.app.db().set_org_plan(&org, &plan).await.unwrap();
    let subscription: Value = w
        .xi()
        .get(w.app.url("/v1/user/subscription"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(subscription["character_limit"], 50);
    assert_eq!(subscription["voice_limit"], 1);
    assert_eq!(subscription["voice_slots_used"], 1);

    let text = "Forty characters of text, more or less..";
    let tts = || {
        w.xi()
            .post(w.app.url(&format!("/v1/text-to-speech/{}", w.voice)))
            .json(&json!({ "text": text }))
            .send()
    };
    assert_eq!(tts().await.unwrap().status(), 200);
    let refused = tts().await.unwrap();
    assert_eq!(refused.status(), 402);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["detail"]["status"], "quota_exceeded");
    assert!(
        error["detail"]["message"].as_str().unwrap().contains("50"),
        "{error}"
    );

    let refused = w
        .bearer()
        .post(w.app.url("/v1/audio/speech"))
        .json(&json!({ "model": "tts-1", "input": text, "voice": "Narrator" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "insufficient_quota");

    let refused = w
        .xi()
        .post(w.app.url("/v1/voices/add"))
        .multipart(voice_form("Second", &[recording(12.0)]))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 402);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["detail"]["status"], "quota_exceeded");
}

#[tokio::test]
async fn a_job_failing_before_any_audio_is_an_error_status_without_internal_detail() {
    let w = tone_world().await;
    let response = w
        .xi()
        .post(w.app.url(&format!("/v1/text-to-speech/{}/stream", w.voice)))
        .json(&json!({ "text": "This one will [fail] at once." }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["detail"]["status"], "generation_failed");
    let message = error["detail"]["message"].as_str().unwrap();
    assert!(
        message.contains("synthesis failed") && !message.contains("secret"),
        "{message}"
    );

    let response = w
        .bearer()
        .post(w.app.url("/v1/audio/speech"))
        .json(&json!({ "model": "tts-1", "input": "Also [fail] here.", "voice": "Narrator" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "server_error");
    assert_eq!(
        w.app.characters_metered(&w.org).await,
        0,
        "failed generations are not metered"
    );
}

#[tokio::test]
async fn a_job_failing_after_its_first_audio_ends_the_stream_early() {
    let w = tone_world().await;
    let text = format!("{} The end [fail].", long_text());
    let response = w
        .xi()
        .post(w.app.url(&format!(
            "/v1/text-to-speech/{}/stream?output_format=pcm_24000",
            w.voice
        )))
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the first chunk was spoken");
    let generation = history_item(&response);
    assert!(
        response.bytes().await.is_err(),
        "the body breaks off instead of ending like a whole file"
    );
    let item: Value = w
        .xi()
        .get(w.app.url(&format!("/v1/history/{generation}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(item["state"], "failed");
}

on_both_databases!(
    openai_speech_is_a_metered_generation_in_the_history,
    elevenlabs_voices_history_and_subscription,
    the_plan_shows_in_the_subscription_and_quotas_refuse_in_each_peers_shape,
);

/// The routes `tenant_isolation.rs` cannot run (they need a worker, or name nothing):
/// another organization's key does not find this organization's voice, and every drop-in
/// route refuses a request without a key.
#[tokio::test]
async fn speech_routes_refuse_other_organizations_and_anonymous_callers() {
    let w = tone_world().await;
    let outsider = w.app.signed_up("outsider@compat.example").await;
    let other_org = w.app.create_org(&outsider, "Other").await;
    let other_key = w.app.create_api_key(&outsider, &other_org).await;
    let other = w.app.key_client(&other_key);
    let response = other
        .post(w.app.url(&format!("/v1/text-to-speech/{}/stream", w.voice)))
        .header("xi-api-key", &other_key)
        .json(&json!({ "text": "Hello." }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = other
        .post(w.app.url("/v1/audio/speech"))
        .json(&json!({ "model": "tts-1", "input": "Hello.", "voice": w.voice }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "as for a voice that does not exist");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["param"], "voice");
    let history: Value = other
        .get(w.app.url("/v1/history"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["history"], json!([]));

    let anonymous = reqwest::Client::new();
    let voice = &w.voice;
    let routes = [
        (reqwest::Method::POST, "/v1/audio/speech".to_string()),
        (reqwest::Method::GET, "/v1/models".to_string()),
        (reqwest::Method::POST, format!("/v1/text-to-speech/{voice}")),
        (
            reqwest::Method::POST,
            format!("/v1/text-to-speech/{voice}/stream"),
        ),
        (reqwest::Method::GET, "/v2/voices".to_string()),
        (reqwest::Method::GET, "/v1/voices".to_string()),
        (reqwest::Method::POST, "/v1/voices/add".to_string()),
        (reqwest::Method::GET, "/v1/history".to_string()),
        (reqwest::Method::GET, "/v1/user/subscription".to_string()),
    ];
    for (method, path) in routes {
        let response = anonymous
            .request(method.clone(), w.app.url(&path))
            .json(&json!({ "text": "Hello." }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
}
