//! A tone engine whose first call answers at once and every later one only when the test
//! allows it: a job of several chunks then stops, part spoken, for as long as a test looks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use resonance_engine::{EngineError, Speech, SpeechEngine, SynthesisRequest};
use tokio::sync::Semaphore;

use super::tone::ToneEngine;

pub struct GatedEngine {
    tone: ToneEngine,
    later_calls: Semaphore,
    calls: AtomicUsize,
}

impl Default for GatedEngine {
    fn default() -> Self {
        Self {
            tone: ToneEngine::default(),
            later_calls: Semaphore::new(0),
            calls: AtomicUsize::new(0),
        }
    }
}

impl GatedEngine {
    /// Lets `calls` more calls through.
    pub fn release(&self, calls: usize) {
        self.later_calls.add_permits(calls);
    }

    /// Calls begun so far, the waiting one included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Waits until a call waits at the gate, the first chunk's audio published.
    pub async fn gated(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.calls() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "no second chunk reached the engine"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[async_trait]
impl SpeechEngine for GatedEngine {
    fn name(&self) -> &str {
        "gated tone"
    }

    async fn synthesize(&self, request: SynthesisRequest) -> Result<Speech, EngineError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) > 0 {
            self.later_calls.acquire().await.unwrap().forget();
        }
        self.tone.synthesize(request).await
    }
}
