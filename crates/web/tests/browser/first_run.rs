//! What a new organization finds first on an instance without system voices: the
//! text-to-speech page leads to cloning in one click, and the library opens on the tab
//! that has voices.

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn without_system_voices_the_pages_lead_to_cloning_and_to_the_organizations_voices() {
    let browser = Browser::start().await;
    let app = &browser.app;
    let admin = app.signed_up("admin@example.com").await;
    app.create_org(&admin, "Acme Studio").await;
    browser
        .sign_in("admin@example.com", "/text-to-speech")
        .await;

    // No voice at all: one click from the editor reaches the clone form.
    browser
        .wait_for_js("document.querySelector('[data-voice-hint] a')")
        .await;
    browser.click("[data-voice-hint] a").await;
    browser
        .wait_for_js("location.pathname === '/voices/new'")
        .await;

    // The library opens on the organization's tab, which offers to clone a voice.
    browser.open("/voices").await;
    browser
        .wait_for_js(
            "document.querySelector('#tab-custom').getAttribute('aria-selected') === 'true'",
        )
        .await;
    browser
        .wait_for_js("!document.querySelector('[data-empty-action]').hidden")
        .await;
    assert_eq!(
        browser.text_of("[data-empty-title]").await,
        "No custom voices yet"
    );

    // With a voice of its own, the library opens on it and lists it.
    app.upload_voice(&admin, "Narrator").await;
    browser.open("/voices").await;
    browser
        .wait_for_js(
            "document.querySelector('#tab-custom').getAttribute('aria-selected') === 'true'",
        )
        .await;
    browser
        .wait_for_js("document.querySelector('[data-voice-list]').textContent.includes('Narrator')")
        .await;
    browser.screenshot("voices-first-run").await;
    assert!(browser.console_errors().await.is_empty());
}
