//! The speech model's state in this process, for `/metrics` and for the sentence a queued
//! generation carries while it waits on the model (still downloading, or not loadable).

use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelState {
    /// The engine answers, or runs in another process (`resonance worker`): nothing to say.
    Ready,
    /// The checkpoint is being downloaded.
    Downloading,
    /// The checkpoint is being loaded.
    Loading,
    /// Downloading or loading failed (offline, say): jobs wait until an operator acts.
    Unavailable,
}

impl ModelState {
    pub const ALL: [Self; 4] = [
        Self::Ready,
        Self::Downloading,
        Self::Loading,
        Self::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Downloading => "downloading",
            Self::Loading => "loading",
            Self::Unavailable => "unavailable",
        }
    }

    /// Why a queued generation has not started, for its user.
    pub fn waiting_reason(self) -> Option<&'static str> {
        match self {
            Self::Ready => None,
            Self::Downloading => Some(
                "The speech model is still downloading; this generation starts once it has loaded.",
            ),
            Self::Loading => {
                Some("The speech model is loading; this generation starts as soon as it is ready.")
            }
            Self::Unavailable => Some(
                "The speech model could not be loaded, so this generation waits until the \
                 server's operator fixes it.",
            ),
        }
    }
}

/// Shared by the process's requests and the code that starts its engine.
#[derive(Debug, Clone)]
pub struct ModelStatus(Arc<RwLock<ModelState>>);

impl Default for ModelStatus {
    fn default() -> Self {
        Self(Arc::new(RwLock::new(ModelState::Ready)))
    }
}

impl ModelStatus {
    pub fn state(&self) -> ModelState {
        *self.0.read().expect("model status lock")
    }

    pub fn set(&self, state: ModelState) {
        *self.0.write().expect("model status lock") = state;
    }
}
