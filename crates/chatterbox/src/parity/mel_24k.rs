//! Parity with `fixture.mel_24k`: the filter bank and the log-mel of a 24 kHz wave.

use candle_core::{Device, Result};

use super::fixtures::Fixture;
use super::{Check, Tolerance, compare};
use crate::dsp::Mel24k;

pub fn checks(fixture: &Fixture) -> Result<Vec<Check>> {
    let cfg = fixture.config()?;
    let mel = Mel24k::new(&cfg.mel_24k)?;
    let basis = mel.filters().to_tensor(&Device::Cpu)?;
    let log_mel = mel.forward(&fixture.tensor("wav_24k")?)?;
    Ok(vec![
        compare(fixture, "mel_basis", &basis, Tolerance::Absolute(1e-7))?,
        compare(fixture, "mel", &log_mel, Tolerance::Absolute(1e-4))?,
    ])
}
