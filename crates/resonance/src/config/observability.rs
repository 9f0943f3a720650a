//! What the process tells its operators: the log format and the token `GET /metrics`
//! asks for.

use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

pub fn log_format(text: Option<&str>) -> Result<LogFormat, ConfigError> {
    match text {
        None | Some("pretty") => Ok(LogFormat::Pretty),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError::Invalid {
            key: "RESONANCE_LOG_FORMAT (log_format)",
            expected: "pretty or json",
            got: other.to_string(),
        }),
    }
}

/// A secret setting; its `Debug` form does not show it.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// At least 16 characters; `None` leaves `/metrics` unserved.
pub fn metrics_token(token: Option<String>) -> Result<Option<Secret>, ConfigError> {
    if token.as_deref().is_some_and(|token| token.len() < 16) {
        return Err(ConfigError::Invalid {
            key: "RESONANCE_METRICS_TOKEN (metrics_token)",
            expected: "at least 16 characters",
            got: "a shorter token".into(),
        });
    }
    Ok(token.map(Secret))
}

#[cfg(test)]
mod tests {
    use crate::config::tests::args;
    use crate::config::{Config, SettingsArgs};

    #[test]
    fn the_metrics_token_is_long_and_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resonance.toml");
        std::fs::write(&file, "metrics_token = \"scrape-me-0123456789\"\n").unwrap();
        let from_file = SettingsArgs {
            config: Some(file),
            ..args()
        };
        let cfg = Config::load(&from_file).unwrap();
        assert_eq!(
            cfg.metrics_token.as_ref().map(|t| t.0.as_str()),
            Some("scrape-me-0123456789")
        );
        assert!(!format!("{cfg:?}").contains("scrape-me"));
        let cfg = Config::load(&SettingsArgs {
            metrics_token: Some("flag-token-0123456789".into()),
            ..from_file
        })
        .unwrap();
        assert_eq!(cfg.metrics_token.unwrap().0, "flag-token-0123456789");
        assert!(Config::load(&args()).unwrap().metrics_token.is_none());
        let err = Config::load(&SettingsArgs {
            metrics_token: Some("tiny-token".into()),
            ..args()
        })
        .unwrap_err();
        assert!(err.to_string().contains("RESONANCE_METRICS_TOKEN"), "{err}");
        assert!(!err.to_string().contains("tiny-token"), "{err}");
    }
}
