//! Usage metering, plans and quotas, and (optionally) billing with Polar.
//!
//! Routes that consume something call a check before doing any work:
//! [`ensure_can_generate`] before a generation is queued and [`ensure_can_create_voice`]
//! before a voice upload is read. Each refuses with 403 `SUBSCRIPTION_REQUIRED` when Polar
//! is configured and the organization has no active subscription to a configured product,
//! and with 402 `QUOTA_EXCEEDED` when its plan's limit would be passed. The usage itself is
//! recorded by the database, in the transaction that creates what is charged, and reaches
//! Polar through the [`outbox`].

pub mod outbox;
pub mod period;
pub mod polar;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use resonance_db::{Database, OverLimit, Plan, PlanLimit, Quota};
use resonance_domain::OrgId;
use serde::Serialize;
use time::{Date, OffsetDateTime};
use tokio::task::JoinHandle;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::outbox::OutboxSettings;
pub use self::period::Period;
use self::polar::{CustomerState, Polar, PolarSettings};
use crate::auth::Caller;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};

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

    pub(crate) fn now(&self) -> OffsetDateTime {
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

/// The organization's own plan, or the instance default.
pub async fn plan_of(state: &AppState, org: &OrgId) -> Result<Plan, ApiError> {
    Ok(state
        .db
        .org_plan(org)
        .await?
        .unwrap_or(state.billing.default_plan))
}

/// Refuses a generation of `characters` characters for `org` before any work: 403
/// `SUBSCRIPTION_REQUIRED` without an active Polar subscription (when Polar is configured),
/// 402 `QUOTA_EXCEEDED` when the organization already runs as many jobs as its plan allows
/// or the characters (queued and running ones included) would pass this period's quota.
/// Returns the quota to create the generation within
/// (`Generations::create_generation_within`), which holds under parallel requests.
pub async fn ensure_can_generate(
    state: &AppState,
    org: &OrgId,
    characters: u64,
) -> Result<Quota, ApiError> {
    ensure_subscribed(state, org).await?;
    let period = Period::containing(state.billing.now());
    let quota = Quota {
        plan: plan_of(state, org).await?,
        period_start: period.start,
        period_end: period.end,
    };
    if quota.plan != Plan::default() {
        let usage = state
            .db
            .generation_usage(org, period.start, period.end)
            .await?;
        quota
            .plan
            .check_generation(&usage, characters)
            .map_err(|over| quota_exceeded(over, &quota))?;
    }
    Ok(quota)
}

/// Refuses a new custom voice for `org` before any work: 403 `SUBSCRIPTION_REQUIRED`
/// without an active Polar subscription (when Polar is configured), 402 `QUOTA_EXCEEDED`
/// when every voice slot of its plan is taken. Returns the slots to create the voice
/// within (`Voices::create_voice_within`), which holds under parallel requests.
pub async fn ensure_can_create_voice(
    state: &AppState,
    org: &OrgId,
) -> Result<Option<u64>, ApiError> {
    ensure_subscribed(state, org).await?;
    let plan = plan_of(state, org).await?;
    if plan.voice_slots.is_some() {
        let kept = state.db.custom_voice_count(org).await?;
        plan.check_voice_slots(kept)
            .map_err(|over| ApiError::QuotaExceeded(over.into()))?;
    }
    Ok(plan.voice_slots)
}

/// The refusal of a creation over `quota`'s plan: the character quota says when it resets.
pub fn quota_exceeded(over: OverLimit, quota: &Quota) -> ApiError {
    let mut refusal = QuotaExceeded::from(over);
    if over.limit == PlanLimit::CharactersPerMonth {
        refusal.resets_at = Some(quota.period_end);
    }
    ApiError::QuotaExceeded(refusal)
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

/// Polar's customer state, when Polar is configured.
async fn customer_state<'a>(
    state: &'a AppState,
    org: &OrgId,
) -> Result<Option<(&'a Polar, Option<CustomerState>)>, ApiError> {
    let Some(polar) = state.billing.polar() else {
        return Ok(None);
    };
    let customer = polar
        .customer_state(org)
        .await
        .map_err(|e| ApiError::BillingUnavailable(e.to_string()))?;
    Ok(Some((polar, customer)))
}

async fn ensure_subscribed(state: &AppState, org: &OrgId) -> Result<(), ApiError> {
    match customer_state(state, org).await? {
        None => Ok(()),
        Some((polar, Some(customer))) if polar.subscriptions(&customer).next().is_some() => Ok(()),
        Some(_) => Err(ApiError::SubscriptionRequired),
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(usage))
        .routes(routes!(status))
        .routes(routes!(checkout))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageBody {
    period: PeriodBody,
    characters: Allowance,
    voices: Allowance,
    concurrent_jobs: Allowance,
    /// Every day of the period, first to last, days to come included.
    daily: Vec<DayBody>,
    /// Polar's meters for the subscription's billing period, when Polar is configured and
    /// answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    meters: Option<Vec<MeterBody>>,
}

#[derive(Debug, Serialize, ToSchema)]
struct PeriodBody {
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    end: OffsetDateTime,
}

/// What is used against what the plan allows (`None`: unlimited).
#[derive(Debug, Serialize, ToSchema)]
struct Allowance {
    used: u64,
    limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DayBody {
    date: String,
    characters: u64,
    voice_creations: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MeterBody {
    meter_id: String,
    consumed_units: f64,
    credited_units: f64,
    amount_cents: i64,
}

/// Usage
///
/// This period's (the calendar month in UTC) usage against the plan, per day, with Polar's
/// meters when Polar is configured and answers.
#[utoipa::path(
    get,
    path = "/api/usage",
    tag = "billing",
    responses(
        (status = 200, description = "Usage and limits", body = UsageBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`", body = ErrorBody),
    )
)]
async fn usage(State(state): State<AppState>, caller: Caller) -> Result<Json<UsageBody>, ApiError> {
    let org = &caller.org_id;
    let plan = plan_of(&state, org).await?;
    let period = Period::containing(state.billing.now());
    let used = state.db.daily_usage(org, period.start, period.end).await?;
    let daily: Vec<DayBody> = period
        .days()
        .map(|date: Date| {
            let day = used.iter().find(|d| d.date == date);
            DayBody {
                date: date.to_string(),
                characters: day.map_or(0, |d| d.characters),
                voice_creations: day.map_or(0, |d| d.voice_creations),
            }
        })
        .collect();
    // The local usage stays readable while Polar is down; only its meters are missing then.
    let customer = customer_state(&state, org).await.unwrap_or_else(|error| {
        tracing::warn!(?error, "usage without Polar's meters");
        None
    });
    let meters = customer.map(|(polar, customer)| {
        customer
            .iter()
            .flat_map(|c| polar.subscriptions(c))
            .flat_map(|s| &s.meters)
            .map(|m| MeterBody {
                meter_id: m.meter_id.clone(),
                consumed_units: m.consumed_units,
                credited_units: m.credited_units,
                amount_cents: m.amount,
            })
            .collect()
    });
    Ok(Json(UsageBody {
        period: PeriodBody {
            start: period.start,
            end: period.end,
        },
        characters: Allowance {
            used: used.iter().map(|d| d.characters).sum(),
            limit: plan.characters_per_month,
        },
        voices: Allowance {
            used: state.db.custom_voice_count(org).await?,
            limit: plan.voice_slots,
        },
        concurrent_jobs: Allowance {
            used: state.db.active_generation_count(org).await?,
            limit: plan.max_concurrent_jobs,
        },
        daily,
        meters,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody {
    /// Whether this instance bills through Polar; without it only plan limits apply.
    billing_enabled: bool,
    has_active_subscription: bool,
    /// Polar's customer id.
    customer_id: Option<String>,
    /// What the subscriptions' metered usage costs so far this billing period.
    estimated_cost_cents: i64,
}

/// Subscription status
///
/// The organization's subscription, from Polar's customer state.
#[utoipa::path(
    get,
    path = "/api/billing/status",
    tag = "billing",
    responses(
        (status = 200, description = "The subscription", body = StatusBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`", body = ErrorBody),
        (status = 503, description = "`BILLING_UNAVAILABLE`: Polar does not answer", body = ErrorBody),
    )
)]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<StatusBody>, ApiError> {
    let body = match customer_state(&state, &caller.org_id).await? {
        None => StatusBody {
            billing_enabled: false,
            has_active_subscription: false,
            customer_id: None,
            estimated_cost_cents: 0,
        },
        Some((polar, customer)) => {
            let subscriptions: Vec<_> = customer
                .iter()
                .flat_map(|c| polar.subscriptions(c))
                .collect();
            StatusBody {
                billing_enabled: true,
                has_active_subscription: !subscriptions.is_empty(),
                customer_id: customer.as_ref().map(|c| c.id.clone()),
                estimated_cost_cents: subscriptions
                    .iter()
                    .flat_map(|s| &s.meters)
                    .map(|m| m.amount)
                    .sum(),
            }
        }
    };
    Ok(Json(body))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutBody {
    /// Polar's checkout page; the browser goes there.
    url: String,
}

/// Subscribe
///
/// Admins only: a Polar checkout session for the organization.
#[utoipa::path(
    post,
    path = "/api/billing/checkout",
    tag = "billing",
    responses(
        (status = 200, description = "Where to send the browser", body = CheckoutBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "`NO_ACTIVE_ORGANIZATION`, or billing is not enabled", body = ErrorBody),
        (status = 503, description = "`BILLING_UNAVAILABLE`: Polar does not answer", body = ErrorBody),
    )
)]
async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CheckoutBody>, ApiError> {
    caller.require_admin()?;
    let polar = state
        .billing
        .polar()
        .ok_or_else(|| ApiError::Conflict("billing is not enabled on this instance".into()))?;
    let success_url = state
        .auth
        .settings
        .public_url
        .as_deref()
        .map(|base| format!("{}/billing?checkout=done", base.trim_end_matches('/')));
    let url = polar
        .create_checkout(&caller.org_id, success_url.as_deref())
        .await
        .map_err(|e| ApiError::BillingUnavailable(e.to_string()))?;
    Ok(Json(CheckoutBody { url }))
}
