//! Speech generation: the API that queues jobs and serves their history and audio (the
//! workers that run them are in [`resonance_service::generations`]).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use resonance_audio::OutputFormat;
use resonance_audio::encode::SOURCE_RATE;
use resonance_audio::stretch::stretch;
use resonance_db::{Generation, GenerationFilter};
use resonance_domain::{
    GenerationFieldError, GenerationId, GenerationParams, GenerationStatus, GenerationText, OrgId,
    SpeechModel, VoiceId, VoiceName,
};
pub use resonance_service::generations::ValidGeneration;
use resonance_storage::ObjectKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ErrorBody;
use crate::objects::{Presentation, object_response, storage_error};
use crate::paging::{self, ApiQuery, invalid_query};
use crate::{ApiError, ApiJson, AppState};
use resonance_service::model_status::ModelState;

/// How long `?wait=true` waits for a job before answering 202 with it still unfinished.
pub const WAIT_LIMIT: Duration = Duration::from_secs(300);
const WAIT_POLL: Duration = Duration::from_millis(100);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_generations, create_generation))
        .routes(routes!(get_generation, delete_generation))
        .routes(routes!(cancel_generation))
        .routes(routes!(audio))
}

/// A generation as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerationView {
    pub id: GenerationId,
    /// `null` once the voice has been deleted; `voiceName` still says which it was.
    pub voice_id: Option<VoiceId>,
    pub voice_name: VoiceName,
    pub text: String,
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: u32,
    pub repetition_penalty: f64,
    /// The speech model it is spoken with.
    pub model: SpeechModel,
    /// The seed the job runs with: the one asked for, or a random one chosen when it was
    /// queued. `null` only for jobs queued before seeds were recorded.
    pub seed: Option<u32>,
    pub status: GenerationStatus,
    /// Percent done, 0-100.
    pub progress: u8,
    pub failure_reason: Option<String>,
    /// Why a queued generation has not started, when the server knows: the speech model is
    /// still downloading, loading or could not be loaded. A sentence for the user.
    pub waiting_reason: Option<String>,
    /// Set once the audio is ready.
    pub audio_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl From<Generation> for GenerationView {
    fn from(generation: Generation) -> Self {
        let audio_url = (generation.status == GenerationStatus::Succeeded)
            .then(|| format!("/api/generations/{}/audio", generation.id));
        Self {
            id: generation.id,
            voice_id: generation.voice_id,
            voice_name: generation.voice_name,
            text: generation.text.as_str().to_string(),
            temperature: generation.params.temperature(),
            top_p: generation.params.top_p(),
            top_k: generation.params.top_k(),
            repetition_penalty: generation.params.repetition_penalty(),
            model: generation.params.model(),
            seed: generation.seed,
            status: generation.status,
            progress: generation.progress,
            failure_reason: generation.failure_reason,
            waiting_reason: None,
            audio_url,
            created_at: generation.created_at,
            updated_at: generation.updated_at,
            finished_at: generation.finished_at,
        }
    }
}

impl GenerationView {
    /// The view of `generation` with, while it is queued, why it waits on the model.
    pub fn new(generation: Generation, model: ModelState) -> Self {
        let waiting = generation.status == GenerationStatus::Queued;
        Self {
            waiting_reason: waiting
                .then(|| model.waiting_reason())
                .flatten()
                .map(str::to_string),
            ..generation.into()
        }
    }
}

/// `POST /api/generations`. Absent parameters take Chatterbox Turbo's defaults.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateGeneration {
    /// 1-5000 characters (required).
    pub text: Option<String>,
    /// A system voice or one of the organization's (required).
    #[schema(value_type = Option<VoiceId>)]
    pub voice_id: Option<String>,
    /// In (0, 2] [default: 0.8].
    pub temperature: Option<f64>,
    /// In (0, 1] [default: 0.95].
    pub top_p: Option<f64>,
    /// 1-10000 [default: 1000].
    // Wider than the bounds, so that a negative value is refused naming the field.
    pub top_k: Option<i64>,
    /// 1-2 [default: 1.2].
    pub repetition_penalty: Option<f64>,
    /// 0-4294967295 [default: random, chosen when the job is queued and returned with it].
    pub seed: Option<i64>,
    /// A model this server offers (listed by `GET /v1/models`) [default: the server's
    /// `model` setting].
    #[schema(value_type = Option<SpeechModel>)]
    pub model: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// Answer once the generation has finished (up to 5 minutes) instead of at once.
    #[serde(default)]
    wait: bool,
}

fn invalid_field(message: impl ToString) -> ApiError {
    ApiError::Unprocessable {
        code: "INVALID_FIELD",
        message: message.to_string(),
    }
}

impl CreateGeneration {
    /// The text and parameters, or 422 naming the first field out of bounds or a model
    /// `state` does not offer.
    pub fn parse(&self, state: &AppState) -> Result<ValidGeneration, ApiError> {
        let text = GenerationText::parse(self.text.as_deref().unwrap_or_default())
            .map_err(invalid_field)?;
        let defaults = GenerationParams::default();
        let params = GenerationParams::new(
            self.temperature.unwrap_or(defaults.temperature()),
            self.top_p.unwrap_or(defaults.top_p()),
            self.top_k
                .map_or(Ok(defaults.top_k()), |k| {
                    u32::try_from(k).map_err(|_| GenerationFieldError::TopK)
                })
                .map_err(invalid_field)?,
            self.repetition_penalty
                .unwrap_or(defaults.repetition_penalty()),
        )
        .map_err(invalid_field)?
        .with_model(
            state
                .speech_model(self.model.as_deref())
                .map_err(invalid_field)?,
        );
        let voice_id = match self.voice_id.as_deref() {
            None | Some("") => return Err(invalid_field("voiceId is required: choose a voice")),
            // An id that does not parse names no voice.
            Some(raw) => VoiceId::parse(raw).map_err(|_| ApiError::NotFound("voice"))?,
        };
        let seed = self
            .seed
            .map(u32::try_from)
            .transpose()
            .map_err(|_| invalid_field(format!("seed must be between 0 and {}", u32::MAX)))?;
        Ok(ValidGeneration {
            text,
            params,
            voice_id,
            seed,
        })
    }
}

/// Generate speech
///
/// Queues a generation: 202 with it, or with `?wait=true` 201 once it has finished
/// (succeeded, failed or cancelled: its `status` says which).
#[utoipa::path(
    post,
    path = "/api/generations",
    tag = "generations",
    params(CreateQuery),
    request_body = CreateGeneration,
    responses(
        (status = 201, description = "Finished (with `wait=true`)", body = GenerationView),
        (status = 202, description = "Queued, or still running when the wait ended", body = GenerationView),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 402, description = "`QUOTA_EXCEEDED`: over the plan's characters or concurrent jobs", body = ErrorBody),
        (status = 403, description = "`SUBSCRIPTION_REQUIRED`", body = ErrorBody),
        (status = 404, description = "No such voice for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`, or the voice's audio is not ready", body = ErrorBody),
        (status = 422, description = "`INVALID_FIELD`: the message starts with the field's name", body = ErrorBody),
        (status = 503, description = "`BILLING_UNAVAILABLE`: Polar does not answer", body = ErrorBody),
    )
)]
async fn create_generation(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CreateQuery>,
    ApiJson(body): ApiJson<CreateGeneration>,
) -> Result<Response, ApiError> {
    let generation = queue(&state, &caller, &body).await?;
    if !query.wait {
        let view = GenerationView::new(generation, state.model.state());
        return Ok((StatusCode::ACCEPTED, Json(view)).into_response());
    }
    let generation = wait_until_finished(&state, generation, WAIT_LIMIT).await?;
    let status = if generation.status.is_finished() {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    let view = GenerationView::new(generation, state.model.state());
    Ok((status, Json(view)).into_response())
}

/// Validates `body`, checks the organization's subscription and plan (403, 402) and that
/// the voice is visible to it, and queues the job, waking an idle in-process worker.
pub async fn queue(
    state: &AppState,
    caller: &Caller,
    body: &CreateGeneration,
) -> Result<Generation, ApiError> {
    queue_as(state, caller, body.parse(state)?, GenerationId::new()).await
}

/// [`queue`] with its fields already parsed and the id chosen by the caller (who may have
/// subscribed to the job's events under it).
pub async fn queue_as(
    state: &AppState,
    caller: &Caller,
    valid: ValidGeneration,
    id: GenerationId,
) -> Result<Generation, ApiError> {
    Ok(resonance_service::generations::queue(
        state.db.as_ref(),
        &state.billing,
        &state.new_jobs,
        &caller.org_id,
        valid,
        id,
    )
    .await?)
}

/// Polls the job until it has finished or `limit` has passed; the database is the only
/// thing the API and workers on other machines share.
pub async fn wait_until_finished(
    state: &AppState,
    mut generation: Generation,
    limit: Duration,
) -> Result<Generation, ApiError> {
    let deadline = tokio::time::Instant::now() + limit;
    while !generation.status.is_finished() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(WAIT_POLL).await;
        generation = state
            .db
            .get_generation(&generation.org_id, &generation.id)
            .await?;
    }
    Ok(generation)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only generations made with this voice.
    #[param(value_type = Option<VoiceId>)]
    voice_id: Option<String>,
    /// Generations per page.
    limit: Option<u32>,
    /// Generations to skip.
    offset: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GenerationList {
    generations: Vec<GenerationView>,
    /// Matching generations on all pages.
    total: u64,
    limit: u32,
    offset: u32,
}

/// List generations
///
/// Newest first, optionally only those made with one voice.
#[utoipa::path(
    get,
    path = "/api/generations",
    tag = "generations",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of generations", body = GenerationList),
        (status = 400, description = "`INVALID_QUERY`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`", body = ErrorBody),
    )
)]
async fn list_generations(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<GenerationList>, ApiError> {
    let filter = GenerationFilter {
        voice_id: query
            .voice_id
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(VoiceId::parse)
            .transpose()
            .map_err(|e| invalid_query(format!("voiceId: {e}")))?,
    };
    let page = paging::page(query.limit, query.offset)?;
    let listed = state
        .db
        .list_generations(&caller.org_id, &filter, page)
        .await?;
    Ok(Json(GenerationList {
        generations: listed
            .items
            .into_iter()
            .map(|generation| GenerationView::new(generation, state.model.state()))
            .collect(),
        total: listed.total,
        limit: page.limit(),
        offset: page.offset(),
    }))
}

/// An id that does not parse names no generation.
pub fn generation_id(raw: &str) -> Result<GenerationId, ApiError> {
    GenerationId::parse(raw).map_err(|_| ApiError::NotFound("generation"))
}

/// Get a generation
///
/// Its status and progress; `audioUrl` once it has succeeded.
#[utoipa::path(
    get,
    path = "/api/generations/{generationId}",
    tag = "generations",
    params(("generationId" = GenerationId, Path, description = "The generation")),
    responses(
        (status = 200, description = "The generation", body = GenerationView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such generation for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`", body = ErrorBody),
    )
)]
async fn get_generation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<GenerationView>, ApiError> {
    let generation = state
        .db
        .get_generation(&caller.org_id, &generation_id(&id)?)
        .await?;
    Ok(Json(GenerationView::new(generation, state.model.state())))
}

/// Delete a generation
///
/// Removes the generation and its audio. A running job stops at its worker's next
/// heartbeat and leaves nothing behind.
#[utoipa::path(
    delete,
    path = "/api/generations/{generationId}",
    tag = "generations",
    params(("generationId" = GenerationId, Path, description = "The generation")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such generation for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`", body = ErrorBody),
    )
)]
async fn delete_generation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove(&state, &caller.org_id, &generation_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes one of `org`'s generations and its audio.
pub async fn remove(state: &AppState, org: &OrgId, id: &GenerationId) -> Result<(), ApiError> {
    let object_key = state.db.delete_generation(org, id).await?;
    let key = match object_key {
        Some(key) => ObjectKey::parse(&key).map_err(ApiError::internal)?,
        None => ObjectKey::generation(org, id),
    };
    if let Err(e) = state.storage.delete(&key).await {
        // The row is gone; reconciliation removes the orphan later.
        tracing::warn!(error = %e, key = key.as_str(), "cannot delete a generation's audio");
    }
    Ok(())
}

/// Cancel a generation
///
/// 200 with the cancelled generation; 409 once it has finished.
#[utoipa::path(
    post,
    path = "/api/generations/{generationId}/cancel",
    tag = "generations",
    params(("generationId" = GenerationId, Path, description = "The generation")),
    responses(
        (status = 200, description = "Cancelled", body = GenerationView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such generation for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`, or it has already finished", body = ErrorBody),
    )
)]
async fn cancel_generation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<GenerationView>, ApiError> {
    let generation = resonance_service::generations::cancel(
        state.db.as_ref(),
        &state.cancellations,
        &caller.org_id,
        &generation_id(&id)?,
    )
    .await?;
    Ok(Json(generation.into()))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AudioQuery {
    /// `1` or `true` asks the browser to save the file.
    download: Option<String>,
    /// Any OpenAI `response_format` or ElevenLabs `output_format` name; absent: the stored
    /// WAV.
    format: Option<String>,
    /// Played this many times faster with the pitch kept, 0.25-4 [default: 1]; other than 1,
    /// the audio is encoded whole (as a WAV without `format`).
    speed: Option<f64>,
}

/// The stored audio of a generation that has succeeded; 409 while it has not.
pub fn stored_audio_key(generation: &Generation) -> Result<ObjectKey, ApiError> {
    match (&generation.status, &generation.object_key) {
        (GenerationStatus::Succeeded, Some(key)) => {
            ObjectKey::parse(key).map_err(ApiError::internal)
        }
        (status, _) => Err(ApiError::Conflict(format!(
            "the audio is not ready: the generation is {}",
            status.as_str()
        ))),
    }
}

/// Reads a generation's stored WAV back as samples at the engine's rate.
pub async fn read_stored_audio(state: &AppState, key: &ObjectKey) -> Result<Vec<f32>, ApiError> {
    let wav = state.storage.get(key).await.map_err(storage_error)?;
    let audio =
        tokio::task::spawn_blocking(move || resonance_audio::decode(&wav, Some("audio/wav")))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    Ok(audio.samples)
}

/// Listen to a generation
///
/// The generated WAV with range requests, or with `format` or `speed` the audio encoded
/// whole in that format at that speed; 409 while the job has not succeeded.
#[utoipa::path(
    get,
    path = "/api/generations/{generationId}/audio",
    tag = "generations",
    params(
        ("generationId" = GenerationId, Path, description = "The generation"),
        AudioQuery,
        ("Range" = Option<String>, Header, description = "A byte range, like `bytes=0-1023`"),
    ),
    responses(
        (status = 200, description = "The audio: WAV, or in `format`", content(("audio/wav"), ("audio/mpeg"), ("audio/ogg"), ("audio/aac"), ("audio/flac"), ("audio/pcm"), ("audio/basic")),
            headers(("Content-Disposition" = String, description = "`attachment` with a file name when `download` is set"))),
        (status = 206, description = "The requested range of the audio", content(("audio/wav"))),
        (status = 400, description = "`INVALID_QUERY`: an unknown `format`, or `speed` out of range", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such generation for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`, or the audio is not ready", body = ErrorBody),
        (status = 416, description = "The range is outside the audio"),
    )
)]
async fn audio(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<AudioQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let generation = state
        .db
        .get_generation(&caller.org_id, &generation_id(&id)?)
        .await?;
    let format = query
        .format
        .as_deref()
        .map(OutputFormat::from_name)
        .transpose()
        .map_err(|e| ApiError::BadRequest {
            code: "INVALID_QUERY",
            message: e.to_string(),
        })?;
    let speed = match query.speed {
        None => 1.0,
        // Checked before anything is read; nothing is stretched here.
        Some(speed) => stretch(&[], SOURCE_RATE, speed)
            .map(|_| speed)
            .map_err(|e| ApiError::BadRequest {
                code: "INVALID_QUERY",
                message: e.to_string(),
            })?,
    };
    let key = stored_audio_key(&generation)?;
    let download = matches!(query.download.as_deref(), Some("1" | "true"));
    let format = match format {
        None if speed != 1.0 => Some(OutputFormat::from_name("wav").map_err(ApiError::internal)?),
        format => format,
    };
    if let Some(format) = format {
        let samples = read_stored_audio(&state, &key).await?;
        let encoded = tokio::task::spawn_blocking(move || {
            let samples = stretch(&samples, SOURCE_RATE, speed).expect("the speed was checked");
            resonance_audio::encode(&samples, format)
        })
        .await
        .map_err(ApiError::internal)?;
        let mut response = (
            [
                (header::CONTENT_TYPE, format.content_type()),
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            encoded,
        )
            .into_response();
        if download {
            let filename = format!(
                "attachment; filename=\"{}.{}\"",
                generation.id,
                format.file_extension()
            );
            response.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                header::HeaderValue::from_str(&filename).map_err(ApiError::internal)?,
            );
        }
        return Ok(response);
    }
    let filename = format!("{}-{}.wav", generation.voice_name.as_str(), generation.id);
    let presentation = Presentation {
        content_type: "audio/wav",
        cache_control: "private, max-age=3600",
        download_as: download.then_some(filename.as_str()),
    };
    object_response(&state, &key, &headers, &presentation).await
}
