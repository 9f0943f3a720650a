//! Serving stored objects over HTTP with single-range requests (206/416), and the
//! `/files/{key}` route behind the local backend's signed URLs.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use resonance_storage::{ObjectKey, StorageError, unix_now};
use serde::Deserialize;

use crate::paging::ApiQuery;
use crate::{ApiError, AppState};

/// How an object is presented to the client.
pub struct Presentation<'a> {
    pub content_type: &'a str,
    pub cache_control: &'a str,
    /// `Some(filename)` asks the browser to download instead of play.
    pub download_as: Option<&'a str>,
}

/// Streams `key`, honouring a `Range: bytes=...` header.
pub async fn object_response(
    state: &AppState,
    key: &ObjectKey,
    request_headers: &HeaderMap,
    presentation: &Presentation<'_>,
) -> Result<Response, ApiError> {
    let range = request_headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header_value(presentation.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header_value(presentation.cache_control),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(name) = presentation.download_as {
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .collect();
        headers.insert(
            header::CONTENT_DISPOSITION,
            header_value(&format!("attachment; filename=\"{name}\"")),
        );
    }
    match range {
        None => {
            let stream = state.storage.get_stream(key).await.map_err(storage_error)?;
            headers.insert(header::CONTENT_LENGTH, stream.info.size.into());
            Ok((StatusCode::OK, headers, Body::from_stream(stream.body)).into_response())
        }
        Some(range) => {
            let size = state.storage.head(key).await.map_err(storage_error)?.size;
            let Some((start, end)) = parse_range(range, size) else {
                headers.insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{size}")),
                );
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response());
            };
            let bytes = state
                .storage
                .get_range(key, start..end + 1)
                .await
                .map_err(storage_error)?;
            headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{end}/{size}")),
            );
            headers.insert(header::CONTENT_LENGTH, (bytes.len() as u64).into());
            Ok((StatusCode::PARTIAL_CONTENT, headers, bytes).into_response())
        }
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// Parses a single `bytes=` range into inclusive bounds within `size`.
fn parse_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.saturating_sub(n), size - 1)
        }
        (start, "") => (start.parse().ok()?, size - 1),
        (start, end) => (start.parse().ok()?, end.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

/// Maps storage failures for a resource the database says exists.
pub fn storage_error(e: StorageError) -> ApiError {
    match e {
        StorageError::NotFound { .. } => ApiError::NotFound("audio"),
        StorageError::Unavailable { .. } => ApiError::BadGateway(e.to_string()),
        other => ApiError::internal(other),
    }
}

#[derive(Deserialize)]
pub struct SignedQuery {
    expires: u64,
    sig: String,
}

/// `GET /files/{key}?expires=..&sig=..`: objects behind the local backend's signed URLs.
pub async fn signed_file(
    State(state): State<AppState>,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<SignedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = ObjectKey::parse(&key).map_err(|_| ApiError::NotFound("file"))?;
    state
        .storage
        .verify_local_signature(&key, query.expires, &query.sig, unix_now())
        .map_err(|_| ApiError::Forbidden("this link is invalid or has expired".into()))?;
    let presentation = Presentation {
        content_type: "audio/wav",
        cache_control: "private, max-age=3600",
        download_as: None,
    };
    object_response(&state, &key, &headers, &presentation).await
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=500-5000", 1000), Some((500, 999)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-2", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
    }
}
