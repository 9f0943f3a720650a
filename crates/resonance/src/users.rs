//! Operator commands for accounts: `resonance users reset-password EMAIL`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use resonance_domain::Email;
use resonance_web::auth::reset_links::{email_reset_link, new_reset_link};

use crate::config::{Config, SettingsArgs};
use crate::serve::{connect_db, mailer};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Email the account a one-time link (valid for an hour) that sets a new password, when
    /// SMTP is configured; otherwise print the link
    #[command(name = "reset-password")]
    ResetPassword {
        /// The account's email
        email: String,
    },
}

pub async fn run(args: &SettingsArgs, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let UsersCommand::ResetPassword { email } = command;
    let config = Config::load(args)?;
    let mailer = mailer(&config)?;
    let db = connect_db(&config).await?;
    db.migrate().await.context("applying database migrations")?;
    let email = Email::parse(&email).with_context(|| format!("{email:?} is not an email"))?;
    let no_account = || format!("no account has the email {}", email.as_str());
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.bind));
    if let Some(mailer) = mailer {
        let sent = email_reset_link(db.as_ref(), &mailer, &email, &base)
            .await
            .context("emailing the reset link")?;
        anyhow::ensure!(sent, no_account());
        eprintln!(
            "Emailed {} a link that sets a new password; it works once, within the hour.",
            email.as_str()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let user = db
        .user_credentials(&email)
        .await?
        .with_context(no_account)?
        .user;
    println!("{}", new_reset_link(db.as_ref(), &user.id, &base).await?);
    eprintln!(
        "Send this link to {} privately; it works once, within the hour.",
        email.as_str()
    );
    Ok(ExitCode::SUCCESS)
}
