//! Billing: organizations' own plans, usage per day for quotas and charts, and the outbox
//! that forwards usage events to the billing provider. The usage events themselves are
//! written by the operations they charge (`complete_generation`, `create_voice`), in the
//! same transaction, together with their outbox row.

#[macro_use]
mod queries;

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
