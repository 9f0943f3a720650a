//! The voice upload's decode path (`voice_sample::prepare`: decode, resample to 24 kHz,
//! length and loudness checks) under hostile uploads: for each, the wall time, the answer
//! and the peak resident memory while it ran (`VmHWM`, reset before each case through
//! `/proc/self/clear_refs`), then the broken-container set as a whole.
//!
//! Run: `cargo bench -p resonance-web --bench decode_bounds` (release).

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use resonance_audio::voice_sample::{self, SampleError};
use resonance_testkit::hostile_audio::{
    HostileUpload, broken_containers, flac_declaring_rate, impossible_wavs, silent_flac, wav_at,
};

fn main() {
    let mut cases: Vec<HostileUpload> = impossible_wavs();
    cases.push(HostileUpload {
        name: "FLAC declaring 655350 Hz".into(),
        content_type: "audio/flac",
        bytes: flac_declaring_rate(655_350),
    });
    for (seconds, what) in [(3_600, "1 h"), (290, "290 s")] {
        cases.push(HostileUpload {
            name: format!("{what} of silence as FLAC at 192 kHz"),
            content_type: "audio/flac",
            bytes: silent_flac(192_000, seconds),
        });
    }
    for rate in [48_000, 44_101, 191_999] {
        cases.push(HostileUpload {
            name: format!("12 s of speech as WAV at {rate} Hz"),
            content_type: "audio/wav",
            bytes: wav_at(rate),
        });
    }
    println!("decode_bounds: case | input | time | peak RSS | answer");
    for case in &cases {
        reset_peak_rss();
        let started = Instant::now();
        let answer = prepare(case);
        let elapsed = started.elapsed();
        println!(
            "decode_bounds: {} | {} KB | {} | {} | {answer}",
            case.name,
            case.bytes.len() / 1024,
            millis(elapsed),
            peak_rss()
        );
    }

    let broken = broken_containers(12.0);
    reset_peak_rss();
    let mut slowest = (Duration::ZERO, String::new());
    let started = Instant::now();
    for case in &broken {
        let case_started = Instant::now();
        prepare(case);
        if case_started.elapsed() > slowest.0 {
            slowest = (case_started.elapsed(), case.name.clone());
        }
    }
    println!(
        "decode_bounds: {} broken containers (12 s each) | {} in all | slowest {} ({}) | {}",
        broken.len(),
        millis(started.elapsed()),
        millis(slowest.0),
        slowest.1,
        peak_rss()
    );
}

fn prepare(case: &HostileUpload) -> String {
    let not_cancelled = AtomicBool::new(false);
    match voice_sample::prepare(&case.bytes, Some(case.content_type), &not_cancelled) {
        Ok(sample) => format!("accepted ({:.1} s)", sample.duration_secs),
        Err(SampleError::Undecodable(e)) => format!("undecodable: {e}"),
        Err(e) => e.to_string(),
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// Starts a new peak: writing 5 to `clear_refs` resets `VmHWM` (Linux).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `VmHWM` of `/proc/self/status` (Linux only).
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or("peak RSS unknown".into(), |kib| {
            format!("peak RSS {:.1} MB", kib as f64 / 1024.0)
        })
}
