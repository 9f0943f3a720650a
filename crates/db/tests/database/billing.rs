use std::sync::Arc;
use std::time::Duration;

use resonance_db::{DbError, NewGeneration, OverLimit, Plan, PlanLimit, Quota, UsageKind};
use resonance_domain::{
    GenerationId, GenerationParams, GenerationText, OrgId, VoiceId, VoiceOwner,
};
use time::OffsetDateTime;

use crate::generations::generate;
use crate::{TestDb, new_voice, on_both_backends};

const LEASE: Duration = Duration::from_secs(60);

async fn voice_creation_is_charged_once_with_its_outbox_row(t: TestDb) {
    let org = t.new_org("Acme").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Narrator"))
            .await
            .unwrap();
    t.db.create_voice(&new_voice(VoiceOwner::System, "Shared"))
        .await
        .unwrap();

    let usage = t.db.list_usage_events(&org).await.unwrap();
    assert_eq!(usage.len(), 1, "system voices are charged to no one");
    assert_eq!(usage[0].kind, UsageKind::VoiceCreation);
    assert_eq!(usage[0].quantity, 1);
    assert_eq!(usage[0].voice_id.as_ref(), Some(&voice.id));
    assert_eq!(usage[0].generation_id, None);

    let due =
        t.db.due_usage_deliveries(OffsetDateTime::now_utc(), 10)
            .await
            .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event, usage[0]);
    assert_eq!(due[0].attempts, 0);

    // A refused voice (duplicate id) is not charged.
    let mut duplicate = new_voice(VoiceOwner::Org(org.clone()), "Again");
    duplicate.id = voice.id.clone();
    assert!(matches!(
        t.db.create_voice(&duplicate).await,
        Err(DbError::Conflict(_))
    ));
    assert_eq!(t.db.list_usage_events(&org).await.unwrap().len(), 1);
    assert_eq!(t.db.undelivered_usage_count().await.unwrap(), 1);
    assert_eq!(t.db.custom_voice_count(&org).await.unwrap(), 1);
}

async fn parallel_voice_creations_are_each_charged_exactly_once(t: TestDb) {
    const N: usize = 24;
    let org = t.new_org("Acme").await;
    let tasks: Vec<_> = (0..N)
        .map(|n| {
            let db = Arc::clone(&t.db);
            let owner = VoiceOwner::Org(org.clone());
            tokio::spawn(async move {
                db.create_voice(&new_voice(owner, &format!("Voice {n}")))
                    .await
                    .unwrap()
                    .id
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        created.push(task.await.unwrap());
    }
    let usage = t.db.list_usage_events(&org).await.unwrap();
    assert_eq!(usage.len(), N);
    assert_eq!(usage.iter().map(|e| e.quantity).sum::<u64>(), N as u64);
    let mut charged: Vec<_> = usage.iter().filter_map(|e| e.voice_id.clone()).collect();
    charged.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    created.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(charged, created);
    assert_eq!(t.db.undelivered_usage_count().await.unwrap(), N as u64);
    assert_eq!(t.db.custom_voice_count(&org).await.unwrap(), N as u64);
}

async fn parallel_job_completions_are_each_charged_exactly_once(t: TestDb) {
    const N: usize = 20;
    let org = t.new_org("Acme").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Narrator"))
            .await
            .unwrap();
    let mut expected_characters = 0;
    for _ in 0..N {
        expected_characters += generate(&t, &org, &voice.id).await.text.char_count() as u64;
    }
    assert_eq!(t.db.active_generation_count(&org).await.unwrap(), N as u64);
    let mut claimed: Vec<GenerationId> = Vec::new();
    while let Some(job) = t.db.claim_generation("w", LEASE).await.unwrap() {
        claimed.push(job.id);
    }
    assert_eq!(claimed.len(), N);
    // Every job is completed twice at once: only one of each pair may charge.
    let tasks: Vec<_> = claimed
        .iter()
        .chain(claimed.iter())
        .map(|id| {
            let db = Arc::clone(&t.db);
            let id = id.clone();
            tokio::spawn(async move {
                db.complete_generation(&id, "w", "generations/x")
                    .await
                    .unwrap()
                    .is_some()
            })
        })
        .collect();
    let mut completed = 0;
    for task in tasks {
        completed += usize::from(task.await.unwrap());
    }
    assert_eq!(completed, N);

    let charged: Vec<_> =
        t.db.list_usage_events(&org)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == UsageKind::TtsGeneration)
            .collect();
    assert_eq!(charged.len(), N);
    assert_eq!(
        charged.iter().map(|e| e.quantity).sum::<u64>(),
        expected_characters
    );
    assert_eq!(t.db.active_generation_count(&org).await.unwrap(), 0);
    // The voice creation and every generation wait for delivery.
    assert_eq!(t.db.undelivered_usage_count().await.unwrap(), N as u64 + 1);
}

async fn daily_usage_sums_per_day_within_the_window(t: TestDb) {
    let org = t.new_org("Acme").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Narrator"))
            .await
            .unwrap();
    let generation = generate(&t, &org, &voice.id).await;
    t.db.claim_generation("w", LEASE).await.unwrap().unwrap();
    t.db.complete_generation(&generation.id, "w", "generations/x")
        .await
        .unwrap()
        .unwrap();
    // The voice was created 40 days ago.
    t.execute_raw(
        "UPDATE usage_events SET created_at = created_at - 3456000000 \
         WHERE kind = 'voice_creation'",
    )
    .await
    .unwrap();

    let now = OffsetDateTime::now_utc();
    let recent =
        t.db.daily_usage(
            &org,
            now - time::Duration::days(10),
            now + time::Duration::days(1),
        )
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].date, now.date());
    assert_eq!(recent[0].characters, generation.text.char_count() as u64);
    assert_eq!(recent[0].voice_creations, 0);

    let earlier =
        t.db.daily_usage(
            &org,
            now - time::Duration::days(50),
            now - time::Duration::days(10),
        )
        .await
        .unwrap();
    assert_eq!(earlier.len(), 1);
    assert_eq!(earlier[0].date, (now - time::Duration::days(40)).date());
    assert_eq!((earlier[0].characters, earlier[0].voice_creations), (0, 1));

    let other = t.new_org("Other").await;
    assert!(
        t.db.daily_usage(
            &other,
            now - time::Duration::days(50),
            now + time::Duration::days(1)
        )
        .await
        .unwrap()
        .is_empty()
    );
}

async fn org_plans_replace_and_clear(t: TestDb) {
    let org = t.new_org("Acme").await;
    assert_eq!(t.db.org_plan(&org).await.unwrap(), None);
    let plan = Plan {
        characters_per_month: Some(10_000),
        voice_slots: Some(3),
        max_concurrent_jobs: None,
    };
    t.db.set_org_plan(&org, &plan).await.unwrap();
    assert_eq!(t.db.org_plan(&org).await.unwrap(), Some(plan));
    let unlimited = Plan::default();
    t.db.set_org_plan(&org, &unlimited).await.unwrap();
    assert_eq!(t.db.org_plan(&org).await.unwrap(), Some(unlimited));
    t.db.clear_org_plan(&org).await.unwrap();
    assert_eq!(t.db.org_plan(&org).await.unwrap(), None);

    assert!(matches!(
        t.db.set_org_plan(&OrgId::new(), &plan).await,
        Err(DbError::NotFound("organization"))
    ));
}

async fn postponed_deliveries_wait_and_delivered_ones_leave(t: TestDb) {
    let org = t.new_org("Acme").await;
    for name in ["One", "Two", "Three"] {
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), name))
            .await
            .unwrap();
    }
    let now = OffsetDateTime::now_utc();
    let due = t.db.due_usage_deliveries(now, 2).await.unwrap();
    assert_eq!(due.len(), 2, "the limit holds");
    let ids: Vec<i64> = due.iter().map(|p| p.event.id).collect();
    assert!(ids[0] < ids[1], "oldest first");

    let later = now + time::Duration::minutes(5);
    t.db.postpone_usage_delivery(&ids, later, "503 from the provider")
        .await
        .unwrap();
    let still_due = t.db.due_usage_deliveries(now, 10).await.unwrap();
    assert_eq!(still_due.len(), 1);
    assert!(!ids.contains(&still_due[0].event.id));

    let retried = t.db.due_usage_deliveries(later, 10).await.unwrap();
    assert_eq!(retried.len(), 3);
    assert_eq!(
        retried.iter().filter(|p| p.attempts == 1).count(),
        2,
        "the postponed ones count a failed attempt"
    );

    t.db.mark_usage_delivered(&ids).await.unwrap();
    assert_eq!(t.db.undelivered_usage_count().await.unwrap(), 1);
    assert_eq!(
        t.db.list_usage_events(&org).await.unwrap().len(),
        3,
        "the ledger keeps delivered events"
    );
}

/// Runs `n` creations at once; returns how many succeeded, and every refusal.
async fn at_once<T: Send + 'static>(
    n: usize,
    create: impl Fn(usize) -> tokio::task::JoinHandle<Result<T, DbError>>,
) -> (usize, Vec<OverLimit>) {
    let tasks: Vec<_> = (0..n).map(create).collect();
    let (mut created, mut refused) = (0, Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(DbError::OverLimit(over)) => refused.push(over),
            Err(other) => panic!("{other}"),
        }
    }
    (created, refused)
}

async fn parallel_voice_creations_stop_at_the_slots(t: TestDb) {
    let org = t.new_org("Acme").await;
    let (created, refused) = at_once(10, |n| {
        let db = Arc::clone(&t.db);
        let voice = new_voice(VoiceOwner::Org(org.clone()), &format!("Voice {n}"));
        tokio::spawn(async move { db.create_voice_within(&voice, Some(2)).await })
    })
    .await;
    assert_eq!(created, 2);
    assert!(refused.iter().all(|over| *over
        == OverLimit {
            limit: PlanLimit::VoiceSlots,
            used: 2,
            allowed: 2,
            requested: 1,
        }));
    assert_eq!(t.db.custom_voice_count(&org).await.unwrap(), 2);
    assert_eq!(t.db.list_usage_events(&org).await.unwrap().len(), 2);
    t.db.create_voice_within(&new_voice(VoiceOwner::System, "Shared"), Some(0))
        .await
        .expect("system voices take no organization's slot");
}

fn quota(plan: Plan) -> Quota {
    let now = OffsetDateTime::now_utc();
    Quota {
        plan,
        period_start: now - time::Duration::days(1),
        period_end: now + time::Duration::days(1),
    }
}

/// Creates `n` generations of `text` for `org` at once, within `quota`.
async fn generate_at_once(
    t: &TestDb,
    org: &OrgId,
    voice: &VoiceId,
    text: &'static str,
    quota: Quota,
    n: usize,
) -> (usize, Vec<OverLimit>) {
    at_once(n, |_| {
        let db = Arc::clone(&t.db);
        let generation = NewGeneration {
            id: GenerationId::new(),
            org_id: org.clone(),
            voice_id: voice.clone(),
            text: GenerationText::parse(text).unwrap(),
            params: GenerationParams::default(),
            seed: None,
        };
        tokio::spawn(async move { db.create_generation_within(&generation, &quota).await })
    })
    .await
}

async fn parallel_generations_count_queued_and_running_characters(t: TestDb) {
    let org = t.new_org("Acme").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Narrator"))
            .await
            .unwrap()
            .id;
    let fifty = "Fifty characters of text, exactly this many here..";
    let monthly = quota(Plan {
        characters_per_month: Some(100),
        ..Plan::default()
    });
    let (created, refused) = generate_at_once(&t, &org, &voice, fifty, monthly, 10).await;
    assert_eq!(created, 2);
    assert_eq!(refused.len(), 8);
    assert!(
        refused
            .iter()
            .all(|over| over.limit == PlanLimit::CharactersPerMonth
                && over.used == 100
                && over.requested == 50)
    );
    let usage =
        t.db.generation_usage(&org, monthly.period_start, monthly.period_end);
    assert_eq!(usage.await.unwrap().characters, 100);

    // Running and then succeeded, the characters still count; failed, they are released.
    let first = t.db.claim_generation("w", LEASE).await.unwrap().unwrap();
    let (created, _) = generate_at_once(&t, &org, &voice, fifty, monthly, 1).await;
    assert_eq!(created, 0, "a running job's characters count");
    t.db.complete_generation(&first.id, "w", "generations/x")
        .await
        .unwrap()
        .unwrap();
    let (created, _) = generate_at_once(&t, &org, &voice, fifty, monthly, 1).await;
    assert_eq!(created, 0, "a succeeded job's characters count");
    let second = t.db.claim_generation("w", LEASE).await.unwrap().unwrap();
    assert!(
        t.db.fail_generation(&second.id, "w", "broken")
            .await
            .unwrap()
    );
    let (created, _) = generate_at_once(&t, &org, &voice, fifty, monthly, 3).await;
    assert_eq!(created, 1, "a failed job's characters are released");
}

async fn parallel_generations_stop_at_the_concurrent_jobs(t: TestDb) {
    let org = t.new_org("Acme").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Narrator"))
            .await
            .unwrap()
            .id;
    let one_at_a_time = quota(Plan {
        max_concurrent_jobs: Some(1),
        ..Plan::default()
    });
    let (created, refused) =
        generate_at_once(&t, &org, &voice, "Hello there.", one_at_a_time, 10).await;
    assert_eq!(created, 1);
    assert!(
        refused
            .iter()
            .all(|over| over.limit == PlanLimit::MaxConcurrentJobs)
    );
    let queued = t.db.claim_generation("w", LEASE).await.unwrap().unwrap();
    t.db.cancel_generation(&org, &queued.id).await.unwrap();
    let (created, _) = generate_at_once(&t, &org, &voice, "Hello there.", one_at_a_time, 10).await;
    assert_eq!(created, 1, "a cancelled job frees its place");
}

on_both_backends!(
    parallel_voice_creations_stop_at_the_slots,
    parallel_generations_count_queued_and_running_characters,
    parallel_generations_stop_at_the_concurrent_jobs,
    voice_creation_is_charged_once_with_its_outbox_row,
    parallel_voice_creations_are_each_charged_exactly_once,
    parallel_job_completions_are_each_charged_exactly_once,
    daily_usage_sums_per_day_within_the_window,
    org_plans_replace_and_clear,
    postponed_deliveries_wait_and_delivered_ones_leave,
);
