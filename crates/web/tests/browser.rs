//! The web app in headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! through WebDriver against the real server on port 0. Screenshots of every page land in
//! `target/screenshots/`.

mod support;

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::actions::{
    InputSource, KeyAction, KeyActions, MOUSE_BUTTON_LEFT, MouseActions, PointerAction,
};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use resonance_db::Plan;
use resonance_engine::SAMPLE_RATE;
use resonance_web::billing::{Billing, BillingSettings};
use serde_json::{Value, json};
use support::TestApp;
use support::tone::{SAMPLES_PER_CHAR, ToneEngine};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(20);
const DESKTOP: (u32, u32) = (1440, 900);
const PHONE: (u32, u32) = (390, 844);

/// The server, a chromedriver and one Chromium session; everything stops on drop.
struct Browser {
    client: Client,
    app: TestApp,
    _chromedriver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// The app without a generation worker.
    async fn start() -> Browser {
        Browser::on(TestApp::builder().spawn().await).await
    }

    async fn on(app: TestApp) -> Browser {
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

    async fn open(&self, path: &str) {
        self.client.goto(&self.app.url(path)).await.unwrap();
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

    /// Runs `script` (a function body; may `await`) in the page and returns its result.
    async fn run(&self, script: &str) -> Value {
        self.client
            .execute(&format!("return (async () => {{ {script} }})();"), vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    async fn path(&self) -> String {
        self.run("return location.pathname + location.search;")
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Types into the field `css` after clearing it.
    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Signs up through the sign-up page (which then signs in) and waits for `landing`.
    async fn sign_up(&self, from: &str, email: &str, landing: &str) {
        self.open(from).await;
        self.fill("#email", email).await;
        self.fill("#password", support::PASSWORD).await;
        self.click("form[data-auth-form] button[type=submit]").await;
        self.wait_for_js(&format!(
            "location.pathname === {landing:?} && document.readyState === 'complete'"
        ))
        .await;
    }

    /// Fetches `url` in the page with its session; returns status, headers and body.
    async fn fetch(&self, method: &str, url: &str) -> (u16, Value, Vec<u8>) {
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
    async fn overflows(&self) -> bool {
        self.run("return document.documentElement.scrollWidth > window.innerWidth;")
            .await
            .as_bool()
            .unwrap()
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

    /// Signs in through the sign-in page and waits for `next` to have loaded.
    async fn sign_in(&self, email: &str, next: &str) {
        self.open(&format!("/sign-in?next={}", urlencode(next)))
            .await;
        self.fill("#email", email).await;
        self.fill("#password", support::PASSWORD).await;
        self.click("form[data-auth-form] button[type=submit]").await;
        self.wait_for_js(&format!(
            "location.pathname + location.search === {next:?} && document.readyState === 'complete'"
        ))
        .await;
    }

    /// The errors the console has logged since the last call (uncaught exceptions, failed
    /// requests), read through ChromeDriver's log endpoint.
    async fn console_errors(&self) -> Vec<String> {
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
    async fn in_view(&self, css: &str) -> bool {
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
struct BrowserLog;

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

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
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
    assert!(
        !browser.overflows().await,
        "the sign-in page scrolls sideways on a phone"
    );
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

    browser.open("/history").await;
    browser
        .wait_for_js("location.pathname === '/sign-in'")
        .await;
    assert_eq!(
        browser
            .find("[data-auth-form]")
            .await
            .attr("data-next")
            .await
            .unwrap()
            .as_deref(),
        Some("/history"),
        "a signed-out visitor signs in and comes back"
    );
    browser.close().await;
}

/// A WAV of `seconds` of speech-like sound, as a file the file picker can choose.
fn voice_recording(dir: &std::path::Path, name: &str, seconds: f64) -> PathBuf {
    let samples = resonance_testkit::audio::speech_like(seconds, 0.5, 3);
    let wav =
        resonance_testkit::audio::encode_as(&samples, resonance_testkit::audio::UploadFormat::Wav);
    let path = dir.join(name);
    std::fs::write(&path, wav).unwrap();
    path
}

/// Clicks the waveform `fraction` of the way along it.
async fn click_waveform_at(browser: &Browser, fraction: f64) {
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
async fn shown_seconds(browser: &Browser) -> u64 {
    let text = browser.text_of("[data-current-time]").await;
    let (minutes, seconds) = text.split_once(':').unwrap();
    minutes.parse::<u64>().unwrap() * 60 + seconds.parse::<u64>().unwrap()
}

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
    browser.fill("#password", support::PASSWORD).await;
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

/// The organization the page acts in.
async fn org_id(browser: &Browser) -> String {
    browser
        .find("[data-app]")
        .await
        .attr("data-org-id")
        .await
        .unwrap()
        .unwrap()
}

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
    browser.fill("#password", support::PASSWORD).await;
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
async fn a_voice_recorded_in_the_browser_can_be_saved_after_ten_seconds() {
    let browser = Browser::start().await;
    let admin = browser.app.signed_up("recorder@example.com").await;
    browser.app.create_org(&admin, "Booth").await;

    browser.open("/sign-in?next=/voices/new").await;
    browser.fill("#email", "recorder@example.com").await;
    browser.fill("#password", support::PASSWORD).await;
    browser
        .click("form[data-auth-form] button[type=submit]")
        .await;
    browser
        .wait_for_js("location.pathname === '/voices/new'")
        .await;
    browser.click("[data-source-tab='record']").await;
    browser.click("[data-record-start]").await;
    browser
        .wait_for_js("document.querySelector('[data-record-timer]').textContent === '0:02'")
        .await;
    assert!(
        browser
            .text_of("[data-record-hint]")
            .await
            .starts_with("Keep going")
    );
    assert!(
        !browser
            .find("[data-save-voice]")
            .await
            .is_enabled()
            .await
            .unwrap()
    );
    browser.screenshot("new-voice-recording").await;
    browser
        .wait_for_js("document.querySelector('[data-record-timer]').classList.contains('is-ready')")
        .await;
    browser.click("[data-record-stop]").await;
    browser
        .wait_for_js("!document.querySelector('[data-sample-preview]').hidden")
        .await;
    assert_eq!(browser.text_of("[data-sample-name]").await, "Recording");
    browser.fill("#voice-name", "Booth take").await;
    browser.click("#voice-consent").await;
    browser.click("[data-save-voice]").await;
    browser
        .wait_for_js(
            "location.search === '?tab=custom' && document.querySelector('[data-voice-id]')",
        )
        .await;
    assert!(
        browser
            .text_of("[data-voice-list]")
            .await
            .contains("Booth take")
    );

    // Search narrows the list and says so when nothing matches; the system tab is empty here.
    let cards = "document.querySelectorAll('[data-voice-list] [data-voice-id]').length";
    browser.fill("#voice-search", "zzz").await;
    browser.wait_for_js(&format!("{cards} === 0")).await;
    assert_eq!(
        browser.text_of("[data-empty-title]").await,
        "No voices match"
    );
    browser.fill("#voice-search", "booth").await;
    browser.wait_for_js(&format!("{cards} === 1")).await;
    browser.click("#tab-system").await;
    browser
        .wait_for_js(&format!(
            "{cards} === 0 && !document.querySelector('[data-voice-empty]').hidden"
        ))
        .await;
    assert_eq!(
        browser.text_of("[data-empty-title]").await,
        "No voices match"
    );
    browser
        .find("#voice-search")
        .await
        .send_keys(&"\u{E003}".repeat(5))
        .await
        .unwrap();
    browser
        .wait_for_js("document.querySelector('[data-empty-title]').textContent === 'No system voices installed'")
        .await;
    assert_eq!(
        browser
            .find("#tab-system")
            .await
            .attr("aria-selected")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );

    // Category filter on the custom tab.
    browser.click("#tab-custom").await;
    browser.wait_for_js(&format!("{cards} === 1")).await;
    browser
        .find("#voice-category option[value='NARRATIVE']")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_for_js(&format!("{cards} === 0")).await;
    browser
        .find("#voice-category option[value='GENERAL']")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_for_js(&format!("{cards} === 1")).await;

    // A file dropped on the drop zone becomes the sample (here, the saved recording).
    let voice = browser
        .find("[data-voice-id]")
        .await
        .attr("data-voice-id")
        .await
        .unwrap()
        .unwrap();
    browser.open("/voices/new").await;
    browser.find("[data-dropzone]").await;
    browser
        .run(&format!(
            "const audio = await (await fetch('/api/voices/{voice}/audio')).blob();
             const files = new DataTransfer();
             files.items.add(new File([audio], 'dropped.wav', {{ type: 'audio/wav' }}));
             document.querySelector('[data-dropzone]').dispatchEvent(
               new DragEvent('drop', {{ dataTransfer: files, bubbles: true, cancelable: true }}));"
        ))
        .await;
    browser
        .wait_for_js("!document.querySelector('[data-sample-preview]').hidden")
        .await;
    assert_eq!(browser.text_of("[data-sample-name]").await, "dropped.wav");
    assert_eq!(
        browser
            .find("#voice-name")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("dropped")
    );

    // An admin deletes the custom voice after confirming.
    browser.open("/voices?tab=custom").await;
    browser
        .wait_for_js(
            "document.querySelector('[data-voice-list]').getAttribute('aria-busy') === 'false'",
        )
        .await;
    browser
        .find("[data-delete-voice]")
        .await
        .click()
        .await
        .unwrap();
    assert!(
        browser
            .client
            .get_alert_text()
            .await
            .unwrap()
            .starts_with("Delete the voice \"Booth take\"?")
    );
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for_js(
            "!document.querySelector('[data-voice-empty]').hidden && document.querySelector('[data-empty-title]').textContent === 'No custom voices yet'",
        )
        .await;
    assert_eq!(
        browser.text_of("[data-voice-list]").await,
        "",
        "the deleted voice is gone from the list"
    );
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
    browser.fill("#password", support::PASSWORD).await;
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
    browser.fill("#password", support::PASSWORD).await;
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
    let days = resonance_web::billing::Period::containing(time::OffsetDateTime::now_utc())
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

/// Clicks the point (`x`, `y`) of the window, whatever is there.
async fn click_at(browser: &Browser, x: f64, y: f64) {
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
async fn press(browser: &Browser, key: char) {
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

/// An organization with a voice, a finished generation and an API key, its admin and a
/// member, on the server of a browser that has signed in as nobody yet.
struct Team {
    browser: Browser,
    admin: support::TestUser,
    member: support::TestUser,
    org: String,
    generation: String,
}

/// Two seconds of tone: long enough to still be playing when a test looks.
const LINE_TO_LOOK_BACK_ON: &str = "A line to look back on, spoken slowly enough to be heard for \
    a while: history keeps every take, so that the best one can be played, downloaded or \
    deleted from the list.";

async fn team() -> Team {
    let engine = Arc::new(ToneEngine::default());
    let browser = Browser::on(TestApp::builder().engine(engine).spawn().await).await;
    let app = &browser.app;
    let admin = app.signed_up("admin@example.com").await;
    let org = app.create_org(&admin, "Acme Studio").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let member = app.add_member(&admin, &org, "member").await;
    app.create_api_key(&admin, &org).await;
    let response = admin
        .client
        .post(app.url("/api/generations?wait=true"))
        .json(&json!({ "text": LINE_TO_LOOK_BACK_ON, "voiceId": voice }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let generation: Value = response.json().await.unwrap();
    let generation = generation["id"].as_str().unwrap().to_string();
    Team {
        browser,
        admin,
        member,
        org,
        generation,
    }
}

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

/// Like [`Browser::wait_for_js`], but says whether `script` became truthy in time.
async fn wait_for_js_until(browser: &Browser, script: &str) -> bool {
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
    browser
        .sign_in(&admin.email, &format!("/text-to-speech?voiceId={voice}"))
        .await;
    browser
        .wait_for_js("document.querySelector('[data-tts-form]').dataset.ready === 'true'")
        .await;
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
    let end = resonance_web::billing::Period::containing(time::OffsetDateTime::now_utc()).end;
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
