//! Fixtures laid out as the generator writes them at full size (`make_fixtures.py
//! --config full --save-full-weights --full-fixtures`): each module file holds only
//! its `fixture.*` tensors, its sidecar says `weights_included: false`, and the
//! weights are the checkpoint files beside them. Here the tiny fixtures, split the
//! same way, must pass every check.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use chatterbox::checkpoint;
use chatterbox::fixtures::fixture_dir;
use chatterbox::verify::{ModuleOutcome, modules, run_module};

/// Writes into `dir` the checkpoint files (the `turbo_e2e` fixture's weights
/// under their official names) and every fixture without its weights.
fn split_fixtures(dir: &Path) {
    chatterbox::testing::write_tiny_checkpoint(dir).unwrap();
    let source = fixture_dir();
    std::fs::copy(source.join("index.json"), dir.join("index.json")).unwrap();
    for (module, _) in modules() {
        // `turbo_e2e/conditionals` checks part of the `turbo_e2e` fixture.
        let fixture = module.split('/').next().unwrap_or(module);
        let tensors = candle_core::safetensors::load(
            source.join(format!("{fixture}.safetensors")),
            &Device::Cpu,
        )
        .unwrap();
        let fixture_only: HashMap<String, Tensor> = tensors
            .into_iter()
            .filter(|(name, _)| name.starts_with("fixture."))
            .collect();
        candle_core::safetensors::save(&fixture_only, dir.join(format!("{fixture}.safetensors")))
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
