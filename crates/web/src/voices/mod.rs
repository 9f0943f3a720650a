//! The voice library: browse SYSTEM voices and the organization's CUSTOM voices, listen to
//! their samples, clone voices from uploads (org admins) and delete them (org admins for
//! custom voices, the instance operator for system voices).

pub mod library;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, Multipart, Path, Query, Request, State,
};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use resonance_audio::voice_sample::SampleError;
use resonance_db::{Page, Voice, VoiceFilter};
use resonance_domain::{
    Language, OrgId, VoiceCategory, VoiceDescription, VoiceId, VoiceName, VoiceOwner, VoiceVariant,
};
use resonance_storage::ObjectKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use self::library::{CreateVoiceError, Upload, VoiceDetails};
use crate::objects::{Presentation, object_response, storage_error};
use crate::{ApiError, AppState};

/// The original's upload limit: 20 MB.
pub const DEFAULT_UPLOAD_MAX_BYTES: usize = 20 * 1024 * 1024;

/// Who is asking, as far as the voice routes need to know: extracted from the request
/// (rejecting a request that is not signed in) and implemented by the accounts' caller.
pub trait VoiceCaller: FromRequestParts<AppState> + Send + Sync + 'static {
    /// The organization the caller acts for.
    fn org_id(&self) -> &OrgId;
    /// Succeeds for the organization's admins; otherwise 403.
    fn require_admin(&self) -> Result<(), ApiError>;
    /// The instance operator, who manages SYSTEM voices.
    fn is_operator(&self) -> bool;
}

pub fn routes<C: VoiceCaller>() -> Router<AppState> {
    Router::new()
        .route(
            "/api/voices",
            get(list_voices::<C>)
                .post(create_voice::<C>)
                // The upload limit is enforced by `read_body` while the body streams in.
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/voices/{voice_id}",
            get(get_voice::<C>).delete(delete_voice::<C>),
        )
        .route("/api/voices/{voice_id}/audio", get(voice_audio::<C>))
}

/// A voice as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceView {
    pub id: VoiceId,
    pub name: VoiceName,
    pub description: Option<VoiceDescription>,
    pub category: VoiceCategory,
    pub language: Language,
    pub variant: VoiceVariant,
    pub audio_url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Voice> for VoiceView {
    fn from(voice: Voice) -> Self {
        Self {
            audio_url: format!("/api/voices/{}/audio", voice.id),
            variant: voice.variant(),
            id: voice.id,
            name: voice.name,
            description: voice.description,
            category: voice.category,
            language: voice.language,
            created_at: voice.created_at,
            updated_at: voice.updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    category: Option<String>,
    language: Option<String>,
    variant: Option<String>,
    /// Case-insensitive part of the name.
    search: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct VoiceList {
    voices: Vec<VoiceView>,
    total: u64,
    limit: u32,
    offset: u32,
}

fn invalid_query(message: impl ToString) -> ApiError {
    ApiError::BadRequest {
        code: "INVALID_QUERY",
        message: message.to_string(),
    }
}

async fn list_voices<C: VoiceCaller>(
    State(state): State<AppState>,
    caller: C,
    Query(query): Query<ListQuery>,
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
        name_contains: query.search.filter(|s| !s.trim().is_empty()),
    };
    let default = Page::default();
    let page = Page::new(
        query.limit.unwrap_or(default.limit()),
        query.offset.unwrap_or(default.offset()),
    )
    .map_err(invalid_query)?;
    let listed = state.db.list_voices(caller.org_id(), &filter, page).await?;
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

async fn get_voice<C: VoiceCaller>(
    State(state): State<AppState>,
    caller: C,
    Path(id): Path<String>,
) -> Result<Json<VoiceView>, ApiError> {
    let voice = state.db.get_voice(caller.org_id(), &voice_id(&id)?).await?;
    Ok(Json(voice.into()))
}

async fn voice_audio<C: VoiceCaller>(
    State(state): State<AppState>,
    caller: C,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let voice = state.db.get_voice(caller.org_id(), &voice_id(&id)?).await?;
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

async fn delete_voice<C: VoiceCaller>(
    State(state): State<AppState>,
    caller: C,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_voice(&state, &caller, &voice_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a voice visible to the caller: custom voices by the organization's admins,
/// system voices by the instance operator only.
pub async fn remove_voice<C: VoiceCaller>(
    state: &AppState,
    caller: &C,
    id: &VoiceId,
) -> Result<(), ApiError> {
    let voice = state.db.get_voice(caller.org_id(), id).await?;
    match &voice.owner {
        VoiceOwner::System if !caller.is_operator() => {
            return Err(ApiError::Forbidden(
                "only the instance operator may remove system voices".into(),
            ));
        }
        VoiceOwner::System => {}
        VoiceOwner::Org(_) => caller.require_admin()?,
    }
    library::delete_voice(state.db.as_ref(), &state.storage, &voice.owner, &voice.id).await?;
    Ok(())
}

/// The raw upload's descriptive fields, as query parameters (the original's REST route).
#[derive(Debug, Default, Deserialize)]
pub struct CreateQuery {
    name: Option<String>,
    category: Option<String>,
    language: Option<String>,
    description: Option<String>,
}

/// `POST /api/voices`: the recording as the raw body with the fields as query parameters,
/// or a `multipart/form-data` form with a `file` part and the same fields. Checks in the
/// original's order: signed in (401), admin (403), subscription (403) and voice slots
/// (402), non-empty body (400), size (413),
/// Content-Type (400); then the fields (400) and the audio itself (422).
async fn create_voice<C: VoiceCaller>(
    State(state): State<AppState>,
    caller: C,
    Query(query): Query<CreateQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    crate::billing::ensure_can_create_voice(&state, caller.org_id()).await?;
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, &parts.headers, state.voice_upload_max_bytes).await?;
    let content_type = content_type(&parts.headers)?;
    let (fields, upload) = if content_type.starts_with("multipart/form-data") {
        let request = Request::from_parts(parts, Body::from(bytes));
        read_form(request).await?
    } else {
        let upload = Upload {
            bytes,
            content_type,
        };
        (query, upload)
    };
    let details = parse_details(fields)?;
    let voice = library::create_voice(
        state.db.as_ref(),
        &state.storage,
        VoiceOwner::Org(caller.org_id().clone()),
        details,
        upload,
    )
    .await
    .map_err(create_error)?;
    Ok((StatusCode::CREATED, Json(VoiceView::from(voice))).into_response())
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
            .filter(|d| !d.trim().is_empty())
            .map(VoiceDescription::parse)
            .transpose()
            .map_err(invalid_field)?,
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
        CreateVoiceError::Sample(e @ SampleError::TooShort { .. }) => {
            unprocessable("AUDIO_TOO_SHORT", &e)
        }
        CreateVoiceError::Sample(e @ SampleError::TooLong) => unprocessable("AUDIO_TOO_LONG", &e),
        CreateVoiceError::Sample(e @ SampleError::Silent) => unprocessable("AUDIO_SILENT", &e),
        CreateVoiceError::Storage(e) => storage_error(e),
        CreateVoiceError::Database(e) => e.into(),
    }
}

impl VoiceCaller for crate::auth::Caller {
    fn org_id(&self) -> &OrgId {
        &self.org_id
    }

    fn require_admin(&self) -> Result<(), ApiError> {
        crate::auth::Caller::require_admin(self)
    }

    fn is_operator(&self) -> bool {
        self.is_operator
    }
}
