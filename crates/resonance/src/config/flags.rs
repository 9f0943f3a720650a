//! The flags, each of which an environment variable can give instead.

use std::path::PathBuf;

use clap::Args;

use super::Limit;

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
    /// Speech engine: chatterbox (native), remote (a separate inference service) or
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
    /// Where the native engine computes: auto (the first CUDA GPU when the build has the
    /// cuda feature and the machine a GPU, else the CPU), cpu, cuda or cuda:N
    /// [default: auto]
    #[arg(long, env = "RESONANCE_DEVICE", global = true)]
    pub device: Option<String>,
    /// Number format of the native engine's T3: fp32 (exact), bf16 or fp16 (for GPUs),
    /// int8 or int4 (faster, quantized at load) [default: int8 on a CPU, fp16 on a GPU]
    #[arg(long, env = "RESONANCE_PRECISION", global = true)]
    pub precision: Option<String>,
    /// Number format of the native engine's S3Gen products: bf16 (faster, on CPUs with
    /// AVX-512 BF16; fp32 elsewhere) or fp32 (exact) [default: bf16]
    #[arg(long, env = "RESONANCE_S3GEN_PRECISION", global = true)]
    pub s3gen_precision: Option<String>,
    /// The model spoken with when a request names none, and the one `serve`, `worker`
    /// and `model download` fetch: chatterbox-turbo or chatterbox-nano (a model whose
    /// T3 is in the model folder is served too) [default: chatterbox-turbo]
    #[arg(long, env = "RESONANCE_MODEL", global = true)]
    pub model: Option<String>,
    /// Syntheses the engine runs at once; the native engine decodes their T3 together
    /// [default: 1 for chatterbox, 4 for remote]
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
    /// SMTP server that emails password reset links; unset, no email is sent and the
    /// operator hands out reset links
    #[arg(long, env = "RESONANCE_SMTP_HOST", global = true)]
    pub smtp_host: Option<String>,
    /// SMTP port [default: 587 with starttls, 465 with tls, 25 with none]
    #[arg(long, env = "RESONANCE_SMTP_PORT", global = true)]
    pub smtp_port: Option<u16>,
    /// Account to sign in to the SMTP server with
    #[arg(long, env = "RESONANCE_SMTP_USERNAME", global = true)]
    pub smtp_username: Option<String>,
    /// Password of the SMTP account
    #[arg(
        long,
        env = "RESONANCE_SMTP_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub smtp_password: Option<String>,
    /// Sender of emails, like "Resonance <no-reply@example.com>"; required with a host
    #[arg(long, env = "RESONANCE_SMTP_FROM", global = true)]
    pub smtp_from: Option<String>,
    /// Encryption of the SMTP connection: starttls, tls (from the first byte) or none
    /// [default: starttls]
    #[arg(long, env = "RESONANCE_SMTP_TLS", global = true)]
    pub smtp_tls: Option<String>,
}
