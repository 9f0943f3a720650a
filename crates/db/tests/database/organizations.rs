use resonance_db::DbError;
use resonance_domain::{OrgId, OrganizationName, VoiceOwner};
use time::{Duration, OffsetDateTime};

use crate::generations::generate;
use crate::{TestDb, new_voice, on_both_backends};

async fn create_then_get_organization(t: TestDb) {
    let name = OrganizationName::parse("Acme Audio").unwrap();
    let before = OffsetDateTime::now_utc();
    let created = t.db.create_organization(&name).await.unwrap();
    assert_eq!(created.name, name);
    assert_eq!(created.created_at, created.updated_at);
    assert!((created.created_at - before).abs() < Duration::seconds(5));
    assert_eq!(t.db.get_organization(&created.id).await.unwrap(), created);

    let other = t.db.create_organization(&name).await.unwrap();
    assert_ne!(other.id, created.id, "names may repeat, ids may not");
}

async fn missing_organization_is_not_found(t: TestDb) {
    let error = t.db.get_organization(&OrgId::new()).await.unwrap_err();
    assert!(
        matches!(error, DbError::NotFound("organization")),
        "{error:?}"
    );
}

async fn deleting_an_organization_deletes_its_voices_and_generations(t: TestDb) {
    let doomed = t.new_org("Doomed").await;
    let kept = t.new_org("Kept").await;
    for org in [&doomed, &kept] {
        let voice =
            t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Mine"))
                .await
                .unwrap();
        generate(&t, org, &voice.id).await;
    }
    t.db.create_voice(&new_voice(VoiceOwner::System, "Shared"))
        .await
        .unwrap();

    t.execute_raw("DELETE FROM organizations WHERE name = 'Doomed'")
        .await
        .unwrap();

    assert_eq!(t.count("SELECT COUNT(*) FROM voices").await, 2);
    assert_eq!(t.count("SELECT COUNT(*) FROM generations").await, 1);
    let kept_voices =
        t.db.list_voices(&kept, &Default::default(), Default::default())
            .await
            .unwrap();
    assert_eq!(kept_voices.total, 2);
}

on_both_backends!(
    create_then_get_organization,
    missing_organization_is_not_found,
    deleting_an_organization_deletes_its_voices_and_generations,
);
