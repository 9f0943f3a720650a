//! The `resonance.toml` file, and the flags and environment variables laid over it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::billing::{PlanTable, PolarTable};
use super::mail::SmtpTable;
use super::storage::S3Table;
use super::{ConfigError, SettingsArgs};

/// Every setting as written, before defaults and validation. Keys mirror the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub model_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub log_format: Option<String>,
    pub voice_upload_max_bytes: Option<usize>,
    pub trusted_proxies: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub header_read_timeout_secs: Option<u64>,
    pub body_read_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub engine: Option<String>,
    pub remote_url: Option<String>,
    pub remote_api_key: Option<String>,
    pub device: Option<String>,
    pub precision: Option<String>,
    pub s3gen_precision: Option<String>,
    pub model: Option<String>,
    pub engine_concurrency: Option<usize>,
    pub workers: Option<usize>,
    #[serde(default)]
    pub s3: S3Table,
    #[serde(default)]
    pub plan: PlanTable,
    #[serde(default)]
    pub polar: PolarTable,
    pub metrics_token: Option<String>,
    #[serde(default)]
    pub smtp: SmtpTable,
}

impl Settings {
    /// The file at `path`, or `./resonance.toml` when there is one; no settings without.
    pub fn read(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("resonance.toml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default());
            }
            Err(source) => {
                return Err(ConfigError::ReadFile {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// These settings with each one a flag or environment variable gives in its place.
    pub fn overridden_by(self, args: &SettingsArgs) -> Self {
        Self {
            bind: args.bind.clone().or(self.bind),
            data_dir: args.data_dir.clone().or(self.data_dir),
            model_dir: args.model_dir.clone().or(self.model_dir),
            database_url: args.database_url.clone().or(self.database_url),
            public_url: args.public_url.clone().or(self.public_url),
            log_format: args.log_format.clone().or(self.log_format),
            voice_upload_max_bytes: args.voice_upload_max_bytes.or(self.voice_upload_max_bytes),
            trusted_proxies: args.trusted_proxies.clone().or(self.trusted_proxies),
            allowed_hosts: args.allowed_hosts.clone().or(self.allowed_hosts),
            header_read_timeout_secs: args
                .header_read_timeout_secs
                .or(self.header_read_timeout_secs),
            body_read_timeout_secs: args.body_read_timeout_secs.or(self.body_read_timeout_secs),
            max_connections: args.max_connections.or(self.max_connections),
            engine: args.engine.clone().or(self.engine),
            remote_url: args.remote_url.clone().or(self.remote_url),
            remote_api_key: args.remote_api_key.clone().or(self.remote_api_key),
            device: args.device.clone().or(self.device),
            precision: args.precision.clone().or(self.precision),
            s3gen_precision: args.s3gen_precision.clone().or(self.s3gen_precision),
            model: args.model.clone().or(self.model),
            engine_concurrency: args.engine_concurrency.or(self.engine_concurrency),
            workers: args.workers.or(self.workers),
            s3: S3Table {
                endpoint: args.s3_endpoint.clone().or(self.s3.endpoint),
                region: args.s3_region.clone().or(self.s3.region),
                bucket: args.s3_bucket.clone().or(self.s3.bucket),
                access_key_id: args.s3_access_key_id.clone().or(self.s3.access_key_id),
                secret_access_key: args
                    .s3_secret_access_key
                    .clone()
                    .or(self.s3.secret_access_key),
                virtual_hosted: args.s3_virtual_hosted.or(self.s3.virtual_hosted),
            },
            plan: PlanTable {
                characters_per_month: args
                    .plan_characters_per_month
                    .or(self.plan.characters_per_month),
                voice_slots: args.plan_voice_slots.or(self.plan.voice_slots),
                max_concurrent_jobs: args
                    .plan_max_concurrent_jobs
                    .or(self.plan.max_concurrent_jobs),
            },
            polar: PolarTable {
                access_token: args.polar_access_token.clone().or(self.polar.access_token),
                product_ids: args.polar_product_ids.clone().or(self.polar.product_ids),
                api_url: args.polar_api_url.clone().or(self.polar.api_url),
            },
            metrics_token: args.metrics_token.clone().or(self.metrics_token),
            smtp: SmtpTable {
                host: args.smtp_host.clone().or(self.smtp.host),
                port: args.smtp_port.or(self.smtp.port),
                username: args.smtp_username.clone().or(self.smtp.username),
                password: args.smtp_password.clone().or(self.smtp.password),
                from: args.smtp_from.clone().or(self.smtp.from),
                tls: args.smtp_tls.clone().or(self.smtp.tls),
            },
        }
    }
}
