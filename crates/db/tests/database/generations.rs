use resonance_db::{DbError, Generation, GenerationFilter, NewGeneration, Page};
use resonance_domain::{
    GenerationId, GenerationParams, GenerationText, OrgId, VoiceId, VoiceOwner,
};

use crate::{TestDb, new_voice, on_both_backends};

/// Creates a generation of `org` with `voice` and default parameters.
pub async fn generate(t: &TestDb, org: &OrgId, voice: &VoiceId) -> Generation {
    t.db.create_generation(&NewGeneration {
        id: GenerationId::new(),
        org_id: org.clone(),
        voice_id: voice.clone(),
        text: GenerationText::parse("Hello there.").unwrap(),
        params: GenerationParams::default(),
        seed: None,
    })
    .await
    .unwrap()
}

async fn create_then_get_keeps_every_field(t: TestDb) {
    let org = t.new_org("Acme").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::System, "Narrator"))
            .await
            .unwrap();
    let new = NewGeneration {
        id: GenerationId::new(),
        org_id: org.clone(),
        voice_id: voice.id.clone(),
        text: GenerationText::parse("It was a dark [sigh] and stormy night.").unwrap(),
        params: GenerationParams::new(1.3, 0.9, 250, 1.05).unwrap(),
        seed: None,
    };
    let created = t.db.create_generation(&new).await.unwrap();
    assert_eq!(created.id, new.id);
    assert_eq!(created.org_id, org);
    assert_eq!(created.voice_id.as_ref(), Some(&voice.id));
    assert_eq!(created.voice_name, voice.name, "copied from the voice");
    assert_eq!(created.text, new.text);
    assert_eq!(created.params, new.params);
    assert_eq!(created.object_key, None);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(t.db.get_generation(&org, &new.id).await.unwrap(), created);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let key = format!("generations/orgs/{org}/{}", new.id);
    let stored =
        t.db.set_generation_object_key(&org, &new.id, &key)
            .await
            .unwrap();
    assert_eq!(stored.object_key.as_deref(), Some(key.as_str()));
    assert!(stored.updated_at > created.updated_at);
    assert_eq!(stored.created_at, created.created_at);
    assert_eq!(t.db.get_generation(&org, &new.id).await.unwrap(), stored);
}

async fn only_visible_voices_can_generate(t: TestDb) {
    let org = t.new_org("Acme").await;
    let other = t.new_org("Other").await;
    let theirs =
        t.db.create_voice(&new_voice(VoiceOwner::Org(other.clone()), "Theirs"))
            .await
            .unwrap();
    let ours =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Ours"))
            .await
            .unwrap();
    for voice in [&theirs.id, &VoiceId::new()] {
        let error =
            t.db.create_generation(&NewGeneration {
                id: GenerationId::new(),
                org_id: org.clone(),
                voice_id: voice.clone(),
                text: GenerationText::parse("Hi").unwrap(),
                params: GenerationParams::default(),
                seed: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(error, DbError::NotFound("voice")), "{error:?}");
    }
    assert_eq!(t.count("SELECT COUNT(*) FROM generations").await, 0);
    assert_eq!(generate(&t, &org, &ours.id).await.voice_name, ours.name);
}

async fn organizations_never_see_each_others_generations(t: TestDb) {
    let a = t.new_org("A").await;
    let b = t.new_org("B").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::System, "Shared"))
            .await
            .unwrap();
    let of_a = generate(&t, &a, &voice.id).await;
    let of_b = generate(&t, &b, &voice.id).await;

    assert!(matches!(
        t.db.get_generation(&b, &of_a.id).await,
        Err(DbError::NotFound("generation"))
    ));
    assert!(matches!(
        t.db.set_generation_object_key(&b, &of_a.id, "x").await,
        Err(DbError::NotFound("generation"))
    ));
    assert!(matches!(
        t.db.delete_generation(&b, &of_a.id).await,
        Err(DbError::NotFound("generation"))
    ));
    let listed =
        t.db.list_generations(&b, &GenerationFilter::default(), Page::default())
            .await
            .unwrap();
    assert_eq!(listed.items, [of_b]);
    assert_eq!(listed.total, 1);
    assert_eq!(t.db.get_generation(&a, &of_a.id).await.unwrap(), of_a);
}

async fn list_is_newest_first_filtered_and_paged(t: TestDb) {
    let org = t.new_org("Acme").await;
    let first =
        t.db.create_voice(&new_voice(VoiceOwner::System, "First"))
            .await
            .unwrap();
    let second =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Second"))
            .await
            .unwrap();
    let mut made = Vec::new();
    for voice in [&first, &second, &first, &second, &first] {
        // Distinct creation times, so that "newest first" is the reverse creation order.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        made.push(generate(&t, &org, &voice.id).await);
    }
    let newest_first: Vec<_> = made.iter().rev().map(|g| g.id.clone()).collect();

    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let page =
            t.db.list_generations(
                &org,
                &GenerationFilter::default(),
                Page::new(2, offset).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(page.total, 5);
        paged.extend(page.items.into_iter().map(|g| g.id));
    }
    assert_eq!(paged, newest_first);

    let with_first =
        t.db.list_generations(
            &org,
            &GenerationFilter {
                voice_id: Some(first.id.clone()),
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(with_first.total, 3);
    let expected: Vec<_> = made
        .iter()
        .rev()
        .filter(|g| g.voice_id.as_ref() == Some(&first.id))
        .cloned()
        .collect();
    assert_eq!(with_first.items, expected);
}

/// Back to back, most of them share a millisecond (the sentences of a text streamed in
/// do); history still lists them newest first.
async fn made_in_the_same_millisecond_list_in_the_order_made(t: TestDb) {
    let org = t.new_org("Acme").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::System, "Narrator"))
            .await
            .unwrap();
    let mut made = Vec::new();
    for _ in 0..30 {
        made.push(generate(&t, &org, &voice.id).await.id);
    }
    let listed =
        t.db.list_generations(
            &org,
            &GenerationFilter::default(),
            Page::new(50, 0).unwrap(),
        )
        .await
        .unwrap();
    let listed: Vec<_> = listed.items.into_iter().map(|g| g.id).collect();
    made.reverse();
    assert_eq!(listed, made);
}

async fn deleting_a_voice_keeps_its_generations(t: TestDb) {
    let org = t.new_org("Acme").await;
    let owner = VoiceOwner::Org(org.clone());
    let voice =
        t.db.create_voice(&new_voice(owner.clone(), "Soon gone"))
            .await
            .unwrap();
    let generation = generate(&t, &org, &voice.id).await;

    t.db.delete_voice(&owner, &voice.id).await.unwrap();

    let kept = t.db.get_generation(&org, &generation.id).await.unwrap();
    assert_eq!(kept.voice_id, None);
    assert_eq!(kept.voice_name.as_str(), "Soon gone");
    assert_eq!(kept.text, generation.text);
    assert_eq!(kept.params, generation.params);
    let by_voice =
        t.db.list_generations(
            &org,
            &GenerationFilter {
                voice_id: Some(voice.id.clone()),
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(by_voice.total, 0);
}

async fn delete_returns_the_object_key(t: TestDb) {
    let org = t.new_org("Acme").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::System, "Narrator"))
            .await
            .unwrap();
    let stored = generate(&t, &org, &voice.id).await;
    t.db.set_generation_object_key(&org, &stored.id, "generations/orgs/a/b")
        .await
        .unwrap();
    let bare = generate(&t, &org, &voice.id).await;

    assert_eq!(
        t.db.delete_generation(&org, &stored.id)
            .await
            .unwrap()
            .as_deref(),
        Some("generations/orgs/a/b")
    );
    assert_eq!(t.db.delete_generation(&org, &bare.id).await.unwrap(), None);
    assert!(matches!(
        t.db.get_generation(&org, &stored.id).await,
        Err(DbError::NotFound("generation"))
    ));
    assert!(matches!(
        t.db.delete_generation(&org, &stored.id).await,
        Err(DbError::NotFound("generation"))
    ));
}

on_both_backends!(
    create_then_get_keeps_every_field,
    only_visible_voices_can_generate,
    organizations_never_see_each_others_generations,
    list_is_newest_first_filtered_and_paged,
    made_in_the_same_millisecond_list_in_the_order_made,
    deleting_a_voice_keeps_its_generations,
    delete_returns_the_object_key,
);
