//! `GET /v1/user/subscription` and `GET /v1/models` in ElevenLabs' shape.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use resonance_domain::{GenerationText, SpeechModel};
use serde::Serialize;

use super::{ElevenLabsError, MODELS};
use crate::auth::Caller;
use crate::billing::{Period, plan_of};
use crate::{ApiError, AppState};

/// What `/v1/user/subscription` reports for a limit the plan does not set.
const UNLIMITED: u64 = i32::MAX as u64;

/// The organization's plan and this period's use of it; what Resonance does not have
/// (credit extensions, professional voices, invoices) reads as none.
#[derive(Debug, Serialize)]
pub struct Subscription {
    /// `unlimited` when the plan limits neither characters nor voices, else `plan`.
    tier: &'static str,
    character_count: u64,
    character_limit: u64,
    can_extend_character_limit: bool,
    allowed_to_extend_character_limit: bool,
    max_credit_limit_extension: u64,
    next_character_count_reset_unix: i64,
    voice_slots_used: u64,
    professional_voice_slots_used: u64,
    professional_voice_slots_used_in_workspace: u64,
    voice_limit: u64,
    voice_add_edit_counter: u64,
    open_invoices: [(); 0],
    has_open_invoices: bool,
    professional_voice_limit: u64,
    can_extend_voice_limit: bool,
    can_use_instant_voice_cloning: bool,
    can_use_professional_voice_cloning: bool,
    status: &'static str,
}

/// `GET /v1/user/subscription`: this period's characters (the calendar month in UTC) from
/// the usage ledger and the custom voices, against the organization's plan; a limit the
/// plan does not set reads as [`UNLIMITED`].
pub async fn subscription(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<Subscription>, ElevenLabsError> {
    let caller = caller?;
    let org = &caller.org_id;
    let plan = plan_of(&state, org).await?;
    let period = Period::containing(state.billing.now());
    let character_count: u64 = state
        .db
        .daily_usage(org, period.start, period.end)
        .await
        .map_err(ApiError::from)?
        .iter()
        .map(|day| day.characters)
        .sum();
    let voice_slots_used = state
        .db
        .custom_voice_count(org)
        .await
        .map_err(ApiError::from)?;
    let unlimited = plan.characters_per_month.is_none() && plan.voice_slots.is_none();
    Ok(Json(Subscription {
        tier: if unlimited { "unlimited" } else { "plan" },
        character_count,
        character_limit: plan.characters_per_month.unwrap_or(UNLIMITED),
        can_extend_character_limit: false,
        allowed_to_extend_character_limit: false,
        max_credit_limit_extension: 0,
        next_character_count_reset_unix: period.end.unix_timestamp(),
        voice_slots_used,
        professional_voice_slots_used: 0,
        professional_voice_slots_used_in_workspace: 0,
        voice_limit: plan.voice_slots.unwrap_or(UNLIMITED),
        voice_add_edit_counter: 0,
        open_invoices: [],
        has_open_invoices: false,
        professional_voice_limit: 0,
        can_extend_voice_limit: false,
        can_use_instant_voice_cloning: true,
        can_use_professional_voice_cloning: false,
        status: "active",
    }))
}

/// One of [`MODELS`] (spoken by the default model) or a model of this server.
#[derive(Debug, Serialize)]
struct ModelView {
    model_id: &'static str,
    name: String,
    can_do_text_to_speech: bool,
    can_do_voice_conversion: bool,
    can_use_style: bool,
    can_use_speaker_boost: bool,
    can_be_finetuned: bool,
    maximum_text_length_per_request: usize,
    languages: [ModelLanguage; 1],
}

#[derive(Debug, Serialize)]
struct ModelLanguage {
    language_id: &'static str,
    name: &'static str,
}

impl ModelView {
    fn new(model_id: &'static str, default: SpeechModel) -> Self {
        let name = match SpeechModel::parse(model_id) {
            Some(model) => model.title().to_string(),
            None => format!("{model_id} (served by {})", default.title()),
        };
        Self {
            model_id,
            name,
            can_do_text_to_speech: true,
            can_do_voice_conversion: false,
            can_use_style: true,
            can_use_speaker_boost: false,
            can_be_finetuned: false,
            maximum_text_length_per_request: GenerationText::MAX_CHARS,
            languages: [ModelLanguage {
                language_id: "en",
                name: "English",
            }],
        }
    }
}

/// `GET /v1/models` in ElevenLabs' shape.
pub fn models(state: &AppState) -> Response {
    let models: Vec<_> = crate::compat::model_ids(state, &MODELS)
        .into_iter()
        .map(|id| ModelView::new(id, state.default_model()))
        .collect();
    Json(models).into_response()
}
