//! Rows of the history selected together are downloaded or deleted together.

use serde_json::{Value, json};

use crate::harness::*;

const ROWS: &str = "[data-history-rows] tr[data-generation-id]";

#[tokio::test(flavor = "multi_thread")]
async fn selected_history_rows_are_downloaded_and_deleted_together() {
    let team = team().await;
    let (browser, admin) = (&team.browser, &team.admin);
    let app = &browser.app;
    let first: Value = admin
        .client
        .get(app.url(&format!("/api/generations/{}", team.generation)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for text in ["A second take.", "A third take."] {
        let response = admin
            .client
            .post(app.url("/api/generations?wait=true"))
            .json(&json!({ "text": text, "voiceId": first["voiceId"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    browser.sign_in("admin@example.com", "/history").await;
    browser
        .wait_for_js(&format!(
            "document.querySelectorAll('{ROWS}').length === 3 \
             && document.querySelector('[data-history-rows]').getAttribute('aria-busy') === 'false'"
        ))
        .await;
    assert!(
        browser
            .run("return document.querySelector('[data-selection]').hidden;")
            .await
            == json!(true)
    );

    // Select all, then leave out the newest.
    browser.click("[data-select-all]").await;
    assert_eq!(
        browser.text_of("[data-selection-count]").await,
        "3 selected"
    );
    browser
        .click(&format!("{ROWS}:first-child [data-select-row]"))
        .await;
    assert_eq!(
        browser.text_of("[data-selection-count]").await,
        "2 selected"
    );
    assert_eq!(
        browser
            .run("return document.querySelector('[data-select-all]').indeterminate;")
            .await,
        json!(true)
    );
    let kept = browser
        .run(&format!(
            "return document.querySelector('{ROWS}:first-child').dataset.generationId;"
        ))
        .await;
    browser.screenshot("history-selection").await;

    // Download fetches each selected generation's audio as an attachment.
    browser
        .run(
            "window.downloads = [];
             HTMLAnchorElement.prototype.click = function () {
               window.downloads.push(this.getAttribute('href'));
             };
             return true;",
        )
        .await;
    browser.click("[data-download-selected]").await;
    let downloads = browser.run("return window.downloads;").await;
    let downloads: Vec<&str> = downloads
        .as_array()
        .unwrap()
        .iter()
        .map(|href| href.as_str().unwrap())
        .collect();
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    for href in &downloads {
        assert!(href.ends_with("/audio?download=1"), "{href}");
        assert!(!href.contains(kept.as_str().unwrap()), "{href}");
        let (status, headers, _) = browser.fetch("GET", href).await;
        assert_eq!(status, 200);
        assert!(
            headers["content-disposition"]
                .as_str()
                .unwrap()
                .starts_with("attachment")
        );
    }

    // Delete asks once for both, then only the newest is left.
    browser.click("[data-delete-selected]").await;
    let question = browser.client.get_alert_text().await.unwrap();
    assert!(
        question.starts_with("Delete 2 generations and their audio?"),
        "{question}"
    );
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for_js(&format!(
            "document.querySelectorAll('{ROWS}').length === 1 \
             && document.querySelector('[data-selection]').hidden"
        ))
        .await;
    let left: Value = admin
        .client
        .get(app.url("/api/generations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(left["total"], 1, "{left}");
    assert_eq!(left["generations"][0]["id"], kept);
    assert!(browser.console_errors().await.is_empty());
}
