//! Parity of `hift` with the Python reference.

use chatterbox::parity::{ModuleOutcome, assert_module_passes, run_module};

#[test]
fn hift_matches_reference() {
    let dir = chatterbox::parity::fixtures::fixture_dir();
    if let ModuleOutcome::Checked(checks) = run_module(&dir, "hift") {
        for c in &checks {
            eprintln!(
                "{}: max abs err {:e} (tol {:e}) {}",
                c.tensor,
                c.max_abs_err,
                c.tolerance,
                c.note.as_deref().unwrap_or("")
            );
        }
    }
    assert_module_passes("hift");
}

#[test]
fn seeded_inference_gives_a_bounded_deterministic_wave() -> anyhow::Result<()> {
    use chatterbox::parity::fixtures::Fixture;
    use chatterbox::rng::SeededRandom;
    use chatterbox::s3gen::hift::Hift;

    let fixture = Fixture::load(&chatterbox::parity::fixtures::fixture_dir(), "hift")?;
    let cfg = fixture.config()?;
    let hift = Hift::new(&cfg.hift, fixture.weights()?.pp("mel2wav"))?;
    let mel = fixture.tensor("mel")?;
    let frames = mel.dim(2)?;

    let wave = hift.inference(&mel, &mut SeededRandom::new(7))?;
    assert_eq!(wave.dims(), &[1, frames * 480]);
    let samples = wave.flatten_all()?.to_vec1::<f32>()?;
    assert!(samples.iter().all(|s| s.is_finite() && s.abs() <= 0.99));
    assert!(samples.iter().any(|s| s.abs() > 1e-3), "silent output");

    let again = hift.inference(&mel, &mut SeededRandom::new(7))?;
    assert_eq!(again.flatten_all()?.to_vec1::<f32>()?, samples);
    let other = hift.inference(&mel, &mut SeededRandom::new(8))?;
    assert_ne!(other.flatten_all()?.to_vec1::<f32>()?, samples);
    Ok(())
}

#[test]
fn missing_weight_is_named() {
    let cfg = chatterbox::ChatterboxConfig::default();
    let vb = candle_nn::VarBuilder::from_tensors(
        std::collections::HashMap::new(),
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    );
    let err = chatterbox::s3gen::hift::Hift::new(&cfg.hift, vb.pp("mel2wav"))
        .err()
        .expect("empty weights must fail");
    assert!(err.to_string().contains("mel2wav."), "{err}");
}
