//! Query strings: parsing with errors in the API's format, paging and name search, shared
//! by the list routes.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use resonance_db::Page;
use resonance_domain::VoiceName;

use crate::ApiError;

/// Like `axum::Query`, but a malformed or mistyped query string is a 400 `INVALID_QUERY`
/// in the API's error format.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    Query<T>: FromRequestParts<S, Rejection = axum::extract::rejection::QueryRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(invalid_query(rejection.body_text())),
        }
    }
}

/// A name search as given: none when blank; 400 `INVALID_QUERY` when longer than any name.
pub fn name_search(search: Option<String>) -> Result<Option<String>, ApiError> {
    match search {
        Some(text) if text.chars().count() > VoiceName::MAX_CHARS => Err(invalid_query(format!(
            "search must be at most {} characters",
            VoiceName::MAX_CHARS
        ))),
        Some(text) if !text.trim().is_empty() => Ok(Some(text)),
        _ => Ok(None),
    }
}

/// 400 `INVALID_QUERY`.
pub fn invalid_query(message: impl ToString) -> ApiError {
    ApiError::BadRequest {
        code: "INVALID_QUERY",
        message: message.to_string(),
    }
}

/// `limit` and `offset` as given, each defaulting to [`Page::default`]'s.
pub fn page(limit: Option<u32>, offset: Option<u32>) -> Result<Page, ApiError> {
    let default = Page::default();
    Page::new(
        limit.unwrap_or(default.limit()),
        offset.unwrap_or(default.offset()),
    )
    .map_err(invalid_query)
}
