//! A JSON request body whose rejections are API errors.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

use crate::ApiError;

/// Like `axum::Json`, but a missing, malformed or mistyped body is a 400 `INVALID_BODY`
/// in the API's error format, and one over the body limit a 413.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(
                ApiError::PayloadTooLarge("the request body is larger than the limit".into()),
            ),
            Err(rejection) => Err(ApiError::BadRequest {
                code: "INVALID_BODY",
                message: rejection.body_text(),
            }),
        }
    }
}
