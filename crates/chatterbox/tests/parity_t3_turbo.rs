//! T3 Turbo parity with the reference fixture (prefill, KV-cached decoding,
//! sampled and greedy generations), plus the generation loop's own rules on the
//! fixture's weights.

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use chatterbox::parity::fixtures::{Fixture, fixture_dir, max_abs_diff};
use chatterbox::t3::{Gpt2, Greedy, SamplingParams, SeededSampler, T3, T3Conditionals};

#[test]
fn t3_turbo_matches_reference() {
    chatterbox::parity::assert_module_passes("t3_turbo");
}

fn fixture() -> Fixture {
    Fixture::load(&fixture_dir(), "t3_turbo").unwrap()
}

fn conditionals(f: &Fixture) -> (T3Conditionals, Vec<u32>) {
    let ids = |name| -> Vec<u32> {
        f.tensor(name)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_dtype(DType::U32)
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let cond = T3Conditionals {
        speaker_emb: f.tensor("speaker_emb").unwrap(),
        prompt_tokens: ids("cond_prompt_speech_tokens"),
    };
    (cond, ids("text_tokens"))
}

fn params(max_new_tokens: usize) -> SamplingParams {
    SamplingParams {
        max_new_tokens,
        ..SamplingParams::default()
    }
}

#[test]
fn kv_cached_steps_match_a_full_recompute() {
    let f = fixture();
    let cfg = f.config().unwrap().t3.gpt2;
    let gpt2 = Gpt2::new(&cfg, f.weights().unwrap().pp("tfmr")).unwrap();
    let embeds = Tensor::randn(0f32, 1.0, (1, 9, cfg.n_embd), &Device::Cpu).unwrap();

    let mut full_cache = gpt2.new_cache(9).unwrap();
    let full = gpt2.forward(&embeds, &mut full_cache).unwrap();

    let mut cache = gpt2.new_cache(9).unwrap();
    let mut stepped = vec![
        gpt2.forward(&embeds.i((.., ..6)).unwrap(), &mut cache)
            .unwrap(),
    ];
    for t in 6..9 {
        stepped.push(
            gpt2.forward(&embeds.i((.., t..t + 1)).unwrap(), &mut cache)
                .unwrap(),
        );
    }
    assert_eq!(cache.len(), 9);
    let stepped = Tensor::cat(&stepped, 1).unwrap();
    let err = max_abs_diff(&stepped, &full).unwrap();
    assert!(err < 1e-5, "cached vs full: {err}");

    let overflow = Tensor::zeros((1, 1, cfg.n_embd), DType::F32, &Device::Cpu).unwrap();
    assert!(gpt2.forward(&overflow, &mut cache).is_err());
    assert!(gpt2.new_cache(cfg.n_positions + 1).is_err());
}

#[test]
fn seeded_generation_is_reproducible_and_capped() {
    let f = fixture();
    let t3 = T3::new(&f.config().unwrap().t3, f.weights().unwrap()).unwrap();
    let (cond, text) = conditionals(&f);
    let run = |seed| {
        t3.generate(&text, &cond, &params(7), &mut SeededSampler::new(seed))
            .unwrap()
    };
    let a = run(3);
    assert_eq!(a.len(), 7);
    assert!(a.iter().all(|&t| t < 6561), "{a:?}");
    assert_eq!(a, run(3));
    assert_ne!(a, run(4));
}

#[test]
fn stop_token_ends_generation_except_as_first_token() {
    // Bias the speech head so that the stop token (6562) always wins.
    let f = fixture();
    let cfg = f.config().unwrap().t3;
    let path = fixture_dir().join("t3_turbo.safetensors");
    let mut tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let bias = tensors.get("speech_head.bias").unwrap();
    let mut boost = vec![0f32; cfg.speech_tokens_dict_size];
    boost[cfg.stop_speech_token as usize] = 1e4;
    let boosted = (bias + Tensor::new(boost, &Device::Cpu).unwrap()).unwrap();
    tensors.insert("speech_head.bias".into(), boosted);
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let t3 = T3::new(&cfg, vb).unwrap();
    let (cond, text) = conditionals(&f);

    // As in the reference, a stop token sampled from the prefill does not stop;
    // the second one does and is stripped.
    let tokens = t3.generate(&text, &cond, &params(50), &mut Greedy).unwrap();
    assert_eq!(tokens, vec![cfg.stop_speech_token]);
}

#[test]
fn bad_inputs_are_rejected_with_clear_errors() {
    let f = fixture();
    let cfg = f.config().unwrap().t3;
    let t3 = T3::new(&cfg, f.weights().unwrap()).unwrap();
    let (cond, text) = conditionals(&f);

    let short = T3Conditionals {
        speaker_emb: Tensor::zeros((1, 10), DType::F32, &Device::Cpu).unwrap(),
        ..cond.clone()
    };
    let err = t3
        .generate(&text, &short, &params(2), &mut Greedy)
        .unwrap_err();
    assert!(err.to_string().contains("speaker embedding"), "{err}");

    let bad_text = [cfg.text_tokens_dict_size as u32];
    let err = t3
        .generate(&bad_text, &cond, &params(2), &mut Greedy)
        .unwrap_err();
    assert!(err.to_string().contains("outside the vocabulary"), "{err}");
}
