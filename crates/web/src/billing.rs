//! Usage and billing routes, and the checks the other routes run before any work (see
//! [`resonance_service::billing`]): each refuses with 403 `SUBSCRIPTION_REQUIRED` without an
//! active Polar subscription (when Polar is configured) and with 402 `QUOTA_EXCEEDED` when
//! the plan's limit would be passed.

use axum::Json;
use axum::extract::State;
use resonance_db::{Plan, Quota};
use resonance_domain::OrgId;
pub use resonance_service::billing::Period;
use resonance_service::billing::polar::{CustomerState, Polar};
use serde::Serialize;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// The organization's own plan, or the instance default.
pub async fn plan_of(state: &AppState, org: &OrgId) -> Result<Plan, ApiError> {
    Ok(state.billing.plan_of(state.db.as_ref(), org).await?)
}

/// [`resonance_service::billing::Billing::check_generation`] for a route.
pub async fn ensure_can_generate(
    state: &AppState,
    org: &OrgId,
    characters: u64,
) -> Result<Quota, ApiError> {
    Ok(state
        .billing
        .check_generation(state.db.as_ref(), org, characters)
        .await?)
}

/// [`resonance_service::billing::Billing::check_voice`] for a route.
pub async fn ensure_can_create_voice(
    state: &AppState,
    org: &OrgId,
) -> Result<Option<u64>, ApiError> {
    Ok(state.billing.check_voice(state.db.as_ref(), org).await?)
}

async fn customer_state<'a>(
    state: &'a AppState,
    org: &OrgId,
) -> Result<Option<(&'a Polar, Option<CustomerState>)>, ApiError> {
    Ok(state.billing.customer_state(org).await?)
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
