//! OpenAI-compatible speech: `POST /v1/audio/speech` and `GET /v1/models` (OpenAI's shape
//! unless the request carries ElevenLabs' `xi-api-key`), with errors in OpenAI's
//! `{"error": {"message", "type", "param", "code"}}` shape.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use resonance_audio::OutputFormat;
use resonance_domain::{GenerationParams, GenerationText};
use serde::Deserialize;
use serde_json::json;

use super::find_voice;
use super::speech::{self, Disconnect, Framing, RawAudio, SpeechError};
use crate::auth::Caller;
use crate::generations::ValidGeneration;
use crate::{ApiError, ApiJson, AppState};

/// OpenAI's model names, served by the default model; ours follow them in `/v1/models`.
pub const MODELS: [&str; 3] = ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"];

/// OpenAI's limit on `input`.
const MAX_INPUT_CHARS: usize = 4096;

/// An error as OpenAI's API answers it.
#[derive(Debug)]
pub struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl OpenAiError {
    /// 400 about one request field.
    fn invalid(param: &'static str, message: impl ToString) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.to_string(),
            kind: "invalid_request_error",
            param: Some(param),
            code: None,
        }
    }
}

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        let (status, kind, code) = match &error {
            ApiError::BadRequest { .. } | ApiError::Unprocessable { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_request_error", None)
            }
            ApiError::Unauthenticated | ApiError::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some("invalid_api_key"),
            ),
            ApiError::Forbidden(_) | ApiError::NoActiveOrganization => {
                (StatusCode::FORBIDDEN, "invalid_request_error", None)
            }
            ApiError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("not_found"),
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "invalid_request_error", None),
            ApiError::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", None)
            }
            ApiError::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                Some("rate_limit_exceeded"),
            ),
            ApiError::QuotaExceeded(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                Some("insufficient_quota"),
            ),
            ApiError::SubscriptionRequired => (
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                Some("subscription_required"),
            ),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "server_error", None),
            ApiError::BillingUnavailable(detail) => {
                tracing::error!(%detail, "billing provider failure");
                (StatusCode::SERVICE_UNAVAILABLE, "server_error", None)
            }
            ApiError::BadGateway(detail) => {
                tracing::error!(%detail, "object storage failure");
                (StatusCode::BAD_GATEWAY, "server_error", None)
            }
            ApiError::Internal(source) => {
                tracing::error!(error = %source, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None)
            }
        };
        Self {
            status,
            message: error.to_string(),
            kind,
            param: None,
            code,
        }
    }
}

impl From<SpeechError> for OpenAiError {
    fn from(error: SpeechError) -> Self {
        match error {
            SpeechError::Api(error) => error.into(),
            SpeechError::Failed(reason) => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: reason,
                kind: "server_error",
                param: None,
                code: None,
            },
            SpeechError::TimedOut => Self {
                status: StatusCode::GATEWAY_TIMEOUT,
                message: error.to_string(),
                kind: "server_error",
                param: None,
                code: Some("timeout"),
            },
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        });
        (self.status, Json(body)).into_response()
    }
}

/// `voice`: a voice id or name, as a string or OpenAI's `{"id": ...}` object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum VoiceChoice {
    Named(String),
    Object { id: String },
}

/// The request body. `instructions` is accepted and ignored (Chatterbox Turbo takes no
/// style prompt), like any other field not listed.
#[derive(Debug, Deserialize)]
pub struct SpeechBody {
    model: Option<String>,
    input: Option<String>,
    voice: Option<VoiceChoice>,
    response_format: Option<String>,
    speed: Option<f64>,
    stream_format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamFormat {
    Audio,
    Sse,
}

/// `POST /v1/audio/speech`: the audio streams as it is synthesized, as one file
/// (`stream_format` `audio`, the default) or as server-sent events (`sse`).
pub async fn speech(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    disconnect: Result<Query<Disconnect>, QueryRejection>,
    body: Result<ApiJson<SpeechBody>, ApiError>,
) -> Result<Response, OpenAiError> {
    let caller = caller?;
    let Query(disconnect) =
        disconnect.map_err(|rejection| OpenAiError::invalid("query", rejection.body_text()))?;
    let ApiJson(body) = body?;
    let model = body
        .model
        .as_deref()
        .ok_or_else(|| OpenAiError::invalid("model", "model is required"))?;
    let model = super::speech_model(&state, Some(model), &MODELS)
        .map_err(|e| OpenAiError::invalid("model", e))?;
    let input = body.input.as_deref().unwrap_or_default();
    let input_chars = input.chars().count();
    if input_chars > MAX_INPUT_CHARS {
        return Err(OpenAiError::invalid(
            "input",
            format!("input is {input_chars} characters; at most {MAX_INPUT_CHARS} are accepted"),
        ));
    }
    let text = GenerationText::parse(input).map_err(|e| OpenAiError::invalid("input", e))?;
    let voice = match &body.voice {
        None => return Err(OpenAiError::invalid("voice", "voice is required")),
        Some(VoiceChoice::Named(voice) | VoiceChoice::Object { id: voice }) => voice,
    };
    let format = body
        .response_format
        .as_deref()
        .map(OutputFormat::from_openai)
        .transpose()
        .map_err(|e| OpenAiError::invalid("response_format", e))?
        .unwrap_or_default();
    let speed = speech::check_speed(body.speed.unwrap_or(1.0))
        .map_err(|e| OpenAiError::invalid("speed", e))?;
    let stream_format = match body.stream_format.as_deref() {
        None | Some("audio") => StreamFormat::Audio,
        Some("sse") => StreamFormat::Sse,
        Some(other) => {
            return Err(OpenAiError::invalid(
                "stream_format",
                format!("unsupported stream_format {other:?}; accepted values: audio, sse"),
            ));
        }
    };
    let voice_id = find_voice(&state, &caller.org_id, voice)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => OpenAiError::invalid(
                "voice",
                format!("voice {voice:?} is neither the id nor the name of a voice you can use"),
            ),
            other => other.into(),
        })?;
    let valid = ValidGeneration {
        text,
        params: GenerationParams::default().with_model(model),
        voice_id,
        seed: None,
    };
    let job = speech::start(&state, &caller, valid)
        .await?
        .keep_on_disconnect(disconnect.keep_on_disconnect);
    let response = match stream_format {
        StreamFormat::Audio => {
            speech::stream(job, format, speed, format.content_type(), RawAudio).await?
        }
        StreamFormat::Sse => {
            let events = SpeechEvents {
                input_chars: input_chars as u64,
            };
            speech::stream(job, format, speed, "text/event-stream", events).await?
        }
    };
    Ok(response)
}

/// `speech.audio.delta` events with base64 audio, then `speech.audio.done` with the usage
/// (characters spoken, which is what Resonance meters, as input tokens).
struct SpeechEvents {
    input_chars: u64,
}

fn event(value: serde_json::Value) -> Bytes {
    format!("data: {value}\n\n").into()
}

impl Framing for SpeechEvents {
    fn audio(&mut self, encoded: Vec<u8>) -> Bytes {
        if encoded.is_empty() {
            return Bytes::new();
        }
        event(json!({
            "type": "speech.audio.delta",
            "audio": base64::engine::general_purpose::STANDARD.encode(encoded),
        }))
    }

    fn done(&mut self) -> Option<Bytes> {
        Some(event(json!({
            "type": "speech.audio.done",
            "usage": {
                "input_tokens": self.input_chars,
                "output_tokens": 0,
                "total_tokens": self.input_chars,
            }
        })))
    }
}

/// `GET /v1/models` in OpenAI's shape.
pub fn models(state: &AppState) -> Response {
    let data: Vec<_> = super::model_ids(state, &MODELS)
        .iter()
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "resonance" }))
        .collect();
    Json(json!({ "object": "list", "data": data })).into_response()
}
