//! Timing streamed responses, for the benchmarks.

use std::time::Instant;

/// Seconds to the first body byte, and to the end of the body.
pub async fn first_byte_and_total(request: reqwest::RequestBuilder) -> (f64, f64) {
    let start = Instant::now();
    let mut response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let mut first = None;
    while let Some(bytes) = response.chunk().await.unwrap() {
        if !bytes.is_empty() && first.is_none() {
            first = Some(start.elapsed().as_secs_f64());
        }
    }
    (first.expect("some audio"), start.elapsed().as_secs_f64())
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
