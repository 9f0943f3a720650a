//! The text-to-speech editor: what it sends, progress and cancelling, long text and failures.

use std::sync::Arc;

use crate::support::TestApp;
use crate::support::tone::ToneEngine;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use resonance_db::Plan;
use resonance_service::billing::{Billing, BillingSettings};
use serde_json::{Value, json};

use crate::harness::*;

/// The script, a tag, Creativity (two steps up with the arrow key) and a fixed seed reach
/// the engine and the stored generation as written; the result plays in a player docked at
/// the bottom of the editor, which stays open, and links to the generation's page.
#[tokio::test(flavor = "multi_thread")]
async fn the_editor_generates_the_script_with_its_tag_voice_and_settings() {
    let Studio {
        browser,
        engine,
        admin,
        voice,
        ..
    } = studio().await;
    browser.open_editor(&admin.email, &voice).await;
    browser.fill("#tts-text", WELCOME_SCRIPT).await;
    browser.click("[data-insert-tag='[chuckle]']").await;
    let text = format!("{WELCOME_SCRIPT} [chuckle] ");
    browser
        .find("#temperature")
        .await
        .send_keys("\u{E014}\u{E014}")
        .await
        .unwrap();
    assert_eq!(browser.text_of("[data-output='temperature']").await, "0.9");
    browser.fill("#seed", "42").await;
    assert_eq!(
        browser
            .find("#tts-text")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(text.as_str())
    );
    assert_eq!(
        browser.text_of("[data-char-count]").await,
        text.chars().count().to_string()
    );
    assert_eq!(
        browser
            .find("#voice-picker")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(voice.as_str())
    );
    browser.screenshot("text-to-speech").await;

    let editor = browser.path().await;
    browser.click("[data-generate]").await;
    let generation = docked_result(&browser).await;
    assert_eq!(browser.path().await, editor, "generating left the editor");
    assert_eq!(
        browser
            .find("#tts-text")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(text.as_str()),
        "the editor lost the script"
    );
    assert_eq!(browser.text_of("[data-result-voice]").await, "Narrator");
    assert!(
        browser.in_view("[data-result-player]").await,
        "the player is not docked in view"
    );
    browser.screenshot("text-to-speech-result-player").await;
    assert!(browser.console_errors().await.is_empty());
    assert_eq!(engine.spoken(), vec![text.trim().to_string()]);
    let (_, _, body) = browser
        .fetch("GET", &format!("/api/generations/{generation}"))
        .await;
    let stored: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (stored["temperature"].as_f64(), stored["seed"].as_u64()),
        (Some(0.9), Some(42))
    );
    browser.close().await;
}

/// Waits until the docked player has a finished generation's audio loaded, with a link to its
/// page; returns the generation's id.
async fn docked_result(browser: &Browser) -> String {
    browser
        .wait_for_js(
            "!document.querySelector('[data-result-player]').hidden \
             && document.querySelector('[data-result-audio]').readyState >= 1 \
             && document.querySelector('[data-result-audio]').duration > 0",
        )
        .await;
    let audio = browser
        .run("return document.querySelector('[data-result-audio]').getAttribute('src');")
        .await;
    let link = browser
        .run("return document.querySelector('[data-result-link]').getAttribute('href');")
        .await;
    let generation = link
        .as_str()
        .and_then(|link| link.strip_prefix("/text-to-speech/"))
        .unwrap_or_else(|| panic!("the player links to {link}"))
        .to_string();
    assert_eq!(
        audio.as_str(),
        Some(format!("/api/generations/{generation}/audio").as_str())
    );
    generation
}

#[tokio::test(flavor = "multi_thread")]
async fn generating_shows_live_progress_and_can_be_cancelled() {
    let engine = Arc::new(ToneEngine::default());
    let browser = Browser::on(TestApp::builder().engine(engine.clone()).spawn().await).await;
    let admin = browser.app.signed_up("patient@example.com").await;
    browser.app.create_org(&admin, "Queue").await;
    let voice = browser.app.upload_voice(&admin, "Narrator").await;

    browser
        .open(&format!(
            "/sign-in?next=/text-to-speech%3FvoiceId%3D{voice}"
        ))
        .await;
    browser.fill("#email", "patient@example.com").await;
    browser.fill("#password", crate::support::PASSWORD).await;
    browser
        .click("form[data-auth-form] button[type=submit]")
        .await;
    browser
        .wait_for_js("document.querySelector('[data-tts-form]')?.dataset.ready === 'true'")
        .await;
    // The tone engine never finishes the first text containing [stall].
    browser
        .fill("#tts-text", "[stall] Hold the line, please.")
        .await;
    browser.click("[data-generate]").await;
    engine.stalled().await;
    browser
        .wait_for_js(
            "document.querySelector('[data-progress-label]').textContent === 'Generating speech…'",
        )
        .await;
    assert!(
        !browser
            .find("[data-generate]")
            .await
            .is_enabled()
            .await
            .unwrap()
    );
    browser.screenshot("text-to-speech-progress").await;

    browser.click("[data-cancel-generation]").await;
    browser
        .wait_for_js("document.querySelector('[data-form-error]').textContent === 'The generation was cancelled.'")
        .await;
    assert!(
        browser
            .find("[data-generate]")
            .await
            .is_enabled()
            .await
            .unwrap()
    );
    let listed: Value = admin
        .client
        .get(browser.app.url("/api/generations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["generations"][0]["status"], "cancelled");
    let generation = listed["generations"][0]["id"].as_str().unwrap();

    browser.open(&format!("/text-to-speech/{generation}")).await;
    browser
        .wait_for_js(
            "document.querySelector('[data-status-text]').textContent.includes('cancelled')",
        )
        .await;
    assert!(
        !browser
            .find("[data-waveform]")
            .await
            .is_displayed()
            .await
            .unwrap()
    );

    // Delete asks first, then the generation and its page are gone.
    browser.click("[data-delete]").await;
    assert!(
        browser
            .client
            .get_alert_text()
            .await
            .unwrap()
            .starts_with("Delete this generation")
    );
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for_js("location.pathname === '/history' && !document.querySelector('[data-history-empty]').hidden")
        .await;
    let response = admin
        .client
        .get(browser.app.url(&format!("/api/generations/{generation}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    browser.close().await;
}

/// Text over one generation's limit is kept whole and the editor says by how much; the
/// editor shows what a request costs against the month's characters, Generate is in view
/// at 1440x900, Ctrl+Enter generates, and the seed chosen for the take is shown.
#[tokio::test(flavor = "multi_thread")]
async fn long_text_is_kept_whole_and_the_editor_shows_the_cost_and_the_seed() {
    let engine = Arc::new(ToneEngine::default());
    let app = TestApp::builder()
        .engine(engine)
        .billing(Billing::new(BillingSettings {
            default_plan: Plan {
                characters_per_month: Some(6000),
                voice_slots: None,
                max_concurrent_jobs: None,
            },
            ..Default::default()
        }))
        .spawn()
        .await;
    let browser = Browser::on(app).await;
    let admin = browser.app.signed_up("writer@example.com").await;
    browser.app.create_org(&admin, "Longform").await;
    let voice = browser.app.upload_voice(&admin, "Narrator").await;
    browser.open_editor(&admin.email, &voice).await;
    assert!(
        browser.in_view("[data-generate]").await,
        "Generate speech is below the fold at 1440x900"
    );

    // Typed (as a paste would be), 5,100 characters stay 5,100: the editor says what to do.
    let long_text = "Every word the writer wrote stays. ".repeat(146);
    let long_text = &long_text[..5100];
    browser
        .find("#tts-text")
        .await
        .send_keys(long_text)
        .await
        .unwrap();
    let kept = browser
        .run("return document.querySelector('#tts-text').value.length;")
        .await;
    assert_eq!(kept, json!(5100), "the text was cut");
    assert_eq!(browser.text_of("[data-char-count]").await, "5,100");
    browser
        .wait_for_js("!document.querySelector('[data-text-limit]').hidden")
        .await;
    assert_eq!(
        browser.text_of("[data-text-limit]").await,
        "The text is 5,100 characters long; one generation takes up to 5,000. \
         Shorten it by 100 characters, or split it into several generations."
    );
    browser.screenshot("text-to-speech-over-limit").await;
    browser.run("window.scrollTo(0, 0);").await;
    browser.click("[data-generate]").await;
    browser
        .wait_for_js("!document.querySelector('[data-form-error]').hidden")
        .await;
    assert!(
        browser.in_view("[data-form-error]").await,
        "the error is out of view"
    );
    let (_, _, body) = browser.fetch("GET", "/api/generations").await;
    let listed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(listed["total"], 0, "nothing was sent");

    // A short text: its cost against what is left, then Ctrl+Enter generates it.
    browser.fill("#tts-text", "Hello there.").await;
    browser
        .wait_for_js("document.querySelector('[data-text-limit]').hidden")
        .await;
    assert_eq!(
        browser.text_of("[data-request-cost]").await,
        "This request: 12 characters · 6,000 of 6,000 left this month."
    );
    browser
        .client
        .perform_actions(
            KeyActions::new("keyboard".into())
                .then(KeyAction::Down { value: '\u{E009}' })
                .then(KeyAction::Down { value: '\u{E007}' })
                .then(KeyAction::Up { value: '\u{E007}' })
                .then(KeyAction::Up { value: '\u{E009}' }),
        )
        .await
        .unwrap();
    let generation = docked_result(&browser).await;
    browser.click("[data-result-link]").await;
    browser
        .wait_for_js(&format!(
            "location.pathname === '/text-to-speech/{generation}' && document.readyState === 'complete'"
        ))
        .await;
    let (_, _, body) = browser
        .fetch("GET", &format!("/api/generations/{generation}"))
        .await;
    let stored: Value = serde_json::from_slice(&body).unwrap();
    let seed = stored["seed"]
        .as_u64()
        .unwrap_or_else(|| panic!("no seed recorded: {stored}"));
    let details = browser.text_of("dl.details").await;
    assert!(details.contains(&format!("Seed\n{seed}")), "{details}");
    browser.screenshot("generation-random-seed").await;
    browser.close().await;
}

/// A failed generation says why, on the editor and on its page, without blaming the
/// settings for an engine outage; Regenerate after the voice was deleted says so and
/// chooses no other voice.
#[tokio::test(flavor = "multi_thread")]
async fn failures_say_why_and_regenerate_never_switches_voice_silently() {
    let engine = Arc::new(ToneEngine::default());
    let browser = Browser::on(TestApp::builder().engine(engine).spawn().await).await;
    let admin = browser.app.signed_up("unlucky@example.com").await;
    browser.app.create_org(&admin, "Outage").await;
    let narrator = browser.app.upload_voice(&admin, "Narrator").await;
    browser.app.upload_voice(&admin, "Announcer").await;
    browser.open_editor(&admin.email, &narrator).await;
    browser.fill("#tts-text", "[outage] Is anyone there?").await;
    browser.click("[data-generate]").await;
    browser
        .wait_for_js("!document.querySelector('[data-form-error]').hidden")
        .await;
    assert_eq!(
        browser.text_of("[data-form-error]").await,
        "The generation failed. The speech engine is unavailable; please try again later."
    );
    browser.screenshot("text-to-speech-failed").await;

    let (_, _, body) = browser.fetch("GET", "/api/generations").await;
    let listed: Value = serde_json::from_slice(&body).unwrap();
    let generation = listed["generations"][0]["id"].as_str().unwrap().to_string();
    browser.open(&format!("/text-to-speech/{generation}")).await;
    browser
        .wait_for_js("document.querySelector('[data-status-text]').textContent !== 'Loading…'")
        .await;
    assert_eq!(
        browser.text_of("[data-status-text]").await,
        "The generation failed. The speech engine is unavailable; please try again later. \
         Use Regenerate to run it again."
    );
    browser.screenshot("generation-failed").await;

    let response = admin
        .client
        .delete(browser.app.url(&format!("/api/voices/{narrator}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    browser.click("[data-regenerate]").await;
    browser
        .wait_for_js("document.querySelector('[data-tts-form]').dataset.ready === 'true'")
        .await;
    assert_eq!(
        browser.text_of("[data-form-error]").await,
        "The voice \"Narrator\" of this generation has been deleted. Choose another voice to generate it again."
    );
    assert_eq!(
        browser
            .find("#voice-picker")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(""),
        "another voice was chosen silently"
    );
    browser.screenshot("regenerate-deleted-voice").await;
    browser.click("[data-generate]").await;
    browser
        .wait_for_js(
            "document.querySelector('[data-form-error]').textContent === 'Choose a voice.'",
        )
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_editor_speaks_with_the_model_chosen_and_regenerates_with_it() {
    use resonance_domain::SpeechModel::{ChatterboxNano, ChatterboxTurbo};
    let Studio {
        browser,
        engine,
        admin,
        voice,
        ..
    } = studio_offering(&[ChatterboxTurbo, ChatterboxNano]).await;
    browser.open_editor(&admin.email, &voice).await;
    let offered = browser
        .run("return [...document.querySelector('#model').options].map((o) => o.value + ' ' + o.text);")
        .await;
    assert_eq!(
        offered,
        json!([
            "chatterbox-turbo Chatterbox Turbo",
            "chatterbox-nano Chatterbox Nano"
        ])
    );
    browser
        .fill("#tts-text", "Hello from the small model.")
        .await;
    browser
        .run("const model = document.querySelector('#model'); model.value = 'chatterbox-nano'; model.dispatchEvent(new Event('change')); return null;")
        .await;
    browser.click("[data-generate]").await;
    let generation = docked_result(&browser).await;
    let (_, _, body) = browser
        .fetch("GET", &format!("/api/generations/{generation}"))
        .await;
    let stored: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stored["model"], "chatterbox-nano");
    assert_eq!(*engine.models.lock().unwrap(), [ChatterboxNano]);

    browser
        .open(&format!("/text-to-speech?from={generation}"))
        .await;
    browser
        .wait_for_js("document.querySelector('#model').value === 'chatterbox-nano'")
        .await;
    assert!(browser.console_errors().await.is_empty());
    browser.close().await;
}
