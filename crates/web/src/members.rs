//! Members and invites: admins invite with a link (shown to them; no mail needed), anyone
//! signed in accepts it; admins change roles and remove members, members may leave. An
//! organization always keeps at least one admin.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use resonance_db::{Invite, Member, NewInvite};
use resonance_domain::{Email, InviteId, Role, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::{Caller, Principal, SignedIn, secrets};
use crate::json::ApiJson;
use crate::orgs::{OrganizationBody, parse_org_id};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/orgs/{orgId}/members", get(list_members))
        .route(
            "/api/orgs/{orgId}/members/{userId}",
            delete(remove_member).patch(change_role),
        )
        .route(
            "/api/orgs/{orgId}/invites",
            get(list_invites).post(create_invite),
        )
        .route(
            "/api/orgs/{orgId}/invites/{inviteId}",
            delete(delete_invite),
        )
        .route("/api/invites/{token}/accept", post(accept_invite))
}

#[derive(Serialize)]
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberList {
    members: Vec<MemberBody>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteBody {
    id: InviteId,
    role: Role,
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
            created_by: i.created_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedInvite {
    #[serde(flatten)]
    invite: InviteBody,
    /// The secret token; shown only in this response.
    token: String,
    /// The link to give the invitee: absolute when the server knows its public URL.
    url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteList {
    invites: Vec<InviteBody>,
}

#[derive(Deserialize)]
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

/// `GET /api/orgs/{orgId}/members`: any member may see who else belongs.
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

/// `PATCH /api/orgs/{orgId}/members/{userId}`: admins only; the last admin stays admin.
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

/// `DELETE /api/orgs/{orgId}/members/{userId}`: admins remove anyone, members themselves
/// (leaving); the last admin cannot leave.
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

#[derive(Deserialize)]
pub struct CreateInvite {
    role: Role,
}

/// `POST /api/orgs/{orgId}/invites`: admins only; the link is in the response, once.
async fn create_invite(
    State(state): State<AppState>,
    principal: Principal,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<CreateInvite>,
) -> Result<(StatusCode, Json<CreatedInvite>), ApiError> {
    let caller = org_user(&state, &principal, &org_id).await?;
    caller.require_admin()?;
    let token = secrets::new_session_token();
    let invite = state
        .db
        .create_invite(&NewInvite {
            id: InviteId::new(),
            org_id: caller.org_id.clone(),
            token_hash: secrets::secret_hash(&token),
            role: body.role,
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

/// `GET /api/orgs/{orgId}/invites`: pending invites, admins only.
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

/// `DELETE /api/orgs/{orgId}/invites/{inviteId}`: withdraws a pending invite.
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

/// `POST /api/invites/{token}/accept`: the signed-in user joins and acts in the
/// organization from now on.
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
