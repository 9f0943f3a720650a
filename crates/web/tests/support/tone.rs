//! The deterministic engine of the generation tests: a tone as long as the text.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use resonance_domain::SpeechModel;
use resonance_engine::{EngineError, SAMPLE_RATE, Speech, SpeechEngine, SynthesisRequest};

/// Samples per character of text.
pub const SAMPLES_PER_CHAR: usize = 240;

/// A 220 Hz tone of [`SAMPLES_PER_CHAR`] samples per character. Text containing `[fail]`
/// fails, `[outage]` finds the engine unavailable; text containing `[stall]` never
/// finishes the first time it is seen.
#[derive(Default)]
pub struct ToneEngine {
    pub spoken: Mutex<Vec<String>>,
    /// The seed of each request spoken, in order.
    pub seeds: Mutex<Vec<u64>>,
    /// The model of each request spoken, in order.
    pub models: Mutex<Vec<SpeechModel>>,
    pub stalled_once: Mutex<bool>,
}

pub fn tone(chars: usize) -> Vec<f32> {
    (0..chars * SAMPLES_PER_CHAR)
        .map(|i| 0.5 * (i as f32 * 220.0 * std::f32::consts::TAU / SAMPLE_RATE as f32).sin())
        .collect()
}

/// A server offering `models` whose worker speaks with a new tone engine.
pub async fn tone_app(models: &[SpeechModel]) -> (crate::support::TestApp, Arc<ToneEngine>) {
    let engine = Arc::new(ToneEngine::default());
    let app = crate::support::TestApp::builder()
        .models(models)
        .engine(engine.clone())
        .spawn()
        .await;
    (app, engine)
}

impl ToneEngine {
    /// Waits until some worker is stuck on a `[stall]` text.
    pub async fn stalled(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !*self.stalled_once.lock().unwrap() {
            assert!(
                std::time::Instant::now() < deadline,
                "no worker reached the engine"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn spoken(&self) -> Vec<String> {
        self.spoken.lock().unwrap().clone()
    }

    pub fn seeds(&self) -> Vec<u64> {
        self.seeds.lock().unwrap().clone()
    }
}

#[async_trait]
impl SpeechEngine for ToneEngine {
    fn name(&self) -> &str {
        "tone"
    }

    async fn synthesize(&self, request: SynthesisRequest) -> Result<Speech, EngineError> {
        if request.text.contains("[fail]") {
            return Err(EngineError::Failed(
                "asked to fail: secret internal detail".into(),
            ));
        }
        if request.text.contains("[outage]") {
            return Err(EngineError::Unavailable(
                "asked to be down: secret internal detail".into(),
            ));
        }
        let stall = request.text.contains("[stall]")
            && !std::mem::replace(&mut *self.stalled_once.lock().unwrap(), true);
        if stall {
            std::future::pending::<()>().await;
        }
        self.spoken.lock().unwrap().push(request.text.clone());
        self.seeds.lock().unwrap().push(request.seed);
        self.models.lock().unwrap().push(request.params.model());
        Ok(Speech {
            samples: tone(request.text.chars().count()),
        })
    }
}
