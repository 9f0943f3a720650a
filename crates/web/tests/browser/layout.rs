//! Every page at both widths and for both roles, the phone layout, and how messages read.

use crate::support::TestApp;
use resonance_db::Plan;
use resonance_service::billing::{Billing, BillingSettings};
use serde_json::json;

use crate::harness::*;

/// Every page, as an admin and as a member, on a desktop and on a phone: each loads its
/// data without a single console error and without scrolling sideways.
#[tokio::test(flavor = "multi_thread")]
async fn every_page_loads_without_console_errors_for_admins_and_members_at_both_widths() {
    let Team {
        browser,
        admin,
        member,
        org,
        generation,
        ..
    } = team().await;
    let invite = browser.app.invite(&admin, &org, "member").await;
    // Loaded once a page's script has started and nothing is still loading.
    let loaded =
        "document.body.dataset.ready === 'true' && !document.querySelector('[aria-busy=\"true\"]')";
    let generation_page = format!("/text-to-speech/{generation}");
    let tts_ready =
        format!("{loaded} && document.querySelector('[data-tts-form]').dataset.ready === 'true'");
    let player_ready = format!(
        "{loaded} && document.querySelector('[data-generation]').dataset.player === 'ready'"
    );
    let mut pages: Vec<(&str, &str, String)> = vec![
        ("home", "/", loaded.to_string()),
        ("text-to-speech", "/text-to-speech", tts_ready),
        ("generation", &generation_page, player_ready),
        ("history", "/history", loaded.to_string()),
        ("voices", "/voices", loaded.to_string()),
        ("voices-custom", "/voices?tab=custom", loaded.to_string()),
        ("settings", "/settings", loaded.to_string()),
        ("billing", "/billing", loaded.to_string()),
    ];
    let mut failures = Vec::new();

    let invite_page = format!("/invites/{invite}");
    for (name, path) in [
        ("sign-in", "/sign-in"),
        ("sign-up", "/sign-up"),
        ("forgot-password", "/forgot-password"),
        ("invite", invite_page.as_str()),
    ] {
        browser.open(path).await;
        browser
            .wait_for_js("document.readyState === 'complete'")
            .await;
        let errors = browser.console_errors().await;
        if !errors.is_empty() {
            failures.push(format!("{name}: {errors:?}"));
        }
    }

    for (who, user) in [("admin", &admin), ("member", &member)] {
        if who == "admin" {
            pages.push(("new-voice", "/voices/new", loaded.to_string()));
        } else {
            pages.retain(|(name, ..)| *name != "new-voice");
        }
        browser.client.delete_all_cookies().await.unwrap();
        browser.resize(DESKTOP).await;
        browser.sign_in(&user.email, "/").await;
        for (size_name, size) in [("desktop", DESKTOP), ("phone", PHONE)] {
            browser.resize(size).await;
            for (name, path, ready) in &pages {
                browser.console_errors().await;
                browser.open(path).await;
                let settled = wait_for_js_until(&browser, ready).await;
                let errors = browser.console_errors().await;
                let at = format!("{name} as {who} on a {size_name}");
                if !settled {
                    failures.push(format!("{at}: never finished loading; errors: {errors:?}"));
                } else if !errors.is_empty() {
                    failures.push(format!("{at}: {errors:?}"));
                }
                if browser.overflows().await {
                    failures.push(format!("{at}: scrolls sideways"));
                }
                browser
                    .screenshot(&format!("walk-{who}-{size_name}-{name}"))
                    .await;
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    browser.close().await;
}

/// On a phone: the closed menu drawer can be neither seen nor tabbed into; open, it leaves
/// its button in reach and a tap beside it closes it; tables show every column.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_phone_the_menu_drawer_and_tables_fit_the_screen() {
    let Team { browser, admin, .. } = team().await;
    browser.resize(PHONE).await;
    browser.sign_in(&admin.email, "/history").await;
    browser
        .wait_for_js("document.querySelector('[data-history-rows] [data-generation-id]')")
        .await;

    // Closed: nothing of the drawer shows, and Tab goes through the page, not the drawer.
    assert_eq!(
        browser
            .run("return getComputedStyle(document.querySelector('.sidebar')).visibility;")
            .await,
        json!("hidden"),
        "the closed drawer (and its shadow) is not painted"
    );
    browser.run("document.activeElement.blur();").await;
    for _ in 0..6 {
        press(&browser, '\u{E004}').await;
        let focused = browser
            .run("const el = document.activeElement; return [Boolean(el.closest('.sidebar')), el.outerHTML.slice(0, 80)];")
            .await;
        assert_eq!(
            focused[0],
            json!(false),
            "Tab reached the hidden drawer: {}",
            focused[1]
        );
    }

    // Open: the button that opened it stays uncovered and closes it again.
    browser.click("[data-menu-toggle]").await;
    browser
        .wait_for_js("getComputedStyle(document.querySelector('.sidebar')).transform === 'none'")
        .await;
    let toggle_uncovered = browser
        .run(
            "const toggle = document.querySelector('[data-menu-toggle]');
             const box = toggle.getBoundingClientRect();
             return toggle.contains(document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2));",
        )
        .await;
    assert_eq!(
        toggle_uncovered,
        json!(true),
        "the open drawer covers its button"
    );
    assert!(browser.in_view(".sidebar a[aria-current=page]").await);
    browser.screenshot("menu-open-phone").await;
    click_at(&browser, f64::from(PHONE.0) - 20.0, 600.0).await;
    browser
        .wait_for_js("document.querySelector('[data-menu-toggle]').getAttribute('aria-expanded') === 'false' && getComputedStyle(document.querySelector('.sidebar')).visibility === 'hidden'")
        .await;
    assert_eq!(
        browser.path().await,
        "/history",
        "the tap only closed the menu"
    );

    // Every cell of the history and API key tables is on screen, without scrolling sideways.
    let cells_off_screen = "return [...document.querySelectorAll(SELECTOR)]
        .filter((cell) => { const box = cell.getBoundingClientRect(); return box.left < 0 || box.right > innerWidth + 0.5; })
        .map((cell) => cell.textContent);";
    let off = browser
        .run(&cells_off_screen.replace("SELECTOR", "'[data-history-rows] td'"))
        .await;
    assert_eq!(off, json!([]), "history cells off screen");
    browser.screenshot("history-phone").await;
    browser.open("/settings").await;
    browser
        .wait_for_js("document.querySelector(\"button[aria-label='Revoke test key']\")")
        .await;
    let off = browser
        .run(&cells_off_screen.replace(
            "SELECTOR",
            "'[data-keys] td, [data-keys] button, [data-members] td'",
        ))
        .await;
    assert_eq!(off, json!([]), "API key and member cells off screen");
    assert!(!browser.overflows().await);
    browser.screenshot("settings-phone").await;
    browser.close().await;
}

/// The API's terse messages reach the user as sentences, with dates in their locale.
#[tokio::test(flavor = "multi_thread")]
async fn server_errors_read_as_sentences_with_dates_in_the_users_locale() {
    let app = TestApp::builder()
        .billing(Billing::new(BillingSettings {
            default_plan: Plan {
                characters_per_month: Some(20),
                voice_slots: None,
                max_concurrent_jobs: None,
            },
            ..Default::default()
        }))
        .spawn()
        .await;
    let browser = Browser::on(app).await;
    let admin = browser.app.signed_up("thrifty@example.com").await;
    browser.app.create_org(&admin, "Budget").await;
    let voice = browser.app.upload_voice(&admin, "Narrator").await;
    browser.open_editor(&admin.email, &voice).await;
    browser
        .fill("#tts-text", "This is longer than twenty characters.")
        .await;
    browser
        .wait_for_js("document.querySelector('[data-request-cost]').classList.contains('is-over')")
        .await;
    browser.click("[data-generate]").await;
    browser
        .wait_for_js("!document.querySelector('[data-form-error]').hidden")
        .await;
    let end = resonance_service::billing::Period::containing(time::OffsetDateTime::now_utc()).end;
    assert_eq!(
        browser.text_of("[data-form-error]").await,
        format!(
            "This needs 38 characters but 0 of this month's 20 are used; the quota resets on {} {}, {}.",
            end.month(),
            end.day(),
            end.year()
        )
    );
    browser.screenshot("text-to-speech-quota").await;
    browser.close().await;
}
