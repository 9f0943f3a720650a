//! Resonance's domain types: parsed once at the boundary, trusted everywhere after
//! (parse, don't validate).

pub mod ids;
pub mod voice;

pub use ids::{GenerationId, Id, IdError, OrgId, UserId, VoiceId};
pub use voice::{Language, VoiceCategory, VoiceDescription, VoiceName, VoiceVariant};
