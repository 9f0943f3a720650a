//! Choosing the speech model per request: `/v1/models` and the text-to-speech page list
//! the models the server offers,
//! each API (ours, OpenAI's, ElevenLabs') speaks with the one it names, and a model the
//! server has not loaded is refused in that API's own error shape.

use std::sync::Arc;

use crate::support::tone::ToneEngine;
use crate::support::{TestApp, TestUser};
use resonance_domain::SpeechModel::{self, ChatterboxNano, ChatterboxTurbo};
use serde_json::{Value, json};

struct World {
    app: TestApp,
    admin: TestUser,
    key: String,
    voice: String,
    engine: Arc<ToneEngine>,
}

async fn world(models: &[SpeechModel]) -> World {
    let engine = Arc::new(ToneEngine::default());
    let app = TestApp::builder()
        .models(models)
        .engine(engine.clone())
        .spawn()
        .await;
    let admin = app.signed_up("admin@models.example").await;
    let org = app.create_org(&admin, "Models").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let key = app.create_api_key(&admin, &org).await;
    World {
        app,
        admin,
        key,
        voice,
        engine,
    }
}

impl World {
    fn xi(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("xi-api-key", self.key.parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    async fn generate(&self, body: Value) -> reqwest::Response {
        self.admin
            .client
            .post(self.app.url("/api/generations?wait=true"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn openai_speech(&self, model: &str) -> reqwest::Response {
        self.app
            .key_client(&self.key)
            .post(self.app.url("/v1/audio/speech"))
            .json(&json!({ "model": model, "input": "Hello there.", "voice": self.voice, "response_format": "wav" }))
            .send()
            .await
            .unwrap()
    }

    async fn elevenlabs_speech(&self, model_id: &str) -> reqwest::Response {
        self.xi()
            .post(self.app.url(&format!(
                "/v1/text-to-speech/{}?output_format=pcm_24000",
                self.voice
            )))
            .json(&json!({ "text": "Hello there.", "model_id": model_id }))
            .send()
            .await
            .unwrap()
    }

    async fn openai_model_ids(&self) -> Vec<String> {
        let models: Value = self
            .app
            .key_client(&self.key)
            .get(self.app.url("/v1/models"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    }
}

#[tokio::test]
async fn v1_models_lists_the_models_the_server_offers() {
    let both = world(&[ChatterboxTurbo, ChatterboxNano]).await;
    assert_eq!(
        both.openai_model_ids().await,
        [
            "tts-1",
            "tts-1-hd",
            "gpt-4o-mini-tts",
            "chatterbox-turbo",
            "chatterbox-nano"
        ]
    );
    let models: Value = both
        .xi()
        .get(both.app.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = |id: &str| {
        models
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["model_id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {models}"))["name"]
            .clone()
    };
    assert_eq!(name("chatterbox-nano"), "Chatterbox Nano");
    assert_eq!(name("chatterbox-turbo"), "Chatterbox Turbo");
    assert_eq!(
        name("eleven_multilingual_v2"),
        "eleven_multilingual_v2 (served by Chatterbox Turbo)"
    );

    let page = both
        .admin
        .client
        .get(both.app.url("/text-to-speech"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(
            "<option value=\"chatterbox-turbo\">Chatterbox Turbo</option>\
             <option value=\"chatterbox-nano\">Chatterbox Nano</option>"
        ),
        "{page}"
    );

    let nano_only = world(&[ChatterboxNano]).await;
    let ids = nano_only.openai_model_ids().await;
    assert!(
        ids.contains(&"chatterbox-nano".to_string())
            && !ids.contains(&"chatterbox-turbo".to_string()),
        "{ids:?}"
    );
}

#[tokio::test]
async fn each_api_speaks_with_the_model_it_names() {
    let w = world(&[ChatterboxTurbo, ChatterboxNano]).await;
    let response = w
        .generate(json!({ "text": "Hello there.", "voiceId": w.voice, "model": "chatterbox-nano" }))
        .await;
    assert_eq!(response.status(), 201);
    let nano: Value = response.json().await.unwrap();
    assert_eq!(nano["status"], "succeeded");
    assert_eq!(nano["model"], "chatterbox-nano");
    let stored: Value = w
        .admin
        .client
        .get(w.app.url(&format!(
            "/api/generations/{}",
            nano["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["model"], "chatterbox-nano");
    let default: Value = w
        .generate(json!({ "text": "Hello there.", "voiceId": w.voice }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(default["model"], "chatterbox-turbo");

    for model in ["chatterbox-nano", "tts-1", "chatterbox-turbo"] {
        let response = w.openai_speech(model).await;
        assert_eq!(response.status(), 200, "{model}");
        response.bytes().await.unwrap();
    }
    let response = w.elevenlabs_speech("chatterbox-nano").await;
    assert_eq!(response.status(), 200);
    let item = response.headers()["history-item-id"]
        .to_str()
        .unwrap()
        .to_string();
    response.bytes().await.unwrap();
    let history: Value = w
        .xi()
        .get(w.app.url(&format!("/v1/history/{item}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["model_id"], "chatterbox-nano");
    let response = w.elevenlabs_speech("eleven_multilingual_v2").await;
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();

    assert_eq!(
        *w.engine.models.lock().unwrap(),
        [
            ChatterboxNano,
            ChatterboxTurbo,
            ChatterboxNano,
            ChatterboxTurbo,
            ChatterboxTurbo,
            ChatterboxNano,
            ChatterboxTurbo
        ]
    );
}

#[tokio::test]
async fn a_model_the_server_has_not_loaded_is_refused_in_each_apis_shape() {
    let w = world(&[ChatterboxTurbo]).await;
    let response = w
        .generate(json!({ "text": "Hello there.", "voiceId": w.voice, "model": "chatterbox-nano" }))
        .await;
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "INVALID_FIELD");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"chatterbox-nano\" is not available on this server")
            && message.contains("available: chatterbox-turbo"),
        "{message}"
    );

    let response = w.openai_speech("chatterbox-nano").await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["param"], "model");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("unknown model \"chatterbox-nano\"")
            && message.contains("accepted: tts-1, tts-1-hd, gpt-4o-mini-tts, chatterbox-turbo"),
        "{message}"
    );

    let response = w.elevenlabs_speech("chatterbox-nano").await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["detail"]["status"], "invalid_request");
    let message = error["detail"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("model_id: unknown model \"chatterbox-nano\"")
            && message.ends_with("eleven_monolingual_v1, chatterbox-turbo"),
        "{message}"
    );

    assert!(w.engine.models.lock().unwrap().is_empty());
    let history: Value = w
        .xi()
        .get(w.app.url("/v1/history"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["history"], json!([]), "nothing was queued");
}
