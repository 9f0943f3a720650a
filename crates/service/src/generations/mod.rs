//! Generation jobs: queueing one within the organization's plan, the [`worker`] that
//! claims and runs them, the in-process [`events`] hub through which a worker streams a
//! job's audio to its listeners while it runs, and the [`cancellation`] registry through
//! which a cancel stops this process's worker at once.

pub mod cancellation;
pub mod events;
pub mod worker;

use resonance_db::{Database, DbError, Generation, NewGeneration};
use resonance_domain::{GenerationId, GenerationParams, GenerationText, OrgId, VoiceId};
use tokio::sync::Notify;

use crate::billing::{Billing, BillingError, quota_exceeded};
use cancellation::Cancellations;

/// A generation to queue, every field within its bounds.
pub struct ValidGeneration {
    pub text: GenerationText,
    pub params: GenerationParams,
    pub voice_id: VoiceId,
    pub seed: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error("the voice's audio is not ready yet")]
    VoiceNotReady,
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Checks `org`'s subscription and plan and that the voice is visible to it, queues the job
/// under `id` (the caller may have subscribed to its events under it) and wakes an idle
/// worker of this process through `new_jobs`.
pub async fn queue(
    db: &dyn Database,
    billing: &Billing,
    new_jobs: &Notify,
    org: &OrgId,
    generation: ValidGeneration,
    id: GenerationId,
) -> Result<Generation, QueueError> {
    let quota = billing
        .check_generation(db, org, generation.text.char_count() as u64)
        .await?;
    let voice = db.get_voice(org, &generation.voice_id).await?;
    if voice.object_key.is_none() {
        return Err(QueueError::VoiceNotReady);
    }
    let new_generation = NewGeneration {
        id,
        org_id: org.clone(),
        voice_id: generation.voice_id,
        text: generation.text,
        params: generation.params,
        // Chosen here rather than by the engine, so that every take can be reproduced.
        seed: Some(generation.seed.unwrap_or_else(rand::random)),
    };
    let created = db
        .create_generation_within(&new_generation, &quota)
        .await
        .map_err(|error| match error {
            DbError::OverLimit(over) => {
                QueueError::Billing(BillingError::QuotaExceeded(quota_exceeded(over, &quota)))
            }
            other => other.into(),
        })?;
    new_jobs.notify_one();
    Ok(created)
}

/// Cancels one of `org`'s queued or running generations (which gives back its share of the
/// plan and records no usage) and stops this process's worker if it runs the job; a worker
/// elsewhere stops at its next heartbeat. `Conflict` once the job has finished.
pub async fn cancel(
    db: &dyn Database,
    cancellations: &Cancellations,
    org: &OrgId,
    id: &GenerationId,
) -> Result<Generation, DbError> {
    let cancelled = db.cancel_generation(org, id).await?;
    cancellations.cancel(id);
    Ok(cancelled)
}
