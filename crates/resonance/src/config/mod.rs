//! Configuration: `resonance.toml`, then `RESONANCE_*` environment variables, then
//! command-line flags, each overriding the one before. Flags and environment variables are
//! read together by clap ([`SettingsArgs`]) and laid over the file's [`Settings`]; each
//! section's module then gives what is still unset its default and checks it.

mod billing;
mod database;
mod engine;
mod file;
mod flags;
mod mail;
mod observability;
mod server;
mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;

use chatterbox::s3gen::S3GenPrecision;
use chatterbox::t3::Precision;
use resonance_domain::SpeechModel;
use resonance_engine::native::DeviceSetting;
use resonance_service::billing::BillingSettings;
use resonance_service::mail::SmtpSettings;
use resonance_web::ConnectionSettings;
use resonance_web::auth::IpNetwork;

pub use billing::Limit;
pub use database::redact_url;
pub use engine::EngineConfig;
use file::Settings;
pub use flags::SettingsArgs;
pub use observability::{LogFormat, Secret};
pub use storage::StorageConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub model_dir: PathBuf,
    pub database_url: String,
    pub public_url: Option<String>,
    pub storage: StorageConfig,
    pub log_format: LogFormat,
    pub voice_upload_max_bytes: usize,
    pub trusted_proxies: Vec<IpNetwork>,
    /// Lowercase host names signed-in writes may be sent to; any when empty.
    pub allowed_hosts: Vec<String>,
    /// Timeouts and the cap on client connections.
    pub connections: ConnectionSettings,
    /// `None` for `none`: this process runs no generation workers.
    pub engine: Option<EngineConfig>,
    /// Where the native engine computes (`serve`, `worker`, `say`).
    pub device: DeviceSetting,
    /// T3's number format in the native engine (`serve`, `worker`, `say`); `None`: the
    /// device's default ([`Precision::default_for`]).
    pub precision: Option<Precision>,
    /// S3Gen's number format in the native engine (`serve`, `worker`, `say`).
    pub s3gen_precision: S3GenPrecision,
    /// The default model (`serve`, `worker`, `say`, `model download`).
    pub model: SpeechModel,
    /// Generation workers `serve` runs in-process.
    pub workers: usize,
    /// The default plan and, when configured, Polar.
    pub billing: BillingSettings,
    /// The bearer token `/metrics` asks for; `None` leaves it unserved.
    pub metrics_token: Option<Secret>,
    /// The SMTP server that emails password reset links; `None` sends no email.
    pub smtp: Option<SmtpSettings>,
}

/// A setting that is missing or malformed, named as the user would write it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    ReadFile {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    ParseFile { path: String, message: String },
    #[error("invalid {key}: expected {expected}, got {got:?}")]
    Invalid {
        key: &'static str,
        expected: &'static str,
        got: String,
    },
    #[error("missing {key}: {why}")]
    Missing {
        key: &'static str,
        why: &'static str,
    },
}

impl Config {
    pub fn load(args: &SettingsArgs) -> Result<Self, ConfigError> {
        let settings = Settings::read(args.config.as_deref())?.overridden_by(args);
        let bind = server::bind(settings.bind)?;
        let data_dir = storage::data_dir(settings.data_dir);
        let model_dir = engine::model_dir(settings.model_dir, &data_dir);
        let database_url = database::database_url(settings.database_url, &data_dir)?;
        let public_url = server::public_url(settings.public_url)?;
        let storage = storage::storage(settings.s3, &data_dir)?;
        let log_format = observability::log_format(settings.log_format.as_deref())?;
        let voice_upload_max_bytes =
            server::voice_upload_max_bytes(settings.voice_upload_max_bytes);
        let trusted_proxies = server::trusted_proxies(settings.trusted_proxies)?;
        let device = engine::device(settings.device)?;
        let precision = engine::precision(settings.precision)?;
        let s3gen_precision = engine::s3gen_precision(settings.s3gen_precision)?;
        let model = engine::model(settings.model)?;
        let allowed_hosts = server::allowed_hosts(settings.allowed_hosts);
        let connections = server::connections(
            settings.header_read_timeout_secs,
            settings.body_read_timeout_secs,
            settings.max_connections,
        )?;
        let workers = engine::workers(settings.workers);
        let engine = engine::engine(
            settings.engine.as_deref(),
            settings.remote_url,
            settings.remote_api_key,
            settings.engine_concurrency,
        )?;
        let metrics_token = observability::metrics_token(settings.metrics_token)?;
        let billing = billing::billing(settings.plan, settings.polar)?;
        let smtp = mail::smtp(settings.smtp, public_url.as_deref())?;
        Ok(Self {
            bind,
            data_dir,
            model_dir,
            database_url,
            public_url,
            storage,
            log_format,
            voice_upload_max_bytes,
            trusted_proxies,
            allowed_hosts,
            connections,
            engine,
            device,
            precision,
            s3gen_precision,
            model,
            workers,
            billing,
            metrics_token,
            smtp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn args() -> SettingsArgs {
        SettingsArgs::default()
    }

    #[test]
    fn defaults_need_no_setup() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::load(&SettingsArgs {
            data_dir: Some(dir.path().into()),
            ..args()
        })
        .unwrap();
        assert_eq!(cfg.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(cfg.model_dir, dir.path().join("models/chatterbox-turbo"));
        assert!(cfg.database_url.starts_with("sqlite://"));
        assert!(matches!(cfg.storage, StorageConfig::Local { .. }));
        assert_eq!(cfg.voice_upload_max_bytes, 20 * 1024 * 1024);
    }

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resonance.toml");
        std::fs::write(&file, "bind = \"0.0.0.0:8080\"\ndata_dir = \"/srv/x\"\nmodel_dir = \"/models/turbo\"\nvoice_upload_max_bytes = 1000\n[s3]\nbucket = \"b\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\n").unwrap();
        let cfg = Config::load(&SettingsArgs {
            config: Some(file.clone()),
            bind: Some("127.0.0.1:9000".into()),
            ..args()
        })
        .unwrap();
        assert_eq!(cfg.bind.to_string(), "127.0.0.1:9000");
        assert_eq!(cfg.data_dir, PathBuf::from("/srv/x"));
        assert_eq!(cfg.model_dir, PathBuf::from("/models/turbo"));
        let cfg = Config::load(&SettingsArgs {
            config: Some(file.clone()),
            model_dir: Some("/elsewhere".into()),
            ..args()
        })
        .unwrap();
        assert_eq!(cfg.model_dir, PathBuf::from("/elsewhere"));
        assert_eq!(cfg.voice_upload_max_bytes, 1000);
        let StorageConfig::S3(s3) = cfg.storage else {
            panic!("expected S3 storage")
        };
        assert_eq!((s3.bucket.as_str(), s3.region.as_str()), ("b", "auto"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::load(&SettingsArgs {
            bind: Some("nope".into()),
            ..args()
        })
        .unwrap_err();
        assert!(err.to_string().contains("RESONANCE_BIND"), "{err}");
        let err = Config::load(&SettingsArgs {
            database_url: Some("mysql://x".into()),
            ..args()
        })
        .unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
        let err = Config::load(&SettingsArgs {
            s3_bucket: Some("b".into()),
            ..args()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("RESONANCE_S3_ACCESS_KEY_ID"),
            "{err}"
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resonance.toml");
        std::fs::write(&file, "bnid = \"x\"\n").unwrap();
        let err = Config::load(&SettingsArgs {
            config: Some(file),
            ..args()
        })
        .unwrap_err();
        assert!(err.to_string().contains("bnid"), "{err}");
    }
}
