//! `resonance serve` with the native engine on a tiny random-weight checkpoint: the
//! checkpoint's built-in voice becomes the system voice "Default", generations speak in it
//! and in voices cloned from uploads, and a cloned voice's conditioning is computed once,
//! kept in object storage across restarts and removed with the voice; a folder holding
//! Nano's T3 beside Turbo's serves both models, to the API and to `resonance say`.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{COOKIE, HeaderMap, HeaderValue, ORIGIN};
use serde_json::{Value, json};

mod support;

use support::{Server, start_in};

/// Signs up, signs in and creates an organization; returns a client acting in it.
async fn signed_in_client(server: &Server) -> reqwest::Client {
    let anonymous = reqwest::Client::new();
    let credentials =
        json!({ "email": "ada@example.com", "password": "correct horse battery staple" });
    let response = anonymous
        .post(format!("{}/api/auth/sign-up", server.base))
        .header(ORIGIN, &server.base)
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    sign_in(server, &credentials).await
}

/// [`signed_in_client`] in a new organization, "Acme".
async fn in_new_org(server: &Server) -> reqwest::Client {
    let client = signed_in_client(server).await;
    let response = client
        .post(format!("{}/api/orgs", server.base))
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    client
}

async fn sign_in(server: &Server, credentials: &Value) -> reqwest::Client {
    let response = reqwest::Client::new()
        .post(format!("{}/api/auth/sign-in", server.base))
        .header(ORIGIN, &server.base)
        .json(credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
    headers.insert(ORIGIN, HeaderValue::from_str(&server.base).unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Generates `text` in `voice` with `seed` and waits for it: the finished generation and
/// its stored WAV.
async fn speak(
    server: &Server,
    client: &reqwest::Client,
    voice: &str,
    text: &str,
    seed: u64,
) -> (Value, bytes::Bytes) {
    let body = json!({ "text": text, "voiceId": voice, "seed": seed });
    generate_with(server, client, &body).await
}

/// Generates what `body` asks for and waits for it: the finished generation and its WAV.
async fn generate_with(
    server: &Server,
    client: &reqwest::Client,
    body: &Value,
) -> (Value, bytes::Bytes) {
    let response = client
        .post(format!("{}/api/generations?wait=true", server.base))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let done: Value = response.json().await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    let audio = client
        .get(format!(
            "{}{}",
            server.base,
            done["audioUrl"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    (done, audio)
}

async fn generate(server: &Server, client: &reqwest::Client, voice: &str) -> Value {
    let (done, audio) = speak(server, client, voice, "Hello [chuckle] there.", 3).await;
    let audio = resonance_audio::decode(&audio, Some("audio/wav")).unwrap();
    assert_eq!(audio.sample_rate, 24_000);
    assert!(
        audio.samples.len() > 2_400,
        "{} samples",
        audio.samples.len()
    );
    assert!(
        audio.samples.iter().any(|s| s.abs() > 1e-3),
        "silent output"
    );
    done
}

async fn get_json(server: &Server, client: &reqwest::Client, path: &str) -> Value {
    let response = client.get(format!("{}{path}", server.base)).send();
    response.await.unwrap().json().await.unwrap()
}

async fn voices(server: &Server, client: &reqwest::Client) -> Vec<Value> {
    let list = get_json(server, client, "/api/voices").await;
    list["voices"].as_array().unwrap().clone()
}

fn wav_samples(wav: &[u8]) -> Vec<i16> {
    hound::WavReader::new(wav)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect()
}

fn conditionals_path(data: &Path, voice: &str) -> std::path::PathBuf {
    data.join("objects/cache/voice-conditionals").join(voice)
}

fn start(data: tempfile::TempDir, model: &Path) -> Server {
    let server = start_in(data, &[("RESONANCE_MODEL_DIR", model.to_str().unwrap())]);
    assert!(
        server.wait_for_log("generation workers running", Duration::from_secs(120)),
        "{:?}",
        server.log.lock().unwrap()
    );
    server
}

#[tokio::test]
async fn the_native_engine_speaks_in_the_builtin_and_in_cloned_voices() {
    let model = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(model.path()).unwrap();
    let server = start(tempfile::tempdir().unwrap(), model.path());
    let client = in_new_org(&server).await;

    let listed = voices(&server, &client).await;
    let default = listed
        .iter()
        .find(|v| v["name"] == "Default" && v["variant"] == "SYSTEM")
        .unwrap_or_else(|| panic!("no Default voice in {listed:?}"));
    let default_id = default["id"].as_str().unwrap().to_string();
    let sample = client
        .get(format!("{}/api/voices/{default_id}/audio", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(sample.status(), 200);
    generate(&server, &client, &default_id).await;

    let clip = resonance_testkit::audio::speech_like(12.0, 0.5, 4);
    let wav =
        resonance_testkit::audio::encode_as(&clip, resonance_testkit::audio::UploadFormat::Wav);
    let response = client
        .post(format!(
            "{}/api/voices?consent=true&name=Ada&language=en-GB",
            server.base
        ))
        .header("content-type", "audio/wav")
        .body(wav)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let cloned: Value = response.json().await.unwrap();
    let cloned_id = cloned["id"].as_str().unwrap().to_string();
    generate(&server, &client, &cloned_id).await;
    let cached = conditionals_path(server.data.path(), &cloned_id);
    assert!(
        cached.exists(),
        "conditioning not stored at {}",
        cached.display()
    );
    assert!(server.logged("voice conditioning computed"));

    // After a restart the stored conditioning is used, not computed again, and the
    // built-in voice is not installed twice.
    let mut server = server;
    let _ = server.child.kill();
    let _ = server.child.wait();
    let data = std::mem::replace(&mut server.data, tempfile::tempdir().unwrap());
    drop(server);
    let server = start(data, model.path());
    let client = sign_in(
        &server,
        &json!({ "email": "ada@example.com", "password": "correct horse battery staple" }),
    )
    .await;
    generate(&server, &client, &cloned_id).await;
    assert!(!server.logged("voice conditioning computed"));
    let defaults = voices(&server, &client)
        .await
        .into_iter()
        .filter(|v| v["name"] == "Default")
        .count();
    assert_eq!(defaults, 1);

    // A replaced sample is conditioned afresh, never with the conditioning of the one
    // before it, which goes with the old sample.
    let other_clip = resonance_testkit::audio::speech_like(11.0, 0.5, 9);
    let response = client
        .put(format!(
            "{}/api/voices/{cloned_id}/sample?consent=true",
            server.base
        ))
        .header("content-type", "audio/wav")
        .body(resonance_testkit::audio::encode_as(
            &other_clip,
            resonance_testkit::audio::UploadFormat::Wav,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let replaced: Value = response.json().await.unwrap();
    let sample = replaced["audioUrl"]
        .as_str()
        .unwrap()
        .rsplit_once("?sample=")
        .unwrap()
        .1
        .to_string();
    assert!(!conditionals_path(server.data.path(), &cloned_id).exists());
    generate(&server, &client, &cloned_id).await;
    assert!(server.logged("voice conditioning computed"));
    let replaced_cache = conditionals_path(server.data.path(), &format!("{cloned_id}.{sample}"));
    assert!(replaced_cache.exists(), "{}", replaced_cache.display());

    let response = client
        .delete(format!("{}/api/voices/{cloned_id}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(!replaced_cache.exists());
}

/// The API and `resonance say` speak a text of two chunks the same way: with the same seed
/// in the same voice, the audio is the same sample for sample.
#[tokio::test]
async fn the_api_and_say_give_the_same_audio_for_the_same_seed() {
    let model = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(model.path()).unwrap();
    let server = start(tempfile::tempdir().unwrap(), model.path());
    let client = in_new_org(&server).await;
    let listed = voices(&server, &client).await;
    let default = listed
        .iter()
        .find(|v| v["name"] == "Default")
        .unwrap_or_else(|| panic!("no Default voice in {listed:?}"));
    let text = format!(
        "{}{}",
        "The first sentence is long enough that two of them fill most of a chunk. ".repeat(3),
        "Then the second chunk begins, and it is spoken with the next seed. ".repeat(3),
    );
    assert!(text.len() > 300, "two chunks");

    let default_id = default["id"].as_str().unwrap();
    let (_, from_api) = speak(&server, &client, default_id, &text, 11).await;

    let dir = tempfile::tempdir().unwrap();
    let said = std::process::Command::new(env!("CARGO_BIN_EXE_resonance"))
        .current_dir(dir.path())
        .env_remove("RESONANCE_CONFIG")
        .args(["--data-dir", "data", "--model-dir"])
        .arg(model.path())
        .args(["say", &text, "--out", "said.wav", "--seed", "11"])
        .output()
        .unwrap();
    assert!(said.status.success(), "{said:?}");
    let from_say = std::fs::read(dir.path().join("said.wav")).unwrap();

    let (from_api, from_say) = (wav_samples(&from_api), wav_samples(&from_say));
    assert!(from_api.len() > 4_800, "{} samples", from_api.len());
    assert_eq!(from_api, from_say);
}

#[tokio::test]
async fn a_folder_with_nanos_t3_serves_both_models() {
    let model = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(model.path()).unwrap();
    chatterbox::testing::write_tiny_nano_t3(model.path()).unwrap();
    let server = start(tempfile::tempdir().unwrap(), model.path());
    let client = in_new_org(&server).await;
    let models = get_json(&server, &client, "/v1/models").await;
    let listed = &models["data"];
    assert_eq!(
        (listed[3]["id"].as_str(), listed[4]["id"].as_str()),
        (Some("chatterbox-turbo"), Some("chatterbox-nano")),
        "{models}"
    );
    let listed = voices(&server, &client).await;
    let default = listed.iter().find(|v| v["name"] == "Default").unwrap();
    let voice = default["id"].as_str().unwrap();
    let text = "Hello there.";
    let body = |model: &str| json!({ "text": text, "voiceId": voice, "seed": 5, "model": model });
    let (nano, from_nano) = generate_with(&server, &client, &body("chatterbox-nano")).await;
    assert_eq!(nano["model"], "chatterbox-nano");
    let (turbo, from_turbo) = speak(&server, &client, voice, text, 5).await;
    assert_eq!(turbo["model"], "chatterbox-turbo");
    assert_ne!(from_nano, from_turbo);

    let dir = tempfile::tempdir().unwrap();
    let said = std::process::Command::new(env!("CARGO_BIN_EXE_resonance"))
        .current_dir(dir.path())
        .env_remove("RESONANCE_CONFIG")
        .env_remove("RESONANCE_MODEL")
        .args(["--data-dir", "data", "--model-dir"])
        .arg(model.path())
        .args(["say", text, "--out", "said.wav", "--seed", "5"])
        .args(["--model", "chatterbox-nano"])
        .output()
        .unwrap();
    assert!(said.status.success(), "{said:?}");
    let said = std::fs::read(dir.path().join("said.wav")).unwrap();
    assert_eq!(wav_samples(&said), wav_samples(&from_nano));
}
