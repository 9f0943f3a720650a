//! T3 decoding several sequences together ([`T3Batch`]) on the fixture's tiny random
//! weights: sequences with their own prompts, lengths, settings and seeds, joining the
//! batch at different steps and leaving it as they finish, get the tokens and (to float
//! rounding) the logits they get when decoded alone.

use std::collections::HashMap;

use candle_core::DType;
use chatterbox::parity::agreement::agreement;
use chatterbox::parity::fixtures::{Fixture, fixture_dir};
use chatterbox::t3::{Precision, SamplingParams, SeededSampler, T3, T3Batch, T3Conditionals};

/// Largest difference allowed between a logit decoded in the batch and alone.
const LOGIT_TOLERANCE: f32 = 1e-4;

struct Request {
    text: Vec<u32>,
    cond: T3Conditionals,
    params: SamplingParams,
    seed: u64,
    /// The batch step at which its prefill is done and it joins.
    joins_at: usize,
}

/// What a generation produced: its tokens and the raw logits of every sampling step.
#[derive(Debug, Default)]
struct Generation {
    tokens: Vec<u32>,
    logits: Vec<Vec<f32>>,
}

fn fixture() -> (Fixture, T3) {
    let f = Fixture::load(&fixture_dir(), "t3_turbo").unwrap();
    let t3 = T3::new(&f.config().unwrap().t3, f.weights().unwrap()).unwrap();
    (f, t3)
}

fn ids(f: &Fixture, name: &str) -> Vec<u32> {
    f.tensor(name)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_dtype(DType::U32)
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Four requests cut from the fixture's prompt and text: different prefix lengths,
/// sampling settings, seeds and join steps.
fn requests(f: &Fixture) -> Vec<Request> {
    let speaker_emb = f.tensor("speaker_emb").unwrap();
    let prompt = ids(f, "cond_prompt_speech_tokens");
    let text = ids(f, "text_tokens");
    let request = |prompt_len: usize, text: Vec<u32>, params, seed, joins_at| Request {
        text,
        cond: T3Conditionals {
            speaker_emb: speaker_emb.clone(),
            prompt_tokens: prompt[..prompt_len.min(prompt.len())].to_vec(),
        },
        params,
        seed,
        joins_at,
    };
    let params = |max_new_tokens, temperature, top_k| SamplingParams {
        max_new_tokens,
        temperature,
        top_k,
        ..SamplingParams::default()
    };
    let reversed: Vec<u32> = text.iter().rev().copied().collect();
    vec![
        request(prompt.len(), text.clone(), params(12, 0.8, 1000), 1, 0),
        request(2, text[..2].to_vec(), params(9, 1.2, 50), 2, 0),
        request(prompt.len() / 2, reversed, params(15, 0.5, 1000), 3, 3),
        request(1, text[1..].to_vec(), params(6, 0.8, 10), 4, 5),
    ]
}

fn alone(t3: &T3, r: &Request) -> Generation {
    let mut generation = Generation::default();
    let mut sampler = SeededSampler::new(r.seed);
    generation.tokens = t3
        .generate_observed(&r.text, &r.cond, &r.params, &mut sampler, &mut |step| {
            generation.logits.push(step.raw_logits.to_vec())
        })
        .unwrap();
    generation
}

/// Decodes the requests in one batch, each joining at its step; also returns the
/// largest number of sequences that decoded together.
fn batched(t3: &T3, requests: &[Request]) -> (Vec<Generation>, usize) {
    let mut batch = T3Batch::default();
    let mut logits: HashMap<usize, Vec<Vec<f32>>> = HashMap::new();
    let mut tokens: HashMap<usize, Vec<u32>> = HashMap::new();
    let mut widest = 0;
    let mut step = 0;
    while tokens.len() < requests.len() {
        for (i, r) in requests
            .iter()
            .enumerate()
            .filter(|(_, r)| r.joins_at == step)
        {
            let sequence = t3.prefill(&r.text, &r.cond, &r.params).unwrap();
            batch.join(i, sequence, Box::new(SeededSampler::new(r.seed)));
        }
        widest = widest.max(batch.len());
        let finished = batch.step_observed(t3, &mut |&i, sample| {
            logits
                .entry(i)
                .or_default()
                .push(sample.raw_logits.to_vec());
        });
        for (i, result) in finished {
            tokens.insert(i, result.unwrap());
        }
        step += 1;
    }
    let generations = (0..requests.len())
        .map(|i| Generation {
            tokens: tokens.remove(&i).unwrap(),
            logits: logits.remove(&i).unwrap_or_default(),
        })
        .collect();
    (generations, widest)
}

fn max_logit_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "sampling steps");
    agreement(a, b).largest_logit_difference
}

#[test]
fn sequences_decoded_together_match_each_decoded_alone() {
    let (f, t3) = fixture();
    let requests = requests(&f);
    let (together, widest) = batched(&t3, &requests);
    assert!(widest >= 3, "at most {widest} sequences decoded together");
    let mut lengths = Vec::new();
    for (i, (r, got)) in requests.iter().zip(&together).enumerate() {
        let expected = alone(&t3, r);
        assert_eq!(got.tokens, expected.tokens, "request {i}");
        let difference = max_logit_difference(&got.logits, &expected.logits);
        println!(
            "request {i}: {} tokens, logits within {difference}",
            got.tokens.len()
        );
        assert!(
            difference <= LOGIT_TOLERANCE,
            "request {i}: logits differ by {difference}"
        );
        lengths.push(got.logits.len());
    }
    lengths.dedup();
    assert!(lengths.len() > 1, "every sequence ran {lengths:?} steps");
}

#[test]
fn a_failing_sequence_leaves_the_others_decoding() {
    let (f, t3) = fixture();
    let requests = requests(&f);
    let mut batch = T3Batch::default();
    for (i, r) in requests.iter().enumerate().take(2) {
        let sequence = t3.prefill(&r.text, &r.cond, &r.params).unwrap();
        batch.join(i, sequence, Box::new(SeededSampler::new(r.seed)));
    }
    struct Failing;
    impl chatterbox::t3::TokenSampler for Failing {
        fn sample(&mut self, _: &[f32]) -> candle_core::Result<usize> {
            candle_core::bail!("no draw")
        }
    }
    let r = &requests[2];
    batch.join(
        2,
        t3.prefill(&r.text, &r.cond, &r.params).unwrap(),
        Box::new(Failing),
    );
    let finished = batch.step(&t3);
    assert_eq!(finished.len(), 1);
    let (key, result) = &finished[0];
    assert_eq!(*key, 2);
    assert!(result.as_ref().unwrap_err().to_string().contains("no draw"));
    assert_eq!(batch.len(), 2);
    let mut tokens = HashMap::new();
    while !batch.is_empty() {
        for (i, result) in batch.step(&t3) {
            tokens.insert(i, result.unwrap());
        }
    }
    for i in 0..2 {
        assert_eq!(tokens[&i], alone(&t3, &requests[i]).tokens, "request {i}");
    }
}

#[test]
fn half_precision_t3_stays_close_to_f32() {
    let (f, t3) = fixture();
    let r = &requests(&f)[0];
    let reference = alone(&t3, r);
    for precision in [Precision::Bf16, Precision::Fp16] {
        let half =
            T3::with_precision(&f.config().unwrap().t3, precision, f.weights().unwrap()).unwrap();
        let first = |t3: &T3| {
            let mut sequence = t3.prefill(&r.text, &r.cond, &r.params).unwrap();
            let mut logits = Vec::new();
            t3.sample_next(&mut sequence, &mut SeededSampler::new(0), &mut |step| {
                logits = step.raw_logits.to_vec()
            })
            .unwrap();
            logits
        };
        let difference = max_logit_difference(&[first(&half)], &reference.logits[..1]);
        let scale = reference.logits[0].iter().fold(0f32, |m, l| m.max(l.abs()));
        println!("{precision}: first-step logits (up to {scale}) differ from f32 by {difference}");
        // A 16-bit float keeps 8 (bf16) or 11 (fp16) significant bits.
        assert!(difference < 0.02 * scale, "{precision}: {difference}");
    }
}

#[test]
fn a_voices_kept_conditioning_gives_what_a_fresh_model_gives() {
    let (f, t3) = fixture();
    let base = &requests(&f)[0];
    // More voices than T3 keeps, each used twice, so some are evicted and computed again.
    let voices: Vec<Request> = (1..=6)
        .map(|prompt_len| Request {
            cond: T3Conditionals {
                speaker_emb: base.cond.speaker_emb.clone(),
                prompt_tokens: base.cond.prompt_tokens[..prompt_len].to_vec(),
            },
            text: base.text.clone(),
            params: base.params.clone(),
            seed: prompt_len as u64,
            joins_at: 0,
        })
        .collect();
    for round in 0..2 {
        for (i, r) in voices.iter().enumerate() {
            let (_, fresh) = fixture();
            let expected = alone(&fresh, r);
            let got = alone(&t3, r);
            assert_eq!(got.tokens, expected.tokens, "round {round}, voice {i}");
            assert_eq!(got.logits, expected.logits, "round {round}, voice {i}");
        }
    }
}
