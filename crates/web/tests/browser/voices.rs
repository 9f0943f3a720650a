//! The voice library: cloning a voice from a file or a recording, and what a member sees.

use fantoccini::Locator;
use serde_json::Value;

use crate::harness::*;

/// A file chosen with the file picker that is short, or not audio at all, is refused with
/// the reason before uploading; a good one is saved once the speaker's consent is given.
#[tokio::test(flavor = "multi_thread")]
async fn cloning_refuses_short_or_unreadable_files_and_records_the_speakers_consent() {
    let browser = Browser::start().await;
    let admin = browser.app.signed_up("owner@example.com").await;
    browser.app.create_org(&admin, "Acme Studio").await;
    let files = tempfile::tempdir().unwrap();
    browser.sign_in(&admin.email, "/voices/new").await;

    browser.fill("#voice-name", "Studio Narrator").await;
    let short = voice_recording(files.path(), "short.wav", 3.0);
    browser
        .find("#voice-file")
        .await
        .send_keys(short.to_str().unwrap())
        .await
        .unwrap();
    browser
        .wait_for_js("document.querySelector('[data-form-error]').textContent.includes('at least 10 seconds')")
        .await;
    assert_eq!(
        browser.text_of("[data-form-error]").await,
        "\"short.wav\" is 3.0 s long; a voice needs at least 10 seconds of speech. Choose a longer recording."
    );
    let save = browser.find("[data-save-voice]").await;
    assert!(
        !save.is_enabled().await.unwrap(),
        "a short clip can be saved"
    );
    let not_audio = files.path().join("notes.wav");
    std::fs::write(
        &not_audio,
        "These are my notes, not a recording.\n".repeat(50),
    )
    .unwrap();
    browser
        .find("#voice-file")
        .await
        .send_keys(not_audio.to_str().unwrap())
        .await
        .unwrap();
    browser
        .wait_for_js("document.querySelector('[data-form-error]').textContent.includes('could not be read as audio')")
        .await;
    assert!(
        !save.is_enabled().await.unwrap(),
        "a text file can be saved"
    );
    assert!(
        !browser
            .find("[data-sample-preview]")
            .await
            .is_displayed()
            .await
            .unwrap(),
        "an empty player shows for a file that is not audio"
    );
    browser.screenshot("new-voice-not-audio").await;

    let recording = voice_recording(files.path(), "narrator.wav", 12.0);
    browser
        .find("#voice-file")
        .await
        .send_keys(recording.to_str().unwrap())
        .await
        .unwrap();
    browser
        .wait_for_js("document.querySelector('[data-sample-name]').textContent === 'narrator.wav' && !document.querySelector('[data-form-error]').textContent")
        .await;
    browser.fill("#voice-name", "Studio Narrator").await;
    assert!(
        !save.is_enabled().await.unwrap(),
        "saving without the speaker's consent"
    );
    browser.click("#voice-consent").await;
    assert!(save.is_enabled().await.unwrap());
    browser.screenshot("new-voice").await;
    browser.click("[data-save-voice]").await;
    browser
        .wait_for_js(
            "location.search === '?tab=custom' && document.querySelector('[data-voice-id]')",
        )
        .await;
    let card = browser.find("[data-voice-id]").await;
    let voice = card.attr("data-voice-id").await.unwrap().unwrap();
    let (_, _, body) = browser.fetch("GET", &format!("/api/voices/{voice}")).await;
    let created: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        created["consent"]["by"], admin.id,
        "who confirmed the consent is recorded: {created}"
    );
    assert!(created["consent"]["at"].is_string(), "{created}");
    assert!(card.text().await.unwrap().contains("Studio Narrator"));
    assert!(card.text().await.unwrap().contains("General"));
    browser
        .find(&format!("[data-delete-voice='{voice}']"))
        .await;
    browser.screenshot("voices").await;
    browser
        .click(&format!("[data-voice-id='{voice}'] [aria-pressed]"))
        .await;
    browser
        .wait_for_js("document.querySelector('[data-sample-player]').currentTime > 0.2")
        .await;
    browser.close().await;
}

/// A member cannot delete a voice, by button or by URL, nor open the new-voice page.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_can_neither_delete_voices_nor_create_them() {
    let Team {
        browser,
        member,
        voice,
        ..
    } = team().await;
    browser.sign_in(&member.email, "/voices?tab=custom").await;
    browser.find(&format!("[data-voice-id='{voice}']")).await;
    browser
        .wait_for_js(
            "document.querySelector('[data-voice-list]').getAttribute('aria-busy') === 'false'",
        )
        .await;
    assert!(
        browser
            .client
            .find_all(Locator::Css("[data-delete-voice], a[href='/voices/new']"))
            .await
            .unwrap()
            .is_empty(),
        "a member sees neither delete nor new-voice buttons"
    );
    browser.screenshot("voices-member").await;
    let (status, _, body) = browser
        .fetch("DELETE", &format!("/api/voices/{voice}"))
        .await;
    assert_eq!(status, 403);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "FORBIDDEN");
    let (status, _, _) = browser.fetch("GET", &format!("/api/voices/{voice}")).await;
    assert_eq!(status, 200, "the voice is still there");
    browser.open("/voices/new").await;
    assert_eq!(browser.text_of("h1").await, "Only admins can do this");
    browser.screenshot("admins-only").await;
    browser.close().await;
}

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
