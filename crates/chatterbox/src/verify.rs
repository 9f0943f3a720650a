//! Parity checks against a fixture directory made by the Python reference
//! (`resonance model verify --fixtures DIR`).

use std::path::Path;

use crate::fixtures::{Fixture, first_non_finite, max_abs, max_abs_diff};

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
    /// The error is a finite number within the bound (a NaN or infinite error,
    /// from a non-finite value on either side, never passes).
    pub fn passed(&self) -> bool {
        self.max_abs_err.is_finite() && self.max_abs_err <= self.tolerance
    }

    /// Adds `note` after any note already there (such as a non-finite value's).
    pub fn add_note(&mut self, note: String) {
        self.note = Some(match self.note.take() {
            Some(first) => format!("{first}; {note}"),
            None => note,
        });
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

/// Builds a check comparing `ours` with the fixture tensor `fixture.<name>`. A
/// non-finite value (NaN, +inf, -inf) on either side makes the error infinite and
/// is named in the check's note.
pub fn compare(
    fixture: &Fixture,
    name: &str,
    ours: &candle_core::Tensor,
    tolerance: f64,
) -> candle_core::Result<Check> {
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
    Ok(Check {
        module: fixture.module.clone(),
        tensor: name.to_string(),
        max_abs_err,
        tolerance,
        note: non_finite,
    })
}

/// [`compare`] with the bound `tolerance * max(1, max|reference|)`: relative to the
/// reference's magnitude where it exceeds 1.
pub fn compare_relative(
    fixture: &Fixture,
    name: &str,
    ours: &candle_core::Tensor,
    tolerance: f64,
) -> candle_core::Result<Check> {
    let magnitude = max_abs(&fixture.tensor(name)?)?;
    let scale = magnitude.max(1.0);
    let mut check = compare(fixture, name, ours, tolerance * scale)?;
    if magnitude > 1.0 {
        check.add_note(format!(
            "relative: {tolerance:e} x max|reference| = {tolerance:e} x {magnitude:.3}"
        ));
    }
    Ok(check)
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
            compare(fixture, "x", ours, 1e3).unwrap(),
            compare_relative(fixture, "x", ours, 1e3).unwrap(),
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
