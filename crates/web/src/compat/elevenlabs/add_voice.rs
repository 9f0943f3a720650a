//! `POST /v1/voices/add`: a voice cloned from one or more recordings.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use bytes::Bytes;
use resonance_audio::Bounds;
use resonance_audio::voice_sample::{MAX_SECONDS, SAMPLE_RATE, SampleError, sample_error};
use resonance_domain::{Language, VoiceDescription, VoiceId, VoiceName, VoiceOwner};
use serde::Serialize;

use super::ElevenLabsError;
use crate::auth::Caller;
use crate::voices::{
    create_error, empty_body, invalid_form, missing_content_type, read_body, speakers_consent,
};
use crate::{ApiError, AppState};
use resonance_service::voices::{self as library, CreateVoiceError, Upload, VoiceDetails};

/// The fields of `POST /v1/voices/add`.
#[derive(Default)]
struct VoiceForm {
    name: Option<String>,
    description: Option<String>,
    labels: Option<String>,
    /// Resonance's own field, which ElevenLabs does not have: `true` confirms that the
    /// speaker agreed to the cloning.
    consent: Option<bool>,
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
            "consent" => form.consent = Some(value == "true"),
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
            .map(VoiceDescription::parse_optional)
            .transpose()
            .map_err(|e| ElevenLabsError::invalid("description", e))?
            .flatten(),
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

#[derive(Debug, Serialize)]
pub struct AddedVoice {
    voice_id: VoiceId,
    requires_verification: bool,
}

/// `POST /v1/voices/add`: clones a voice from one or more recordings (`files`), checked
/// like `POST /api/voices`, consent included: the form needs `consent=true` (the SDKs send
/// it as an additional body parameter). Org admins only.
pub async fn add_voice(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    request: Request,
) -> Result<Json<AddedVoice>, ElevenLabsError> {
    let caller = caller?;
    caller.require_admin()?;
    let voice_slots = crate::billing::ensure_can_create_voice(&state, &caller.org_id).await?;
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, &parts.headers, state.voice_upload_max_bytes).await?;
    let form = read_voice_form(Request::from_parts(parts, Body::from(bytes))).await?;
    let mut details = voice_details(&form)?;
    details.consent = Some(speakers_consent(&caller, form.consent)?);
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
    Ok(Json(AddedVoice {
        voice_id: voice.id,
        requires_verification: false,
    }))
}
