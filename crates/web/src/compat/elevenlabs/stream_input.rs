//! `GET /v1/text-to-speech/{voice_id}/stream-input`: ElevenLabs' input-streaming WebSocket.
//! The client sends text as it has it (an LLM's tokens); the server speaks it a few
//! sentences at a time, each piece an ordinary generation (queued, metered, in the
//! history), and sends the pieces' audio in order as it is synthesized.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use resonance_audio::{OutputFormat, StreamEncoder};
use resonance_domain::{GenerationParams, GenerationText, SpeechModel, VoiceId};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::ElevenLabsError;
use super::text_to_speech::{VoiceSettings, check_model, output_format};
use crate::auth::{Caller, presented_api_key};
use crate::compat::find_voice;
use crate::compat::speech::{self, SpeechJob, Speed};
use crate::generations::ValidGeneration;
use crate::{ApiError, AppState};

/// ElevenLabs' default `chunk_length_schedule`.
const DEFAULT_SCHEDULE: [usize; 4] = [120, 160, 250, 290];
/// The bounds ElevenLabs puts on each `chunk_length_schedule` entry.
const SCHEDULE_BOUNDS: std::ops::RangeInclusive<usize> = 50..=500;
const DEFAULT_INACTIVITY_SECS: u64 = 20;
const MAX_INACTIVITY_SECS: u64 = 180;
/// The largest client message read; a text of the longest generation fits several times.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Beyond this the transport drops the connection without reading the message.
const MAX_FRAME_BYTES: usize = 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct StreamInputQuery {
    model_id: Option<String>,
    output_format: Option<String>,
    inactivity_timeout: Option<u64>,
    #[serde(default)]
    keep_on_disconnect: bool,
}

#[derive(Debug, Default, Deserialize)]
struct GenerationConfig {
    chunk_length_schedule: Option<Vec<usize>>,
}

/// A client message. Other ElevenLabs fields (`pronunciation_dictionary_locators`, ...) are
/// accepted and ignored.
#[derive(Debug, Deserialize)]
struct ClientMessage {
    text: Option<String>,
    voice_settings: Option<VoiceSettings>,
    generation_config: Option<GenerationConfig>,
    xi_api_key: Option<String>,
    authorization: Option<String>,
    #[serde(default)]
    try_trigger_generation: bool,
    #[serde(default)]
    flush: bool,
}

/// What the query parameters asked for, checked before the upgrade.
struct Settings {
    voice: String,
    format: OutputFormat,
    inactivity: Duration,
    keep_on_disconnect: bool,
    header_key: Option<String>,
    model: SpeechModel,
}

/// Upgrades to the WebSocket once the query parameters are valid (a 400 otherwise);
/// authentication and everything after happen on the socket.
pub async fn stream_input(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(voice): Path<String>,
    stream_query: Result<Query<StreamInputQuery>, QueryRejection>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ElevenLabsError> {
    let stream_query = super::query(stream_query)?;
    let format = output_format(stream_query.output_format.as_deref())?;
    let model = check_model(&state, stream_query.model_id.as_deref())?;
    let inactivity = stream_query
        .inactivity_timeout
        .unwrap_or(DEFAULT_INACTIVITY_SECS);
    if !(1..=MAX_INACTIVITY_SECS).contains(&inactivity) {
        return Err(ElevenLabsError::invalid(
            "inactivity_timeout",
            format!("must be between 1 and {MAX_INACTIVITY_SECS} seconds, got {inactivity}"),
        ));
    }
    let header_key = presented_api_key(&headers)
        .ok()
        .flatten()
        .map(str::to_string);
    let settings = Settings {
        voice,
        format,
        inactivity: Duration::from_secs(inactivity),
        keep_on_disconnect: stream_query.keep_on_disconnect,
        header_key,
        model,
    };
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| session(socket, state, settings)))
}

/// Why the server closes the socket: sent as a JSON message, then as the close frame.
#[derive(Debug)]
struct Closing {
    code: u16,
    error: String,
    message: String,
}

impl Closing {
    fn new(code: u16, error: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            error: error.into(),
            message: message.into(),
        }
    }

    fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        ElevenLabsError::invalid(field, message).into()
    }
}

impl From<ElevenLabsError> for Closing {
    fn from(error: ElevenLabsError) -> Self {
        let code = if error.status.is_server_error() {
            close_code::ERROR
        } else if error.status.as_u16() == 400 || error.status.as_u16() == 422 {
            close_code::INVALID
        } else {
            close_code::POLICY
        };
        Self {
            code,
            error: error.code,
            message: error.message,
        }
    }
}

impl From<ApiError> for Closing {
    fn from(error: ApiError) -> Self {
        ElevenLabsError::from(error).into()
    }
}

impl From<speech::SpeechError> for Closing {
    fn from(error: speech::SpeechError) -> Self {
        ElevenLabsError::from(error).into()
    }
}

type Sink = SplitSink<WebSocket, Message>;

/// Sends the error as ElevenLabs does (its `message`, `error` and close `code`, and the
/// REST routes' `detail`), then closes with its code.
async fn close_with(sink: &mut Sink, closing: Closing) {
    let body = json!({
        "message": closing.message,
        "error": closing.error,
        "code": closing.code,
        "detail": { "status": closing.error, "message": closing.message },
    });
    let _ = sink.send(Message::Text(body.to_string().into())).await;
    let mut reason = closing.message;
    // A close frame's reason is at most 123 bytes.
    while reason.len() > 123 {
        reason.pop();
    }
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: closing.code,
            reason: Utf8Bytes::from(reason),
        })))
        .await;
}

/// What the reading side hands to the sending side, in order.
enum Outgoing {
    Job(Box<SpeechJob>),
    /// The input ended and every piece has been handed over.
    End,
    Fail(Closing),
}

/// What the session speaks with, fixed by the first message.
struct Voice {
    caller: Caller,
    voice_id: VoiceId,
    params: GenerationParams,
}

async fn session(socket: WebSocket, state: AppState, settings: Settings) {
    let (mut sink, mut incoming) = socket.split();
    let first = match next_text(&mut incoming, settings.inactivity).await {
        Ok(Some(first)) => first,
        Ok(None) => return,
        Err(closing) => return close_with(&mut sink, closing).await,
    };
    let (voice, speed, mut buffer, first_text) = match begin(&state, &settings, first).await {
        Ok(begun) => begun,
        Err(closing) => return close_with(&mut sink, closing).await,
    };
    let (outgoing, queue) = mpsc::channel(16);
    let mut delivery = tokio::spawn(deliver(sink, queue, settings.format, speed));
    let mut reader = Reader {
        state: &state,
        voice: &voice,
        keep_on_disconnect: settings.keep_on_disconnect,
        outgoing,
    };
    let mut input_open = reader.take_text(&mut buffer, first_text).await;
    loop {
        tokio::select! {
            _ = &mut delivery => {
                // Gives the client a moment to answer the close frame.
                let _ = tokio::time::timeout(Duration::from_secs(1), incoming.next()).await;
                return;
            }
            gone = reader.read(&mut incoming, &mut buffer, &mut input_open, settings.inactivity) => {
                if gone {
                    break;
                }
            }
        }
    }
    // The client went away: dropping the delivery drops its jobs, which cancels them
    // unless the client asked to keep them.
    delivery.abort();
}

/// Authenticates the first message and reads the session's voice and settings.
async fn begin(
    state: &AppState,
    settings: &Settings,
    first: ClientMessage,
) -> Result<(Voice, f64, TextBuffer, ClientMessage), Closing> {
    let key = settings
        .header_key
        .clone()
        .or_else(|| first.xi_api_key.clone())
        .or_else(|| {
            first.authorization.as_deref().map(|value| {
                let value = value.trim();
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .unwrap_or(value)
                    .trim()
                    .to_string()
            })
        })
        .ok_or_else(|| {
            Closing::new(
                close_code::POLICY,
                "invalid_api_key",
                "no API key: send it in the xi-api-key header, or as xi_api_key in the first message",
            )
        })?;
    let caller = Caller::from_api_key(state, &key)
        .await
        .map_err(|e| match e {
            ApiError::Unauthenticated => Closing::new(
                close_code::POLICY,
                "invalid_api_key",
                "the API key is not valid",
            ),
            other => other.into(),
        })?;
    let voice_settings = first.voice_settings.as_ref();
    let params = voice_settings
        .map(VoiceSettings::params)
        .transpose()?
        .unwrap_or_default()
        .with_model(settings.model);
    let speed = voice_settings
        .map(VoiceSettings::speed)
        .transpose()?
        .unwrap_or(1.0);
    let schedule = match first
        .generation_config
        .as_ref()
        .and_then(|config| config.chunk_length_schedule.clone())
    {
        None => DEFAULT_SCHEDULE.to_vec(),
        Some(schedule) if schedule.is_empty() => DEFAULT_SCHEDULE.to_vec(),
        Some(schedule) => {
            if let Some(bad) = schedule.iter().find(|n| !SCHEDULE_BOUNDS.contains(n)) {
                return Err(Closing::invalid(
                    "generation_config.chunk_length_schedule",
                    format!(
                        "each entry must be between {} and {} characters, got {bad}",
                        SCHEDULE_BOUNDS.start(),
                        SCHEDULE_BOUNDS.end()
                    ),
                ));
            }
            schedule
        }
    };
    let voice_id = find_voice(state, &caller.org_id, &settings.voice)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => Closing::new(
                close_code::POLICY,
                "voice_not_found",
                format!(
                    "voice {:?} is neither the id nor the name of a voice you can use",
                    settings.voice
                ),
            ),
            other => other.into(),
        })?;
    let voice = Voice {
        caller,
        voice_id,
        params,
    };
    Ok((voice, speed, TextBuffer::new(schedule), first))
}

/// The next client message, parsed; `None` when the client closed or went away.
async fn next_text(
    incoming: &mut SplitStream<WebSocket>,
    inactivity: Duration,
) -> Result<Option<ClientMessage>, Closing> {
    loop {
        let message = match tokio::time::timeout(inactivity, incoming.next()).await {
            Err(_) => {
                return Err(Closing::new(
                    close_code::POLICY,
                    "input_timeout_exceeded",
                    format!(
                        "no text arrived within the inactivity timeout of {} seconds; send {{\"text\": \"\"}} to end the input",
                        inactivity.as_secs()
                    ),
                ));
            }
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return Ok(None),
            Ok(Some(Ok(message))) => message,
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return Err(Closing::new(
                    close_code::UNSUPPORTED,
                    "invalid_request",
                    "messages must be JSON text, not binary",
                ));
            }
            _ => continue,
        };
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(Closing::new(
                close_code::SIZE,
                "message_too_large",
                format!(
                    "a message is {} bytes; at most {MAX_MESSAGE_BYTES} are accepted",
                    text.len()
                ),
            ));
        }
        return serde_json::from_str(text.as_str())
            .map(Some)
            .map_err(|e| Closing::invalid("message", format!("not a valid message: {e}")));
    }
}

/// The reading side of a session: turns text into generations and hands them over.
struct Reader<'a> {
    state: &'a AppState,
    voice: &'a Voice,
    keep_on_disconnect: bool,
    outgoing: mpsc::Sender<Outgoing>,
}

impl Reader<'_> {
    /// Reads and takes the next message while the input is open, then waits for the
    /// client to leave; true once it has.
    async fn read(
        &mut self,
        incoming: &mut SplitStream<WebSocket>,
        buffer: &mut TextBuffer,
        input_open: &mut bool,
        inactivity: Duration,
    ) -> bool {
        if !*input_open {
            let next = incoming.next().await;
            return matches!(next, None | Some(Err(_) | Ok(Message::Close(_))));
        }
        match next_text(incoming, inactivity).await {
            Ok(Some(message)) => *input_open = self.take_text(buffer, message).await,
            Ok(None) => return true,
            Err(closing) => {
                self.send(Outgoing::Fail(closing)).await;
                *input_open = false;
            }
        }
        false
    }

    async fn send(&self, out: Outgoing) {
        // The sending side only stops early when it has closed the socket.
        let _ = self.outgoing.send(out).await;
    }

    /// Takes one message's text; false once the input has ended or failed.
    async fn take_text(&mut self, buffer: &mut TextBuffer, message: ClientMessage) -> bool {
        let Some(text) = message.text else {
            self.send(Outgoing::Fail(Closing::invalid(
                "text",
                "every message needs a text (\"\" ends the input)",
            )))
            .await;
            return false;
        };
        let end = text.is_empty();
        let chars = text.chars().count();
        if chars > GenerationText::MAX_CHARS {
            self.send(Outgoing::Fail(Closing::invalid(
                "text",
                format!(
                    "a message's text is {chars} characters; at most {} are accepted",
                    GenerationText::MAX_CHARS
                ),
            )))
            .await;
            return false;
        }
        let mut pieces = Vec::new();
        if buffer.chars + chars > GenerationText::MAX_CHARS {
            pieces.extend(buffer.take_all());
        }
        buffer.push(&text);
        if end || message.flush {
            pieces.extend(buffer.take_all());
        } else {
            pieces.extend(buffer.take_ready(message.try_trigger_generation));
        }
        for piece in pieces {
            if let Err(closing) = self.start(piece).await {
                self.send(Outgoing::Fail(closing)).await;
                return false;
            }
        }
        if end {
            self.send(Outgoing::End).await;
        }
        !end
    }

    async fn start(&self, piece: String) -> Result<(), Closing> {
        let text = GenerationText::parse(piece.trim()).map_err(|e| Closing::invalid("text", e))?;
        let valid = ValidGeneration {
            text,
            params: self.voice.params,
            voice_id: self.voice.voice_id.clone(),
            seed: None,
        };
        let job = speech::start(self.state, &self.voice.caller, valid)
            .await
            .map_err(ElevenLabsError::from)?
            .keep_on_disconnect(self.keep_on_disconnect);
        self.send(Outgoing::Job(Box::new(job))).await;
        Ok(())
    }
}

/// The sending side: each job's audio in order as it comes, then `isFinal` and a normal
/// close, or the first error and a close with its code.
async fn deliver(
    mut sink: Sink,
    mut queue: mpsc::Receiver<Outgoing>,
    format: OutputFormat,
    speed: f64,
) {
    while let Some(out) = queue.recv().await {
        match out {
            Outgoing::Job(mut job) => {
                let mut encoder = StreamEncoder::new(format);
                let mut stretch = Speed::new(speed);
                loop {
                    let encoded = match job.next_audio().await {
                        Ok(Some(samples)) => encoder.push(&stretch.push(samples)),
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "a streamed generation failed");
                            return close_with(&mut sink, e.into()).await;
                        }
                    };
                    if !send_audio(&mut sink, encoded).await {
                        return;
                    }
                }
                let mut encoded = encoder.push(&stretch.flush());
                encoded.extend(encoder.finish());
                if !send_audio(&mut sink, encoded).await {
                    return;
                }
            }
            Outgoing::End => {
                let done = json!({ "isFinal": true }).to_string();
                if sink.send(Message::Text(done.into())).await.is_ok() {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code: close_code::NORMAL,
                            reason: Utf8Bytes::from_static(
                                "the input ended and all of its audio was sent",
                            ),
                        })))
                        .await;
                }
                return;
            }
            Outgoing::Fail(closing) => return close_with(&mut sink, closing).await,
        }
    }
}

/// Sends one audio message unless `encoded` is empty; false when the client is gone.
async fn send_audio(sink: &mut Sink, encoded: Vec<u8>) -> bool {
    if encoded.is_empty() {
        return true;
    }
    let message = json!({
        "audio": base64::engine::general_purpose::STANDARD.encode(encoded),
        "isFinal": null,
        "normalizedAlignment": null,
        "alignment": null,
    });
    sink.send(Message::Text(message.to_string().into()))
        .await
        .is_ok()
}

/// The text received and not yet spoken, and how much a generation needs.
struct TextBuffer {
    text: String,
    chars: usize,
    schedule: Vec<usize>,
    generations: usize,
}

impl TextBuffer {
    fn new(schedule: Vec<usize>) -> Self {
        Self {
            text: String::new(),
            chars: 0,
            schedule,
            generations: 0,
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
        self.chars += text.chars().count();
    }

    /// The complete sentences at the front of the buffer once they are at least the
    /// schedule's current length (any length when `trigger`).
    fn take_ready(&mut self, trigger: bool) -> Option<String> {
        let end = last_sentence_end(&self.text)?;
        let threshold = self.schedule[self.generations.min(self.schedule.len() - 1)];
        if !trigger && self.text[..end].chars().count() < threshold {
            return None;
        }
        let rest = self.text.split_off(end);
        let piece = std::mem::replace(&mut self.text, rest);
        self.chars = self.text.chars().count();
        self.piece(piece)
    }

    /// Everything buffered.
    fn take_all(&mut self) -> Option<String> {
        let piece = std::mem::take(&mut self.text);
        self.chars = 0;
        self.piece(piece)
    }

    fn piece(&mut self, piece: String) -> Option<String> {
        if piece.trim().is_empty() {
            return None;
        }
        self.generations += 1;
        Some(piece)
    }
}

/// The byte offset just after the last sentence-ending mark (with any closing quotes or
/// brackets) that whitespace follows.
fn last_sentence_end(text: &str) -> Option<usize> {
    let mut end = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？') {
            continue;
        }
        let mut after = i + c.len_utf8();
        while let Some(&(j, next)) = chars.peek() {
            if matches!(next, '"' | '\'' | ')' | ']' | '”' | '’' | '.' | '!' | '?') {
                after = j + next.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        if chars.peek().is_some_and(|(_, next)| next.is_whitespace()) {
            end = Some(after);
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_ends_only_where_whitespace_follows() {
        assert_eq!(last_sentence_end("Hello world. How"), Some(12));
        assert_eq!(last_sentence_end("Hello world."), None);
        assert_eq!(last_sentence_end("It costs 3.5 euros"), None);
        assert_eq!(last_sentence_end("He said \"stop!\" and left. "), Some(25));
        assert_eq!(last_sentence_end("Wait... what? Yes"), Some(13));
    }

    #[test]
    fn the_schedule_sets_how_much_text_a_generation_waits_for() {
        let mut buffer = TextBuffer::new(vec![50, 100]);
        buffer.push("Short one. ");
        assert_eq!(buffer.take_ready(false), None, "under the first threshold");
        buffer.push("A second sentence that makes the buffer long enough. Tail");
        assert_eq!(
            buffer.take_ready(false).as_deref(),
            Some("Short one. A second sentence that makes the buffer long enough.")
        );
        assert_eq!(buffer.text, " Tail");
        assert_eq!(buffer.chars, 5);
        buffer.push(" is here. And more words that stay. ");
        assert_eq!(
            buffer.take_ready(false),
            None,
            "the second threshold is 100"
        );
        assert!(buffer.take_ready(true).is_some(), "a trigger ignores it");
        buffer.push("   ");
        assert_eq!(buffer.take_all(), None, "blank text is not spoken");
    }
}
