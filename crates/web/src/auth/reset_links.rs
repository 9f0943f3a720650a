//! One-time links that set a new password for an account: `resonance users reset-password`
//! prints or emails them, and "Forgot password?" on the sign-in page emails them.

use std::time::Duration;

use resonance_db::{Database, DbError};
use resonance_domain::{Email, UserId};
use resonance_service::mail::{MailError, Mailer};
use time::OffsetDateTime;

use super::secrets::{new_session_token, secret_hash};

/// How long a reset link works.
pub const RESET_LINK_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// A new reset link for `user` under `base_url` (the server's public URL), valid for
/// [`RESET_LINK_LIFETIME`] and once; only the hash of its token is stored.
pub async fn new_reset_link(
    db: &dyn Database,
    user: &UserId,
    base_url: &str,
) -> Result<String, DbError> {
    let token = new_session_token();
    db.create_password_reset(
        user,
        &secret_hash(&token),
        OffsetDateTime::now_utc() + RESET_LINK_LIFETIME,
    )
    .await?;
    Ok(format!(
        "{}/reset-password?token={token}",
        base_url.trim_end_matches('/')
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum ResetLinkError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// Emails the account of `email` a new reset link under `base_url`; `false`, and nothing
/// sent, when no account has the email.
pub async fn email_reset_link(
    db: &dyn Database,
    mailer: &Mailer,
    email: &Email,
    base_url: &str,
) -> Result<bool, ResetLinkError> {
    let Some(account) = db.user_credentials(email).await? else {
        return Ok(false);
    };
    let link = new_reset_link(db, &account.user.id, base_url).await?;
    mailer
        .send_password_reset(account.user.email.as_str(), &link)
        .await?;
    Ok(true)
}
