//! Organizations: creating them, listing one's own, choosing the active one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use resonance_db::Membership;
use resonance_domain::{OrgId, OrganizationName, Role};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, SignedIn};
use crate::error::ErrorBody;
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_org, list_orgs))
        .routes(routes!(activate_org))
}

/// An organization as one of its members sees it.
#[derive(Serialize, ToSchema)]
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

#[derive(Deserialize, ToSchema)]
pub struct CreateOrganization {
    name: String,
}

/// Create an organization
///
/// The creator becomes its admin; it becomes the session's active organization when there
/// is none yet.
#[utoipa::path(
    post,
    path = "/api/orgs",
    tag = "organizations",
    security(("session" = [])),
    request_body = CreateOrganization,
    responses(
        (status = 201, description = "Created", body = OrganizationBody),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key, or a cross-site request", body = ErrorBody),
        (status = 422, description = "`INVALID_NAME`: 1-100 characters", body = ErrorBody),
    )
)]
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

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationList {
    organizations: Vec<OrganizationBody>,
}

/// List my organizations
///
/// The organizations the signed-in user belongs to, with their role in each.
#[utoipa::path(
    get,
    path = "/api/orgs",
    tag = "organizations",
    security(("session" = [])),
    responses(
        (status = 200, description = "The user's organizations", body = OrganizationList),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
    )
)]
async fn list_orgs(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<OrganizationList>, ApiError> {
    let memberships = state.db.memberships_of(&signed_in.user.id).await?;
    Ok(Json(OrganizationList {
        organizations: memberships.into_iter().map(Into::into).collect(),
    }))
}

/// Switch the active organization
///
/// Later requests of this session act in this organization.
#[utoipa::path(
    post,
    path = "/api/orgs/{orgId}/activate",
    tag = "organizations",
    security(("session" = [])),
    params(("orgId" = OrgId, Path, description = "The organization")),
    responses(
        (status = 200, description = "Now active", body = OrganizationBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such organization among the user's", body = ErrorBody),
    )
)]
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
