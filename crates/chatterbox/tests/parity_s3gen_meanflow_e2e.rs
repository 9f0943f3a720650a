//! Parity of S3Gen end to end (flow encoder, meanflow CFM, HiFT, trim_fade) with the
//! Python reference's `s3gen_meanflow_e2e` fixture.

use candle_core::{DType, Device, Tensor};
use chatterbox::parity::fixtures::{Fixture, fixture_dir, max_abs_diff};
use chatterbox::rng::SeededRandom;
use chatterbox::s3gen::{S3Gen, S3GenConditionals};

#[test]
fn s3gen_meanflow_e2e_matches_reference() {
    chatterbox::parity::assert_module_passes("s3gen_meanflow_e2e");
}

fn load() -> (Fixture, S3Gen, S3GenConditionals) {
    let fixture = Fixture::load(&fixture_dir(), "s3gen_meanflow_e2e").unwrap();
    let s3gen = S3Gen::new(&fixture.config().unwrap(), fixture.weights().unwrap()).unwrap();
    let conditionals = S3GenConditionals {
        tokens: fixture.tensor("ref.prompt_token").unwrap(),
        mel: fixture.tensor("ref.prompt_feat").unwrap(),
        embedding: fixture.tensor("ref.embedding").unwrap(),
    };
    (fixture, s3gen, conditionals)
}

#[test]
fn wave_length_follows_tokens_and_starts_silent() {
    let (fixture, s3gen, conditionals) = load();
    let tokens = fixture.tensor("speech_tokens").unwrap();
    let prompt_frames = conditionals.mel.dim(1).unwrap();
    let prompt_tokens = conditionals.tokens.dim(1).unwrap();
    for n in [4, 13] {
        let tokens = tokens.narrow(1, 0, n).unwrap();
        let wave = s3gen
            .inference(&tokens, &conditionals, &mut SeededRandom::new(3))
            .unwrap();
        let frames = 2 * (prompt_tokens + n) - prompt_frames;
        assert_eq!(wave.dims(), &[1, 480 * frames]);
        let silence = wave.narrow(1, 0, 480).unwrap();
        assert_eq!(
            max_abs_diff(&silence, &silence.zeros_like().unwrap()).unwrap(),
            0.0
        );
        assert!(
            chatterbox::parity::fixtures::max_abs(
                &wave.narrow(1, 960, 480 * frames - 960).unwrap()
            )
            .unwrap()
                > 0.0
        );
    }
}

#[test]
fn seeded_inference_is_reproducible() {
    let (fixture, s3gen, conditionals) = load();
    let tokens = fixture.tensor("speech_tokens").unwrap();
    let run = |seed| {
        s3gen
            .inference(&tokens, &conditionals, &mut SeededRandom::new(seed))
            .unwrap()
    };
    let a = run(11);
    assert_eq!(max_abs_diff(&a, &run(11)).unwrap(), 0.0);
    assert!(max_abs_diff(&a, &run(12)).unwrap() > 1e-4);
}

#[test]
fn bad_inputs_are_rejected_with_clear_errors() {
    let (fixture, s3gen, conditionals) = load();
    let tokens = fixture.tensor("speech_tokens").unwrap();
    let mut rng = SeededRandom::new(0);

    let two_rows = Tensor::cat(&[&tokens, &tokens], 0).unwrap();
    let err = s3gen
        .inference(&two_rows, &conditionals, &mut rng)
        .unwrap_err();
    assert!(err.to_string().contains("one row"), "{err}");

    let empty = Tensor::zeros((1, 0), DType::I64, &Device::Cpu).unwrap();
    let err = s3gen
        .inference(&empty, &conditionals, &mut rng)
        .unwrap_err();
    assert!(err.to_string().contains("no speech tokens"), "{err}");

    let out_of_vocab = Tensor::new(&[[1i64, 6561, 2]], &Device::Cpu).unwrap();
    let err = s3gen
        .inference(&out_of_vocab, &conditionals, &mut rng)
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}

#[test]
fn trim_fade_silences_20ms_then_fades_in_over_20ms() {
    let (_, s3gen, _) = load();
    let ones = Tensor::ones((1, 2000), DType::F32, &Device::Cpu).unwrap();
    let faded = s3gen.trim_fade(&ones).unwrap().to_vec2::<f32>().unwrap()[0].clone();
    assert!(faded[..480].iter().all(|&v| v == 0.0));
    assert!(faded[480] < 1e-6);
    assert!((faded[480 + 240] - 0.5).abs() < 0.01);
    assert!((faded[959] - 1.0).abs() < 1e-6);
    assert!(faded[480..960].windows(2).all(|w| w[1] >= w[0]));
    assert!(faded[960..].iter().all(|&v| v == 1.0));

    let short = Tensor::ones((1, 700), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        s3gen.trim_fade(&short).unwrap().to_vec2::<f32>().unwrap()[0][..700],
        faded[..700]
    );
}
