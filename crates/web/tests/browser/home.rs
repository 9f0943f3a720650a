//! The home page: a new account's first organization, then the dashboard.

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_new_account_creates_its_organization_and_lands_on_an_empty_dashboard() {
    let browser = Browser::start().await;

    // The sign-up page signs in afterwards.
    browser.sign_up("/sign-up", "owner@example.com", "/").await;
    assert!(
        browser
            .find("[data-create-org]")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    browser.screenshot("onboarding").await;
    browser.fill("#org-name", "Acme Studio").await;
    browser
        .click("[data-create-org-form] button[type=submit]")
        .await;
    browser
        .wait_for_js("document.querySelector('[data-dashboard]') && document.querySelector('[data-recent]').getAttribute('aria-busy') === 'false'")
        .await;
    assert_eq!(
        browser.text_of("#org-switcher option:checked").await,
        "Acme Studio"
    );
    assert!(
        browser
            .text_of("[data-recent]")
            .await
            .contains("Nothing generated yet")
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_links_recent_generations_and_counts_this_months_usage() {
    let Team {
        browser,
        admin,
        generation,
        ..
    } = team().await;
    browser.sign_in(&admin.email, "/").await;
    browser
        .find(&format!(
            "[data-recent] a[href='/text-to-speech/{generation}']"
        ))
        .await;
    browser
        .wait_for_js("document.querySelector('[data-usage]').getAttribute('aria-busy') === 'false'")
        .await;
    assert_eq!(
        browser.text_of("[data-usage-characters]").await,
        LINE_TO_LOOK_BACK_ON.chars().count().to_string(),
        "the plan is unlimited: characters used this month, no limit"
    );
    assert_eq!(browser.text_of("[data-usage-voices]").await, "1");
    assert_eq!(browser.text_of("[data-usage-days]").await, "1");
    browser.screenshot("home").await;
    browser.close().await;
}
