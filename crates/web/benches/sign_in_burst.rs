//! Memory under a burst of sign-ins: 100 concurrent wrong sign-ins against the real server
//! (SQLite, local storage) with the default bound on concurrent Argon2 work, then with the
//! bound lifted (as before it existed). Each Argon2 check holds 19 MiB.
//!
//! Prints, per run, the peak resident set size of the process during the burst (Linux
//! `VmHWM`, reset before each run through `/proc/self/clear_refs`), how many requests were
//! checked (401) or refused (429), and the burst's wall-clock time.
//!
//! Run: `cargo bench -p resonance-web --bench sign_in_burst`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use resonance_storage::{Storage, UrlSigningSecret};
use resonance_web::AppState;
use resonance_web::auth::AuthSettings;

const BURST: usize = 100;

/// A line of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

fn reset_peak_rss() {
    // "5" resets the peak resident set size to the current one (proc(5)).
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting VmHWM");
}

async fn burst(label: &str, auth: AuthSettings) {
    let dir = tempfile::tempdir().unwrap();
    let db = resonance_db::connect(&format!(
        "sqlite://{}",
        dir.path().join("resonance.db").display()
    ))
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let storage = Storage::local(
        dir.path().join("objects"),
        UrlSigningSecret::new(vec![7u8; 32]).unwrap(),
    )
    .unwrap();
    let state = AppState::new(db, storage, auth);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = resonance_web::serve(listener, state, async {
        let _ = stopped.await;
    })
    .unwrap();
    let url = format!("http://{}/api/auth/sign-in", server.addr);
    let client = reqwest::Client::new();
    // One sign-in first, so that lazily built state (the dummy hash) is not in the burst.
    sign_in(&client, &url, server.addr, 0).await;

    reset_peak_rss();
    let before = status_mib("VmRSS:");
    let started = Instant::now();
    let requests: Vec<_> = (1..=BURST)
        .map(|n| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { sign_in(&client, &url, server.addr, n).await })
        })
        .collect();
    let mut checked = 0;
    let mut refused = 0;
    for request in requests {
        match request.await.unwrap() {
            401 => checked += 1,
            429 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    let elapsed = started.elapsed();
    let peak = status_mib("VmHWM:");
    println!(
        "sign-in burst ({label}): {BURST} requests, {checked} checked (401), {refused} refused \
         (429), {:.2} s; RSS {before:.0} MiB before, peak {peak:.0} MiB (+{:.0} MiB)",
        elapsed.as_secs_f64(),
        peak - before
    );
    let _ = stop.send(());
    let _ = server.task.await;
}

async fn sign_in(client: &reqwest::Client, url: &str, server: SocketAddr, n: usize) -> u16 {
    client
        .post(url)
        .header("origin", format!("http://{server}"))
        .json(&serde_json::json!({
            "email": format!("nobody{n}@example.com"),
            "password": "not the password",
        }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let lenient = AuthSettings {
        attempts_per_ip: 10_000,
        ..AuthSettings::default()
    };
    runtime.block_on(async {
        let bound = lenient.max_concurrent_password_hashing;
        burst(&format!("bounded at {bound}"), lenient.clone()).await;
        burst(
            "unbounded",
            AuthSettings {
                max_concurrent_password_hashing: BURST,
                password_hashing_wait: Duration::from_secs(600),
                ..lenient
            },
        )
        .await;
    });
}
