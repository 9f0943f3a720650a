//! Usage metering, plans and quotas, and (optionally) billing with Polar.
//!
//! Whatever consumes something is checked before any work: [`Billing::check_generation`]
//! before a generation is queued and [`Billing::check_voice`] before a voice upload is
//! read. Each refuses when Polar is configured and the organization has no active
//! subscription to a configured product, or when its plan's limit would be passed. The
//! usage itself is recorded by the database, in the transaction that creates what is
//! charged, and reaches Polar through the [`outbox`].

pub mod outbox;
pub mod period;
pub mod polar;

use std::sync::Arc;

use resonance_db::{Database, DbError, OverLimit, Plan, PlanLimit, Quota};
use resonance_domain::OrgId;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use self::outbox::OutboxSettings;
pub use self::period::Period;
use self::polar::{CustomerState, Polar, PolarSettings};

/// How the instance bills: its default plan and, optionally, Polar.
#[derive(Debug, Clone, Default)]
pub struct BillingSettings {
    /// The plan of every organization without its own (`resonance orgs set-plan`).
    pub default_plan: Plan,
    pub polar: Option<PolarSettings>,
    pub outbox: OutboxSettings,
}

/// Where the current time comes from; tests move it to another period.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

pub struct Billing {
    default_plan: Plan,
    polar: Option<Arc<Polar>>,
    outbox: OutboxSettings,
    clock: Clock,
}

impl Default for Billing {
    fn default() -> Self {
        Self::new(BillingSettings::default())
    }
}

impl Billing {
    pub fn new(settings: BillingSettings) -> Self {
        Self {
            default_plan: settings.default_plan,
            polar: settings.polar.map(|polar| Arc::new(Polar::new(polar))),
            outbox: settings.outbox,
            clock: Arc::new(OffsetDateTime::now_utc),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn default_plan(&self) -> Plan {
        self.default_plan
    }

    pub fn polar(&self) -> Option<&Polar> {
        self.polar.as_deref()
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// Starts delivering the usage outbox to Polar when Polar is configured.
    pub fn spawn_outbox(&self, db: Arc<dyn Database>) -> Option<JoinHandle<()>> {
        let polar = self.polar.clone()?;
        Some(outbox::spawn(db, polar, self.outbox))
    }
}

/// Which limit of a plan a request would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuotaLimit {
    CharactersPerMonth,
    VoiceSlots,
    MaxConcurrentJobs,
}

/// A refusal because a plan's limit would be passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaExceeded {
    pub limit: QuotaLimit,
    /// What the organization uses now (characters this period, voices kept, jobs active).
    pub used: u64,
    /// What the plan allows.
    pub allowed: u64,
    /// What the refused request needed.
    pub requested: u64,
    /// When the usage starts again from zero; `None` for limits that do not reset.
    #[serde(with = "time::serde::rfc3339::option")]
    pub resets_at: Option<OffsetDateTime>,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.limit {
            QuotaLimit::CharactersPerMonth => {
                write!(
                    f,
                    "this needs {} characters but {} of this month's {} are used",
                    self.requested, self.used, self.allowed
                )?;
                if let Some(reset) = self.resets_at {
                    write!(f, "; the quota resets on {}", reset.date())?;
                }
                Ok(())
            }
            QuotaLimit::VoiceSlots => write!(
                f,
                "all {} custom voice slots are in use; delete a voice to make room",
                self.allowed
            ),
            QuotaLimit::MaxConcurrentJobs => write!(
                f,
                "{} generations are queued or running, the most this plan allows at once; \
                 wait for one to finish",
                self.used
            ),
        }
    }
}

/// Why a billing check refused, or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("this organization needs an active subscription")]
    SubscriptionRequired,
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// Polar failed; the detail is for the log.
    #[error("billing provider: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl Billing {
    /// The organization's own plan, or the instance default.
    pub async fn plan_of(&self, db: &dyn Database, org: &OrgId) -> Result<Plan, DbError> {
        Ok(db.org_plan(org).await?.unwrap_or(self.default_plan))
    }

    /// Refuses a generation of `characters` characters for `org` before any work: without an
    /// active Polar subscription (when Polar is configured), when the organization already
    /// runs as many jobs as its plan allows, or when the characters (queued and running ones
    /// included) would pass this period's quota. Returns the quota to create the generation
    /// within (`Generations::create_generation_within`), which holds under parallel requests.
    pub async fn check_generation(
        &self,
        db: &dyn Database,
        org: &OrgId,
        characters: u64,
    ) -> Result<Quota, BillingError> {
        self.check_subscribed(org).await?;
        let period = Period::containing(self.now());
        let quota = Quota {
            plan: self.plan_of(db, org).await?,
            period_start: period.start,
            period_end: period.end,
        };
        if quota.plan != Plan::default() {
            let usage = db.generation_usage(org, period.start, period.end).await?;
            quota
                .plan
                .check_generation(&usage, characters)
                .map_err(|over| BillingError::QuotaExceeded(quota_exceeded(over, &quota)))?;
        }
        Ok(quota)
    }

    /// Refuses a new custom voice for `org` before any work: without an active Polar
    /// subscription (when Polar is configured), or when every voice slot of its plan is
    /// taken. Returns the slots to create the voice within (`Voices::create_voice_within`),
    /// which holds under parallel requests.
    pub async fn check_voice(
        &self,
        db: &dyn Database,
        org: &OrgId,
    ) -> Result<Option<u64>, BillingError> {
        self.check_subscribed(org).await?;
        let plan = self.plan_of(db, org).await?;
        if plan.voice_slots.is_some() {
            let kept = db.custom_voice_count(org).await?;
            plan.check_voice_slots(kept)
                .map_err(|over| BillingError::QuotaExceeded(over.into()))?;
        }
        Ok(plan.voice_slots)
    }

    /// Polar's customer state, when Polar is configured.
    pub async fn customer_state(
        &self,
        org: &OrgId,
    ) -> Result<Option<(&Polar, Option<CustomerState>)>, BillingError> {
        let Some(polar) = self.polar() else {
            return Ok(None);
        };
        let customer = polar
            .customer_state(org)
            .await
            .map_err(|e| BillingError::Unavailable(e.to_string()))?;
        Ok(Some((polar, customer)))
    }

    async fn check_subscribed(&self, org: &OrgId) -> Result<(), BillingError> {
        match self.customer_state(org).await? {
            None => Ok(()),
            Some((polar, Some(customer))) if polar.subscriptions(&customer).next().is_some() => {
                Ok(())
            }
            Some(_) => Err(BillingError::SubscriptionRequired),
        }
    }
}

/// The refusal of a creation over `quota`'s plan: the character quota says when it resets.
pub fn quota_exceeded(over: OverLimit, quota: &Quota) -> QuotaExceeded {
    let mut refusal = QuotaExceeded::from(over);
    if over.limit == PlanLimit::CharactersPerMonth {
        refusal.resets_at = Some(quota.period_end);
    }
    refusal
}

impl From<OverLimit> for QuotaExceeded {
    fn from(over: OverLimit) -> Self {
        Self {
            limit: match over.limit {
                PlanLimit::CharactersPerMonth => QuotaLimit::CharactersPerMonth,
                PlanLimit::VoiceSlots => QuotaLimit::VoiceSlots,
                PlanLimit::MaxConcurrentJobs => QuotaLimit::MaxConcurrentJobs,
            },
            used: over.used,
            allowed: over.allowed,
            requested: over.requested,
            resets_at: None,
        }
    }
}
