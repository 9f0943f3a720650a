//! The database: storage traits by feature (`Organizations`, `Voices`, `Generations`,
//! `Accounts`, `Billing`),
//! combined into [`Database`], implemented once for both backends ([`SqliteDatabase`],
//! [`PostgresDatabase`]) as generic code over `backend::Backend`. Every query is one SQL text
//! for both backends (`queries.rs`); only connection setup, the migrations and two locks
//! differ, so the backends behave identically.

mod accounts;
mod backend;
mod billing;
mod error;
mod model;
mod postgres;
mod queries;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use resonance_domain::{
    GenerationId, GenerationStatus, OrgId, OrganizationName, VoiceId, VoiceOwner,
};

pub use accounts::{
    Accounts, ApiKey, ApiKeyCredentials, Invite, Member, Membership, NewApiKey, NewInvite,
    NewSession, Session, User, UserCredentials,
};
pub use billing::{
    Billing, DailyUsage, GenerationUsage, OverLimit, PendingUsage, Plan, PlanLimit, Quota,
};
pub use error::DbError;
pub use model::{
    Generation, GenerationFilter, NewGeneration, NewVoice, Organization, Page, PageError, Paged,
    UsageEvent, UsageKind, Voice, VoiceConsent, VoiceEdit, VoiceFilter,
};
pub use postgres::PostgresDatabase;
pub use sqlite::SqliteDatabase;

#[async_trait]
pub trait Organizations: Send + Sync {
    async fn create_organization(&self, name: &OrganizationName) -> Result<Organization, DbError>;

    async fn get_organization(&self, id: &OrgId) -> Result<Organization, DbError>;
}

/// Voices as an organization sees them: every SYSTEM voice and its own CUSTOM voices.
#[async_trait]
pub trait Voices: Send + Sync {
    async fn create_voice(&self, voice: &NewVoice) -> Result<Voice, DbError>;

    /// [`Voices::create_voice`], refused with `OverLimit` when the voice is a CUSTOM voice
    /// and its organization already keeps `voice_slots` (when set). The count and the
    /// insert are one transaction that parallel creations for the organization wait on.
    async fn create_voice_within(
        &self,
        voice: &NewVoice,
        voice_slots: Option<u64>,
    ) -> Result<Voice, DbError>;

    /// The voice if it is a SYSTEM voice or a CUSTOM voice of `org`.
    async fn get_voice(&self, org: &OrgId, id: &VoiceId) -> Result<Voice, DbError>;

    /// The voices visible to `org` that pass `filter`, ordered by case-folded name.
    async fn list_voices(
        &self,
        org: &OrgId,
        filter: &VoiceFilter,
        page: Page,
    ) -> Result<Paged<Voice>, DbError>;

    /// Every voice of every organization and every SYSTEM voice, for maintenance (storage
    /// reconciliation); never for a request.
    async fn all_voices(&self) -> Result<Vec<Voice>, DbError>;

    /// Every SYSTEM voice, ordered by case-folded name.
    async fn system_voices(&self) -> Result<Vec<Voice>, DbError>;

    /// Points the voice at a new sample's audio, with the consent given for that sample;
    /// only `owner` may change its voices.
    async fn replace_voice_sample(
        &self,
        owner: &VoiceOwner,
        id: &VoiceId,
        object_key: &str,
        consent: &VoiceConsent,
    ) -> Result<Voice, DbError>;

    /// Renames and redescribes one of `owner`'s voices; `Conflict` when a SYSTEM voice takes a
    /// name another SYSTEM voice has.
    async fn edit_voice(
        &self,
        owner: &VoiceOwner,
        id: &VoiceId,
        edit: &VoiceEdit,
    ) -> Result<Voice, DbError>;

    /// Deletes one of `owner`'s voices and returns its object key, for the caller to delete
    /// the audio. Generations made with it keep their `voice_name` and lose their `voice_id`.
    async fn delete_voice(
        &self,
        owner: &VoiceOwner,
        id: &VoiceId,
    ) -> Result<Option<String>, DbError>;
}

/// An organization's generation history; no organization sees another's.
#[async_trait]
pub trait Generations: Send + Sync {
    /// Fails with `NotFound("voice")` unless the voice is visible to the organization.
    async fn create_generation(&self, generation: &NewGeneration) -> Result<Generation, DbError>;

    /// [`Generations::create_generation`], refused with `OverLimit` when it would pass
    /// `quota` (see `Plan::check_generation`). The usage is read and the job queued in one
    /// transaction that parallel creations for the organization wait on, so queued and
    /// running jobs count at once.
    async fn create_generation_within(
        &self,
        generation: &NewGeneration,
        quota: &Quota,
    ) -> Result<Generation, DbError>;

    async fn get_generation(&self, org: &OrgId, id: &GenerationId) -> Result<Generation, DbError>;

    /// Newest first.
    async fn list_generations(
        &self,
        org: &OrgId,
        filter: &GenerationFilter,
        page: Page,
    ) -> Result<Paged<Generation>, DbError>;

    async fn set_generation_object_key(
        &self,
        org: &OrgId,
        id: &GenerationId,
        object_key: &str,
    ) -> Result<Generation, DbError>;

    /// Deletes the generation and returns its object key, for the caller to delete the audio.
    async fn delete_generation(
        &self,
        org: &OrgId,
        id: &GenerationId,
    ) -> Result<Option<String>, DbError>;
}

/// Generations as durable jobs. A worker claims a job with a lease it renews by heartbeats;
/// a job whose lease ran out (its worker died) is claimed again. Every change a worker
/// makes names the worker and takes effect only while it still holds the job, so a worker
/// that lost its lease (expired, cancelled, deleted) changes nothing.
#[async_trait]
pub trait GenerationJobs: Send + Sync {
    /// Claims the oldest queued job, or a running one whose lease has expired, for `worker`
    /// until `lease` from now. No two workers ever hold the same job. Jobs claimed
    /// [`MAX_ATTEMPTS`] times whose lease expired again are failed instead.
    async fn claim_generation(
        &self,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Generation>, DbError>;

    /// Renews the lease and records `progress` (0-100). `false` when `worker` no longer
    /// holds the job: it should stop.
    async fn heartbeat_generation(
        &self,
        id: &GenerationId,
        worker: &str,
        lease: Duration,
        progress: u8,
    ) -> Result<bool, DbError>;

    /// Marks the job succeeded with its audio at `object_key` and records its usage
    /// (characters spoken) in the same transaction. `None` when `worker` no longer holds
    /// the job: nothing changed.
    async fn complete_generation(
        &self,
        id: &GenerationId,
        worker: &str,
        object_key: &str,
    ) -> Result<Option<Generation>, DbError>;

    /// Marks the job failed with a reason for the user. `false` when `worker` no longer
    /// holds the job.
    async fn fail_generation(
        &self,
        id: &GenerationId,
        worker: &str,
        reason: &str,
    ) -> Result<bool, DbError>;

    /// Cancels a queued or running generation of `org`. `Conflict` once it has finished.
    async fn cancel_generation(
        &self,
        org: &OrgId,
        id: &GenerationId,
    ) -> Result<Generation, DbError>;

    /// How many generations of every organization are in each status, for operators;
    /// statuses without any are left out.
    async fn generation_status_counts(&self) -> Result<Vec<(GenerationStatus, u64)>, DbError>;
}

/// How many times a job is claimed before a lease running out fails it for good.
pub const MAX_ATTEMPTS: u32 = 3;

#[async_trait]
pub trait Usage: Send + Sync {
    /// The organization's usage events, oldest first.
    async fn list_usage_events(&self, org: &OrgId) -> Result<Vec<UsageEvent>, DbError>;
}

#[async_trait]
pub trait Database:
    Organizations + Voices + Generations + GenerationJobs + Usage + Accounts + Billing
{
    /// Applies the embedded migrations not yet applied; running it again changes nothing.
    async fn migrate(&self) -> Result<(), DbError>;

    /// Succeeds when the database answers a query.
    async fn ping(&self) -> Result<(), DbError>;
}

/// Opens the database `url` names: `sqlite://PATH` (the file and its directory are created
/// when missing) or `postgres://USER:PASSWORD@HOST:PORT/DB`. Does not migrate.
pub async fn connect(url: &str) -> Result<Arc<dyn Database>, DbError> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    match scheme {
        Some("sqlite") => Ok(Arc::new(SqliteDatabase::connect(url).await?)),
        Some("postgres" | "postgresql") => Ok(Arc::new(PostgresDatabase::connect(url).await?)),
        _ => Err(DbError::InvalidUrl(
            "expected a URL starting with sqlite:// or postgres://".to_string(),
        )),
    }
}
