//! Query-string paging and query errors, shared by the list routes.

use resonance_db::Page;

use crate::ApiError;

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
