//! `GET /api/generations/{id}/stream`: a generation's audio as it is made, for the web app
//! to play while the job runs. Listening never cancels the job.

use axum::extract::{Path, State};
use axum::response::Response;
use resonance_audio::OutputFormat;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::compat::speech::{self, RawAudio, SpeechError};
use crate::error::ErrorBody;
use crate::generations::generation_id;
use crate::paging::ApiQuery;
use crate::{ApiError, AppState};
use resonance_domain::GenerationId;

/// Raw PCM as the engine makes it: signed 16-bit little-endian mono at 24 kHz.
const PCM_CONTENT_TYPE: &str = "audio/pcm;rate=24000";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Any OpenAI `response_format` or ElevenLabs `output_format` name; absent: raw PCM,
    /// s16le mono at 24 kHz.
    format: Option<String>,
}

/// Listen while it is generated
///
/// The generation's audio as its worker makes it: everything made so far at once, then the
/// rest as it comes, ending when the job has succeeded (a failure ends the body early). A
/// queued job is waited for. A job that has finished, or that a worker of another process
/// runs, is sent from its stored audio once it has succeeded. Disconnecting does not cancel
/// the job.
#[utoipa::path(
    get,
    path = "/api/generations/{generationId}/stream",
    tag = "generations",
    params(
        ("generationId" = GenerationId, Path, description = "The generation"),
        StreamQuery,
    ),
    responses(
        (status = 200, description = "The audio as it is made: raw PCM (`audio/pcm;rate=24000`), or in `format`", content(("audio/pcm"), ("audio/wav"), ("audio/mpeg"), ("audio/ogg"), ("audio/aac"), ("audio/flac"), ("audio/basic"))),
        (status = 400, description = "`INVALID_QUERY`: an unknown `format`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such generation for this organization", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`, or the generation failed or was cancelled before any audio", body = ErrorBody),
        (status = 503, description = "The generation stayed queued for 5 minutes", body = ErrorBody),
    )
)]
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    let generation = state
        .db
        .get_generation(&caller.org_id, &generation_id(&id)?)
        .await?;
    let (format, content_type) = match query.format.as_deref() {
        None => (
            OutputFormat::Pcm {
                sample_rate: resonance_audio::encode::SOURCE_RATE,
            },
            PCM_CONTENT_TYPE,
        ),
        Some(name) => {
            let format = OutputFormat::from_name(name).map_err(|e| ApiError::BadRequest {
                code: "INVALID_QUERY",
                message: e.to_string(),
            })?;
            (format, format.content_type())
        }
    };
    let job = speech::listen(&state, generation);
    speech::stream_audio(job, format, 1.0, content_type, RawAudio)
        .await
        .map_err(|e| match e {
            SpeechError::Api(e) => e,
            SpeechError::Failed(reason) => {
                ApiError::Conflict(format!("the generation has no audio: {reason}"))
            }
            SpeechError::TimedOut => ApiError::Unavailable,
        })
}
