//! `resonance serve`, `resonance worker` and `resonance migrate`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use resonance_db::Database;
use resonance_storage::Storage;
use resonance_web::AppState;
use resonance_web::auth::AuthSettings;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, EngineConfig, LogFormat, SettingsArgs, StorageConfig, redact_url};
use resonance_engine::SpeechEngine;
use resonance_engine::remote::RemoteEngine;
use resonance_web::generations::worker::{Worker, WorkerSettings};

pub async fn serve(args: &SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args)?;
    init_logging(config.log_format);
    let state = open(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {} (RESONANCE_BIND)", config.bind))?;
    let workers = match (config.workers, speech_engine(&config)?) {
        (0, _) => Vec::new(),
        (count, Some(engine)) => worker(&state, engine).spawn(&worker_name("serve"), count),
        (_, None) => {
            tracing::warn!(
                "{NO_ENGINE}; generations stay queued until a worker with an engine runs"
            );
            Vec::new()
        }
    };
    let server = resonance_web::serve(listener, state, shutdown_signal())?;
    tracing::info!(addr = %server.addr, workers = workers.len(), "Resonance is serving on http://{}", server.addr);
    server.task.await.context("server task")??;
    workers.iter().for_each(|w| w.abort());
    tracing::info!("shut down cleanly");
    Ok(ExitCode::SUCCESS)
}

/// `resonance worker`: runs generation workers only, sharing the database and storage
/// with the web tier.
pub async fn worker_only(args: &SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args)?;
    init_logging(config.log_format);
    let engine = speech_engine(&config)?.ok_or_else(|| anyhow::anyhow!(NO_ENGINE))?;
    let count = config.workers.max(1);
    let state = open(&config).await?;
    let workers = worker(&state, engine).spawn(&worker_name("worker"), count);
    tracing::info!(workers = workers.len(), "generation workers running");
    shutdown_signal().await;
    // A job cut short here is re-run by another worker once its lease expires.
    workers.iter().for_each(|w| w.abort());
    Ok(ExitCode::SUCCESS)
}

const NO_ENGINE: &str = "no speech engine is configured: set RESONANCE_ENGINE=remote with \
     RESONANCE_REMOTE_URL and RESONANCE_REMOTE_API_KEY, or RESONANCE_ENGINE=chatterbox with the \
     model downloaded (`resonance model download`)";

fn speech_engine(config: &Config) -> anyhow::Result<Option<Arc<dyn SpeechEngine>>> {
    match &config.engine {
        None => Ok(None),
        Some(EngineConfig::Remote {
            url,
            api_key,
            concurrency,
        }) => Ok(Some(Arc::new(RemoteEngine::new(
            url,
            api_key,
            *concurrency,
        )))),
        Some(EngineConfig::Chatterbox { .. }) => anyhow::bail!(
            "RESONANCE_ENGINE=chatterbox: the native engine is not part of this build yet; \
             use RESONANCE_ENGINE=remote"
        ),
    }
}

fn worker(state: &AppState, engine: Arc<dyn SpeechEngine>) -> Worker {
    Worker {
        db: state.db.clone(),
        storage: state.storage.clone(),
        engine,
        new_jobs: state.new_jobs.clone(),
        events: state.job_events.clone(),
        settings: WorkerSettings::default(),
    }
}

/// Unique per process, so leases name which process holds a job.
fn worker_name(role: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    format!("{role}-{host}-{}", std::process::id())
}

pub async fn migrate(args: &SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args)?;
    init_logging(config.log_format);
    let db = connect_db(&config).await?;
    db.migrate().await.context("applying migrations")?;
    println!("migrations applied to {}", redact_url(&config.database_url));
    Ok(ExitCode::SUCCESS)
}

/// Connects the database and storage, creating the data folder and applying
/// migrations on the way.
async fn open(config: &Config) -> anyhow::Result<AppState> {
    let db = connect_db(config).await?;
    db.migrate().await.context("applying database migrations")?;
    let storage = open_storage(config)?;
    let mut state = AppState::new(db, storage, auth_settings(config));
    state.voice_upload_max_bytes = config.voice_upload_max_bytes;
    Ok(state)
}

/// Sessions ride in `Secure` cookies when users reach the server over HTTPS.
fn auth_settings(config: &Config) -> AuthSettings {
    AuthSettings {
        secure_cookies: config
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://")),
        public_url: config.public_url.clone(),
        ..AuthSettings::default()
    }
}

pub async fn connect_db(config: &Config) -> anyhow::Result<Arc<dyn Database>> {
    resonance_db::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot connect to the database {} (DATABASE_URL)",
                redact_url(&config.database_url)
            )
        })
}

pub fn open_storage(config: &Config) -> anyhow::Result<Storage> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {} (RESONANCE_DATA_DIR)",
            config.data_dir.display()
        )
    })?;
    let secret = resonance_storage::load_or_create_secret(&config.data_dir.join("url-signing.key"))
        .context("reading the URL signing key")?;
    match &config.storage {
        StorageConfig::Local { root } => Storage::local(root, secret)
            .with_context(|| format!("cannot open the local object folder {}", root.display())),
        StorageConfig::S3(s3) => Storage::s3(&resonance_storage::S3Settings {
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            bucket: s3.bucket.clone(),
            access_key_id: s3.access_key_id.clone(),
            secret_access_key: s3.secret_access_key.clone(),
            virtual_hosted_style: s3.virtual_hosted,
            allow_http: s3
                .endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://")),
        })
        .with_context(|| format!("cannot configure the S3 bucket {}", s3.bucket)),
    }
}

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("RESONANCE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
