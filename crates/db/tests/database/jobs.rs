use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use resonance_db::{DbError, MAX_ATTEMPTS, UsageKind};
use resonance_domain::{GenerationStatus, VoiceOwner};

use crate::generations::generate;
use crate::{TestDb, new_voice, on_both_backends};

const LEASE: Duration = Duration::from_secs(60);

/// Lets a lease of `Duration::ZERO` taken now expire (timestamps are milliseconds).
async fn let_leases_expire() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// The organization's usage from generations (its voice creation left out).
async fn generation_usage(
    t: &TestDb,
    org: &resonance_domain::OrgId,
) -> Vec<resonance_db::UsageEvent> {
    let mut usage = t.db.list_usage_events(org).await.unwrap();
    usage.retain(|event| event.kind == UsageKind::TtsGeneration);
    usage
}

async fn org_with_voice(t: &TestDb) -> (resonance_domain::OrgId, resonance_domain::VoiceId) {
    let org = t.new_org("Acme").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Narrator"))
            .await
            .unwrap();
    (org, voice.id)
}

async fn claims_the_oldest_queued_job_once(t: TestDb) {
    let (org, voice) = org_with_voice(&t).await;
    let first = generate(&t, &org, &voice).await;
    assert_eq!(first.status, GenerationStatus::Queued);
    assert_eq!((first.progress, first.attempts), (0, 0));
    tokio::time::sleep(Duration::from_millis(2)).await;
    let second = generate(&t, &org, &voice).await;

    let claimed = t.db.claim_generation("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.id, first.id);
    assert_eq!(claimed.status, GenerationStatus::Running);
    assert_eq!(claimed.attempts, 1);
    let next = t.db.claim_generation("w2", LEASE).await.unwrap().unwrap();
    assert_eq!(next.id, second.id);
    assert!(t.db.claim_generation("w3", LEASE).await.unwrap().is_none());

    assert!(
        t.db.heartbeat_generation(&first.id, "w1", LEASE, 40)
            .await
            .unwrap()
    );
    assert!(
        !t.db
            .heartbeat_generation(&first.id, "w2", LEASE, 90)
            .await
            .unwrap()
    );
    let seen = t.db.get_generation(&org, &first.id).await.unwrap();
    assert_eq!(seen.progress, 40);
}

async fn an_expired_lease_is_claimed_again_and_the_old_worker_is_shut_out(t: TestDb) {
    let (org, voice) = org_with_voice(&t).await;
    let job = generate(&t, &org, &voice).await;
    t.db.claim_generation("dead", Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let_leases_expire().await;

    let again =
        t.db.claim_generation("alive", LEASE)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(again.id, job.id);
    assert_eq!(again.attempts, 2);

    let key = format!("generations/orgs/{org}/{}", job.id);
    assert!(
        !t.db
            .heartbeat_generation(&job.id, "dead", LEASE, 50)
            .await
            .unwrap()
    );
    assert!(
        t.db.complete_generation(&job.id, "dead", &key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!t.db.fail_generation(&job.id, "dead", "boom").await.unwrap());
    assert!(generation_usage(&t, &org).await.is_empty());

    let done =
        t.db.complete_generation(&job.id, "alive", &key)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(done.status, GenerationStatus::Succeeded);
    assert_eq!(done.progress, 100);
    assert_eq!(done.object_key.as_deref(), Some(key.as_str()));
    assert!(done.finished_at.is_some());
}

async fn success_records_usage_once_and_failure_none(t: TestDb) {
    let (org, voice) = org_with_voice(&t).await;
    let ok = generate(&t, &org, &voice).await;
    let bad = generate(&t, &org, &voice).await;
    let a = t.db.claim_generation("w", LEASE).await.unwrap().unwrap();
    let b = t.db.claim_generation("w", LEASE).await.unwrap().unwrap();
    assert_eq!(
        HashSet::from([a.id.clone(), b.id.clone()]),
        HashSet::from([ok.id.clone(), bad.id.clone()])
    );

    t.db.complete_generation(&ok.id, "w", "generations/orgs/x/y")
        .await
        .unwrap()
        .unwrap();
    assert!(
        t.db.complete_generation(&ok.id, "w", "generations/orgs/x/y")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.db.fail_generation(&bad.id, "w", "the voice could not be read")
            .await
            .unwrap()
    );

    let usage = generation_usage(&t, &org).await;
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].kind, UsageKind::TtsGeneration);
    assert_eq!(usage[0].quantity, ok.text.char_count() as u64);
    assert_eq!(usage[0].generation_id.as_ref(), Some(&ok.id));
    let failed = t.db.get_generation(&org, &bad.id).await.unwrap();
    assert_eq!(failed.status, GenerationStatus::Failed);
    assert_eq!(
        failed.failure_reason.as_deref(),
        Some("the voice could not be read")
    );
    assert_eq!(failed.object_key, None);

    let other = t.new_org("Other").await;
    assert!(t.db.list_usage_events(&other).await.unwrap().is_empty());
}

async fn cancel_stops_queued_and_running_jobs_only(t: TestDb) {
    let (org, voice) = org_with_voice(&t).await;
    let queued = generate(&t, &org, &voice).await;
    let cancelled = t.db.cancel_generation(&org, &queued.id).await.unwrap();
    assert_eq!(cancelled.status, GenerationStatus::Cancelled);
    assert!(t.db.claim_generation("w", LEASE).await.unwrap().is_none());

    let running = generate(&t, &org, &voice).await;
    t.db.claim_generation("w", LEASE).await.unwrap().unwrap();
    let other = t.new_org("Other").await;
    assert!(matches!(
        t.db.cancel_generation(&other, &running.id).await,
        Err(DbError::NotFound("generation"))
    ));
    t.db.cancel_generation(&org, &running.id).await.unwrap();
    assert!(
        !t.db
            .heartbeat_generation(&running.id, "w", LEASE, 10)
            .await
            .unwrap()
    );
    assert!(
        t.db.complete_generation(&running.id, "w", "k")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        t.db.cancel_generation(&org, &running.id).await,
        Err(DbError::Conflict(_))
    ));
    assert!(generation_usage(&t, &org).await.is_empty());
}

async fn a_job_that_keeps_losing_its_worker_fails(t: TestDb) {
    let (org, voice) = org_with_voice(&t).await;
    let job = generate(&t, &org, &voice).await;
    for attempt in 1..=MAX_ATTEMPTS {
        let claimed =
            t.db.claim_generation("w", Duration::ZERO)
                .await
                .unwrap()
                .unwrap();
        assert_eq!(claimed.attempts, attempt);
        let_leases_expire().await;
    }
    assert!(t.db.claim_generation("w", LEASE).await.unwrap().is_none());
    let failed = t.db.get_generation(&org, &job.id).await.unwrap();
    assert_eq!(failed.status, GenerationStatus::Failed);
    assert!(failed.failure_reason.unwrap().contains("try again"));
}

async fn concurrent_workers_never_claim_the_same_job(t: TestDb) {
    let (org, voice) = org_with_voice(&t).await;
    let mut created = HashSet::new();
    for _ in 0..40 {
        created.insert(generate(&t, &org, &voice).await.id);
    }
    let db = t.db.clone();
    let workers: Vec<_> = (0..8)
        .map(|n| {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                let name = format!("worker-{n}");
                let mut mine = Vec::new();
                while let Some(job) = db.claim_generation(&name, LEASE).await.unwrap() {
                    mine.push(job.id);
                }
                mine
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await.unwrap());
    }
    assert_eq!(claimed.len(), 40, "every job claimed exactly once");
    assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), created);
}

on_both_backends!(
    claims_the_oldest_queued_job_once,
    an_expired_lease_is_claimed_again_and_the_old_worker_is_shut_out,
    success_records_usage_once_and_failure_none,
    cancel_stops_queued_and_running_jobs_only,
    a_job_that_keeps_losing_its_worker_fails,
    concurrent_workers_never_claim_the_same_job,
);
