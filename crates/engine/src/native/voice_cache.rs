//! The conditioning of library voices for the native engine: computed once from a voice's
//! reference audio, then kept in memory and in object storage
//! (`cache/voice-conditionals/{voiceId}`, or `{voiceId}.{sampleId}` for a replaced sample),
//! so neither a restart nor another worker machine computes it again. Both copies are
//! keyed by the reference sample's object key, which a replaced sample changes, so a copy
//! still in some process's memory is never served for another sample or voice. Deleting a
//! voice or replacing its sample deletes the stored copy with the sample's other objects.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use candle_core::Device;
use chatterbox::conditionals::Conditionals;
use chatterbox::voice_conditioner::VoiceConditioner;
use resonance_storage::{ObjectKey, Storage, StorageError};
use tokio::runtime::Handle;

use super::conditioning::VoiceConditioning;
use crate::{EngineError, VoiceRef};

/// Voices whose conditioning stays in memory; the least recently used is dropped beyond.
pub const MEMORY_CAPACITY: usize = 128;

const CONDITIONALS_TYPE: &str = "application/octet-stream";

pub struct StoredVoiceConditioning {
    conditioner: VoiceConditioner,
    storage: Storage,
    /// The runtime storage calls run on; conditioning itself runs on the caller's
    /// (blocking) thread.
    runtime: Handle,
    device: Device,
    memory: Mutex<Recent>,
}

impl StoredVoiceConditioning {
    pub fn new(
        conditioner: VoiceConditioner,
        storage: Storage,
        runtime: Handle,
        device: Device,
    ) -> Self {
        Self {
            conditioner,
            storage,
            runtime,
            device,
            memory: Mutex::new(Recent::default()),
        }
    }

    fn remember(&self, reference: &ObjectKey, conditionals: Arc<Conditionals>) {
        self.memory
            .lock()
            .expect("conditioning cache lock")
            .insert(reference, conditionals);
    }

    /// The stored copy, if there is a readable one.
    fn stored(&self, key: &ObjectKey) -> Result<Option<Conditionals>, EngineError> {
        match self.runtime.block_on(self.storage.get(key)) {
            Ok(bytes) => match Conditionals::from_safetensors(&bytes, &self.device) {
                Ok(conditionals) => Ok(Some(conditionals)),
                Err(e) => {
                    tracing::warn!(error = %e, key = key.as_str(), "unreadable cached conditioning; computing it again");
                    Ok(None)
                }
            },
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Computes the conditioning from the voice's reference audio.
    fn compute(&self, voice: &VoiceRef) -> Result<Conditionals, EngineError> {
        let bytes = self
            .runtime
            .block_on(self.storage.get(&voice.reference))
            .map_err(|e| EngineError::VoiceUnavailable(e.to_string()))?;
        let audio = resonance_audio::decode(&bytes, None)
            .map_err(|e| EngineError::VoiceUnavailable(e.to_string()))?;
        self.conditioner
            .prepare(&audio.samples, audio.sample_rate)
            .map_err(|e| EngineError::VoiceUnavailable(e.to_string()))
    }
}

impl VoiceConditioning for StoredVoiceConditioning {
    /// The reference's `norm_loudness` is always applied: every voice is conditioned on
    /// its clip normalized to -27 LUFS, so one cached copy serves every request.
    fn conditionals(&self, voice: &VoiceRef) -> Result<Arc<Conditionals>, EngineError> {
        if let Some(hit) = self
            .memory
            .lock()
            .expect("conditioning cache lock")
            .get(&voice.reference)
        {
            return Ok(hit);
        }
        let key = voice
            .reference
            .conditionals_of_sample()
            .unwrap_or_else(|| ObjectKey::voice_conditionals(&voice.id));
        let conditionals = match self.stored(&key)? {
            Some(conditionals) => conditionals,
            None => {
                let started = std::time::Instant::now();
                let conditionals = self.compute(voice)?;
                tracing::info!(voice = %voice.id, seconds = started.elapsed().as_secs_f64(), "voice conditioning computed");
                let bytes = conditionals.to_safetensors().map_err(failed)?;
                // A failed store only costs a recomputation later.
                if let Err(e) = self.runtime.block_on(self.storage.put(
                    &key,
                    Bytes::from(bytes),
                    CONDITIONALS_TYPE,
                )) {
                    tracing::warn!(error = %e, "cannot store voice conditioning");
                }
                conditionals
            }
        };
        let conditionals = Arc::new(conditionals);
        self.remember(&voice.reference, conditionals.clone());
        Ok(conditionals)
    }
}

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Failed(e.to_string())
}

fn unavailable(e: StorageError) -> EngineError {
    EngineError::Unavailable(format!("object storage: {e}"))
}

/// The most recently used conditionings, by the object key of the sample they were
/// computed from.
#[derive(Default)]
struct Recent {
    entries: HashMap<ObjectKey, Arc<Conditionals>>,
    /// Least recently used first.
    order: VecDeque<ObjectKey>,
}

impl Recent {
    fn get(&mut self, reference: &ObjectKey) -> Option<Arc<Conditionals>> {
        let hit = self.entries.get(reference)?.clone();
        self.touch(reference);
        Some(hit)
    }

    fn insert(&mut self, reference: &ObjectKey, conditionals: Arc<Conditionals>) {
        if self
            .entries
            .insert(reference.clone(), conditionals)
            .is_some()
        {
            self.touch(reference);
            return;
        }
        self.order.push_back(reference.clone());
        if self.order.len() > MEMORY_CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.entries.remove(&oldest);
        }
    }

    fn touch(&mut self, reference: &ObjectKey) {
        if let Some(at) = self.order.iter().position(|key| key == reference) {
            let id = self.order.remove(at).expect("position is in range");
            self.order.push_back(id);
        }
    }
}
