//! The native engine's speed on the machine it runs on, for GPU workers (docs/gpu.md) as
//! for CPUs: on a random full-size checkpoint it writes itself (or the tiny test one), it
//! prints T3's milliseconds per token, S3Gen's real-time factor, the first audio of a
//! stream, the real-time streams several generations at once sustain (their T3 decoded in
//! one batch, as the engine does), and how far the device's output is from the CPU's.
//!
//! ```sh
//! cargo run --release -p resonance-engine --features native --example native_bench -- \
//!     [--device auto] [--precision fp32] [--model full|tiny] [--tokens 250] \
//!     [--first-chunk-tokens 50] [--concurrency 1,8,32] [--parity-tokens 50] [--threads N] \
//!     [--seed 0]
//! ```
//!
//! `scripts/build-cuda build -p resonance-engine --profile dist --example native_bench`
//! builds it for GPUs; `scripts/gpu-bench` runs it there.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use candle_core::{DType, Device};
use chatterbox::conditionals::Conditionals;
use chatterbox::parity::agreement::agreement;
use chatterbox::rng::SeededRandom;
use chatterbox::t3::{Precision, SamplingParams, TokenSampler};
use chatterbox::testing::NeverStop;
use chatterbox::tts::{ChatterboxTurbo, SAMPLE_RATE, SynthesisOptions};
use rand::{Rng, SeedableRng, rngs::StdRng};
use resonance_engine::native::{DeviceSetting, T3Scheduler, describe};

const TEXT_TOKENS: usize = 40;
/// Speech tokens per second of audio.
const TOKENS_PER_SECOND: f64 = 25.0;

struct Args {
    device: DeviceSetting,
    precision: Precision,
    tiny: bool,
    tokens: usize,
    first_chunk_tokens: usize,
    concurrency: Vec<usize>,
    parity_tokens: usize,
    threads: Option<usize>,
    seed: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        device: DeviceSetting::Auto,
        precision: Precision::Fp32,
        tiny: false,
        tokens: 250,
        first_chunk_tokens: 50,
        concurrency: vec![1, 8, 32],
        parity_tokens: 50,
        threads: None,
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => args.device = value()?.parse()?,
            "--precision" => args.precision = value()?.parse()?,
            "--model" => {
                args.tiny = match value()?.as_str() {
                    "tiny" => true,
                    "full" => false,
                    other => bail!("--model is full or tiny, not {other}"),
                }
            }
            "--tokens" => args.tokens = value()?.parse()?,
            "--first-chunk-tokens" => args.first_chunk_tokens = value()?.parse()?,
            "--concurrency" => {
                args.concurrency = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--parity-tokens" => args.parity_tokens = value()?.parse()?,
            "--threads" => args.threads = Some(value()?.parse()?),
            "--seed" => args.seed = value()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if args.tokens < 2 || args.first_chunk_tokens == 0 || args.concurrency.contains(&0) {
        bail!("--tokens must be at least 2, --first-chunk-tokens and --concurrency at least 1");
    }
    Ok(args)
}

/// Picks the given tokens in order (teacher forcing), whatever the distribution.
struct Forced(std::vec::IntoIter<u32>);

impl TokenSampler for Forced {
    fn sample(&mut self, _: &[f32]) -> candle_core::Result<usize> {
        self.0
            .next()
            .map(|t| t as usize)
            .ok_or_else(|| candle_core::Error::Msg("no forced token left".into()))
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if let Some(threads) = args.threads {
        // SAFETY: set before any other thread starts; candle and rayon read it for their pools.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
    // SAFETY: as above; the product's defaults for candle's thread pool.
    unsafe { chatterbox::set_thread_defaults() };
    let dir = tempfile::tempdir()?;
    let start = Instant::now();
    write_checkpoint(dir.path(), args.tiny, args.seed)?;
    let written = start.elapsed();
    let device = args.device.open()?;
    let model = Arc::new(load(dir.path(), &device, args.precision)?);
    println!(
        "Chatterbox Turbo, {} random weights, on {}, T3 in {}: checkpoint written in {:.1} s, \
         loaded in {:.1} s",
        if args.tiny { "tiny" } else { "full-size" },
        describe(&device),
        args.precision,
        written.as_secs_f64(),
        (start.elapsed() - written).as_secs_f64()
    );
    let voice = voice(&model, &device, args.seed)?;
    let mut text_rng = StdRng::seed_from_u64(args.seed);
    let text: Vec<u32> = (0..TEXT_TOKENS)
        .map(|_| text_rng.random_range(0..256))
        .collect();
    let sampling = |max_new_tokens| SamplingParams {
        max_new_tokens,
        ..SamplingParams::default()
    };
    let never_stop = || NeverStop::new(args.seed);

    // Warm-up: kernels compiled and buffers allocated before anything is timed.
    let warm = model.speech_tokens(&text, &voice, &sampling(4), &mut never_stop())?;
    audio(&model, &warm, &voice, args.seed)?;

    let mut first_token = None;
    let start = Instant::now();
    let tokens = model.speech_tokens_observed(
        &text,
        &voice,
        &sampling(args.tokens),
        &mut never_stop(),
        &mut |_| {
            first_token.get_or_insert_with(|| start.elapsed());
        },
    )?;
    let t3_time = start.elapsed();
    let prefill = first_token.context("no token sampled")?;
    let decode_ms = 1000.0 * (t3_time - prefill).as_secs_f64() / (tokens.len() - 1) as f64;
    println!(
        "T3: prefill {:.1} ms, decode {decode_ms:.2} ms/token, {} tokens in {:.2} s",
        1000.0 * prefill.as_secs_f64(),
        tokens.len(),
        t3_time.as_secs_f64()
    );
    let start = Instant::now();
    let wave = audio(&model, &tokens, &voice, args.seed)?;
    let s3gen_time = start.elapsed();
    let seconds = wave.len() as f64 / f64::from(SAMPLE_RATE);
    println!(
        "S3Gen: {:.2} s for {seconds:.2} s of audio, RTF {:.3}; single stream RTF {:.3}",
        s3gen_time.as_secs_f64(),
        s3gen_time.as_secs_f64() / seconds,
        (t3_time + s3gen_time).as_secs_f64() / seconds
    );

    let start = Instant::now();
    let chunk = model.speech_tokens(
        &text,
        &voice,
        &sampling(args.first_chunk_tokens),
        &mut never_stop(),
    )?;
    audio(&model, &chunk, &voice, args.seed)?;
    println!(
        "first audio: {:.0} ms (a first chunk of {} tokens, {:.1} s of audio, T3 and S3Gen)",
        1000.0 * start.elapsed().as_secs_f64(),
        chunk.len(),
        chunk.len() as f64 / TOKENS_PER_SECOND
    );

    for &concurrency in &args.concurrency {
        let (seconds, wall) = concurrent(&model, &voice, &text, &args, concurrency)?;
        println!(
            "{concurrency} concurrent generations: {seconds:.1} s of audio in {:.2} s = {:.1} \
             real-time streams",
            wall.as_secs_f64(),
            seconds / wall.as_secs_f64()
        );
    }

    if args.parity_tokens > 0 {
        parity(&model, dir.path(), &voice, &text, &args)?;
    }
    Ok(())
}

fn write_checkpoint(dir: &Path, tiny: bool, seed: u64) -> anyhow::Result<()> {
    if tiny {
        chatterbox::testing::write_tiny_checkpoint(dir)?;
    } else {
        chatterbox::testing::write_full_size_checkpoint(dir, seed)?;
    }
    Ok(())
}

fn load(dir: &Path, device: &Device, precision: Precision) -> anyhow::Result<ChatterboxTurbo> {
    let cfg = ChatterboxTurbo::config_for(dir, &chatterbox::checkpoint::TURBO)?;
    Ok(ChatterboxTurbo::load_with_precision(
        dir,
        &chatterbox::checkpoint::TURBO,
        &cfg,
        device,
        precision,
        chatterbox::s3gen::S3GenPrecision::default(),
    )?)
}

/// The tiny checkpoint's built-in voice, or random conditioning of a 10 s clip.
fn voice(model: &ChatterboxTurbo, device: &Device, seed: u64) -> anyhow::Result<Conditionals> {
    match model.builtin_voice() {
        Some(voice) => Ok(voice),
        None => Ok(chatterbox::testing::random_voice(
            model.config(),
            device,
            seed,
        )?),
    }
}

/// S3Gen's samples for `tokens` (copied to the host, so the device has finished).
fn audio(
    model: &ChatterboxTurbo,
    tokens: &[u32],
    voice: &Conditionals,
    seed: u64,
) -> anyhow::Result<Vec<f32>> {
    let wave = model.vocode(tokens, voice, &mut SeededRandom::new(seed))?;
    Ok(wave.to_dtype(DType::F32)?.to_vec1()?)
}

/// `concurrency` generations of `--tokens` tokens at once, each on its own thread as the
/// engine runs them, T3 decoded in one batch: the seconds of audio made and the wall time.
fn concurrent(
    model: &Arc<ChatterboxTurbo>,
    voice: &Conditionals,
    text: &[u32],
    args: &Args,
    concurrency: usize,
) -> anyhow::Result<(f64, Duration)> {
    let scheduler = Arc::new(T3Scheduler::start(model.clone()));
    let start = Instant::now();
    let generations: Vec<_> = (0..concurrency)
        .map(|i| {
            let (model, scheduler, voice) = (model.clone(), scheduler.clone(), voice.clone());
            let text = text.to_vec();
            let options = SynthesisOptions {
                sampling: SamplingParams {
                    max_new_tokens: args.tokens,
                    ..SamplingParams::default()
                },
                seed: args.seed + i as u64,
            };
            std::thread::spawn(move || -> anyhow::Result<f64> {
                let mut tokens = Vec::new();
                let spoken = || true;
                scheduler.speech_tokens(
                    &model,
                    &text,
                    &voice.t3,
                    &options,
                    &spoken,
                    &mut |token| {
                        tokens.push(token);
                        Ok(())
                    },
                )?;
                let samples = audio(&model, &tokens, &voice, options.seed)?;
                Ok(samples.len() as f64 / f64::from(SAMPLE_RATE))
            })
        })
        .collect();
    let mut seconds = 0.0;
    for generation in generations {
        seconds += generation
            .join()
            .map_err(|_| anyhow::anyhow!("a generation panicked"))??;
    }
    Ok((seconds, start.elapsed()))
}

/// T3's next-token distributions on this device against the CPU's in f32, teacher-forced
/// with this device's tokens, and S3Gen's audio for the same tokens and seed.
fn parity(
    model: &ChatterboxTurbo,
    dir: &Path,
    voice: &Conditionals,
    text: &[u32],
    args: &Args,
) -> anyhow::Result<()> {
    let cpu = load(dir, &Device::Cpu, Precision::Fp32)?;
    let cpu_voice = Conditionals::from_safetensors(&voice.to_safetensors()?, &Device::Cpu)?;
    let sampling = SamplingParams {
        max_new_tokens: args.parity_tokens,
        ..SamplingParams::default()
    };
    let mut here = Vec::new();
    let tokens = model.speech_tokens_observed(
        text,
        voice,
        &sampling,
        &mut NeverStop::new(args.seed),
        &mut |step| here.push(step.raw_logits.to_vec()),
    )?;
    let mut there = Vec::new();
    cpu.speech_tokens_observed(
        text,
        &cpu_voice,
        &sampling,
        &mut Forced(tokens.clone().into_iter()),
        &mut |step| there.push(step.raw_logits.to_vec()),
    )?;
    let t3 = agreement(&there, &here);
    println!(
        "parity with the CPU (f32), T3 over {} steps: mean KL(cpu || here) {:.5}, top-1 \
         agreement {:.1} %, largest logit difference {:.4}",
        there.len(),
        t3.mean_kl,
        100.0 * t3.top1,
        t3.largest_logit_difference
    );
    let here = audio(model, &tokens, voice, args.seed)?;
    let there = audio(&cpu, &tokens, &cpu_voice, args.seed)?;
    let signal: f64 = there.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    let noise: f64 = there
        .iter()
        .zip(&here)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    println!(
        "parity with the CPU (f32), S3Gen on the same {} tokens: SNR {:.1} dB",
        tokens.len(),
        10.0 * (signal / noise.max(f64::MIN_POSITIVE)).log10()
    );
    Ok(())
}
