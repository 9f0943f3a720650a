use resonance_db::{DbError, Page, VoiceFilter};
use resonance_domain::VoiceOwner;

use crate::{TestDb, new_voice, on_both_backends};

#[tokio::test]
async fn unreachable_postgres_is_unavailable_and_names_the_host() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://resonance:hunter2@127.0.0.1:{port}/resonance");
    let error = resonance_db::connect(&url)
        .await
        .err()
        .expect("nothing listens there");
    let DbError::Unavailable { target, .. } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert_eq!(target, &format!("PostgreSQL at 127.0.0.1:{port}/resonance"));
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn unsupported_url_is_refused_without_echoing_it() {
    for url in ["mysql://root:hunter2@db/app", "hunter2", ""] {
        let error = resonance_db::connect(url)
            .await
            .err()
            .expect("not a supported URL");
        assert!(matches!(error, DbError::InvalidUrl(_)), "{error:?}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}

#[tokio::test]
async fn sqlite_that_cannot_be_created_is_unavailable_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let path = blocker.join("resonance.db");
    let error = resonance_db::connect(&format!("sqlite://{}", path.display()))
        .await
        .err()
        .expect("a file is in the way of the directory");
    let DbError::Unavailable { target, .. } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(target.contains(&path.display().to_string()), "{target}");
}

#[tokio::test]
async fn sqlite_creates_the_file_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("resonance.db");
    let db = resonance_db::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    db.ping().await.unwrap();
    assert!(path.is_file());
}

async fn migrate_again_changes_nothing(t: TestDb) {
    let org = t.new_org("Acme").await;
    let voice =
        t.db.create_voice(&new_voice(VoiceOwner::Org(org.clone()), "Survivor"))
            .await
            .unwrap();

    t.db.migrate().await.unwrap();
    let reconnected = resonance_db::connect(&t.url).await.unwrap();
    reconnected.migrate().await.unwrap();

    reconnected.ping().await.unwrap();
    // Both backends have the same migrations, one file each.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(
        t.count("SELECT COUNT(*) FROM _sqlx_migrations").await,
        migrations as i64
    );
    assert_eq!(reconnected.get_voice(&org, &voice.id).await.unwrap(), voice);
    let listed = reconnected
        .list_voices(&org, &VoiceFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(listed.items, [voice]);
}

on_both_backends!(migrate_again_changes_nothing);
