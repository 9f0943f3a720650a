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
//! A voice whose sample was replaced has `{voiceId}.{sampleId}` in place of `{voiceId}` in
//! its sample, original and conditioning keys: each sample has keys of its own, so the
//! conditioning of an earlier sample is never taken for a later one's.
//!
//! Keys are built only from validated ids (24 characters of `[0-9a-z]`), so no user
//! text ever reaches a key. [`ObjectKey::parse`] accepts exactly these shapes.

use std::fmt;

use resonance_domain::{GenerationId, OrgId, VoiceId, VoiceSampleId};

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
        Self::system_voice_sample(&SampleName::first(voice))
    }

    pub fn custom_voice(org: &OrgId, voice: &VoiceId) -> Self {
        Self::custom_voice_sample(org, &SampleName::first(voice))
    }

    /// The audio the user uploaded, kept as received, before it became the voice sample.
    pub fn custom_voice_original(org: &OrgId, voice: &VoiceId) -> Self {
        Self::custom_voice_sample_original(org, &SampleName::first(voice))
    }

    pub fn system_voice_sample(sample: &SampleName) -> Self {
        Self(format!("{SYSTEM_VOICES}/{sample}"))
    }

    pub fn custom_voice_sample(org: &OrgId, sample: &SampleName) -> Self {
        Self(format!("{CUSTOM_VOICES}/{org}/{sample}"))
    }

    /// The upload a custom voice sample was made from, as received.
    pub fn custom_voice_sample_original(org: &OrgId, sample: &SampleName) -> Self {
        Self(format!("{CUSTOM_VOICE_ORIGINALS}/{org}/{sample}"))
    }

    /// Cached conditioning the model computed from one sample of a voice.
    pub fn sample_conditionals(sample: &SampleName) -> Self {
        Self(format!("{VOICE_CONDITIONALS}/{sample}"))
    }

    /// The cached conditioning of the voice sample at this key; `None` when this is not the
    /// key of a voice sample.
    pub fn conditionals_of_sample(&self) -> Option<Self> {
        let (prefix, ids) = self.0.rsplit_once('/')?;
        let sample_prefix = prefix == SYSTEM_VOICES || prefix.rsplit_once('/')?.0 == CUSTOM_VOICES;
        sample_prefix.then(|| Self(format!("{VOICE_CONDITIONALS}/{ids}")))
    }

    pub fn generation(org: &OrgId, generation: &GenerationId) -> Self {
        Self(format!("{GENERATIONS}/{org}/{generation}"))
    }

    /// Cached conditioning the model computed from a voice's first sample (system or custom).
    pub fn voice_conditionals(voice: &VoiceId) -> Self {
        Self::sample_conditionals(&SampleName::first(voice))
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
            (SYSTEM_VOICES, None) => {
                SampleName::parse(ids).map(|sample| Self::system_voice_sample(&sample))
            }
            (VOICE_CONDITIONALS, None) => {
                SampleName::parse(ids).map(|sample| Self::sample_conditionals(&sample))
            }
            (CUSTOM_VOICES, Some((org, sample))) => OrgId::parse(org)
                .and_then(|org| Ok(Self::custom_voice_sample(&org, &SampleName::parse(sample)?))),
            (CUSTOM_VOICE_ORIGINALS, Some((org, sample))) => OrgId::parse(org).and_then(|org| {
                Ok(Self::custom_voice_sample_original(
                    &org,
                    &SampleName::parse(sample)?,
                ))
            }),
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

/// Which of a voice's samples a key is of: `{voiceId}` for the sample it was cloned from,
/// `{voiceId}.{sampleId}` for one that replaced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleName {
    pub voice: VoiceId,
    /// `None` for the voice's first sample.
    pub sample: Option<VoiceSampleId>,
}

impl SampleName {
    pub fn first(voice: &VoiceId) -> Self {
        Self {
            voice: voice.clone(),
            sample: None,
        }
    }

    /// A new sample of `voice`, named so that no earlier one had its keys.
    pub fn replacement(voice: &VoiceId) -> Self {
        Self {
            voice: voice.clone(),
            sample: Some(VoiceSampleId::new()),
        }
    }

    fn parse(text: &str) -> Result<Self, resonance_domain::IdError> {
        Ok(match text.split_once('.') {
            None => Self::first(&VoiceId::parse(text)?),
            Some((voice, sample)) => Self {
                voice: VoiceId::parse(voice)?,
                sample: Some(VoiceSampleId::parse(sample)?),
            },
        })
    }

    /// The sample a voice's sample key names; `None` for other keys.
    pub fn of_key(key: &ObjectKey) -> Option<Self> {
        key.conditionals_of_sample()?;
        Self::parse(key.as_str().rsplit_once('/')?.1).ok()
    }
}

impl fmt::Display for SampleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sample {
            None => write!(f, "{}", self.voice),
            Some(sample) => write!(f, "{}.{sample}", self.voice),
        }
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
