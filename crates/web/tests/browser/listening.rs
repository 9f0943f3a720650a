//! Speech heard while it is generated: the editor's docked player and the generation's page
//! play a job's audio as the worker makes it, then switch to the stored file. The engine
//! speaks the first of three chunks at once and the others only when the test allows, so
//! the job is still running while the page is checked.

use std::sync::Arc;

use crate::support::gated::GatedEngine;
use crate::support::{TestApp, TestUser};
use serde_json::{Value, json};

use crate::harness::*;

/// Three chunks, about 2 s of tone each.
fn three_chunks() -> String {
    let sentence = "This sentence is long enough that two of them never share a chunk of \
                    speech, because every chunk holds at most three hundred characters of \
                    text, and so the worker speaks them one after another here.";
    [sentence; 3].join(" ")
}

struct Listening {
    browser: Browser,
    engine: Arc<GatedEngine>,
    admin: TestUser,
    voice: String,
}

async fn listening() -> Listening {
    let engine = Arc::new(GatedEngine::default());
    let browser = Browser::on(TestApp::builder().engine(engine.clone()).spawn().await).await;
    let admin = browser.app.signed_up("listener@example.com").await;
    browser.app.create_org(&admin, "Early Ears").await;
    let voice = browser.app.upload_voice(&admin, "Narrator").await;
    Listening {
        browser,
        engine,
        admin,
        voice,
    }
}

async fn status(browser: &Browser, generation: &str) -> String {
    let (code, _, body) = browser
        .fetch("GET", &format!("/api/generations/{generation}"))
        .await;
    assert_eq!(code, 200);
    let generation: Value = serde_json::from_slice(&body).unwrap();
    generation["status"].as_str().unwrap().to_string()
}

/// `[data-live-received]` and `[data-live-played]` of the element `css`, in seconds.
async fn heard(browser: &Browser, css: &str) -> (f64, f64) {
    let value = browser
        .run(&format!(
            "const data = document.querySelector({css:?}).dataset;
             return [Number(data.liveReceived || 0), Number(data.livePlayed || 0)];"
        ))
        .await;
    (value[0].as_f64().unwrap(), value[1].as_f64().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_editor_plays_the_speech_while_it_is_generated_then_the_stored_file() {
    let Listening {
        browser,
        engine,
        admin,
        voice,
    } = listening().await;
    browser.open_editor(&admin.email, &voice).await;
    browser.fill("#tts-text", &three_chunks()).await;
    browser.click("[data-generate]").await;

    let dock = "[data-result-player]";
    browser
        .wait_for_js(
            "Number(document.querySelector('[data-result-player]').dataset.livePlayed) > 0.3",
        )
        .await;
    let link = browser
        .run("return document.querySelector('[data-result-link]').getAttribute('href');")
        .await;
    let generation = link
        .as_str()
        .unwrap()
        .trim_start_matches("/text-to-speech/");
    assert_eq!(status(&browser, generation).await, "running");
    assert_eq!(engine.calls(), 2, "the second chunk waits in the engine");
    let (received, played) = heard(&browser, dock).await;
    assert!(
        (1.9..2.1).contains(&received),
        "only the first chunk has come: {received} s"
    );
    assert!(played <= received, "{played} s heard of {received} s");
    let line = browser.text_of("[data-result-live]").await;
    assert!(
        line.starts_with("Playing as it is generated: ") && line.contains(" received, "),
        "{line}"
    );
    browser.screenshot("text-to-speech-listening").await;

    engine.release(10);
    browser
        .wait_for_js(
            "document.querySelector('[data-result-player]').dataset.live === 'done' \
             && document.querySelector('[data-result-audio]').duration > 5.5 \
             && !document.querySelector('[data-result-audio]').hidden \
             && document.querySelector('[data-result-live]').hidden",
        )
        .await;
    assert_eq!(status(&browser, generation).await, "succeeded");
    let src = browser
        .run("return document.querySelector('[data-result-audio]').getAttribute('src');")
        .await;
    assert_eq!(
        src.as_str(),
        Some(format!("/api/generations/{generation}/audio").as_str())
    );
    assert!(browser.console_errors().await.is_empty());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generation_page_plays_a_running_job_then_shows_its_waveform() {
    let Listening {
        browser,
        engine,
        admin,
        voice,
    } = listening().await;
    let response = admin
        .client
        .post(browser.app.url("/api/generations"))
        .json(&json!({ "text": three_chunks(), "voiceId": voice }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let generation: Value = response.json().await.unwrap();
    let generation = generation["id"].as_str().unwrap().to_string();
    engine.gated().await;

    browser
        .sign_in(&admin.email, &format!("/text-to-speech/{generation}"))
        .await;
    let page = "[data-generation]";
    browser
        .wait_for_js("Number(document.querySelector('[data-generation]').dataset.livePlayed) > 0.3")
        .await;
    assert_eq!(status(&browser, &generation).await, "running");
    let (received, played) = heard(&browser, page).await;
    assert!((1.9..2.1).contains(&received), "{received} s received");
    assert!(played <= received);
    let status_line = browser.text_of("[data-status-text]").await;
    assert!(
        status_line.starts_with("Playing as it is generated: "),
        "{status_line}"
    );
    browser.screenshot("generation-listening").await;

    engine.release(10);
    browser
        .wait_for_js(
            "document.querySelector('[data-generation]').dataset.player === 'ready' \
             && document.querySelector('[data-generation]').dataset.live === 'done'",
        )
        .await;
    let bars = browser
        .run(
            "const host = document.querySelector('[data-waveform] > div'); \
             const canvas = host.shadowRoot.querySelector('canvas'); \
             return canvas ? canvas.width : 0;",
        )
        .await;
    assert!(bars.as_u64().unwrap() > 0, "the waveform is drawn");
    assert_eq!(status(&browser, &generation).await, "succeeded");
    assert!(browser.console_errors().await.is_empty());
    browser.close().await;
}

/// The page's player, fed a stream whose reads split samples between their bytes, renders
/// exactly those samples back to back (after its 0.1 s lead).
#[tokio::test(flavor = "multi_thread")]
async fn pieces_split_inside_a_sample_play_as_one_signal() {
    let browser = Browser::start().await;
    browser.open("/sign-in").await;
    let rendered = browser
        .run(
            "const page = document.querySelector('script[src*=\"/assets/\"]').src;
             const { LiveAudio } = await import(new URL('live-audio.js', page));
             const samples = Int16Array.from({ length: 3001 }, (_, i) => ((i * 977) % 65536) - 32768);
             const bytes = new Uint8Array(samples.buffer);
             const lead = 2400;
             const context = new OfflineAudioContext(1, lead + samples.length + 100, 24000);
             const live = new LiveAudio(context);
             let pending = null;
             for (const [from, to] of [[0, 1], [1, 1001], [1001, 1002], [1002, 4003], [4003, bytes.length]]) {
               pending = live.schedule(pending, bytes.subarray(from, to));
             }
             const output = (await context.startRendering()).getChannelData(0);
             const wrong = [...samples].findIndex((s, i) => output[lead + i] !== s / 32768);
             return { received: live.received, pending, wrong, before: output[lead - 1], after: output[lead + samples.length] };",
        )
        .await;
    assert_eq!(rendered["received"].as_f64(), Some(3001.0 / 24000.0));
    assert_eq!(rendered["pending"], Value::Null, "no byte is left over");
    assert_eq!(rendered["wrong"], json!(-1), "every sample in its place");
    assert_eq!(rendered["before"], json!(0));
    assert_eq!(rendered["after"], json!(0));
    browser.close().await;
}
