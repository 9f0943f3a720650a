//! Parity with the reference's `campplus` fixture: fbank, normalized features, FCM output,
//! frame features and x-vector.

use candle_core::IndexOp;

use super::fixtures::Fixture;
use super::{Check, Tolerance, compare};
use crate::campplus::Campplus;

pub fn checks(fixture: &Fixture) -> candle_core::Result<Vec<Check>> {
    const TOL: f64 = 1e-4;
    let cfg = fixture.config()?.campplus;
    let model = Campplus::new(&cfg, fixture.weights()?.pp("speaker_encoder"))?;
    let wav: Vec<f32> = fixture.tensor("wav_16k")?.i(0)?.to_vec1()?;
    let fbank_raw = model.fbank.compute(&wav)?;
    let features = model.features(&wav)?;
    let fcm = model.head.forward(&features.transpose(1, 2)?)?;
    let frames = model.xvector.frames(&fcm)?;
    let xvector = model.xvector.embed(&frames)?;
    let mut checks = vec![
        compare(fixture, "fbank_raw", &fbank_raw, Tolerance::Relative(TOL))?,
        compare(fixture, "fbank", &features, Tolerance::Absolute(TOL))?,
        compare(fixture, "fcm_out", &fcm, Tolerance::Relative(TOL))?,
        compare(fixture, "frames", &frames, Tolerance::Relative(TOL))?,
        compare(fixture, "xvector", &xvector, Tolerance::Relative(TOL))?,
    ];
    let embedded = model.embed(&wav)?.unsqueeze(0)?;
    checks.push(
        compare(fixture, "xvector", &embedded, Tolerance::Relative(TOL))?
            .labelled("xvector (embed)"),
    );
    Ok(checks)
}
