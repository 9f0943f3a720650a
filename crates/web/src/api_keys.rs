//! API keys: admins create them (the full key is shown once), list and revoke them.
//! Managing keys needs a signed-in admin; a key cannot manage keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use resonance_db::{ApiKey, NewApiKey};
use resonance_domain::{ApiKeyId, ApiKeyName, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::{Caller, Principal, secrets};
use crate::json::ApiJson;
use crate::orgs::parse_org_id;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/orgs/{orgId}/api-keys",
            get(list_keys).post(create_key),
        )
        .route("/api/orgs/{orgId}/api-keys/{keyId}", delete(revoke_key))
}

#[derive(Serialize)]
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    api_key: ApiKeyBody,
    /// The whole key; shown only in this response.
    key: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyList {
    api_keys: Vec<ApiKeyBody>,
}

#[derive(Deserialize)]
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

/// `POST /api/orgs/{orgId}/api-keys`
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

/// `GET /api/orgs/{orgId}/api-keys`: revoked keys included, newest first.
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

/// `DELETE /api/orgs/{orgId}/api-keys/{keyId}`: the key stops working at once.
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
