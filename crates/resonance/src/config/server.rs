//! The HTTP server: where it listens, the address users reach it at, whom it trusts, how
//! long it waits for clients and how large an upload it takes.

use std::net::SocketAddr;
use std::time::Duration;

use resonance_web::ConnectionSettings;
use resonance_web::auth::IpNetwork;

use super::ConfigError;

pub fn bind(text: Option<String>) -> Result<SocketAddr, ConfigError> {
    let text = text.unwrap_or_else(|| "127.0.0.1:3000".into());
    text.parse().map_err(|_| ConfigError::Invalid {
        key: "RESONANCE_BIND (bind)",
        expected: "an address with a port, like 127.0.0.1:3000",
        got: text.clone(),
    })
}

pub fn public_url(url: Option<String>) -> Result<Option<String>, ConfigError> {
    if let Some(url) = &url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ConfigError::Invalid {
            key: "RESONANCE_PUBLIC_URL (public_url)",
            expected: "an http:// or https:// URL",
            got: url.clone(),
        });
    }
    Ok(url)
}

pub fn voice_upload_max_bytes(bytes: Option<usize>) -> usize {
    bytes.unwrap_or(resonance_web::voices::DEFAULT_UPLOAD_MAX_BYTES)
}

pub fn trusted_proxies(entries: Option<Vec<String>>) -> Result<Vec<IpNetwork>, ConfigError> {
    entries
        .unwrap_or_default()
        .iter()
        .map(|entry| {
            entry.parse().map_err(|_| ConfigError::Invalid {
                key: "RESONANCE_TRUSTED_PROXIES (trusted_proxies)",
                expected: "IP addresses or CIDR blocks, like 10.0.0.0/8",
                got: entry.clone(),
            })
        })
        .collect()
}

/// Lowercase, without blanks; none allows any host.
pub fn allowed_hosts(hosts: Option<Vec<String>>) -> Vec<String> {
    hosts
        .unwrap_or_default()
        .iter()
        .map(|host| host.trim().to_ascii_lowercase())
        .filter(|host| !host.is_empty())
        .collect()
}

/// Connection timeouts and cap; each must be positive.
pub fn connections(
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
) -> Result<ConnectionSettings, ConfigError> {
    let defaults = ConnectionSettings::default();
    let positive = |value: Option<u64>, key: &'static str| match value {
        Some(0) => Err(ConfigError::Invalid {
            key,
            expected: "at least 1",
            got: "0".into(),
        }),
        other => Ok(other),
    };
    let seconds = |value: Option<u64>, key, default: Duration| {
        Ok::<_, ConfigError>(positive(value, key)?.map_or(default, Duration::from_secs))
    };
    Ok(ConnectionSettings {
        header_read_timeout: seconds(
            header_read_timeout_secs,
            "RESONANCE_HEADER_READ_TIMEOUT_SECS (header_read_timeout_secs)",
            defaults.header_read_timeout,
        )?,
        body_read_timeout: seconds(
            body_read_timeout_secs,
            "RESONANCE_BODY_READ_TIMEOUT_SECS (body_read_timeout_secs)",
            defaults.body_read_timeout,
        )?,
        max_connections: positive(
            max_connections.map(|n| n as u64),
            "RESONANCE_MAX_CONNECTIONS (max_connections)",
        )?
        .map_or(defaults.max_connections, |n| n as usize),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::tests::args;
    use crate::config::{Config, SettingsArgs};

    #[test]
    fn trusted_proxies_come_from_the_file_or_a_flag() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resonance.toml");
        std::fs::write(&file, "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n").unwrap();
        let cfg = Config::load(&SettingsArgs {
            config: Some(file.clone()),
            ..args()
        })
        .unwrap();
        let proxy = |ip: &str| {
            cfg.trusted_proxies
                .iter()
                .any(|n| n.contains(ip.parse().unwrap()))
        };
        assert!(proxy("10.1.2.3") && proxy("192.0.2.7") && !proxy("192.0.2.8"));
        let cfg = Config::load(&SettingsArgs {
            config: Some(file.clone()),
            trusted_proxies: Some(vec!["fd00::/8".into()]),
            ..args()
        })
        .unwrap();
        assert_eq!(cfg.trusted_proxies, vec!["fd00::/8".parse().unwrap()]);
        assert!(Config::load(&args()).unwrap().trusted_proxies.is_empty());
        let err = Config::load(&SettingsArgs {
            trusted_proxies: Some(vec!["10.0.0.0/33".into()]),
            ..args()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("RESONANCE_TRUSTED_PROXIES"),
            "{err}"
        );
    }

    #[test]
    fn connection_limits_and_allowed_hosts_come_from_the_file_or_flags() {
        let defaults = Config::load(&args()).unwrap();
        assert_eq!(
            defaults.connections.header_read_timeout,
            Duration::from_secs(30)
        );
        assert_eq!(
            defaults.connections.body_read_timeout,
            Duration::from_secs(60)
        );
        assert_eq!(defaults.connections.max_connections, 1024);
        assert!(defaults.allowed_hosts.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resonance.toml");
        std::fs::write(
            &file,
            "header_read_timeout_secs = 5\nmax_connections = 200\nallowed_hosts = [\"TTS.example\", \"localhost:3000\"]\n",
        )
        .unwrap();
        let cfg = Config::load(&SettingsArgs {
            config: Some(file),
            body_read_timeout_secs: Some(7),
            ..args()
        })
        .unwrap();
        assert_eq!(cfg.connections.header_read_timeout, Duration::from_secs(5));
        assert_eq!(cfg.connections.body_read_timeout, Duration::from_secs(7));
        assert_eq!(cfg.connections.max_connections, 200);
        assert_eq!(cfg.allowed_hosts, ["tts.example", "localhost:3000"]);

        let err = Config::load(&SettingsArgs {
            max_connections: Some(0),
            ..args()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("RESONANCE_MAX_CONNECTIONS"),
            "{err}"
        );
    }
}
