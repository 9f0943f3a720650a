//! Delivers the usage outbox to Polar: due events in batches, oldest first; a failed batch
//! is tried again after an exponential backoff. Events leave the outbox only once Polar
//! has accepted them, and carry their ledger id as Polar's `external_id`, so an outage
//! delays them and a repeated delivery is not counted twice.

use std::sync::Arc;
use std::time::Duration;

use resonance_db::{Database, DbError};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use super::polar::Polar;

#[derive(Debug, Clone, Copy)]
pub struct OutboxSettings {
    /// How often the outbox is looked at.
    pub poll_interval: Duration,
    /// Wait after the first failed delivery; it doubles with each further failure.
    pub first_retry: Duration,
    /// The longest wait between two attempts.
    pub max_retry: Duration,
    /// Events per ingestion request.
    pub batch_size: u32,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            first_retry: Duration::from_secs(10),
            max_retry: Duration::from_secs(3600),
            batch_size: 100,
        }
    }
}

impl OutboxSettings {
    /// The wait after a batch's `attempts`-th consecutive failure (1 for the first).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first_retry
            .saturating_mul(1 << doublings)
            .min(self.max_retry)
    }
}

/// What one pass over the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub delivered: usize,
    pub postponed: usize,
}

/// Delivers every event due at `now`; stops at the first failed batch, which waits for
/// its next attempt.
pub async fn deliver_due(
    db: &dyn Database,
    polar: &Polar,
    settings: &OutboxSettings,
    now: OffsetDateTime,
) -> Result<Pass, DbError> {
    let mut pass = Pass::default();
    loop {
        let due = db.due_usage_deliveries(now, settings.batch_size).await?;
        if due.is_empty() {
            return Ok(pass);
        }
        let ids: Vec<i64> = due.iter().map(|p| p.event.id).collect();
        let events: Vec<_> = due.iter().map(|p| p.event.clone()).collect();
        match polar.ingest(&events).await {
            Ok(()) => {
                db.mark_usage_delivered(&ids).await?;
                pass.delivered += ids.len();
            }
            Err(error) => {
                let attempts = due.iter().map(|p| p.attempts).max().unwrap_or(0) + 1;
                let wait = settings.backoff(attempts);
                tracing::warn!(%error, events = ids.len(), attempts, retry_in_secs = wait.as_secs_f64(), "usage delivery to Polar failed");
                db.postpone_usage_delivery(&ids, now + wait, &error.to_string())
                    .await?;
                pass.postponed += ids.len();
                return Ok(pass);
            }
        }
    }
}

/// Delivers the outbox every `poll_interval` until aborted.
pub fn spawn(db: Arc<dyn Database>, polar: Arc<Polar>, settings: OutboxSettings) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(settings.poll_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) =
                deliver_due(db.as_ref(), &polar, &settings, OffsetDateTime::now_utc()).await
            {
                tracing::error!(%error, "cannot read the usage outbox");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let settings = OutboxSettings {
            first_retry: Duration::from_secs(10),
            max_retry: Duration::from_secs(60),
            ..OutboxSettings::default()
        };
        let waits: Vec<u64> = (1..=5).map(|n| settings.backoff(n).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 60, 60]);
        assert_eq!(settings.backoff(u32::MAX).as_secs(), 60);
    }
}
