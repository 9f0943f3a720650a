//! API keys: admins create them (the full key is shown once), list and revoke them.
//! Managing keys needs a signed-in admin; a key cannot manage keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use resonance_db::{ApiKey, NewApiKey};
use resonance_domain::{ApiKeyId, ApiKeyName, OrgId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Principal, secrets};
use crate::error::ErrorBody;
use crate::json::ApiJson;
use crate::orgs::parse_org_id;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyBody {
    id: ApiKeyId,
    name: ApiKeyName,
    /// The visible part of the key (`rsn_<prefix>_...`).
    prefix: String,
    created_by: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
}

impl From<ApiKey> for ApiKeyBody {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            created_by: key.created_by,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    api_key: ApiKeyBody,
    /// The whole key; shown only in this response.
    key: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyList {
    api_keys: Vec<ApiKeyBody>,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateApiKey {
    name: String,
}

/// A signed-in admin of the path's organization.
async fn key_manager(
    state: &AppState,
    principal: &Principal,
    org_id: &str,
) -> Result<Caller, ApiError> {
    let caller = principal.in_org(state, &parse_org_id(org_id)?).await?;
    caller.require_user()?;
    caller.require_admin()?;
    Ok(caller)
}

/// Create an API key
///
/// Signed-in admins only. The whole key is in the response, once; it acts for this
/// organization.
#[utoipa::path(
    post,
    path = "/api/orgs/{orgId}/api-keys",
    tag = "api-keys",
    security(("session" = [])),
    params(("orgId" = OrgId, Path, description = "The organization")),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "The key, shown once", body = CreatedApiKey),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, an API key, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such organization among the caller's", body = ErrorBody),
        (status = 422, description = "`INVALID_NAME`: 1-100 characters", body = ErrorBody),
    )
)]

async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let caller = key_manager(&state, &principal, &org_id).await?;
    let name = ApiKeyName::parse(&body.name).map_err(|e| ApiError::Unprocessable {
        code: "INVALID_NAME",
        message: e.to_string(),
    })?;
    let secret = secrets::new_api_key();
    let stored = state
        .db
        .create_api_key(&NewApiKey {
            id: ApiKeyId::new(),
            org_id: caller.org_id.clone(),
            name,
            prefix: secret.prefix,
            key_hash: secret.hash,
            created_by: caller.require_user()?.clone(),
        })
        .await?;
    tracing::info!(org = %caller.org_id, key = %stored.id, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            api_key: stored.into(),
            key: secret.key,
        }),
    ))
}

/// List API keys
///
/// Signed-in admins only; revoked keys included, newest first.
#[utoipa::path(
    get,
    path = "/api/orgs/{orgId}/api-keys",
    tag = "api-keys",
    security(("session" = [])),
    params(("orgId" = OrgId, Path, description = "The organization")),
    responses(
        (status = 200, description = "The keys, without their secrets", body = ApiKeyList),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, or an API key", body = ErrorBody),
        (status = 404, description = "No such organization among the caller's", body = ErrorBody),
    )
)]

async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
    Path(org_id): Path<String>,
) -> Result<Json<ApiKeyList>, ApiError> {
    let caller = key_manager(&state, &principal, &org_id).await?;
    let keys = state.db.list_api_keys(&caller.org_id).await?;
    Ok(Json(ApiKeyList {
        api_keys: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke an API key
///
/// Signed-in admins only; the key stops working at once.
#[utoipa::path(
    delete,
    path = "/api/orgs/{orgId}/api-keys/{keyId}",
    tag = "api-keys",
    security(("session" = [])),
    params(("orgId" = OrgId, Path, description = "The organization"), ("keyId" = ApiKeyId, Path, description = "The key")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKeyBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, an API key, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such organization among the caller's, or no such key", body = ErrorBody),
    )
)]

async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    Path((org_id, key_id)): Path<(String, String)>,
) -> Result<Json<ApiKeyBody>, ApiError> {
    let caller = key_manager(&state, &principal, &org_id).await?;
    let key_id = ApiKeyId::parse(&key_id).map_err(|_| ApiError::NotFound("API key"))?;
    let revoked = state.db.revoke_api_key(&caller.org_id, &key_id).await?;
    tracing::info!(org = %caller.org_id, key = %revoked.id, "API key revoked");
    Ok(Json(revoked.into()))
}
