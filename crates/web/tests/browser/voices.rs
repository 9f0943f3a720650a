//! The voice library: recording a voice in the browser.

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_voice_recorded_in_the_browser_can_be_saved_after_ten_seconds() {
    let browser = Browser::start().await;
    let admin = browser.app.signed_up("recorder@example.com").await;
    browser.app.create_org(&admin, "Booth").await;

    browser.open("/sign-in?next=/voices/new").await;
    browser.fill("#email", "recorder@example.com").await;
    browser.fill("#password", crate::support::PASSWORD).await;
    browser
        .click("form[data-auth-form] button[type=submit]")
        .await;
    browser
        .wait_for_js("location.pathname === '/voices/new'")
        .await;
    browser.click("[data-source-tab='record']").await;
    browser.click("[data-record-start]").await;
    browser
        .wait_for_js("document.querySelector('[data-record-timer]').textContent === '0:02'")
        .await;
    assert!(
        browser
            .text_of("[data-record-hint]")
            .await
            .starts_with("Keep going")
    );
    assert!(
        !browser
            .find("[data-save-voice]")
            .await
            .is_enabled()
            .await
            .unwrap()
    );
    browser.screenshot("new-voice-recording").await;
    browser
        .wait_for_js("document.querySelector('[data-record-timer]').classList.contains('is-ready')")
        .await;
    browser.click("[data-record-stop]").await;
    browser
        .wait_for_js("!document.querySelector('[data-sample-preview]').hidden")
        .await;
    assert_eq!(browser.text_of("[data-sample-name]").await, "Recording");
    browser.fill("#voice-name", "Booth take").await;
    browser.click("#voice-consent").await;
    browser.click("[data-save-voice]").await;
    browser
        .wait_for_js(
            "location.search === '?tab=custom' && document.querySelector('[data-voice-id]')",
        )
        .await;
    assert!(
        browser
            .text_of("[data-voice-list]")
            .await
            .contains("Booth take")
    );

    // Search narrows the list and says so when nothing matches; the system tab is empty here.
    let cards = "document.querySelectorAll('[data-voice-list] [data-voice-id]').length";
    browser.fill("#voice-search", "zzz").await;
    browser.wait_for_js(&format!("{cards} === 0")).await;
    assert_eq!(
        browser.text_of("[data-empty-title]").await,
        "No voices match"
    );
    browser.fill("#voice-search", "booth").await;
    browser.wait_for_js(&format!("{cards} === 1")).await;
    browser.click("#tab-system").await;
    browser
        .wait_for_js(&format!(
            "{cards} === 0 && !document.querySelector('[data-voice-empty]').hidden"
        ))
        .await;
    assert_eq!(
        browser.text_of("[data-empty-title]").await,
        "No voices match"
    );
    browser
        .find("#voice-search")
        .await
        .send_keys(&"\u{E003}".repeat(5))
        .await
        .unwrap();
    browser
        .wait_for_js("document.querySelector('[data-empty-title]').textContent === 'No system voices installed'")
        .await;
    assert_eq!(
        browser
            .find("#tab-system")
            .await
            .attr("aria-selected")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );

    // Category filter on the custom tab.
    browser.click("#tab-custom").await;
    browser.wait_for_js(&format!("{cards} === 1")).await;
    browser
        .find("#voice-category option[value='NARRATIVE']")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_for_js(&format!("{cards} === 0")).await;
    browser
        .find("#voice-category option[value='GENERAL']")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_for_js(&format!("{cards} === 1")).await;

    // A file dropped on the drop zone becomes the sample (here, the saved recording).
    let voice = browser
        .find("[data-voice-id]")
        .await
        .attr("data-voice-id")
        .await
        .unwrap()
        .unwrap();
    browser.open("/voices/new").await;
    browser.find("[data-dropzone]").await;
    browser
        .run(&format!(
            "const audio = await (await fetch('/api/voices/{voice}/audio')).blob();
             const files = new DataTransfer();
             files.items.add(new File([audio], 'dropped.wav', {{ type: 'audio/wav' }}));
             document.querySelector('[data-dropzone]').dispatchEvent(
               new DragEvent('drop', {{ dataTransfer: files, bubbles: true, cancelable: true }}));"
        ))
        .await;
    browser
        .wait_for_js("!document.querySelector('[data-sample-preview]').hidden")
        .await;
    assert_eq!(browser.text_of("[data-sample-name]").await, "dropped.wav");
    assert_eq!(
        browser
            .find("#voice-name")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("dropped")
    );

    // An admin deletes the custom voice after confirming.
    browser.open("/voices?tab=custom").await;
    browser
        .wait_for_js(
            "document.querySelector('[data-voice-list]').getAttribute('aria-busy') === 'false'",
        )
        .await;
    browser
        .find("[data-delete-voice]")
        .await
        .click()
        .await
        .unwrap();
    assert!(
        browser
            .client
            .get_alert_text()
            .await
            .unwrap()
            .starts_with("Delete the voice \"Booth take\"?")
    );
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for_js(
            "!document.querySelector('[data-voice-empty]').hidden && document.querySelector('[data-empty-title]').textContent === 'No custom voices yet'",
        )
        .await;
    assert_eq!(
        browser.text_of("[data-voice-list]").await,
        "",
        "the deleted voice is gone from the list"
    );
    browser.close().await;
}
