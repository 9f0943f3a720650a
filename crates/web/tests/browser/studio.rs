//! The text-to-speech page: cloning, generating, playing, downloading, progress, long text and failures.

use std::sync::Arc;
use std::time::Duration;

use crate::support::TestApp;
use crate::support::tone::{SAMPLES_PER_CHAR, ToneEngine};
use fantoccini::Locator;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use resonance_db::Plan;
use resonance_engine::SAMPLE_RATE;
use resonance_service::billing::{Billing, BillingSettings};
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_team_clones_a_voice_generates_speech_plays_and_downloads_it() {
    let engine = Arc::new(ToneEngine::default());
    let browser = Browser::on(TestApp::builder().engine(engine.clone()).spawn().await).await;
    let files = tempfile::tempdir().unwrap();

    // Sign up (the page signs in afterwards) and create the organization.
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

    // Clone a voice from a file chosen with the file picker: a short one, or one that is
    // not audio at all, is refused with the reason before uploading.
    browser.open("/voices/new").await;
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
    let owner_id = browser
        .find("[data-app]")
        .await
        .attr("data-user-id")
        .await
        .unwrap()
        .unwrap();
    let (_, _, body) = browser.fetch("GET", &format!("/api/voices/{voice}")).await;
    let created: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        created["consent"]["by"], owner_id,
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

    // Write a script with a tag and generate it with the new voice.
    browser
        .open(&format!("/text-to-speech?voiceId={voice}"))
        .await;
    browser
        .wait_for_js("document.querySelector('[data-tts-form]').dataset.ready === 'true'")
        .await;
    // One chunk for the engine (under 300 characters), about 2.8 s of audio.
    let script = "Welcome to Resonance, the open studio for lifelike speech. \
                  This short script becomes a waveform you can play, seek and download. \
                  Clone a voice from a short recording, then write what it should say \
                  and listen to it here a moment later.";
    browser.fill("#tts-text", script).await;
    browser.click("[data-insert-tag='[chuckle]']").await;
    let text = format!("{script} [chuckle] ");
    // Two steps up on Creativity with the arrow key, and a fixed seed.
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
    browser.click("[data-generate]").await;
    browser
        .wait_for_js("location.pathname.startsWith('/text-to-speech/')")
        .await;
    let generation = browser.path().await["/text-to-speech/".len()..].to_string();
    assert_eq!(engine.spoken(), vec![text.trim().to_string()]);

    // The waveform renders from the generated audio, plays, and seeks by click.
    browser
        .wait_for_js("document.querySelector('[data-generation]').dataset.player === 'ready'")
        .await;
    let bars = browser
        .run(
            "const host = document.querySelector('[data-waveform] > div'); \
              const canvas = host.shadowRoot.querySelector('canvas'); \
              return canvas ? canvas.width : 0;",
        )
        .await;
    assert!(bars.as_u64().unwrap() > 0, "the waveform is drawn");
    let spoken_chars = text.trim().chars().count();
    let seconds = (spoken_chars * SAMPLES_PER_CHAR) as f64 / SAMPLE_RATE as f64;
    assert_eq!(
        browser.text_of("[data-duration]").await,
        format!("0:{:02}", seconds as u64)
    );
    assert_eq!(browser.text_of("[data-text]").await, text.trim());
    assert_eq!(
        browser.text_of("[data-voice-name]").await,
        "Studio Narrator"
    );
    let details = browser.text_of("dl.details").await;
    assert!(
        details.contains("Creativity\n0.9") && details.contains("Seed\n42"),
        "{details}"
    );
    let (_, _, body) = browser
        .fetch("GET", &format!("/api/generations/{generation}"))
        .await;
    let stored: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (stored["temperature"].as_f64(), stored["seed"].as_u64()),
        (Some(0.9), Some(42))
    );
    browser.screenshot("generation").await;

    // Seek by clicking 90% of the way along the waveform, then near its start.
    let time = "document.querySelector('[data-current-time]').textContent";
    click_waveform_at(&browser, 0.9).await;
    let seek_to = (seconds * 0.9) as u64;
    assert!(seek_to >= 2, "the seek is visible in whole seconds");
    browser
        .wait_for_js(&format!("{time} === '0:{seek_to:02}'"))
        .await;
    click_waveform_at(&browser, 0.02).await;
    browser.wait_for_js(&format!("{time} === '0:00'")).await;

    // Play advances the time; pause stops it.
    browser.click("[data-play]").await;
    browser.wait_for_js(&format!("{time} === '0:01'")).await;
    browser.click("[data-play]").await;
    browser
        .wait_for_js("document.querySelector('[data-play]').getAttribute('aria-label') === 'Play'")
        .await;
    let paused_at = shown_seconds(&browser).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        shown_seconds(&browser).await,
        paused_at,
        "paused playback stays put"
    );

    // Space plays and pauses from anywhere on the page.
    browser.run("document.activeElement.blur();").await;
    press(&browser, ' ').await;
    browser
        .wait_for_js("document.querySelector('[data-play]').getAttribute('aria-label') === 'Pause'")
        .await;
    press(&browser, ' ').await;
    browser
        .wait_for_js("document.querySelector('[data-play]').getAttribute('aria-label') === 'Play'")
        .await;
    click_waveform_at(&browser, 0.02).await;
    browser.wait_for_js(&format!("{time} === '0:00'")).await;
    browser.run("document.activeElement.blur();").await;

    // The waveform is keyboard usable: arrows skip 5 s either way.
    let waveform = browser.find("[data-waveform]").await;
    assert_eq!(
        waveform.attr("tabindex").await.unwrap().as_deref(),
        Some("0")
    );
    waveform.send_keys("\u{E014}").await.unwrap();
    browser
        .wait_for_js(&format!("{time} === '0:{:02}'", seconds as u64))
        .await;
    waveform.send_keys("\u{E012}").await.unwrap();
    browser.wait_for_js(&format!("{time} === '0:00'")).await;

    // Download gives the WAV the engine spoke, as an attachment.
    let download = browser.find("[data-download]").await;
    assert!(download.attr("download").await.unwrap().is_some());
    let href = download.attr("href").await.unwrap().unwrap();
    assert_eq!(
        href,
        format!("/api/generations/{generation}/audio?download=1")
    );
    let (status, headers, wav) = browser.fetch("GET", &href).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "audio/wav");
    assert!(
        headers["content-disposition"]
            .as_str()
            .unwrap()
            .starts_with("attachment")
    );
    let audio = resonance_audio::decode(&wav, Some("audio/wav")).unwrap();
    assert_eq!(audio.sample_rate, SAMPLE_RATE);
    assert_eq!(audio.samples.len(), spoken_chars * SAMPLES_PER_CHAR);

    // Or as MP3, twice as fast (the player plays at that speed too).
    browser
        .find("#download-format option[value='mp3']")
        .await
        .click()
        .await
        .unwrap();
    browser
        .run(
            "const speed = document.querySelector('#playback-speed');
             speed.value = '2';
             speed.dispatchEvent(new Event('input', { bubbles: true }));",
        )
        .await;
    assert_eq!(browser.text_of("[data-speed-value]").await, "2×");
    let href = download.attr("href").await.unwrap().unwrap();
    assert_eq!(
        href,
        format!("/api/generations/{generation}/audio?download=1&format=mp3&speed=2")
    );
    let (status, headers, mp3) = browser.fetch("GET", &href).await;
    assert_eq!(
        (status, &headers["content-type"]),
        (200, &json!("audio/mpeg"))
    );
    let audio = resonance_audio::decode(&mp3, Some("audio/mpeg")).unwrap();
    let seconds_fast = audio.samples.len() as f64 / f64::from(audio.sample_rate);
    assert!(
        (seconds_fast - seconds / 2.0).abs() < 0.1,
        "{seconds_fast} s at twice the speed of {seconds} s"
    );
    browser.screenshot("generation-download-options").await;

    // Regenerate opens the form with the same text, voice and settings.
    browser.click("[data-regenerate]").await;
    browser
        .wait_for_js("document.querySelector('[data-tts-form]').dataset.ready === 'true'")
        .await;
    assert_eq!(
        browser
            .find("#tts-text")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(text.trim())
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
    for (field, value) in [("#temperature", "0.9"), ("#topK", "1000"), ("#seed", "42")] {
        assert_eq!(
            browser
                .find(field)
                .await
                .prop("value")
                .await
                .unwrap()
                .as_deref(),
            Some(value),
            "{field}"
        );
    }

    // History and the dashboard list it.
    browser.open("/history").await;
    let row = browser
        .find(&format!("[data-generation-id='{generation}']"))
        .await;
    let row_text = row.text().await.unwrap();
    assert!(row_text.contains("Studio Narrator") && row_text.contains("Succeeded"));
    browser
        .wait_for_js(&format!(
            "document.querySelector(\"[data-generation-id='{generation}'] [data-duration]\").textContent === '0:{:02}'",
            seconds as u64
        ))
        .await;
    browser.screenshot("history").await;
    browser.open("/").await;
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
        spoken_chars.to_string(),
        "the plan is unlimited: characters used this month, no limit"
    );
    assert_eq!(browser.text_of("[data-usage-voices]").await, "1");
    assert_eq!(browser.text_of("[data-usage-days]").await, "1");
    browser.screenshot("home").await;

    // Invite a member with a link, and create an API key shown once.
    browser.open("/settings").await;
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

    // The member joins through the link and cannot delete the voice, by button or by URL.
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
        .sign_up(&next, "member@example.com", &invite_path)
        .await;
    browser.click("[data-accept-invite]").await;
    browser
        .wait_for_js("location.pathname === '/' && document.querySelector('[data-dashboard]')")
        .await;
    assert_eq!(
        browser.text_of("#org-switcher option:checked").await,
        "Acme Studio"
    );
    browser.open("/voices?tab=custom").await;
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

    // The member's phone: the generation page fits the screen.
    browser.resize(PHONE).await;
    browser.open(&format!("/text-to-speech/{generation}")).await;
    browser
        .wait_for_js("document.querySelector('[data-generation]').dataset.player === 'ready'")
        .await;
    assert!(
        !browser.overflows().await,
        "the generation page scrolls sideways on a phone"
    );
    browser.screenshot("generation-phone").await;

    // Back as the owner (signing out from the phone's menu): make the member an admin,
    // then remove them.
    browser.click("[data-menu-toggle]").await;
    browser
        .wait_for_js("getComputedStyle(document.querySelector('.sidebar')).transform === 'none'")
        .await;
    browser.click("[data-sign-out]").await;
    browser
        .wait_for_js("location.pathname === '/sign-in'")
        .await;
    browser.resize(DESKTOP).await;
    browser.open("/sign-in?next=/settings").await;
    browser.fill("#email", "owner@example.com").await;
    browser.fill("#password", crate::support::PASSWORD).await;
    browser
        .click("form[data-auth-form] button[type=submit]")
        .await;
    browser
        .wait_for_js("location.pathname === '/settings'")
        .await;
    let role = "select[aria-label='Role of member@example.com']";
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
        .fetch(
            "GET",
            &format!("/api/orgs/{}/members", org_id(&browser).await),
        )
        .await;
    let members: Value = serde_json::from_slice(&body).unwrap();
    let member = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "member@example.com")
        .unwrap();
    assert_eq!(member["role"], "admin");
    browser
        .click("button[aria-label='Remove member@example.com']")
        .await;
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for_js("document.querySelector('[data-toast]').textContent === 'Member removed' && !document.querySelector('[data-members]').textContent.includes('member@example.com')")
        .await;
    browser.close().await;
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
    browser
        .sign_in(&admin.email, &format!("/text-to-speech?voiceId={voice}"))
        .await;
    browser
        .wait_for_js("document.querySelector('[data-tts-form]').dataset.ready === 'true'")
        .await;
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
    browser
        .wait_for_js("location.pathname.startsWith('/text-to-speech/')")
        .await;
    let generation = browser.path().await["/text-to-speech/".len()..].to_string();
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
    browser
        .sign_in(&admin.email, &format!("/text-to-speech?voiceId={narrator}"))
        .await;
    browser
        .wait_for_js("document.querySelector('[data-tts-form]').dataset.ready === 'true'")
        .await;
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
