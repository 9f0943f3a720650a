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

/// A reset link's page sets the new password, says so, and the new password signs in.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_link_page_sets_a_new_password() {
    let browser = Browser::start().await;
    let app = &browser.app;
    let ada = app.signed_up("ada@example.com").await;
    app.db()
        .create_password_reset(
            &resonance_domain::UserId::parse(&ada.id).unwrap(),
            &resonance_web::auth::secrets::secret_hash("a-token-from-the-cli"),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        )
        .await
        .unwrap();
    browser
        .open("/reset-password?token=a-token-from-the-cli")
        .await;
    browser.fill("#new-password", "short").await;
    browser.click("[data-reset-form] button[type=submit]").await;
    assert_eq!(
        browser.text_of("[data-reset-form] [data-form-error]").await,
        "Choose a password of at least 8 characters."
    );
    browser
        .fill("#new-password", "a brand new passphrase")
        .await;
    browser.click("[data-reset-form] button[type=submit]").await;
    browser
        .wait_for_js("!document.querySelector('[data-reset-done]').hidden")
        .await;
    browser.screenshot("reset-password").await;
    browser.click("[data-reset-done] a").await;
    browser
        .wait_for_js("location.pathname === '/sign-in'")
        .await;
    browser.fill("#email", "ada@example.com").await;
    browser.fill("#password", "a brand new passphrase").await;
    browser
        .click("form[data-auth-form] button[type=submit]")
        .await;
    browser.wait_for_js("location.pathname === '/'").await;
    assert!(browser.console_errors().await.is_empty());
}

/// "Forgot password?" on the sign-in page: with SMTP configured, the form answers the same
/// sentence for any email and the account's owner gets a link that sets a new password;
/// without SMTP, the page says to ask the operator.
#[tokio::test(flavor = "multi_thread")]
async fn forgot_password_emails_a_reset_link_from_the_sign_in_page() {
    let smtp = resonance_testkit::smtp::FakeSmtp::start().await.unwrap();
    let browser = Browser::on(
        crate::support::TestApp::builder()
            .smtp(smtp.port)
            .spawn()
            .await,
    )
    .await;
    let app = &browser.app;
    app.signed_up("ada@example.com").await;

    browser.open("/sign-in").await;
    browser.click("[data-forgot-password]").await;
    browser
        .wait_for_js(
            "location.pathname === '/forgot-password' && document.readyState === 'complete'",
        )
        .await;
    browser.fill("#email", "ada@example.com").await;
    browser
        .click("[data-forgot-form] button[type=submit]")
        .await;
    browser
        .wait_for_js("!document.querySelector('[data-forgot-done]').hidden")
        .await;
    assert_eq!(
        browser.text_of("[data-forgot-done]").await,
        "If an account has this email, a link to choose a new password is on its way to it. \
         The link works once, within the hour."
    );
    browser.screenshot("forgot-password").await;
    let mail = smtp
        .next_mail(std::time::Duration::from_secs(20))
        .await
        .expect("a reset email");
    let prefix = format!("{}/reset-password?token=", app.base_url);
    let text = mail.text();
    let at = text.find(&prefix).expect("a reset link") + app.base_url.len();
    let path = text[at..].split_whitespace().next().unwrap().to_string();
    browser.open(&path).await;
    browser
        .fill("#new-password", "a brand new passphrase")
        .await;
    browser.click("[data-reset-form] button[type=submit]").await;
    browser
        .wait_for_js("!document.querySelector('[data-reset-done]').hidden")
        .await;
    app.signed_in("ada@example.com", "a brand new passphrase")
        .await;
    assert!(browser.console_errors().await.is_empty());

    let without_smtp = crate::support::TestApp::builder().spawn().await;
    let page = without_smtp
        .anonymous()
        .get(without_smtp.url("/forgot-password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("This instance does not send email. Ask its operator"),
        "{page}"
    );
    assert!(!page.contains("data-forgot-form"), "{page}");
}
