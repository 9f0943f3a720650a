//! What every request handler can reach: [`AppState`].

use std::sync::Arc;

use resonance_db::Database;
use resonance_domain::SpeechModel;
use resonance_service::billing::Billing;
use resonance_service::generations::cancellation::Cancellations;
use resonance_service::generations::events::JobEvents;
use resonance_service::mail::Mailer;
use resonance_service::model_status::ModelStatus;
use resonance_storage::Storage;
use tokio::sync::Notify;

use crate::auth::{Auth, AuthSettings};

/// Everything a request handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<dyn Database>,
    pub storage: Storage,
    pub auth: Arc<Auth>,
    /// Largest accepted voice upload; larger bodies are refused while they stream in.
    pub voice_upload_max_bytes: usize,
    /// Plans, quotas and the billing provider; unlimited and without one by default.
    pub billing: Arc<Billing>,
    /// Raised when a generation is queued, to wake this process's idle workers (workers in
    /// other processes find it by polling).
    pub new_jobs: Arc<Notify>,
    /// Where this process's workers publish the audio of jobs that a request streams.
    pub job_events: JobEvents,
    /// Through which a cancel stops this process's worker at once.
    pub cancellations: Cancellations,
    /// The speech model's state in this process, set by whatever starts the engine.
    pub model: ModelStatus,
    /// The speech models generations may ask for, the default (the `model` setting) first.
    pub models: Vec<SpeechModel>,
    /// The bearer token `/metrics` asks for; without one it is not served.
    pub metrics_token: Option<String>,
    /// Sends password reset links when SMTP is configured; without it the operator hands
    /// them out.
    pub mailer: Option<Arc<Mailer>>,
}

impl AppState {
    /// The model spoken with when a request names none.
    pub fn default_model(&self) -> SpeechModel {
        self.models.first().copied().unwrap_or_default()
    }

    /// The model `name` names when this server offers it (the default one when `name`
    /// is `None`); otherwise a sentence saying what it offers.
    pub fn speech_model(&self, name: Option<&str>) -> Result<SpeechModel, String> {
        let Some(name) = name else {
            return Ok(self.default_model());
        };
        SpeechModel::parse(name)
            .filter(|model| self.models.contains(model))
            .ok_or_else(|| {
                let offered: Vec<&str> = self.models.iter().map(|m| m.name()).collect();
                format!(
                    "model {name:?} is not available on this server; available: {}",
                    offered.join(", ")
                )
            })
    }
}

/// The largest voice upload accepted by default.
pub const DEFAULT_VOICE_UPLOAD_MAX_BYTES: usize = 20 * 1024 * 1024;

impl AppState {
    pub fn new(db: Arc<dyn Database>, storage: Storage, auth: AuthSettings) -> Self {
        Self {
            db,
            storage,
            auth: Arc::new(Auth::new(auth)),
            voice_upload_max_bytes: DEFAULT_VOICE_UPLOAD_MAX_BYTES,
            billing: Arc::new(Billing::default()),
            new_jobs: Arc::default(),
            job_events: JobEvents::default(),
            cancellations: Cancellations::default(),
            model: ModelStatus::default(),
            models: vec![SpeechModel::default()],
            metrics_token: None,
            mailer: None,
        }
    }
}
