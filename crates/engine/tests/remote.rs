//! The remote engine against a small HTTP server speaking the inference service's
//! `/generate` contract.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use resonance_domain::{GenerationParams, VoiceId};
use resonance_engine::remote::RemoteEngine;
use resonance_engine::{EngineError, SpeechEngine, SynthesisRequest, VoiceRef};
use resonance_storage::ObjectKey;
use serde_json::{Value, json};

const KEY: &str = "test-inference-key";
const KNOWN_VOICE: &str = "voices/system/0123456789abcdefghjkmnpq";

/// The inference service: `x-api-key` checked, a known voice key required, WAV
/// back whose length follows the prompt (10 ms per character).
async fn generate(headers: HeaderMap, Json(body): Json<Value>) -> axum::response::Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({ "detail": "Invalid API key" })),
        )
            .into_response();
    }
    if body["voice_key"] != KNOWN_VOICE {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "detail": "Voice file not found" })),
        )
            .into_response();
    }
    for field in [
        "temperature",
        "top_p",
        "top_k",
        "repetition_penalty",
        "norm_loudness",
    ] {
        assert!(!body[field].is_null(), "missing {field}");
    }
    let n = body["prompt"].as_str().unwrap().chars().count() * 240;
    let samples: Vec<f32> = (0..n).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
    (
        [("content-type", "audio/wav")],
        resonance_audio::wav::encode_wav_pcm16(&samples, 24_000),
    )
        .into_response()
}

async fn start_service() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/generate", post(generate));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn request(text: &str, voice_key: &str) -> SynthesisRequest {
    SynthesisRequest {
        text: text.into(),
        voice: VoiceRef {
            id: VoiceId::parse("0123456789abcdefghjkmnpq").unwrap(),
            reference: ObjectKey::parse(voice_key).unwrap(),
        },
        params: GenerationParams::default(),
        seed: 0,
    }
}

#[tokio::test]
async fn speaks_the_inference_service_contract() {
    let url = start_service().await;
    let engine = RemoteEngine::new(&url, KEY, 2);
    let speech = engine
        .synthesize(request("Hello there.", KNOWN_VOICE))
        .await
        .unwrap();
    assert_eq!(speech.samples.len(), "Hello there.".len() * 240);
}

#[tokio::test]
async fn maps_service_errors() {
    let url = start_service().await;
    let wrong_key = RemoteEngine::new(&url, "wrong", 1);
    assert!(matches!(
        wrong_key.synthesize(request("Hi.", KNOWN_VOICE)).await,
        Err(EngineError::Unavailable(m)) if m.contains("Invalid API key")
    ));
    let engine = RemoteEngine::new(&url, KEY, 1);
    assert!(matches!(
        engine
            .synthesize(request("Hi.", "voices/system/qpnmkjhgfedcba9876543210"))
            .await,
        Err(EngineError::VoiceUnavailable(_))
    ));
}

#[tokio::test]
async fn unreachable_service_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let engine = RemoteEngine::new(&format!("http://127.0.0.1:{port}"), KEY, 1);
    assert!(matches!(
        engine.synthesize(request("Hi.", KNOWN_VOICE)).await,
        Err(EngineError::Unavailable(_))
    ));
}
