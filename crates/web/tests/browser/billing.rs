//! The billing page.

use std::time::Duration;

use crate::support::TestApp;
use resonance_db::Plan;
use resonance_service::billing::{Billing, BillingSettings};
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_billing_page_shows_this_month_against_the_plan() {
    let app = TestApp::builder()
        .billing(Billing::new(BillingSettings {
            default_plan: Plan {
                characters_per_month: Some(1000),
                voice_slots: Some(3),
                max_concurrent_jobs: None,
            },
            ..Default::default()
        }))
        .spawn()
        .await;
    let browser = Browser::on(app).await;
    let admin = browser.app.signed_up("ada@example.com").await;
    let org = browser.app.create_org(&admin, "Acme").await;
    let org = resonance_domain::OrgId::parse(&org).unwrap();
    let db = browser.app.db();
    let voice = db
        .create_voice(&resonance_db::NewVoice {
            id: resonance_domain::VoiceId::new(),
            owner: resonance_domain::VoiceOwner::System,
            name: resonance_domain::VoiceName::parse("Narrator").unwrap(),
            description: None,
            category: Default::default(),
            language: Default::default(),
            object_key: Some("voices/system/narrator".into()),
            consent: None,
        })
        .await
        .unwrap();
    let generation = db
        .create_generation(&resonance_db::NewGeneration {
            id: resonance_domain::GenerationId::new(),
            org_id: org,
            voice_id: voice.id,
            text: resonance_domain::GenerationText::parse("Hello there.").unwrap(),
            params: Default::default(),
            seed: None,
        })
        .await
        .unwrap();
    db.claim_generation("worker", Duration::from_secs(60))
        .await
        .unwrap();
    db.complete_generation(&generation.id, "worker", "generations/x")
        .await
        .unwrap()
        .unwrap();

    browser.open("/sign-in?next=/billing").await;
    browser.fill("#email", "ada@example.com").await;
    browser.fill("#password", crate::support::PASSWORD).await;
    browser
        .click("form[data-auth-form] button[type=submit]")
        .await;
    browser
        .wait_for_js(
            "location.pathname === '/billing' && document.querySelector('[data-day-chart]').getAttribute('aria-busy') === 'false'",
        )
        .await;
    assert_eq!(
        browser.text_of("[data-characters-text]").await,
        "12 of 1,000"
    );
    let fill = browser
        .run("return document.querySelector('[data-characters-fill]').style.width;")
        .await;
    assert_eq!(fill, json!("1.2%"));
    let bars = browser
        .run("return document.querySelectorAll('.day-bar').length;")
        .await;
    let days = resonance_service::billing::Period::containing(time::OffsetDateTime::now_utc())
        .days()
        .count();
    assert_eq!(bars, json!(days));
    let tallest = browser
        .run("return [...document.querySelectorAll('.day-bar-fill')].filter((bar) => parseFloat(bar.style.height) === 100).length;")
        .await;
    assert_eq!(tallest, json!(1), "today's bar is the tallest");
    assert_eq!(browser.text_of("[data-limit-characters]").await, "1,000");
    assert_eq!(browser.text_of("[data-limit-voices]").await, "0 of 3");
    assert_eq!(browser.text_of("[data-limit-jobs]").await, "Unlimited");
    assert!(
        browser
            .find("[data-billing-disabled]")
            .await
            .is_displayed()
            .await
            .unwrap(),
        "without Polar the page says billing is off"
    );
    let nav = browser.find("nav a[aria-current=page]").await;
    assert_eq!(nav.attr("href").await.unwrap().as_deref(), Some("/billing"));
    browser.screenshot("billing").await;
    browser.close().await;
}
