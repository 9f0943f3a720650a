//! The API's one error type, mapped to HTTP once: `{ "error": { "code", "message" } }`.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use resonance_service::billing::{BillingError, QuotaExceeded};
use resonance_service::generations::QueueError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("sign in to continue")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("choose an organization first: create one or activate one you belong to")]
    NoActiveOrganization,
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("too many attempts; try again in {} seconds", retry_after.as_secs())]
    TooManyRequests { retry_after: std::time::Duration },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    #[error("this organization needs an active subscription; subscribe on the billing page")]
    SubscriptionRequired,
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// The billing provider failed; the detail is logged, not shown.
    #[error("billing is unavailable right now; try again shortly")]
    BillingUnavailable(String),
    #[error("the audio storage is unavailable; try again shortly")]
    BadGateway(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            Self::NoActiveOrganization => (StatusCode::CONFLICT, "NO_ACTIVE_ORGANIZATION"),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS"),
            Self::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "CONFLICT"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Self::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::QuotaExceeded(_) => (StatusCode::PAYMENT_REQUIRED, "QUOTA_EXCEEDED"),
            Self::SubscriptionRequired => (StatusCode::FORBIDDEN, "SUBSCRIPTION_REQUIRED"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            Self::BillingUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "BILLING_UNAVAILABLE"),
            Self::BadGateway(_) => (StatusCode::BAD_GATEWAY, "STORAGE_UNAVAILABLE"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }
}

impl From<resonance_db::DbError> for ApiError {
    fn from(error: resonance_db::DbError) -> Self {
        use resonance_db::DbError;
        match error {
            DbError::NotFound(what) => Self::NotFound(what),
            DbError::Conflict(message) => Self::Conflict(message),
            DbError::Forbidden(message) => Self::Forbidden(message),
            DbError::OverLimit(over) => Self::QuotaExceeded(over.into()),
            DbError::Unavailable { .. } => {
                tracing::error!(%error, "database unavailable");
                Self::Unavailable
            }
            other => Self::internal(other),
        }
    }
}

impl From<BillingError> for ApiError {
    fn from(error: BillingError) -> Self {
        match error {
            BillingError::SubscriptionRequired => Self::SubscriptionRequired,
            BillingError::QuotaExceeded(refusal) => Self::QuotaExceeded(refusal),
            BillingError::Unavailable(detail) => Self::BillingUnavailable(detail),
            BillingError::Database(error) => error.into(),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::Billing(error) => error.into(),
            QueueError::VoiceNotReady => Self::Conflict(error.to_string()),
            QueueError::Database(error) => error.into(),
        }
    }
}

/// The body of every API error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// With the code `QUOTA_EXCEEDED`, it also has the fields of `QuotaExceeded`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable, like `NOT_FOUND` or `AUDIO_TOO_SHORT`.
    pub code: &'static str,
    /// For people; may change.
    pub message: String,
    /// With `QUOTA_EXCEEDED`: the limit and the numbers. Documented beside, since a
    /// flattened `Option` would read as "or null" in the schema.
    #[serde(flatten)]
    #[schema(ignore)]
    pub quota: Option<QuotaExceeded>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            Self::Internal(source) => tracing::error!(error = %source, "internal error"),
            Self::BadGateway(detail) => tracing::error!(%detail, "object storage failure"),
            Self::BillingUnavailable(detail) => {
                tracing::error!(%detail, "billing provider failure")
            }
            _ => {}
        }
        let quota = match &self {
            Self::QuotaExceeded(quota) => Some(quota.clone()),
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code,
                    message: self.to_string(),
                    quota,
                },
            }),
        )
            .into_response();
        if let Self::TooManyRequests { retry_after } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after.as_secs().max(1).into());
        }
        response
    }
}
