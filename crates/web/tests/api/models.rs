//! Choosing the speech model per request: `/v1/models` and the text-to-speech page list
//! the models the server offers, each API (ours, OpenAI's, ElevenLabs') speaks with the
//! one it names, and a model the server has not loaded is refused in that API's own error
//! shape.

use std::sync::Arc;

use crate::compat::{World, world};
use crate::support::tone::{ToneEngine, tone_app};
use resonance_domain::SpeechModel::{self, ChatterboxNano, ChatterboxTurbo};
use serde_json::{Value, json};

/// A world on a server offering `models`, and the engine its worker speaks with.
async fn offering(models: &[SpeechModel]) -> (World, Arc<ToneEngine>) {
    let (app, engine) = tone_app(models).await;
    (world(app).await, engine)
}

async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.unwrap()
}

async fn get_json(w: &World, client: reqwest::Client, path: &str) -> Value {
    send(client.get(w.app.url(path)))
        .await
        .json()
        .await
        .unwrap()
}

async fn generate(w: &World, body: Value) -> reqwest::Response {
    let url = w.app.url("/api/generations?wait=true");
    send(w.admin.client.post(url).json(&body)).await
}

async fn openai_speech(w: &World, model: &str) -> reqwest::Response {
    let body = json!({ "model": model, "input": "Hello there.", "voice": w.voice, "response_format": "wav" });
    send(w.bearer().post(w.app.url("/v1/audio/speech")).json(&body)).await
}

async fn elevenlabs_speech(w: &World, model_id: &str) -> reqwest::Response {
    let url = w.app.url(&format!(
        "/v1/text-to-speech/{}?output_format=pcm_24000",
        w.voice
    ));
    let body = json!({ "text": "Hello there.", "model_id": model_id });
    send(w.xi().post(url).json(&body)).await
}

async fn openai_model_ids(w: &World) -> Vec<String> {
    let models = get_json(w, w.bearer(), "/v1/models").await;
    models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// Checks that `response` is a refusal with `status` whose `message_at` (a JSON pointer)
/// holds every one of `parts`; returns the body.
async fn refused(
    response: reqwest::Response,
    status: u16,
    message_at: &str,
    parts: &[&str],
) -> Value {
    assert_eq!(response.status(), status);
    let error: Value = response.json().await.unwrap();
    let message = error.pointer(message_at).and_then(Value::as_str).unwrap();
    for part in parts {
        assert!(message.contains(part), "{part} not in {message}");
    }
    error
}

#[tokio::test]
async fn v1_models_and_the_page_list_the_models_the_server_offers() {
    let (both, _) = offering(&[ChatterboxTurbo, ChatterboxNano]).await;
    assert_eq!(
        openai_model_ids(&both).await,
        [
            "tts-1",
            "tts-1-hd",
            "gpt-4o-mini-tts",
            "chatterbox-turbo",
            "chatterbox-nano"
        ]
    );
    let models = get_json(&both, both.xi(), "/v1/models").await;
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
    let page = send(both.admin.client.get(both.app.url("/text-to-speech"))).await;
    let page = page.text().await.unwrap();
    assert!(
        page.contains(
            "<option value=\"chatterbox-turbo\">Chatterbox Turbo</option>\
             <option value=\"chatterbox-nano\">Chatterbox Nano</option>"
        ),
        "{page}"
    );

    let (nano_only, _) = offering(&[ChatterboxNano]).await;
    let ids = openai_model_ids(&nano_only).await;
    assert!(
        ids.contains(&"chatterbox-nano".to_string())
            && !ids.contains(&"chatterbox-turbo".to_string()),
        "{ids:?}"
    );
}

#[tokio::test]
async fn each_api_speaks_with_the_model_it_names() {
    let (w, engine) = offering(&[ChatterboxTurbo, ChatterboxNano]).await;
    let body = json!({ "text": "Hello there.", "voiceId": w.voice, "model": "chatterbox-nano" });
    let response = generate(&w, body).await;
    assert_eq!(response.status(), 201);
    let nano: Value = response.json().await.unwrap();
    assert_eq!(nano["status"], "succeeded");
    assert_eq!(nano["model"], "chatterbox-nano");
    let path = format!("/api/generations/{}", nano["id"].as_str().unwrap());
    let stored = get_json(&w, w.admin.client.clone(), &path).await;
    assert_eq!(stored["model"], "chatterbox-nano");
    let body = json!({ "text": "Hello there.", "voiceId": w.voice });
    let default: Value = generate(&w, body).await.json().await.unwrap();
    assert_eq!(default["model"], "chatterbox-turbo");

    for model in ["chatterbox-nano", "tts-1", "chatterbox-turbo"] {
        let response = openai_speech(&w, model).await;
        assert_eq!(response.status(), 200, "{model}");
        response.bytes().await.unwrap();
    }
    let response = elevenlabs_speech(&w, "chatterbox-nano").await;
    assert_eq!(response.status(), 200);
    let item = response.headers()["history-item-id"]
        .to_str()
        .unwrap()
        .to_string();
    response.bytes().await.unwrap();
    let history = get_json(&w, w.xi(), &format!("/v1/history/{item}")).await;
    assert_eq!(history["model_id"], "chatterbox-nano");
    let response = elevenlabs_speech(&w, "eleven_multilingual_v2").await;
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();

    assert_eq!(
        *engine.models.lock().unwrap(),
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
    let (w, engine) = offering(&[ChatterboxTurbo]).await;
    let body = json!({ "text": "Hello there.", "voiceId": w.voice, "model": "chatterbox-nano" });
    let ours = [
        "\"chatterbox-nano\" is not available on this server",
        "available: chatterbox-turbo",
    ];
    let error = refused(generate(&w, body).await, 422, "/error/message", &ours).await;
    assert_eq!(error["error"]["code"], "INVALID_FIELD");

    let openai = [
        "unknown model \"chatterbox-nano\"",
        "accepted: tts-1, tts-1-hd, gpt-4o-mini-tts, chatterbox-turbo",
    ];
    let response = openai_speech(&w, "chatterbox-nano").await;
    let error = refused(response, 400, "/error/message", &openai).await;
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["param"], "model");

    let elevenlabs = [
        "model_id: unknown model \"chatterbox-nano\"",
        "eleven_monolingual_v1, chatterbox-turbo",
    ];
    let response = elevenlabs_speech(&w, "chatterbox-nano").await;
    let error = refused(response, 400, "/detail/message", &elevenlabs).await;
    assert_eq!(error["detail"]["status"], "invalid_request");

    // The stream-input WebSocket refuses it before upgrading, in ElevenLabs' shape too.
    let url = w.app.url(&format!(
        "/v1/text-to-speech/{}/stream-input?model_id=chatterbox-nano",
        w.voice
    ));
    let upgrade = w
        .xi()
        .get(url)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    let error = refused(send(upgrade).await, 400, "/detail/message", &elevenlabs).await;
    assert_eq!(error["detail"]["status"], "invalid_request");

    assert!(engine.models.lock().unwrap().is_empty());
    let history = get_json(&w, w.xi(), "/v1/history").await;
    assert_eq!(history["history"], json!([]), "nothing was queued");
}
