use resonance_db::{DbError, Page, VoiceEdit, VoiceFilter};
use resonance_domain::{
    Language, VoiceCategory, VoiceDescription, VoiceId, VoiceName, VoiceOwner, VoiceVariant,
};

use crate::{TestDb, new_voice, on_both_backends};

fn names(voices: &[resonance_db::Voice]) -> Vec<&str> {
    voices.iter().map(|v| v.name.as_str()).collect()
}

async fn create_then_get_keeps_every_field(t: TestDb) {
    let org = t.new_org("Acme").await;
    let mut voice = new_voice(VoiceOwner::Org(org.clone()), "Aaron");
    voice.description = Some(VoiceDescription::parse("Warm, low narrator").unwrap());
    voice.category = VoiceCategory::CustomerService;
    voice.language = Language::parse("pt-BR").unwrap();
    voice.object_key = Some(format!("voices/custom/{org}/{}", voice.id));
    voice.consent = Some(resonance_db::VoiceConsent {
        by: "0000000000000000000user1".into(),
        at: time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(),
    });

    let created = t.db.create_voice(&voice).await.unwrap();
    assert_eq!(created.id, voice.id);
    assert_eq!(created.owner, voice.owner);
    assert_eq!(created.variant(), VoiceVariant::Custom);
    assert_eq!(created.name, voice.name);
    assert_eq!(created.description, voice.description);
    assert_eq!(created.category, voice.category);
    assert_eq!(created.language, voice.language);
    assert_eq!(created.object_key, voice.object_key);
    assert_eq!(created.consent, voice.consent);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(t.db.get_voice(&org, &voice.id).await.unwrap(), created);
}

async fn schema_defaults_category_and_language(t: TestDb) {
    t.execute_raw(
        "INSERT INTO voices (id, name, name_folded, variant) \
         VALUES ('0000000000000000000defa1', 'Plain', 'plain', 'SYSTEM')",
    )
    .await
    .unwrap();
    let org = t.new_org("Acme").await;
    let id = VoiceId::parse("0000000000000000000defa1").unwrap();
    let voice = t.db.get_voice(&org, &id).await.unwrap();
    assert_eq!(voice.category, VoiceCategory::General);
    assert_eq!(voice.language.as_str(), "en-US");
    assert_eq!(voice.owner, VoiceOwner::System);
    assert!(voice.created_at.year() >= 2025, "{}", voice.created_at);
}

async fn custom_voices_are_visible_only_to_their_organization(t: TestDb) {
    let a = t.new_org("A").await;
    let b = t.new_org("B").await;
    let system =
        t.db.create_voice(&new_voice(VoiceOwner::System, "Narrator"))
            .await
            .unwrap();
    let of_a =
        t.db.create_voice(&new_voice(VoiceOwner::Org(a.clone()), "Clone of A"))
            .await
            .unwrap();
    let of_b =
        t.db.create_voice(&new_voice(VoiceOwner::Org(b.clone()), "Clone of B"))
            .await
            .unwrap();

    for org in [&a, &b] {
        assert_eq!(t.db.get_voice(org, &system.id).await.unwrap(), system);
    }
    assert_eq!(t.db.get_voice(&a, &of_a.id).await.unwrap(), of_a);
    assert!(matches!(
        t.db.get_voice(&b, &of_a.id).await,
        Err(DbError::NotFound("voice"))
    ));
    assert!(matches!(
        t.db.get_voice(&a, &of_b.id).await,
        Err(DbError::NotFound("voice"))
    ));

    let all = VoiceFilter::default();
    let seen_by_a = t.db.list_voices(&a, &all, Page::default()).await.unwrap();
    assert_eq!(names(&seen_by_a.items), ["Clone of A", "Narrator"]);
    assert_eq!(seen_by_a.total, 2);
    let seen_by_b = t.db.list_voices(&b, &all, Page::default()).await.unwrap();
    assert_eq!(names(&seen_by_b.items), ["Clone of B", "Narrator"]);
}

async fn list_filters_by_category_language_variant_and_name(t: TestDb) {
    let org = t.new_org("Acme").await;
    let other = t.new_org("Other").await;
    let voices = [
        (
            VoiceOwner::System,
            "Émile Narrator",
            VoiceCategory::Audiobook,
            "fr-FR",
        ),
        (
            VoiceOwner::System,
            "Calm Sage",
            VoiceCategory::Meditation,
            "en-US",
        ),
        (
            VoiceOwner::Org(org.clone()),
            "My EMILE clone",
            VoiceCategory::Audiobook,
            "en-US",
        ),
        (
            VoiceOwner::Org(org.clone()),
            "Sales 50% off",
            VoiceCategory::Advertising,
            "en-GB",
        ),
        (
            VoiceOwner::Org(other.clone()),
            "Émile of Other",
            VoiceCategory::Audiobook,
            "fr-FR",
        ),
        (
            VoiceOwner::System,
            "Sales 500",
            VoiceCategory::Advertising,
            "en-GB",
        ),
    ];
    for (owner, name, category, language) in voices {
        let mut voice = new_voice(owner, name);
        voice.category = category;
        voice.language = Language::parse(language).unwrap();
        t.db.create_voice(&voice).await.unwrap();
    }
    let list = async |filter: VoiceFilter| {
        let page =
            t.db.list_voices(&org, &filter, Page::default())
                .await
                .unwrap();
        assert_eq!(page.total as usize, page.items.len());
        names(&page.items)
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };

    assert_eq!(
        list(VoiceFilter::default()).await,
        [
            "Calm Sage",
            "My EMILE clone",
            "Sales 50% off",
            "Sales 500",
            "Émile Narrator"
        ]
    );
    assert_eq!(
        list(VoiceFilter {
            category: Some(VoiceCategory::Audiobook),
            ..Default::default()
        })
        .await,
        ["My EMILE clone", "Émile Narrator"]
    );
    assert_eq!(
        list(VoiceFilter {
            language: Some(Language::parse("en-gb").unwrap()),
            ..Default::default()
        })
        .await,
        ["Sales 50% off", "Sales 500"]
    );
    assert_eq!(
        list(VoiceFilter {
            variant: Some(VoiceVariant::Custom),
            ..Default::default()
        })
        .await,
        ["My EMILE clone", "Sales 50% off"]
    );
    // Case-insensitive beyond ASCII: "émile" matches "Émile" and "EMILE" does not.
    assert_eq!(
        list(VoiceFilter {
            name_contains: Some("éMILE".to_string()),
            ..Default::default()
        })
        .await,
        ["Émile Narrator"]
    );
    assert_eq!(
        list(VoiceFilter {
            name_contains: Some("emile".to_string()),
            ..Default::default()
        })
        .await,
        ["My EMILE clone"]
    );
    // LIKE wildcards in the search text match themselves.
    assert_eq!(
        list(VoiceFilter {
            name_contains: Some("50%".to_string()),
            ..Default::default()
        })
        .await,
        ["Sales 50% off"]
    );
    assert_eq!(
        list(VoiceFilter {
            name_contains: Some("_".to_string()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(VoiceFilter {
            category: Some(VoiceCategory::Advertising),
            variant: Some(VoiceVariant::System),
            name_contains: Some("SALES".to_string()),
            ..Default::default()
        })
        .await,
        ["Sales 500"]
    );
    // Longer than any name (and than SQLite allows a LIKE pattern): nothing, not an error.
    assert_eq!(
        list(VoiceFilter {
            name_contains: Some("%_".repeat(30_000)),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
}

async fn list_pages_through_all_voices_with_a_total(t: TestDb) {
    let org = t.new_org("Acme").await;
    for name in ["e", "B", "d", "A", "c"] {
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), name))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let page =
            t.db.list_voices(&org, &VoiceFilter::default(), Page::new(2, offset).unwrap())
                .await
                .unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(page.items.len(), if offset == 4 { 1 } else { 2 });
        seen.extend(page.items.into_iter().map(|v| v.name.as_str().to_string()));
    }
    assert_eq!(seen, ["A", "B", "c", "d", "e"]);

    let past_the_end =
        t.db.list_voices(&org, &VoiceFilter::default(), Page::new(10, 5).unwrap())
            .await
            .unwrap();
    assert!(past_the_end.items.is_empty());
    assert_eq!(past_the_end.total, 5);
}

/// A replaced sample: the new object key and the consent given for it, by the owner only.
async fn only_the_owner_replaces_the_sample(t: TestDb) {
    let org = t.new_org("Acme").await;
    let other = t.new_org("Other").await;
    let custom =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Mine"))
            .await
            .unwrap();
    let system =
        t.db.create_voice(&new_voice(VoiceOwner::System, "Shared"))
            .await
            .unwrap();
    let consent = resonance_db::VoiceConsent {
        by: "0000000000000000000user2".into(),
        at: time::OffsetDateTime::from_unix_timestamp(1_767_312_000).unwrap(),
    };

    for (owner, voice) in [
        (VoiceOwner::Org(other.clone()), &custom),
        (VoiceOwner::Org(org.clone()), &system),
        (VoiceOwner::System, &custom),
    ] {
        let error =
            t.db.replace_voice_sample(&owner, &voice.id, "stolen", &consent)
                .await
                .unwrap_err();
        assert!(matches!(error, DbError::NotFound("voice")), "{error:?}");
    }
    assert_eq!(t.db.get_voice(&org, &custom.id).await.unwrap(), custom);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let updated =
        t.db.replace_voice_sample(&custom.owner, &custom.id, "voices/custom/x", &consent)
            .await
            .unwrap();
    assert_eq!(updated.object_key.as_deref(), Some("voices/custom/x"));
    assert_eq!(updated.consent.as_ref(), Some(&consent));
    assert_eq!(updated.name, custom.name);
    assert_eq!(updated.created_at, custom.created_at);
    assert!(updated.updated_at > custom.updated_at);
    assert_eq!(t.db.get_voice(&org, &custom.id).await.unwrap(), updated);

    let system =
        t.db.replace_voice_sample(&VoiceOwner::System, &system.id, "voices/system/y", &consent)
            .await
            .unwrap();
    assert_eq!(system.object_key.as_deref(), Some("voices/system/y"));
}

async fn delete_returns_the_object_key_and_respects_ownership(t: TestDb) {
    let org = t.new_org("Acme").await;
    let other = t.new_org("Other").await;
    let mut with_key = new_voice(VoiceOwner::Org(org.clone()), "Keyed");
    with_key.object_key = Some("voices/custom/keyed".to_string());
    let with_key = t.db.create_voice(&with_key).await.unwrap();
    let without_key =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Bare"))
            .await
            .unwrap();
    let system =
        t.db.create_voice(&new_voice(VoiceOwner::System, "Shared"))
            .await
            .unwrap();

    let not_theirs = [
        (VoiceOwner::Org(other.clone()), &with_key.id),
        (VoiceOwner::Org(org.clone()), &system.id),
    ];
    for (owner, id) in not_theirs {
        let error = t.db.delete_voice(&owner, id).await.unwrap_err();
        assert!(matches!(error, DbError::NotFound("voice")), "{error:?}");
    }
    assert_eq!(t.db.get_voice(&org, &with_key.id).await.unwrap(), with_key);

    let owner = VoiceOwner::Org(org.clone());
    assert_eq!(
        t.db.delete_voice(&owner, &with_key.id)
            .await
            .unwrap()
            .as_deref(),
        Some("voices/custom/keyed")
    );
    assert_eq!(
        t.db.delete_voice(&owner, &without_key.id).await.unwrap(),
        None
    );
    assert!(matches!(
        t.db.get_voice(&org, &with_key.id).await,
        Err(DbError::NotFound("voice"))
    ));
    assert!(matches!(
        t.db.delete_voice(&owner, &with_key.id).await,
        Err(DbError::NotFound("voice"))
    ));
    assert_eq!(
        t.db.delete_voice(&VoiceOwner::System, &system.id)
            .await
            .unwrap(),
        None
    );
}

async fn duplicate_ids_and_unknown_organizations_conflict(t: TestDb) {
    let org = t.new_org("Acme").await;
    let voice = new_voice(VoiceOwner::Org(org.clone()), "Once");
    t.db.create_voice(&voice).await.unwrap();
    let error = t.db.create_voice(&voice).await.unwrap_err();
    assert!(matches!(error, DbError::Conflict(_)), "{error:?}");

    let orphan = new_voice(VoiceOwner::Org(resonance_domain::OrgId::new()), "Orphan");
    let error = t.db.create_voice(&orphan).await.unwrap_err();
    assert!(matches!(error, DbError::Conflict(_)), "{error:?}");
}

async fn check_constraints_refuse_inconsistent_rows(t: TestDb) {
    let org = t.new_org("Acme").await;
    t.execute_raw(
        "INSERT INTO organizations (id, name) VALUES ('00000000000000000000rg01', 'Raw')",
    )
    .await
    .unwrap();
    let refused: [&'static str; 5] = [
        // A SYSTEM voice with an organization.
        "INSERT INTO voices (id, org_id, name, name_folded, variant) \
         VALUES ('0000000000000000000000v1', '00000000000000000000rg01', 'x', 'x', 'SYSTEM')",
        // A CUSTOM voice without one.
        "INSERT INTO voices (id, name, name_folded, variant) \
         VALUES ('0000000000000000000000v2', 'x', 'x', 'CUSTOM')",
        // An unknown variant.
        "INSERT INTO voices (id, name, name_folded, variant) \
         VALUES ('0000000000000000000000v3', 'x', 'x', 'PRIVATE')",
        // An unknown category.
        "INSERT INTO voices (id, name, name_folded, variant, category) \
         VALUES ('0000000000000000000000v4', 'x', 'x', 'SYSTEM', 'ROBOT')",
        // A temperature out of bounds.
        "INSERT INTO generations (id, org_id, text, voice_name, temperature, top_p, top_k, \
         repetition_penalty) \
         VALUES ('0000000000000000000000g1', '00000000000000000000rg01', 'hi', 'x', 3.0, 0.9, \
         100, 1.2)",
    ];
    for sql in refused {
        let error = t.execute_raw(sql).await.unwrap_err();
        let kind = error.as_database_error().map(|e| e.kind());
        assert_eq!(
            kind,
            Some(sqlx::error::ErrorKind::CheckViolation),
            "{sql}: {error}"
        );
    }
    // The same rows, made consistent, are accepted.
    t.execute_raw(
        "INSERT INTO voices (id, org_id, name, name_folded, variant, category) \
         VALUES ('0000000000000000000000v5', '00000000000000000000rg01', 'x', 'x', 'CUSTOM', \
         'PODCAST')",
    )
    .await
    .unwrap();
    assert_eq!(t.count("SELECT COUNT(*) FROM voices").await, 1);
    let listed =
        t.db.list_voices(&org, &VoiceFilter::default(), Page::default())
            .await
            .unwrap();
    assert_eq!(
        listed.total, 0,
        "the raw voice belongs to another organization"
    );
}

async fn all_voices_spans_every_organization(t: TestDb) {
    let acme = t.new_org("Acme").await;
    let other = t.new_org("Other").await;
    let mut created = Vec::new();
    for voice in [
        new_voice(VoiceOwner::System, "Shared"),
        new_voice(VoiceOwner::Org(acme), "Acme's"),
        new_voice(VoiceOwner::Org(other), "Other's"),
    ] {
        created.push(t.db.create_voice(&voice).await.unwrap());
    }
    let shared = created[0].clone();
    created.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    assert_eq!(t.db.all_voices().await.unwrap(), created);
    assert_eq!(t.db.system_voices().await.unwrap(), vec![shared]);
}

/// Two servers starting on one new database both install the built-in voice: the second
/// insert loses on the unique name of SYSTEM voices.
async fn system_voice_names_are_unique_so_a_race_installs_once(t: TestDb) {
    let installs: Vec<_> = (0..2)
        .map(|_| {
            let db = std::sync::Arc::clone(&t.db);
            tokio::spawn(async move {
                db.create_voice(&new_voice(VoiceOwner::System, "Built-in"))
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for install in installs {
        outcomes.push(install.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, Err(DbError::Conflict(_)))),
        "{outcomes:?}"
    );
    let error =
        t.db.create_voice(&new_voice(VoiceOwner::System, "BUILT-IN"))
            .await
            .unwrap_err();
    assert!(
        matches!(error, DbError::Conflict(_)),
        "names compare folded"
    );
    assert_eq!(names(&t.db.system_voices().await.unwrap()), ["Built-in"]);

    // Organizations' voices may share a name with a system voice and with each other.
    let org = t.new_org("Acme").await;
    for _ in 0..2 {
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Built-in"))
            .await
            .unwrap();
    }
}

/// Only the owner edits a voice; the edit keeps the audio and the creation time, sorts by
/// the new name, and a SYSTEM voice cannot take another's name.
async fn only_the_owner_edits_a_voice(t: TestDb) {
    let org = t.new_org("Acme").await;
    let other = t.new_org("Other").await;
    let mut voice = new_voice(VoiceOwner::Org(org.clone()), "Aaron");
    voice.object_key = Some(format!("voices/custom/{org}/{}", voice.id));
    let created = t.db.create_voice(&voice).await.unwrap();
    let edit = VoiceEdit {
        name: VoiceName::parse("Zelda").unwrap(),
        description: Some(VoiceDescription::parse("Bright and quick").unwrap()),
        category: VoiceCategory::Narrative,
        language: Language::parse("en-GB").unwrap(),
    };
    let error =
        t.db.edit_voice(&VoiceOwner::Org(other), &voice.id, &edit)
            .await
            .unwrap_err();
    assert!(matches!(error, DbError::NotFound("voice")), "{error:?}");
    let error =
        t.db.edit_voice(&VoiceOwner::System, &voice.id, &edit)
            .await
            .unwrap_err();
    assert!(matches!(error, DbError::NotFound("voice")), "{error:?}");

    let edited =
        t.db.edit_voice(&VoiceOwner::Org(org.clone()), &voice.id, &edit)
            .await
            .unwrap();
    assert_eq!(edited.name, edit.name);
    assert_eq!(edited.description, edit.description);
    assert_eq!(edited.category, edit.category);
    assert_eq!(edited.language, edit.language);
    assert_eq!(edited.object_key, created.object_key);
    assert_eq!(edited.created_at, created.created_at);
    assert_eq!(t.db.get_voice(&org, &voice.id).await.unwrap(), edited);
    let found =
        t.db.list_voices(
            &org,
            &VoiceFilter {
                name_contains: Some("zel".into()),
                ..VoiceFilter::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(names(&found.items), ["Zelda"]);

    let first =
        t.db.create_voice(&new_voice(VoiceOwner::System, "Narrator"))
            .await
            .unwrap();
    let second =
        t.db.create_voice(&new_voice(VoiceOwner::System, "Announcer"))
            .await
            .unwrap();
    let taken = VoiceEdit {
        name: VoiceName::parse("NARRATOR").unwrap(),
        description: None,
        category: VoiceCategory::General,
        language: Language::default(),
    };
    let error =
        t.db.edit_voice(&VoiceOwner::System, &second.id, &taken)
            .await
            .unwrap_err();
    assert!(matches!(error, DbError::Conflict(_)), "{error:?}");
    assert_eq!(t.db.get_voice(&org, &first.id).await.unwrap(), first);
}

on_both_backends!(
    only_the_owner_edits_a_voice,
    system_voice_names_are_unique_so_a_race_installs_once,
    all_voices_spans_every_organization,
    create_then_get_keeps_every_field,
    schema_defaults_category_and_language,
    custom_voices_are_visible_only_to_their_organization,
    list_filters_by_category_language_variant_and_name,
    list_pages_through_all_voices_with_a_total,
    only_the_owner_replaces_the_sample,
    delete_returns_the_object_key_and_respects_ownership,
    duplicate_ids_and_unknown_organizations_conflict,
    check_constraints_refuse_inconsistent_rows,
);
