//! ElevenLabs' input-streaming WebSocket (`/v1/text-to-speech/{voice_id}/stream-input`)
//! against the real server, with a real WebSocket client: text sent in pieces becomes
//! generations in the history, metered, whose audio comes back in order; authentication
//! by header or first message; refusals close the socket with a reason.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use resonance_db::Plan;
use resonance_domain::OrgId;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::tone::ToneEngine;
use crate::support::{DbKind, TestApp, TestUser, pcm16};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct World {
    app: TestApp,
    admin: TestUser,
    org: String,
    key: String,
    voice: String,
}

async fn world(db: DbKind) -> World {
    let app = TestApp::builder()
        .db(db)
        .engine(Arc::new(ToneEngine::default()))
        .spawn()
        .await;
    let admin = app.signed_up("admin@stream-input.example").await;
    let org = app.create_org(&admin, "Streamers").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let key = app.create_api_key(&admin, &org).await;
    World {
        app,
        admin,
        org,
        key,
        voice,
    }
}

/// What the server sent until it closed.
#[derive(Debug, Default)]
struct Received {
    audio: Vec<Vec<u8>>,
    messages: Vec<Value>,
    close: Option<(CloseCode, String)>,
}

impl World {
    fn ws_url(&self, voice: &str, query: &str) -> String {
        self.app
            .url(&format!("/v1/text-to-speech/{voice}/stream-input?{query}"))
            .replacen("http://", "ws://", 1)
    }

    async fn connect(&self, voice: &str, query: &str, header_key: Option<&str>) -> Socket {
        let mut request = self.ws_url(voice, query).into_client_request().unwrap();
        if let Some(key) = header_key {
            request
                .headers_mut()
                .insert("xi-api-key", key.parse().unwrap());
        }
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.status(), 101);
        socket
    }

    async fn history(&self) -> Vec<Value> {
        let history: Value = self
            .admin
            .client
            .get(self.app.url("/api/generations"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        history["generations"].as_array().unwrap().clone()
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// Reads until the server closes the socket.
async fn receive_all(socket: &mut Socket) -> Received {
    let mut received = Received::default();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("the server answers or closes in time");
        match next {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                if let Some(audio) = value["audio"].as_str() {
                    received.audio.push(
                        base64::engine::general_purpose::STANDARD
                            .decode(audio)
                            .unwrap(),
                    );
                }
                received.messages.push(value);
            }
            Some(Ok(Message::Close(frame))) => {
                received.close = frame.map(|f| (f.code, f.reason.to_string()));
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return received,
        }
    }
}

async fn text_streamed_in_pieces_comes_back_as_audio_in_order(db: DbKind) {
    let w = world(db).await;
    let mut socket = w
        .connect(
            &w.voice,
            "model_id=eleven_flash_v2_5&output_format=pcm_24000",
            Some(&w.key),
        )
        .await;
    send(
        &mut socket,
        json!({
            "text": " ",
            "voice_settings": { "stability": 0.5, "similarity_boost": 0.75 },
            "generation_config": { "chunk_length_schedule": [50] },
        }),
    )
    .await;
    let pieces = [
        "Hello there, this is the first ",
        "sentence of the streaming test. Then ",
        "a second sentence follows, long enough to pass fifty. ",
        "And a third one ",
        "that only ends when the input does.",
    ];
    for piece in pieces {
        send(
            &mut socket,
            json!({ "text": piece, "try_trigger_generation": false, "flush": false }),
        )
        .await;
    }
    send(&mut socket, json!({ "text": "" })).await;
    let received = receive_all(&mut socket).await;

    assert_eq!(
        received.close.as_ref().map(|(code, _)| *code),
        Some(CloseCode::Normal),
        "{received:?}"
    );
    let last = received.messages.last().unwrap();
    assert_eq!(last["isFinal"], true, "{received:?}");
    let audio_messages = &received.messages[..received.messages.len() - 1];
    assert!(audio_messages.len() >= 3, "{received:?}");
    assert!(
        audio_messages
            .iter()
            .all(|m| m["audio"].is_string() && m["isFinal"].is_null())
    );

    let mut history = w.history().await;
    history.reverse();
    let texts: Vec<&str> = history
        .iter()
        .map(|g| g["text"].as_str().unwrap().trim())
        .collect();
    assert_eq!(
        texts,
        [
            "Hello there, this is the first sentence of the streaming test.",
            "Then a second sentence follows, long enough to pass fifty.",
            "And a third one that only ends when the input does.",
        ]
    );
    let mut stored = Vec::new();
    for generation in &history {
        assert_eq!(generation["status"], "succeeded");
        stored.extend(
            w.app
                .stored_samples(&w.admin, generation["id"].as_str().unwrap())
                .await,
        );
    }
    let streamed = pcm16(&received.audio.concat());
    assert!(!streamed.is_empty());
    assert_eq!(streamed, stored, "the pieces' audio, in order");
    let characters: u64 = history
        .iter()
        .map(|g| g["text"].as_str().unwrap().chars().count() as u64)
        .sum();
    assert_eq!(w.app.characters_metered(&w.org).await, characters);
}

crate::on_both_databases!(text_streamed_in_pieces_comes_back_as_audio_in_order);

#[tokio::test]
async fn the_key_may_come_in_the_first_message_and_mp3_is_the_default() {
    let w = world(DbKind::Sqlite).await;
    for first in [
        json!({ "text": " ", "xi_api_key": w.key }),
        json!({ "text": " ", "authorization": format!("Bearer {}", w.key) }),
    ] {
        let mut socket = w.connect(&w.voice, "", None).await;
        send(&mut socket, first).await;
        send(
            &mut socket,
            json!({ "text": "Short and sweet.", "flush": true }),
        )
        .await;
        send(&mut socket, json!({ "text": "" })).await;
        let received = receive_all(&mut socket).await;
        assert_eq!(
            received.close.as_ref().map(|(code, _)| *code),
            Some(CloseCode::Normal),
            "{received:?}"
        );
        let mp3 = resonance_audio::decode(&received.audio.concat(), Some("audio/mpeg")).unwrap();
        assert!(mp3.duration_secs() > 0.2, "{}", mp3.duration_secs());
    }
    assert_eq!(w.history().await.len(), 2);
}

#[tokio::test]
async fn a_socket_without_a_valid_key_is_closed_for_policy_and_queues_nothing() {
    let w = world(DbKind::Sqlite).await;
    for (first, header) in [
        (json!({ "text": " " }), None),
        (json!({ "text": " ", "xi_api_key": "rsn_nope_nope" }), None),
        (json!({ "text": " " }), Some("rsn_wrong_key")),
    ] {
        let mut socket = w.connect(&w.voice, "", header).await;
        send(&mut socket, first).await;
        send(&mut socket, json!({ "text": "Speak this. " })).await;
        send(&mut socket, json!({ "text": "" })).await;
        let received = receive_all(&mut socket).await;
        let (code, reason) = received.close.clone().expect("a close frame");
        assert_eq!(code, CloseCode::Policy, "{received:?}");
        assert!(reason.contains("API key"), "{reason}");
        assert!(received.audio.is_empty());
        assert_eq!(received.messages[0]["error"], "invalid_api_key");
        assert!(
            received.messages[0]["message"]
                .as_str()
                .unwrap()
                .contains("API key")
        );
    }
    assert!(w.history().await.is_empty());
    assert_eq!(w.app.characters_metered(&w.org).await, 0);
}

#[tokio::test]
async fn errors_are_sent_as_a_message_then_the_socket_closes() {
    let w = world(DbKind::Sqlite).await;
    let mut socket = w.connect("Nobody", "", Some(&w.key)).await;
    send(&mut socket, json!({ "text": " " })).await;
    let received = receive_all(&mut socket).await;
    assert_eq!(received.messages[0]["error"], "voice_not_found");
    assert_eq!(
        received.messages[0]["detail"]["status"], "voice_not_found",
        "{received:?}"
    );
    assert!(
        received.messages[0]["message"]
            .as_str()
            .unwrap()
            .contains("\"Nobody\"")
    );
    assert_eq!(received.close.unwrap().0, CloseCode::Policy);

    let mut socket = w.connect(&w.voice, "", Some(&w.key)).await;
    send(&mut socket, json!({ "text": " " })).await;
    socket
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    let received = receive_all(&mut socket).await;
    assert_eq!(received.messages[0]["error"], "invalid_request");
    assert_eq!(received.close.unwrap().0, CloseCode::Invalid);

    let mut socket = w.connect(&w.voice, "", Some(&w.key)).await;
    send(&mut socket, json!({ "text": " " })).await;
    send(&mut socket, json!({ "text": "x".repeat(5001) })).await;
    let received = receive_all(&mut socket).await;
    assert!(
        received.messages[0]["message"]
            .as_str()
            .unwrap()
            .contains("5001 characters"),
        "{received:?}"
    );

    let refused = reqwest::Client::new()
        .get(w.app.url(&format!(
            "/v1/text-to-speech/{}/stream-input?inactivity_timeout=500",
            w.voice
        )))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.unwrap();
    assert!(
        error["detail"]["message"]
            .as_str()
            .unwrap()
            .contains("inactivity_timeout")
    );
    assert!(w.history().await.is_empty());
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_inactivity_timeout() {
    let w = world(DbKind::Sqlite).await;
    let mut socket = w
        .connect(&w.voice, "inactivity_timeout=1", Some(&w.key))
        .await;
    send(&mut socket, json!({ "text": " " })).await;
    let received = receive_all(&mut socket).await;
    assert_eq!(received.messages[0]["error"], "input_timeout_exceeded");
    assert_eq!(received.close.unwrap().0, CloseCode::Policy);
}

#[tokio::test]
async fn a_refused_quota_or_a_failed_generation_ends_the_session_after_the_audio_before_it() {
    let w = world(DbKind::Sqlite).await;
    let org = OrgId::parse(&w.org).unwrap();
    let plan = Plan {
        characters_per_month: Some(50),
        voice_slots: None,
        max_concurrent_jobs: None,
    };
    w.app.db().set_org_plan(&org, &plan).await.unwrap();
    let mut socket = w.connect(&w.voice, "", Some(&w.key)).await;
    send(&mut socket, json!({ "text": " " })).await;
    let sentence = "Thirty characters, give or take.";
    send(&mut socket, json!({ "text": sentence, "flush": true })).await;
    send(&mut socket, json!({ "text": sentence, "flush": true })).await;
    let received = receive_all(&mut socket).await;
    assert!(!received.audio.is_empty(), "the first piece is spoken");
    let error = received.messages.last().unwrap();
    assert_eq!(error["error"], "quota_exceeded", "{received:?}");
    assert!(error["message"].as_str().unwrap().contains("50"), "{error}");
    assert_eq!(received.close.unwrap().0, CloseCode::Policy);
    assert_eq!(
        w.app.characters_metered(&w.org).await,
        sentence.len() as u64
    );

    let plan = Plan {
        characters_per_month: None,
        ..plan
    };
    w.app.db().set_org_plan(&org, &plan).await.unwrap();
    let mut socket = w.connect(&w.voice, "", Some(&w.key)).await;
    send(&mut socket, json!({ "text": " " })).await;
    send(
        &mut socket,
        json!({ "text": "Please [fail] now.", "flush": true }),
    )
    .await;
    let received = receive_all(&mut socket).await;
    let error = &received.messages[0];
    assert_eq!(error["error"], "generation_failed", "{received:?}");
    assert!(
        !error["message"].as_str().unwrap().contains("secret"),
        "no internal detail: {error}"
    );
    assert_eq!(received.close.unwrap().0, CloseCode::Error);
}
