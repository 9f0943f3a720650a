//! The whole model on the CPU at full size with random weights (the official
//! layout): T3's prefill time and decode rate for `--tokens` speech tokens, then
//! S3Gen on them, the whole pipeline's real-time factor and the peak memory, at
//! the default precision of T3; then T3 alone in every precision.
//! The stop token is never sampled, so T3 makes exactly `--tokens` tokens
//! (250 = 10 s of audio), as `pipeline_reference.py` does.
//!
//! ```sh
//! cargo bench -p chatterbox --features parity --bench pipeline -- [--threads 2] [--tokens 250] [--seed 0] \
//!     [--reference PYTHON]
//! ```
//!
//! With `--reference PYTHON` (a Python with `chatterbox-tts==0.1.7` installed), the
//! Python reference's benchmark (`benches/pipeline_reference.py`, its models from
//! `crates/chatterbox/reference/make_fixtures.py`) runs right after ours on the same
//! machine and the ratios are printed. Both sides split T3 into the prefill (up to the
//! first sampled token) and the decode steps, and also give its total per token.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use candle_core::{DType, Device};
use chatterbox::checkpoint;
use chatterbox::conditionals::Conditionals;
use chatterbox::rng::{RandomSource, SeededRandom};
use chatterbox::s3gen::S3GenConditionals;
use chatterbox::t3::{Precision, SampleStep, SamplingParams, T3, T3Conditionals, TokenSampler};
use chatterbox::testing::NeverStop;
use chatterbox::tts::SAMPLE_RATE;
use chatterbox::weights::{CheckpointManifest, random_checkpoint};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// What `prepare_conditionals` gives for a 10 s reference clip: 250 prompt tokens
/// for T3 and S3Gen, 500 mel frames.
const PROMPT_TOKENS: usize = 250;
/// Text tokens of the prompt (as `pipeline_reference.py`).
const TEXT_TOKENS: usize = 40;
const SPEECH_VOCAB: u32 = 6561;

struct Args {
    threads: usize,
    tokens: usize,
    seed: u64,
    reference_python: Option<String>,
}

const REFERENCE_SCRIPT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pipeline_reference.py");

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        threads: 2,
        tokens: 250,
        seed: 0,
        reference_python: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--threads" => args.threads = value()?.parse()?,
            "--tokens" => args.tokens = value()?.parse()?,
            "--seed" => args.seed = value()?.parse()?,
            "--reference" => args.reference_python = Some(value()?),
            // `cargo bench` passes `--bench` to harness-less benchmarks.
            "--bench" => {}
            other => bail!("unknown argument {other}"),
        }
    }
    if args.threads == 0 || args.tokens < 2 {
        bail!("--threads must be at least 1 and --tokens at least 2");
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // SAFETY: set before any other thread starts; candle and rayon read it for their pools.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string()) };
    // SAFETY: as above; the product's defaults for candle's thread pool.
    unsafe { chatterbox::set_thread_defaults() };
    println!(
        "Chatterbox Turbo, full size, random weights, CPU with {} threads: {} speech tokens",
        args.threads, args.tokens
    );
    println!("T3 precision: {}", Precision::default());
    let s3gen_precision = chatterbox::s3gen::S3GenPrecision::default();
    println!(
        "S3Gen precision: {s3gen_precision}{}",
        if s3gen_precision.bf16_products_on(&Device::Cpu) {
            ""
        } else {
            " (as fp32 on this CPU)"
        }
    );

    let dir = tempfile::tempdir()?;
    let start = Instant::now();
    random_checkpoint(&CheckpointManifest::official(), dir.path(), args.seed)?;
    std::fs::write(
        dir.path().join(checkpoint::TOKENIZER),
        chatterbox::testing::byte_level_tokenizer_json(true),
    )?;
    let written = start.elapsed();
    let model = chatterbox::testing::load_turbo(dir.path())?;
    let cfg = model.config().clone();
    println!(
        "random checkpoint written in {:.1} s, verified and loaded in {:.1} s",
        written.as_secs_f64(),
        (start.elapsed() - written).as_secs_f64()
    );

    let device = Device::Cpu;
    let mut rng = SeededRandom::new(args.seed);
    let mut token_rng = StdRng::seed_from_u64(args.seed);
    let mut random_tokens = |n: usize, vocab: u32| -> Vec<u32> {
        (0..n).map(|_| token_rng.random_range(0..vocab)).collect()
    };
    let prompt = random_tokens(PROMPT_TOKENS, SPEECH_VOCAB);
    let voice = Conditionals {
        t3: T3Conditionals {
            speaker_emb: rng.randn(&[1, cfg.t3.speaker_embed_size], &device)?,
            prompt_tokens: prompt.clone(),
        },
        s3gen: S3GenConditionals {
            tokens: candle_core::Tensor::new(prompt.as_slice(), &device)?.unsqueeze(0)?,
            // A log-mel around -5 (quiet speech), 2 frames per token.
            mel: (rng.randn(&[1, 2 * PROMPT_TOKENS, cfg.flow.output_size], &device)? - 5.0)?,
            embedding: rng.randn(&[1, cfg.flow.spk_embed_dim], &device)?,
        },
    };
    let text = random_tokens(TEXT_TOKENS, 256);
    let sampling = |max_new_tokens| SamplingParams {
        max_new_tokens,
        ..SamplingParams::default()
    };

    // Warm-up: a short generation and vocoding.
    let warm = model.speech_tokens(&text, &voice, &sampling(4), &mut NeverStop::new(1))?;
    model.vocode(&warm, &voice, &mut rng)?;

    let t3_run = timed_t3(&args, |sampler, observe| {
        model.speech_tokens_observed(&text, &voice, &sampling(args.tokens), sampler, observe)
    })?;
    let (tokens, t3_time, prefill, decode) =
        (t3_run.tokens, t3_run.total, t3_run.prefill, t3_run.decode);
    let s3gen_start = Instant::now();
    let wave = model.vocode(&tokens, &voice, &mut rng)?;
    let s3gen_time = s3gen_start.elapsed();
    let audio_s = wave.dim(0)? as f64 / f64::from(SAMPLE_RATE);

    // The warm-up used the same voice, so T3 kept its conditioning's keys and values: the
    // timed prefill computes the text's positions only. A voice's first request also
    // computes its conditioning.
    let mut new_voice = voice.clone();
    new_voice.t3.speaker_emb = rng.randn(&[1, cfg.t3.speaker_embed_size], &device)?;
    let new_voice_start = Instant::now();
    model.speech_tokens(&text, &new_voice, &sampling(1), &mut NeverStop::new(1))?;
    let new_voice_prefill = new_voice_start.elapsed();

    let prefix = 1 + PROMPT_TOKENS + TEXT_TOKENS + 1;
    println!(
        "T3 prefill ({prefix} positions, first token): {:.2} s",
        prefill.as_secs_f64()
    );
    println!(
        "  the voice's {} conditioning positions kept from an earlier request; \
         a new voice's first prefill: {:.2} s",
        1 + PROMPT_TOKENS,
        new_voice_prefill.as_secs_f64()
    );
    println!(
        "T3 decode: {} tokens in {:.2} s = {:.1} tokens/s ({:.0} ms/token)",
        args.tokens - 1,
        decode.as_secs_f64(),
        (args.tokens - 1) as f64 / decode.as_secs_f64(),
        1000.0 * decode.as_secs_f64() / (args.tokens - 1) as f64
    );
    let report = |stage: &str, time: Duration| {
        let s = time.as_secs_f64();
        println!("{stage:<26} {s:>7.2} s  RTF {:.3}", s / audio_s);
    };
    println!(
        "T3 overall: {} tokens in {:.2} s = {:.0} ms/token (prefill included)",
        args.tokens,
        t3_time.as_secs_f64(),
        1000.0 * t3_time.as_secs_f64() / args.tokens as f64
    );
    println!("audio: {audio_s:.2} s");
    report("T3 (prefill + decode)", t3_time);
    report("S3Gen (flow, CFM, HiFT)", s3gen_time);
    report("pipeline", t3_time + s3gen_time);
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS (VmHWM) {:.0} MB", kib as f64 / 1024.0);
    }
    if let Some(python) = &args.reference_python {
        let reference = run_reference(python, &args)?;
        println!("ours / reference (wall time):");
        println!(
            "  T3 {:.2}, S3Gen {:.2}, pipeline {:.2}",
            t3_time.as_secs_f64() / reference.t3_s,
            s3gen_time.as_secs_f64() / reference.s3gen_s,
            (t3_time + s3gen_time).as_secs_f64() / (reference.t3_s + reference.s3gen_s)
        );
        println!(
            "  T3 prefill {:.2}, T3 decode {:.2}",
            prefill.as_secs_f64() / reference.t3_prefill_s,
            decode.as_secs_f64() / reference.t3_decode_s
        );
    }
    drop(model);

    println!(
        "T3 alone by precision ({prefix} prefill positions, {} tokens):",
        args.tokens
    );
    let row = |label: &str, t3: &T3, load: Duration| -> anyhow::Result<()> {
        t3.generate(&text, &voice.t3, &sampling(4), &mut NeverStop::new(1))?;
        let run = timed_t3(&args, |sampler, observe| {
            t3.generate_observed(&text, &voice.t3, &sampling(args.tokens), sampler, observe)
        })?;
        println!(
            "  T3 {label}: prefill {:.2} s, decode {:.1} ms/token, total {:.2} s \
             (loaded in {:.1} s)",
            run.prefill.as_secs_f64(),
            1000.0 * run.decode.as_secs_f64() / (args.tokens - 1) as f64,
            run.total.as_secs_f64(),
            load.as_secs_f64()
        );
        Ok(())
    };
    let timed_load = |file: &str, cfg: &chatterbox::config::T3Config, precision| {
        let vb = chatterbox::weights::load(&[dir.path().join(file)], DType::F32, &device)?;
        let start = Instant::now();
        let t3 = T3::with_precision(cfg, precision, vb)?;
        anyhow::Ok((t3, start.elapsed()))
    };
    for precision in Precision::ALL {
        let (t3, load) = timed_load(checkpoint::T3_WEIGHTS, &cfg.t3, precision)?;
        row(precision.as_str(), &t3, load)?;
    }

    // Chatterbox Nano's T3 (GPT-2 small, random weights in its official layout), its
    // shape read from the file, at the default precision.
    let mut nano = CheckpointManifest::of(&checkpoint::NANO);
    nano.retain(|file, _| file == checkpoint::NANO_T3_WEIGHTS);
    random_checkpoint(&nano, dir.path(), args.seed)?;
    let nano_cfg = cfg
        .t3
        .with_checkpoint_shapes(&nano.files[checkpoint::NANO_T3_WEIGHTS].tensors)
        .map_err(anyhow::Error::msg)?;
    let precision = Precision::default();
    let (t3, load) = timed_load(checkpoint::NANO_T3_WEIGHTS, &nano_cfg, precision)?;
    row(&format!("nano {precision}"), &t3, load)?;
    Ok(())
}

/// One T3 generation: its tokens, total time, time to the first token (the prefill)
/// and the time of the decode steps after it.
struct T3Run {
    tokens: Vec<u32>,
    total: Duration,
    prefill: Duration,
    decode: Duration,
}

/// Times `generate` (given a sampler that never stops and an observer), checking it
/// made exactly `--tokens` tokens.
fn timed_t3(
    args: &Args,
    generate: impl FnOnce(
        &mut dyn TokenSampler,
        &mut dyn FnMut(SampleStep),
    ) -> candle_core::Result<Vec<u32>>,
) -> anyhow::Result<T3Run> {
    let mut sampler = NeverStop::new(args.seed);
    let start = Instant::now();
    let mut first_token: Option<Duration> = None;
    let tokens = generate(&mut sampler, &mut |_| {
        first_token.get_or_insert_with(|| start.elapsed());
    })?;
    let total = start.elapsed();
    if tokens.len() != args.tokens {
        bail!("T3 made {} tokens, not {}", tokens.len(), args.tokens);
    }
    let prefill = first_token.context("no token sampled")?;
    Ok(T3Run {
        tokens,
        total,
        prefill,
        decode: total - prefill,
    })
}

/// The reference's T3 and S3Gen times, read from `pipeline_reference.py`'s report.
struct ReferenceTimes {
    t3_s: f64,
    t3_prefill_s: f64,
    t3_decode_s: f64,
    s3gen_s: f64,
}

fn run_reference(python: &str, args: &Args) -> anyhow::Result<ReferenceTimes> {
    let stdout = chatterbox::testing::run_reference_script(
        python,
        REFERENCE_SCRIPT,
        &[
            "--threads".into(),
            args.threads.to_string(),
            "--tokens".into(),
            args.tokens.to_string(),
            "--seed".into(),
            args.seed.to_string(),
        ],
    )?;
    // "(a) T3 Turbo 250 tokens: 83.10 s = ...", "(a1) T3 prefill, ...: 2.10 s",
    // "(a2) T3 decode, 249 tokens: 81.00 s = ..." and "(b) S3Gen meanflow ...: 25.13 s, RTF ..."
    let seconds_after = |marker: &str| -> anyhow::Result<f64> {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(marker))
            .with_context(|| format!("no {marker:?} line in the reference's report"))?;
        let (_, rest) = line.rsplit_once(": ").context("no ': ' in the line")?;
        let number = rest.split(" s").next().unwrap_or_default();
        number
            .parse()
            .with_context(|| format!("cannot read the time in {line:?}"))
    };
    Ok(ReferenceTimes {
        t3_s: seconds_after("(a) T3 Turbo")?,
        t3_prefill_s: seconds_after("(a1) T3 prefill")?,
        t3_decode_s: seconds_after("(a2) T3 decode")?,
        s3gen_s: seconds_after("(b) S3Gen")?,
    })
}

/// `VmHWM` of `/proc/self/status` in KiB (Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
