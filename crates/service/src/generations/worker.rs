//! Generation workers: claim a queued job, speak its text chunk by chunk while renewing
//! the lease, store the audio, then mark the job succeeded (recording its usage) in one
//! step. A worker that loses its job (lease expired, cancelled, deleted) stops and leaves
//! no audio behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use resonance_db::{Database, Generation};
use resonance_domain::GenerationStatus;
use resonance_engine::chunking::speak;
use resonance_engine::{EngineError, SAMPLE_RATE, SpeechEngine, VoiceRef};
use resonance_storage::{ObjectKey, Storage};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::cancellation::Cancellations;
use super::events::{JobEvent, JobEvents, Publisher};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How long a claim holds without a heartbeat; a dead worker's job is re-run after it.
    pub lease: Duration,
    /// How often a running job renews its lease.
    pub heartbeat: Duration,
    /// How often an idle worker looks for jobs it was not told about (jobs queued by
    /// another process).
    pub poll_interval: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// How long one job's synthesis took, for whoever counts it (the server's `/metrics`).
#[derive(Debug, Clone, Copy)]
pub struct SynthesisTimings {
    /// Time spent in the engine.
    pub compute: Duration,
    /// The length of the audio it made.
    pub audio: Duration,
    /// From the job's start until its first audio was ready.
    pub first_audio: Duration,
}

/// What a worker needs: the shared database and storage, the engine, the signal the API
/// raises when it queues a job, the hub where this process's streaming requests listen,
/// the registry through which this process's cancels reach it, and where to report each
/// job's timings.
#[derive(Clone)]
pub struct Worker {
    pub db: Arc<dyn Database>,
    pub storage: Storage,
    pub engine: Arc<dyn SpeechEngine>,
    pub new_jobs: Arc<Notify>,
    pub events: JobEvents,
    pub cancellations: Cancellations,
    pub settings: WorkerSettings,
    pub record_timings: Option<fn(SynthesisTimings)>,
}

impl Worker {
    /// Starts `count` workers named `{name_prefix}-{n}`; they run until aborted.
    pub fn spawn(&self, name_prefix: &str, count: usize) -> Vec<JoinHandle<()>> {
        (0..count)
            .map(|n| {
                let worker = self.clone();
                let name = format!("{name_prefix}-{n}");
                tokio::spawn(async move { worker.run(&name).await })
            })
            .collect()
    }

    /// Claims and runs jobs forever.
    pub async fn run(&self, name: &str) {
        loop {
            match self.db.claim_generation(name, self.settings.lease).await {
                Ok(Some(job)) => {
                    let span = tracing::info_span!("generation", id = %job.id, worker = name, attempt = job.attempts);
                    self.run_job(name, job).instrument(span).await
                }
                Ok(None) => {
                    let _ =
                        tokio::time::timeout(self.settings.poll_interval, self.new_jobs.notified())
                            .await;
                }
                Err(e) => {
                    tracing::warn!(worker = name, error = %e, "cannot claim generation jobs");
                    tokio::time::sleep(self.settings.poll_interval).await;
                }
            }
        }
    }

    async fn run_job(&self, worker: &str, job: Generation) {
        let progress = Arc::new(AtomicU8::new(0));
        let (lost_tx, mut lost) = watch::channel(false);
        // Dropped with this future, so a worker killed mid-job stops renewing its lease.
        let _heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
            self.db.clone(),
            job.clone(),
            worker.to_string(),
            self.settings.clone(),
            progress.clone(),
            lost_tx,
        )));
        let mut cancel = self.cancellations.register(&job.id);
        let publisher = self.events.claim(&job.id);
        let outcome = tokio::select! {
            outcome = self.speak_and_store(&job, &progress, &publisher) => Some(outcome),
            _ = lost.wait_for(|lost| *lost) => None,
            () = cancel.cancelled() => None,
        };
        let key = ObjectKey::generation(&job.org_id, &job.id);
        match outcome {
            None => {
                tracing::info!("the job was cancelled or taken over; stopping");
                self.discard_unless_succeeded(&job, &key).await;
            }
            Some(Err(reason)) => {
                tracing::warn!(%reason, "generation failed");
                match self.db.fail_generation(&job.id, worker, &reason).await {
                    Ok(true) => publisher.publish(JobEvent::Failed(reason)),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "cannot record the failure"),
                }
            }
            Some(Ok(())) => match self
                .db
                .complete_generation(&job.id, worker, key.as_str())
                .await
            {
                Ok(Some(_)) => {
                    tracing::info!("generation succeeded");
                    publisher.publish(JobEvent::Succeeded);
                }
                Ok(None) => self.discard_unless_succeeded(&job, &key).await,
                // The lease runs out and another worker stores the same key again.
                Err(e) => tracing::error!(error = %e, "cannot record the success"),
            },
        }
    }

    /// Synthesizes every chunk in order, publishing the audio as it becomes final, and
    /// stores the joined audio at the generation's key. The error is the reason shown to the
    /// user; no object is left behind on error.
    async fn speak_and_store(
        &self,
        job: &Generation,
        progress: &AtomicU8,
        publisher: &Publisher,
    ) -> Result<(), String> {
        let voice_id = job
            .voice_id
            .as_ref()
            .ok_or("the voice was deleted before the generation ran")?;
        let voice = match self.db.get_voice(&job.org_id, voice_id).await {
            Ok(voice) => voice,
            Err(resonance_db::DbError::NotFound(_)) => {
                return Err("the voice was deleted before the generation ran".into());
            }
            Err(e) => return Err(format!("the database is unavailable: {e}")),
        };
        let reference = voice
            .object_key
            .ok_or("the voice has no reference audio yet")?;
        let voice = VoiceRef {
            id: voice.id,
            reference: ObjectKey::parse(&reference)
                .map_err(|_| "the voice's reference audio could not be read")?,
        };
        // Queued before seeds were always chosen at queueing time.
        let seed = job.seed.map_or_else(rand::random, u64::from);
        let spoken = speak(
            self.engine.as_ref(),
            job.text.as_str(),
            &voice,
            job.params,
            seed,
            |step| {
                if !step.audio.is_empty() {
                    publisher.publish(JobEvent::Audio(step.audio.to_vec()));
                }
                // chunks_done <= chunks, so this is at most 99.
                progress.store(
                    (step.chunks_done * 99 / step.chunks) as u8,
                    Ordering::Relaxed,
                );
            },
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "the engine failed");
            user_reason(e)
        })?;
        let samples = spoken.samples;
        if let Some(record) = self.record_timings {
            record(SynthesisTimings {
                compute: spoken.compute,
                audio: Duration::from_secs_f64(samples.len() as f64 / f64::from(SAMPLE_RATE)),
                first_audio: spoken.first_audio,
            });
        }
        let wav = resonance_audio::wav::encode_wav_pcm16(&samples, SAMPLE_RATE);
        let key = ObjectKey::generation(&job.org_id, &job.id);
        if let Err(e) = self.storage.put(&key, Bytes::from(wav), "audio/wav").await {
            let _ = self.storage.delete(&key).await;
            tracing::error!(error = %e, "cannot store the generated audio");
            return Err("the audio could not be stored; please try again".into());
        }
        Ok(())
    }

    /// Deletes the audio this worker may have stored for a job it no longer holds, unless
    /// another worker has since finished the job with it (the key is the same).
    async fn discard_unless_succeeded(&self, job: &Generation, key: &ObjectKey) {
        let finished_by_another = matches!(
            self.db.get_generation(&job.org_id, &job.id).await,
            Ok(current) if current.status == GenerationStatus::Succeeded
        );
        if !finished_by_another && let Err(e) = self.storage.delete(key).await {
            tracing::warn!(error = %e, "cannot delete abandoned audio");
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease every `heartbeat` with the current progress; raises `lost` when the
/// worker no longer holds the job.
async fn heartbeat(
    db: Arc<dyn Database>,
    job: Generation,
    worker: String,
    settings: WorkerSettings,
    progress: Arc<AtomicU8>,
    lost: watch::Sender<bool>,
) {
    let mut ticks = tokio::time::interval(settings.heartbeat);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let progress = progress.load(Ordering::Relaxed);
        match db
            .heartbeat_generation(&job.id, &worker, settings.lease, progress)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                let _ = lost.send(true);
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the generation lease"),
        }
    }
}

/// The engine's error in words for the user, without internal detail.
fn user_reason(error: EngineError) -> String {
    match error {
        EngineError::InvalidRequest(detail) => format!("the text could not be spoken: {detail}"),
        EngineError::VoiceUnavailable(_) => "the voice's reference audio could not be read".into(),
        EngineError::Failed(_) => "speech synthesis failed; please try again".into(),
        EngineError::Unavailable(_) | EngineError::ShutDown => {
            "the speech engine is unavailable; please try again later".into()
        }
    }
}
