//! A person's own password and sessions: changing the password (which signs out every other
//! session), signing out every other session, and setting a new password through a one-time
//! reset link an operator hands out (`resonance users reset-password`) or, with SMTP
//! configured, one emailed on request ("Forgot password?").

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use resonance_db::DbError;
use resonance_domain::{Email, Password};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::cross_site;
use super::{ClientIp, SignedIn, csrf, reset_links, secrets};
use crate::error::ErrorBody;
use crate::json::ApiJson;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_password))
        .routes(routes!(sign_out_others))
        .routes(routes!(reset_password))
        .routes(routes!(forgot_password))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChange {
    current_password: String,
    /// 8-128 characters, not one of the most common passwords.
    new_password: String,
}

/// Change your password
///
/// Checks the current password, stores the new one and signs out every other session of
/// yours; this one stays signed in.
#[utoipa::path(
    post,
    path = "/api/auth/password",
    tag = "accounts",
    security(("session" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; every other session is signed out"),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key, or a cross-site request", body = ErrorBody),
        (status = 422, description = "`WRONG_PASSWORD` (the current one), or `INVALID_PASSWORD` (the new one: too short, too long or too common)", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords from this address, or too many checks at once; see `Retry-After`", body = ErrorBody),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    // Wrong current passwords count like wrong sign-ins of this account from this address.
    let attempts = format!("{} from {client}", signed_in.user.email.as_str());
    state
        .auth
        .per_account
        .attempt(&attempts)
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    let new = Password::parse(&body.new_password).map_err(|e| ApiError::Unprocessable {
        code: "INVALID_PASSWORD",
        message: e.to_string(),
    })?;
    let stored = state
        .db
        .user_credentials(&signed_in.user.email)
        .await?
        .map(|credentials| credentials.password_hash);
    let current = body.current_password;
    let new_hash = state
        .auth
        .password_hashing
        .run(move |memory| {
            let stored = stored.as_deref()?;
            secrets::verify_password(&current, stored, memory)
                .then(|| secrets::hash_password(new.expose(), memory))
        })
        .await?
        .ok_or_else(|| ApiError::Unprocessable {
            code: "WRONG_PASSWORD",
            message: "the current password is not right".into(),
        })?;
    state.auth.per_account.forgive(&attempts);
    state
        .db
        .change_password(&signed_in.user.id, &new_hash, &signed_in.session_hash)
        .await?;
    tracing::info!(user = %signed_in.user.id, "password changed; other sessions signed out");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedOutOthers {
    /// How many other sessions ended.
    signed_out: u64,
}

/// Sign out everywhere else
///
/// Ends every session of yours but this one (other browsers and devices).
#[utoipa::path(
    post,
    path = "/api/auth/sign-out-others",
    tag = "accounts",
    security(("session" = [])),
    responses(
        (status = 200, description = "The other sessions ended", body = SignedOutOthers),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "An API key, or a cross-site request", body = ErrorBody),
    )
)]
async fn sign_out_others(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<SignedOutOthers>, ApiError> {
    let signed_out = state
        .db
        .end_other_sessions(&signed_in.user.id, &signed_in.session_hash)
        .await?;
    Ok(Json(SignedOutOthers { signed_out }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordReset {
    /// The `token` of the reset link.
    token: String,
    /// 8-128 characters, not one of the most common passwords.
    new_password: String,
}

/// Reset a password
///
/// Sets a new password with the token of a one-time reset link (`resonance users
/// reset-password EMAIL` prints or emails one, and so does "Forgot password?" with SMTP
/// configured; valid for an hour), and signs out every session of the account. The link
/// works once.
#[utoipa::path(
    post,
    path = "/api/auth/reset-password",
    tag = "accounts",
    security(()),
    request_body = PasswordReset,
    responses(
        (status = 204, description = "The new password is set; sign in with it"),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 403, description = "A cross-site request", body = ErrorBody),
        (status = 422, description = "`INVALID_PASSWORD`, or `INVALID_RESET_LINK` (unknown, used or expired)", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address, or too many checks at once; see `Retry-After`", body = ErrorBody),
    )
)]
async fn reset_password(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    if !csrf::same_origin(&state.auth.settings, &Method::POST, &headers) {
        return Err(cross_site());
    }
    state
        .auth
        .per_ip
        .attempt(&client.to_string())
        .map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
    let new = Password::parse(&body.new_password).map_err(|e| ApiError::Unprocessable {
        code: "INVALID_PASSWORD",
        message: e.to_string(),
    })?;
    let hash = state
        .auth
        .password_hashing
        .run(move |memory| secrets::hash_password(new.expose(), memory))
        .await?;
    let user = state
        .db
        .reset_password(&secrets::secret_hash(&body.token), &hash)
        .await
        .map_err(|error| match error {
            DbError::NotFound(_) => ApiError::Unprocessable {
                code: "INVALID_RESET_LINK",
                message: "this reset link is unknown, used or expired; ask for a new one".into(),
            },
            other => other.into(),
        })?;
    tracing::info!(%user, "password reset; every session signed out");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct ForgottenPassword {
    /// The account's email.
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResetLinkRequested {
    /// The same sentence whether or not the email has an account.
    message: &'static str,
}

const RESET_LINK_ON_ITS_WAY: &str = "If an account has this email, a link to choose a new \
    password is on its way to it. The link works once, within the hour.";

/// Email a reset link
///
/// With SMTP configured, emails the account of `email` a one-time link (valid for an hour)
/// whose page sets a new password. Answers the same, and at once, whether or not the email
/// has an account: the email is sent afterwards. Limited per address and per email. Without
/// SMTP, 409: the instance's operator hands out reset links (`resonance users
/// reset-password EMAIL`).
#[utoipa::path(
    post,
    path = "/api/auth/forgot-password",
    tag = "accounts",
    security(()),
    request_body = ForgottenPassword,
    responses(
        (status = 202, description = "A link is on its way if the email has an account", body = ResetLinkRequested),
        (status = 400, description = "`INVALID_BODY`", body = ErrorBody),
        (status = 403, description = "A cross-site request", body = ErrorBody),
        (status = 409, description = "This instance sends no email: ask its operator", body = ErrorBody),
        (status = 422, description = "`INVALID_EMAIL`", body = ErrorBody),
        (status = 429, description = "Too many requests from this address or for this email; see `Retry-After`", body = ErrorBody),
    )
)]
async fn forgot_password(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ForgottenPassword>,
) -> Result<(StatusCode, Json<ResetLinkRequested>), ApiError> {
    if !csrf::same_origin(&state.auth.settings, &Method::POST, &headers) {
        return Err(cross_site());
    }
    let (Some(mailer), Some(public_url)) =
        (state.mailer.clone(), state.auth.settings.public_url.clone())
    else {
        return Err(ApiError::Conflict(
            "this instance does not send email: ask its operator for a link to choose a new \
             password"
                .into(),
        ));
    };
    let email = Email::parse(&body.email).map_err(|e| ApiError::Unprocessable {
        code: "INVALID_EMAIL",
        message: e.to_string(),
    })?;
    let too_many = |retry_after| ApiError::TooManyRequests { retry_after };
    state
        .auth
        .per_ip
        .attempt(&client.to_string())
        .map_err(too_many)?;
    // Keyed by the email alone, so that no one fills a mailbox from many addresses.
    state
        .auth
        .per_account
        .attempt(&format!("password reset for {}", email.as_str()))
        .map_err(too_many)?;
    let db = state.db.clone();
    tokio::spawn(async move {
        match reset_links::email_reset_link(db.as_ref(), &mailer, &email, &public_url).await {
            Ok(true) => tracing::info!("password reset link emailed"),
            Ok(false) => tracing::info!("password reset asked for an email without an account"),
            Err(error) => tracing::warn!(%error, "could not email a password reset link"),
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(ResetLinkRequested {
            message: RESET_LINK_ON_ITS_WAY,
        }),
    ))
}
