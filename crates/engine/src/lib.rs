//! Speech engines. Every engine is used the same way: send a [`SynthesisRequest`],
//! await [`Speech`], or receive it in pieces as it is made; [`chunking::speak`] speaks text of any length through one. The native
//! engine ([`native`], feature `native`) computes on blocking threads behind a request
//! queue it owns ([`queue::QueuedEngine`]); the remote engine calls a Resonance inference
//! service over HTTP ([`remote::RemoteEngine`]).

pub mod chunking;
#[cfg(feature = "native")]
pub mod native;
pub mod queue;
pub mod remote;

use async_trait::async_trait;
use resonance_domain::{GenerationParams, VoiceId};
use resonance_storage::ObjectKey;

/// Every engine returns mono audio at this rate.
pub const SAMPLE_RATE: u32 = 24_000;

/// The voice to speak in: its id (the key conditioning is cached under) and the
/// object-storage key of its reference audio.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VoiceRef {
    pub id: VoiceId,
    pub reference: ObjectKey,
}

/// One chunk of text (see [`chunking`]) to speak with the voice, the parameters and the
/// seed of every random draw.
#[derive(Debug, Clone)]
pub struct SynthesisRequest {
    pub text: String,
    pub voice: VoiceRef,
    pub params: GenerationParams,
    pub seed: u64,
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

/// Where an engine hands audio as it makes it: pieces that follow each other.
pub type AudioSender = tokio::sync::mpsc::UnboundedSender<Vec<f32>>;

#[async_trait]
pub trait SpeechEngine: Send + Sync {
    /// A short name for logs and caches (`chatterbox`, `remote`, ...).
    fn name(&self) -> &str;

    async fn synthesize(&self, request: SynthesisRequest) -> Result<Speech, EngineError>;

    /// Speaks the request, sending its audio to `audio` in pieces as they are made;
    /// together they are the [`Speech`]. Engines that cannot stream send it whole. An
    /// engine may stop early once nobody receives the pieces.
    async fn synthesize_streaming(
        &self,
        request: SynthesisRequest,
        audio: AudioSender,
    ) -> Result<(), EngineError> {
        let speech = self.synthesize(request).await?;
        let _ = audio.send(speech.samples);
        Ok(())
    }
}
