//! Parity of the meanflow CFM (ConditionalDecoder + Euler integration) with the
//! Python reference's `cfm_meanflow` fixture.

use candle_core::{Device, Tensor};
use chatterbox::parity::fixtures::{Fixture, fixture_dir, max_abs_diff};
use chatterbox::rng::{RandomSource, SeededRandom};
use chatterbox::s3gen::cfm::{MeanflowCfm, time_span};

#[test]
fn cfm_meanflow_matches_reference() {
    chatterbox::parity::assert_module_passes("cfm_meanflow");
}

#[test]
fn time_span_is_torch_linspace() {
    assert_eq!(time_span(2), vec![0.0, 0.5, 1.0]);
    let span = time_span(10);
    assert_eq!(span.len(), 11);
    assert_eq!((span[0], span[10]), (0.0, 1.0));
    assert!(span.windows(2).all(|w| (w[1] - w[0] - 0.1).abs() < 1e-6));
}

fn load() -> (Fixture, MeanflowCfm) {
    let fixture = Fixture::load(&fixture_dir(), "cfm_meanflow").unwrap();
    let cfg = fixture.config().unwrap();
    let cfm =
        MeanflowCfm::new(&cfg.decoder, fixture.weights().unwrap().pp("flow.decoder")).unwrap();
    (fixture, cfm)
}

/// Frames masked out produce zeros and do not reach valid frames (causal convs only look
/// back, attention gives masked keys a -1e10 bias): the masked run equals a run on the
/// truncated input. Without the mask, later frames do reach earlier ones through attention.
#[test]
fn masked_frames_do_not_influence_valid_frames() {
    let (fixture, cfm) = load();
    let [x, mu, mask, spks, cond] =
        ["step0.x", "mu", "mask", "spks", "cond"].map(|n| fixture.tensor(n).unwrap());
    let t = Tensor::new(&[0.0f32], &Device::Cpu).unwrap();
    let r = Tensor::new(&[0.5f32], &Device::Cpu).unwrap();
    let full = cfm
        .estimator()
        .forward(&x, &mask, &mu, &t, &spks, &cond, &r)
        .unwrap();

    let frames = x.dim(2).unwrap();
    let keep = frames - 10;
    let short_mask = Tensor::cat(
        &[
            mask.narrow(2, 0, keep).unwrap(),
            mask.narrow(2, keep, 10).unwrap().zeros_like().unwrap(),
        ],
        2,
    )
    .unwrap();
    let noisy_tail = Tensor::cat(
        &[
            x.narrow(2, 0, keep).unwrap(),
            (x.narrow(2, keep, 10).unwrap() * 100.0).unwrap(),
        ],
        2,
    )
    .unwrap();
    let masked = cfm
        .estimator()
        .forward(&noisy_tail, &short_mask, &mu, &t, &spks, &cond, &r)
        .unwrap();
    let tail = masked.narrow(2, keep, 10).unwrap();
    assert_eq!(
        max_abs_diff(&tail, &tail.zeros_like().unwrap()).unwrap(),
        0.0
    );

    let truncated = cfm
        .estimator()
        .forward(
            &x.narrow(2, 0, keep).unwrap(),
            &mask.narrow(2, 0, keep).unwrap(),
            &mu.narrow(2, 0, keep).unwrap(),
            &t,
            &spks,
            &cond.narrow(2, 0, keep).unwrap(),
            &r,
        )
        .unwrap();
    let err = max_abs_diff(&masked.narrow(2, 0, keep).unwrap(), &truncated).unwrap();
    assert!(err < 1e-4, "masked frames leak into valid ones: {err}");
    assert!(max_abs_diff(&full.narrow(2, 0, keep).unwrap(), &truncated).unwrap() > 1e-3);
}

#[test]
fn seeded_sampling_is_reproducible_and_rejects_bad_shapes() {
    let (fixture, cfm) = load();
    let [mu, mask, spks, cond] = ["mu", "mask", "spks", "cond"].map(|n| fixture.tensor(n).unwrap());
    let sample = |seed| {
        let mut rng = SeededRandom::new(seed);
        let noise = rng.randn(&[1, 80, 30], &Device::Cpu).unwrap();
        cfm.forward(&mu, &mask, &spks, &cond, &noise, 2, &mut rng)
            .unwrap()
    };
    let a = sample(7);
    assert_eq!(a.dims(), mu.dims());
    assert_eq!(max_abs_diff(&a, &sample(7)).unwrap(), 0.0);
    assert!(max_abs_diff(&a, &sample(8)).unwrap() > 1e-3);

    let mut rng = SeededRandom::new(0);
    let noise = Tensor::zeros((1, 80, 30), candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = cfm
        .forward(
            &mu,
            &mask.narrow(2, 0, 69).unwrap(),
            &spks,
            &cond,
            &noise,
            2,
            &mut rng,
        )
        .unwrap_err();
    assert!(err.to_string().contains("mask"), "{err}");
}

/// The official Turbo layout (every `flow.decoder.*` name and shape of
/// `s3gen_meanflow.safetensors`, from `manifest_full.json`) loads with the default config
/// and maps `(1, 80, T)` inputs to a `(1, 80, T)` mel.
#[test]
fn full_size_checkpoint_layout_loads() {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir().join("manifest_full.json")).unwrap(),
    )
    .unwrap();
    let tensors = manifest["files"]["s3gen_meanflow.safetensors"]["tensors"]
        .as_object()
        .unwrap();
    let weights: std::collections::HashMap<String, Tensor> = tensors
        .iter()
        .filter_map(|(name, info)| {
            let name = name.strip_prefix("flow.decoder.")?;
            let shape: Vec<usize> = serde_json::from_value(info["shape"].clone()).unwrap();
            let weight = Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu).unwrap();
            Some((name.to_string(), weight))
        })
        .collect();
    assert!(
        weights.len() > 100,
        "manifest lists {} decoder tensors",
        weights.len()
    );
    let vb = candle_nn::VarBuilder::from_tensors(weights, candle_core::DType::F32, &Device::Cpu);
    let cfg = chatterbox::ChatterboxConfig::default();
    let cfm = MeanflowCfm::new(&cfg.decoder, vb).unwrap();

    let frames = 6;
    let mu = Tensor::zeros((1, 80, frames), candle_core::DType::F32, &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 1, frames), candle_core::DType::F32, &Device::Cpu).unwrap();
    let spks = Tensor::zeros((1, 80), candle_core::DType::F32, &Device::Cpu).unwrap();
    let noise = Tensor::ones((1, 80, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let mut rng = SeededRandom::new(1);
    let mel = cfm
        .forward(
            &mu,
            &mask,
            &spks,
            &mu,
            &noise,
            cfg.cfm.n_timesteps,
            &mut rng,
        )
        .unwrap();
    assert_eq!(mel.dims(), &[1, 80, frames]);
    // All-zero weights estimate zero velocity, so the noise passes through unchanged.
    let tail = mel.narrow(2, frames - 2, 2).unwrap();
    assert_eq!(max_abs_diff(&tail, &noise).unwrap(), 0.0);
}
