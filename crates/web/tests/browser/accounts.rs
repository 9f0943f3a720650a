//! Signing in and up, and pages that do not exist.

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_and_sign_up_pages_validate_before_calling_the_api() {
    let browser = Browser::start().await;

    browser.open("/sign-in?next=/voices").await;
    assert_eq!(browser.text_of("h1").await, "Welcome back");
    assert!(browser.client.title().await.unwrap().starts_with("Sign in"));
    browser
        .find("form[data-auth-form] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .wait_for_js("!document.querySelector('[data-form-error]').hidden")
        .await;
    assert_eq!(
        browser.text_of("[data-form-error]").await,
        "Enter your email and password."
    );
    let sign_up_link = browser.find("a[href^='/sign-up']").await;
    assert_eq!(
        sign_up_link.attr("href").await.unwrap().as_deref(),
        Some("/sign-up?next=/voices")
    );
    browser.screenshot("sign-in").await;

    sign_up_link.click().await.unwrap();
    browser
        .wait_for_js("location.pathname === '/sign-up'")
        .await;
    assert_eq!(browser.text_of("h1").await, "Create your account");
    let password = browser.find("#password").await;
    assert_eq!(
        password.attr("autocomplete").await.unwrap().as_deref(),
        Some("new-password")
    );
    browser.screenshot("sign-up").await;

    browser.resize(PHONE).await;
    browser.open("/sign-in").await;
    browser.find("#email").await;
    assert!(
        !browser.overflows().await,
        "the sign-in page scrolls sideways on a phone"
    );
    browser.screenshot("sign-in-phone").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_pages_say_what_to_do_next() {
    let browser = Browser::start().await;

    browser.open("/no/such/page").await;
    assert_eq!(browser.text_of("h1").await, "Page not found");
    let action = browser.find(".auth-card a.btn").await;
    assert_eq!(action.attr("href").await.unwrap().as_deref(), Some("/"));
    browser.screenshot("not-found").await;

    browser.open("/history").await;
    browser
        .wait_for_js("location.pathname === '/sign-in'")
        .await;
    assert_eq!(
        browser
            .find("[data-auth-form]")
            .await
            .attr("data-next")
            .await
            .unwrap()
            .as_deref(),
        Some("/history"),
        "a signed-out visitor signs in and comes back"
    );
    browser.close().await;
}
