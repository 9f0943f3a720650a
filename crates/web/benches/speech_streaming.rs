//! Time to first byte against total time of a streamed 1000-character text, through the
//! real server's streaming routes (ElevenLabs `/v1/text-to-speech/{id}/stream` and OpenAI
//! `/v1/audio/speech`) with an engine that takes a fixed time per sentence chunk, so that
//! what is measured is how early the route starts sending.
//!
//! Run: `cargo bench -p resonance-web --bench speech_streaming`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use resonance_engine::chunking::{MAX_CHUNK_CHARS, split_text};
use resonance_engine::{EngineError, Speech, SpeechEngine, SynthesisRequest};
use serde_json::json;
use support::TestApp;
use support::timing::{first_byte_and_total, median};
use support::tone::tone;

/// The engine's time per chunk.
const PER_CHUNK: Duration = Duration::from_millis(400);
const RUNS: usize = 5;

/// The tone engine's audio after a fixed delay.
struct FixedTimeEngine;

#[async_trait]
impl SpeechEngine for FixedTimeEngine {
    fn name(&self) -> &str {
        "fixed time"
    }

    async fn synthesize(&self, request: SynthesisRequest) -> Result<Speech, EngineError> {
        tokio::time::sleep(PER_CHUNK).await;
        Ok(Speech {
            samples: tone(request.text.chars().count()),
        })
    }
}

fn thousand_characters() -> String {
    let sentence =
        "Streaming sends the first sentence while the next ones are still being spoken. ";
    sentence.repeat(20).chars().take(1000).collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let app = TestApp::builder()
        .engine(Arc::new(FixedTimeEngine))
        .spawn()
        .await;
    let admin = app.signed_up("bench@example.com").await;
    let org = app.create_org(&admin, "Bench").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let key = app.create_api_key(&admin, &org).await;
    let client = app.key_client(&key);
    let text = thousand_characters();
    let chunks = split_text(&text, MAX_CHUNK_CHARS).len();
    println!(
        "{} characters in {chunks} chunks, {} ms per chunk, median of {RUNS} runs",
        text.chars().count(),
        PER_CHUNK.as_millis()
    );

    let routes = [
        (
            "ElevenLabs stream, mp3_44100_128",
            app.url(&format!(
                "/v1/text-to-speech/{voice}/stream?output_format=mp3_44100_128"
            )),
            json!({ "text": text }),
        ),
        (
            "OpenAI speech, mp3",
            app.url("/v1/audio/speech"),
            json!({ "model": "tts-1", "input": text, "voice": voice }),
        ),
        (
            "OpenAI speech, sse pcm",
            app.url("/v1/audio/speech"),
            json!({ "model": "tts-1", "input": text, "voice": voice, "response_format": "pcm", "stream_format": "sse" }),
        ),
    ];
    for (name, url, body) in routes {
        let mut firsts = Vec::new();
        let mut totals = Vec::new();
        for _ in 0..RUNS {
            let (first, total) = first_byte_and_total(client.post(&url).json(&body)).await;
            firsts.push(first);
            totals.push(total);
        }
        let (first, total) = (median(firsts), median(totals));
        println!(
            "{name}: first byte {:.0} ms, total {:.0} ms, first/total {:.2}",
            first * 1000.0,
            total * 1000.0,
            first / total
        );
    }
}
