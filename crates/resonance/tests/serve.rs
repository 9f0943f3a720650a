//! The real `resonance` binary: start-up, health, readiness, bad configuration,
//! graceful shutdown.

use std::process::{Child, Command};
use std::time::Duration;

mod support;

use support::{resonance, start};

#[tokio::test]
async fn serves_health_and_readiness_on_embedded_defaults() {
    let server = start(&[]);
    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let ready = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"]["status"], "ok");
    assert_eq!(body["checks"]["storage"]["status"], "ok");
    assert!(server.data.path().join("resonance.db").exists());
}

#[tokio::test]
async fn readiness_names_the_database_when_it_goes_away() {
    let postgres = resonance_testkit::postgres::TestPostgres::new()
        .await
        .unwrap();
    let server = start(&[("DATABASE_URL", postgres.url())]);
    let readyz = format!("{}/readyz", server.base);
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 200);

    postgres.drop_database_now().await.unwrap();
    let ready = reqwest::get(&readyz).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["failing"], serde_json::json!(["database"]));
    assert_eq!(body["checks"]["storage"]["status"], "ok");
    assert_eq!(
        reqwest::get(format!("{}/healthz", server.base))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut server = start(&[]);
    assert_eq!(
        reqwest::get(format!("{}/healthz", server.base))
            .await
            .unwrap()
            .status(),
        200
    );
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_exit(&mut server.child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_failing(args: &[&str], envs: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let out = resonance()
        .args(args)
        .env("RESONANCE_DATA_DIR", data.path())
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "expected failure for {args:?} {envs:?}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn model_verify_checks_every_module_against_the_shipped_fixtures() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/chatterbox-turbo"
    );
    let out = resonance()
        .args(["model", "verify", "--fixtures", fixtures])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for module in [
        "t3_turbo",
        "s3tokenizer_v2",
        "voice_encoder",
        "campplus",
        "flow_encoder",
        "cfm_meanflow",
        "hift",
        "mel_24k",
        "s3gen_meanflow_e2e",
        "turbo_e2e",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(module) && l.trim_end().ends_with("pass")
                    || l.starts_with(module) && l.contains(" pass ")),
            "no passing row for {module}:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("FAIL") && !stdout.contains("skipped"),
        "{stdout}"
    );
}

#[test]
fn model_verify_fails_on_a_fixture_that_disagrees() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/chatterbox-turbo"
    );
    for file in ["index.json", "mel_24k.json"] {
        std::fs::copy(format!("{shipped}/{file}"), dir.path().join(file)).unwrap();
    }
    // The mel fixture with its expected output replaced by the input's bytes.
    let bytes = std::fs::read(format!("{shipped}/mel_24k.safetensors")).unwrap();
    let corrupted = corrupt_tensor(&bytes, "fixture.mel");
    std::fs::write(dir.path().join("mel_24k.safetensors"), corrupted).unwrap();
    let out = resonance()
        .args(["model", "verify", "--fixtures"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAIL") || stdout.contains("ERROR"),
        "{stdout}"
    );
    assert!(stdout.contains("no fixture in this directory"), "{stdout}");
}

/// Adds 1.0 to every f32 of one tensor in a safetensors file.
fn corrupt_tensor(file: &[u8], name: &str) -> Vec<u8> {
    let header_len = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + header_len]).unwrap();
    let offsets = &header[name]["data_offsets"];
    let (start, end) = (
        offsets[0].as_u64().unwrap() as usize,
        offsets[1].as_u64().unwrap() as usize,
    );
    let mut out = file.to_vec();
    for chunk in out[8 + header_len + start..8 + header_len + end].chunks_exact_mut(4) {
        let v = f32::from_le_bytes(chunk.try_into().unwrap()) + 1.0;
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    out
}

#[test]
fn invalid_settings_name_the_key() {
    let err = run_failing(&["serve"], &[("RESONANCE_BIND", "not-an-address")]);
    assert!(err.contains("RESONANCE_BIND"), "{err}");
    let err = run_failing(&["migrate"], &[("DATABASE_URL", "mysql://localhost/x")]);
    assert!(err.contains("DATABASE_URL"), "{err}");
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = run_failing(&["serve"], &[("RESONANCE_BIND", addr.as_str())]);
    assert!(
        err.contains("cannot listen on") && err.contains(&addr),
        "{err}"
    );
}

#[test]
fn unreachable_database_fails_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://resonance:secret-pw@127.0.0.1:{port}/resonance");
    let err = run_failing(&["serve"], &[("DATABASE_URL", url.as_str())]);
    assert!(err.contains("cannot connect to the database"), "{err}");
    assert!(!err.contains("secret-pw"), "password leaked: {err}");
}

#[tokio::test]
async fn without_the_model_it_serves_and_says_how_to_get_it() {
    let server = start(&[]);
    assert!(
        server.wait_for_log("generation workers cannot start", Duration::from_secs(30)),
        "{:?}",
        server.log.lock().unwrap()
    );
    assert!(server.logged("download these files by hand"));
    assert!(server.logged("/ResembleAI/chatterbox-turbo/resolve/main/t3_turbo_v1.safetensors"));
    let health = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
