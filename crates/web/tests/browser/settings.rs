//! The settings page: invite links, API keys, members' roles, and one's own password and
//! sessions.

use serde_json::Value;

use crate::harness::*;

/// The link leads a newcomer through signing up to accepting, into the organization.
#[tokio::test(flavor = "multi_thread")]
async fn an_invite_link_from_settings_signs_a_newcomer_up_into_the_organization() {
    let Team { browser, admin, .. } = team().await;
    browser.sign_in(&admin.email, "/settings").await;
    browser
        .click("[data-invite-form] button[type=submit]")
        .await;
    browser
        .wait_for_js("document.querySelector('[data-invite-link]').value")
        .await;
    let invite = browser
        .find("[data-invite-link]")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    let invite_path = invite
        .strip_prefix(&browser.app.base_url)
        .unwrap()
        .to_string();
    assert!(invite_path.starts_with("/invites/"), "{invite}");
    browser.click("[data-sign-out]").await;
    browser
        .wait_for_js("location.pathname === '/sign-in'")
        .await;

    browser.open(&invite_path).await;
    browser.screenshot("invite").await;
    browser.click("a[href^='/sign-up']").await;
    browser
        .wait_for_js("location.pathname === '/sign-up'")
        .await;
    let next = browser.path().await;
    browser
        .sign_up(&next, "newcomer@example.com", &invite_path)
        .await;
    browser.click("[data-accept-invite]").await;
    browser
        .wait_for_js("location.pathname === '/' && document.querySelector('[data-dashboard]')")
        .await;
    assert_eq!(
        browser.text_of("#org-switcher option:checked").await,
        "Acme Studio"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_api_key_is_shown_once_listed_and_can_be_revoked() {
    let Team { browser, admin, .. } = team().await;
    browser.sign_in(&admin.email, "/settings").await;
    browser.fill("#key-name", "Build server").await;
    browser.click("[data-key-form] button[type=submit]").await;
    browser
        .wait_for_js("document.querySelector('[data-new-key]').value.startsWith('rsn_')")
        .await;
    browser.find("[data-keys] tr").await;
    assert!(
        browser
            .text_of("[data-keys]")
            .await
            .contains("Build server")
    );
    browser
        .click("button[aria-label='Revoke Build server']")
        .await;
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for_js("document.querySelector('[data-keys]').textContent.includes('Revoked')")
        .await;
    browser.screenshot("settings").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_makes_a_member_an_admin_and_removes_them() {
    let Team {
        browser,
        admin,
        member,
        org,
        ..
    } = team().await;
    browser.sign_in(&admin.email, "/settings").await;
    let role = format!("select[aria-label='Role of {}']", member.email);
    browser
        .find(&format!("{role} option[value='admin']"))
        .await
        .click()
        .await
        .unwrap();
    browser
        .wait_for_js("document.querySelector('[data-toast]').textContent === 'Role updated'")
        .await;
    let (_, _, body) = browser
        .fetch("GET", &format!("/api/orgs/{org}/members"))
        .await;
    let members: Value = serde_json::from_slice(&body).unwrap();
    let promoted = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == member.email.as_str())
        .unwrap();
    assert_eq!(promoted["role"], "admin");
    browser
        .click(&format!("button[aria-label='Remove {}']", member.email))
        .await;
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for_js(&format!(
            "document.querySelector('[data-toast]').textContent === 'Member removed' && !document.querySelector('[data-members]').textContent.includes({:?})",
            member.email
        ))
        .await;
    browser.close().await;
}

/// A member changes their password on the settings page, which signs out their other
/// sessions, and signs out a later one with "Sign out everywhere else".
#[tokio::test(flavor = "multi_thread")]
async fn a_member_changes_their_password_and_signs_out_everywhere_else() {
    let Team {
        browser, member, ..
    } = team().await;
    let app = &browser.app;
    let me = |client: &reqwest::Client| client.get(app.url("/api/me")).send();
    browser.sign_in(&member.email, "/settings").await;
    browser
        .fill("#current-password", crate::support::PASSWORD)
        .await;
    browser
        .fill("#new-password", "a brand new passphrase")
        .await;
    browser.click("[data-change-password]").await;
    browser
        .wait_for_js(
            "document.querySelector('[data-toast]').textContent.startsWith('Password changed')",
        )
        .await;
    browser.screenshot("settings-password").await;
    assert_eq!(me(&member.client).await.unwrap().status(), 401);
    assert_eq!(
        browser
            .run("return document.querySelector('#new-password').value;")
            .await,
        "",
        "the form is cleared"
    );

    let later = app.signed_in(&member.email, "a brand new passphrase").await;
    browser.click("[data-sign-out-others]").await;
    browser
        .wait_for_js(
            "document.querySelector('[data-toast]').textContent === 'Signed out 1 other session.'",
        )
        .await;
    assert_eq!(me(&later.client).await.unwrap().status(), 401);
    browser.open("/settings").await;
    assert_eq!(
        browser.path().await,
        "/settings",
        "this session stays signed in"
    );
    assert!(browser.console_errors().await.is_empty());
}
