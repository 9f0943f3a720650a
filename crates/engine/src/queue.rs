//! The request queue an in-process engine owns (the mistral.rs shape): callers
//! send a request and await the reply, receiving its audio as it is made; a dispatcher
//! runs at most `concurrency` syntheses at a time on blocking threads, so no runtime
//! thread ever computes.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::{AudioSender, EngineError, Speech, SpeechEngine, SynthesisRequest};

/// Compute-bound synthesis, called on a blocking thread.
pub trait Synthesizer: Send + Sync + 'static {
    /// Speaks the request, handing each piece of audio to `audio` as soon as it is
    /// final. `audio` returns false once nobody listens; the synthesis may then stop.
    fn synthesize(
        &self,
        request: &SynthesisRequest,
        audio: &mut dyn FnMut(Vec<f32>) -> bool,
    ) -> Result<(), EngineError>;
}

struct Job {
    request: SynthesisRequest,
    audio: AudioSender,
    reply: oneshot::Sender<Result<(), EngineError>>,
}

pub struct QueuedEngine {
    name: String,
    jobs: mpsc::Sender<Job>,
}

impl QueuedEngine {
    /// Starts the dispatcher. `capacity` bounds the requests waiting in the queue;
    /// callers beyond it wait for room.
    pub fn start(
        name: &str,
        synthesizer: Arc<dyn Synthesizer>,
        concurrency: usize,
        capacity: usize,
    ) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(capacity.max(1));
        let slots = Arc::new(Semaphore::new(concurrency.max(1)));
        tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                if job.reply.is_closed() {
                    continue;
                }
                let synthesizer = synthesizer.clone();
                tokio::task::spawn_blocking(move || {
                    let _slot = slot;
                    let Job {
                        request,
                        audio,
                        reply,
                    } = job;
                    let result =
                        synthesizer.synthesize(&request, &mut |piece| audio.send(piece).is_ok());
                    let _ = reply.send(result);
                });
            }
        });
        Self {
            name: name.to_string(),
            jobs,
        }
    }
}

#[async_trait]
impl SpeechEngine for QueuedEngine {
    fn name(&self) -> &str {
        &self.name
    }

    async fn synthesize(&self, request: SynthesisRequest) -> Result<Speech, EngineError> {
        let (audio, mut pieces) = mpsc::unbounded_channel();
        self.synthesize_streaming(request, audio).await?;
        let mut samples = Vec::new();
        while let Ok(piece) = pieces.try_recv() {
            samples.extend(piece);
        }
        Ok(Speech { samples })
    }

    async fn synthesize_streaming(
        &self,
        request: SynthesisRequest,
        audio: AudioSender,
    ) -> Result<(), EngineError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                request,
                audio,
                reply,
            })
            .await
            .map_err(|_| EngineError::ShutDown)?;
        answer
            .await
            .map_err(|_| EngineError::Failed("the synthesis thread panicked".into()))?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use resonance_domain::{GenerationParams, VoiceId};
    use resonance_storage::ObjectKey;

    use super::*;
    use crate::VoiceRef;

    /// Sleeps (blocking) and records how many run at once.
    struct Sleeper {
        running: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Synthesizer for Sleeper {
        fn synthesize(
            &self,
            request: &SynthesisRequest,
            audio: &mut dyn FnMut(Vec<f32>) -> bool,
        ) -> Result<(), EngineError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            self.running.fetch_sub(1, Ordering::SeqCst);
            if request.text == "fail" {
                return Err(EngineError::Failed("asked to fail".into()));
            }
            // Two pieces, so that joining them is tested too.
            let samples = vec![0.0; request.text.len()];
            let (first, second) = samples.split_at(samples.len() / 2);
            audio(first.to_vec());
            audio(second.to_vec());
            Ok(())
        }
    }

    fn request(text: &str) -> SynthesisRequest {
        let id = VoiceId::new();
        SynthesisRequest {
            text: text.into(),
            voice: VoiceRef {
                reference: ObjectKey::system_voice(&id),
                id,
            },
            params: GenerationParams::default(),
            seed: 0,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn runs_at_most_concurrency_at_once_without_blocking_the_runtime() {
        let sleeper = Arc::new(Sleeper {
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        });
        let engine = Arc::new(QueuedEngine::start("test", sleeper.clone(), 2, 16));
        let tasks: Vec<_> = (1..=6)
            .map(|n| {
                let engine = engine.clone();
                tokio::spawn(async move { engine.synthesize(request(&"x".repeat(n))).await })
            })
            .collect();
        // A single-threaded runtime still makes progress while syntheses block.
        let ticker = tokio::spawn(async {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        ticker.await.unwrap();
        for (n, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap().samples.len(), n + 1);
        }
        assert_eq!(sleeper.peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn errors_reach_the_caller() {
        let sleeper = Arc::new(Sleeper {
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        });
        let engine = QueuedEngine::start("test", sleeper, 1, 4);
        assert_eq!(
            engine.synthesize(request("fail")).await,
            Err(EngineError::Failed("asked to fail".into()))
        );
    }
}
