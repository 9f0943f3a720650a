//! `resonance orgs set-plan|show-plan|clear-plan` on the real binary against SQLite.

use std::path::Path;
use std::process::{Command, Output};

use resonance_db::{Database, Plan};
use resonance_domain::{OrgId, OrganizationName};

fn resonance(data: &Path, envs: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resonance"))
        .env_remove("DATABASE_URL")
        .env("RESONANCE_DATA_DIR", data)
        .env("NO_COLOR", "1")
        .envs(envs.iter().copied())
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

async fn database(data: &Path) -> std::sync::Arc<dyn Database> {
    let db = resonance_db::connect(&format!("sqlite://{}", data.join("resonance.db").display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    db
}

#[tokio::test]
async fn set_show_and_clear_an_organization_plan() {
    let data = tempfile::tempdir().unwrap();
    let db = database(data.path()).await;
    let org = db
        .create_organization(&OrganizationName::parse("Acme").unwrap())
        .await
        .unwrap()
        .id;
    let default_jobs = [("RESONANCE_PLAN_MAX_CONCURRENT_JOBS", "4")];

    let out = stdout(&resonance(
        data.path(),
        &default_jobs,
        &[
            "orgs",
            "set-plan",
            org.as_str(),
            "--characters-per-month",
            "5000",
            "--voice-slots",
            "2",
        ],
    ));
    assert!(out.contains("characters per month: 5000"), "{out}");
    let expected = Plan {
        characters_per_month: Some(5000),
        voice_slots: Some(2),
        // Not given: the default plan's value.
        max_concurrent_jobs: Some(4),
    };
    assert_eq!(db.org_plan(&org).await.unwrap(), Some(expected));

    stdout(&resonance(
        data.path(),
        &[],
        &[
            "orgs",
            "set-plan",
            org.as_str(),
            "--voice-slots",
            "unlimited",
        ],
    ));
    assert_eq!(
        db.org_plan(&org).await.unwrap(),
        Some(Plan {
            voice_slots: None,
            ..expected
        })
    );

    let shown = stdout(&resonance(
        data.path(),
        &[],
        &["orgs", "show-plan", org.as_str()],
    ));
    assert!(shown.contains("its own plan"), "{shown}");
    assert!(shown.contains("voice slots: unlimited"), "{shown}");
    assert!(
        shown.contains("0 characters, 0 custom voices kept"),
        "{shown}"
    );

    let cleared = stdout(&resonance(
        data.path(),
        &default_jobs,
        &["orgs", "clear-plan", org.as_str()],
    ));
    assert!(cleared.contains("max concurrent jobs: 4"), "{cleared}");
    assert_eq!(db.org_plan(&org).await.unwrap(), None);
}

#[tokio::test]
async fn unknown_organizations_and_bad_limits_are_refused() {
    let data = tempfile::tempdir().unwrap();
    database(data.path()).await;
    let unknown = OrgId::new();
    let output = resonance(
        data.path(),
        &[],
        &["orgs", "set-plan", unknown.as_str(), "--voice-slots", "1"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("organization not found"), "{stderr}");

    let output = resonance(
        data.path(),
        &[],
        &[
            "orgs",
            "set-plan",
            unknown.as_str(),
            "--voice-slots",
            "lots",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`unlimited`"), "{stderr}");
}
