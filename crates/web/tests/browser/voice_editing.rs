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

/// The Edit dialog replaces a voice's recording: the new file is checked in the browser,
/// saving asks for the speaker's consent again, and the voice then plays its new sample.
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_replaces_a_voice_sample_with_the_speakers_consent() {
    let team = team().await;
    let browser = &team.browser;
    let files = tempfile::tempdir().unwrap();
    browser
        .sign_in("admin@example.com", "/voices?tab=custom")
        .await;
    browser.click("[data-edit-voice]").await;
    browser
        .wait_for_js("document.querySelector('[data-edit-dialog]').open")
        .await;
    assert_eq!(
        browser
            .run("return document.querySelector('[data-edit-consent]').hidden;")
            .await,
        true,
        "the consent shows before a new sample is chosen"
    );
    let recording = voice_recording(files.path(), "new-take.wav", 12.0);
    browser
        .find("#edit-sample")
        .await
        .send_keys(recording.to_str().unwrap())
        .await
        .unwrap();
    browser
        .wait_for_js(
            "!document.querySelector('[data-edit-consent]').hidden \
             && document.querySelector('[data-edit-sample-meta]').textContent.includes('new-take.wav')",
        )
        .await;
    browser.click("[data-edit-save]").await;
    browser
        .wait_for_js("!document.querySelector('[data-edit-dialog] [data-form-error]').hidden")
        .await;
    assert_eq!(
        browser
            .text_of("[data-edit-dialog] [data-form-error]")
            .await,
        "Confirm that the speaker of the new recording agreed to having their voice cloned."
    );
    browser.click("#edit-consent").await;
    browser.screenshot("voice-replace-sample").await;
    browser.click("[data-edit-save]").await;
    browser
        .wait_for_js("!document.querySelector('[data-edit-dialog]').open")
        .await;

    let voices: Value = team
        .admin
        .client
        .get(browser.app.url("/api/voices?variant=CUSTOM"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let voice = &voices["voices"][0];
    assert!(
        voice["audioUrl"].as_str().unwrap().contains("?sample="),
        "{voice}"
    );
    assert_eq!(voice["consent"]["by"], team.admin.id, "{voice}");
    let (status, _, sample) = browser
        .fetch("GET", voice["audioUrl"].as_str().unwrap())
        .await;
    assert_eq!(status, 200);
    let seconds = hound::WavReader::new(sample.as_slice())
        .map(|wav| f64::from(wav.duration()) / f64::from(wav.spec().sample_rate))
        .unwrap();
    assert!((seconds - 12.0).abs() < 0.1, "{seconds} s");
    assert!(browser.console_errors().await.is_empty());
}
