//! Members and invites: admins invite with a link (shown to them; no mail needed), anyone
//! signed in accepts it; admins change roles and remove members, members may leave. An
//! organization always keeps at least one admin.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use resonance_db::{Invite, Member, NewInvite};
use resonance_domain::{Email, InviteId, OrgId, Role, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Principal, SignedIn, secrets};
use crate::error::ErrorBody;
use crate::json::ApiJson;
use crate::orgs::{OrganizationBody, parse_org_id};
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members))
        .routes(routes!(remove_member, change_role))
        .routes(routes!(list_invites, create_invite))
        .routes(routes!(delete_invite))
        .routes(routes!(accept_invite))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberBody {
    user_id: UserId,
    email: Email,
    role: Role,
    #[serde(with = "time::serde::rfc3339")]
    joined_at: OffsetDateTime,
}

impl From<Member> for MemberBody {
    fn from(m: Member) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email,
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberList {
    members: Vec<MemberBody>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteBody {
    id: InviteId,
    role: Role,
    /// Only the account with this email can accept the invite; anyone with the link when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<Email>,
    created_by: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl From<Invite> for InviteBody {
    fn from(i: Invite) -> Self {
        Self {
            id: i.id,
            role: i.role,
            email: i.email,
            created_by: i.created_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedInvite {
    #[serde(flatten)]
    invite: InviteBody,
    /// The secret token; shown only in this response.
    token: String,
    /// The link to give the invitee: absolute when the server knows its public URL.
    url: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteList {
    invites: Vec<InviteBody>,
}

#[derive(Deserialize, ToSchema)]
pub struct RoleBody {
    role: Role,
}

/// A signed-in member of the path's organization (API keys cannot manage members).
async fn org_user(
    state: &AppState,
    principal: &Principal,
    org_id: &str,
) -> Result<Caller, ApiError> {
    let caller = principal.in_org(state, &parse_org_id(org_id)?).await?;
    caller.require_user()?;
    Ok(caller)
}

fn parse_user_id(id: &str) -> Result<UserId, ApiError> {
    UserId::parse(id).map_err(|_| ApiError::NotFound("member"))
}

/// List members
///
/// Any member may see who else belongs.
#[utoipa::path(
    get,
    path = "/api/orgs/{orgId}/members",
    tag = "members",
    security(("session" = [])),
    params(("orgId" = OrgId, Path, description = "The organization")),
    responses(
        (status = 200, description = "The members", body = MemberList),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
        (status = 404, description = "No such organization among the caller's", body = ErrorBody),
    )
)]

async fn list_members(
    State(state): State<AppState>,
    principal: Principal,
    Path(org_id): Path<String>,
) -> Result<Json<MemberList>, ApiError> {
    let caller = org_user(&state, &principal, &org_id).await?;
    let members = state.db.list_members(&caller.org_id).await?;
    Ok(Json(MemberList {
        members: members.into_iter().map(Into::into).collect(),
    }))
}

/// Change a member's role
///
/// Admins only; the last admin stays admin.
#[utoipa::path(
    patch,
    path = "/api/orgs/{orgId}/members/{userId}",
    tag = "members",
    security(("session" = [])),
    params(("orgId" = OrgId, Path, description = "The organization"), ("userId" = UserId, Path, description = "The member")),
    request_body = RoleBody,
    responses(
        (status = 200, description = "The member with the new role", body = MemberBody),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, an API key, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such organization among the caller's, or no such member", body = ErrorBody),
        (status = 409, description = "`CONFLICT`: the last admin cannot be demoted", body = ErrorBody),
    )
)]

async fn change_role(
    State(state): State<AppState>,
    principal: Principal,
    Path((org_id, user_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<MemberBody>, ApiError> {
    let caller = org_user(&state, &principal, &org_id).await?;
    caller.require_admin()?;
    let member = state
        .db
        .set_member_role(&caller.org_id, &parse_user_id(&user_id)?, body.role)
        .await?;
    Ok(Json(member.into()))
}

/// Remove a member, or leave
///
/// Admins remove anyone, members themselves (leaving); the last admin cannot leave.
#[utoipa::path(
    delete,
    path = "/api/orgs/{orgId}/members/{userId}",
    tag = "members",
    security(("session" = [])),
    params(("orgId" = OrgId, Path, description = "The organization"), ("userId" = UserId, Path, description = "The member")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, an API key, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such organization among the caller's, or no such member", body = ErrorBody),
        (status = 409, description = "`CONFLICT`: the last admin cannot leave", body = ErrorBody),
    )
)]

async fn remove_member(
    State(state): State<AppState>,
    principal: Principal,
    Path((org_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let caller = org_user(&state, &principal, &org_id).await?;
    let user_id = parse_user_id(&user_id)?;
    if caller.user_id.as_ref() != Some(&user_id) {
        caller.require_admin()?;
    }
    state.db.remove_member(&caller.org_id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct CreateInvite {
    role: Role,
    /// The invitee's email: then only the account with that email can accept.
    #[serde(default)]
    email: Option<String>,
}

/// Invite someone
///
/// Admins only. The invite link (no mail is sent) is in the response, once. With `email`,
/// only the account with that email can accept it.
#[utoipa::path(
    post,
    path = "/api/orgs/{orgId}/invites",
    tag = "members",
    security(("session" = [])),
    params(("orgId" = OrgId, Path, description = "The organization")),
    request_body = CreateInvite,
    responses(
        (status = 201, description = "The invite with its link", body = CreatedInvite),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, an API key, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such organization among the caller's", body = ErrorBody),
        (status = 422, description = "`INVALID_EMAIL`", body = ErrorBody),
    )
)]

async fn create_invite(
    State(state): State<AppState>,
    principal: Principal,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<CreateInvite>,
) -> Result<(StatusCode, Json<CreatedInvite>), ApiError> {
    let caller = org_user(&state, &principal, &org_id).await?;
    caller.require_admin()?;
    let email = body
        .email
        .as_deref()
        .filter(|email| !email.trim().is_empty())
        .map(Email::parse)
        .transpose()
        .map_err(|e| ApiError::Unprocessable {
            code: "INVALID_EMAIL",
            message: e.to_string(),
        })?;
    let token = secrets::new_session_token();
    let invite = state
        .db
        .create_invite(&NewInvite {
            id: InviteId::new(),
            org_id: caller.org_id.clone(),
            token_hash: secrets::secret_hash(&token),
            role: body.role,
            email,
            created_by: caller.require_user()?.clone(),
            expires_at: OffsetDateTime::now_utc() + state.auth.settings.invite_ttl,
        })
        .await?;
    let base = state
        .auth
        .settings
        .public_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/');
    let url = format!("{base}/invites/{token}");
    Ok((
        StatusCode::CREATED,
        Json(CreatedInvite {
            invite: invite.into(),
            token,
            url,
        }),
    ))
}

/// List pending invites
///
/// Admins only.
#[utoipa::path(
    get,
    path = "/api/orgs/{orgId}/invites",
    tag = "members",
    security(("session" = [])),
    params(("orgId" = OrgId, Path, description = "The organization")),
    responses(
        (status = 200, description = "Pending invites", body = InviteList),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, or an API key", body = ErrorBody),
        (status = 404, description = "No such organization among the caller's", body = ErrorBody),
    )
)]

async fn list_invites(
    State(state): State<AppState>,
    principal: Principal,
    Path(org_id): Path<String>,
) -> Result<Json<InviteList>, ApiError> {
    let caller = org_user(&state, &principal, &org_id).await?;
    caller.require_admin()?;
    let invites = state.db.list_invites(&caller.org_id).await?;
    Ok(Json(InviteList {
        invites: invites.into_iter().map(Into::into).collect(),
    }))
}

/// Withdraw an invite
///
/// Admins only.
#[utoipa::path(
    delete,
    path = "/api/orgs/{orgId}/invites/{inviteId}",
    tag = "members",
    security(("session" = [])),
    params(("orgId" = OrgId, Path, description = "The organization"), ("inviteId" = InviteId, Path, description = "The invite")),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin, an API key, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such organization among the caller's, or no such invite", body = ErrorBody),
    )
)]

async fn delete_invite(
    State(state): State<AppState>,
    principal: Principal,
    Path((org_id, invite_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let caller = org_user(&state, &principal, &org_id).await?;
    caller.require_admin()?;
    let invite_id = InviteId::parse(&invite_id).map_err(|_| ApiError::NotFound("invite"))?;
    state.db.delete_invite(&caller.org_id, &invite_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an invite
///
/// The signed-in user joins the organization and acts in it from now on.
#[utoipa::path(
    post,
    path = "/api/invites/{token}/accept",
    tag = "members",
    security(("session" = [])),
    params(("token" = String, Path, description = "The token from the invite link")),
    responses(
        (status = 200, description = "Joined", body = OrganizationBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key, a cross-site request, or an invite for another email", body = ErrorBody),
        (status = 404, description = "No such invite, or it expired or was used", body = ErrorBody),
        (status = 409, description = "`CONFLICT`: already a member", body = ErrorBody),
    )
)]

async fn accept_invite(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(token): Path<String>,
) -> Result<Json<OrganizationBody>, ApiError> {
    let membership = state
        .db
        .accept_invite(&secrets::secret_hash(&token), &signed_in.user.id)
        .await?;
    state
        .db
        .set_session_org(&signed_in.session_hash, &membership.organization.id)
        .await?;
    Ok(Json(membership.into()))
}
