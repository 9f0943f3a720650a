//! Object keys, laid out so that a bucket shared with the inference service (the remote
//! engine reads voice samples by key) finds everything where it expects it:
//!
//! ```text
//! voices/system/{voiceId}                      pre-seeded system voice sample
//! voices/custom/{orgId}/{voiceId}              an organization's cloned voice sample
//! voices/custom-originals/{orgId}/{voiceId}    the upload a cloned voice was made from
//! generations/orgs/{orgId}/{generationId}      generated speech
//! cache/voice-conditionals/{voiceId}           derived model conditioning; can be rebuilt
//! ```
//!
//! Keys are built only from validated ids (24 characters of `[0-9a-z]`), so no user
//! text ever reaches a key. [`ObjectKey::parse`] accepts exactly these shapes.

use std::fmt;

use resonance_domain::{GenerationId, OrgId, VoiceId};

use crate::StorageError;

const SYSTEM_VOICES: &str = "voices/system";
const CUSTOM_VOICES: &str = "voices/custom";
const CUSTOM_VOICE_ORIGINALS: &str = "voices/custom-originals";
const GENERATIONS: &str = "generations/orgs";
const VOICE_CONDITIONALS: &str = "cache/voice-conditionals";

/// The key of one stored object. Always one of the shapes in the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn system_voice(voice: &VoiceId) -> Self {
        Self(format!("{SYSTEM_VOICES}/{voice}"))
    }

    pub fn custom_voice(org: &OrgId, voice: &VoiceId) -> Self {
        Self(format!("{CUSTOM_VOICES}/{org}/{voice}"))
    }

    /// The audio the user uploaded, kept as received, before it became the voice sample.
    pub fn custom_voice_original(org: &OrgId, voice: &VoiceId) -> Self {
        Self(format!("{CUSTOM_VOICE_ORIGINALS}/{org}/{voice}"))
    }

    pub fn generation(org: &OrgId, generation: &GenerationId) -> Self {
        Self(format!("{GENERATIONS}/{org}/{generation}"))
    }

    /// Cached conditioning the model computed from a voice's sample (system or custom).
    pub fn voice_conditionals(voice: &VoiceId) -> Self {
        Self(format!("{VOICE_CONDITIONALS}/{voice}"))
    }

    /// Accepts a key read back from the database, a listing or a signed URL, only if it
    /// has one of the known shapes with valid ids.
    pub fn parse(key: &str) -> Result<Self, StorageError> {
        let invalid = || StorageError::InvalidKey {
            key: key.to_string(),
        };
        let (prefix, ids) = [
            SYSTEM_VOICES,
            CUSTOM_VOICES,
            CUSTOM_VOICE_ORIGINALS,
            GENERATIONS,
            VOICE_CONDITIONALS,
        ]
        .into_iter()
        .find_map(|prefix| Some((prefix, key.strip_prefix(prefix)?.strip_prefix('/')?)))
        .ok_or_else(invalid)?;
        let parsed = match (prefix, ids.split_once('/')) {
            (SYSTEM_VOICES, None) => VoiceId::parse(ids).map(|voice| Self::system_voice(&voice)),
            (VOICE_CONDITIONALS, None) => {
                VoiceId::parse(ids).map(|voice| Self::voice_conditionals(&voice))
            }
            (CUSTOM_VOICES, Some((org, voice))) => OrgId::parse(org)
                .and_then(|org| Ok(Self::custom_voice(&org, &VoiceId::parse(voice)?))),
            (CUSTOM_VOICE_ORIGINALS, Some((org, voice))) => OrgId::parse(org)
                .and_then(|org| Ok(Self::custom_voice_original(&org, &VoiceId::parse(voice)?))),
            (GENERATIONS, Some((org, generation))) => OrgId::parse(org)
                .and_then(|org| Ok(Self::generation(&org, &GenerationId::parse(generation)?))),
            _ => return Err(invalid()),
        };
        parsed.map_err(|_| invalid())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A folder of keys to list, built from validated ids like [`ObjectKey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefix(Option<String>);

impl KeyPrefix {
    /// Every object in the store.
    pub fn everything() -> Self {
        Self(None)
    }

    /// Every voice sample and upload: system, custom and custom originals.
    pub fn voices() -> Self {
        Self(Some("voices".to_string()))
    }

    pub fn voice_conditionals() -> Self {
        Self(Some(VOICE_CONDITIONALS.to_string()))
    }

    pub fn system_voices() -> Self {
        Self(Some(SYSTEM_VOICES.to_string()))
    }

    pub fn custom_voices(org: &OrgId) -> Self {
        Self(Some(format!("{CUSTOM_VOICES}/{org}")))
    }

    pub fn generations(org: &OrgId) -> Self {
        Self(Some(format!("{GENERATIONS}/{org}")))
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}
