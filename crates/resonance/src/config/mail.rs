//! Email: the SMTP server that sends password reset links. Without a host, no email is
//! sent and the operator hands out reset links (`resonance users reset-password`).

use resonance_service::mail::{MailError, Mailer, SmtpSettings, SmtpTls};
use serde::Deserialize;

use super::ConfigError;

/// The `[smtp]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpTable {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: Option<String>,
    pub tls: Option<String>,
}

/// The SMTP server when a host is configured; it then needs a sender, and links in emails
/// need the public URL.
pub fn smtp(
    table: SmtpTable,
    public_url: Option<&str>,
) -> Result<Option<SmtpSettings>, ConfigError> {
    let Some(host) = table.host.filter(|host| !host.trim().is_empty()) else {
        return Ok(None);
    };
    let tls = match table.tls.as_deref() {
        None => SmtpTls::StartTls,
        Some(text) => text.parse().map_err(|_| ConfigError::Invalid {
            key: "RESONANCE_SMTP_TLS (smtp.tls)",
            expected: "none, starttls or tls",
            got: text.to_string(),
        })?,
    };
    let from = table.from.ok_or(ConfigError::Missing {
        key: "RESONANCE_SMTP_FROM (smtp.from)",
        why: "required with an SMTP host: the sender of emails, like `Resonance <no-reply@example.com>`",
    })?;
    let credentials = match (table.username, table.password) {
        (Some(username), Some(password)) => Some((username, password)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                key: "RESONANCE_SMTP_PASSWORD (smtp.password)",
                why: "required with an SMTP username",
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                key: "RESONANCE_SMTP_USERNAME (smtp.username)",
                why: "required with an SMTP password",
            });
        }
    };
    if public_url.is_none() {
        return Err(ConfigError::Missing {
            key: "RESONANCE_PUBLIC_URL (public_url)",
            why: "required with an SMTP host, so that links in emails lead to this server",
        });
    }
    let settings = SmtpSettings {
        port: table.port.unwrap_or_else(|| tls.default_port()),
        host,
        tls,
        credentials,
        from,
    };
    // The sender and the connection's setup are checked now rather than at the first email.
    Mailer::new(&settings).map_err(|error| match error {
        MailError::InvalidSender(from) => ConfigError::Invalid {
            key: "RESONANCE_SMTP_FROM (smtp.from)",
            expected: "an email address, like `Resonance <no-reply@example.com>`",
            got: from,
        },
        other => ConfigError::Invalid {
            key: "RESONANCE_SMTP_HOST (smtp.host)",
            expected: "a server an SMTP connection can be set up for",
            got: other.to_string(),
        },
    })?;
    Ok(Some(settings))
}

#[cfg(test)]
mod tests {
    use resonance_service::mail::SmtpTls;

    use crate::config::tests::args;
    use crate::config::{Config, SettingsArgs};

    #[test]
    fn smtp_is_off_without_a_host_and_set_by_file_then_flags() {
        assert!(Config::load(&args()).unwrap().smtp.is_none());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resonance.toml");
        std::fs::write(
            &file,
            "public_url = \"https://tts.example\"\n[smtp]\nhost = \"mail.example\"\n\
             username = \"resonance\"\npassword = \"mail-secret-123\"\n\
             from = \"Resonance <no-reply@tts.example>\"\n",
        )
        .unwrap();
        let from_file = SettingsArgs {
            config: Some(file),
            ..args()
        };
        let smtp = Config::load(&from_file).unwrap().smtp.unwrap();
        assert_eq!(
            (smtp.host.as_str(), smtp.port, smtp.tls),
            ("mail.example", 587, SmtpTls::StartTls)
        );
        assert_eq!(
            smtp.credentials,
            Some(("resonance".to_string(), "mail-secret-123".to_string()))
        );
        let cfg = Config::load(&SettingsArgs {
            smtp_tls: Some("tls".into()),
            smtp_port: Some(2465),
            ..from_file
        })
        .unwrap();
        assert!(!format!("{cfg:?}").contains("mail-secret-123"));
        let smtp = cfg.smtp.unwrap();
        assert_eq!((smtp.port, smtp.tls), (2465, SmtpTls::Tls));
    }

    /// A change to otherwise complete SMTP settings.
    type Change = fn(&mut SettingsArgs);

    #[test]
    fn bad_smtp_settings_name_their_key() {
        let smtp = |change: Change| {
            let mut settings = SettingsArgs {
                public_url: Some("https://tts.example".into()),
                smtp_host: Some("mail.example".into()),
                smtp_from: Some("no-reply@tts.example".into()),
                ..args()
            };
            change(&mut settings);
            Config::load(&settings).map(|cfg| cfg.smtp)
        };
        assert_eq!(smtp(|_| {}).unwrap().unwrap().port, 587);
        let cases: [(Change, &str); 5] = [
            (|s| s.smtp_tls = Some("ssl".into()), "RESONANCE_SMTP_TLS"),
            (|s| s.smtp_from = None, "RESONANCE_SMTP_FROM"),
            (
                |s| s.smtp_from = Some("not an address".into()),
                "RESONANCE_SMTP_FROM",
            ),
            (
                |s| s.smtp_username = Some("u".into()),
                "RESONANCE_SMTP_PASSWORD",
            ),
            (|s| s.public_url = None, "RESONANCE_PUBLIC_URL"),
        ];
        for (change, key) in cases {
            let error = smtp(change).unwrap_err().to_string();
            assert!(error.contains(key), "{key}: {error}");
        }
        let error = smtp(|s| s.smtp_password = Some("hunter2-secret".into()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("RESONANCE_SMTP_USERNAME"), "{error}");
        assert!(!error.contains("hunter2-secret"), "{error}");
    }
}
