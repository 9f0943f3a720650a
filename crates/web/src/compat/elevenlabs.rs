//! ElevenLabs-compatible endpoints: text to speech (whole and streamed), voices, history,
//! subscription and models, with ElevenLabs' field names and its
//! `{"detail": {"status", "message"}}` errors.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use resonance_audio::voice_sample::{MAX_SECONDS, SAMPLE_RATE, SampleError, sample_error};
use resonance_audio::{Bounds, OutputFormat};
use resonance_db::{Generation, GenerationFilter, Page, Voice, VoiceFilter};
use resonance_domain::{
    GenerationParams, GenerationStatus, GenerationText, Language, VoiceDescription, VoiceName,
    VoiceOwner, VoiceVariant,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::speech::{self, RawAudio, SpeechError};
use super::{MODEL_ID, find_voice};
use crate::auth::Caller;
use crate::billing::{Period, plan_of};
use crate::generations::{
    ValidGeneration, generation_id, read_stored_audio, remove, stored_audio_key,
};
use crate::paging;
use crate::voices::{
    create_error, empty_body, invalid_form, missing_content_type, read_body, remove_voice, voice_id,
};
use crate::{ApiError, ApiJson, AppState};
use resonance_service::voices::{self as library, CreateVoiceError, Upload, VoiceDetails};

/// The header ElevenLabs clients send their key in.
pub const API_KEY_HEADER: &str = "xi-api-key";

/// ElevenLabs' model ids, all served by Chatterbox Turbo, then ours.
pub const MODELS: [&str; 7] = [
    "eleven_multilingual_v2",
    "eleven_turbo_v2_5",
    "eleven_flash_v2_5",
    "eleven_turbo_v2",
    "eleven_flash_v2",
    "eleven_monolingual_v1",
    MODEL_ID,
];

/// ElevenLabs' default `output_format`.
const DEFAULT_OUTPUT_FORMAT: &str = "mp3_44100_128";

/// What `/v1/user/subscription` reports for a limit the plan does not set.
const UNLIMITED: u64 = i32::MAX as u64;

/// An error as ElevenLabs' API answers it.
#[derive(Debug)]
pub struct ElevenLabsError {
    status: StatusCode,
    code: String,
    message: String,
}

impl ElevenLabsError {
    /// 400 about one request field.
    fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request".into(),
            message: format!("{field}: {message}"),
        }
    }
}

impl From<ApiError> for ElevenLabsError {
    fn from(error: ApiError) -> Self {
        let (status, code) = match &error {
            ApiError::BadRequest { code, .. } => {
                (StatusCode::BAD_REQUEST, code.to_ascii_lowercase())
            }
            ApiError::Unprocessable { code, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code.to_ascii_lowercase())
            }
            ApiError::Unauthenticated | ApiError::InvalidCredentials => {
                (StatusCode::UNAUTHORIZED, "invalid_api_key".into())
            }
            ApiError::Forbidden(_) | ApiError::NoActiveOrganization => {
                (StatusCode::FORBIDDEN, "forbidden".into())
            }
            ApiError::NotFound(what) => {
                let what = match *what {
                    "generation" => "history_item",
                    other => other,
                };
                (
                    StatusCode::NOT_FOUND,
                    format!("{}_not_found", what.replace(' ', "_")),
                )
            }
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict".into()),
            ApiError::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
            }
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests".into())
            }
            ApiError::QuotaExceeded(_) => (StatusCode::PAYMENT_REQUIRED, "quota_exceeded".into()),
            ApiError::SubscriptionRequired => {
                (StatusCode::FORBIDDEN, "subscription_required".into())
            }
            ApiError::BillingUnavailable(detail) => {
                tracing::error!(%detail, "billing provider failure");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "billing_unavailable".into(),
                )
            }
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable".into(),
            ),
            ApiError::BadGateway(detail) => {
                tracing::error!(%detail, "object storage failure");
                (StatusCode::BAD_GATEWAY, "storage_unavailable".into())
            }
            ApiError::Internal(source) => {
                tracing::error!(error = %source, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal_error".into())
            }
        };
        Self {
            status,
            code,
            message: error.to_string(),
        }
    }
}

impl From<SpeechError> for ElevenLabsError {
    fn from(error: SpeechError) -> Self {
        match error {
            SpeechError::Api(error) => error.into(),
            SpeechError::Failed(reason) => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "generation_failed".into(),
                message: reason,
            },
            SpeechError::TimedOut => Self {
                status: StatusCode::GATEWAY_TIMEOUT,
                code: "timeout".into(),
                message: error.to_string(),
            },
        }
    }
}

impl IntoResponse for ElevenLabsError {
    fn into_response(self) -> Response {
        let body = json!({ "detail": { "status": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ElevenLabsError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| ElevenLabsError::invalid("query", rejection.body_text()))
}

#[derive(Debug, Deserialize)]
pub struct SpeechQuery {
    output_format: Option<String>,
}

/// `voice_settings`, mapped onto Chatterbox Turbo's sampling parameters (see the README).
#[derive(Debug, Default, Deserialize)]
pub struct VoiceSettings {
    stability: Option<f64>,
    similarity_boost: Option<f64>,
    style: Option<f64>,
    speed: Option<f64>,
}

/// The request body; other ElevenLabs fields (`language_code`, `previous_text`, ...) are
/// accepted and ignored.
#[derive(Debug, Deserialize)]
pub struct SpeechBody {
    text: Option<String>,
    model_id: Option<String>,
    voice_settings: Option<VoiceSettings>,
    seed: Option<i64>,
}

fn unit_interval(field: &str, value: Option<f64>) -> Result<Option<f64>, ElevenLabsError> {
    match value {
        Some(v) if !(0.0..=1.0).contains(&v) => Err(ElevenLabsError::invalid(
            field,
            format!("must be between 0 and 1, got {v}"),
        )),
        other => Ok(other),
    }
}

impl VoiceSettings {
    /// Stability lowers the temperature (0.5 gives the default 0.8), similarity boost
    /// narrows top-p (0.75 gives the default 0.95), style widens top-k (0 gives the
    /// default 1000); an absent setting keeps the default.
    fn params(&self) -> Result<GenerationParams, ElevenLabsError> {
        let defaults = GenerationParams::default();
        let stability = unit_interval("voice_settings.stability", self.stability)?;
        let similarity = unit_interval("voice_settings.similarity_boost", self.similarity_boost)?;
        let style = unit_interval("voice_settings.style", self.style)?;
        GenerationParams::new(
            stability.map_or(defaults.temperature(), |s| 1.3 - s),
            similarity.map_or(defaults.top_p(), |b| (1.1 - 0.2 * b).min(1.0)),
            style.map_or(defaults.top_k(), |s| 1000 + (s * 1000.0).round() as u32),
            defaults.repetition_penalty(),
        )
        .map_err(|e| ElevenLabsError::invalid("voice_settings", e))
    }
}

/// A parsed text-to-speech request.
struct SpeechOrder {
    generation: ValidGeneration,
    format: OutputFormat,
    speed: f64,
}

async fn speech_order(
    state: &AppState,
    caller: &Caller,
    voice: &str,
    query: SpeechQuery,
    body: SpeechBody,
) -> Result<SpeechOrder, ElevenLabsError> {
    let format = OutputFormat::from_elevenlabs(
        query
            .output_format
            .as_deref()
            .unwrap_or(DEFAULT_OUTPUT_FORMAT),
    )
    .map_err(|e| ElevenLabsError::invalid("output_format", e))?;
    if let Some(model) = body.model_id.as_deref()
        && !MODELS.contains(&model)
    {
        return Err(ElevenLabsError::invalid(
            "model_id",
            format!("unknown model {model:?}; accepted: {}", MODELS.join(", ")),
        ));
    }
    let text = GenerationText::parse(body.text.as_deref().unwrap_or_default())
        .map_err(|e| ElevenLabsError::invalid("text", e))?;
    let settings = body.voice_settings.unwrap_or_default();
    let params = settings.params()?;
    let speed = speech::check_speed(settings.speed.unwrap_or(1.0))
        .map_err(|e| ElevenLabsError::invalid("voice_settings.speed", e))?;
    let seed = body.seed.map(u32::try_from).transpose().map_err(|_| {
        ElevenLabsError::invalid("seed", format!("must be between 0 and {}", u32::MAX))
    })?;
    let voice_id = find_voice(state, &caller.org_id, voice).await?;
    Ok(SpeechOrder {
        generation: ValidGeneration {
            text,
            params,
            voice_id,
            seed,
        },
        format,
        speed,
    })
}

/// `POST /v1/text-to-speech/{voice_id}`: the whole audio once it is ready.
pub async fn text_to_speech(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(voice): Path<String>,
    speech_query: Result<Query<SpeechQuery>, QueryRejection>,
    body: Result<ApiJson<SpeechBody>, ApiError>,
) -> Result<Response, ElevenLabsError> {
    let caller = caller?;
    let ApiJson(body) = body?;
    let order = speech_order(&state, &caller, &voice, query(speech_query)?, body).await?;
    let job = speech::start(&state, &caller, order.generation).await?;
    let history_item = job.id().to_string();
    let samples = job.whole().await?;
    let encoded = speech::encode_whole(samples, order.format, order.speed).await;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                order.format.content_type().to_string(),
            ),
            (
                header::HeaderName::from_static("history-item-id"),
                history_item,
            ),
        ],
        encoded,
    )
        .into_response())
}

/// `POST /v1/text-to-speech/{voice_id}/stream`: the audio as it is synthesized.
pub async fn text_to_speech_stream(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(voice): Path<String>,
    speech_query: Result<Query<SpeechQuery>, QueryRejection>,
    body: Result<ApiJson<SpeechBody>, ApiError>,
) -> Result<Response, ElevenLabsError> {
    let caller = caller?;
    let ApiJson(body) = body?;
    let order = speech_order(&state, &caller, &voice, query(speech_query)?, body).await?;
    let job = speech::start(&state, &caller, order.generation).await?;
    let content_type = order.format.content_type();
    Ok(speech::stream(job, order.format, order.speed, content_type, RawAudio).await?)
}

fn voice_json(voice: &Voice) -> Value {
    let custom = voice.variant() == VoiceVariant::Custom;
    json!({
        "voice_id": voice.id,
        "name": voice.name.as_str(),
        "category": if custom { "cloned" } else { "premade" },
        "description": voice.description.as_ref().map(|d| d.as_str()),
        "labels": {
            "language": voice.language.as_str(),
            "category": voice.category.as_str(),
        },
        "preview_url": format!("/api/voices/{}/audio", voice.id),
        "settings": null,
        "high_quality_base_model_ids": [MODEL_ID],
        "created_at_unix": voice.created_at.unix_timestamp(),
        "is_owner": custom,
    })
}

#[derive(Debug, Deserialize)]
pub struct VoicesQuery {
    search: Option<String>,
    page_size: Option<u32>,
    next_page_token: Option<String>,
    /// `premade` (system voices) or `cloned` (the organization's own).
    category: Option<String>,
}

/// `GET /v2/voices`.
pub async fn list_voices(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    voices_query: Result<Query<VoicesQuery>, QueryRejection>,
) -> Result<Json<Value>, ElevenLabsError> {
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
    Ok(Json(json!({
        "voices": listed.items.iter().map(voice_json).collect::<Vec<_>>(),
        "has_more": has_more,
        "total_count": listed.total,
        "next_page_token": has_more.then(|| next.to_string()),
    })))
}

/// `GET /v1/voices`: every voice visible to the organization, unpaged.
pub async fn list_all_voices(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<Value>, ElevenLabsError> {
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
        voices.extend(listed.items.iter().map(voice_json));
        if listed.items.is_empty() || voices.len() as u64 >= listed.total {
            return Ok(Json(json!({ "voices": voices })));
        }
    }
}

/// `GET /v1/voices/{voice_id}`.
pub async fn get_voice(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ElevenLabsError> {
    let caller = caller?;
    let voice = state
        .db
        .get_voice(&caller.org_id, &voice_id(&id)?)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(voice_json(&voice)))
}

/// `DELETE /v1/voices/{voice_id}`: the same rules as `DELETE /api/voices/{id}`.
pub async fn delete_voice(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ElevenLabsError> {
    let caller = caller?;
    remove_voice(&state, &caller, &voice_id(&id)?).await?;
    Ok(Json(json!({ "status": "ok" })))
}

/// The fields of `POST /v1/voices/add`.
#[derive(Default)]
struct VoiceForm {
    name: Option<String>,
    description: Option<String>,
    labels: Option<String>,
    /// Each recording with its Content-Type.
    files: Vec<(Bytes, Option<String>)>,
}

async fn read_voice_form(request: Request) -> Result<VoiceForm, ApiError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(invalid_form)?;
    let mut form = VoiceForm::default();
    while let Some(field) = multipart.next_field().await.map_err(invalid_form)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "files" || name == "files[]" {
            let content_type = field
                .content_type()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_ascii_lowercase);
            let bytes = field.bytes().await.map_err(invalid_form)?;
            if bytes.is_empty() {
                return Err(empty_body());
            }
            form.files.push((bytes, content_type));
            continue;
        }
        let value = field.text().await.map_err(invalid_form)?;
        match name.as_str() {
            "name" => form.name = Some(value),
            "description" => form.description = Some(value),
            "labels" => form.labels = Some(value),
            _ => {}
        }
    }
    Ok(form)
}

/// The labels ElevenLabs sends as a JSON object; `language` (BCP-47) and `category` (one
/// of Resonance's categories) are used, others ignored.
fn voice_details(form: &VoiceForm) -> Result<VoiceDetails, ElevenLabsError> {
    let labels: HashMap<String, String> = match form.labels.as_deref().map(str::trim) {
        None | Some("" | "null") => HashMap::new(),
        Some(labels) => serde_json::from_str(labels).map_err(|e| {
            ElevenLabsError::invalid("labels", format!("expected a JSON object of strings: {e}"))
        })?,
    };
    Ok(VoiceDetails {
        name: VoiceName::parse(form.name.as_deref().unwrap_or_default())
            .map_err(|e| ElevenLabsError::invalid("name", e))?,
        description: form
            .description
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(VoiceDescription::parse)
            .transpose()
            .map_err(|e| ElevenLabsError::invalid("description", e))?,
        category: labels
            .get("category")
            .map(|c| c.parse())
            .transpose()
            .map_err(|e| ElevenLabsError::invalid("labels.category", e))?
            .unwrap_or_default(),
        language: labels
            .get("language")
            .map(|l| Language::parse(l.as_str()))
            .transpose()
            .map_err(|e| ElevenLabsError::invalid("labels.language", e))?
            .unwrap_or_default(),
        consent: None,
    })
}

/// Several recordings become one: decoded at the voice sample rate and joined end to end,
/// as one WAV that is then checked like any upload. Each is decoded within what the length
/// limit leaves, and the work stops when `cancelled` is raised.
fn join_recordings(
    files: Vec<(Bytes, String)>,
    cancelled: &AtomicBool,
) -> Result<Upload, SampleError> {
    let mut joined = Vec::new();
    for (bytes, content_type) in files {
        let bounds = Bounds {
            sample_rate: SAMPLE_RATE,
            max_secs: MAX_SECONDS - joined.len() as f64 / f64::from(SAMPLE_RATE),
            cancelled,
        };
        let audio = resonance_audio::decode_bounded(&bytes, Some(&content_type), &bounds)
            .map_err(sample_error)?;
        joined.extend_from_slice(&audio.samples);
    }
    Ok(Upload {
        bytes: resonance_audio::wav::encode_wav_pcm16(&joined, SAMPLE_RATE).into(),
        content_type: "audio/wav".into(),
    })
}

/// `POST /v1/voices/add`: clones a voice from one or more recordings (`files`), checked
/// like `POST /api/voices`. Org admins only.
pub async fn add_voice(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    request: Request,
) -> Result<Json<Value>, ElevenLabsError> {
    let caller = caller?;
    caller.require_admin()?;
    let voice_slots = crate::billing::ensure_can_create_voice(&state, &caller.org_id).await?;
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, &parts.headers, state.voice_upload_max_bytes).await?;
    let form = read_voice_form(Request::from_parts(parts, Body::from(bytes))).await?;
    let details = voice_details(&form)?;
    let mut files = Vec::with_capacity(form.files.len());
    for (bytes, content_type) in form.files {
        files.push((bytes, content_type.ok_or_else(missing_content_type)?));
    }
    let upload = match files.len() {
        0 => return Err(empty_body().into()),
        1 => {
            let (bytes, content_type) = files.remove(0);
            Upload {
                bytes,
                content_type,
            }
        }
        _ => library::cancellable(move |cancelled| join_recordings(files, cancelled))
            .await
            .ok_or(ApiError::Unavailable)?
            .map_err(|e| create_error(CreateVoiceError::Sample(e)))?,
    };
    let voice = library::create_voice(
        state.db.as_ref(),
        &state.storage,
        VoiceOwner::Org(caller.org_id.clone()),
        details,
        upload,
        voice_slots,
    )
    .await
    .map_err(create_error)?;
    Ok(Json(
        json!({ "voice_id": voice.id, "requires_verification": false }),
    ))
}

fn history_state(status: GenerationStatus) -> &'static str {
    match status {
        GenerationStatus::Succeeded => "created",
        GenerationStatus::Queued | GenerationStatus::Running => "processing",
        GenerationStatus::Failed => "failed",
        GenerationStatus::Cancelled => "cancelled",
    }
}

fn history_item_json(generation: &Generation) -> Value {
    let characters = generation.text.as_str().chars().count();
    let charged = if generation.status == GenerationStatus::Succeeded {
        characters
    } else {
        0
    };
    json!({
        "history_item_id": generation.id,
        "request_id": generation.id,
        "voice_id": generation.voice_id,
        "model_id": MODEL_ID,
        "voice_name": generation.voice_name.as_str(),
        "text": generation.text.as_str(),
        "date_unix": generation.created_at.unix_timestamp(),
        "character_count_change_from": 0,
        "character_count_change_to": charged,
        "content_type": "audio/mpeg",
        "state": history_state(generation.status),
        "settings": {
            "temperature": generation.params.temperature(),
            "top_p": generation.params.top_p(),
            "top_k": generation.params.top_k(),
            "repetition_penalty": generation.params.repetition_penalty(),
            "seed": generation.seed,
        },
        "source": "TTS",
    })
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

/// `GET /v1/history`: newest first, paged by the last item's id.
pub async fn list_history(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    history_query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Value>, ElevenLabsError> {
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
    Ok(Json(json!({
        "history": listed.items.iter().map(history_item_json).collect::<Vec<_>>(),
        "last_history_item_id": listed.items.last().map(|g| g.id.to_string()),
        "has_more": has_more,
    })))
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
) -> Result<Json<Value>, ElevenLabsError> {
    let caller = caller?;
    let generation = state
        .db
        .get_generation(&caller.org_id, &generation_id(&id)?)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(history_item_json(&generation)))
}

/// `DELETE /v1/history/{history_item_id}`.
pub async fn delete_history_item(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ElevenLabsError> {
    let caller = caller?;
    remove(&state, &caller.org_id, &generation_id(&id)?).await?;
    Ok(Json(json!({ "status": "ok" })))
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

/// `GET /v1/user/subscription`: this period's characters (the calendar month in UTC) from
/// the usage ledger and the custom voices, against the organization's plan; a limit the
/// plan does not set reads as [`UNLIMITED`].
pub async fn subscription(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<Value>, ElevenLabsError> {
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
    Ok(Json(json!({
        "tier": if unlimited { "unlimited" } else { "plan" },
        "character_count": character_count,
        "character_limit": plan.characters_per_month.unwrap_or(UNLIMITED),
        "can_extend_character_limit": false,
        "allowed_to_extend_character_limit": false,
        "max_credit_limit_extension": 0,
        "next_character_count_reset_unix": period.end.unix_timestamp(),
        "voice_slots_used": voice_slots_used,
        "professional_voice_slots_used": 0,
        "professional_voice_slots_used_in_workspace": 0,
        "voice_limit": plan.voice_slots.unwrap_or(UNLIMITED),
        "voice_add_edit_counter": 0,
        "open_invoices": [],
        "has_open_invoices": false,
        "professional_voice_limit": 0,
        "can_extend_voice_limit": false,
        "can_use_instant_voice_cloning": true,
        "can_use_professional_voice_cloning": false,
        "status": "active",
    })))
}

/// `GET /v1/models` in ElevenLabs' shape.
pub fn models() -> Response {
    let models: Vec<_> = MODELS
        .iter()
        .map(|id| {
            json!({
                "model_id": id,
                "name": if *id == MODEL_ID { "Chatterbox Turbo".to_string() } else { format!("{id} (served by Chatterbox Turbo)") },
                "can_do_text_to_speech": true,
                "can_do_voice_conversion": false,
                "can_use_style": true,
                "can_use_speaker_boost": false,
                "can_be_finetuned": false,
                "maximum_text_length_per_request": GenerationText::MAX_CHARS,
                "languages": [{ "language_id": "en", "name": "English" }],
            })
        })
        .collect();
    Json(models).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_voice_settings_give_the_default_parameters() {
        let elevenlabs_defaults = VoiceSettings {
            stability: Some(0.5),
            similarity_boost: Some(0.75),
            style: Some(0.0),
            speed: Some(1.0),
        };
        let params = elevenlabs_defaults.params().unwrap();
        let defaults = GenerationParams::default();
        assert!((params.temperature() - defaults.temperature()).abs() < 1e-9);
        assert!((params.top_p() - defaults.top_p()).abs() < 1e-9);
        assert_eq!(params.top_k(), defaults.top_k());
        assert_eq!(VoiceSettings::default().params().unwrap(), defaults);
    }

    #[test]
    fn settings_move_the_parameters_and_out_of_range_names_the_field() {
        let stable = VoiceSettings {
            stability: Some(1.0),
            style: Some(1.0),
            ..VoiceSettings::default()
        };
        let params = stable.params().unwrap();
        assert!((params.temperature() - 0.3).abs() < 1e-9);
        assert_eq!(params.top_k(), 2000);
        let error = VoiceSettings {
            similarity_boost: Some(1.5),
            ..VoiceSettings::default()
        }
        .params()
        .unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("voice_settings.similarity_boost"));
    }
}
