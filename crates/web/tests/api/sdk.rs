//! The official Python SDKs (`openai`, `elevenlabs`, pinned in `tests/sdk/requirements.txt`)
//! run against the real server with the test engine: the scripts in `tests/sdk/` exit
//! non-zero on the first failed check. Needs `python3` with `venv` (the SDKs are installed
//! into `<target dir>/sdk-venv` on first use). The encoded audio they receive is decoded
//! here, with Resonance's own decoder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::support::TestApp;
use crate::support::tone::ToneEngine;

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

/// `<target dir>/sdk-venv` with the pinned SDKs, created on first use and reused while
/// the requirements are unchanged.
fn venv() -> PathBuf {
    // The test binary lies in `<target dir>/<profile>/deps/`.
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the target directory")
        .to_path_buf();
    let venv = target.join("sdk-venv");
    let requirements = sdk_dir().join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    let stamp = venv.join("installed-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return venv;
    }
    let run = |command: &mut Command| {
        let status = command
            .status()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        assert!(status.success(), "{command:?} failed: {status}");
    };
    run(Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg("--clear")
        .arg(&venv));
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements));
    std::fs::write(&stamp, wanted).unwrap();
    venv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_sdks_work_against_resonance() {
    let python = venv().join("bin/python");
    let app = TestApp::builder()
        .engine(Arc::new(ToneEngine::default()))
        .spawn()
        .await;
    let admin = app.signed_up("admin@sdk.example").await;
    let org = app.create_org(&admin, "SDK").await;
    let voice = app.upload_voice(&admin, "Narrator").await;
    let key = app.create_api_key(&admin, &org).await;
    let recording = tempfile::NamedTempFile::new().unwrap();
    let samples = resonance_testkit::audio::speech_like(11.0, 0.5, 5);
    std::fs::write(
        recording.path(),
        resonance_testkit::audio::encode_as(&samples, resonance_testkit::audio::UploadFormat::Wav),
    )
    .unwrap();

    for script in ["openai_sdk.py", "elevenlabs_sdk.py"] {
        let decode_dir = tempfile::tempdir().unwrap();
        let output = tokio::process::Command::new(&python)
            .arg(sdk_dir().join(script))
            .env("RESONANCE_BASE_URL", &app.base_url)
            .env("RESONANCE_API_KEY", &key)
            .env("RESONANCE_VOICE_ID", &voice)
            .env("RESONANCE_VOICE_NAME", "Narrator")
            .env("RESONANCE_RECORDING", recording.path())
            .env("RESONANCE_DECODE_DIR", decode_dir.path())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{script} failed:\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("ok "),
            "{script} checked nothing:\n{stdout}"
        );
        println!("{script}:\n{stdout}");
        let decoded = check_saved_audio(decode_dir.path());
        assert!(decoded > 0, "{script} saved no encoded audio");
    }
}

/// What `audio_check.py` saved for decoding: a file and its expected rate and duration.
#[derive(serde::Deserialize)]
struct SavedAudio {
    file: String,
    label: String,
    rate: u32,
    seconds: f64,
    tolerance: f64,
}

/// Decodes every file listed in `dir/expected.jsonl` and checks its sample rate and
/// duration; returns how many there were.
fn check_saved_audio(dir: &Path) -> usize {
    let expected = std::fs::read_to_string(dir.join("expected.jsonl")).unwrap_or_default();
    let saved: Vec<SavedAudio> = expected
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    for audio in &saved {
        let bytes = std::fs::read(dir.join(&audio.file)).unwrap();
        // Labels start with the format's name, e.g. `mp3_22050_32` or `wav at speed 2`.
        let format_name = audio.label.split_whitespace().next().unwrap_or_default();
        let format = resonance_audio::OutputFormat::from_name(format_name).unwrap();
        let decoded = resonance_audio::decode(&bytes, Some(format.content_type()))
            .unwrap_or_else(|e| panic!("{}: {e}", audio.label));
        let duration = decoded.duration_secs();
        assert_eq!(decoded.sample_rate, audio.rate, "{}", audio.label);
        assert!(
            (duration - audio.seconds).abs() <= audio.tolerance,
            "{}: {duration:.3} s, expected {:.3} s",
            audio.label,
            audio.seconds
        );
        println!(
            "ok {}: {} Hz, {duration:.3} s",
            audio.label, decoded.sample_rate
        );
    }
    saved.len()
}
