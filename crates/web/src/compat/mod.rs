//! Drop-in APIs: OpenAI's speech endpoint and ElevenLabs' text-to-speech, voice, history,
//! subscription and model endpoints, so that their official SDKs work against Resonance
//! unchanged. Each boundary answers errors in its peer's shape; underneath, everything is
//! the same org-scoped, metered generations and voices as the REST API.

pub mod elevenlabs;
pub mod openai;
pub mod speech;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use resonance_db::{Page, VoiceFilter};
use resonance_domain::{OrgId, SpeechModel, VoiceId};

use crate::auth::Caller;
use crate::{ApiError, AppState};

/// The model a compat request's model name asks for: the peer's own model names
/// (`aliases`), and no name, speak with this server's default model; a model's own name
/// (`chatterbox-nano`) with that model when the server offers it. Otherwise a sentence
/// naming what is accepted.
pub fn speech_model(
    state: &AppState,
    name: Option<&str>,
    aliases: &[&'static str],
) -> Result<SpeechModel, String> {
    match name {
        Some(name) if aliases.contains(&name) => Ok(state.default_model()),
        name => state.speech_model(name).map_err(|_| {
            format!(
                "unknown model {:?}; accepted: {}",
                name.unwrap_or_default(),
                model_ids(state, aliases).join(", ")
            )
        }),
    }
}

/// `aliases`, then the models this server offers: the ids `GET /v1/models` lists.
pub fn model_ids(state: &AppState, aliases: &[&'static str]) -> Vec<&'static str> {
    let offered = state.models.iter().map(|model| model.name());
    aliases.iter().copied().chain(offered).collect()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/audio/speech", post(openai::speech))
        .route("/v1/models", get(models))
        .merge(elevenlabs::routes())
}

/// `GET /v1/models`: both peers use this path; a request with ElevenLabs' `xi-api-key`
/// header gets ElevenLabs' shape, any other OpenAI's.
async fn models(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
) -> Response {
    if headers.contains_key(elevenlabs::API_KEY_HEADER) {
        match caller {
            Ok(_) => elevenlabs::models(&state),
            Err(e) => elevenlabs::ElevenLabsError::from(e).into_response(),
        }
    } else {
        match caller {
            Ok(_) => openai::models(&state),
            Err(e) => openai::OpenAiError::from(e).into_response(),
        }
    }
}

/// The voice `id_or_name` names among those visible to `org`: its id, or else its name
/// (case-insensitive). `NotFound("voice")` when there is none.
pub async fn find_voice(
    state: &AppState,
    org: &OrgId,
    id_or_name: &str,
) -> Result<VoiceId, ApiError> {
    if let Ok(id) = VoiceId::parse(id_or_name) {
        return Ok(state.db.get_voice(org, &id).await?.id);
    }
    let filter = VoiceFilter {
        name_contains: Some(id_or_name.to_string()),
        ..VoiceFilter::default()
    };
    let page = Page::new(Page::MAX_LIMIT, 0).expect("the largest page is valid");
    let listed = state.db.list_voices(org, &filter, page).await?;
    listed
        .items
        .into_iter()
        .find(|voice| voice.name.as_str().eq_ignore_ascii_case(id_or_name.trim()))
        .map(|voice| voice.id)
        .ok_or(ApiError::NotFound("voice"))
}
