//! Where the native engine finds a voice's conditionals.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chatterbox::conditionals::Conditionals;
use resonance_domain::VoiceId;

use crate::{EngineError, VoiceRef};

/// Supplies a voice's conditionals. Called on a synthesis thread, so it may block (fetch
/// the reference audio, run the conditioning networks).
pub trait VoiceConditioning: Send + Sync + 'static {
    fn conditionals(&self, voice: &VoiceRef) -> Result<Arc<Conditionals>, EngineError>;
}

/// Voices whose conditionals are already computed, by voice id.
#[derive(Default)]
pub struct BuiltinVoices(RwLock<HashMap<VoiceId, Arc<Conditionals>>>);

impl BuiltinVoices {
    pub fn insert(&self, voice: &VoiceId, conditionals: Conditionals) {
        self.0
            .write()
            .expect("voice table lock")
            .insert(voice.clone(), Arc::new(conditionals));
    }
}

impl VoiceConditioning for BuiltinVoices {
    fn conditionals(&self, voice: &VoiceRef) -> Result<Arc<Conditionals>, EngineError> {
        self.0
            .read()
            .expect("voice table lock")
            .get(&voice.id)
            .cloned()
            .ok_or_else(|| EngineError::VoiceUnavailable(format!("unknown voice {}", voice.id)))
    }
}
