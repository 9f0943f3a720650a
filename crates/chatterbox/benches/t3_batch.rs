//! T3 decoding several sequences together ([`T3Batch`]) at full size with random
//! weights: the time of one decode step (sampling included) for batches of N sequences,
//! each with its own prompt length, and the tokens per second that gives against one
//! sequence at a time. Decoding reads every weight once per step whatever N, so the
//! step time grows far slower than N until the matmuls stop being bound by memory.
//!
//! ```sh
//! cargo bench -p chatterbox --bench t3_batch -- [--threads 2] [--batch 1,2,4,8] [--steps 32] \
//!     [--precision fp32] [--seed 0]
//! ```

use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device};
use chatterbox::ChatterboxConfig;
use chatterbox::checkpoint;
use chatterbox::rng::{RandomSource, SeededRandom};
use chatterbox::t3::{
    Precision, SamplingParams, SeededSampler, T3, T3Batch, T3Conditionals, TokenSampler,
};
use chatterbox::weights::{CheckpointManifest, random_checkpoint};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Prompt tokens of the longest sequence (a 10 s reference clip); each further sequence
/// has [`PROMPT_STEP`] fewer, so the batch mixes lengths.
const PROMPT_TOKENS: usize = 250;
const PROMPT_STEP: usize = 7;
const TEXT_TOKENS: usize = 40;
const SPEECH_VOCAB: u32 = 6561;
const STOP_TOKEN: usize = 6562;
/// Steps run before timing (the first allocate the caches' buffers).
const WARM_UP_STEPS: usize = 2;

struct Args {
    threads: usize,
    batches: Vec<usize>,
    steps: usize,
    precision: Precision,
    seed: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        threads: 2,
        batches: vec![1, 2, 4, 8],
        steps: 32,
        precision: Precision::Fp32,
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--threads" => args.threads = value()?.parse()?,
            "--batch" => {
                args.batches = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--steps" => args.steps = value()?.parse()?,
            "--precision" => args.precision = value()?.parse()?,
            "--seed" => args.seed = value()?.parse()?,
            // `cargo bench` passes `--bench` to harness-less benchmarks.
            "--bench" => {}
            other => bail!("unknown argument {other}"),
        }
    }
    if args.threads == 0 || args.steps == 0 || args.batches.contains(&0) {
        bail!("--threads, --steps and every --batch size must be at least 1");
    }
    Ok(args)
}

/// Seeded sampling that never picks the stop token, so no sequence leaves the batch.
struct NeverStop(SeededSampler);

impl TokenSampler for NeverStop {
    fn sample(&mut self, probs: &[f32]) -> candle_core::Result<usize> {
        let mut probs = probs.to_vec();
        probs[STOP_TOKEN] = 0.0;
        self.0.sample(&probs)
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // SAFETY: set before any other thread starts; candle and rayon read it for their pools.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string()) };
    // SAFETY: as above; the product's defaults for candle's thread pool.
    unsafe { chatterbox::set_thread_defaults() };
    let device = Device::Cpu;
    let cfg = ChatterboxConfig::default().t3;
    let dir = tempfile::tempdir()?;
    let mut manifest = CheckpointManifest::official();
    manifest.retain(|file, _| file == checkpoint::T3_WEIGHTS);
    let files = random_checkpoint(&manifest, dir.path(), args.seed)?;
    let vb = chatterbox::weights::load(&files, DType::F32, &device)?;
    let t3 = T3::with_precision(&cfg, args.precision, vb)?;
    println!(
        "T3 Turbo, full size, random weights, {}, CPU with {} threads: {} timed steps per batch",
        args.precision, args.threads, args.steps
    );

    let mut rng = SeededRandom::new(args.seed);
    let mut token_rng = StdRng::seed_from_u64(args.seed);
    let mut random_tokens = |n: usize, vocab: u32| -> Vec<u32> {
        (0..n).map(|_| token_rng.random_range(0..vocab)).collect()
    };
    let widest = args.batches.iter().copied().max().unwrap_or(1);
    let requests = (0..widest)
        .map(|i| -> anyhow::Result<_> {
            let prompt = PROMPT_TOKENS.saturating_sub(i * PROMPT_STEP).max(1);
            let cond = T3Conditionals {
                speaker_emb: rng.randn(&[1, cfg.speaker_embed_size], &device)?,
                prompt_tokens: random_tokens(prompt, SPEECH_VOCAB),
            };
            Ok((random_tokens(TEXT_TOKENS, 256), cond))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let params = SamplingParams {
        max_new_tokens: WARM_UP_STEPS + args.steps + 2,
        ..SamplingParams::default()
    };

    let mut single_rate = None;
    for &n in &args.batches {
        let mut batch = T3Batch::default();
        for (i, (text, cond)) in requests.iter().take(n).enumerate() {
            let sequence = t3.prefill(text, cond, &params)?;
            let sampler = NeverStop(SeededSampler::new(args.seed + i as u64));
            batch.join(i, sequence, Box::new(sampler));
        }
        let step = |batch: &mut T3Batch<usize>| -> anyhow::Result<()> {
            if let Some((i, result)) = batch.step(&t3).into_iter().next() {
                bail!("sequence {i} left the batch early: {result:?}");
            }
            Ok(())
        };
        for _ in 0..WARM_UP_STEPS {
            step(&mut batch)?;
        }
        let start = Instant::now();
        for _ in 0..args.steps {
            step(&mut batch)?;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let rate = (n * args.steps) as f64 / elapsed;
        if n == 1 {
            single_rate = Some(rate);
        }
        let against_single = single_rate.map_or(String::new(), |single| {
            format!(" ({:.2} x batch 1)", rate / single)
        });
        println!(
            "t3 batch {n}: {:.1} ms/step, {rate:.1} tokens/s{against_single}",
            1000.0 * elapsed / args.steps as f64
        );
    }
    Ok(())
}
