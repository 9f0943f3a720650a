//! The database: SQLite in the data folder unless a URL names another.

use std::path::Path;

use super::ConfigError;

/// `sqlite:...`, `postgres://...` or `postgresql://...`.
pub fn database_url(url: Option<String>, data_dir: &Path) -> Result<String, ConfigError> {
    let url =
        url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("resonance.db").display()));
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        return Err(ConfigError::Invalid {
            key: "DATABASE_URL (database_url)",
            expected: "sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB",
            got: redact_url(&url),
        });
    }
    Ok(url)
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
    }
}
