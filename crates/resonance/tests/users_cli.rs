//! `resonance users reset-password` on the real binary, beside a running server on the same
//! data folder: the printed link's page loads, and its token sets a new password once.

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
