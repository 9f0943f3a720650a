//! Signing up, in and out, and who am I.
//!
//! Neither sign-up nor sign-in tells whether an email has an account: sign-up answers the
//! same whether or not it created one (the new account then signs in), sign-in answers
//! "email or password is incorrect" for both, and both hash or verify a password either way
//! so that they take as long.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use resonance_db::{Membership, NewSession, User};
use resonance_domain::{Email, OrgId, Password, Role, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{cross_site, session_token};
use super::{ClientIp, SESSION_COOKIE, SignedIn, csrf, secrets};
use crate::error::ErrorBody;
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_up))
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignUpResponse {
    message: &'static str,
}

/// Create an account
///
/// Answers 202 whether or not the email already had an account, so that it cannot be used
/// to find out who has one. The first account on an instance is its operator.
#[utoipa::path(
    post,
    path = "/api/auth/sign-up",
    tag = "accounts",
    security(()),
    request_body = Credentials,
    responses(
        (status = 202, description = "Sign in next", body = SignUpResponse),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 403, description = "A cross-site request", body = ErrorBody),
        (status = 422, description = "`INVALID_EMAIL` or `INVALID_PASSWORD` (too short, too long or too common)", body = ErrorBody),
        (status = 429, description = "Too many attempts from this IP, or too many sign-ins at once; see `Retry-After`", body = ErrorBody),
    )
)]
async fn sign_up(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<SignUpResponse>), ApiError> {
    if !csrf::same_origin(&state.auth.settings, &axum::http::Method::POST, &headers) {
        return Err(cross_site());
    }
    let email = Email::parse(&body.email).map_err(|e| invalid("INVALID_EMAIL", e))?;
    let password = Password::parse(&body.password).map_err(|e| invalid("INVALID_PASSWORD", e))?;
    limit(state.auth.per_ip.attempt(&client.to_string()))?;
    let hash = state
        .auth
        .password_hashing
        .run(move |memory| secrets::hash_password(password.expose(), memory))
        .await?;
    match state.db.create_user(&email, &hash).await? {
        Some(user) => {
            tracing::info!(user = %user.id, operator = user.is_operator, "account created")
        }
        None => tracing::info!("sign-up for an email that already has an account"),
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(SignUpResponse {
            message: "unless this email already had an account, it has one now: sign in to continue",
        }),
    ))
}

/// Sign in
///
/// Starts a new session in the session cookie (a session the request carried ends) and
/// acts in the user's first organization.
#[utoipa::path(
    post,
    path = "/api/auth/sign-in",
    tag = "accounts",
    security(()),
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = MeResponse),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 401, description = "`INVALID_CREDENTIALS`", body = ErrorBody),
        (status = 403, description = "A cross-site request", body = ErrorBody),
        (status = 429, description = "Too many attempts for this account from this IP, or from this IP, or too many sign-ins at once; see `Retry-After`", body = ErrorBody),
    )
)]
async fn sign_in(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    if !csrf::same_origin(&state.auth.settings, &axum::http::Method::POST, &headers) {
        return Err(cross_site());
    }
    limit(state.auth.per_ip.attempt(&client.to_string()))?;
    let email = Email::parse(&body.email).ok();
    // Attempts count against the account only from this address, so that an attacker
    // elsewhere cannot lock its owner out.
    let account_key = email
        .as_ref()
        .map(|email| format!("{} from {client}", email.as_str()));
    if let Some(key) = &account_key {
        limit(state.auth.per_account.attempt(key))?;
    }
    let credentials = match &email {
        Some(email) => state.db.user_credentials(email).await?,
        None => None,
    };
    let stored_hash = credentials.as_ref().map(|c| c.password_hash.clone());
    let password = body.password;
    let verified = state
        .auth
        .password_hashing
        .run(move |memory| {
            let stored = stored_hash
                .as_deref()
                .unwrap_or_else(|| secrets::dummy_password_hash());
            secrets::verify_password(&password, stored, memory)
        })
        .await?;
    let user = match credentials {
        Some(credentials) if verified => credentials.user,
        _ => return Err(ApiError::InvalidCredentials),
    };
    if let Some(key) = &account_key {
        state.auth.per_account.forgive(key);
    }

    if let Some(old) = session_token(&headers) {
        state.db.delete_session(&secrets::secret_hash(old)).await?;
    }
    let memberships = state.db.memberships_of(&user.id).await?;
    let active_org = memberships.first().map(|m| m.organization.id.clone());
    let token = secrets::new_session_token();
    let ttl = state.auth.settings.session_ttl;
    state
        .db
        .create_session(&NewSession {
            token_hash: secrets::secret_hash(&token),
            user_id: user.id.clone(),
            active_org: active_org.clone(),
            expires_at: OffsetDateTime::now_utc() + ttl,
        })
        .await?;
    tracing::info!(user = %user.id, "signed in");
    let cookie = session_cookie(&state, &token, ttl.as_secs());
    let body = MeResponse::new(&user, &memberships, active_org.as_ref());
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Sign out
///
/// Ends this session at once and clears the cookie.
#[utoipa::path(
    post,
    path = "/api/auth/sign-out",
    tag = "accounts",
    security(("session" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key, or a cross-site request", body = ErrorBody),
    )
)]
async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, ApiError> {
    state.db.delete_session(&signed_in.session_hash).await?;
    let cookie = session_cookie(&state, "", 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// Who am I
///
/// The signed-in user, their organizations and the active one.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "accounts",
    security(("session" = [])),
    responses(
        (status = 200, description = "The signed-in user", body = MeResponse),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
    )
)]
async fn me(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<MeResponse>, ApiError> {
    let memberships = state.db.memberships_of(&signed_in.user.id).await?;
    let active = signed_in.active_org.map(|(org, _)| org);
    Ok(Json(MeResponse::new(
        &signed_in.user,
        &memberships,
        active.as_ref(),
    )))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserBody {
    id: UserId,
    email: Email,
    is_operator: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// An organization as one of its members sees it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembershipBody {
    id: OrgId,
    name: String,
    role: Role,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<&Membership> for MembershipBody {
    fn from(m: &Membership) -> Self {
        Self {
            id: m.organization.id.clone(),
            name: m.organization.name.as_str().to_string(),
            role: m.role,
            created_at: m.organization.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    user: UserBody,
    organizations: Vec<MembershipBody>,
    /// The organization requests act in; `null` until the user creates or joins one.
    active_organization: Option<MembershipBody>,
}

impl MeResponse {
    fn new(user: &User, memberships: &[Membership], active: Option<&OrgId>) -> Self {
        Self {
            user: UserBody {
                id: user.id.clone(),
                email: user.email.clone(),
                is_operator: user.is_operator,
                created_at: user.created_at,
            },
            organizations: memberships.iter().map(Into::into).collect(),
            active_organization: active.and_then(|active| {
                memberships
                    .iter()
                    .find(|m| &m.organization.id == active)
                    .map(Into::into)
            }),
        }
    }
}

fn session_cookie(state: &AppState, token: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if state.auth.settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    );
    HeaderValue::from_str(&cookie).expect("session tokens are URL-safe base64")
}

fn invalid(code: &'static str, error: impl std::fmt::Display) -> ApiError {
    ApiError::Unprocessable {
        code,
        message: error.to_string(),
    }
}

fn limit(checked: Result<(), std::time::Duration>) -> Result<(), ApiError> {
    checked.map_err(|retry_after| ApiError::TooManyRequests { retry_after })
}
