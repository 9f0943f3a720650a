//! Accounts, sessions, organizations and API keys over HTTP, on SQLite and PostgreSQL.

use crate::support::{DbKind, PASSWORD, TestApp, error_code, session_cookie};
use serde_json::{Value, json};

async fn first_account_is_the_operator_and_signs_in(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let operator = app.signed_up("Operator@Example.com").await;
    let other = app.signed_up("other@example.com").await;

    let me: Value = operator
        .client
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["email"], "operator@example.com");
    assert_eq!(me["user"]["isOperator"], true);
    assert_eq!(me["organizations"], json!([]));
    assert_eq!(me["activeOrganization"], Value::Null);
    let me: Value = other
        .client
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["isOperator"], false);
    assert_ne!(me["user"]["id"], operator.id);
}

async fn sign_up_does_not_say_whether_an_email_is_taken(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let first = app.sign_up("taken@example.com", PASSWORD).await;
    let (status, body) = (first.status(), first.text().await.unwrap());
    let again = app
        .sign_up("TAKEN@example.com", "another password entirely")
        .await;
    assert_eq!(again.status(), status);
    assert_eq!(again.text().await.unwrap(), body);
    // The second sign-up changed nothing: the first password still works, the second does not.
    assert_eq!(
        app.sign_in("taken@example.com", "another password entirely")
            .await
            .status(),
        401
    );
    app.signed_in("taken@example.com", PASSWORD).await;
}

async fn sign_in_fails_alike_for_wrong_password_and_unknown_email(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    app.signed_up("known@example.com").await;
    let wrong_password = app.sign_in("known@example.com", "not the password").await;
    assert_eq!(wrong_password.status(), 401);
    assert!(session_cookie(&wrong_password).is_none());
    let wrong_body: Value = wrong_password.json().await.unwrap();
    let unknown = app.sign_in("nobody@example.com", PASSWORD).await;
    assert_eq!(unknown.status(), 401);
    let unknown_body: Value = unknown.json().await.unwrap();
    assert_eq!(wrong_body, unknown_body);
    assert_eq!(wrong_body["error"]["code"], "INVALID_CREDENTIALS");
}

async fn bad_sign_up_input_is_refused_clearly(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let response = app.sign_up("not-an-email", PASSWORD).await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "INVALID_EMAIL");
    let response = app.sign_up("short@example.com", "short").await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "INVALID_PASSWORD");
    let response = app.sign_up("common@example.com", "Password123").await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_PASSWORD");
    assert_eq!(
        body["error"]["message"],
        "this password is one of the most common ones, which attackers try first; choose another"
    );
    assert_eq!(
        app.sign_in("common@example.com", "Password123")
            .await
            .status(),
        401,
        "no account was created"
    );
    let response = app
        .anonymous()
        .post(app.url("/api/auth/sign-up"))
        .header("content-type", "application/json")
        .body("{\"email\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "INVALID_BODY");
}

async fn creating_and_switching_organizations(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let alice = app.signed_up("alice@example.com").await;
    let first = app.create_org(&alice, "First").await;
    let second = app.create_org(&alice, "Second").await;

    let me: Value = alice
        .client
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["activeOrganization"]["id"],
        first.as_str(),
        "the first org becomes active"
    );
    assert_eq!(me["activeOrganization"]["role"], "admin");
    let orgs: Value = alice
        .client
        .get(app.url("/api/orgs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = orgs["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["First", "Second"]);

    app.activate(&alice, &second).await;
    let me: Value = alice
        .client
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["activeOrganization"]["id"], second.as_str());

    let bob = app.signed_up("bob@example.com").await;
    let response = bob
        .client
        .post(app.url(&format!("/api/orgs/{first}/activate")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        404,
        "a non-member cannot activate an organization"
    );

    let response = alice
        .client
        .post(app.url("/api/orgs"))
        .json(&json!({ "name": "  " }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}

async fn api_keys_authenticate_with_both_headers_and_show_their_secret_once(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let alice = app.signed_up("alice@example.com").await;
    let org = app.create_org(&alice, "Acme").await;
    let response = alice
        .client
        .post(app.url(&format!("/api/orgs/{org}/api-keys")))
        .json(&json!({ "name": "CI" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    let prefix = created["prefix"].as_str().unwrap();
    assert!(key.starts_with(&format!("rsn_{prefix}_")), "{key}");
    assert_eq!(created["lastUsedAt"], Value::Null);

    let list: Value = alice
        .client
        .get(app.url(&format!("/api/orgs/{org}/api-keys")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["apiKeys"].as_array().unwrap().len(), 1);
    assert_eq!(list["apiKeys"][0]["name"], "CI");
    assert!(
        !list.to_string().contains(key),
        "listings never show the key"
    );

    // The key acts for its organization through either header.
    let response = app
        .key_client(key)
        .get(app.url(&format!("/api/orgs/{org}/api-keys")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "keys cannot manage keys");
    let response = reqwest::Client::new()
        .get(app.url(&format!("/api/orgs/{org}/api-keys")))
        .header("xi-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "xi-api-key authenticates the same key"
    );
    let response = reqwest::Client::new()
        .get(app.url(&format!("/api/orgs/{org}/api-keys")))
        .header("xi-api-key", format!("{key}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "a wrong secret with a right prefix is refused"
    );

    let list: Value = alice
        .client
        .get(app.url(&format!("/api/orgs/{org}/api-keys")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["apiKeys"][0]["lastUsedAt"].is_string(), "{list}");
}

async fn requests_without_credentials_are_unauthenticated(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    for path in ["/api/me", "/api/orgs"] {
        let response = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(error_code(response).await, "UNAUTHENTICATED");
    }
    let response = app
        .cookie_client("resonance_session=forged")
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .key_client("rsn_aaaaaaaa_forged")
        .get(app.url("/api/orgs"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn cookie_writes_need_our_origin(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let alice = app.signed_up("alice@example.com").await;
    let cross_site = reqwest::Client::new()
        .post(app.url("/api/orgs"))
        .header(
            "cookie",
            format!("resonance_session={}", alice.session_token),
        )
        .header("origin", "https://evil.example")
        .json(&json!({ "name": "Phished" }))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let no_origin = reqwest::Client::new()
        .post(app.url("/api/orgs"))
        .header(
            "cookie",
            format!("resonance_session={}", alice.session_token),
        )
        .json(&json!({ "name": "Phished" }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), 403);
    let orgs: Value = alice
        .client
        .get(app.url("/api/orgs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orgs["organizations"], json!([]), "nothing was created");
}

/// A new password needs the current one; it then signs out every other session, as does
/// "sign out everywhere else", and only the new password signs in.
async fn changing_the_password_signs_out_every_other_session(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let here = app.signed_up("ada@example.com").await;
    let elsewhere = app.signed_in("ada@example.com", PASSWORD).await;
    let bystander = app.signed_up("bob@example.com").await;
    let me = |user: &crate::support::TestUser| user.client.get(app.url("/api/me")).send();
    let change = |current: &str, new: &str| {
        here.client
            .post(app.url("/api/auth/password"))
            .json(&json!({ "currentPassword": current, "newPassword": new }))
            .send()
    };

    let refused = change("not my password", "a brand new passphrase")
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    assert_eq!(error_code(refused).await, "WRONG_PASSWORD");
    let refused = change(PASSWORD, "password").await.unwrap();
    assert_eq!(refused.status(), 422);
    assert_eq!(error_code(refused).await, "INVALID_PASSWORD");
    assert_eq!(
        me(&elsewhere).await.unwrap().status(),
        200,
        "nothing changed yet"
    );

    let changed = change(PASSWORD, "a brand new passphrase").await.unwrap();
    assert_eq!(changed.status(), 204);
    assert_eq!(me(&here).await.unwrap().status(), 200, "this session stays");
    assert_eq!(me(&elsewhere).await.unwrap().status(), 401);
    assert_eq!(me(&bystander).await.unwrap().status(), 200);
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status(), 401);
    let again = app
        .signed_in("ada@example.com", "a brand new passphrase")
        .await;
    let api_key_refused = app
        .key_client("rsn_abcdefgh_not-a-real-key")
        .post(app.url("/api/auth/sign-out-others"))
        .send()
        .await
        .unwrap();
    assert_eq!(api_key_refused.status(), 401);

    let ended: Value = again
        .client
        .post(app.url("/api/auth/sign-out-others"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ended["signedOut"], 1);
    assert_eq!(me(&again).await.unwrap().status(), 200);
    assert_eq!(me(&here).await.unwrap().status(), 401);
}

/// A reset link sets a new password once, ends every session of the account, and is
/// refused when used again or expired.
async fn a_reset_link_sets_a_new_password_once(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let ada = app.signed_up("ada@example.com").await;
    let user = resonance_domain::UserId::parse(&ada.id).unwrap();
    for (token, hours) in [("expired-token", -1), ("good-token", 1)] {
        app.db()
            .create_password_reset(
                &user,
                &resonance_web::auth::secrets::secret_hash(token),
                time::OffsetDateTime::now_utc() + time::Duration::hours(hours),
            )
            .await
            .unwrap();
    }
    let reset = |token: &str, password: &str| {
        app.anonymous()
            .post(app.url("/api/auth/reset-password"))
            .json(&json!({ "token": token, "newPassword": password }))
            .send()
    };

    for (token, password, code) in [
        (
            "expired-token",
            "a brand new passphrase",
            "INVALID_RESET_LINK",
        ),
        ("never-made", "a brand new passphrase", "INVALID_RESET_LINK"),
        ("good-token", "password", "INVALID_PASSWORD"),
    ] {
        let refused = reset(token, password).await.unwrap();
        assert_eq!(refused.status(), 422, "{token}");
        assert_eq!(error_code(refused).await, code, "{token}");
    }
    let done = reset("good-token", "a brand new passphrase").await.unwrap();
    assert_eq!(done.status(), 204);
    let me = ada.client.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(me.status(), 401, "every session ended");
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status(), 401);
    app.signed_in("ada@example.com", "a brand new passphrase")
        .await;
    let again = reset("good-token", "yet another passphrase").await.unwrap();
    assert_eq!(error_code(again).await, "INVALID_RESET_LINK");
}

/// The link in a reset email: `{base}/reset-password?token=...`.
fn emailed_link(mail: &resonance_testkit::smtp::ReceivedMail, base: &str) -> String {
    let text = mail.text();
    let start = text
        .find(&format!("{base}/reset-password?token="))
        .unwrap_or_else(|| panic!("no reset link in {text}"));
    text[start..].split_whitespace().next().unwrap().to_string()
}

/// With SMTP configured, "forgot password" emails a one-time link that works, answering the
/// same sentence whether or not the email has an account; it is limited per email, and
/// without SMTP it says to ask the operator.
async fn a_forgotten_password_is_reset_through_an_emailed_link(db: DbKind) {
    let smtp = resonance_testkit::smtp::FakeSmtp::start().await.unwrap();
    let app = TestApp::builder()
        .db(db)
        .smtp(smtp.port)
        .auth(|auth| auth.attempts_per_account = 3)
        .spawn()
        .await;
    app.signed_up("ada@example.com").await;
    let forgot = |email: &str| {
        app.anonymous()
            .post(app.url("/api/auth/forgot-password"))
            .json(&json!({ "email": email }))
            .send()
    };
    let mut answers = Vec::new();
    for email in ["nobody@example.com", "Ada@Example.com"] {
        let response = forgot(email).await.unwrap();
        assert_eq!(response.status(), 202, "{email}");
        let body: Value = response.json().await.unwrap();
        answers.push(body["message"].as_str().unwrap().to_string());
    }
    assert_eq!(
        answers[0], answers[1],
        "the answer tells who has an account"
    );
    assert!(
        answers[0].starts_with("If an account has this email"),
        "{}",
        answers[0]
    );

    let mail = smtp
        .next_mail(std::time::Duration::from_secs(20))
        .await
        .expect("a reset email");
    assert_eq!(mail.to, vec!["ada@example.com".to_string()]);
    assert_eq!(mail.from, "no-reply@resonance.test");
    assert!(
        mail.data.contains("Subject: Reset your Resonance password"),
        "{}",
        mail.data
    );
    assert!(
        smtp.next_mail(std::time::Duration::from_millis(500))
            .await
            .is_none(),
        "an email went to an address without an account"
    );
    let link = emailed_link(&mail, &app.base_url);
    let page = app.anonymous().get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let token = link.split_once("token=").unwrap().1;
    let reset = app
        .anonymous()
        .post(app.url("/api/auth/reset-password"))
        .json(&json!({ "token": token, "newPassword": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    app.signed_in("ada@example.com", "a brand new passphrase")
        .await;

    let invalid = forgot("not an email").await.unwrap();
    assert_eq!(invalid.status(), 422);
    assert_eq!(error_code(invalid).await, "INVALID_EMAIL");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(forgot("ada@example.com").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 429], "one mailbox is not flooded");

    let without_smtp = TestApp::builder().db(db).spawn().await;
    let refused = without_smtp
        .anonymous()
        .post(without_smtp.url("/api/auth/forgot-password"))
        .json(&json!({ "email": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ask its operator"),
        "{body}"
    );
}

on_both_databases!(
    a_forgotten_password_is_reset_through_an_emailed_link,
    a_reset_link_sets_a_new_password_once,
    changing_the_password_signs_out_every_other_session,
    first_account_is_the_operator_and_signs_in,
    sign_up_does_not_say_whether_an_email_is_taken,
    sign_in_fails_alike_for_wrong_password_and_unknown_email,
    bad_sign_up_input_is_refused_clearly,
    creating_and_switching_organizations,
    api_keys_authenticate_with_both_headers_and_show_their_secret_once,
    requests_without_credentials_are_unauthenticated,
    cookie_writes_need_our_origin,
);
