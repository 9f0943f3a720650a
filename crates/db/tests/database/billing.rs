use std::sync::Arc;
use std::time::Duration;

use resonance_db::{DbError, Plan, UsageKind};
use resonance_domain::{GenerationId, OrgId, VoiceOwner};
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

on_both_backends!(
    voice_creation_is_charged_once_with_its_outbox_row,
    parallel_voice_creations_are_each_charged_exactly_once,
    parallel_job_completions_are_each_charged_exactly_once,
    daily_usage_sums_per_day_within_the_window,
    org_plans_replace_and_clear,
    postponed_deliveries_wait_and_delivered_ones_leave,
);
