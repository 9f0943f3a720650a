//! Time to first audio of a streamed generation on the native engine: the real server
//! on port 0, Chatterbox Turbo on a full-size random checkpoint at the default precision,
//! 2 threads, a voice whose conditioning is cached, and a text of about 10 s of speech
//! through the streaming OpenAI and ElevenLabs routes; against the same speech
//! synthesized in one shot (T3, then S3Gen over every token) in the same run.
//!
//! Random weights rarely sample T3's stop token, so the engine is capped at
//! [`SPEECH_TOKENS`] tokens: 10 s of speech, as the text would give a trained model.
//! The test checkpoint's tokenizer makes one token per byte, about 4.5 times what the
//! official GPT-2 tokenizer makes of English, so [`TEXT`] is about as many bytes as that
//! tokenizer gives tokens for a 10 s sentence: T3's prefill is the one a user waits for.
//!
//! Run: `cargo bench -p resonance-web --bench first_audio`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use chatterbox::t3::{Precision, SamplingParams};
use chatterbox::tts::{ChatterboxTurbo, SynthesisOptions};
use resonance_domain::VoiceId;
use resonance_engine::native::{BuiltinVoices, ChatterboxSynthesizer};
use serde_json::json;
use support::TestApp;
use support::timing::{first_byte_and_total, median};

const RUNS: usize = 5;
/// 10 s of speech at 25 tokens per second.
const SPEECH_TOKENS: usize = 250;
/// 30 bytes: about as many as the official GPT-2 tokenizer makes tokens of "Streaming
/// speech starts playing while the rest of the sentence is still being made, so a
/// listener hears the first words almost at once." (136 characters, about 10 s of
/// speech; English averages about 4.5 characters per GPT-2 token).
const TEXT: &str = "Speech starts playing at once.";

fn main() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: no other thread runs yet; candle and rayon read it for their pools.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "2") };
    }
    // SAFETY: as above; the product's defaults for candle's thread pool.
    unsafe { chatterbox::set_thread_defaults() };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    chatterbox::testing::write_full_size_checkpoint(dir.path(), 0).unwrap();
    let cfg = ChatterboxTurbo::config_for(dir.path(), &chatterbox::checkpoint::TURBO).unwrap();
    let precision = Precision::default();
    let model = Arc::new(
        ChatterboxTurbo::load_with_precision(
            dir.path(),
            &chatterbox::checkpoint::TURBO,
            &cfg,
            &Device::Cpu,
            precision,
            chatterbox::s3gen::S3GenPrecision::default(),
        )
        .unwrap(),
    );
    let conditionals = chatterbox::testing::random_voice(&cfg, &Device::Cpu, 0).unwrap();
    let voices = Arc::new(BuiltinVoices::default());
    let engine = ChatterboxSynthesizer::new(model.clone(), voices.clone())
        .with_max_speech_tokens(SPEECH_TOKENS)
        .start(1, 64);
    let app = TestApp::builder().engine(Arc::new(engine)).spawn().await;
    let admin = app.signed_up("bench@example.com").await;
    let org = app.create_org(&admin, "Bench").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    voices.insert(&VoiceId::parse(&voice).unwrap(), conditionals.clone());
    let key = app.create_api_key(&admin, &org).await;
    let client = app.key_client(&key);
    println!(
        "full-size random weights, T3 in {precision}, {} threads, {SPEECH_TOKENS} speech tokens \
         per generation, median of {RUNS} runs",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_default()
    );

    // The voice's S3Gen prompt state, once per voice (T3 keeps its conditioning in the
    // one-shot synthesis below), as for a voice streamed before.
    let start = Instant::now();
    model.s3gen().stream_prompt(&conditionals.s3gen).unwrap();
    println!(
        "voice prompt state: {:.2} s, once per voice",
        start.elapsed().as_secs_f64()
    );

    let one_shot = {
        let model = model.clone();
        tokio::task::spawn_blocking(move || {
            let options = SynthesisOptions {
                sampling: SamplingParams {
                    max_new_tokens: SPEECH_TOKENS,
                    ..SamplingParams::default()
                },
                seed: 1,
            };
            let start = Instant::now();
            let samples = model.synthesize(TEXT, &conditionals, &options).unwrap();
            (
                start.elapsed().as_secs_f64(),
                samples.len() as f64 / 24_000.0,
            )
        })
        .await
        .unwrap()
    };
    println!(
        "one-shot synthesis: {:.2} s for {:.1} s of speech",
        one_shot.0, one_shot.1
    );

    let routes = [
        (
            "OpenAI speech, pcm",
            app.url("/v1/audio/speech"),
            json!({ "model": "tts-1", "input": TEXT, "voice": voice, "response_format": "pcm" }),
        ),
        (
            "ElevenLabs stream, pcm_24000",
            app.url(&format!(
                "/v1/text-to-speech/{voice}/stream?output_format=pcm_24000"
            )),
            json!({ "text": TEXT }),
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
        println!("{name}: first audio {first:.2} s of {total:.2} s total");
        println!(
            "{name}: whole stream / one-shot synthesis {:.2}",
            total / one_shot.0
        );
    }
}
