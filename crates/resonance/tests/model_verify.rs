//! `resonance model verify`: it fails when it checked nothing (an empty or a wrong
//! directory, saying what it read and what it expected) and when a reference tensor
//! holds a NaN.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use candle_core::{Device, Tensor};

fn verify(fixtures: &Path) -> Output {
    support::resonance()
        .args(["model", "verify", "--fixtures"])
        .arg(fixtures)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that verify failed, checked nothing, and said why.
fn assert_nothing_checked(out: &Output, dir: &Path) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("pass"), "{stdout}");
    assert!(stderr.contains("no check ran"), "{stderr}");
    assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
    for expected in ["<module>.safetensors", "<module>.json", "t3_turbo", "hift"] {
        assert!(stderr.contains(expected), "{expected} not in {stderr}");
    }
}

#[test]
fn an_empty_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    assert_nothing_checked(&verify(dir.path()), dir.path());
}

#[test]
fn a_directory_without_fixtures_fails() {
    // A model folder is not a fixture directory.
    let dir = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(dir.path()).unwrap();
    assert_nothing_checked(&verify(dir.path()), dir.path());

    let missing = dir.path().join("no-such-directory");
    let out = verify(&missing);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "fixture directory {} does not exist",
            missing.display()
        )),
        "{stderr}"
    );
}

/// Copies the repository's `mel_24k` fixture into `dir`, with `plant` applied to
/// the reference mel's values.
fn mel_fixture(dir: &Path, plant: impl Fn(&mut [f32])) {
    let source = chatterbox::parity::fixtures::fixture_dir();
    std::fs::copy(source.join("mel_24k.json"), dir.join("mel_24k.json")).unwrap();
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(source.join("mel_24k.safetensors"), &Device::Cpu).unwrap();
    let mel = &tensors["fixture.mel"];
    let mut values: Vec<f32> = mel.flatten_all().unwrap().to_vec1().unwrap();
    plant(&mut values);
    let planted = Tensor::from_vec(values, mel.shape(), &Device::Cpu).unwrap();
    tensors.insert("fixture.mel".into(), planted);
    candle_core::safetensors::save(&tensors, dir.join("mel_24k.safetensors")).unwrap();
}

#[test]
fn a_nan_in_a_reference_tensor_fails() {
    let dir = tempfile::tempdir().unwrap();
    mel_fixture(dir.path(), |_| {});
    let out = verify(dir.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("mel_24k") && stdout.contains("pass"),
        "{stdout}"
    );

    mel_fixture(dir.path(), |values| {
        let middle = values.len() / 2;
        values[middle] = f32::NAN;
    });
    let out = verify(dir.path());
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("mel_24k") && l.contains(" mel "))
        .unwrap_or_else(|| panic!("no mel row in {stdout}"));
    assert!(row.contains("FAIL"), "{row}");
    assert!(row.contains("the reference holds NaN at element"), "{row}");
}
