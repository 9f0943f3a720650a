//! The voice library: browse SYSTEM voices and the organization's CUSTOM voices, listen to
//! their samples, clone voices from uploads with the speaker's consent (org admins), and
//! edit, replace the sample of and delete them (org admins for custom voices, the instance
//! operator for system voices).

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use resonance_audio::voice_sample::SampleError;
use resonance_db::{Voice, VoiceConsent, VoiceFilter};
use resonance_domain::voice::UnknownCategory;
use resonance_domain::{
    Language, VoiceCategory, VoiceDescription, VoiceId, VoiceName, VoiceOwner, VoiceVariant,
};
use resonance_service::voices::{
    self as library, CreateVoiceError, Upload, VoiceChanges, VoiceDetails,
};
use resonance_storage::{ObjectKey, SampleName};
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

/// The largest upload accepted by default: 20 MB.
pub const DEFAULT_UPLOAD_MAX_BYTES: usize = 20 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    // The upload limit is enforced by `read_body` while the body streams in.
    let (schemas, paths, voices) = routes!(list_voices, create_voice);
    let voices = voices.layer(DefaultBodyLimit::disable());
    let (sample_schemas, sample_paths, samples) = routes!(replace_sample);
    let samples = samples.layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .routes((schemas, paths, voices))
        .routes((sample_schemas, sample_paths, samples))
        .routes(routes!(get_voice, edit_voice, delete_voice))
        .routes(routes!(voice_audio))
}

/// A voice as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoiceView {
    pub id: VoiceId,
    pub name: VoiceName,
    pub description: Option<VoiceDescription>,
    pub category: VoiceCategory,
    pub language: Language,
    pub variant: VoiceVariant,
    /// Where to listen to the voice's sample.
    pub audio_url: String,
    /// Who confirmed that the speaker agreed to the cloning (of the current sample), and
    /// when; `null` for the built-in voice and for voices cloned before it was required.
    pub consent: Option<ConsentView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsentView {
    /// The user's or API key's id; `cli` for system voices the operator imported with
    /// `resonance voices import`.
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Where to listen to a voice's sample: a replaced sample has a URL of its own, so that no
/// cache serves the sample before it.
fn audio_url(voice: &Voice) -> String {
    let replacement = voice
        .object_key
        .as_deref()
        .and_then(|key| ObjectKey::parse(key).ok())
        .and_then(|key| SampleName::of_key(&key))
        .and_then(|sample| sample.sample);
    match replacement {
        Some(sample) => format!("/api/voices/{}/audio?sample={sample}", voice.id),
        None => format!("/api/voices/{}/audio", voice.id),
    }
}

impl From<Voice> for VoiceView {
    fn from(voice: Voice) -> Self {
        Self {
            audio_url: audio_url(&voice),
            variant: voice.variant(),
            id: voice.id,
            name: voice.name,
            description: voice.description,
            category: voice.category,
            language: voice.language,
            consent: voice.consent.map(|consent| ConsentView {
                by: consent.by,
                at: consent.at,
            }),
            created_at: voice.created_at,
            updated_at: voice.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this category.
    #[param(value_type = Option<VoiceCategory>)]
    category: Option<String>,
    /// Only this language, like `en-US`.
    #[param(value_type = Option<Language>)]
    language: Option<String>,
    /// Only system or only custom voices.
    #[param(value_type = Option<VoiceVariant>)]
    variant: Option<String>,
    /// Case-insensitive part of the name.
    search: Option<String>,
    /// Voices per page.
    limit: Option<u32>,
    /// Voices to skip.
    offset: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VoiceList {
    voices: Vec<VoiceView>,
    /// Matching voices on all pages.
    total: u64,
    limit: u32,
    offset: u32,
}

/// List voices
///
/// Every system voice and the active organization's custom voices, by name.
#[utoipa::path(
    get,
    path = "/api/voices",
    tag = "voices",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of voices", body = VoiceList),
        (status = 400, description = "`INVALID_QUERY`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`", body = ErrorBody),
    )
)]
async fn list_voices(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<VoiceList>, ApiError> {
    let filter = VoiceFilter {
        category: query
            .category
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(invalid_query)?,
        language: query
            .language
            .as_deref()
            .map(Language::parse)
            .transpose()
            .map_err(invalid_query)?,
        variant: query
            .variant
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(invalid_query)?,
        name_contains: paging::name_search(query.search)?,
    };
    let page = paging::page(query.limit, query.offset)?;
    let listed = state.db.list_voices(&caller.org_id, &filter, page).await?;
    Ok(Json(VoiceList {
        voices: listed.items.into_iter().map(VoiceView::from).collect(),
        total: listed.total,
        limit: page.limit(),
        offset: page.offset(),
    }))
}

/// An id that does not parse names no voice.
pub fn voice_id(raw: &str) -> Result<VoiceId, ApiError> {
    VoiceId::parse(raw).map_err(|_| ApiError::NotFound("voice"))
}

/// Get a voice
#[utoipa::path(
    get,
    path = "/api/voices/{voiceId}",
    tag = "voices",
    params(("voiceId" = VoiceId, Path, description = "The voice")),
    responses(
        (status = 200, description = "The voice", body = VoiceView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such voice for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`", body = ErrorBody),
    )
)]
async fn get_voice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<VoiceView>, ApiError> {
    let voice = state.db.get_voice(&caller.org_id, &voice_id(&id)?).await?;
    Ok(Json(voice.into()))
}

/// Listen to a voice
///
/// The voice's sample as WAV, with HTTP range requests.
#[utoipa::path(
    get,
    path = "/api/voices/{voiceId}/audio",
    tag = "voices",
    params(
        ("voiceId" = VoiceId, Path, description = "The voice"),
        ("sample" = Option<String>, Query, description = "Not read: `audioUrl` names a replaced sample with it, so that caches tell the samples apart"),
        ("Range" = Option<String>, Header, description = "A byte range, like `bytes=0-1023`"),
    ),
    responses(
        (status = 200, description = "The sample", content(("audio/wav")),
            headers(("Cache-Control" = String, description = "`public, max-age=86400` for system voices, `private, max-age=3600` for custom ones"))),
        (status = 206, description = "The requested range of the sample", content(("audio/wav"))),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such voice for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`, or the audio is not ready", body = ErrorBody),
        (status = 416, description = "The range is outside the sample"),
    )
)]
async fn voice_audio(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let voice = state.db.get_voice(&caller.org_id, &voice_id(&id)?).await?;
    let key = voice
        .object_key
        .as_deref()
        .map(ObjectKey::parse)
        .ok_or_else(|| ApiError::Conflict("the voice's audio is not ready yet".into()))?
        .map_err(ApiError::internal)?;
    let cache_control = match voice.variant() {
        VoiceVariant::System => "public, max-age=86400",
        VoiceVariant::Custom => "private, max-age=3600",
    };
    let presentation = Presentation {
        content_type: "audio/wav",
        cache_control,
        download_as: None,
    };
    object_response(&state, &key, &headers, &presentation).await
}

/// Delete a voice
///
/// Org admins delete custom voices, the instance operator system voices. The row and the
/// audio go; earlier generations keep the voice's name.
#[utoipa::path(
    delete,
    path = "/api/voices/{voiceId}",
    tag = "voices",
    params(("voiceId" = VoiceId, Path, description = "The voice")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, or a system voice and not the operator", body = ErrorBody),
        (status = 404, description = "No such voice for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`", body = ErrorBody),
    )
)]
async fn delete_voice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_voice(&state, &caller, &voice_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What may change about a voice; an absent field keeps its value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditVoice {
    /// 1-100 characters.
    name: Option<String>,
    /// At most 1000 characters; empty removes it.
    description: Option<String>,
    #[schema(value_type = Option<VoiceCategory>)]
    category: Option<String>,
    /// A BCP-47 tag with a region, like `en-US`.
    #[schema(value_type = Option<Language>)]
    language: Option<String>,
}

impl EditVoice {
    /// The changes, or 422 naming the first field out of bounds.
    fn parse(self) -> Result<VoiceChanges, ApiError> {
        let invalid = |message: String| ApiError::Unprocessable {
            code: "INVALID_FIELD",
            message,
        };
        Ok(VoiceChanges {
            name: self
                .name
                .map(|name| VoiceName::parse(&name))
                .transpose()
                .map_err(|e| invalid(e.to_string()))?,
            description: self
                .description
                .map(|text| VoiceDescription::parse_optional(&text))
                .transpose()
                .map_err(|e| invalid(e.to_string()))?,
            category: self
                .category
                .map(|category| category.parse())
                .transpose()
                .map_err(|e: UnknownCategory| invalid(e.to_string()))?,
            language: self
                .language
                .map(|language| Language::parse(&language))
                .transpose()
                .map_err(|e| invalid(e.to_string()))?,
        })
    }
}

/// Edit a voice
///
/// Renames or redescribes a voice: custom voices by the organization's admins, system
/// voices by the instance operator. Its audio stays as it is.
#[utoipa::path(
    patch,
    path = "/api/voices/{voiceId}",
    tag = "voices",
    params(("voiceId" = VoiceId, Path, description = "The voice")),
    request_body = EditVoice,
    responses(
        (status = 200, description = "The edited voice", body = VoiceView),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, or a system voice and not the operator", body = ErrorBody),
        (status = 404, description = "No such voice for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`, or another system voice has the name", body = ErrorBody),
        (status = 422, description = "`INVALID_FIELD`: the message names the field", body = ErrorBody),
    )
)]
async fn edit_voice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EditVoice>,
) -> Result<Json<VoiceView>, ApiError> {
    let voice = state.db.get_voice(&caller.org_id, &voice_id(&id)?).await?;
    require_owner(&caller, &voice)?;
    let edit = body.parse()?.applied_to(&voice);
    let edited = state.db.edit_voice(&voice.owner, &voice.id, &edit).await?;
    Ok(Json(edited.into()))
}

/// Custom voices are their organization's admins' to change, system voices the instance
/// operator's.
fn require_owner(caller: &Caller, voice: &Voice) -> Result<(), ApiError> {
    match &voice.owner {
        VoiceOwner::System if !caller.is_operator => Err(ApiError::Forbidden(
            "only the instance operator may change system voices".into(),
        )),
        VoiceOwner::System => Ok(()),
        VoiceOwner::Org(_) => caller.require_admin(),
    }
}

/// Deletes a voice visible to the caller: custom voices by the organization's admins,
/// system voices by the instance operator only.
pub async fn remove_voice(state: &AppState, caller: &Caller, id: &VoiceId) -> Result<(), ApiError> {
    let voice = state.db.get_voice(&caller.org_id, id).await?;
    require_owner(caller, &voice)?;
    library::delete_voice(state.db.as_ref(), &state.storage, &voice.owner, &voice.id).await?;
    Ok(())
}

/// The raw upload's descriptive fields, as query parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// 1-100 characters.
    name: Option<String>,
    /// [default: `GENERAL`]
    #[param(value_type = Option<VoiceCategory>)]
    category: Option<String>,
    /// A BCP-47 tag with a region, like `en-US` [default: `en-US`].
    #[param(value_type = Option<Language>)]
    language: Option<String>,
    /// At most 1000 characters.
    description: Option<String>,
    /// Required: `true` confirms that the speaker agreed to having their voice cloned; who
    /// confirmed it (the user or API key) and when are recorded with the voice. Without it
    /// the voice is refused (422 `CONSENT_REQUIRED`).
    consent: Option<bool>,
}

/// Clone a voice
///
/// Org admins only, with the speaker's consent (`consent=true`). Checks in this order:
/// signed in (401), admin (403), subscription (403) and voice slots (402), non-empty body
/// (400), size (413), Content-Type (400); then the fields (400), the consent (422) and the
/// audio (422).
#[utoipa::path(
    post,
    path = "/api/voices",
    tag = "voices",
    params(CreateQuery),
    request_body(
        description = "The recording (10 s to 5 min of speech; WAV, MP3, FLAC, OGG/Vorbis, \
                       M4A/AAC or WebM/Opus) as the raw body with its Content-Type, or a \
                       `multipart/form-data` form with a `file` part and the fields as text parts",
        content(("audio/*"), ("multipart/form-data")),
    ),
    responses(
        (status = 201, description = "The new voice", body = VoiceView),
        (status = 400, description = "`EMPTY_BODY`, `MISSING_CONTENT_TYPE`, `INVALID_FIELD` or `INVALID_FORM`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 402, description = "`QUOTA_EXCEEDED`: every voice slot of the plan is taken", body = ErrorBody),
        (status = 403, description = "Not an admin, or `SUBSCRIPTION_REQUIRED`", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`", body = ErrorBody),
        (status = 413, description = "Over the upload limit (20 MB unless configured)", body = ErrorBody),
        (status = 422, description = "`CONSENT_REQUIRED` (no `consent=true`), `UNDECODABLE_AUDIO`, `UNSUPPORTED_SAMPLE_RATE` (outside 8-192 kHz), `AUDIO_TOO_SHORT`, `AUDIO_TOO_LONG` or `AUDIO_SILENT`", body = ErrorBody),
        (status = 502, description = "`STORAGE_UNAVAILABLE`", body = ErrorBody),
        (status = 503, description = "`BILLING_UNAVAILABLE`: Polar does not answer", body = ErrorBody),
    )
)]
async fn create_voice(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CreateQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let voice_slots = crate::billing::ensure_can_create_voice(&state, &caller.org_id).await?;
    let (fields, upload) = read_upload(&state, query, request).await?;
    let consent = fields.consent;
    let mut details = parse_details(fields)?;
    details.consent = Some(speakers_consent(&caller, consent)?);
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
    Ok((StatusCode::CREATED, Json(VoiceView::from(voice))).into_response())
}

/// The recording and its fields: the raw body with the fields as query parameters, or a
/// `multipart/form-data` form.
async fn read_upload(
    state: &AppState,
    query: CreateQuery,
    request: Request,
) -> Result<(CreateQuery, Upload), ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, &parts.headers, state.voice_upload_max_bytes).await?;
    let content_type = content_type(&parts.headers)?;
    if content_type.starts_with("multipart/form-data") {
        read_form(Request::from_parts(parts, Body::from(bytes))).await
    } else {
        Ok((
            query,
            Upload {
                bytes,
                content_type,
            },
        ))
    }
}

/// The query of a raw sample upload.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SampleQuery {
    /// Required: `true` confirms that the speaker of the new recording agreed to having
    /// their voice cloned; recorded with the voice in place of the earlier confirmation.
    consent: Option<bool>,
}

/// Replace a voice's sample
///
/// The voice speaks from a new recording from now on, checked like a cloned voice's
/// (custom voices by the organization's admins, system voices by the instance operator,
/// with the speaker's consent). The new sample is stored first, then the voice points at
/// it, then the old sample is deleted; conditioning computed from the old sample is never
/// used for the new one. The name, description and earlier generations stay.
#[utoipa::path(
    put,
    path = "/api/voices/{voiceId}/sample",
    tag = "voices",
    params(("voiceId" = VoiceId, Path, description = "The voice"), SampleQuery),
    request_body(
        description = "The recording, as for cloning: the raw body with its Content-Type, or a \
                       `multipart/form-data` form with a `file` part and a `consent` text part",
        content(("audio/*"), ("multipart/form-data")),
    ),
    responses(
        (status = 200, description = "The voice with its new sample", body = VoiceView),
        (status = 400, description = "`EMPTY_BODY`, `MISSING_CONTENT_TYPE` or `INVALID_FORM`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, or a system voice and not the operator", body = ErrorBody),
        (status = 404, description = "No such voice for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`", body = ErrorBody),
        (status = 413, description = "Over the upload limit (20 MB unless configured)", body = ErrorBody),
        (status = 422, description = "`CONSENT_REQUIRED`, `UNDECODABLE_AUDIO`, `UNSUPPORTED_SAMPLE_RATE`, `AUDIO_TOO_SHORT`, `AUDIO_TOO_LONG` or `AUDIO_SILENT`", body = ErrorBody),
        (status = 502, description = "`STORAGE_UNAVAILABLE`", body = ErrorBody),
    )
)]
async fn replace_sample(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<SampleQuery>,
    request: Request,
) -> Result<Json<VoiceView>, ApiError> {
    let voice = state.db.get_voice(&caller.org_id, &voice_id(&id)?).await?;
    require_owner(&caller, &voice)?;
    let query = CreateQuery {
        consent: query.consent,
        ..CreateQuery::default()
    };
    let (fields, upload) = read_upload(&state, query, request).await?;
    let consent = speakers_consent(&caller, fields.consent)?;
    let replaced =
        library::replace_sample(state.db.as_ref(), &state.storage, &voice, upload, &consent)
            .await
            .map_err(create_error)?;
    Ok(Json(replaced.into()))
}

/// The speaker's agreement to having their voice cloned, which every cloned voice and every
/// replaced sample needs: recorded as who confirmed it (the user or API key) and when.
pub(crate) fn speakers_consent(
    caller: &Caller,
    confirmed: Option<bool>,
) -> Result<VoiceConsent, ApiError> {
    if confirmed != Some(true) {
        return Err(ApiError::Unprocessable {
            code: "CONSENT_REQUIRED",
            message: "Cloning a voice needs the speaker's consent: send consent=true to \
                      confirm that the person speaking in the recording agreed to it."
                .into(),
        });
    }
    Ok(VoiceConsent {
        by: caller
            .user_id
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| caller.api_key_id.as_ref().map(ToString::to_string))
            .unwrap_or_default(),
        at: OffsetDateTime::now_utc(),
    })
}

pub(crate) fn empty_body() -> ApiError {
    ApiError::BadRequest {
        code: "EMPTY_BODY",
        message: "the request has no audio".into(),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the upload is larger than {} MB",
        limit / (1024 * 1024)
    ))
}

/// Reads the body, refusing it as soon as it passes `limit` bytes (or at once when its
/// declared length does), so that an oversized upload is never held in memory.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(0) => return Err(empty_body()),
        Some(length) if length > limit as u64 => return Err(too_large(limit)),
        _ => {}
    }
    let mut stream = body.into_data_stream();
    let mut bytes = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest {
            code: "BODY_READ_FAILED",
            message: format!("the upload could not be read: {e}"),
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(empty_body());
    }
    Ok(bytes.freeze())
}

pub(crate) fn missing_content_type() -> ApiError {
    ApiError::BadRequest {
        code: "MISSING_CONTENT_TYPE",
        message: "the upload needs a Content-Type header naming its audio format".into(),
    }
}

fn content_type(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_ascii_lowercase)
        .ok_or_else(missing_content_type)
}

pub(crate) fn invalid_form(message: impl ToString) -> ApiError {
    ApiError::BadRequest {
        code: "INVALID_FORM",
        message: message.to_string(),
    }
}

/// The web form: a `file` part with the recording and text parts for the fields.
async fn read_form(request: Request) -> Result<(CreateQuery, Upload), ApiError> {
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(invalid_form)?;
    let mut fields = CreateQuery::default();
    let mut upload = None;
    while let Some(field) = form.next_field().await.map_err(invalid_form)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let content_type = field
                .content_type()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_ascii_lowercase);
            let bytes = field.bytes().await.map_err(invalid_form)?;
            if bytes.is_empty() {
                return Err(empty_body());
            }
            upload = Some((bytes, content_type));
            continue;
        }
        let value = field.text().await.map_err(invalid_form)?;
        match name.as_str() {
            "name" => fields.name = Some(value),
            "category" => fields.category = Some(value),
            "language" => fields.language = Some(value),
            "description" => fields.description = Some(value),
            "consent" => fields.consent = Some(value == "true"),
            _ => {}
        }
    }
    let (bytes, content_type) = upload.ok_or_else(empty_body)?;
    let content_type = content_type.ok_or_else(missing_content_type)?;
    Ok((
        fields,
        Upload {
            bytes,
            content_type,
        },
    ))
}

fn invalid_field(message: impl ToString) -> ApiError {
    ApiError::BadRequest {
        code: "INVALID_FIELD",
        message: message.to_string(),
    }
}

fn parse_details(fields: CreateQuery) -> Result<VoiceDetails, ApiError> {
    Ok(VoiceDetails {
        name: VoiceName::parse(fields.name.as_deref().unwrap_or_default())
            .map_err(invalid_field)?,
        description: fields
            .description
            .as_deref()
            .map(VoiceDescription::parse_optional)
            .transpose()
            .map_err(invalid_field)?
            .flatten(),
        category: fields
            .category
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(invalid_field)?
            .unwrap_or_default(),
        language: fields
            .language
            .as_deref()
            .map(Language::parse)
            .transpose()
            .map_err(invalid_field)?
            .unwrap_or_default(),
        consent: None,
    })
}

pub(crate) fn create_error(error: CreateVoiceError) -> ApiError {
    let unprocessable = |code, error: &SampleError| ApiError::Unprocessable {
        code,
        message: error.to_string(),
    };
    match error {
        CreateVoiceError::Sample(e @ SampleError::Undecodable(_)) => {
            unprocessable("UNDECODABLE_AUDIO", &e)
        }
        CreateVoiceError::Sample(e @ SampleError::UnsupportedSampleRate(_)) => {
            unprocessable("UNSUPPORTED_SAMPLE_RATE", &e)
        }
        CreateVoiceError::Sample(e @ SampleError::TooShort { .. }) => {
            unprocessable("AUDIO_TOO_SHORT", &e)
        }
        CreateVoiceError::Sample(e @ SampleError::TooLong) => unprocessable("AUDIO_TOO_LONG", &e),
        CreateVoiceError::Sample(e @ SampleError::Silent) => unprocessable("AUDIO_SILENT", &e),
        CreateVoiceError::Storage(e) => storage_error(e),
        CreateVoiceError::Database(e) => e.into(),
    }
}
