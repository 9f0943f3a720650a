//! `resonance serve`, `resonance worker` and `resonance migrate`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chatterbox::weights::CheckpointManifest;
use resonance_db::Database;
use resonance_domain::SpeechModel;
use resonance_engine::SpeechEngine;
use resonance_engine::native::{self, NativeModel};
use resonance_engine::queue::QueuedEngine;
use resonance_engine::remote::RemoteEngine;
use resonance_service::billing::Billing;
use resonance_service::generations::cancellation::Cancellations;
use resonance_service::generations::events::JobEvents;
use resonance_service::generations::worker::{SynthesisTimings, Worker, WorkerSettings};
use resonance_service::mail::Mailer;
use resonance_service::model_status::{ModelState, ModelStatus};
use resonance_storage::Storage;
use resonance_web::AppState;
use resonance_web::auth::AuthSettings;
use tokio::sync::Notify;
use tracing_subscriber::EnvFilter;

use crate::builtin_voice;
use crate::config::{Config, EngineConfig, LogFormat, SettingsArgs, StorageConfig, redact_url};
use crate::download::{self, DownloadOptions};

pub async fn serve(args: &SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args)?;
    init_logging(config.log_format);
    let state = app_state(&config, open(&config).await?)?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {} (RESONANCE_BIND)", config.bind))?;
    let workers = if config.workers == 0 {
        tracing::info!("no generation workers in this process (RESONANCE_WORKERS=0)");
        None
    } else {
        let config = config.clone();
        let shared = Shared {
            db: state.db.clone(),
            storage: state.storage.clone(),
            new_jobs: state.new_jobs.clone(),
            job_events: state.job_events.clone(),
            cancellations: state.cancellations.clone(),
            model: state.model.clone(),
            record_timings: Some(resonance_web::metrics::record_synthesis),
        };
        Some(tokio::spawn(async move {
            // The API serves meanwhile; jobs wait in the queue.
            if let Err(e) = run_workers(&config, &shared, "serve").await {
                tracing::error!("generation workers cannot start: {e:#}");
            }
        }))
    };
    let server = resonance_web::serve_with(
        listener,
        state,
        config.connections.clone(),
        shutdown_signal(),
    )?;
    tracing::info!(addr = %server.addr, "Resonance is serving on http://{}", server.addr);
    server.task.await.context("server task")??;
    if let Some(workers) = workers {
        workers.abort();
    }
    tracing::info!("shut down cleanly");
    Ok(ExitCode::SUCCESS)
}

/// `resonance worker`: runs generation workers only, sharing the database and storage
/// with the web tier.
pub async fn worker_only(args: &SettingsArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args)?;
    init_logging(config.log_format);
    anyhow::ensure!(
        config.engine.is_some(),
        "RESONANCE_ENGINE=none: a worker needs an engine (chatterbox or remote)"
    );
    let config = Config {
        workers: config.workers.max(1),
        ..config
    };
    let (db, storage) = open(&config).await?;
    let shared = Shared {
        db,
        storage,
        new_jobs: Arc::default(),
        job_events: JobEvents::default(),
        cancellations: Cancellations::default(),
        model: ModelStatus::default(),
        record_timings: None,
    };
    tokio::select! {
        result = run_workers(&config, &shared, "worker") => result?,
        // A job cut short here is re-run by another worker once its lease expires.
        _ = shutdown_signal() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// What a process's generation workers share with its server, when it has one.
struct Shared {
    db: Arc<dyn Database>,
    storage: Storage,
    /// Raised by the server when it queues a job.
    new_jobs: Arc<Notify>,
    /// Where the server's streaming requests listen.
    job_events: JobEvents,
    /// Through which the server's cancels stop these workers at once.
    cancellations: Cancellations,
    model: ModelStatus,
    record_timings: Option<fn(SynthesisTimings)>,
}

/// Starts the configured engine, then runs `config.workers` generation workers until the
/// future is dropped, which stops them.
async fn run_workers(config: &Config, shared: &Shared, role: &str) -> anyhow::Result<()> {
    let Some(engine) = speech_engine(config, shared).await? else {
        tracing::info!(
            "no speech engine (RESONANCE_ENGINE=none): generations wait for a `resonance worker`"
        );
        return Ok(());
    };
    let worker = Worker {
        db: shared.db.clone(),
        storage: shared.storage.clone(),
        engine,
        new_jobs: shared.new_jobs.clone(),
        events: shared.job_events.clone(),
        cancellations: shared.cancellations.clone(),
        settings: WorkerSettings::default(),
        record_timings: shared.record_timings,
    };
    let workers = StopOnDrop(worker.spawn(&worker_name(role), config.workers));
    tracing::info!(workers = workers.0.len(), "generation workers running");
    std::future::pending::<()>().await;
    drop(workers);
    Ok(())
}

struct StopOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

async fn speech_engine(
    config: &Config,
    shared: &Shared,
) -> anyhow::Result<Option<Arc<dyn SpeechEngine>>> {
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
        Some(EngineConfig::Chatterbox { concurrency }) => {
            shared.model.set(ModelState::Loading);
            let started = async {
                ensure_model(&config.model_dir, config.model, &shared.model).await?;
                shared.model.set(ModelState::Loading);
                start_native(config, *concurrency, shared)
                    .await
                    .with_context(|| {
                        format!("loading the model from {}", config.model_dir.display())
                    })
            }
            .await;
            shared.model.set(match started {
                Ok(_) => ModelState::Ready,
                Err(_) => ModelState::Unavailable,
            });
            Ok(Some(Arc::new(started?)))
        }
    }
}

/// Loads the model, installs its built-in voice in the library, and starts the engine.
async fn start_native(
    config: &Config,
    concurrency: usize,
    shared: &Shared,
) -> anyhow::Result<QueuedEngine> {
    let model = NativeModel::load(
        &config.model_dir,
        &served_models(config),
        config.device,
        config.precision,
        config.s3gen_precision,
        shared.storage.clone(),
    )
    .await?;
    builtin_voice::install(&model, shared.db.as_ref(), &shared.storage).await?;
    Ok(model.start(concurrency))
}

/// The models this server offers: the `model` setting first, then every other model
/// whose T3 is in the model folder. A remote engine speaks with its own model, which
/// the `model` setting names.
fn served_models(config: &Config) -> Vec<SpeechModel> {
    if matches!(config.engine, Some(EngineConfig::Remote { .. })) {
        return vec![config.model];
    }
    let wanted: Vec<SpeechModel> = std::iter::once(config.model)
        .chain(SpeechModel::ALL.into_iter().filter(|m| *m != config.model))
        .collect();
    native::models_in(&config.model_dir, &wanted)
}

/// Downloads `model`'s checkpoint when files are missing (once; later starts find it).
async fn ensure_model(
    model_dir: &Path,
    model: SpeechModel,
    status: &ModelStatus,
) -> anyhow::Result<()> {
    let model = native::checkpoint(model);
    if download::missing_files(model_dir, &model).is_empty() {
        return Ok(());
    }
    status.set(ModelState::Downloading);
    let options = DownloadOptions {
        progress: false,
        ..DownloadOptions::from_env()
    };
    tracing::info!(
        "the model is not in {}; downloading {} from {} (RESONANCE_ENGINE=none skips this)",
        model_dir.display(),
        model.repo_id,
        options.endpoint
    );
    download::download(model_dir, &model, &CheckpointManifest::of(&model), &options).await?;
    tracing::info!("model downloaded");
    Ok(())
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
async fn open(config: &Config) -> anyhow::Result<(Arc<dyn Database>, Storage)> {
    let db = connect_db(config).await?;
    db.migrate().await.context("applying database migrations")?;
    Ok((db, open_storage(config)?))
}

/// The web server's state over the database and storage.
fn app_state(
    config: &Config,
    (db, storage): (Arc<dyn Database>, Storage),
) -> anyhow::Result<AppState> {
    let mut state = AppState::new(db, storage, auth_settings(config));
    state.voice_upload_max_bytes = config.voice_upload_max_bytes;
    state.metrics_token = config.metrics_token.as_ref().map(|token| token.0.clone());
    state.billing = Arc::new(Billing::new(config.billing.clone()));
    state.mailer = mailer(config)?.map(Arc::new);
    state.models = served_models(config);
    Ok(state)
}

/// What sends email, when SMTP is configured.
pub fn mailer(config: &Config) -> anyhow::Result<Option<Mailer>> {
    Ok(config.smtp.as_ref().map(Mailer::new).transpose()?)
}

/// Sessions ride in `Secure` cookies when users reach the server over HTTPS.
fn auth_settings(config: &Config) -> AuthSettings {
    AuthSettings {
        secure_cookies: config
            .public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://")),
        public_url: config.public_url.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        allowed_hosts: config.allowed_hosts.clone(),
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
