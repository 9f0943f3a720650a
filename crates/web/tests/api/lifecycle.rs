//! Session and API key lifecycles, members, invites and sign-in rate limits, on SQLite and
//! PostgreSQL.

use crate::support::{DbKind, PASSWORD, TestApp, error_code, session_cookie};
use serde_json::{Value, json};

async fn sign_out_ends_the_session_at_once(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let alice = app.signed_up("alice@example.com").await;
    let other_session = app.signed_in("alice@example.com", PASSWORD).await;
    let response = alice
        .client
        .post(app.url("/api/auth/sign-out"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let response = alice.client.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = other_session
        .client
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "other sessions go on");
}

async fn signing_in_again_replaces_the_session(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let alice = app.signed_up("alice@example.com").await;
    let response = alice
        .client
        .post(app.url("/api/auth/sign-in"))
        .json(&json!({ "email": "alice@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let new_token = session_cookie(&response).unwrap();
    assert_ne!(new_token, alice.session_token);
    let old = alice.client.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(old.status(), 401, "the session signed in over is gone");
    let new = app.cookie_client(&format!("resonance_session={new_token}"));
    assert_eq!(
        new.get(app.url("/api/me")).send().await.unwrap().status(),
        200
    );
}

async fn sessions_expire(db: DbKind) {
    let app = TestApp::builder()
        .db(db)
        .auth(|auth| auth.session_ttl = std::time::Duration::from_millis(300))
        .spawn()
        .await;
    let alice = app.signed_up("alice@example.com").await;
    let response = alice.client.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let response = alice.client.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

async fn cookies_are_http_only_lax_and_secure_when_configured(db: DbKind) {
    let app = TestApp::builder()
        .db(db)
        .auth(|auth| auth.secure_cookies = true)
        .spawn()
        .await;
    app.sign_up("alice@example.com", PASSWORD).await;
    let response = app.sign_in("alice@example.com", PASSWORD).await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let plain = TestApp::builder().db(db).spawn().await;
    plain.sign_up("bob@example.com", PASSWORD).await;
    let response = plain.sign_in("bob@example.com", PASSWORD).await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

async fn revoked_keys_fail_at_once(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let alice = app.signed_up("alice@example.com").await;
    let org = app.create_org(&alice, "Acme").await;
    let key = app.create_api_key(&alice, &org).await;
    let keys: Value = alice
        .client
        .get(app.url(&format!("/api/orgs/{org}/api-keys")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = keys["apiKeys"][0]["id"].as_str().unwrap().to_string();
    let members_url = app.url(&format!("/api/orgs/{org}/members"));
    // A key authenticates (and is then refused member management, which needs a person).
    assert_eq!(
        app.key_client(&key)
            .get(&members_url)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    let response = alice
        .client
        .delete(app.url(&format!("/api/orgs/{org}/api-keys/{key_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let revoked: Value = response.json().await.unwrap();
    assert!(revoked["revokedAt"].is_string());
    let response = app.key_client(&key).get(&members_url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "UNAUTHENTICATED");
}

async fn invites_add_members_and_roles_keep_an_admin(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let alice = app.signed_up("alice@example.com").await;
    let org = app.create_org(&alice, "Acme").await;
    let token = app.invite(&alice, &org, "member").await;
    let invites: Value = alice
        .client
        .get(app.url(&format!("/api/orgs/{org}/invites")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(invites["invites"].as_array().unwrap().len(), 1);

    let bob = app.signed_up("bob@example.com").await;
    // The link the API gave (`app.invite` checked it).
    let link = format!("/invites/{token}");
    let page = bob.client.get(app.url(&link)).send().await.unwrap();
    assert_eq!(page.status(), 200, "the invite link opens the invite page");
    assert!(page.text().await.unwrap().contains(&token));
    let accept = app.url(&format!("/api/invites/{token}/accept"));
    let response = bob.client.post(&accept).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let me: Value = bob
        .client
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["activeOrganization"]["id"], org.as_str());
    assert_eq!(me["activeOrganization"]["role"], "member");
    let carol = app.signed_up("carol@example.com").await;
    assert_eq!(
        carol.client.post(&accept).send().await.unwrap().status(),
        404,
        "invites are single-use"
    );

    let members_url = app.url(&format!("/api/orgs/{org}/members"));
    let members: Value = bob
        .client
        .get(&members_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let emails: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["alice@example.com", "bob@example.com"]);

    // The last admin can be neither demoted nor removed, and cannot leave.
    let alice_url = app.url(&format!("/api/orgs/{org}/members/{}", alice.id));
    let response = alice
        .client
        .patch(&alice_url)
        .json(&json!({ "role": "member" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(
        alice
            .client
            .delete(&alice_url)
            .send()
            .await
            .unwrap()
            .status(),
        409
    );
    // A member cannot change roles.
    let bob_url = app.url(&format!("/api/orgs/{org}/members/{}", bob.id));
    let response = bob
        .client
        .patch(&bob_url)
        .json(&json!({ "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // With a second admin, the first may step down.
    let response = alice
        .client
        .patch(&bob_url)
        .json(&json!({ "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = alice
        .client
        .patch(&alice_url)
        .json(&json!({ "role": "member" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Removed members lose access at once.
    assert_eq!(
        bob.client.delete(&alice_url).send().await.unwrap().status(),
        204
    );
    assert_eq!(
        alice
            .client
            .get(&members_url)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let me: Value = alice
        .client
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["activeOrganization"], Value::Null);
}

async fn sign_in_is_rate_limited_per_account_and_per_ip(db: DbKind) {
    let app = TestApp::builder()
        .db(db)
        .auth(|auth| {
            auth.attempts_per_account = 3;
            auth.attempts_per_ip = 6;
        })
        .spawn()
        .await;
    app.sign_up("alice@example.com", PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(
            app.sign_in("alice@example.com", "wrong password")
                .await
                .status(),
            401
        );
    }
    let limited = app.sign_in("alice@example.com", PASSWORD).await;
    assert_eq!(limited.status(), 429, "even the right password waits");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    assert_eq!(error_code(limited).await, "RATE_LIMITED");
    // Other accounts from this IP go on until the IP's own limit (sign-up counted once).
    assert_eq!(
        app.sign_in("bob@example.com", "wrong password")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.sign_in("carol@example.com", "wrong password")
            .await
            .status(),
        429
    );
}

on_both_databases!(
    sign_out_ends_the_session_at_once,
    signing_in_again_replaces_the_session,
    sessions_expire,
    cookies_are_http_only_lax_and_secure_when_configured,
    revoked_keys_fail_at_once,
    invites_add_members_and_roles_keep_an_admin,
    sign_in_is_rate_limited_per_account_and_per_ip,
);

/// `POST /api/auth/sign-in` from the client address `from`, through a trusted proxy.
async fn sign_in_from(app: &TestApp, from: &str, email: &str, password: &str) -> reqwest::Response {
    app.anonymous()
        .post(app.url("/api/auth/sign-in"))
        .header("x-forwarded-for", from)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_attacker_slows_only_their_own_address_not_the_owner() {
    const ATTACKER: &str = "203.0.113.66";
    const OWNER: &str = "198.51.100.7";
    let app = TestApp::builder()
        .auth(|auth| auth.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()])
        .spawn()
        .await;
    app.sign_up("alice@example.com", PASSWORD).await;
    for attempt in 1..=10 {
        let response = sign_in_from(&app, ATTACKER, "alice@example.com", "guess").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let limited = sign_in_from(&app, ATTACKER, "alice@example.com", "guess").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(retry_after(&limited), 1);
    assert_eq!(
        sign_in_from(&app, ATTACKER, "alice@example.com", PASSWORD)
            .await
            .status(),
        429,
        "from the attacker's address even the right password waits"
    );
    assert_eq!(
        sign_in_from(&app, OWNER, "alice@example.com", PASSWORD)
            .await
            .status(),
        200,
        "the owner, elsewhere, signs in"
    );

    // Each further failure from the attacker's address doubles its wait.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        sign_in_from(&app, ATTACKER, "alice@example.com", "guess")
            .await
            .status(),
        401
    );
    let limited = sign_in_from(&app, ATTACKER, "alice@example.com", "guess").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(retry_after(&limited), 2);
    assert_eq!(
        sign_in_from(&app, OWNER, "alice@example.com", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_burst_of_sign_ins_hashes_at_most_the_bound_at_once() {
    const BOUND: usize = 2;
    const BURST: usize = 40;
    let app = std::sync::Arc::new(
        TestApp::builder()
            .auth(|auth| {
                auth.attempts_per_ip = 1000;
                auth.max_concurrent_password_hashing = BOUND;
                auth.password_hashing_wait = std::time::Duration::from_millis(300);
            })
            .spawn()
            .await,
    );
    let burst: Vec<_> = (0..BURST)
        .map(|n| {
            let app = std::sync::Arc::clone(&app);
            tokio::spawn(async move {
                let response = app
                    .sign_in(&format!("nobody{n}@example.com"), "wrong password")
                    .await;
                let retry_after = response.headers().get("retry-after").cloned();
                (response.status().as_u16(), retry_after)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in burst {
        let (status, retry_after) = request.await.unwrap();
        if status == 429 {
            assert_eq!(retry_after.unwrap(), "1");
        }
        statuses.push(status);
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(refused + checked, BURST, "{statuses:?}");
    assert!(checked >= BOUND, "{statuses:?}");
    assert!(refused > 0, "the excess waited too long and was refused");
    let hashing = &app.state.auth.password_hashing;
    assert!(
        (1..=BOUND).contains(&hashing.peak()),
        "{} ran at once",
        hashing.peak()
    );
    assert_eq!(hashing.running(), 0);
    assert!(
        (1..=BOUND).contains(&hashing.buffers()),
        "{} working buffers of 19 MiB",
        hashing.buffers()
    );
}

/// A failed sign-in (a fresh email each time, so that only the per-IP limit counts) sent
/// with `X-Forwarded-For: forwarded_for`.
async fn failed_sign_in_forwarded_for(app: &TestApp, forwarded_for: &str) -> u16 {
    let email = format!("{}@example.com", crate::support::random_name());
    app.anonymous()
        .post(app.url("/api/auth/sign-in"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "email": email, "password": "wrong password" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_ip_limit() {
    let app = TestApp::builder()
        .auth(|auth| {
            auth.attempts_per_ip = 2;
            auth.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
        })
        .spawn()
        .await;
    for _ in 0..2 {
        assert_eq!(failed_sign_in_forwarded_for(&app, "203.0.113.1").await, 401);
    }
    assert_eq!(failed_sign_in_forwarded_for(&app, "203.0.113.1").await, 429);
    assert_eq!(
        failed_sign_in_forwarded_for(&app, "198.51.100.9, 203.0.113.1").await,
        429,
        "an address the client wrote left of the proxy's entry changes nothing"
    );
    assert_eq!(
        failed_sign_in_forwarded_for(&app, "203.0.113.2").await,
        401,
        "another client behind the same proxy has its own limit"
    );
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let app = TestApp::builder()
        .auth(|auth| auth.attempts_per_ip = 2)
        .spawn()
        .await;
    assert_eq!(failed_sign_in_forwarded_for(&app, "203.0.113.1").await, 401);
    assert_eq!(failed_sign_in_forwarded_for(&app, "203.0.113.2").await, 401);
    assert_eq!(
        failed_sign_in_forwarded_for(&app, "203.0.113.3").await,
        429,
        "a client cannot escape its limit by sending the header"
    );
}
