//! The web app in headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! through WebDriver against the real server on port 0. Screenshots of every page land in
//! `target/screenshots/`.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use resonance_storage::{Storage, UrlSigningSecret};
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
    _server: RunningServer,
    _stop_server: oneshot::Sender<()>,
    _chromedriver: Child,
    _dirs: Vec<tempfile::TempDir>,
}

impl Browser {
    async fn start() -> Browser {
        let data = tempfile::tempdir().unwrap();
        let db = resonance_db::connect(&format!("sqlite://{}/resonance.db", data.path().display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let secret = UrlSigningSecret::new(vec![42u8; 32]).unwrap();
        let storage = Storage::local(data.path().join("objects"), secret).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop_server, stopped) = oneshot::channel::<()>();
        let server = resonance_web::serve(
            listener,
            AppState::new(db, storage, Default::default()),
            async {
                let _ = stopped.await;
            },
        )
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
            _server: server,
            _stop_server: stop_server,
            _chromedriver: chromedriver,
            _dirs: vec![data, profile],
        }
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
