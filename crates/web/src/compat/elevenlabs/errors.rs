//! ElevenLabs' error shape, `{"detail": {"status", "message"}}`, and how Resonance's
//! errors map onto it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ApiError;
use crate::compat::speech::SpeechError;

/// An error as ElevenLabs' API answers it.
#[derive(Debug)]
pub struct ElevenLabsError {
    pub(super) status: StatusCode,
    pub(super) code: String,
    pub(super) message: String,
}

impl ElevenLabsError {
    /// 400 about one request field.
    pub(super) fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
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

#[derive(Serialize)]
struct ErrorBody {
    detail: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    status: String,
    message: String,
}

impl IntoResponse for ElevenLabsError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            detail: ErrorDetail {
                status: self.code,
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
