//! Billing: organizations' own plans, usage per day for quotas and charts, and the outbox
//! that forwards usage events to the billing provider. The usage events themselves are
//! written by the operations they charge (`complete_generation`, `create_voice`), in the
//! same transaction, together with their outbox row.

pub(crate) mod queries;

use async_trait::async_trait;
use resonance_domain::OrgId;
use time::{Date, OffsetDateTime};

use crate::{DbError, UsageEvent};

/// What an organization may consume; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// Characters spoken per monthly period.
    pub characters_per_month: Option<u64>,
    /// Custom voices kept at once.
    pub voice_slots: Option<u64>,
    /// Generations queued or running at once.
    pub max_concurrent_jobs: Option<u64>,
}

impl Plan {
    /// Refuses one more custom voice when the organization keeps `kept` and the plan's
    /// slots are all taken.
    pub fn check_voice_slots(&self, kept: u64) -> Result<(), OverLimit> {
        match self.voice_slots {
            Some(allowed) if kept >= allowed => Err(OverLimit {
                limit: PlanLimit::VoiceSlots,
                used: kept,
                allowed,
                requested: 1,
            }),
            _ => Ok(()),
        }
    }

    /// Refuses one more generation of `characters` characters when as many jobs as the plan
    /// allows are active, or when the characters would pass the period's quota.
    pub fn check_generation(
        &self,
        usage: &GenerationUsage,
        characters: u64,
    ) -> Result<(), OverLimit> {
        if let Some(allowed) = self.max_concurrent_jobs
            && usage.active_jobs >= allowed
        {
            return Err(OverLimit {
                limit: PlanLimit::MaxConcurrentJobs,
                used: usage.active_jobs,
                allowed,
                requested: 1,
            });
        }
        if let Some(allowed) = self.characters_per_month
            && usage.characters.saturating_add(characters) > allowed
        {
            return Err(OverLimit {
                limit: PlanLimit::CharactersPerMonth,
                used: usage.characters,
                allowed,
                requested: characters,
            });
        }
        Ok(())
    }
}

/// Which limit of a plan a creation would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanLimit {
    CharactersPerMonth,
    VoiceSlots,
    MaxConcurrentJobs,
}

/// A creation refused because it would pass a plan's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub limit: PlanLimit,
    /// What the organization uses now.
    pub used: u64,
    pub allowed: u64,
    /// What the refused creation needed.
    pub requested: u64,
}

/// What counts against a plan's generation limits, in flight included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerationUsage {
    /// Generations queued or running.
    pub active_jobs: u64,
    /// Characters of the period's succeeded generations and of those queued or running.
    pub characters: u64,
}

/// The plan a new voice or generation is held to, in the billing period it falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub plan: Plan,
    /// Characters of generations that succeeded from `period_start` (inclusive) to
    /// `period_end` (exclusive) count against `plan.characters_per_month`.
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
}

impl Quota {
    pub const UNLIMITED: Self = Self {
        plan: Plan {
            characters_per_month: None,
            voice_slots: None,
            max_concurrent_jobs: None,
        },
        period_start: OffsetDateTime::UNIX_EPOCH,
        period_end: OffsetDateTime::UNIX_EPOCH,
    };
}

/// One UTC day's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyUsage {
    pub date: Date,
    /// Characters spoken by generations that succeeded that day.
    pub characters: u64,
    pub voice_creations: u64,
}

/// A usage event still to be delivered to the billing provider.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingUsage {
    pub event: UsageEvent,
    /// Failed deliveries so far.
    pub attempts: u32,
}

#[async_trait]
pub trait Billing: Send + Sync {
    /// The organization's own plan; `None` when it follows the instance default.
    async fn org_plan(&self, org: &OrgId) -> Result<Option<Plan>, DbError>;

    /// Gives the organization its own plan, replacing any it had. `NotFound` for an
    /// unknown organization.
    async fn set_org_plan(&self, org: &OrgId, plan: &Plan) -> Result<(), DbError>;

    /// Returns the organization to the instance default plan.
    async fn clear_org_plan(&self, org: &OrgId) -> Result<(), DbError>;

    /// The organization's usage per UTC day from `from` (inclusive) to `to` (exclusive),
    /// oldest first; days without usage are left out.
    async fn daily_usage(
        &self,
        org: &OrgId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<DailyUsage>, DbError>;

    /// How many custom voices the organization keeps.
    async fn custom_voice_count(&self, org: &OrgId) -> Result<u64, DbError>;

    /// How many of the organization's generations are queued or running.
    async fn active_generation_count(&self, org: &OrgId) -> Result<u64, DbError>;

    /// The organization's active jobs, and its characters from `from` (inclusive) to `to`
    /// (exclusive) with those of queued and running generations.
    async fn generation_usage(
        &self,
        org: &OrgId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<GenerationUsage, DbError>;

    /// At most `limit` undelivered usage events whose next attempt is due at `now`,
    /// oldest first.
    async fn due_usage_deliveries(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<PendingUsage>, DbError>;

    /// Removes delivered events (by usage event id) from the outbox.
    async fn mark_usage_delivered(&self, event_ids: &[i64]) -> Result<(), DbError>;

    /// Records a failed delivery of these events and when to try them again.
    async fn postpone_usage_delivery(
        &self,
        event_ids: &[i64],
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), DbError>;

    /// How many usage events wait in the outbox, due or not.
    async fn undelivered_usage_count(&self) -> Result<u64, DbError>;
}
