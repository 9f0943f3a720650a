//! Parity with the Python reference (`resonance model verify --fixtures DIR`):
//! each model part runs on the inputs of a fixture made by `make_fixtures.py`
//! and is compared, tensor by tensor, with the reference's outputs and
//! intermediates. One module per part, each with `checks(&Fixture)`; [`modules`]
//! lists them.

pub mod agreement;
pub mod fixtures;

mod campplus;
mod cfm;
mod conditionals;
mod flow_encoder;
mod hift;
mod mel_24k;
mod s3gen;
mod s3tokenizer;
mod t3;
mod turbo_e2e;
mod voice_encoder;

use std::path::Path;

use candle_core::{Result, Tensor};

use fixtures::{Fixture, first_non_finite, max_abs, max_abs_diff};

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
    fn new(fixture: &Fixture, tensor: &str, max_abs_err: f64, tolerance: f64) -> Self {
        Self {
            module: fixture.module.clone(),
            tensor: tensor.to_string(),
            max_abs_err,
            tolerance,
            note: None,
        }
    }

    /// The error is a finite number within the bound (a NaN or infinite error,
    /// from a non-finite value on either side, never passes).
    pub fn passed(&self) -> bool {
        self.max_abs_err.is_finite() && self.max_abs_err <= self.tolerance
    }

    /// Adds `note` after any note already there (such as a non-finite value's).
    fn with_note(mut self, note: impl Into<String>) -> Self {
        let note = note.into();
        self.note = Some(match self.note.take() {
            Some(first) => format!("{first}; {note}"),
            None => note,
        });
        self
    }

    /// Shows the check as `label` rather than the tensor's name (for a second
    /// check of the same tensor, reached another way).
    fn labelled(mut self, label: &str) -> Self {
        self.tensor = label.to_string();
        self
    }
}

/// How far ours may stray from the reference, elementwise.
#[derive(Debug, Clone, Copy)]
pub enum Tolerance {
    /// Equal, element for element.
    Exact,
    /// Within this absolute bound.
    Absolute(f64),
    /// Within `bound * max(1, max|reference|)`: relative to the reference's
    /// magnitude where it exceeds 1.
    Relative(f64),
}

impl Tolerance {
    /// The largest error allowed against a reference whose largest absolute value
    /// is `magnitude`.
    pub fn bound(self, magnitude: f64) -> f64 {
        match self {
            Self::Exact => 0.0,
            Self::Absolute(bound) => bound,
            Self::Relative(bound) => bound * magnitude.max(1.0),
        }
    }
}

/// Compares `ours` with the fixture tensor `fixture.<name>`. A non-finite value
/// (NaN, +inf, -inf) on either side makes the error infinite and is named in the
/// check's note, as is a relative bound wider than its absolute one.
pub fn compare(
    fixture: &Fixture,
    name: &str,
    ours: &Tensor,
    tolerance: Tolerance,
) -> Result<Check> {
    let expected = fixture.tensor(name)?;
    let non_finite = match (first_non_finite(ours)?, first_non_finite(&expected)?) {
        (Some((index, value)), _) => Some(format!("ours holds {value} at element {index}")),
        (None, Some((index, value))) => {
            Some(format!("the reference holds {value} at element {index}"))
        }
        (None, None) => None,
    };
    let max_abs_err = match non_finite {
        Some(_) => f64::INFINITY,
        None => max_abs_diff(&ours.to_dtype(expected.dtype())?, &expected)?,
    };
    let magnitude = max_abs(&expected)?;
    let mut check = Check::new(fixture, name, max_abs_err, tolerance.bound(magnitude));
    check.note = non_finite;
    if let Tolerance::Relative(bound) = tolerance
        && magnitude > 1.0
    {
        check = check.with_note(format!(
            "relative: {bound:e} x max|reference| = {bound:e} x {magnitude:.3}"
        ));
    }
    Ok(check)
}

/// The checks of one module against its fixture.
pub type ModuleChecks = fn(&Fixture) -> Result<Vec<Check>>;

/// Every module of the fixtures, in the order the reference lists them, with its
/// checks when implemented. `<fixture>/<part>` checks one part of a fixture.
pub fn modules() -> Vec<(&'static str, Option<ModuleChecks>)> {
    vec![
        ("t3_turbo", Some(t3::checks)),
        ("s3tokenizer_v2", Some(s3tokenizer::checks)),
        ("voice_encoder", Some(voice_encoder::checks)),
        ("campplus", Some(campplus::checks)),
        ("flow_encoder", Some(flow_encoder::checks)),
        ("cfm_meanflow", Some(cfm::checks)),
        ("hift", Some(hift::checks)),
        ("mel_24k", Some(mel_24k::checks)),
        // turbo_e2e: voice conditioning from the reference clip
        ("turbo_e2e/conditionals", Some(conditionals::checks)),
        ("s3gen_meanflow_e2e", Some(s3gen::checks)),
        ("turbo_e2e", Some(turbo_e2e::checks)),
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

/// Asserts that a module's checks all pass (for the parity tests).
pub fn assert_module_passes(module: &str) {
    let dir = fixtures::fixture_dir();
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};

    use super::*;

    const LEN: usize = 31;

    fn clean() -> Vec<f32> {
        (0..LEN).map(|i| (i as f32 * 0.37).sin() * 3.0).collect()
    }

    /// A fixture directory holding `fixture.x` = `values`, shaped (1, LEN).
    fn fixture_with(dir: &Path, values: Vec<f32>) -> Fixture {
        let x = Tensor::from_vec(values, (1, LEN), &Device::Cpu).unwrap();
        let tensors = HashMap::from([("fixture.x".to_string(), x)]);
        candle_core::safetensors::save(&tensors, dir.join("m.safetensors")).unwrap();
        std::fs::write(dir.join("m.json"), r#"{"tensors": {}}"#).unwrap();
        Fixture::load(dir, "m").unwrap()
    }

    fn ours(values: Vec<f32>) -> Tensor {
        Tensor::from_vec(values, (1, LEN), &Device::Cpu).unwrap()
    }

    /// Both comparisons of `ours` with the fixture, with a bound no finite
    /// difference here reaches.
    fn checks(fixture: &Fixture, ours: &Tensor) -> [Check; 2] {
        [
            compare(fixture, "x", ours, Tolerance::Absolute(1e3)).unwrap(),
            compare(fixture, "x", ours, Tolerance::Relative(1e3)).unwrap(),
        ]
    }

    #[test]
    fn a_non_finite_value_on_either_side_fails_the_comparison() {
        let dir = tempfile::tempdir().unwrap();
        for check in checks(&fixture_with(dir.path(), clean()), &ours(clean())) {
            assert!(check.passed(), "{check:?}");
        }
        for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for index in [0, LEN / 2, LEN - 1] {
                let mut planted = clean();
                planted[index] = value;
                let at = format!("{} at element {index}", f64::from(value));

                let reference = fixture_with(dir.path(), clean());
                for check in checks(&reference, &ours(planted.clone())) {
                    assert!(!check.passed(), "ours {at}: {check:?}");
                    assert_eq!(check.max_abs_err, f64::INFINITY);
                    let note = check.note.unwrap_or_default();
                    assert!(note.contains(&format!("ours holds {at}")), "{note}");
                }

                let reference = fixture_with(dir.path(), planted);
                for check in checks(&reference, &ours(clean())) {
                    assert!(!check.passed(), "reference {at}: {check:?}");
                    assert_eq!(check.max_abs_err, f64::INFINITY);
                    let note = check.note.unwrap_or_default();
                    assert!(
                        note.contains(&format!("the reference holds {at}")),
                        "{note}"
                    );
                }
            }
        }
    }

    #[test]
    fn max_abs_diff_is_infinite_with_a_non_finite_value_on_either_side() {
        let clean = ours(clean());
        assert_eq!(max_abs_diff(&clean, &clean).unwrap(), 0.0);
        for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for index in [0, LEN / 2, LEN - 1] {
                let mut planted = super::tests::clean();
                planted[index] = value;
                let planted = ours(planted);
                assert_eq!(max_abs_diff(&planted, &clean).unwrap(), f64::INFINITY);
                assert_eq!(max_abs_diff(&clean, &planted).unwrap(), f64::INFINITY);
                assert_eq!(max_abs(&planted).unwrap(), f64::INFINITY);
            }
        }
    }

    #[test]
    fn an_error_that_is_not_a_number_never_passes() {
        let check = Check {
            module: "m".into(),
            tensor: "x".into(),
            max_abs_err: f64::NAN,
            tolerance: f64::INFINITY,
            note: None,
        };
        assert!(!check.passed());
    }
}
