//! Resonance's domain types: parsed once at the boundary, trusted everywhere after
//! (parse, don't validate).

pub mod generation;
pub mod ids;
pub mod org;
pub mod voice;

pub use generation::{
    GenerationFieldError, GenerationParams, GenerationStatus, GenerationText,
    UnknownGenerationStatus,
};
pub use ids::{GenerationId, Id, IdError, OrgId, UserId, VoiceId};
pub use org::{OrganizationName, OrganizationNameError};
pub use voice::{
    Language, VoiceCategory, VoiceDescription, VoiceFieldError, VoiceName, VoiceOwner, VoiceVariant,
};
