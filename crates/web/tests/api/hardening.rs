//! Bounded work for every input, on the real server: connections that send nothing or too
//! slowly are closed and their number is capped, redirects stay on this site, malformed
//! query strings and oversized bodies get the API's errors, pages carry a strict security
//! policy, signed-in writes must come from this site's scheme and hosts, invites can be
//! bound to one email, and names refuse invisible characters. On SQLite and PostgreSQL
//! where the database is involved.

use std::time::{Duration, Instant};

use crate::support::{DbKind, TestApp, TestUser, error_code};
use reqwest::StatusCode;
use reqwest::header::{HeaderValue, LOCATION, ORIGIN};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; the time it took, or `None` when it is
/// still open after `patience`.
async fn closed_within(stream: &mut TcpStream, patience: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(patience, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base_url.trim_start_matches("http://"))
        .await
        .unwrap()
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    let app = TestApp::builder()
        .connections(|c| c.header_read_timeout = Duration::from_millis(800))
        .spawn()
        .await;

    // Slowloris: a request line and one header, then nothing.
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let closed = closed_within(&mut slow, Duration::from_secs(10)).await;
    assert!(
        closed.is_some(),
        "a partial header keeps the connection open"
    );

    // A connection that never sends a byte.
    let mut silent = connect(&app).await;
    assert!(
        closed_within(&mut silent, Duration::from_secs(10))
            .await
            .is_some()
    );

    // A keep-alive connection after its response.
    let mut idle = connect(&app).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = [0u8; 12];
    idle.read_exact(&mut response).await.unwrap();
    assert_eq!(&response, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut idle, Duration::from_secs(10))
            .await
            .is_some()
    );

    // Dripping one byte at a time does not reset the clock.
    let mut drip = connect(&app).await;
    let started = Instant::now();
    for byte in b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " {
        if drip.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = closed_within(&mut drip, Duration::from_secs(10)).await;
    assert!(closed.is_some() && started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn a_stalled_request_body_fails() {
    let app = TestApp::builder()
        .connections(|c| c.body_read_timeout = Duration::from_millis(800))
        .spawn()
        .await;
    let mut stream = connect(&app).await;
    let host = app.base_url.trim_start_matches("http://");
    let head = format!(
        "POST /api/auth/sign-in HTTP/1.1\r\nHost: {host}\r\nOrigin: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":",
        app.base_url
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response));
    assert!(read.await.is_ok(), "the server waits forever for the body");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let app = TestApp::builder()
        .connections(|c| c.max_connections = 2)
        .spawn()
        .await;
    let first = connect(&app).await;
    let second = connect(&app).await;
    // Both are accepted (and hold the slots) once the server has seen them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = reqwest::Client::new()
        .get(app.url("/healthz"))
        .timeout(Duration::from_millis(700))
        .send()
        .await;
    assert!(health.is_err(), "a third connection was served");
    drop(first);
    let health = reqwest::Client::new()
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    drop(second);
}

/// A browser-like client that does not follow redirects.
fn no_redirects(user: Option<&TestUser>, app: &TestApp) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(user) = user {
        headers.insert(
            reqwest::header::COOKIE,
            HeaderValue::from_str(&format!("resonance_session={}", user.session_token)).unwrap(),
        );
    }
    headers.insert(ORIGIN, HeaderValue::from_str(&app.base_url).unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn sign_in_redirects_stay_on_this_site() {
    let app = TestApp::builder().spawn().await;
    let user = app.signed_up("visitor@example.com").await;
    let signed_in = no_redirects(Some(&user), &app);
    let anonymous = no_redirects(None, &app);
    for next in [
        "/%09/evil.test",
        "/%0A/evil.test",
        "/%0D%0A/evil.test",
        "%09//evil.test",
        "/%5Cevil.test",
        "/%09%5Cevil.test",
        "//evil.test",
        "https://evil.test/",
    ] {
        for page in ["/sign-in", "/sign-up"] {
            let url = app.url(&format!("{page}?next={next}"));
            let response = signed_in.get(&url).send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::SEE_OTHER,
                "{page}?next={next}"
            );
            assert_eq!(response.headers()[LOCATION], "/", "{page}?next={next}");
            let html = anonymous.get(&url).send().await.unwrap();
            assert_eq!(html.status(), StatusCode::OK, "{page}?next={next}");
            let html = html.text().await.unwrap();
            assert!(html.contains("data-next=\"/\""), "{page}?next={next}");
            assert!(!html.contains("evil.test"), "{page}?next={next}");
        }
    }
    // A newline after a good path is dropped as a browser drops it, not a 500.
    let response = signed_in
        .get(app.url("/sign-in?next=/history%0A"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[LOCATION], "/history");
    // A malformed query string names no page.
    let response = signed_in
        .get(app.url("/sign-in?next=/a&next=/b"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn query_string_errors_and_oversized_bodies_use_the_error_format() {
    let app = TestApp::builder().spawn().await;
    let admin = app.signed_up("admin@example.com").await;
    app.create_org(&admin, "Acme").await;
    for path in [
        "/api/voices?limit=many",
        "/api/voices?offset=-1",
        "/api/generations?limit=1&limit=2",
        "/api/generations?offset=99999999999999999999",
    ] {
        let response = admin.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = response.json().await.expect("a JSON error body");
        assert_eq!(body["error"]["code"], "INVALID_QUERY", "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    let huge_name = "x".repeat(3 * 1024 * 1024);
    let response = admin
        .client
        .post(app.url("/api/orgs"))
        .json(&json!({ "name": huge_name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(response).await, "PAYLOAD_TOO_LARGE");
}

async fn very_long_searches_and_voice_names_are_client_errors(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let admin = app.signed_up("admin@example.com").await;
    let org = app.create_org(&admin, "Acme").await;
    let key = app.create_api_key(&admin, &org).await;
    // Each `_` doubles in the LIKE pattern: 60 000 bytes, past SQLite's 50 000.
    let long = "_".repeat(30_000);

    let response = admin
        .client
        .get(app.url(&format!("/api/voices?search={long}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "INVALID_QUERY");

    let response = app
        .key_client(&key)
        .get(app.url(&format!("/v2/voices?search={long}")))
        .header("xi-api-key", &key)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());

    let name = "%_".repeat(30_000);
    let response = app
        .key_client(&key)
        .post(app.url("/v1/audio/speech"))
        .json(&json!({ "model": "tts-1", "input": "Hello.", "voice": name }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    let hundred = "a".repeat(100);
    let response = admin
        .client
        .get(app.url(&format!("/api/voices?search={hundred}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn pages_and_api_carry_a_strict_security_policy() {
    let app = TestApp::builder().spawn().await;
    for path in ["/sign-in", "/healthz", "/nowhere"] {
        let response = reqwest::get(app.url(path)).await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("object-src 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
    }
}

#[tokio::test]
async fn signed_in_writes_need_this_sites_scheme_and_hosts() {
    let app = TestApp::builder().spawn().await;
    let user = app.signed_up("writer@example.com").await;
    let create = |origin: &str| {
        reqwest::Client::new()
            .post(app.url("/api/orgs"))
            .header(
                reqwest::header::COOKIE,
                format!("resonance_session={}", user.session_token),
            )
            .header(ORIGIN, origin)
            .json(&json!({ "name": "Acme" }))
            .send()
    };
    let https_origin = app.base_url.replace("http://", "https://");
    assert_eq!(
        create(&https_origin).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        create(&app.base_url).await.unwrap().status(),
        StatusCode::CREATED
    );

    // With a list of host names, a request to any other name is refused even from its own
    // origin (DNS rebinding).
    let listed = TestApp::builder()
        .auth(|auth| auth.allowed_hosts = vec!["tts.example".into()])
        .spawn()
        .await;
    let response = listed
        .anonymous()
        .post(listed.url("/api/auth/sign-up"))
        .json(&json!({ "email": "a@example.com", "password": crate::support::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn invites_can_name_the_one_account_that_may_accept(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let admin = app.signed_up("admin@example.com").await;
    let org = app.create_org(&admin, "Acme").await;
    let invitee = app.signed_up("bob@example.com").await;
    let other = app.signed_up("carol@example.com").await;

    let response = admin
        .client
        .post(app.url(&format!("/api/orgs/{org}/invites")))
        .json(&json!({ "role": "member", "email": " Bob@Example.com " }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let invite: Value = response.json().await.unwrap();
    assert_eq!(invite["email"], "bob@example.com");
    let token = invite["token"].as_str().unwrap();
    let listed: Value = admin
        .client
        .get(app.url(&format!("/api/orgs/{org}/invites")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["invites"][0]["email"], "bob@example.com");

    let accept = |user: &TestUser| {
        user.client
            .post(app.url(&format!("/api/invites/{token}/accept")))
            .send()
    };
    let refused = accept(&other).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another email address"),
        "{body}"
    );
    assert_eq!(accept(&invitee).await.unwrap().status(), StatusCode::OK);

    // Without an email anyone with the link may join, as before; a bad email is refused.
    let open = app.invite(&admin, &org, "member").await;
    let response = other
        .client
        .post(app.url(&format!("/api/invites/{open}/accept")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = admin
        .client
        .post(app.url(&format!("/api/orgs/{org}/invites")))
        .json(&json!({ "role": "member", "email": "not an email" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(response).await, "INVALID_EMAIL");
}

#[tokio::test]
async fn names_refuse_invisible_and_direction_characters() {
    let app = TestApp::builder().spawn().await;
    let admin = app.signed_up("admin@example.com").await;
    let org = app.create_org(&admin, "Acme").await;
    for name in [
        "Acme\u{202E}gnp.exe",
        "Ac\u{200B}me",
        "\u{2066}Acme\u{2069}",
        "\u{FEFF}Acme",
    ] {
        let response = admin
            .client
            .post(app.url("/api/orgs"))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:?}"
        );
        assert_eq!(error_code(response).await, "INVALID_NAME");
        let response = admin
            .client
            .post(app.url(&format!("/api/orgs/{org}/api-keys")))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:?}"
        );
    }
    let wav = resonance_testkit::audio::encode_as(
        &resonance_testkit::audio::speech_like(12.0, 0.5, 1),
        resonance_testkit::audio::UploadFormat::Wav,
    );
    let response = admin
        .client
        .post(app.url("/api/voices?consent=true&name=Nar%E2%80%AErator"))
        .header(reqwest::header::CONTENT_TYPE, "audio/wav")
        .body(wav)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "INVALID_FIELD");
}

on_both_databases!(
    very_long_searches_and_voice_names_are_client_errors,
    invites_can_name_the_one_account_that_may_accept,
);
