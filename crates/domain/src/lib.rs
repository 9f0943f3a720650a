//! Resonance's domain types: parsed once at the boundary, trusted everywhere after
//! (parse, don't validate).

pub mod account;
pub mod generation;
pub mod ids;
pub mod org;
pub mod text;
pub mod voice;

pub use account::{
    ApiKeyName, ApiKeyNameError, Email, EmailError, Password, PasswordError, Role, UnknownRole,
};
pub use generation::{
    GenerationFieldError, GenerationParams, GenerationStatus, GenerationText, SpeechModel,
    UnknownGenerationStatus,
};
pub use ids::{
    ApiKeyId, GenerationId, Id, IdError, InviteId, OrgId, UserId, VoiceId, VoiceSampleId,
};
pub use org::{OrganizationName, OrganizationNameError};
pub use voice::{
    Language, VoiceCategory, VoiceDescription, VoiceFieldError, VoiceName, VoiceOwner, VoiceVariant,
};
