//! The browser harness: the real server, a chromedriver and a headless Chromium session
//! (Debian's `chromium` and `chromium-driver`) driven through WebDriver, and helpers that
//! act on pages. Screenshots of every page land in `target/screenshots/`.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::TestApp;
use crate::support::tone::ToneEngine;
use base64::Engine as _;
use fantoccini::actions::{
    InputSource, KeyAction, KeyActions, MOUSE_BUTTON_LEFT, MouseActions, PointerAction,
};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub const WAIT: Duration = Duration::from_secs(20);
pub const DESKTOP: (u32, u32) = (1440, 900);
pub const PHONE: (u32, u32) = (390, 844);

/// The server, a chromedriver and one Chromium session; everything stops on drop.
pub struct Browser {
    pub client: Client,
    pub app: TestApp,
    _chromedriver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// The app without a generation worker.
    pub async fn start() -> Browser {
        Browser::on(TestApp::builder().spawn().await).await
    }

    pub async fn on(app: TestApp) -> Browser {
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
        // The console's messages, read by `console_errors`.
        capabilities.insert("goog:loggingPrefs".to_string(), json!({ "browser": "ALL" }));
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
                    "--lang=en-US",
                    // A microphone that plays a beep, allowed without asking.
                    "--use-fake-device-for-media-stream",
                    "--use-fake-ui-for-media-stream",
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
            app,
            _chromedriver: chromedriver,
            _profile: profile,
        }
    }

    pub async fn open(&self, path: &str) {
        self.client.goto(&self.app.url(path)).await.unwrap();
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Waits until `script` (a JS expression) is truthy.
    pub async fn wait_for_js(&self, script: &str) {
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

    pub async fn text_of(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Runs `script` (a function body; may `await`) in the page and returns its result.
    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute(&format!("return (async () => {{ {script} }})();"), vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub async fn path(&self) -> String {
        self.run("return location.pathname + location.search;")
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Types into the field `css` after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Signs up through the sign-up page (which then signs in) and waits for `landing`.
    pub async fn sign_up(&self, from: &str, email: &str, landing: &str) {
        self.open(from).await;
        self.fill("#email", email).await;
        self.fill("#password", crate::support::PASSWORD).await;
        self.click("form[data-auth-form] button[type=submit]").await;
        self.wait_for_js(&format!(
            "location.pathname === {landing:?} && document.readyState === 'complete'"
        ))
        .await;
    }

    /// Fetches `url` in the page with its session; returns status, headers and body.
    pub async fn fetch(&self, method: &str, url: &str) -> (u16, Value, Vec<u8>) {
        let result = self
            .run(&format!(
                "const response = await fetch({url:?}, {{ method: {method:?} }});
                 const bytes = new Uint8Array(await response.arrayBuffer());
                 let binary = '';
                 for (const byte of bytes) binary += String.fromCharCode(byte);
                 return {{ status: response.status, headers: Object.fromEntries(response.headers), body: btoa(binary) }};"
            ))
            .await;
        let body = base64::engine::general_purpose::STANDARD
            .decode(result["body"].as_str().unwrap())
            .unwrap();
        (
            result["status"].as_u64().unwrap() as u16,
            result["headers"].clone(),
            body,
        )
    }

    /// Whether the page scrolls sideways (it must not, even on a phone).
    pub async fn overflows(&self) -> bool {
        self.run("return document.documentElement.scrollWidth > window.innerWidth;")
            .await
            .as_bool()
            .unwrap()
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn resize(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.unwrap();
    }

    pub async fn close(self) {
        self.client.close().await.unwrap();
    }

    /// Signs in through the sign-in page and waits for `next` to have loaded.
    /// Signs in as `email` into the text-to-speech editor with `voice` chosen, and waits
    /// until its form is ready.
    pub async fn open_editor(&self, email: &str, voice: &str) {
        self.sign_in(email, &format!("/text-to-speech?voiceId={voice}"))
            .await;
        self.wait_for_js("document.querySelector('[data-tts-form]').dataset.ready === 'true'")
            .await;
    }

    pub async fn sign_in(&self, email: &str, next: &str) {
        self.open(&format!("/sign-in?next={}", urlencode(next)))
            .await;
        self.fill("#email", email).await;
        self.fill("#password", crate::support::PASSWORD).await;
        self.click("form[data-auth-form] button[type=submit]").await;
        self.wait_for_js(&format!(
            "location.pathname + location.search === {next:?} && document.readyState === 'complete'"
        ))
        .await;
    }

    /// The errors the console has logged since the last call (uncaught exceptions, failed
    /// requests), read through ChromeDriver's log endpoint.
    pub async fn console_errors(&self) -> Vec<String> {
        let entries = self.client.issue_cmd(BrowserLog).await.unwrap();
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Whether the element `css` lies wholly inside the window.
    pub async fn in_view(&self, css: &str) -> bool {
        self.run(&format!(
            "const box = document.querySelector({css:?}).getBoundingClientRect();
             return box.width > 0 && box.top >= 0 && box.left >= 0
               && box.bottom <= innerHeight && box.right <= innerWidth;"
        ))
        .await
        .as_bool()
        .unwrap()
    }
}

/// `POST /session/{id}/se/log` for the browser's console: ChromeDriver's extension to
/// WebDriver, which returns the entries logged since it was last asked.
#[derive(Debug)]
pub struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (reqwest::Method, Option<String>) {
        (
            reqwest::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

pub fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots")
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn wait_until_ready(url: &str) {
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

/// A WAV of `seconds` of speech-like sound, as a file the file picker can choose.
pub fn voice_recording(dir: &std::path::Path, name: &str, seconds: f64) -> PathBuf {
    let samples = resonance_testkit::audio::speech_like(seconds, 0.5, 3);
    let wav =
        resonance_testkit::audio::encode_as(&samples, resonance_testkit::audio::UploadFormat::Wav);
    let path = dir.join(name);
    std::fs::write(&path, wav).unwrap();
    path
}

/// Clicks the waveform `fraction` of the way along it.
pub async fn click_waveform_at(browser: &Browser, fraction: f64) {
    let waveform = browser.find("[data-waveform]").await;
    let (_, _, width, _) = waveform.rectangle().await.unwrap();
    browser
        .client
        .perform_actions(
            MouseActions::new("mouse".into())
                .then(PointerAction::MoveToElement {
                    element: waveform,
                    duration: None,
                    // From the element's center.
                    x: width * (fraction - 0.5),
                    y: 0.0,
                })
                .then(PointerAction::Down {
                    button: MOUSE_BUTTON_LEFT,
                })
                .then(PointerAction::Up {
                    button: MOUSE_BUTTON_LEFT,
                }),
        )
        .await
        .unwrap();
}

/// The time the player shows, in whole seconds.
pub async fn shown_seconds(browser: &Browser) -> u64 {
    let text = browser.text_of("[data-current-time]").await;
    let (minutes, seconds) = text.split_once(':').unwrap();
    minutes.parse::<u64>().unwrap() * 60 + seconds.parse::<u64>().unwrap()
}

/// Clicks the point (`x`, `y`) of the window, whatever is there.
pub async fn click_at(browser: &Browser, x: f64, y: f64) {
    browser
        .client
        .perform_actions(
            MouseActions::new("mouse".into())
                .then(PointerAction::MoveTo {
                    duration: None,
                    x,
                    y,
                })
                .then(PointerAction::Down {
                    button: MOUSE_BUTTON_LEFT,
                })
                .then(PointerAction::Up {
                    button: MOUSE_BUTTON_LEFT,
                }),
        )
        .await
        .unwrap();
}

/// Presses `key` (a character or a [`fantoccini::key::Key`]) wherever the focus is.
pub async fn press(browser: &Browser, key: char) {
    browser
        .client
        .perform_actions(
            KeyActions::new("keyboard".into())
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key }),
        )
        .await
        .unwrap();
}

/// An organization ("Acme Studio") with one voice ("Narrator") and its admin, on a server
/// whose worker speaks with a tone engine, in a browser that has signed in as nobody yet.
pub struct Studio {
    pub browser: Browser,
    pub engine: Arc<ToneEngine>,
    pub admin: crate::support::TestUser,
    pub org: String,
    pub voice: String,
}

pub async fn studio() -> Studio {
    studio_offering(&[resonance_domain::SpeechModel::default()]).await
}

/// [`studio`] on a server that offers `models`, the first as its default.
pub async fn studio_offering(models: &[resonance_domain::SpeechModel]) -> Studio {
    let (app, engine) = crate::support::tone::tone_app(models).await;
    let browser = Browser::on(app).await;
    let app = &browser.app;
    let admin = app.signed_up("admin@example.com").await;
    let org = app.create_org(&admin, "Acme Studio").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    Studio {
        browser,
        engine,
        admin,
        org,
        voice,
    }
}

/// `POST /api/generations?wait=true` as `user`; returns the finished generation's id.
pub async fn generated(app: &TestApp, user: &crate::support::TestUser, request: Value) -> String {
    let response = user
        .client
        .post(app.url("/api/generations?wait=true"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let generation: Value = response.json().await.unwrap();
    generation["id"].as_str().unwrap().to_string()
}

/// One chunk for the engine (under 300 characters).
pub const WELCOME_SCRIPT: &str = "Welcome to Resonance, the open studio for lifelike speech. \
    This short script becomes a waveform you can play, seek and download. \
    Clone a voice from a short recording, then write what it should say \
    and listen to it here a moment later.";

/// A [`studio`] whose organization also has a member, an API key ("test key") and a
/// finished generation of [`LINE_TO_LOOK_BACK_ON`].
pub struct Team {
    pub browser: Browser,
    pub admin: crate::support::TestUser,
    pub member: crate::support::TestUser,
    pub org: String,
    pub voice: String,
    pub generation: String,
}

/// Two seconds of tone: long enough to still be playing when a test looks.
pub const LINE_TO_LOOK_BACK_ON: &str = "A line to look back on, spoken slowly enough to be heard for \
    a while: history keeps every take, so that the best one can be played, downloaded or \
    deleted from the list.";

pub async fn team() -> Team {
    let Studio {
        browser,
        admin,
        org,
        voice,
        ..
    } = studio().await;
    let app = &browser.app;
    let member = app.add_member(&admin, &org, "member").await;
    app.create_api_key(&admin, &org).await;
    let generation = generated(
        app,
        &admin,
        json!({ "text": LINE_TO_LOOK_BACK_ON, "voiceId": voice }),
    )
    .await;
    Team {
        browser,
        admin,
        member,
        org,
        voice,
        generation,
    }
}

/// Like [`Browser::wait_for_js`], but says whether `script` became truthy in time.
pub async fn wait_for_js_until(browser: &Browser, script: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = browser
            .client
            .execute(&format!("return Boolean({script});"), vec![])
            .await
            .unwrap();
        if value == json!(true) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
