//! `resonance users reset-password` on the real binary, beside a running server on the same
//! data folder: the printed link's page loads, and its token sets a new password once;
//! with SMTP configured the link is emailed instead.

use reqwest::header::ORIGIN;
use serde_json::json;

mod support;

use support::{resonance, start};

#[tokio::test]
async fn the_printed_reset_link_sets_a_new_password() {
    let server = start(&[]);
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", server.base))
            .header(ORIGIN, &server.base)
            .json(&body)
            .send()
    };
    let credentials =
        json!({ "email": "ada@example.com", "password": "correct horse battery staple" });
    assert_eq!(
        post("/api/auth/sign-up", credentials.clone())
            .await
            .unwrap()
            .status(),
        202
    );

    let cli = |email: &str| {
        resonance()
            .env("RESONANCE_DATA_DIR", server.data.path())
            .env("RESONANCE_PUBLIC_URL", &server.base)
            .args(["users", "reset-password", email])
            .output()
            .unwrap()
    };
    let unknown = cli("nobody@example.com");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account has the email"));
    let printed = cli("Ada@Example.com");
    assert!(printed.status.success(), "{printed:?}");
    let link = String::from_utf8(printed.stdout)
        .unwrap()
        .trim()
        .to_string();
    let token = link
        .strip_prefix(&format!("{}/reset-password?token=", server.base))
        .unwrap_or_else(|| panic!("{link}"))
        .to_string();
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Choose a new password"));

    let reset = json!({ "token": token, "newPassword": "a brand new passphrase" });
    assert_eq!(
        post("/api/auth/reset-password", reset.clone())
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        post("/api/auth/sign-in", credentials)
            .await
            .unwrap()
            .status(),
        401
    );
    let renewed = json!({ "email": "ada@example.com", "password": "a brand new passphrase" });
    assert_eq!(
        post("/api/auth/sign-in", renewed).await.unwrap().status(),
        200
    );
    assert_eq!(
        post("/api/auth/reset-password", reset)
            .await
            .unwrap()
            .status(),
        422
    );
}

/// With SMTP configured, the command emails the link to the account instead of printing
/// it, and the emailed link sets a new password.
#[tokio::test(flavor = "multi_thread")]
async fn with_smtp_the_reset_link_is_emailed() {
    let server = start(&[]);
    let smtp = resonance_testkit::smtp::FakeSmtp::start().await.unwrap();
    let http = reqwest::Client::new();
    let credentials =
        json!({ "email": "ada@example.com", "password": "correct horse battery staple" });
    let response = http
        .post(format!("{}/api/auth/sign-up", server.base))
        .header(ORIGIN, &server.base)
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    let port = smtp.port.to_string();
    let cli = |email: &str| {
        resonance()
            .env("RESONANCE_DATA_DIR", server.data.path())
            .env("RESONANCE_PUBLIC_URL", &server.base)
            .env("RESONANCE_SMTP_HOST", "127.0.0.1")
            .env("RESONANCE_SMTP_PORT", &port)
            .env("RESONANCE_SMTP_TLS", "none")
            .env("RESONANCE_SMTP_FROM", "Resonance <no-reply@resonance.test>")
            .args(["users", "reset-password", email])
            .output()
            .unwrap()
    };
    let unknown = cli("nobody@example.com");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account has the email"));
    let sent = cli("ada@example.com");
    assert!(sent.status.success(), "{sent:?}");
    assert!(sent.stdout.is_empty(), "the link was printed too: {sent:?}");
    assert!(String::from_utf8_lossy(&sent.stderr).contains("Emailed ada@example.com"));

    let mail = smtp
        .next_mail(std::time::Duration::from_secs(10))
        .await
        .expect("the reset email");
    assert_eq!(mail.to, vec!["ada@example.com".to_string()]);
    let prefix = format!("{}/reset-password?token=", server.base);
    let text = mail.text();
    let token = text[text.find(&prefix).expect("a reset link") + prefix.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let reset = json!({ "token": token, "newPassword": "a brand new passphrase" });
    let response = http
        .post(format!("{}/api/auth/reset-password", server.base))
        .header(ORIGIN, &server.base)
        .json(&reset)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let renewed = json!({ "email": "ada@example.com", "password": "a brand new passphrase" });
    let response = http
        .post(format!("{}/api/auth/sign-in", server.base))
        .header(ORIGIN, &server.base)
        .json(&renewed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
