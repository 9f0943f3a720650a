//! `GET /v1/history` and one item's `GET`, `DELETE` and `/audio`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use resonance_audio::OutputFormat;
use resonance_db::{Generation, GenerationFilter, Page};
use resonance_domain::{GenerationId, GenerationStatus, VoiceId};
use serde::{Deserialize, Serialize};

use super::{DEFAULT_OUTPUT_FORMAT, DELETED, Deleted, ElevenLabsError, query};
use crate::auth::Caller;
use crate::compat::speech;
use crate::generations::{generation_id, read_stored_audio, remove, stored_audio_key};
use crate::voices::voice_id;
use crate::{ApiError, AppState};

fn history_state(status: GenerationStatus) -> &'static str {
    match status {
        GenerationStatus::Succeeded => "created",
        GenerationStatus::Queued | GenerationStatus::Running => "processing",
        GenerationStatus::Failed => "failed",
        GenerationStatus::Cancelled => "cancelled",
    }
}

/// A generation as an ElevenLabs history item.
#[derive(Debug, Serialize)]
pub struct HistoryItem {
    history_item_id: GenerationId,
    request_id: GenerationId,
    /// `null` once the voice has been deleted.
    voice_id: Option<VoiceId>,
    model_id: &'static str,
    voice_name: String,
    text: String,
    date_unix: i64,
    character_count_change_from: u64,
    character_count_change_to: usize,
    content_type: &'static str,
    state: &'static str,
    settings: HistorySettings,
    source: &'static str,
}

/// The sampling parameters the generation ran with.
#[derive(Debug, Serialize)]
struct HistorySettings {
    temperature: f64,
    top_p: f64,
    top_k: u32,
    repetition_penalty: f64,
    seed: Option<u32>,
}

impl From<&Generation> for HistoryItem {
    fn from(generation: &Generation) -> Self {
        let characters = generation.text.as_str().chars().count();
        let charged = if generation.status == GenerationStatus::Succeeded {
            characters
        } else {
            0
        };
        Self {
            history_item_id: generation.id.clone(),
            request_id: generation.id.clone(),
            voice_id: generation.voice_id.clone(),
            model_id: generation.params.model().name(),
            voice_name: generation.voice_name.as_str().to_string(),
            text: generation.text.as_str().to_string(),
            date_unix: generation.created_at.unix_timestamp(),
            character_count_change_from: 0,
            character_count_change_to: charged,
            content_type: "audio/mpeg",
            state: history_state(generation.status),
            settings: HistorySettings {
                temperature: generation.params.temperature(),
                top_p: generation.params.top_p(),
                top_k: generation.params.top_k(),
                repetition_penalty: generation.params.repetition_penalty(),
                seed: generation.seed,
            },
            source: "TTS",
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    page_size: Option<u32>,
    start_after_history_item_id: Option<String>,
    voice_id: Option<String>,
}

/// ElevenLabs allows up to 1000 items a page; larger requests are served in pages of
/// [`Page::MAX_LIMIT`] with `has_more` set.
const MAX_HISTORY_PAGE: u32 = 1000;

#[derive(Debug, Serialize)]
pub struct HistoryPage {
    history: Vec<HistoryItem>,
    /// `null` when the page is empty.
    last_history_item_id: Option<String>,
    has_more: bool,
}

/// `GET /v1/history`: newest first, paged by the last item's id.
pub async fn list_history(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    history_query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryPage>, ElevenLabsError> {
    let caller = caller?;
    let history_query = query(history_query)?;
    let page_size = history_query.page_size.unwrap_or(100);
    if !(1..=MAX_HISTORY_PAGE).contains(&page_size) {
        return Err(ElevenLabsError::invalid(
            "page_size",
            format!("must be between 1 and {MAX_HISTORY_PAGE}"),
        ));
    }
    let filter = GenerationFilter {
        voice_id: history_query
            .voice_id
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(voice_id)
            .transpose()?,
    };
    let offset = match history_query.start_after_history_item_id.as_deref() {
        None | Some("") => 0,
        Some(after) => position_after(&state, &caller, &filter, after).await?,
    };
    let page =
        Page::new(page_size.min(Page::MAX_LIMIT), offset).expect("the page size is in range");
    let listed = state
        .db
        .list_generations(&caller.org_id, &filter, page)
        .await
        .map_err(ApiError::from)?;
    let has_more = u64::from(offset) + (listed.items.len() as u64) < listed.total;
    Ok(Json(HistoryPage {
        history: listed.items.iter().map(HistoryItem::from).collect(),
        last_history_item_id: listed.items.last().map(|g| g.id.to_string()),
        has_more,
    }))
}

/// The offset just past the history item `after` in the listing.
async fn position_after(
    state: &AppState,
    caller: &Caller,
    filter: &GenerationFilter,
    after: &str,
) -> Result<u32, ElevenLabsError> {
    let after = generation_id(after)?;
    let mut offset = 0;
    loop {
        let page = Page::new(Page::MAX_LIMIT, offset).expect("the largest page is valid");
        let listed = state
            .db
            .list_generations(&caller.org_id, filter, page)
            .await
            .map_err(ApiError::from)?;
        if let Some(index) = listed.items.iter().position(|g| g.id == after) {
            return Ok(offset + index as u32 + 1);
        }
        if listed.items.is_empty() {
            return Err(ApiError::NotFound("generation").into());
        }
        offset += listed.items.len() as u32;
    }
}

/// `GET /v1/history/{history_item_id}`.
pub async fn get_history_item(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<HistoryItem>, ElevenLabsError> {
    let caller = caller?;
    let generation = state
        .db
        .get_generation(&caller.org_id, &generation_id(&id)?)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(HistoryItem::from(&generation)))
}

/// `DELETE /v1/history/{history_item_id}`.
pub async fn delete_history_item(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ElevenLabsError> {
    let caller = caller?;
    remove(&state, &caller.org_id, &generation_id(&id)?).await?;
    Ok(Json(DELETED))
}

/// `GET /v1/history/{history_item_id}/audio`: MP3, as ElevenLabs serves it.
pub async fn history_item_audio(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Result<Response, ElevenLabsError> {
    let caller = caller?;
    let generation = state
        .db
        .get_generation(&caller.org_id, &generation_id(&id)?)
        .await
        .map_err(ApiError::from)?;
    let key = stored_audio_key(&generation)?;
    let samples = read_stored_audio(&state, &key).await?;
    let format = OutputFormat::from_elevenlabs(DEFAULT_OUTPUT_FORMAT).expect("a listed format");
    let encoded = speech::encode_whole(samples, format, 1.0).await;
    Ok(([(header::CONTENT_TYPE, format.content_type())], encoded).into_response())
}
