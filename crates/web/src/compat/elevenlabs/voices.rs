//! `GET /v2/voices` (paged), `GET /v1/voices` (all), `GET` and `DELETE /v1/voices/{voice_id}`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use resonance_db::{Page, Voice, VoiceFilter};
use resonance_domain::{SpeechModel, VoiceId, VoiceVariant};
use serde::{Deserialize, Serialize};

use super::{DELETED, Deleted, ElevenLabsError, query};
use crate::auth::Caller;
use crate::paging;
use crate::voices::{remove_voice, voice_id};
use crate::{ApiError, AppState};

/// A voice in ElevenLabs' shape.
#[derive(Debug, Serialize)]
pub struct VoiceView {
    voice_id: VoiceId,
    name: String,
    /// `cloned` for the organization's own voices, `premade` for system voices.
    category: &'static str,
    description: Option<String>,
    labels: VoiceLabels,
    preview_url: String,
    /// Always `null`.
    settings: Option<()>,
    high_quality_base_model_ids: [&'static str; 1],
    created_at_unix: i64,
    is_owner: bool,
}

#[derive(Debug, Serialize)]
struct VoiceLabels {
    language: String,
    category: &'static str,
}

impl From<&Voice> for VoiceView {
    fn from(voice: &Voice) -> Self {
        let custom = voice.variant() == VoiceVariant::Custom;
        Self {
            voice_id: voice.id.clone(),
            name: voice.name.as_str().to_string(),
            category: if custom { "cloned" } else { "premade" },
            description: voice.description.as_ref().map(|d| d.as_str().to_string()),
            labels: VoiceLabels {
                language: voice.language.as_str().to_string(),
                category: voice.category.as_str(),
            },
            preview_url: format!("/api/voices/{}/audio", voice.id),
            settings: None,
            high_quality_base_model_ids: [SpeechModel::default().name()],
            created_at_unix: voice.created_at.unix_timestamp(),
            is_owner: custom,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct VoicesQuery {
    search: Option<String>,
    page_size: Option<u32>,
    next_page_token: Option<String>,
    /// `premade` (system voices) or `cloned` (the organization's own).
    category: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct VoicePage {
    voices: Vec<VoiceView>,
    has_more: bool,
    total_count: u64,
    /// `null` on the last page.
    next_page_token: Option<String>,
}

/// `GET /v2/voices`.
pub async fn list_voices(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    voices_query: Result<Query<VoicesQuery>, QueryRejection>,
) -> Result<Json<VoicePage>, ElevenLabsError> {
    let caller = caller?;
    let voices_query = query(voices_query)?;
    let variant = match voices_query.category.as_deref() {
        None => None,
        Some("premade") => Some(VoiceVariant::System),
        Some("cloned") => Some(VoiceVariant::Custom),
        Some(other) => {
            return Err(ElevenLabsError::invalid(
                "category",
                format!("unsupported category {other:?}; accepted values: premade, cloned"),
            ));
        }
    };
    let offset = voices_query
        .next_page_token
        .as_deref()
        .map(str::parse::<u32>)
        .transpose()
        .map_err(|_| ElevenLabsError::invalid("next_page_token", "not a token from a listing"))?
        .unwrap_or(0);
    let page = Page::new(voices_query.page_size.unwrap_or(10), offset)
        .map_err(|e| ElevenLabsError::invalid("page_size", e))?;
    let filter = VoiceFilter {
        variant,
        name_contains: paging::name_search(voices_query.search)?,
        ..VoiceFilter::default()
    };
    let listed = state
        .db
        .list_voices(&caller.org_id, &filter, page)
        .await
        .map_err(ApiError::from)?;
    let next = u64::from(offset) + listed.items.len() as u64;
    let has_more = next < listed.total;
    Ok(Json(VoicePage {
        voices: listed.items.iter().map(VoiceView::from).collect(),
        has_more,
        total_count: listed.total,
        next_page_token: has_more.then(|| next.to_string()),
    }))
}

#[derive(Debug, Serialize)]
pub struct VoiceList {
    voices: Vec<VoiceView>,
}

/// `GET /v1/voices`: every voice visible to the organization, unpaged.
pub async fn list_all_voices(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<VoiceList>, ElevenLabsError> {
    let caller = caller?;
    let mut voices = Vec::new();
    loop {
        let page =
            Page::new(Page::MAX_LIMIT, voices.len() as u32).expect("the largest page is valid");
        let listed = state
            .db
            .list_voices(&caller.org_id, &VoiceFilter::default(), page)
            .await
            .map_err(ApiError::from)?;
        voices.extend(listed.items.iter().map(VoiceView::from));
        if listed.items.is_empty() || voices.len() as u64 >= listed.total {
            return Ok(Json(VoiceList { voices }));
        }
    }
}

/// `GET /v1/voices/{voice_id}`.
pub async fn get_voice(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<VoiceView>, ElevenLabsError> {
    let caller = caller?;
    let voice = state
        .db
        .get_voice(&caller.org_id, &voice_id(&id)?)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(VoiceView::from(&voice)))
}

/// `DELETE /v1/voices/{voice_id}`: the same rules as `DELETE /api/voices/{id}`.
pub async fn delete_voice(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ElevenLabsError> {
    let caller = caller?;
    remove_voice(&state, &caller, &voice_id(&id)?).await?;
    Ok(Json(DELETED))
}
