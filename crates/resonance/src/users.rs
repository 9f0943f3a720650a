//! Operator commands for accounts: `resonance users reset-password EMAIL`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use resonance_domain::Email;
use resonance_web::auth::secrets::{new_session_token, secret_hash};
use time::OffsetDateTime;

use crate::config::{Config, SettingsArgs};
use crate::serve::connect_db;

/// How long a reset link works.
const RESET_LINK_LIFETIME: Duration = Duration::from_secs(60 * 60);

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Print a one-time link (valid for an hour) that sets a new password for the account
    #[command(name = "reset-password")]
    ResetPassword {
        /// The account's email
        email: String,
    },
}

pub async fn run(args: &SettingsArgs, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let UsersCommand::ResetPassword { email } = command;
    let config = Config::load(args)?;
    let db = connect_db(&config).await?;
    db.migrate().await.context("applying database migrations")?;
    let email = Email::parse(&email).with_context(|| format!("{email:?} is not an email"))?;
    let user = db
        .user_credentials(&email)
        .await?
        .with_context(|| format!("no account has the email {}", email.as_str()))?
        .user;
    let token = new_session_token();
    db.create_password_reset(
        &user.id,
        &secret_hash(&token),
        OffsetDateTime::now_utc() + RESET_LINK_LIFETIME,
    )
    .await?;
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.bind));
    println!(
        "{}/reset-password?token={token}",
        base.trim_end_matches('/')
    );
    eprintln!(
        "Send this link to {} privately; it works once, within the hour.",
        email.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
