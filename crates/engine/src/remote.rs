//! Client for a Resonance inference service: `POST {url}/generate` with
//! header `x-api-key` and a JSON body, WAV back. The service reads the voice's
//! reference audio from the shared bucket by its object key (`voice_key`), so a
//! remote engine needs Resonance configured with that same S3 bucket.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::{EngineError, SAMPLE_RATE, Speech, SpeechEngine, SynthesisRequest};

pub struct RemoteEngine {
    client: reqwest::Client,
    generate_url: String,
    api_key: String,
    slots: Semaphore,
}

#[derive(Serialize)]
struct GenerateBody<'a> {
    prompt: &'a str,
    voice_key: &'a str,
    temperature: f64,
    top_p: f64,
    top_k: u32,
    repetition_penalty: f64,
    norm_loudness: bool,
}

impl RemoteEngine {
    /// `concurrency` bounds the requests in flight to the service (it runs up to 10 per
    /// GPU container).
    pub fn new(base_url: &str, api_key: &str, concurrency: usize) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .expect("a TLS-capable HTTP client builds");
        Self {
            client,
            generate_url: format!("{}/generate", base_url.trim_end_matches('/')),
            api_key: api_key.to_string(),
            slots: Semaphore::new(concurrency.max(1)),
        }
    }
}

#[async_trait]
impl SpeechEngine for RemoteEngine {
    fn name(&self) -> &str {
        "remote"
    }

    async fn synthesize(&self, request: SynthesisRequest) -> Result<Speech, EngineError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| EngineError::ShutDown)?;
        let p = &request.params;
        let body = GenerateBody {
            prompt: &request.text,
            voice_key: request.voice.reference.as_str(),
            temperature: p.temperature(),
            top_p: p.top_p(),
            top_k: p.top_k(),
            repetition_penalty: p.repetition_penalty(),
            // Every voice is conditioned on its clip normalized to -27 LUFS.
            norm_loudness: true,
        };
        let response = self
            .client
            .post(&self.generate_url)
            .header("x-api-key", &self.api_key)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                EngineError::Unavailable(format!("cannot reach the inference service: {e}"))
            })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            EngineError::Unavailable(format!("inference service response cut short: {e}"))
        })?;
        if !status.is_success() {
            let detail = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
            return Err(match status.as_u16() {
                401 | 403 => EngineError::Unavailable(format!(
                    "the inference service refused the API key: {detail}"
                )),
                400 => EngineError::VoiceUnavailable(detail),
                422 => EngineError::InvalidRequest(detail),
                _ => EngineError::Failed(format!("inference service answered {status}: {detail}")),
            });
        }
        let audio = resonance_audio::decode(&bytes, Some("audio/wav")).map_err(|e| {
            EngineError::Failed(format!("inference service returned unreadable audio: {e}"))
        })?;
        if audio.sample_rate != SAMPLE_RATE {
            return Err(EngineError::Failed(format!(
                "inference service returned {} Hz audio; expected {SAMPLE_RATE} Hz",
                audio.sample_rate
            )));
        }
        Ok(Speech {
            samples: audio.samples,
        })
    }
}
