//! Email, sent through the operator's SMTP server: the one-time password reset link.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long connecting to the SMTP server and each of its answers may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the SMTP server is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text throughout: only for a server on the same machine or a trusted network.
    None,
    /// Plain text upgraded with STARTTLS, which the server must offer (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl SmtpTls {
    /// The port this kind of connection usually has.
    pub fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::StartTls => 587,
            Self::Tls => 465,
        }
    }
}

impl std::str::FromStr for SmtpTls {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            other => Err(format!("expected none, starttls or tls, got {other:?}")),
        }
    }
}

/// Where and as whom email is sent.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// The account to sign in to the server with, and its password; none for a server that
    /// relays without signing in.
    pub credentials: Option<(String, String)>,
    /// The sender, like `Resonance <no-reply@example.com>`.
    pub from: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the sender {0:?} is not an email address, like `Resonance <no-reply@example.com>`")]
    InvalidSender(String),
    #[error("{0:?} is not an email address")]
    InvalidRecipient(String),
    #[error("cannot set up the connection to the SMTP server: {0}")]
    Setup(String),
    #[error("the SMTP server did not take the message: {0}")]
    Send(String),
}

/// Sends email through the configured SMTP server; cheap to share.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// Checks the settings; connects only when a message is sent.
    pub fn new(settings: &SmtpSettings) -> Result<Self, MailError> {
        let from = settings
            .from
            .parse()
            .map_err(|_| MailError::InvalidSender(settings.from.clone()))?;
        let builder = match settings.tls {
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
            SmtpTls::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                    .map_err(|e| MailError::Setup(e.to_string()))?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .map_err(|e| MailError::Setup(e.to_string()))?,
        };
        let mut builder = builder.port(settings.port).timeout(Some(SMTP_TIMEOUT));
        if let Some((username, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends the one-time `link` that sets a new password for the account of `to`.
    pub async fn send_password_reset(&self, to: &str, link: &str) -> Result<(), MailError> {
        let recipient = to
            .parse()
            .map_err(|_| MailError::InvalidRecipient(to.to_string()))?;
        let body = format!(
            "Someone asked to reset the password of your Resonance account.\n\n\
             To choose a new password, open this link within the hour; it works once:\n\n\
             {link}\n\n\
             If you did not ask for this, ignore this email: your password stays as it is.\n"
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(recipient)
            .subject("Reset your Resonance password")
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Send(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| MailError::Send(e.to_string()))?;
        Ok(())
    }
}
