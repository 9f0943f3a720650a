//! A generation's page: what was generated, the player, downloads and Regenerate.

use std::time::Duration;

use crate::support::tone::SAMPLES_PER_CHAR;
use resonance_engine::SAMPLE_RATE;
use serde_json::json;

use crate::harness::*;

const PLAYER_READY: &str = "document.querySelector('[data-generation]').dataset.player === 'ready'";
const TIME: &str = "document.querySelector('[data-current-time]').textContent";

/// The text of each test's take: about 2.4 s of tone.
fn take_text() -> String {
    format!("{WELCOME_SCRIPT} [chuckle]")
}

/// Seconds of tone the engine speaks for `text`.
fn seconds_of(text: &str) -> f64 {
    (text.chars().count() * SAMPLES_PER_CHAR) as f64 / SAMPLE_RATE as f64
}

/// The studio's admin on the page of a finished take of [`take_text`], made with
/// Creativity 0.9 and seed 42, its player ready.
async fn on_a_take() -> (Studio, String) {
    let studio = studio().await;
    let request = json!({
        "text": take_text(),
        "voiceId": studio.voice,
        "temperature": 0.9,
        "seed": 42,
    });
    let generation = generated(&studio.browser.app, &studio.admin, request).await;
    studio
        .browser
        .sign_in(
            &studio.admin.email,
            &format!("/text-to-speech/{generation}"),
        )
        .await;
    studio.browser.wait_for_js(PLAYER_READY).await;
    (studio, generation)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_draws_the_waveform_and_shows_the_text_voice_and_settings() {
    let (Studio { browser, .. }, _) = on_a_take().await;
    let bars = browser
        .run(
            "const host = document.querySelector('[data-waveform] > div'); \
              const canvas = host.shadowRoot.querySelector('canvas'); \
              return canvas ? canvas.width : 0;",
        )
        .await;
    assert!(bars.as_u64().unwrap() > 0, "the waveform is drawn");
    assert_eq!(
        browser.text_of("[data-duration]").await,
        format!("0:{:02}", seconds_of(&take_text()) as u64)
    );
    assert_eq!(browser.text_of("[data-text]").await, take_text());
    assert_eq!(browser.text_of("[data-voice-name]").await, "Narrator");
    let details = browser.text_of("dl.details").await;
    assert!(
        details.contains("Creativity\n0.9") && details.contains("Seed\n42"),
        "{details}"
    );
    browser.screenshot("generation").await;
    browser.close().await;
}

/// Clicks on the waveform seek; Play, Pause and Space play and pause; arrows skip 5 s.
#[tokio::test(flavor = "multi_thread")]
async fn the_player_seeks_by_click_and_arrow_keys_and_plays_and_pauses_by_button_and_space() {
    let (Studio { browser, .. }, _) = on_a_take().await;
    let seconds = seconds_of(&take_text());

    // 90% of the way along the waveform, then near its start.
    click_waveform_at(&browser, 0.9).await;
    let seek_to = (seconds * 0.9) as u64;
    assert!(seek_to >= 2, "the seek is visible in whole seconds");
    browser
        .wait_for_js(&format!("{TIME} === '0:{seek_to:02}'"))
        .await;
    click_waveform_at(&browser, 0.02).await;
    browser.wait_for_js(&format!("{TIME} === '0:00'")).await;

    browser.click("[data-play]").await;
    browser.wait_for_js(&format!("{TIME} === '0:01'")).await;
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

    // Space works from anywhere on the page.
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
    browser.wait_for_js(&format!("{TIME} === '0:00'")).await;
    browser.run("document.activeElement.blur();").await;

    let waveform = browser.find("[data-waveform]").await;
    assert_eq!(
        waveform.attr("tabindex").await.unwrap().as_deref(),
        Some("0")
    );
    waveform.send_keys("\u{E014}").await.unwrap();
    browser
        .wait_for_js(&format!("{TIME} === '0:{:02}'", seconds as u64))
        .await;
    waveform.send_keys("\u{E012}").await.unwrap();
    browser.wait_for_js(&format!("{TIME} === '0:00'")).await;
    browser.close().await;
}

/// Download gives the WAV the engine spoke as an attachment, or an MP3 at the speed the
/// player plays at.
#[tokio::test(flavor = "multi_thread")]
async fn download_gives_the_spoken_wav_or_an_mp3_at_the_players_speed() {
    let (Studio { browser, .. }, generation) = on_a_take().await;
    let seconds = seconds_of(&take_text());
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
    assert_eq!(
        audio.samples.len(),
        take_text().chars().count() * SAMPLES_PER_CHAR
    );

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
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn regenerate_opens_the_editor_with_the_same_text_voice_and_settings() {
    let (Studio { browser, voice, .. }, _) = on_a_take().await;
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
        Some(take_text().as_str())
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
    browser.close().await;
}

/// A member's phone: the page fits the screen, and the menu drawer signs out.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_phone_the_page_fits_the_screen_and_the_menu_signs_out() {
    let Team {
        browser,
        member,
        generation,
        ..
    } = team().await;
    browser.resize(PHONE).await;
    browser
        .sign_in(&member.email, &format!("/text-to-speech/{generation}"))
        .await;
    browser.wait_for_js(PLAYER_READY).await;
    assert!(
        !browser.overflows().await,
        "the generation page scrolls sideways on a phone"
    );
    browser.screenshot("generation-phone").await;
    browser.click("[data-menu-toggle]").await;
    browser
        .wait_for_js("getComputedStyle(document.querySelector('.sidebar')).transform === 'none'")
        .await;
    browser.click("[data-sign-out]").await;
    browser
        .wait_for_js("location.pathname === '/sign-in'")
        .await;
    browser.close().await;
}
