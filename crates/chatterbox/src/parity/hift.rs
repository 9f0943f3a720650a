//! Parity with `fixture.hift`: every stage fed the reference's input to it, plus the
//! whole chain from the mel.

use candle_core::D;

use super::fixtures::Fixture;
use super::{Check, Tolerance, compare};
use crate::rng::RecordedDraws;
use crate::s3gen::hift::Hift;

pub fn checks(fixture: &Fixture) -> candle_core::Result<Vec<Check>> {
    let cfg = fixture.config()?;
    let hift = Hift::new(&cfg.hift, fixture.weights()?.pp("mel2wav"))?;
    let mel = fixture.tensor("mel")?;
    let tol = 1e-4;
    let mut checks = Vec::new();

    let f0 = hift.f0(&mel)?;
    checks.push(compare(fixture, "f0", &f0, Tolerance::Relative(tol))?);
    let f0_reference = fixture.tensor("f0")?;
    let f0_up = hift.upsample_f0(&f0_reference)?;
    checks.push(compare(
        fixture,
        "f0_upsampled",
        &f0_up.unsqueeze(D::Minus1)?,
        Tolerance::Relative(tol),
    )?);

    let mut draws = RecordedDraws::new(fixture.rng_draws()?);
    let source = hift.source(&f0_up, &mut draws)?;
    checks.push(compare(
        fixture,
        "sine_waves",
        &source.sine_waves,
        Tolerance::Absolute(tol),
    )?);
    checks.push(compare(fixture, "uv", &source.uv, Tolerance::Exact)?);
    checks.push(compare(
        fixture,
        "source",
        &source.source,
        Tolerance::Absolute(tol),
    )?);

    let s_stft = hift.source_stft(&fixture.tensor("source")?)?;
    checks.push(compare(
        fixture,
        "s_stft",
        &s_stft,
        Tolerance::Absolute(tol),
    )?);
    let conv_post_out = hift.decode(&mel, &fixture.tensor("s_stft")?)?;
    checks.push(compare(
        fixture,
        "conv_post_out",
        &conv_post_out,
        Tolerance::Relative(tol),
    )?);
    let wav = hift.spectrum_to_wave(&fixture.tensor("conv_post_out")?)?;
    checks.push(compare(fixture, "wav", &wav, Tolerance::Absolute(tol))?);

    let mut draws = RecordedDraws::new(fixture.rng_draws()?);
    let end_to_end = hift.inference(&mel, &mut draws)?;
    checks.push(
        compare(fixture, "wav", &end_to_end, Tolerance::Absolute(tol))?
            .labelled("wav (end to end)"),
    );
    Ok(checks)
}
