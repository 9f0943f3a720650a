//! The web app in headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! through WebDriver against the real server on port 0. Screenshots of every page land in
//! `target/screenshots/`.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use resonance_db::{Database, Plan};
use resonance_storage::{Storage, UrlSigningSecret};
use resonance_web::billing::{Billing, BillingSettings};
use resonance_web::{AppState, RunningServer};
use serde_json::json;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(20);
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// The server, a chromedriver and one Chromium session; everything stops on drop.
struct Browser {
    client: Client,
    base: String,
    db: Arc<dyn Database>,
    _server: RunningServer,
    _stop_server: oneshot::Sender<()>,
    _chromedriver: Child,
    _dirs: Vec<tempfile::TempDir>,
}

impl Browser {
    async fn start() -> Browser {
        Self::start_with_billing(Billing::default()).await
    }

    async fn start_with_billing(billing: Billing) -> Browser {
        let data = tempfile::tempdir().unwrap();
        let db = resonance_db::connect(&format!("sqlite://{}/resonance.db", data.path().display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let secret = UrlSigningSecret::new(vec![42u8; 32]).unwrap();
        let storage = Storage::local(data.path().join("objects"), secret).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop_server, stopped) = oneshot::channel::<()>();
        let mut state = AppState::new(db.clone(), storage, Default::default());
        state.billing = Arc::new(billing);
        let server = resonance_web::serve(listener, state, async {
            let _ = stopped.await;
        })
        .unwrap();
        let base = format!("http://{}", server.addr);

        let port = free_port();
        let chromedriver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium chromium-driver)");
        let webdriver = format!("http://127.0.0.1:{port}");
        wait_until_ready(&format!("{webdriver}/status")).await;

        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_string(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--disable-dev-shm-usage",
                    "--autoplay-policy=no-user-gesture-required",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .expect("Chromium starts under chromedriver");
        Browser {
            client,
            base,
            db,
            _server: server,
            _stop_server: stop_server,
            _chromedriver: chromedriver,
            _dirs: vec![data, profile],
        }
    }

    /// Signs up and in over the API, creates an organization, and gives the browser the
    /// session; returns the organization's id.
    async fn signed_in_with_org(&self) -> resonance_domain::OrgId {
        let http = reqwest::Client::new();
        let credentials =
            json!({ "email": "ada@example.com", "password": "correct horse battery staple" });
        let signed_up = http
            .post(format!("{}/api/auth/sign-up", self.base))
            .header("origin", &self.base)
            .json(&credentials)
            .send()
            .await
            .unwrap();
        assert_eq!(signed_up.status(), 202);
        let signed_in = http
            .post(format!("{}/api/auth/sign-in", self.base))
            .header("origin", &self.base)
            .json(&credentials)
            .send()
            .await
            .unwrap();
        let token = signed_in
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next()?.split_once('='))
            .find(|(name, _)| *name == resonance_web::auth::SESSION_COOKIE)
            .map(|(_, value)| value.to_string())
            .expect("signing in sets the session cookie");
        let org: serde_json::Value = http
            .post(format!("{}/api/orgs", self.base))
            .header("origin", &self.base)
            .header(
                "cookie",
                format!("{}={token}", resonance_web::auth::SESSION_COOKIE),
            )
            .json(&json!({ "name": "Acme" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.open("/sign-in").await;
        self.client
            .execute(
                "document.cookie = `${arguments[0]}=${arguments[1]}; path=/`;",
                vec![json!(resonance_web::auth::SESSION_COOKIE), json!(token)],
            )
            .await
            .unwrap();
        resonance_domain::OrgId::parse(org["id"].as_str().unwrap()).unwrap()
    }

    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Waits until `script` (a JS expression) is truthy.
    async fn wait_for_js(&self, script: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self
                .client
                .execute(&format!("return Boolean({script});"), vec![])
                .await
                .unwrap();
            if value == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for: {script}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text_of(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn resize(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.unwrap();
    }

    async fn close(self) {
        self.client.close().await.unwrap();
    }
}

fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots")
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until_ready(url: &str) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} did not answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_and_sign_up_pages_validate_before_calling_the_api() {
    let browser = Browser::start().await;

    browser.open("/sign-in?next=/voices").await;
    assert_eq!(browser.text_of("h1").await, "Welcome back");
    assert!(browser.client.title().await.unwrap().starts_with("Sign in"));
    browser
        .find("form[data-auth-form] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .wait_for_js("!document.querySelector('[data-form-error]').hidden")
        .await;
    assert_eq!(
        browser.text_of("[data-form-error]").await,
        "Enter your email and password."
    );
    let sign_up_link = browser.find("a[href^='/sign-up']").await;
    assert_eq!(
        sign_up_link.attr("href").await.unwrap().as_deref(),
        Some("/sign-up?next=/voices")
    );
    browser.screenshot("sign-in").await;

    sign_up_link.click().await.unwrap();
    browser
        .wait_for_js("location.pathname === '/sign-up'")
        .await;
    assert_eq!(browser.text_of("h1").await, "Create your account");
    let password = browser.find("#password").await;
    assert_eq!(
        password.attr("autocomplete").await.unwrap().as_deref(),
        Some("new-password")
    );
    browser.screenshot("sign-up").await;

    browser.resize(PHONE).await;
    browser.open("/sign-in").await;
    browser.find("#email").await;
    let overflow: bool = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    assert!(!overflow, "the sign-in page scrolls sideways on a phone");
    browser.screenshot("sign-in-phone").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_pages_say_what_to_do_next() {
    let browser = Browser::start().await;

    browser.open("/no/such/page").await;
    assert_eq!(browser.text_of("h1").await, "Page not found");
    let action = browser.find(".auth-card a.btn").await;
    assert_eq!(action.attr("href").await.unwrap().as_deref(), Some("/"));
    browser.screenshot("not-found").await;

    browser.open("/text-to-speech/not-a-generation-id").await;
    assert_eq!(browser.text_of("h1").await, "Generation not found");
    let action = browser.find(".auth-card a.btn").await;
    assert_eq!(
        action.attr("href").await.unwrap().as_deref(),
        Some("/history")
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_billing_page_shows_this_month_against_the_plan() {
    let browser = Browser::start_with_billing(Billing::new(BillingSettings {
        default_plan: Plan {
            characters_per_month: Some(1000),
            voice_slots: Some(3),
            max_concurrent_jobs: None,
        },
        ..Default::default()
    }))
    .await;
    let org = browser.signed_in_with_org().await;
    let voice = browser
        .db
        .create_voice(&resonance_db::NewVoice {
            id: resonance_domain::VoiceId::new(),
            owner: resonance_domain::VoiceOwner::System,
            name: resonance_domain::VoiceName::parse("Narrator").unwrap(),
            description: None,
            category: Default::default(),
            language: Default::default(),
            object_key: Some("voices/system/narrator".into()),
        })
        .await
        .unwrap();
    let generation = browser
        .db
        .create_generation(&resonance_db::NewGeneration {
            id: resonance_domain::GenerationId::new(),
            org_id: org.clone(),
            voice_id: voice.id,
            text: resonance_domain::GenerationText::parse("Hello there.").unwrap(),
            params: Default::default(),
            seed: None,
        })
        .await
        .unwrap();
    browser
        .db
        .claim_generation("worker", Duration::from_secs(60))
        .await
        .unwrap();
    browser
        .db
        .complete_generation(&generation.id, "worker", "generations/x")
        .await
        .unwrap()
        .unwrap();

    browser.open("/billing").await;
    browser
        .wait_for_js(
            "document.querySelector('[data-day-chart]').getAttribute('aria-busy') === 'false'",
        )
        .await;
    assert_eq!(
        browser.text_of("[data-characters-text]").await,
        "12 of 1,000"
    );
    let fill: String = browser
        .client
        .execute(
            "return document.querySelector('[data-characters-fill]').style.width;",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fill, "1.2%");
    let bars = browser
        .client
        .execute(
            "return document.querySelectorAll('.day-bar').length;",
            vec![],
        )
        .await
        .unwrap();
    let days = resonance_web::billing::Period::containing(time::OffsetDateTime::now_utc())
        .days()
        .count();
    assert_eq!(bars, json!(days));
    let tallest = browser
        .client
        .execute(
            "return [...document.querySelectorAll('.day-bar-fill')].filter((bar) => parseFloat(bar.style.height) === 100).length;",
            vec![],
        )
        .await
        .unwrap();
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
