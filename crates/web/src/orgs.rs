//! Organizations: creating them, listing one's own, choosing the active one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use resonance_db::Membership;
use resonance_domain::{OrgId, OrganizationName, Role};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::{Principal, SignedIn};
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/orgs", post(create_org).get(list_orgs))
        .route("/api/orgs/{orgId}/activate", post(activate_org))
}

/// An organization as one of its members sees it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationBody {
    id: OrgId,
    name: OrganizationName,
    role: Role,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<Membership> for OrganizationBody {
    fn from(m: Membership) -> Self {
        Self {
            id: m.organization.id,
            name: m.organization.name,
            role: m.role,
            created_at: m.organization.created_at,
        }
    }
}

#[derive(Deserialize)]
pub struct CreateOrganization {
    name: String,
}

/// `POST /api/orgs`: the creator becomes its admin; it becomes the session's active
/// organization when there is none yet.
async fn create_org(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<CreateOrganization>,
) -> Result<(StatusCode, Json<OrganizationBody>), ApiError> {
    let name = OrganizationName::parse(&body.name).map_err(|e| ApiError::Unprocessable {
        code: "INVALID_NAME",
        message: e.to_string(),
    })?;
    let organization = state
        .db
        .create_organization_with_admin(&name, &signed_in.user.id)
        .await?;
    if signed_in.active_org.is_none() {
        state
            .db
            .set_session_org(&signed_in.session_hash, &organization.id)
            .await?;
    }
    let body = Membership {
        organization,
        role: Role::Admin,
    }
    .into();
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationList {
    organizations: Vec<OrganizationBody>,
}

/// `GET /api/orgs`: the organizations the user belongs to.
async fn list_orgs(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<OrganizationList>, ApiError> {
    let memberships = state.db.memberships_of(&signed_in.user.id).await?;
    Ok(Json(OrganizationList {
        organizations: memberships.into_iter().map(Into::into).collect(),
    }))
}

/// `POST /api/orgs/{orgId}/activate`: later requests of this session act in this
/// organization.
async fn activate_org(
    State(state): State<AppState>,
    principal: Principal,
    Path(org_id): Path<String>,
) -> Result<Json<OrganizationBody>, ApiError> {
    let caller = principal.in_org(&state, &parse_org_id(&org_id)?).await?;
    let Principal::User(signed_in) = &principal else {
        return Err(ApiError::Forbidden(
            "an API key always acts for its own organization".into(),
        ));
    };
    state
        .db
        .set_session_org(&signed_in.session_hash, &caller.org_id)
        .await?;
    let organization = state.db.get_organization(&caller.org_id).await?;
    Ok(Json(
        Membership {
            organization,
            role: caller.role,
        }
        .into(),
    ))
}

/// An organization id from a path: malformed ids are simply not found.
pub fn parse_org_id(id: &str) -> Result<OrgId, ApiError> {
    OrgId::parse(id).map_err(|_| ApiError::NotFound("organization"))
}
