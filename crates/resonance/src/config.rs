//! Configuration: `resonance.toml`, then `RESONANCE_*` environment variables, then
//! command-line flags, each overriding the one before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chatterbox::t3::Precision;
use clap::Args;
use resonance_db::Plan;
use resonance_service::billing::BillingSettings;
use resonance_service::billing::polar::{DEFAULT_API_URL, PolarSettings};
use resonance_web::ConnectionSettings;
use resonance_web::auth::IpNetwork;
use serde::Deserialize;

/// Settings a flag or environment variable can set; each is optional so the
/// configuration file and defaults fill what is left.
#[derive(Debug, Clone, Default, Args)]
pub struct SettingsArgs {
    /// Configuration file [default: ./resonance.toml when present]
    #[arg(long, env = "RESONANCE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:3000]
    #[arg(long, env = "RESONANCE_BIND", global = true)]
    pub bind: Option<String>,
    /// Folder for the SQLite database, local objects and model weights [default: ./data]
    #[arg(long, env = "RESONANCE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Folder holding the Chatterbox Turbo checkpoint [default: <data dir>/models/chatterbox-turbo]
    #[arg(long, env = "RESONANCE_MODEL_DIR", global = true)]
    pub model_dir: Option<PathBuf>,
    /// Database URL, sqlite://PATH or postgres://... [default: SQLite in the data folder]
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Public base URL users reach the server at (signed links, secure cookies)
    #[arg(long, env = "RESONANCE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// S3-compatible endpoint URL; setting a bucket switches storage to S3
    #[arg(long, env = "RESONANCE_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "RESONANCE_S3_REGION", global = true)]
    pub s3_region: Option<String>,
    #[arg(long, env = "RESONANCE_S3_BUCKET", global = true)]
    pub s3_bucket: Option<String>,
    #[arg(
        long,
        env = "RESONANCE_S3_ACCESS_KEY_ID",
        global = true,
        hide_env_values = true
    )]
    pub s3_access_key_id: Option<String>,
    #[arg(
        long,
        env = "RESONANCE_S3_SECRET_ACCESS_KEY",
        global = true,
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,
    /// Address buckets as BUCKET.ENDPOINT instead of ENDPOINT/BUCKET [default: false]
    #[arg(long, env = "RESONANCE_S3_VIRTUAL_HOSTED", global = true)]
    pub s3_virtual_hosted: Option<bool>,
    /// Log format: pretty or json [default: pretty]
    #[arg(long, env = "RESONANCE_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Largest accepted voice upload in bytes [default: 20971520, 20 MB]
    #[arg(long, env = "RESONANCE_VOICE_UPLOAD_MAX_BYTES", global = true)]
    pub voice_upload_max_bytes: Option<usize>,
    /// Reverse proxies (IPs or CIDR blocks, comma-separated) whose X-Forwarded-For names
    /// the client for per-IP sign-in limits [default: none, the header is ignored]
    #[arg(
        long,
        env = "RESONANCE_TRUSTED_PROXIES",
        global = true,
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// Host names users reach the server at (with the port unless it is the scheme's
    /// default), comma-separated: signed-in writes to any other Host are refused
    /// [default: any host]
    #[arg(
        long,
        env = "RESONANCE_ALLOWED_HOSTS",
        global = true,
        value_delimiter = ','
    )]
    pub allowed_hosts: Option<Vec<String>>,
    /// Seconds a client has to send a request's headers; also how long an idle connection
    /// stays open [default: 30]
    #[arg(long, env = "RESONANCE_HEADER_READ_TIMEOUT_SECS", global = true)]
    pub header_read_timeout_secs: Option<u64>,
    /// Longest pause, in seconds, while a request body arrives [default: 60]
    #[arg(long, env = "RESONANCE_BODY_READ_TIMEOUT_SECS", global = true)]
    pub body_read_timeout_secs: Option<u64>,
    /// Client connections served at once; more wait to be accepted [default: 1024]
    #[arg(long, env = "RESONANCE_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Speech engine: chatterbox (native), remote (the original's inference service) or
    /// none (no generation workers in this process) [default: chatterbox]
    #[arg(long, env = "RESONANCE_ENGINE", global = true)]
    pub engine: Option<String>,
    /// Base URL of the remote inference service (RESONANCE_ENGINE=remote)
    #[arg(long, env = "RESONANCE_REMOTE_URL", global = true)]
    pub remote_url: Option<String>,
    /// API key sent to the remote inference service as x-api-key
    #[arg(
        long,
        env = "RESONANCE_REMOTE_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub remote_api_key: Option<String>,
    /// Number format of the native engine's T3 weights: fp32 (exact), int8 or int4
    /// (faster, quantized at load) [default: fp32]
    #[arg(long, env = "RESONANCE_PRECISION", global = true)]
    pub precision: Option<String>,
    /// Syntheses the engine runs at once [default: 1 for chatterbox, 4 for remote]
    #[arg(long, env = "RESONANCE_ENGINE_CONCURRENCY", global = true)]
    pub engine_concurrency: Option<usize>,
    /// Generation workers `serve` runs in-process; 0 leaves jobs to `resonance worker`
    /// [default: 1]
    #[arg(long, env = "RESONANCE_WORKERS", global = true)]
    pub workers: Option<usize>,
    /// Default plan: characters an organization may speak per calendar month (UTC), or
    /// `unlimited` [default: unlimited]
    #[arg(long, env = "RESONANCE_PLAN_CHARACTERS_PER_MONTH", global = true)]
    pub plan_characters_per_month: Option<Limit>,
    /// Default plan: custom voices an organization may keep, or `unlimited` [default: unlimited]
    #[arg(long, env = "RESONANCE_PLAN_VOICE_SLOTS", global = true)]
    pub plan_voice_slots: Option<Limit>,
    /// Default plan: generations an organization may have queued or running at once, or
    /// `unlimited` [default: unlimited]
    #[arg(long, env = "RESONANCE_PLAN_MAX_CONCURRENT_JOBS", global = true)]
    pub plan_max_concurrent_jobs: Option<Limit>,
    /// Polar organization access token; setting it turns on billing with Polar
    #[arg(
        long,
        env = "RESONANCE_POLAR_ACCESS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub polar_access_token: Option<String>,
    /// Polar product ids, comma-separated: subscriptions to them count, checkout offers them
    #[arg(
        long,
        env = "RESONANCE_POLAR_PRODUCT_IDS",
        global = true,
        value_delimiter = ','
    )]
    pub polar_product_ids: Option<Vec<String>>,
    /// Polar API base URL; https://sandbox-api.polar.sh for the sandbox [default: https://api.polar.sh]
    #[arg(long, env = "RESONANCE_POLAR_API_URL", global = true)]
    pub polar_api_url: Option<String>,
    /// Bearer token that `GET /metrics` (Prometheus) asks for; unset, it is not served
    #[arg(
        long,
        env = "RESONANCE_METRICS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
}

/// A plan limit: a number, or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

impl std::str::FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "unlimited" => Ok(Self(None)),
            number => number
                .parse()
                .map(|n| Self(Some(n)))
                .map_err(|_| format!("expected a whole number or `unlimited`, got {s:?}")),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Self(Some(n))),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The `resonance.toml` file. Keys mirror the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<String>,
    data_dir: Option<PathBuf>,
    model_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    log_format: Option<String>,
    voice_upload_max_bytes: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
    allowed_hosts: Option<Vec<String>>,
    header_read_timeout_secs: Option<u64>,
    body_read_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    engine: Option<String>,
    remote_url: Option<String>,
    remote_api_key: Option<String>,
    precision: Option<String>,
    engine_concurrency: Option<usize>,
    workers: Option<usize>,
    #[serde(default)]
    s3: FileS3,
    #[serde(default)]
    plan: FilePlan,
    #[serde(default)]
    polar: FilePolar,
    metrics_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePlan {
    characters_per_month: Option<Limit>,
    voice_slots: Option<Limit>,
    max_concurrent_jobs: Option<Limit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePolar {
    access_token: Option<String>,
    product_ids: Option<Vec<String>>,
    api_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileS3 {
    endpoint: Option<String>,
    region: Option<String>,
    bucket: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    virtual_hosted: Option<bool>,
}

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
    /// T3's weights in the native engine (`serve`, `worker`, `say`).
    pub precision: Precision,
    /// Generation workers `serve` runs in-process.
    pub workers: usize,
    /// The default plan and, when configured, Polar.
    pub billing: BillingSettings,
    /// The bearer token `/metrics` asks for; `None` leaves it unserved.
    pub metrics_token: Option<Secret>,
}

/// A secret setting; its `Debug` form does not show it.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone)]
pub enum EngineConfig {
    Chatterbox {
        concurrency: usize,
    },
    Remote {
        url: String,
        api_key: String,
        concurrency: usize,
    },
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Chatterbox { concurrency } => f
                .debug_struct("Chatterbox")
                .field("concurrency", concurrency)
                .finish(),
            Self::Remote {
                url, concurrency, ..
            } => f
                .debug_struct("Remote")
                .field("url", url)
                .field("concurrency", concurrency)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum StorageConfig {
    Local { root: PathBuf },
    S3(S3Config),
}

#[derive(Clone)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub virtual_hosted: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("virtual_hosted", &self.virtual_hosted)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
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
        let file = read_file(args.config.as_deref())?;
        let s3 = file.s3;

        let bind_text = args
            .bind
            .clone()
            .or(file.bind)
            .unwrap_or_else(|| "127.0.0.1:3000".into());
        let bind = bind_text.parse().map_err(|_| ConfigError::Invalid {
            key: "RESONANCE_BIND (bind)",
            expected: "an address with a port, like 127.0.0.1:3000",
            got: bind_text.clone(),
        })?;

        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let model_dir = args
            .model_dir
            .clone()
            .or(file.model_dir)
            .unwrap_or_else(|| data_dir.join("models").join("chatterbox-turbo"));
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("resonance.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                key: "DATABASE_URL (database_url)",
                expected: "sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB",
                got: redact_url(&database_url),
            });
        }

        let public_url = args.public_url.clone().or(file.public_url);
        if let Some(url) = &public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                key: "RESONANCE_PUBLIC_URL (public_url)",
                expected: "an http:// or https:// URL",
                got: url.clone(),
            });
        }

        let bucket = args.s3_bucket.clone().or(s3.bucket);
        let storage = match bucket {
            None => StorageConfig::Local {
                root: data_dir.join("objects"),
            },
            Some(bucket) => StorageConfig::S3(S3Config {
                endpoint: args.s3_endpoint.clone().or(s3.endpoint),
                region: args
                    .s3_region
                    .clone()
                    .or(s3.region)
                    .unwrap_or_else(|| "auto".into()),
                bucket,
                access_key_id: args.s3_access_key_id.clone().or(s3.access_key_id).ok_or(
                    ConfigError::Missing {
                        key: "RESONANCE_S3_ACCESS_KEY_ID (s3.access_key_id)",
                        why: "required when an S3 bucket is configured",
                    },
                )?,
                secret_access_key: args
                    .s3_secret_access_key
                    .clone()
                    .or(s3.secret_access_key)
                    .ok_or(ConfigError::Missing {
                        key: "RESONANCE_S3_SECRET_ACCESS_KEY (s3.secret_access_key)",
                        why: "required when an S3 bucket is configured",
                    })?,
                virtual_hosted: args
                    .s3_virtual_hosted
                    .or(s3.virtual_hosted)
                    .unwrap_or(false),
            }),
        };

        let log_format = match args.log_format.clone().or(file.log_format).as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "RESONANCE_LOG_FORMAT (log_format)",
                    expected: "pretty or json",
                    got: other.to_string(),
                });
            }
        };

        let voice_upload_max_bytes = args
            .voice_upload_max_bytes
            .or(file.voice_upload_max_bytes)
            .unwrap_or(resonance_web::voices::DEFAULT_UPLOAD_MAX_BYTES);

        let trusted_proxies = args
            .trusted_proxies
            .clone()
            .or(file.trusted_proxies)
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                entry.parse().map_err(|_| ConfigError::Invalid {
                    key: "RESONANCE_TRUSTED_PROXIES (trusted_proxies)",
                    expected: "IP addresses or CIDR blocks, like 10.0.0.0/8",
                    got: entry.clone(),
                })
            })
            .collect::<Result<_, _>>()?;

        let precision = match args.precision.clone().or(file.precision) {
            None => Precision::default(),
            Some(text) => text.parse().map_err(|_| ConfigError::Invalid {
                key: "RESONANCE_PRECISION (precision)",
                expected: "fp32, int8 or int4",
                got: text,
            })?,
        };
        let allowed_hosts = args
            .allowed_hosts
            .clone()
            .or(file.allowed_hosts)
            .unwrap_or_default()
            .iter()
            .map(|host| host.trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .collect();
        let connections = connection_settings(
            args.header_read_timeout_secs
                .or(file.header_read_timeout_secs),
            args.body_read_timeout_secs.or(file.body_read_timeout_secs),
            args.max_connections.or(file.max_connections),
        )?;

        let concurrency = args.engine_concurrency.or(file.engine_concurrency);
        if concurrency == Some(0) {
            return Err(ConfigError::Invalid {
                key: "RESONANCE_ENGINE_CONCURRENCY (engine_concurrency)",
                expected: "at least 1",
                got: "0".into(),
            });
        }
        let engine =
            match args.engine.clone().or(file.engine).as_deref() {
                Some("none") => None,
                None | Some("chatterbox") => Some(EngineConfig::Chatterbox {
                    concurrency: concurrency.unwrap_or(1),
                }),
                Some("remote") => {
                    let url = args.remote_url.clone().or(file.remote_url).ok_or(
                        ConfigError::Missing {
                            key: "RESONANCE_REMOTE_URL (remote_url)",
                            why: "required when RESONANCE_ENGINE=remote",
                        },
                    )?;
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(ConfigError::Invalid {
                            key: "RESONANCE_REMOTE_URL (remote_url)",
                            expected: "an http:// or https:// URL",
                            got: url,
                        });
                    }
                    let api_key = args.remote_api_key.clone().or(file.remote_api_key).ok_or(
                        ConfigError::Missing {
                            key: "RESONANCE_REMOTE_API_KEY (remote_api_key)",
                            why: "required when RESONANCE_ENGINE=remote",
                        },
                    )?;
                    Some(EngineConfig::Remote {
                        url,
                        api_key,
                        concurrency: concurrency.unwrap_or(4),
                    })
                }
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        key: "RESONANCE_ENGINE (engine)",
                        expected: "chatterbox, remote or none",
                        got: other.to_string(),
                    });
                }
            };
        let plan = file.plan;
        let default_plan = Plan {
            characters_per_month: args
                .plan_characters_per_month
                .or(plan.characters_per_month)
                .and_then(|limit| limit.0),
            voice_slots: args
                .plan_voice_slots
                .or(plan.voice_slots)
                .and_then(|limit| limit.0),
            max_concurrent_jobs: args
                .plan_max_concurrent_jobs
                .or(plan.max_concurrent_jobs)
                .and_then(|limit| limit.0),
        };
        let metrics_token = args.metrics_token.clone().or(file.metrics_token);
        if metrics_token
            .as_deref()
            .is_some_and(|token| token.len() < 16)
        {
            return Err(ConfigError::Invalid {
                key: "RESONANCE_METRICS_TOKEN (metrics_token)",
                expected: "at least 16 characters",
                got: "a shorter token".into(),
            });
        }
        let billing = BillingSettings {
            default_plan,
            polar: polar_settings(args, file.polar)?,
            ..BillingSettings::default()
        };

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
            precision,
            workers: args.workers.or(file.workers).unwrap_or(1),
            billing,
            metrics_token: metrics_token.map(Secret),
        })
    }
}

/// Connection timeouts and cap; each must be positive.
fn connection_settings(
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

/// Polar when an access token is configured; it then needs product ids.
fn polar_settings(
    args: &SettingsArgs,
    file: FilePolar,
) -> Result<Option<PolarSettings>, ConfigError> {
    let Some(access_token) = args.polar_access_token.clone().or(file.access_token) else {
        return Ok(None);
    };
    let product_ids: Vec<String> = args
        .polar_product_ids
        .clone()
        .or(file.product_ids)
        .unwrap_or_default()
        .into_iter()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
        .collect();
    if product_ids.is_empty() {
        return Err(ConfigError::Missing {
            key: "RESONANCE_POLAR_PRODUCT_IDS (polar.product_ids)",
            why: "required when a Polar access token is configured",
        });
    }
    let api_url = args
        .polar_api_url
        .clone()
        .or(file.api_url)
        .unwrap_or_else(|| DEFAULT_API_URL.to_string());
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(ConfigError::Invalid {
            key: "RESONANCE_POLAR_API_URL (polar.api_url)",
            expected: "an http:// or https:// URL",
            got: api_url,
        });
    }
    Ok(Some(PolarSettings {
        access_token,
        product_ids,
        api_url,
    }))
}

fn read_file(path: Option<&Path>) -> Result<FileSettings, ConfigError> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from("resonance.toml"), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(FileSettings::default());
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

    fn args() -> SettingsArgs {
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

    #[test]
    fn remote_engine_needs_url_and_key_and_hides_the_key() {
        let err = Config::load(&SettingsArgs {
            engine: Some("remote".into()),
            ..args()
        })
        .unwrap_err();
        assert!(err.to_string().contains("RESONANCE_REMOTE_URL"), "{err}");
        let config = Config::load(&SettingsArgs {
            engine: Some("remote".into()),
            remote_url: Some("http://gpu:8000".into()),
            remote_api_key: Some("hunter2".into()),
            workers: Some(0),
            ..args()
        })
        .unwrap();
        assert_eq!(config.workers, 0);
        assert!(matches!(
            &config.engine,
            Some(EngineConfig::Remote { url, concurrency: 4, .. }) if url == "http://gpu:8000"
        ));
        assert!(!format!("{config:?}").contains("hunter2"));
        let err = Config::load(&SettingsArgs {
            engine: Some("gpt".into()),
            ..args()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("chatterbox, remote or none"),
            "{err}"
        );
        assert!(matches!(
            Config::load(&args()).unwrap().engine,
            Some(EngineConfig::Chatterbox { concurrency: 1 })
        ));
        let none = Config::load(&SettingsArgs {
            engine: Some("none".into()),
            ..args()
        });
        assert!(none.unwrap().engine.is_none());
    }

    #[test]
    fn the_default_plan_is_unlimited_and_set_by_file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::load(&SettingsArgs {
            data_dir: Some(dir.path().into()),
            ..args()
        })
        .unwrap();
        assert_eq!(cfg.billing.default_plan, Plan::default());
        assert!(cfg.billing.polar.is_none());

        let file = dir.path().join("resonance.toml");
        std::fs::write(
            &file,
            "[plan]\ncharacters_per_month = 100000\nvoice_slots = 3\nmax_concurrent_jobs = \"unlimited\"\n",
        )
        .unwrap();
        let cfg = Config::load(&SettingsArgs {
            config: Some(file),
            plan_voice_slots: Some("unlimited".parse().unwrap()),
            plan_max_concurrent_jobs: Some("2".parse().unwrap()),
            ..args()
        })
        .unwrap();
        assert_eq!(
            cfg.billing.default_plan,
            Plan {
                characters_per_month: Some(100_000),
                voice_slots: None,
                max_concurrent_jobs: Some(2),
            }
        );
        assert!("-3".parse::<Limit>().is_err());
    }

    #[test]
    fn polar_needs_product_ids_and_hides_its_token() {
        let err = Config::load(&SettingsArgs {
            polar_access_token: Some("polar_oat_secret".into()),
            ..args()
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("RESONANCE_POLAR_PRODUCT_IDS"),
            "{err}"
        );
        let cfg = Config::load(&SettingsArgs {
            polar_access_token: Some("polar_oat_secret".into()),
            polar_product_ids: Some(vec!["prod_a".into(), " ".into()]),
            ..args()
        })
        .unwrap();
        let polar = cfg.billing.polar.as_ref().unwrap();
        assert_eq!(polar.product_ids, ["prod_a"]);
        assert_eq!(polar.api_url, "https://api.polar.sh");
        assert!(!format!("{cfg:?}").contains("polar_oat_secret"));
    }

    #[test]
    fn precision_defaults_to_fp32_and_is_set_by_file_then_flags() {
        assert_eq!(Config::load(&args()).unwrap().precision, Precision::Fp32);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resonance.toml");
        std::fs::write(&file, "precision = \"int8\"\n").unwrap();
        let from_file = Config::load(&SettingsArgs {
            config: Some(file.clone()),
            ..args()
        });
        assert_eq!(from_file.unwrap().precision, Precision::Int8);
        let from_flag = Config::load(&SettingsArgs {
            config: Some(file),
            precision: Some("int4".into()),
            ..args()
        });
        assert_eq!(from_flag.unwrap().precision, Precision::Int4);
        let err = Config::load(&SettingsArgs {
            precision: Some("fp16".into()),
            ..args()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("RESONANCE_PRECISION") && err.contains("fp32, int8 or int4"),
            "{err}"
        );
    }

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

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
    }
}
