//! Speech engines. Every engine is used the same way: send a [`SynthesisRequest`],
//! await [`Speech`]. The native engine computes on blocking threads behind a
//! request queue it owns ([`queue::QueuedEngine`]); the remote engine calls the
//! original's inference service over HTTP ([`remote::RemoteEngine`]).

pub mod chunking;
pub mod queue;
pub mod remote;

use async_trait::async_trait;

/// Every engine returns mono audio at this rate.
pub const SAMPLE_RATE: u32 = 24_000;

/// Delivery parameters, already within their bounds (see `resonance_domain`).
#[derive(Debug, Clone, PartialEq)]
pub struct SynthesisParams {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    pub repetition_penalty: f32,
    pub seed: Option<u64>,
    pub norm_loudness: bool,
}

impl Default for SynthesisParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_p: 0.95,
            top_k: 1000,
            repetition_penalty: 1.2,
            seed: None,
            norm_loudness: true,
        }
    }
}

/// The voice to speak in: its id (the key conditioning is cached under) and the
/// object-storage key of its reference audio.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VoiceRef {
    pub id: String,
    pub storage_key: String,
}

#[derive(Debug, Clone)]
pub struct SynthesisRequest {
    pub text: String,
    pub voice: VoiceRef,
    pub params: SynthesisParams,
}

/// Synthesized speech: mono samples in [-1, 1] at [`SAMPLE_RATE`].
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    pub samples: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("the engine refused the request: {0}")]
    InvalidRequest(String),
    #[error("the voice's reference audio is unavailable: {0}")]
    VoiceUnavailable(String),
    #[error("speech synthesis failed: {0}")]
    Failed(String),
    #[error("the speech engine is unavailable: {0}")]
    Unavailable(String),
    #[error("the speech engine has shut down")]
    ShutDown,
}

#[async_trait]
pub trait SpeechEngine: Send + Sync {
    /// A short name for logs and caches (`chatterbox`, `remote`, ...).
    fn name(&self) -> &str;

    async fn synthesize(&self, request: SynthesisRequest) -> Result<Speech, EngineError>;
}
