//! Fixtures laid out as the generator writes them at full size (`make_fixtures.py
//! --config full --save-full-weights --full-fixtures`): each module file holds only
//! its `fixture.*` tensors, its sidecar says `weights_included: false`, and the
//! weights are the checkpoint files beside them. Here the tiny fixtures, split the
//! same way, must pass every check.

use std::path::Path;

use chatterbox::checkpoint;
use chatterbox::parity::fixtures::fixture_dir;
use chatterbox::parity::{ModuleOutcome, modules, run_module};

/// Writes into `dir` the checkpoint files (the `turbo_e2e` fixture's weights
/// under their official names) and every fixture without its weights.
fn split_fixtures(dir: &Path) {
    chatterbox::testing::write_tiny_checkpoint(dir).unwrap();
    let source = fixture_dir();
    std::fs::copy(source.join("index.json"), dir.join("index.json")).unwrap();
    for (module, _) in modules() {
        // `turbo_e2e/conditionals` checks part of the `turbo_e2e` fixture.
        let fixture = module.split('/').next().unwrap_or(module);
        // Raw views: candle cannot load the bool tensors some fixtures hold.
        let bytes = std::fs::read(source.join(format!("{fixture}.safetensors"))).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let fixture_only: Vec<_> = file
            .tensors()
            .into_iter()
            .filter(|(name, _)| name.starts_with("fixture."))
            .collect();
        safetensors::serialize_to_file(
            fixture_only,
            None,
            &dir.join(format!("{fixture}.safetensors")),
        )
        .unwrap();
        let sidecar = source.join(format!("{fixture}.json"));
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(sidecar).unwrap()).unwrap();
        json["weights_included"] = false.into();
        std::fs::write(
            dir.join(format!("{fixture}.json")),
            serde_json::to_vec(&json).unwrap(),
        )
        .unwrap();
    }
}

#[test]
fn every_module_passes_with_the_weights_from_the_checkpoint_files() {
    let dir = tempfile::tempdir().unwrap();
    split_fixtures(dir.path());
    for (module, _) in modules() {
        match run_module(dir.path(), module) {
            ModuleOutcome::Checked(checks) => {
                assert!(!checks.is_empty(), "{module}: no checks ran");
                for c in checks {
                    assert!(
                        c.passed(),
                        "{module}.{}: {:e} > {:e}",
                        c.tensor,
                        c.max_abs_err,
                        c.tolerance
                    );
                }
            }
            ModuleOutcome::NotImplemented => panic!("{module}: not implemented"),
            ModuleOutcome::MissingFixture => panic!("{module}: fixture missing"),
            ModuleOutcome::Error(e) => panic!("{module}: {e}"),
        }
    }
}

#[test]
fn a_missing_checkpoint_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    split_fixtures(dir.path());
    std::fs::remove_file(dir.path().join(checkpoint::T3_WEIGHTS)).unwrap();
    let ModuleOutcome::Error(e) = run_module(dir.path(), "t3_turbo") else {
        panic!("t3_turbo ran without its weights");
    };
    let expected = dir.path().join(checkpoint::T3_WEIGHTS);
    assert!(e.contains(&expected.display().to_string()), "{e}");
}

/// The generator's real full-size output (`make_fixtures.py --config full
/// --save-full-weights --full-fixtures`, about 3 GB, so not in the repository):
/// `RESONANCE_FULL_FIXTURES=DIR cargo test -p chatterbox --features parity --test
/// full_layout_fixtures -- --ignored --nocapture` prints every check as `resonance
/// model verify --fixtures DIR` does and fails on any error or failed check.
#[test]
#[ignore = "needs the generator's full-size fixtures in RESONANCE_FULL_FIXTURES"]
fn full_size_fixtures_from_the_generator() {
    let dir = std::env::var("RESONANCE_FULL_FIXTURES")
        .expect("RESONANCE_FULL_FIXTURES names the full-size fixture directory");
    let dir = Path::new(&dir);
    let mut problems = Vec::new();
    for (module, _) in modules() {
        let started = std::time::Instant::now();
        match run_module(dir, module) {
            ModuleOutcome::Checked(checks) => {
                for c in checks {
                    let result = if c.passed() { "pass" } else { "FAIL" };
                    let note = c.note.clone().unwrap_or_default();
                    println!(
                        "| {module} | {} | {:.3e} | {:.1e} | {result} | {note} |",
                        c.tensor, c.max_abs_err, c.tolerance
                    );
                    if !c.passed() {
                        problems.push(format!("{module}.{}", c.tensor));
                    }
                }
            }
            other => {
                let what = match other {
                    ModuleOutcome::Error(e) => e,
                    ModuleOutcome::MissingFixture => "no fixture".into(),
                    _ => "not implemented".into(),
                };
                println!("| {module} | ERROR: {what} | | | | |");
                problems.push(format!("{module}: {what}"));
            }
        }
        eprintln!("{module}: {:.1} s", started.elapsed().as_secs_f64());
    }
    assert!(problems.is_empty(), "{problems:?}");
}
