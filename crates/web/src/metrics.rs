//! `/metrics` for operators, in the Prometheus text format (version 0.0.4): requests by
//! route and status with latency histograms, generation jobs by status, synthesis speed and
//! first-audio latency, the model's state and the Polar outbox backlog.
//!
//! The endpoint is off unless a token is configured, and then answers only requests that
//! send it as `Authorization: Bearer <token>`. Request and synthesis figures count from
//! this process's start; jobs and the outbox are read from the database at each scrape.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use resonance_service::generations::worker::SynthesisTimings;

use crate::auth::secrets::secrets_equal;
use crate::{ApiError, AppState};

/// Upper bounds of the latency histograms' buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds of the real-time factor histogram's buckets (seconds of compute per second
/// of audio).
const RTF_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];

#[derive(Clone, Default)]
struct Histogram {
    /// Observations at most each bound, not cumulative; the last is above every bound.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        let bucket = bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let separator = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in bounds.iter().enumerate() {
            cumulative += self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{separator}le=\"{bound}\"}} {cumulative}"
            );
        }
        let total: u64 = self.counts.iter().sum();
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{separator}le=\"+Inf\"}} {total}"
        );
        let braces = |labels: &str| {
            if labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {total}", braces(labels));
    }
}

/// What this process has counted since it started.
#[derive(Default)]
struct Counters {
    /// By (method, route, status).
    requests: BTreeMap<(String, String, u16), u64>,
    /// By (method, route).
    latency: BTreeMap<(String, String), Histogram>,
    real_time_factor: Histogram,
    first_audio: Histogram,
}

fn counters() -> &'static Mutex<Counters> {
    static COUNTERS: OnceLock<Mutex<Counters>> = OnceLock::new();
    COUNTERS.get_or_init(Mutex::default)
}

/// Counts a finished synthesis (a generation worker's [`SynthesisTimings`]).
pub fn record_synthesis(timings: SynthesisTimings) {
    let SynthesisTimings {
        compute,
        audio,
        first_audio,
    } = timings;
    let mut counters = counters().lock().expect("metrics lock");
    if !audio.is_zero() {
        let rtf = compute.as_secs_f64() / audio.as_secs_f64();
        counters.real_time_factor.observe(&RTF_BUCKETS, rtf);
    }
    counters
        .first_audio
        .observe(&LATENCY_BUCKETS, first_audio.as_secs_f64());
}

/// Middleware on every matched route: counts the request by its route pattern (not its
/// path, so that ids do not multiply the series) and status, and times it.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(String::new, |path| path.as_str().to_string());
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let mut counters = counters().lock().expect("metrics lock");
    *counters
        .requests
        .entry((method.clone(), route.clone(), response.status().as_u16()))
        .or_default() += 1;
    counters
        .latency
        .entry((method, route))
        .or_default()
        .observe(&LATENCY_BUCKETS, seconds);
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.metrics_token.as_deref() else {
        return ApiError::NotFound("page").into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if !presented.is_some_and(|presented| secrets_equal(presented, token)) {
        return ApiError::Unauthenticated.into_response();
    }
    match render(&state).await {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn render(state: &AppState) -> Result<String, ApiError> {
    let jobs = state.db.generation_status_counts().await?;
    let outbox = state.db.undelivered_usage_count().await?;
    let model = state.model.state();
    let mut out = String::new();

    out.push_str(
        "# HELP resonance_http_requests_total Requests answered, by method, route and status.\n\
         # TYPE resonance_http_requests_total counter\n",
    );
    let counters = counters().lock().expect("metrics lock");
    for ((method, route, status), count) in &counters.requests {
        let _ = writeln!(
            out,
            "resonance_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
            escape(route)
        );
    }
    out.push_str(
        "# HELP resonance_http_request_duration_seconds Time to answer, by method and route.\n\
         # TYPE resonance_http_request_duration_seconds histogram\n",
    );
    for ((method, route), histogram) in &counters.latency {
        histogram.write(
            &mut out,
            "resonance_http_request_duration_seconds",
            &format!("method=\"{method}\",route=\"{}\"", escape(route)),
            &LATENCY_BUCKETS,
        );
    }
    out.push_str(
        "# HELP resonance_synthesis_real_time_factor Seconds of synthesis per second of audio, \
         per generation run by this process.\n\
         # TYPE resonance_synthesis_real_time_factor histogram\n",
    );
    counters.real_time_factor.write(
        &mut out,
        "resonance_synthesis_real_time_factor",
        "",
        &RTF_BUCKETS,
    );
    out.push_str(
        "# HELP resonance_synthesis_first_audio_seconds Seconds from a worker starting a \
         generation to its first audio.\n\
         # TYPE resonance_synthesis_first_audio_seconds histogram\n",
    );
    counters.first_audio.write(
        &mut out,
        "resonance_synthesis_first_audio_seconds",
        "",
        &LATENCY_BUCKETS,
    );
    drop(counters);

    out.push_str(
        "# HELP resonance_generations Generation jobs in the database, by status.\n\
         # TYPE resonance_generations gauge\n",
    );
    for (status, count) in jobs {
        let _ = writeln!(
            out,
            "resonance_generations{{status=\"{}\"}} {count}",
            status.as_str()
        );
    }
    out.push_str(
        "# HELP resonance_model_state The speech model's state in this process: 1 for the \
         current one.\n\
         # TYPE resonance_model_state gauge\n",
    );
    for candidate in resonance_service::model_status::ModelState::ALL {
        let _ = writeln!(
            out,
            "resonance_model_state{{state=\"{}\"}} {}",
            candidate.as_str(),
            u8::from(candidate == model)
        );
    }
    let _ = writeln!(
        out,
        "# HELP resonance_voice_samples_cancelled_total Voice uploads whose decoding stopped \
         because the client disconnected.\n\
         # TYPE resonance_voice_samples_cancelled_total counter\n\
         resonance_voice_samples_cancelled_total {}",
        resonance_service::voices::samples_cancelled()
    );
    let _ = writeln!(
        out,
        "# HELP resonance_usage_outbox_backlog Usage events not yet delivered to Polar.\n\
         # TYPE resonance_usage_outbox_backlog gauge\n\
         resonance_usage_outbox_backlog {outbox}"
    );
    Ok(out)
}

/// A label value as the text format needs it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let mut histogram = Histogram::default();
        for value in [0.2, 0.7, 0.7, 40.0] {
            histogram.observe(&[0.5, 1.0], value);
        }
        let mut out = String::new();
        histogram.write(&mut out, "x", "route=\"/a\"", &[0.5, 1.0]);
        assert_eq!(
            out,
            "x_bucket{route=\"/a\",le=\"0.5\"} 1\n\
             x_bucket{route=\"/a\",le=\"1\"} 3\n\
             x_bucket{route=\"/a\",le=\"+Inf\"} 4\n\
             x_sum{route=\"/a\"} 41.6\n\
             x_count{route=\"/a\"} 4\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
