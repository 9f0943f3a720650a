//! Hostile voice uploads: broken headers of every container we accept, WAV and FLAC
//! headers declaring impossible sample rates and channel counts, and tiny files that decode
//! to hours. The decode path answers each with a clean error (a 422 naming the problem over
//! HTTP), never a panic, and stops when nobody waits for it any more.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::TestApp;
use reqwest::StatusCode;
use resonance_audio::voice_sample::{self, MAX_SECONDS, SAMPLE_RATE, SampleError};
use resonance_audio::{Bounds, DecodeError, decode_bounded};
use resonance_testkit::hostile_audio::{
    broken_containers, flac_declaring_rate, impossible_wavs, silent_flac, wav_at,
    webm_with_each_byte_replaced,
};
use serde_json::Value;

fn bounds(cancelled: &AtomicBool) -> Bounds<'_> {
    Bounds {
        sample_rate: SAMPLE_RATE,
        max_secs: MAX_SECONDS,
        cancelled,
    }
}

#[test]
fn broken_headers_of_every_container_get_an_answer() {
    let not_cancelled = AtomicBool::new(false);
    let uploads = broken_containers(2.0);
    assert!(uploads.len() > 200);
    for upload in &uploads {
        // Broken files may still hold some decodable audio; all that matters is a result.
        let _ = decode_bounded(
            &upload.bytes,
            Some(upload.content_type),
            &bounds(&not_cancelled),
        );
    }
    for upload in impossible_wavs() {
        let result = decode_bounded(
            &upload.bytes,
            Some(upload.content_type),
            &bounds(&not_cancelled),
        );
        // Lying sizes decode what is there (half a second); the rest are impossible.
        let lies_about_size = upload.name.contains("sizes claim");
        assert!(
            result.is_err() || lies_about_size,
            "{} decoded",
            upload.name
        );
    }
}

/// No decoder panics on a broken header of any container, nor on any byte of a WebM
/// recording's first 256 set to 0 or 0xFF: the decode path refuses what it can check
/// itself before handing a file to symphonia, and reads Matroska itself.
#[test]
fn broken_headers_panic_no_decoder() {
    let this_test = std::thread::current().id();
    let panics = Arc::new(std::sync::Mutex::new(Vec::new()));
    type Hook = dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync;
    let previous: Arc<Hook> = Arc::from(std::panic::take_hook());
    let (seen, others) = (Arc::clone(&panics), Arc::clone(&previous));
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == this_test {
            seen.lock().unwrap().push(info.to_string());
        } else {
            others(info);
        }
    }));
    let not_cancelled = AtomicBool::new(false);
    let mut uploads = broken_containers(2.0);
    uploads.extend(impossible_wavs());
    uploads.extend(webm_with_each_byte_replaced(2.0, 256));
    let mut panicked = Vec::new();
    for upload in &uploads {
        let _ = decode_bounded(
            &upload.bytes,
            Some(upload.content_type),
            &bounds(&not_cancelled),
        );
        if !panics.lock().unwrap().is_empty() {
            panicked.push((upload.name.clone(), panics.lock().unwrap().split_off(0)));
        }
    }
    std::panic::set_hook(Box::new(move |info| previous(info)));
    assert!(panicked.is_empty(), "{panicked:#?}");
}

#[test]
fn rates_outside_8_to_192_khz_are_named_in_the_error() {
    let not_cancelled = AtomicBool::new(false);
    for upload in impossible_wavs() {
        let rate = ["1 Hz", "7999 Hz", "200003 Hz", "4294967295 Hz"]
            .iter()
            .find(|rate| upload.name.ends_with(*rate));
        let Some(rate) = rate else { continue };
        let error = decode_bounded(&upload.bytes, None, &bounds(&not_cancelled)).unwrap_err();
        assert!(
            matches!(error, DecodeError::UnsupportedSampleRate { .. }),
            "{}: {error}",
            upload.name
        );
        let hz = rate.trim_end_matches(" Hz");
        assert!(error.to_string().contains(&format!("{hz} Hz")), "{error}");
        assert!(
            error.to_string().contains("between 8000 and 192000 Hz"),
            "{error}"
        );
    }
    // symphonia refuses a FLAC stream info this far out before we see it.
    let flac = flac_declaring_rate(655_350);
    let error = decode_bounded(&flac, Some("audio/flac"), &bounds(&not_cancelled)).unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::UnsupportedSampleRate { .. } | DecodeError::UnsupportedFormat
        ),
        "{error}"
    );
}

#[test]
fn a_small_file_that_decodes_to_hours_stops_at_the_limit() {
    let not_cancelled = AtomicBool::new(false);
    let flac = silent_flac(192_000, 3_600);
    assert!(flac.len() < 2_000_000, "{} bytes", flac.len());
    let error = decode_bounded(&flac, Some("audio/flac"), &bounds(&not_cancelled)).unwrap_err();
    assert!(matches!(error, DecodeError::TooLong { .. }), "{error}");
}

#[test]
fn decoding_stops_once_cancelled() {
    let flac = silent_flac(192_000, 290);
    let cancelled = Arc::new(AtomicBool::new(false));
    let raise = {
        let cancelled = Arc::clone(&cancelled);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            cancelled.store(true, Ordering::Relaxed);
        })
    };
    let result = voice_sample::prepare(&flac, Some("audio/flac"), &cancelled);
    raise.join().unwrap();
    assert!(
        matches!(
            result,
            Err(SampleError::Undecodable(DecodeError::Cancelled))
        ),
        "{result:?}"
    );
}

async fn upload(
    app: &TestApp,
    user: &crate::support::TestUser,
    bytes: Vec<u8>,
    content_type: &str,
) -> (StatusCode, Value) {
    let response = user
        .client
        .post(app.url("/api/voices?consent=true&name=Hostile"))
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(bytes)
        .send()
        .await
        .expect("a response, not a reset connection");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn hostile_uploads_get_a_422_naming_the_problem() {
    let app = TestApp::builder().spawn().await;
    let admin = app.signed_up("admin@example.com").await;
    app.create_org(&admin, "Acme").await;

    for hostile in impossible_wavs() {
        let (status, body) = upload(&app, &admin, hostile.bytes, hostile.content_type).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}: {body}",
            hostile.name
        );
        let code = body["error"]["code"].as_str().unwrap();
        if hostile.name.contains("sample rate") {
            assert_eq!(code, "UNSUPPORTED_SAMPLE_RATE", "{}", hostile.name);
        } else {
            assert!(
                [
                    "UNDECODABLE_AUDIO",
                    "UNSUPPORTED_SAMPLE_RATE",
                    "AUDIO_TOO_SHORT"
                ]
                .contains(&code),
                "{}: {body}",
                hostile.name
            );
        }
    }
    let (status, body) = upload(&app, &admin, flac_declaring_rate(655_350), "audio/flac").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, body) = upload(&app, &admin, silent_flac(192_000, 3_600), "audio/flac").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "AUDIO_TOO_LONG");

    // Uncommon rates inside the range are fine.
    for rate in [44_101, 191_999] {
        let (status, body) = upload(&app, &admin, wav_at(rate), "audio/wav").await;
        assert_eq!(status, StatusCode::CREATED, "{rate} Hz: {body}");
    }
}

/// A client that hangs up while its upload decodes stops the decoding: the server notices
/// the closed connection, drops the request, and the decoder sees that at its next packet.
#[tokio::test]
async fn an_upload_abandoned_while_it_decodes_stops_decoding() {
    const TOKEN: &str = "scrape-token-for-tests";
    let app = TestApp::builder().metrics_token(TOKEN).spawn().await;
    let admin = app.signed_up("admin@example.com").await;
    app.create_org(&admin, "Acme").await;
    let cancelled_so_far = || async {
        let metrics = reqwest::Client::new()
            .get(app.url("/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("resonance_voice_samples_cancelled_total "))
            .expect("the cancelled-samples counter")
            .parse::<u64>()
            .unwrap()
    };
    let before = cancelled_so_far().await;

    // Almost 5 minutes at 192 kHz: seconds of decoding and resampling.
    let abandoned = admin
        .client
        .post(app.url("/api/voices?name=Abandoned&consent=true"))
        .header(reqwest::header::CONTENT_TYPE, "audio/flac")
        .body(silent_flac(192_000, 290))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(
        abandoned.as_ref().is_err_and(|e| e.is_timeout()),
        "the upload was still decoding when the client left: {abandoned:?}"
    );

    let waited = std::time::Instant::now();
    while cancelled_so_far().await == before {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "decoding went on after the client left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let voices: Value = admin
        .client
        .get(app.url("/api/voices"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !voices.to_string().contains("Abandoned"),
        "no voice from the abandoned upload: {voices}"
    );
}
