//! What the database stores, as domain types, and the raw rows they are read from.

use resonance_domain::{
    GenerationId, GenerationParams, GenerationStatus, GenerationText, Language, OrgId,
    OrganizationName, SpeechModel, VoiceCategory, VoiceDescription, VoiceId, VoiceName, VoiceOwner,
    VoiceVariant,
};
use time::OffsetDateTime;

use crate::DbError;

#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: OrgId,
    pub name: OrganizationName,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Voice {
    pub id: VoiceId,
    pub owner: VoiceOwner,
    pub name: VoiceName,
    pub description: Option<VoiceDescription>,
    pub category: VoiceCategory,
    pub language: Language,
    /// Where the reference audio lies in object storage, once uploaded.
    pub object_key: Option<String>,
    pub consent: Option<VoiceConsent>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The confirmation, given when a voice was cloned, that its speaker agreed to it.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConsent {
    /// The user, or the API key, that confirmed it.
    pub by: String,
    pub at: OffsetDateTime,
}

impl Voice {
    pub fn variant(&self) -> VoiceVariant {
        self.owner.variant()
    }
}

/// A voice to create. The caller chooses the id so that it can upload the audio under it first.
#[derive(Debug, Clone)]
pub struct NewVoice {
    pub id: VoiceId,
    pub owner: VoiceOwner,
    pub name: VoiceName,
    pub description: Option<VoiceDescription>,
    pub category: VoiceCategory,
    pub language: Language,
    pub object_key: Option<String>,
    pub consent: Option<VoiceConsent>,
}

/// What describes a voice, as its owner edits it.
#[derive(Debug, Clone)]
pub struct VoiceEdit {
    pub name: VoiceName,
    pub description: Option<VoiceDescription>,
    pub category: VoiceCategory,
    pub language: Language,
}

/// Narrows a voice listing; `None` (the default) does not filter.
#[derive(Debug, Clone, Default)]
pub struct VoiceFilter {
    pub category: Option<VoiceCategory>,
    pub language: Option<Language>,
    pub variant: Option<VoiceVariant>,
    /// Case-insensitive substring of the name; `%` and `_` match themselves.
    pub name_contains: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub id: GenerationId,
    pub org_id: OrgId,
    /// `None` once the voice has been deleted; `voice_name` still says which it was.
    pub voice_id: Option<VoiceId>,
    pub voice_name: VoiceName,
    pub text: GenerationText,
    pub params: GenerationParams,
    pub seed: Option<u32>,
    pub status: GenerationStatus,
    /// 0-100; advances per synthesized chunk while running.
    pub progress: u8,
    /// Why it failed, in words for the user.
    pub failure_reason: Option<String>,
    /// How many times a worker has claimed it.
    pub attempts: u32,
    /// Where the generated audio lies in object storage, once stored.
    pub object_key: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// A generation to create. Its voice must be visible to `org_id` (a SYSTEM voice or one of
/// the organization's CUSTOM voices); the voice's name is copied from the voice.
#[derive(Debug, Clone)]
pub struct NewGeneration {
    pub id: GenerationId,
    pub org_id: OrgId,
    pub voice_id: VoiceId,
    pub text: GenerationText,
    pub params: GenerationParams,
    pub seed: Option<u32>,
}

/// What an organization consumed; the billing issue reads these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageKind {
    /// Quantity: characters spoken.
    TtsGeneration,
    /// Quantity: voices created.
    VoiceCreation,
}

impl UsageKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::TtsGeneration => "tts_generation",
            Self::VoiceCreation => "voice_creation",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsageEvent {
    /// The ledger row's id; also the event's idempotency key at the billing provider.
    pub id: i64,
    pub org_id: OrgId,
    pub kind: UsageKind,
    pub quantity: u64,
    pub generation_id: Option<GenerationId>,
    pub voice_id: Option<VoiceId>,
    pub created_at: OffsetDateTime,
}

/// Narrows a generation listing; `None` (the default) does not filter.
#[derive(Debug, Clone, Default)]
pub struct GenerationFilter {
    pub voice_id: Option<VoiceId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("page limit must be between 1 and {max}", max = Page::MAX_LIMIT)]
pub struct PageError;

/// One window of a listing: at most `limit` items after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    limit: u32,
    offset: u32,
}

impl Page {
    pub const MAX_LIMIT: u32 = 100;

    pub fn new(limit: u32, offset: u32) -> Result<Self, PageError> {
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(PageError);
        }
        Ok(Self { limit, offset })
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn offset(&self) -> u32 {
        self.offset
    }
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: 20,
            offset: 0,
        }
    }
}

/// One page of a listing and how many items the whole listing has.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
}

pub(crate) fn now_millis() -> i64 {
    to_millis(OffsetDateTime::now_utc())
}

pub(crate) fn to_millis(time: OffsetDateTime) -> i64 {
    // i64 milliseconds cover ±292 million years.
    (time.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn from_millis(
    table: &str,
    column: &str,
    millis: i64,
) -> Result<OffsetDateTime, DbError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|e| DbError::corrupt(table, column, e))
}

/// Lowercases a name for case-insensitive search in Rust, so that both backends fold alike.
pub(crate) fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// A `LIKE` pattern (with `\` as the escape character) matching any text containing `needle`
/// once both are folded.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in fold(needle).chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[derive(sqlx::FromRow)]
pub(crate) struct OrganizationRow {
    id: String,
    name: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = DbError;

    fn try_from(row: OrganizationRow) -> Result<Self, DbError> {
        const T: &str = "organizations";
        Ok(Self {
            id: OrgId::parse(&row.id).map_err(|e| DbError::corrupt(T, "id", e))?,
            name: OrganizationName::parse(&row.name).map_err(|e| DbError::corrupt(T, "name", e))?,
            created_at: from_millis(T, "created_at", row.created_at)?,
            updated_at: from_millis(T, "updated_at", row.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct VoiceRow {
    id: String,
    org_id: Option<String>,
    name: String,
    description: Option<String>,
    category: String,
    language: String,
    variant: String,
    object_key: Option<String>,
    consent_by: Option<String>,
    consent_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<VoiceRow> for Voice {
    type Error = DbError;

    fn try_from(row: VoiceRow) -> Result<Self, DbError> {
        const T: &str = "voices";
        let variant: VoiceVariant = row
            .variant
            .parse()
            .map_err(|e| DbError::corrupt(T, "variant", e))?;
        let owner = match (variant, row.org_id) {
            (VoiceVariant::System, None) => VoiceOwner::System,
            (VoiceVariant::Custom, Some(org)) => {
                VoiceOwner::Org(OrgId::parse(&org).map_err(|e| DbError::corrupt(T, "org_id", e))?)
            }
            (variant, _) => {
                return Err(DbError::corrupt(
                    T,
                    "org_id",
                    format!("does not match variant {}", variant.as_str()),
                ));
            }
        };
        Ok(Self {
            id: VoiceId::parse(&row.id).map_err(|e| DbError::corrupt(T, "id", e))?,
            owner,
            name: VoiceName::parse(&row.name).map_err(|e| DbError::corrupt(T, "name", e))?,
            description: row
                .description
                .as_deref()
                .map(VoiceDescription::parse)
                .transpose()
                .map_err(|e| DbError::corrupt(T, "description", e))?,
            category: row
                .category
                .parse()
                .map_err(|e| DbError::corrupt(T, "category", e))?,
            language: Language::parse(&row.language)
                .map_err(|e| DbError::corrupt(T, "language", e))?,
            object_key: row.object_key,
            consent: match (row.consent_by, row.consent_at) {
                (Some(by), Some(at)) => Some(VoiceConsent {
                    by,
                    at: from_millis(T, "consent_at", at)?,
                }),
                _ => None,
            },
            created_at: from_millis(T, "created_at", row.created_at)?,
            updated_at: from_millis(T, "updated_at", row.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GenerationRow {
    id: String,
    org_id: String,
    voice_id: Option<String>,
    voice_name: String,
    text: String,
    temperature: f64,
    top_p: f64,
    top_k: i32,
    repetition_penalty: f64,
    seed: Option<i64>,
    status: String,
    progress: i32,
    failure_reason: Option<String>,
    attempts: i32,
    object_key: Option<String>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
    model: String,
}

impl TryFrom<GenerationRow> for Generation {
    type Error = DbError;

    fn try_from(row: GenerationRow) -> Result<Self, DbError> {
        const T: &str = "generations";
        let top_k = u32::try_from(row.top_k).map_err(|e| DbError::corrupt(T, "top_k", e))?;
        Ok(Self {
            id: GenerationId::parse(&row.id).map_err(|e| DbError::corrupt(T, "id", e))?,
            org_id: OrgId::parse(&row.org_id).map_err(|e| DbError::corrupt(T, "org_id", e))?,
            voice_id: row
                .voice_id
                .as_deref()
                .map(VoiceId::parse)
                .transpose()
                .map_err(|e| DbError::corrupt(T, "voice_id", e))?,
            voice_name: VoiceName::parse(&row.voice_name)
                .map_err(|e| DbError::corrupt(T, "voice_name", e))?,
            text: GenerationText::parse(&row.text).map_err(|e| DbError::corrupt(T, "text", e))?,
            params: GenerationParams::new(
                row.temperature,
                row.top_p,
                top_k,
                row.repetition_penalty,
            )
            .map_err(|e| DbError::corrupt(T, "sampling parameters", e))?
            .with_model(
                SpeechModel::parse(&row.model)
                    .ok_or_else(|| DbError::corrupt(T, "model", &row.model))?,
            ),
            seed: row
                .seed
                .map(u32::try_from)
                .transpose()
                .map_err(|e| DbError::corrupt(T, "seed", e))?,
            status: row
                .status
                .parse()
                .map_err(|e| DbError::corrupt(T, "status", e))?,
            progress: u8::try_from(row.progress)
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| DbError::corrupt(T, "progress", row.progress))?,
            failure_reason: row.failure_reason,
            attempts: u32::try_from(row.attempts)
                .map_err(|e| DbError::corrupt(T, "attempts", e))?,
            object_key: row.object_key,
            created_at: from_millis(T, "created_at", row.created_at)?,
            updated_at: from_millis(T, "updated_at", row.updated_at)?,
            finished_at: row
                .finished_at
                .map(|ms| from_millis(T, "finished_at", ms))
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UsageEventRow {
    id: i64,
    org_id: String,
    kind: String,
    quantity: i64,
    generation_id: Option<String>,
    voice_id: Option<String>,
    created_at: i64,
}

impl TryFrom<UsageEventRow> for UsageEvent {
    type Error = DbError;

    fn try_from(row: UsageEventRow) -> Result<Self, DbError> {
        const T: &str = "usage_events";
        Ok(Self {
            id: row.id,
            org_id: OrgId::parse(&row.org_id).map_err(|e| DbError::corrupt(T, "org_id", e))?,
            kind: match row.kind.as_str() {
                "tts_generation" => UsageKind::TtsGeneration,
                "voice_creation" => UsageKind::VoiceCreation,
                other => return Err(DbError::corrupt(T, "kind", other)),
            },
            quantity: u64::try_from(row.quantity)
                .map_err(|e| DbError::corrupt(T, "quantity", e))?,
            generation_id: row
                .generation_id
                .as_deref()
                .map(GenerationId::parse)
                .transpose()
                .map_err(|e| DbError::corrupt(T, "generation_id", e))?,
            voice_id: row
                .voice_id
                .as_deref()
                .map(VoiceId::parse)
                .transpose()
                .map_err(|e| DbError::corrupt(T, "voice_id", e))?,
            created_at: from_millis(T, "created_at", row.created_at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_pattern_escapes_like_wildcards() {
        assert_eq!(contains_pattern("AbC"), "%abc%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn page_bounds() {
        assert_eq!(Page::new(0, 0), Err(PageError));
        assert_eq!(Page::new(Page::MAX_LIMIT + 1, 0), Err(PageError));
        let page = Page::new(5, 10).unwrap();
        assert_eq!((page.limit(), page.offset()), (5, 10));
    }
}
