//! What the OpenAI and ElevenLabs speech routes share: a speech request becomes a durable
//! generation job like any other (so it is in the history and metered), and its audio is
//! delivered as it is synthesized: from this process's worker chunk by chunk, or from the
//! stored file once a worker elsewhere has finished it. A client that goes away before its
//! audio has all come cancels the job, unless it asked to keep it.

use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use resonance_audio::encode::SOURCE_RATE;
use resonance_audio::stretch::{SpeedOutOfRange, stretch};
use resonance_audio::{OutputFormat, StreamEncoder};
use resonance_db::{DbError, Generation};
use resonance_domain::{GenerationId, GenerationStatus};

use crate::auth::Caller;
use crate::generations::{
    ValidGeneration, WAIT_LIMIT, queue_as, read_stored_audio, stored_audio_key,
};
use crate::{ApiError, AppState};
use resonance_service::generations::events::{JobEvent, Subscription};

/// How often a job run by a worker elsewhere is looked up.
const POLL: Duration = Duration::from_millis(50);

/// With a speed other than 1, audio is time-stretched in pieces at least this long (half a
/// second), so that few seams fall inside the speech.
const STRETCH_PIECE: usize = SOURCE_RATE as usize / 2;

/// Why a speech job gave no audio.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The generation failed or was cancelled; the reason is for the user.
    #[error("{0}")]
    Failed(String),
    #[error("the speech was not ready within {} seconds", WAIT_LIMIT.as_secs())]
    TimedOut,
}

/// A queued speech job whose audio is awaited.
pub struct SpeechJob {
    state: AppState,
    generation: Generation,
    subscription: Subscription,
    deadline: tokio::time::Instant,
    /// Waits as long as the job runs, not only [`WAIT_LIMIT`] in all.
    patient: bool,
    done: bool,
    cancel_when_dropped: bool,
}

/// Queues the generation and listens for its audio.
pub async fn start(
    state: &AppState,
    caller: &Caller,
    valid: ValidGeneration,
) -> Result<SpeechJob, ApiError> {
    let id = GenerationId::new();
    // Subscribed before the job exists, so that no chunk can be missed.
    let subscription = state.job_events.subscribe(&id);
    let generation = queue_as(state, caller, valid, id).await?;
    Ok(SpeechJob {
        state: state.clone(),
        generation,
        subscription,
        deadline: tokio::time::Instant::now() + WAIT_LIMIT,
        patient: false,
        done: false,
        cancel_when_dropped: false,
    })
}

/// Listens to a generation queued earlier, at any point of its life: the audio this
/// process's worker has published so far, then the rest as it comes; or its stored audio
/// once it has succeeded elsewhere or before. Only a job still queued after [`WAIT_LIMIT`]
/// times out. A listener leaving does not cancel the job.
pub fn listen(state: &AppState, generation: Generation) -> SpeechJob {
    let subscription = state.job_events.subscribe(&generation.id);
    SpeechJob {
        state: state.clone(),
        generation,
        subscription,
        deadline: tokio::time::Instant::now() + WAIT_LIMIT,
        patient: true,
        done: false,
        cancel_when_dropped: false,
    }
}

/// `?keep_on_disconnect=true`: the job of a streaming request whose client goes away
/// finishes and stays in the history; without it, the job is cancelled.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Disconnect {
    #[serde(default)]
    pub keep_on_disconnect: bool,
}

impl SpeechJob {
    pub fn id(&self) -> &GenerationId {
        &self.generation.id
    }

    /// Unless `keep`, dropping the job before all of its audio has come (its client went
    /// away) cancels it, which gives back its share of the plan and charges nothing.
    pub fn keep_on_disconnect(mut self, keep: bool) -> Self {
        self.cancel_when_dropped = !keep;
        self
    }

    /// The next piece of audio (mono, [`SOURCE_RATE`]); `None` once all of it has come and
    /// the job has succeeded.
    pub async fn next_audio(&mut self) -> Result<Option<Vec<f32>>, SpeechError> {
        while !self.done {
            if self.subscription.is_claimed() {
                return self.next_published().await;
            }
            let current = self
                .state
                .db
                .get_generation(&self.generation.org_id, &self.generation.id)
                .await
                .map_err(ApiError::from)?;
            if current.status.is_finished() && !self.subscription.is_claimed() {
                // Run by a worker in another process: its audio is only in storage.
                self.done = true;
                return match current.status {
                    GenerationStatus::Succeeded => {
                        let key = stored_audio_key(&current)?;
                        Ok(Some(read_stored_audio(&self.state, &key).await?))
                    }
                    _ => Err(failure(&current)),
                };
            }
            if self.patient && current.status == GenerationStatus::Running {
                self.deadline = tokio::time::Instant::now() + WAIT_LIMIT;
            }
            if tokio::time::Instant::now() >= self.deadline {
                return Err(SpeechError::TimedOut);
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(None)
    }

    async fn next_published(&mut self) -> Result<Option<Vec<f32>>, SpeechError> {
        let event = if self.patient {
            // The worker's lease ends the events of a job it can no longer run.
            Ok(self.subscription.next().await)
        } else {
            tokio::time::timeout_at(self.deadline, self.subscription.next()).await
        };
        match event {
            Err(_) => Err(SpeechError::TimedOut),
            Ok(Some(JobEvent::Audio(samples))) => Ok(Some(samples)),
            Ok(Some(JobEvent::Succeeded)) => {
                self.done = true;
                Ok(None)
            }
            Ok(Some(JobEvent::Failed(reason))) => {
                self.done = true;
                Err(SpeechError::Failed(reason))
            }
            // The worker lost the job (cancelled, deleted, or its lease ran out): what was
            // sent cannot be completed.
            Ok(None) => {
                self.done = true;
                Err(SpeechError::Failed(
                    "the generation was interrupted; please try again".into(),
                ))
            }
        }
    }

    /// All of the audio, once the job has succeeded.
    pub async fn whole(mut self) -> Result<Vec<f32>, SpeechError> {
        let mut samples = Vec::new();
        while let Some(piece) = self.next_audio().await? {
            samples.extend_from_slice(&piece);
        }
        Ok(samples)
    }
}

impl Drop for SpeechJob {
    fn drop(&mut self) {
        if self.done || !self.cancel_when_dropped {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let state = self.state.clone();
        let org = self.generation.org_id.clone();
        let id = self.generation.id.clone();
        runtime.spawn(async move {
            match resonance_service::generations::cancel(
                state.db.as_ref(),
                &state.cancellations,
                &org,
                &id,
            )
            .await
            {
                Ok(_) => tracing::info!(generation = %id, "the client went away; generation cancelled"),
                // It finished meanwhile.
                Err(DbError::Conflict(_) | DbError::NotFound(_)) => {}
                Err(e) => tracing::warn!(generation = %id, error = %e, "cannot cancel an abandoned generation"),
            }
        });
    }
}

fn failure(generation: &Generation) -> SpeechError {
    SpeechError::Failed(match generation.status {
        GenerationStatus::Cancelled => "the generation was cancelled".into(),
        _ => generation
            .failure_reason
            .clone()
            .unwrap_or_else(|| "speech synthesis failed".into()),
    })
}

/// Checks a requested speed (1.0 plays as synthesized) against the range `stretch` takes.
pub fn check_speed(speed: f64) -> Result<f64, SpeedOutOfRange> {
    // `stretch` checks the range before anything else; nothing is stretched here.
    stretch(&[], SOURCE_RATE, speed).map(|_| speed)
}

/// Plays audio `speed` times faster (pitch kept), piece by piece.
pub struct Speed {
    speed: f64,
    pending: Vec<f32>,
}

impl Speed {
    pub fn new(speed: f64) -> Self {
        Self {
            speed,
            pending: Vec::new(),
        }
    }

    pub fn push(&mut self, samples: Vec<f32>) -> Vec<f32> {
        if self.speed == 1.0 {
            return samples;
        }
        self.pending.extend_from_slice(&samples);
        if self.pending.len() < STRETCH_PIECE {
            return Vec::new();
        }
        self.flush()
    }

    pub fn flush(&mut self) -> Vec<f32> {
        let piece = std::mem::take(&mut self.pending);
        stretch(&piece, SOURCE_RATE, self.speed).expect("the speed was checked")
    }
}

/// The whole audio at `speed` in `format`.
pub async fn encode_whole(samples: Vec<f32>, format: OutputFormat, speed: f64) -> Vec<u8> {
    tokio::task::spawn_blocking(move || {
        let samples = stretch(&samples, SOURCE_RATE, speed).expect("the speed was checked");
        resonance_audio::encode(&samples, format)
    })
    .await
    .expect("encoding does not panic")
}

/// How streamed audio is framed on the wire.
pub trait Framing: Send + 'static {
    /// Wraps encoded audio bytes.
    fn audio(&mut self, encoded: Vec<u8>) -> Bytes;
    /// What ends a stream whose job succeeded, if anything.
    fn done(&mut self) -> Option<Bytes>;
}

/// The encoded audio as it is, one file.
pub struct RawAudio;

impl Framing for RawAudio {
    fn audio(&mut self, encoded: Vec<u8>) -> Bytes {
        encoded.into()
    }

    fn done(&mut self) -> Option<Bytes> {
        None
    }
}

/// Streams the job's audio: waits for its first piece (so that a job failing at once is
/// still answered with an error status), then answers 200 and sends the rest as it comes.
/// A failure after that ends the body early; a client that goes away drops the job
/// (which cancels it unless it is kept). The `history-item-id` header names the generation.
pub async fn stream<F: Framing>(
    job: SpeechJob,
    format: OutputFormat,
    speed: f64,
    content_type: &str,
    framing: F,
) -> Result<Response, SpeechError> {
    let history_item = job.id().to_string();
    let mut response = stream_audio(job, format, speed, content_type, framing).await?;
    response.headers_mut().insert(
        header::HeaderName::from_static("history-item-id"),
        header::HeaderValue::from_str(&history_item).expect("ids are ASCII"),
    );
    Ok(response)
}

/// [`stream`] without naming the generation.
pub async fn stream_audio<F: Framing>(
    mut job: SpeechJob,
    format: OutputFormat,
    speed: f64,
    content_type: &str,
    mut framing: F,
) -> Result<Response, SpeechError> {
    let first = job.next_audio().await?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::spawn(async move {
        let mut encoder = StreamEncoder::new(format);
        let mut speed = Speed::new(speed);
        let mut piece = first;
        loop {
            let Some(samples) = piece else {
                let mut encoded = encoder.push(&speed.flush());
                encoded.extend(encoder.finish());
                let mut out = vec![framing.audio(encoded)];
                out.extend(framing.done());
                for bytes in out {
                    if sender.send(Ok(bytes)).await.is_err() {
                        return;
                    }
                }
                return;
            };
            let encoded = encoder.push(&speed.push(samples));
            if !encoded.is_empty() && sender.send(Ok(framing.audio(encoded))).await.is_err() {
                return;
            }
            let next = tokio::select! {
                next = job.next_audio() => next,
                // The client went away while the job was still making the next piece.
                () = sender.closed() => return,
            };
            piece = match next {
                Ok(piece) => piece,
                Err(e) => {
                    tracing::warn!(error = %e, "a streamed generation failed");
                    let _ = sender.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
        }
    });
    Ok((
        [(header::CONTENT_TYPE, content_type.to_string())],
        Body::from_stream(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))),
    )
        .into_response())
}
