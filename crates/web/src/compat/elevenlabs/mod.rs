//! ElevenLabs-compatible endpoints: text to speech (whole, streamed, and from streamed
//! text over a WebSocket), voices, history,
//! subscription and models, with ElevenLabs' field names and its
//! `{"detail": {"status", "message"}}` errors.

mod account;
mod add_voice;
mod errors;
mod history;
mod stream_input;
mod text_to_speech;
mod voices;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query};
use axum::routing::{get, post};
use serde::Serialize;

pub use account::models;
pub use errors::ElevenLabsError;

use crate::AppState;

/// The header ElevenLabs clients send their key in.
pub const API_KEY_HEADER: &str = "xi-api-key";

/// ElevenLabs' model ids, served by the default model; ours follow them in `/v1/models`.
pub const MODELS: [&str; 6] = [
    "eleven_multilingual_v2",
    "eleven_turbo_v2_5",
    "eleven_flash_v2_5",
    "eleven_turbo_v2",
    "eleven_flash_v2",
    "eleven_monolingual_v1",
];

/// ElevenLabs' default `output_format`.
const DEFAULT_OUTPUT_FORMAT: &str = "mp3_44100_128";

/// Every ElevenLabs route but `GET /v1/models`, which it shares with OpenAI.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/text-to-speech/{voice_id}",
            post(text_to_speech::text_to_speech),
        )
        .route(
            "/v1/text-to-speech/{voice_id}/stream",
            post(text_to_speech::text_to_speech_stream),
        )
        .route(
            "/v1/text-to-speech/{voice_id}/stream-input",
            get(stream_input::stream_input),
        )
        .route("/v2/voices", get(voices::list_voices))
        .route("/v1/voices", get(voices::list_all_voices))
        .route(
            "/v1/voices/add",
            // The upload limit is enforced while the body streams in.
            post(add_voice::add_voice).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/voices/{voice_id}",
            get(voices::get_voice).delete(voices::delete_voice),
        )
        .route("/v1/history", get(history::list_history))
        .route(
            "/v1/history/{history_item_id}",
            get(history::get_history_item).delete(history::delete_history_item),
        )
        .route(
            "/v1/history/{history_item_id}/audio",
            get(history::history_item_audio),
        )
        .route("/v1/user/subscription", get(account::subscription))
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ElevenLabsError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| ElevenLabsError::invalid("query", rejection.body_text()))
}

/// `{"status": "ok"}`, the answer to a deletion.
#[derive(Debug, Serialize)]
struct Deleted {
    status: &'static str,
}

const DELETED: Deleted = Deleted { status: "ok" };
