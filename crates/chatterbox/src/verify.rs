//! Parity checks against a fixture directory made by the Python reference
//! (`resonance model verify --fixtures DIR`).

use std::path::Path;

use crate::fixtures::Fixture;

/// One compared tensor: the largest absolute error and the bound it must stay under.
#[derive(Debug, Clone)]
pub struct Check {
    pub module: String,
    pub tensor: String,
    pub max_abs_err: f64,
    pub tolerance: f64,
    /// Some bounds are relative to the reference's magnitude; this says how.
    pub note: Option<String>,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.max_abs_err <= self.tolerance
    }
}

pub type VerifyFn = fn(&Fixture) -> candle_core::Result<Vec<Check>>;

/// Every module of the fixtures, in the order the reference lists them, with its
/// check when implemented. `<fixture>/<part>` checks one part of a fixture.
pub fn modules() -> Vec<(&'static str, Option<VerifyFn>)> {
    vec![
        // t3_turbo
        ("t3_turbo", Some(crate::t3::verify)),
        // s3tokenizer_v2
        ("s3tokenizer_v2", Some(crate::s3tokenizer::verify)),
        // voice_encoder
        ("voice_encoder", Some(crate::voice_encoder::verify)),
        // campplus
        ("campplus", Some(crate::campplus::verify)),
        // flow_encoder
        ("flow_encoder", Some(crate::s3gen::flow_encoder::verify)),
        // cfm_meanflow
        ("cfm_meanflow", Some(crate::s3gen::cfm::verify)),
        // hift
        ("hift", Some(crate::s3gen::hift::verify)),
        // mel_24k
        ("mel_24k", Some(crate::dsp::verify_mel_24k)),
        // turbo_e2e: voice conditioning from the reference clip
        (
            "turbo_e2e/conditionals",
            Some(crate::voice_conditioner::verify),
        ),
        // s3gen_meanflow_e2e
        ("s3gen_meanflow_e2e", Some(crate::s3gen::verify)),
        // turbo_e2e
        ("turbo_e2e", Some(crate::tts::verify)),
    ]
}

/// Outcome of one module's verification.
pub enum ModuleOutcome {
    Checked(Vec<Check>),
    NotImplemented,
    MissingFixture,
    Error(String),
}

pub fn run_module(dir: &Path, module: &str) -> ModuleOutcome {
    let Some((_, check)) = modules().into_iter().find(|(m, _)| *m == module) else {
        return ModuleOutcome::Error(format!("unknown module {module}"));
    };
    let Some(check) = check else {
        return ModuleOutcome::NotImplemented;
    };
    let fixture = module.split('/').next().unwrap_or(module);
    if !dir.join(format!("{fixture}.safetensors")).exists() {
        return ModuleOutcome::MissingFixture;
    }
    match Fixture::load(dir, fixture).and_then(|f| check(&f)) {
        Ok(checks) => ModuleOutcome::Checked(checks),
        Err(e) => ModuleOutcome::Error(e.to_string()),
    }
}

/// Builds a check comparing `ours` with the fixture tensor `fixture.<name>`.
pub fn compare(
    fixture: &Fixture,
    name: &str,
    ours: &candle_core::Tensor,
    tolerance: f64,
) -> candle_core::Result<Check> {
    let expected = fixture.tensor(name)?;
    let ours = ours.to_dtype(expected.dtype())?;
    Ok(Check {
        module: fixture.module.clone(),
        tensor: name.to_string(),
        max_abs_err: crate::fixtures::max_abs_diff(&ours, &expected)?,
        tolerance,
        note: None,
    })
}

/// Asserts that a module's checks all pass (for the parity tests).
pub fn assert_module_passes(module: &str) {
    let dir = crate::fixtures::fixture_dir();
    match run_module(&dir, module) {
        ModuleOutcome::Checked(checks) => {
            assert!(!checks.is_empty(), "{module}: no checks ran");
            for c in &checks {
                assert!(
                    c.passed(),
                    "{module}.{}: max abs err {:e} > {:e} {}",
                    c.tensor,
                    c.max_abs_err,
                    c.tolerance,
                    c.note.as_deref().unwrap_or("")
                );
            }
        }
        ModuleOutcome::NotImplemented => panic!("{module}: not implemented"),
        ModuleOutcome::MissingFixture => panic!("{module}: fixture missing in {}", dir.display()),
        ModuleOutcome::Error(e) => panic!("{module}: {e}"),
    }
}
