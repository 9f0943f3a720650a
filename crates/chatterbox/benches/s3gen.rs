//! S3Gen on the CPU at full size with random weights: seconds and real-time factor
//! (compute seconds per second of audio) of the flow encoder, the meanflow CFM and HiFT
//! for a 10 s voice prompt and `--tokens` speech tokens (25 per second of audio).
//!
//! ```sh
//! cargo bench -p chatterbox --features parity --bench s3gen -- [--threads 2] [--tokens 250] [--seed 0]
//!     [--precision bf16|fp32] [--reference PYTHON [--reference-tools DIR]]
//! ```
//!
//! S3Gen runs in `--precision` (by default the default, `bf16`); when that is not `fp32`,
//! the same synthesis in `fp32` follows as the baseline, with the ratios.
//!
//! With `--reference PYTHON` (a Python with `chatterbox-tts==0.1.7` installed), the same
//! benchmark of the Python reference (`benches/s3gen_reference.py`, which builds its
//! random full-size model with `make_fixtures.py` of `--reference-tools`, by default the
//! repository's `crates/chatterbox/reference`) runs afterwards and is compared with ours.
//! Besides wall-clock time, both report the process CPU time, which is steadier on a
//! shared machine.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};
use chatterbox::ChatterboxConfig;
use chatterbox::rng::{RandomSource, SeededRandom};
use chatterbox::s3gen::{CHECKPOINT_FILE, S3Gen, S3GenConditionals, S3GenPrecision, StageTimings};
use chatterbox::weights::{CheckpointManifest, random_checkpoint};
use rand::{Rng, SeedableRng, rngs::StdRng};

const SAMPLE_RATE: f64 = 24_000.0;
const TOKENS_PER_SECOND: f64 = 25.0;
/// Speech tokens of the voice prompt: `embed_ref` keeps 10 s of the reference clip.
const PROMPT_TOKENS: usize = 250;
const SILENCE_TOKEN: u32 = 4299;
const SPEECH_VOCAB: u32 = 6561;
const DEFAULT_REFERENCE_TOOLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/reference");

struct Args {
    threads: usize,
    tokens: usize,
    seed: u64,
    precision: S3GenPrecision,
    reference_python: Option<String>,
    reference_tools: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        threads: 2,
        tokens: 250,
        seed: 0,
        precision: S3GenPrecision::default(),
        reference_python: None,
        reference_tools: PathBuf::from(DEFAULT_REFERENCE_TOOLS),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--threads" => args.threads = value()?.parse()?,
            "--tokens" => args.tokens = value()?.parse()?,
            "--seed" => args.seed = value()?.parse()?,
            "--precision" => args.precision = value()?.parse()?,
            "--reference" => args.reference_python = Some(value()?),
            "--reference-tools" => args.reference_tools = PathBuf::from(value()?),
            // `cargo bench` passes `--bench` to harness-less benchmarks.
            "--bench" => {}
            other => bail!("unknown argument {other}"),
        }
    }
    if args.threads == 0 || args.tokens < 4 {
        bail!("--threads must be at least 1 and --tokens at least 4");
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
        "S3Gen meanflow, full size, random weights, CPU with {} threads: {} tokens after a {}-token prompt",
        args.threads, args.tokens, PROMPT_TOKENS
    );

    let dir = tempfile::tempdir()?;
    let mut manifest = CheckpointManifest::load(
        &chatterbox::parity::fixtures::fixture_dir().join("manifest_full.json"),
    )?;
    manifest.retain(|file, name| {
        file == CHECKPOINT_FILE && S3Gen::WEIGHT_PREFIXES.iter().any(|p| name.starts_with(p))
    });
    let start = Instant::now();
    let files = random_checkpoint(&manifest, dir.path(), args.seed)?;
    let cfg = ChatterboxConfig::default();
    let load = |precision| -> anyhow::Result<S3Gen> {
        let vb = chatterbox::weights::load(&files, DType::F32, &Device::Cpu)?;
        Ok(S3Gen::with_precision(&cfg, precision, vb)?)
    };
    let s3gen = load(args.precision)?;
    println!(
        "random checkpoint written and loaded in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let bf16_products = args.precision.bf16_products_on(&Device::Cpu);
    println!(
        "precision {}{}",
        args.precision,
        if args.precision == S3GenPrecision::Bf16 && !bf16_products {
            " (this CPU has no AVX-512 BF16: the products run in f32)"
        } else {
            ""
        }
    );

    let mut rng = SeededRandom::new(args.seed);
    let mut token_rng = StdRng::seed_from_u64(args.seed);
    let mut random_tokens = |n: usize| -> Vec<u32> {
        (0..n)
            .map(|_| token_rng.random_range(0..SPEECH_VOCAB))
            .collect()
    };
    let conditionals = S3GenConditionals {
        tokens: Tensor::new(random_tokens(PROMPT_TOKENS), &Device::Cpu)?.unsqueeze(0)?,
        // A log-mel around -5 (quiet speech), 2 frames per token.
        mel: (rng.randn(&[1, 2 * PROMPT_TOKENS, cfg.flow.output_size], &Device::Cpu)? - 5.0)?,
        embedding: rng.randn(&[1, cfg.flow.spk_embed_dim], &Device::Cpu)?,
    };
    // As `generate` passes them: the speech tokens, then 3 silence tokens.
    let mut tokens = random_tokens(args.tokens - 3);
    tokens.extend([SILENCE_TOKEN; 3]);
    let tokens = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
    let run = |s3gen: &S3Gen| -> anyhow::Result<(f64, StageTimings, f64)> {
        let mut rng = SeededRandom::new(args.seed);
        s3gen.inference(&tokens.narrow(1, 0, 25)?, &conditionals, &mut rng)?; // warm-up
        let cpu_before = process_cpu_seconds()?;
        let (wave, timings) = s3gen.inference_timed(&tokens, &conditionals, &mut rng)?;
        let cpu = process_cpu_seconds()? - cpu_before;
        Ok((wave.dim(1)? as f64 / SAMPLE_RATE, timings, cpu))
    };

    let (audio_s, timings, cpu) = run(&s3gen)?;
    println!(
        "{} tokens -> {audio_s:.2} s of audio ({} tokens / s)",
        args.tokens, TOKENS_PER_SECOND
    );
    let report = |stage: &str, time: Duration| {
        let s = time.as_secs_f64();
        println!("  {stage:<13} {s:>7.2} s  RTF {:.3}", s / audio_s);
    };
    report("flow encoder", timings.flow_encoder);
    report("CFM (2 steps)", timings.cfm);
    report("HiFT", timings.hift);
    report("total", timings.total());
    println!("  process CPU time {cpu:.2} s");
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS {:.0} MB", kib as f64 / 1024.0);
    }

    if bf16_products {
        drop(s3gen);
        let (_, fp32, fp32_cpu) = run(&load(S3GenPrecision::Fp32)?)?;
        let s = |d: Duration| d.as_secs_f64();
        println!(
            "fp32, same run: flow encoder {:.2} s, CFM {:.2} s, HiFT {:.2} s, total {:.2} s, CPU time {fp32_cpu:.2} s",
            s(fp32.flow_encoder),
            s(fp32.cfm),
            s(fp32.hift),
            s(fp32.total())
        );
        println!(
            "{} / fp32: CFM {:.2}, total {:.2}, CPU time {:.2}",
            args.precision,
            s(timings.cfm) / s(fp32.cfm),
            s(timings.total()) / s(fp32.total()),
            cpu / fp32_cpu
        );
    }

    if let Some(python) = &args.reference_python {
        let reference = run_reference(python, &args)?;
        let ours = timings.total().as_secs_f64();
        println!(
            "ours / reference: wall {:.2}, CPU time {:.2}",
            ours / reference.total_s,
            cpu / reference.total_cpu_s
        );
    }
    Ok(())
}

/// The `RESULT` line of `s3gen_reference.py`.
#[derive(serde::Deserialize)]
struct ReferenceResult {
    total_s: f64,
    total_cpu_s: f64,
}

fn run_reference(python: &str, args: &Args) -> anyhow::Result<ReferenceResult> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/s3gen_reference.py");
    println!("Python reference ({script}):");
    let output = Command::new(python)
        .arg(script)
        .arg("--tools")
        .arg(&args.reference_tools)
        .args(["--threads", &args.threads.to_string()])
        .args(["--tokens", &args.tokens.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .output()
        .with_context(|| format!("running {python}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "reference benchmark failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut result = None;
    for line in stdout.lines() {
        match line.strip_prefix("RESULT ") {
            Some(json) => result = Some(serde_json::from_str(json)?),
            None => println!("  | {line}"),
        }
    }
    result.context("no RESULT line in the reference benchmark's output")
}

/// User + system CPU time of this process so far, from `/proc/self/stat` (Linux).
fn process_cpu_seconds() -> anyhow::Result<f64> {
    const CLOCK_TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("unexpected /proc/self/stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / CLOCK_TICKS_PER_SECOND)
}

/// Peak resident set size of this process (`VmHWM`), Linux only.
fn peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
