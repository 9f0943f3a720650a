//! The history page.

use crate::support::tone::SAMPLES_PER_CHAR;
use resonance_engine::SAMPLE_RATE;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn history_pages_through_generations_and_filters_by_voice() {
    let browser = Browser::start().await;
    let app = &browser.app;
    let admin = app.signed_up("history@example.com").await;
    app.create_org(&admin, "Archive").await;
    let narrator = app.upload_voice(&admin, "Narrator").await;
    let announcer = app.upload_voice(&admin, "Announcer").await;
    // No worker runs: the generations stay queued.
    for (voice, count) in [(&narrator, 21), (&announcer, 2)] {
        for i in 0..count {
            let response = admin
                .client
                .post(app.url("/api/generations"))
                .json(&json!({ "text": format!("Line {i}"), "voiceId": voice }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
        }
    }

    browser.open("/sign-in?next=/history").await;
    browser.fill("#email", "history@example.com").await;
    browser.fill("#password", crate::support::PASSWORD).await;
    browser
        .click("form[data-auth-form] button[type=submit]")
        .await;
    browser
        .wait_for_js("location.pathname === '/history'")
        .await;
    let rows = "document.querySelectorAll('[data-history-rows] tr[data-generation-id]').length";
    browser.wait_for_js(&format!("{rows} === 20")).await;
    assert_eq!(browser.text_of("[data-page-label]").await, "Page 1 of 2");
    assert!(
        browser
            .text_of("[data-history-rows]")
            .await
            .contains("Queued")
    );
    browser.screenshot("history-pages").await;
    browser.click("[data-page-next]").await;
    browser.wait_for_js(&format!("{rows} === 3")).await;
    assert_eq!(browser.text_of("[data-page-label]").await, "Page 2 of 2");

    browser
        .find(&format!("#history-voice option[value='{announcer}']"))
        .await
        .click()
        .await
        .unwrap();
    browser.wait_for_js(&format!("{rows} === 2")).await;
    assert_eq!(
        browser.path().await,
        format!("/history?voiceId={announcer}")
    );
    let listed = browser.text_of("[data-history-rows]").await;
    assert!(listed.contains("Announcer") && !listed.contains("Narrator"));
    assert!(
        !browser
            .find("[data-pager]")
            .await
            .is_displayed()
            .await
            .unwrap()
    );

    // A second organization from the switcher starts with an empty history; switching
    // back shows the first one's again.
    browser
        .find("#org-switcher option[value='__new']")
        .await
        .click()
        .await
        .unwrap();
    browser
        .wait_for_js("location.search === '?new-org=1'")
        .await;
    browser.fill("#org-name", "Side project").await;
    browser
        .click("[data-create-org-form] button[type=submit]")
        .await;
    browser
        .wait_for_js("location.search === '' && document.querySelector('#org-switcher option:checked').textContent === 'Side project'")
        .await;
    browser.open("/history").await;
    browser
        .wait_for_js("!document.querySelector('[data-history-empty]').hidden")
        .await;
    assert_eq!(
        browser.text_of("[data-history-empty] h3").await,
        "No generations yet"
    );
    browser.screenshot("history-empty").await;
    browser
        .find("#org-switcher option:not([value='__new']):not(:checked)")
        .await
        .click()
        .await
        .unwrap();
    browser
        .wait_for_js(
            "document.querySelector('#org-switcher option:checked').textContent === 'Archive'",
        )
        .await;
    browser.wait_for_js(&format!("{rows} === 20")).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn history_lists_a_finished_generation_with_its_voice_status_and_duration() {
    let Team {
        browser,
        admin,
        generation,
        ..
    } = team().await;
    browser.sign_in(&admin.email, "/history").await;
    let row = browser
        .find(&format!("[data-generation-id='{generation}']"))
        .await;
    let row_text = row.text().await.unwrap();
    assert!(row_text.contains("Narrator") && row_text.contains("Succeeded"));
    let seconds = LINE_TO_LOOK_BACK_ON.chars().count() * SAMPLES_PER_CHAR / SAMPLE_RATE as usize;
    browser
        .wait_for_js(&format!(
            "document.querySelector(\"[data-generation-id='{generation}'] [data-duration]\").textContent === '0:{seconds:02}'"
        ))
        .await;
    browser.screenshot("history").await;
    browser.close().await;
}

/// History rows play, download and delete their audio in place, and count characters.
#[tokio::test(flavor = "multi_thread")]
async fn history_rows_play_download_and_delete_in_place() {
    let Team {
        browser,
        admin,
        generation,
        ..
    } = team().await;
    browser.sign_in(&admin.email, "/history").await;
    let row = format!("[data-generation-id='{generation}']");
    browser.find(&format!("{row} [data-play-row]")).await;
    assert_eq!(
        browser.text_of(&format!("{row} [data-characters]")).await,
        LINE_TO_LOOK_BACK_ON.len().to_string()
    );
    browser.click(&format!("{row} [data-play-row]")).await;
    browser
        .wait_for_js("document.querySelector('[data-history-player]').currentTime > 0.2")
        .await;
    assert_eq!(
        browser
            .find(&format!("{row} [data-play-row]"))
            .await
            .attr("aria-pressed")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    browser.screenshot("history-row-actions").await;

    let href = browser
        .find(&format!("{row} [data-download-row]"))
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        href,
        format!("/api/generations/{generation}/audio?download=1")
    );
    let (status, headers, _) = browser.fetch("GET", &href).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-disposition"]
            .as_str()
            .unwrap()
            .starts_with("attachment")
    );

    browser.click(&format!("{row} [data-delete-row]")).await;
    assert!(
        browser
            .client
            .get_alert_text()
            .await
            .unwrap()
            .starts_with("Delete \"A line to look back on, spoken slowly en…\"")
    );
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for_js("!document.querySelector('[data-history-empty]').hidden")
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
