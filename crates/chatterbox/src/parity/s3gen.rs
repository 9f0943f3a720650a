//! Parity with the `s3gen_meanflow_e2e` fixture: from the reference's speech tokens and
//! `ref_dict` (prompt tokens, prompt mel, x-vector) to `mu` and the generated mel; HiFT's
//! source and wave and `trim_fade` from the reference's mel and wave; and the production
//! path end to end, replaying the recorded draws.

use super::fixtures::Fixture;
use super::{Check, Tolerance, compare};
use crate::rng::RecordedDraws;
use crate::s3gen::{S3Gen, S3GenConditionals};

pub fn checks(fixture: &Fixture) -> candle_core::Result<Vec<Check>> {
    const TOL: Tolerance = Tolerance::Absolute(1e-4);
    // SineGen integrates F0 (a few hundred Hz) over the whole clip, so a rounding-level
    // difference in the mel reaching HiFT grows into a phase difference: the end-to-end
    // wave gets a wider bound than the stages, each fed the reference's input.
    const CHAINED_TOL: f64 = 5e-4;
    let cfg = fixture.config()?;
    let s3gen = S3Gen::new(&cfg, fixture.weights()?)?;
    let speech_tokens = fixture.tensor("speech_tokens")?;
    let conditionals = S3GenConditionals {
        tokens: fixture.tensor("ref.prompt_token")?,
        mel: fixture.tensor("ref.prompt_feat")?,
        embedding: fixture.tensor("ref.embedding")?,
    };

    let mut draws = RecordedDraws::new(fixture.rng_draws()?);
    let noise = s3gen.generated_noise(&speech_tokens, &mut draws)?;
    let conditioning = s3gen.encode(&speech_tokens, &conditionals)?;
    let mut checks = vec![compare(fixture, "mu", &conditioning.mu, TOL)?];
    let mel = s3gen.generate_mel(&conditioning, &noise, &mut draws)?;
    checks.push(compare(fixture, "mel", &mel, TOL)?);

    let hift = s3gen.hift();
    let reference_mel = fixture.tensor("mel")?;
    let source = hift.source(&hift.upsample_f0(&hift.f0(&reference_mel)?)?, &mut draws)?;
    checks.push(compare(
        fixture,
        "source",
        &source.source.transpose(1, 2)?,
        TOL,
    )?);
    let wave =
        hift.spectrum_to_wave(&hift.decode(&reference_mel, &hift.source_stft(&source.source)?)?)?;
    checks.push(compare(fixture, "wav_hift", &wave, TOL)?);
    checks.push(
        compare(
            fixture,
            "wav",
            &s3gen.trim_fade(&fixture.tensor("wav_hift")?)?,
            TOL,
        )?
        .labelled("wav (trim_fade of the reference's wav_hift)"),
    );

    let mut draws = RecordedDraws::new(fixture.rng_draws()?);
    let wave = s3gen.inference(&speech_tokens, &conditionals, &mut draws)?;
    checks.push(
        compare(fixture, "wav", &wave, Tolerance::Absolute(CHAINED_TOL))?
            .labelled("wav (end to end)")
            .with_note(format!(
                "bound {CHAINED_TOL:e}: HiFT fed our mel, whose F0 differences grow in SineGen's phase"
            )),
    );
    Ok(checks)
}
