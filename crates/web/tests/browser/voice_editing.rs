//! Editing a voice from the library: the admin renames and redescribes it in a dialog that
//! says what is wrong with a bad name; members see no Edit button.

use serde_json::Value;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_edits_a_voice_in_the_library_and_a_member_cannot() {
    let team = team().await;
    let browser = &team.browser;
    browser
        .sign_in("admin@example.com", "/voices?tab=custom")
        .await;
    browser.click("[data-edit-voice]").await;
    browser
        .wait_for_js("document.querySelector('[data-edit-dialog]').open")
        .await;
    assert_eq!(
        browser
            .run("return document.querySelector('#edit-name').value;")
            .await,
        "Narrator"
    );

    // A name of spaces passes the browser's check; the server's answer shows in the dialog.
    browser.fill("#edit-name", "   ").await;
    browser.click("[data-edit-save]").await;
    browser
        .wait_for_js("!document.querySelector('[data-edit-dialog] [data-form-error]').hidden")
        .await;
    let error = browser
        .text_of("[data-edit-dialog] [data-form-error]")
        .await;
    assert!(error.starts_with("Name must be"), "{error}");
    assert!(error.ends_with('.'), "{error}");
    let logged = browser.console_errors().await;
    assert!(logged.iter().all(|e| e.contains("422")), "{logged:?}");

    browser.fill("#edit-name", "Studio Narrator").await;
    browser
        .fill("#edit-description", "Calm and warm, for long reads")
        .await;
    browser
        .run(
            "document.querySelector('#edit-category').value = 'PODCAST';
             document.querySelector('#edit-language').value = 'en-GB';
             return true;",
        )
        .await;
    browser.screenshot("voice-edit").await;
    browser.click("[data-edit-save]").await;
    browser
        .wait_for_js(
            "!document.querySelector('[data-edit-dialog]').open \
             && document.querySelector('[data-voice-list]').textContent.includes('Studio Narrator')",
        )
        .await;
    let app = &browser.app;
    let voices: Value = team
        .admin
        .client
        .get(app.url("/api/voices?variant=CUSTOM"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let voice = &voices["voices"][0];
    assert_eq!(voice["name"], "Studio Narrator");
    assert_eq!(voice["description"], "Calm and warm, for long reads");
    assert_eq!(voice["category"], "PODCAST");
    assert_eq!(voice["language"], "en-GB");
    assert!(browser.console_errors().await.is_empty());

    browser.client.delete_all_cookies().await.unwrap();
    browser
        .sign_in(&team.member.email, "/voices?tab=custom")
        .await;
    browser
        .wait_for_js(
            "document.querySelector('[data-voice-list]').textContent.includes('Studio Narrator')",
        )
        .await;
    assert_eq!(
        browser
            .run(
                "return document.querySelectorAll('[data-edit-voice], [data-edit-dialog]').length;"
            )
            .await,
        0
    );
}
