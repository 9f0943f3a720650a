//! `POST /v1/text-to-speech/{voice_id}` and its `/stream` variant.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use resonance_audio::OutputFormat;
use resonance_domain::{GenerationParams, GenerationText, SpeechModel};
use serde::Deserialize;

use super::{DEFAULT_OUTPUT_FORMAT, ElevenLabsError, MODELS, query};
use crate::auth::Caller;
use crate::compat::find_voice;
use crate::compat::speech::{self, RawAudio};
use crate::generations::ValidGeneration;
use crate::{ApiError, ApiJson, AppState};

#[derive(Debug, Deserialize)]
pub struct SpeechQuery {
    output_format: Option<String>,
    /// Only the streaming route reads it (see [`speech::Disconnect`]).
    #[serde(default)]
    keep_on_disconnect: bool,
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
    pub(super) fn params(&self) -> Result<GenerationParams, ElevenLabsError> {
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

impl VoiceSettings {
    /// How much faster than synthesized the audio plays (1 when not given).
    pub(super) fn speed(&self) -> Result<f64, ElevenLabsError> {
        speech::check_speed(self.speed.unwrap_or(1.0))
            .map_err(|e| ElevenLabsError::invalid("voice_settings.speed", e))
    }
}

/// The `output_format` query parameter, ElevenLabs' default when absent.
pub(super) fn output_format(name: Option<&str>) -> Result<OutputFormat, ElevenLabsError> {
    OutputFormat::from_elevenlabs(name.unwrap_or(DEFAULT_OUTPUT_FORMAT))
        .map_err(|e| ElevenLabsError::invalid("output_format", e))
}

/// The model `model_id` asks for: one of [`MODELS`] or none is the default model.
pub(super) fn check_model(
    state: &AppState,
    model: Option<&str>,
) -> Result<SpeechModel, ElevenLabsError> {
    crate::compat::speech_model(state, model, &MODELS)
        .map_err(|e| ElevenLabsError::invalid("model_id", e))
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
    let format = output_format(query.output_format.as_deref())?;
    let model = check_model(state, body.model_id.as_deref())?;
    let text = GenerationText::parse(body.text.as_deref().unwrap_or_default())
        .map_err(|e| ElevenLabsError::invalid("text", e))?;
    let settings = body.voice_settings.unwrap_or_default();
    let params = settings.params()?.with_model(model);
    let speed = settings.speed()?;
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
    let speech_query = query(speech_query)?;
    let keep = speech_query.keep_on_disconnect;
    let order = speech_order(&state, &caller, &voice, speech_query, body).await?;
    let job = speech::start(&state, &caller, order.generation)
        .await?
        .keep_on_disconnect(keep);
    let content_type = order.format.content_type();
    Ok(speech::stream(job, order.format, order.speed, content_type, RawAudio).await?)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

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
