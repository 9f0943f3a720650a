//! The Polar API, as far as Resonance uses it: customer state (subscriptions and meters),
//! checkout sessions and event ingestion. The organization's id is the Polar customer's
//! external id, so no mapping is stored here.

use std::time::Duration;

use resonance_db::{UsageEvent, UsageKind};
use resonance_domain::OrgId;
use serde::Deserialize;
use serde_json::{Value, json};

/// Polar's production API; `https://sandbox-api.polar.sh` is the sandbox.
pub const DEFAULT_API_URL: &str = "https://api.polar.sh";

#[derive(Clone)]
pub struct PolarSettings {
    /// An organization access token (`polar_oat_...`); never logged.
    pub access_token: String,
    /// Products a subscription must be to, and the products checkout offers (first is
    /// preselected).
    pub product_ids: Vec<String>,
    /// Base URL of the API, without a trailing slash.
    pub api_url: String,
}

impl std::fmt::Debug for PolarSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolarSettings")
            .field("product_ids", &self.product_ids)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// A Polar request that failed; says what was asked, never the token.
#[derive(Debug, thiserror::Error)]
pub enum PolarError {
    #[error("Polar could not be reached for {what}: {source}")]
    Unreachable {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("Polar answered {status} to {what}: {body}")]
    Status {
        what: &'static str,
        status: u16,
        body: String,
    },
    #[error("Polar's answer to {what} was not understood: {source}")]
    Unreadable {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

/// What Polar knows about an organization (its customer state).
#[derive(Debug, Clone, Deserialize)]
pub struct CustomerState {
    /// Polar's customer id.
    pub id: String,
    #[serde(default)]
    pub active_subscriptions: Vec<Subscription>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub product_id: String,
    #[serde(default)]
    pub meters: Vec<SubscriptionMeter>,
}

/// A usage meter of a subscription in the current billing period.
#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionMeter {
    pub meter_id: String,
    #[serde(default)]
    pub consumed_units: f64,
    #[serde(default)]
    pub credited_units: f64,
    /// What the consumption costs so far, in cents.
    #[serde(default)]
    pub amount: i64,
}

pub struct Polar {
    http: reqwest::Client,
    settings: PolarSettings,
}

const TIMEOUT: Duration = Duration::from_secs(10);

impl Polar {
    pub fn new(settings: PolarSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .expect("an HTTP client with default TLS settings");
        Self { http, settings }
    }

    pub fn settings(&self) -> &PolarSettings {
        &self.settings
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.api_url.trim_end_matches('/'))
    }

    /// Sends a request and returns the response when its status is a success.
    async fn send(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, PolarError> {
        let response = request
            .bearer_auth(&self.settings.access_token)
            .send()
            .await
            .map_err(|source| PolarError::Unreachable { what, source })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let mut body = response.text().await.unwrap_or_default();
        body.truncate(500);
        Err(PolarError::Status { what, status, body })
    }

    /// The organization's customer state; `None` when it has never been a Polar customer.
    pub async fn customer_state(&self, org: &OrgId) -> Result<Option<CustomerState>, PolarError> {
        const WHAT: &str = "the customer state";
        let request = self
            .http
            .get(self.url(&format!("/v1/customers/external/{org}/state")));
        match self.send(WHAT, request).await {
            Ok(response) => response
                .json()
                .await
                .map(Some)
                .map_err(|source| PolarError::Unreadable { what: WHAT, source }),
            Err(PolarError::Status { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The subscriptions of `state` to the configured products.
    pub fn subscriptions<'a>(
        &'a self,
        state: &'a CustomerState,
    ) -> impl Iterator<Item = &'a Subscription> + 'a {
        state
            .active_subscriptions
            .iter()
            .filter(|s| self.settings.product_ids.contains(&s.product_id))
    }

    /// Opens a checkout session for the configured products and returns its URL.
    pub async fn create_checkout(
        &self,
        org: &OrgId,
        success_url: Option<&str>,
    ) -> Result<String, PolarError> {
        const WHAT: &str = "a checkout session";
        #[derive(Deserialize)]
        struct Checkout {
            url: String,
        }
        let mut body = json!({
            "products": self.settings.product_ids,
            "external_customer_id": org.as_str(),
        });
        if let Some(url) = success_url {
            body["success_url"] = json!(url);
        }
        let request = self.http.post(self.url("/v1/checkouts/")).json(&body);
        let checkout: Checkout = self
            .send(WHAT, request)
            .await?
            .json()
            .await
            .map_err(|source| PolarError::Unreadable { what: WHAT, source })?;
        Ok(checkout.url)
    }

    /// Ingests usage events. Each carries its ledger id as `external_id`, so that Polar
    /// ignores an event it already has when a delivery is repeated.
    pub async fn ingest(&self, events: &[UsageEvent]) -> Result<(), PolarError> {
        let events: Vec<Value> = events.iter().map(event_body).collect();
        let request = self
            .http
            .post(self.url("/v1/events/ingest"))
            .json(&json!({ "events": events }));
        self.send("usage events", request).await.map(|_| ())
    }
}

/// The idempotency key of a ledger row at Polar.
pub fn external_event_id(event: &UsageEvent) -> String {
    format!("resonance-usage-{}", event.id)
}

fn event_body(event: &UsageEvent) -> Value {
    let metadata = match event.kind {
        UsageKind::TtsGeneration => json!({ "characters": event.quantity }),
        UsageKind::VoiceCreation => json!({}),
    };
    let timestamp = event
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a stored timestamp formats as RFC 3339");
    json!({
        "name": event.kind.as_str(),
        "external_customer_id": event.org_id.as_str(),
        "external_id": external_event_id(event),
        "timestamp": timestamp,
        "metadata": metadata,
    })
}
