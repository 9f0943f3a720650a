//! The operator commands on the real binary: `voices import --system`, `voices edit
//! --system`, `voices remove --system` and `storage reconcile`, against SQLite and the local
//! object folder.

use std::path::Path;
use std::process::{Command, Output};

use resonance_testkit::audio::{UploadFormat, encode_as, speech_like};

fn resonance(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resonance"))
        .env_remove("DATABASE_URL")
        .env("RESONANCE_DATA_DIR", data)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The ids printed by `voices import`, in manifest order.
fn imported_ids(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|line| line.strip_prefix("imported "))
        .map(|rest| rest.split(' ').next().unwrap().to_string())
        .collect()
}

fn system_objects(data: &Path) -> Vec<String> {
    let dir = data.join("objects/voices/system");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn import_edit_remove_and_reconcile_system_voices() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(
        files.path().join("aaron.flac"),
        encode_as(&speech_like(11.0, 0.5, 1), UploadFormat::Flac),
    )
    .unwrap();
    std::fs::write(
        files.path().join("abigail.mp3"),
        encode_as(&speech_like(12.0, 0.5, 2), UploadFormat::Mp3),
    )
    .unwrap();
    let manifest = files.path().join("voices.toml");

    // A manifest with one bad entry imports nothing.
    std::fs::write(
        &manifest,
        r#"
[[voice]]
file = "aaron.flac"
name = "Aaron"
category = "AUDIOBOOK"
language = "en-US"

[[voice]]
file = "abigail.mp3"
name = "Abigail"
language = "english"
"#,
    )
    .unwrap();
    let refused = resonance(
        data.path(),
        &[
            "voices",
            "import",
            "--system",
            "--speakers-consented",
            manifest.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Abigail"));
    assert!(system_objects(data.path()).is_empty());

    std::fs::write(
        &manifest,
        r#"
[[voice]]
file = "aaron.flac"
name = "Aaron"
description = "Calm narrator"
category = "AUDIOBOOK"
language = "en-US"

[[voice]]
file = "abigail.mp3"
name = "Abigail"
category = "CONVERSATIONAL"
language = "en-GB"
"#,
    )
    .unwrap();
    let without_consent = resonance(
        data.path(),
        &["voices", "import", "--system", manifest.to_str().unwrap()],
    );
    assert!(!without_consent.status.success());
    assert!(
        String::from_utf8_lossy(&without_consent.stderr).contains("--speakers-consented"),
        "{without_consent:?}"
    );
    assert!(system_objects(data.path()).is_empty());
    let out = stdout(&resonance(
        data.path(),
        &[
            "voices",
            "import",
            "--system",
            "--speakers-consented",
            manifest.to_str().unwrap(),
        ],
    ));
    let ids = imported_ids(&out);
    assert_eq!(ids.len(), 2, "{out}");
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(system_objects(data.path()), expected);

    let edit = |args: &[&str]| {
        let mut all = vec!["voices", "edit", "--system", &ids[1]];
        all.extend_from_slice(args);
        resonance(data.path(), &all)
    };
    let refused = edit(&["--language", "english"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("language"));
    let out = stdout(&edit(&["--name", "Abigail Adams", "--category", "PODCAST"]));
    assert!(
        out.contains(&format!("edited {} Abigail Adams", ids[1])),
        "{out}"
    );
    let db = resonance_db::connect(&format!(
        "sqlite://{}",
        data.path().join("resonance.db").display()
    ))
    .await
    .unwrap();
    let edited = db.system_voices().await.unwrap();
    let edited = edited.iter().find(|v| v.id.as_str() == ids[1]).unwrap();
    assert_eq!(edited.name.as_str(), "Abigail Adams");
    assert_eq!(
        edited.consent.as_ref().map(|consent| consent.by.as_str()),
        Some("cli"),
        "the speakers' consent is recorded"
    );
    assert_eq!(edited.category.as_str(), "PODCAST");
    assert_eq!(edited.language.as_str(), "en-GB", "unchanged");
    let missing = resonance(
        data.path(),
        &[
            "voices",
            "edit",
            "--system",
            "0123456789abcdefghjkmnpq",
            "--name",
            "X",
        ],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no system voice"));

    let out = stdout(&resonance(
        data.path(),
        &["voices", "remove", "--system", &ids[0]],
    ));
    assert!(out.contains(&format!("removed {}", ids[0])), "{out}");
    assert_eq!(system_objects(data.path()), vec![ids[1].clone()]);

    // Lose Abigail's audio and leave a stray object behind.
    std::fs::remove_file(data.path().join("objects/voices/system").join(&ids[1])).unwrap();
    let stray = "voices/custom/0123456789abcdefghjkmnpq/0123456789abcdefghjkmnpq";
    let stray_path = data.path().join("objects").join(stray);
    std::fs::create_dir_all(stray_path.parent().unwrap()).unwrap();
    std::fs::write(&stray_path, b"orphan").unwrap();

    let reconcile = |extra: &[&str]| {
        let mut args = vec!["storage", "reconcile", "--grace-secs", "0"];
        args.extend_from_slice(extra);
        stdout(&resonance(data.path(), &args))
    };
    let dry = reconcile(&["--dry-run"]);
    assert!(
        dry.contains(&format!("would remove voice row {}", ids[1])),
        "{dry}"
    );
    assert!(
        dry.contains(&format!("would remove object {stray}")),
        "{dry}"
    );
    assert!(stray_path.exists());

    let done = reconcile(&[]);
    assert!(
        done.contains("1 voice rows without audio, 1 objects without a voice"),
        "{done}"
    );
    assert!(!stray_path.exists());
    let clean = reconcile(&["--dry-run"]);
    assert!(
        clean.contains("0 voice rows without audio, 0 objects without a voice"),
        "{clean}"
    );
}
