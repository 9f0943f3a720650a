//! Voice conditioning on the CPU at full size with random weights: seconds to turn a
//! reference clip into `Conditionals` (resample, loudness, S3Gen prompt mel + tokens +
//! x-vector, T3 speaker embedding + prompt tokens) for 10 s and 60 s clips.
//!
//! ```sh
//! cargo bench -p chatterbox --features parity --bench conditioning -- [--threads 2] [--seconds 10,60]
//!     [--rate 24000] [--runs 3] [--seed 0] [--reference PYTHON]
//! ```
//!
//! The clip is a synthetic voice (a gliding 12-harmonic stack with a syllabic envelope
//! and noise, like the reference's `synth_voice`), so timings compare with the Python
//! reference's `prepare_conditionals` on the same kind of clip, which
//! `benches/conditioning_reference.py` times. With `--reference PYTHON` (a Python with
//! `chatterbox-tts==0.1.7` installed) it runs right after ours, with the same threads,
//! clips and runs, and the ratios are printed.

use std::f64::consts::PI;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::Device;
use chatterbox::ChatterboxConfig;
use chatterbox::voice_conditioner::{REFERENCE_LUFS, VOICE_ENCODER_FILE, VoiceConditioner};
use chatterbox::weights::{CheckpointManifest, random_checkpoint};
use rand::{Rng, SeedableRng, rngs::StdRng};
use resonance_audio::loudness::normalize_to;
use resonance_audio::resample::resample;

struct Args {
    threads: usize,
    seconds: Vec<f64>,
    rate: u32,
    runs: usize,
    seed: u64,
    reference_python: Option<String>,
}

const REFERENCE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/conditioning_reference.py"
);

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        threads: 2,
        seconds: vec![10.0, 60.0],
        rate: 24_000,
        runs: 3,
        seed: 0,
        reference_python: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--threads" => args.threads = value()?.parse()?,
            "--seconds" => {
                args.seconds = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--rate" => args.rate = value()?.parse()?,
            "--runs" => args.runs = value()?.parse()?,
            "--seed" => args.seed = value()?.parse()?,
            "--reference" => args.reference_python = Some(value()?),
            // `cargo bench` passes `--bench` to harness-less benchmarks.
            "--bench" => {}
            other => bail!("unknown argument {other}"),
        }
    }
    if args.threads == 0 || args.runs == 0 || args.rate == 0 {
        bail!("--threads, --runs and --rate must be positive");
    }
    Ok(args)
}

/// A deterministic voice-like clip peaking at 0.3: 12 harmonics of a 150 Hz voice
/// gliding by 20 % (0.7 Hz) with 5 % vibrato (5.5 Hz), a 3.1 Hz syllabic envelope and
/// white noise.
fn synthetic_voice(rate: u32, seconds: f64, seed: u64) -> Vec<f32> {
    const F0: f64 = 150.0;
    let mut rng = StdRng::seed_from_u64(seed);
    let rate = f64::from(rate);
    let phases: Vec<f64> = (0..12).map(|_| rng.random_range(0.0..2.0 * PI)).collect();
    let envelope_phase = rng.random_range(0.0..2.0 * PI);
    let mut phase = 0.0;
    let samples: Vec<f64> = (0..(seconds * rate).round() as usize)
        .map(|n| {
            let t = n as f64 / rate;
            let f =
                F0 + 0.2 * F0 * (2.0 * PI * 0.7 * t).sin() + 0.05 * F0 * (2.0 * PI * 5.5 * t).sin();
            phase += 2.0 * PI * f / rate;
            let voice: f64 = phases
                .iter()
                .enumerate()
                .filter(|(h, _)| F0 * (h + 1) as f64 * 2.0 < rate)
                .map(|(h, p)| ((h + 1) as f64 * phase + p).sin() / (h + 1) as f64)
                .sum();
            let envelope = 0.55 + 0.45 * (2.0 * PI * 3.1 * t + envelope_phase).sin();
            voice * envelope + 0.05 * (rng.random::<f64>() - 0.5) * 12f64.sqrt()
        })
        .collect();
    let peak = samples.iter().fold(0.0f64, |m, s| m.max(s.abs()));
    samples.iter().map(|s| (0.3 * s / peak) as f32).collect()
}

/// One run of `prepare`'s stages on their own: resampling and loudness, S3Gen's part
/// (first 10 s), T3's part (whole clip at 16 kHz).
fn stage_times(conditioner: &VoiceConditioner, clip: &[f32], rate: u32) -> anyhow::Result<()> {
    const S3GEN_RATE: u32 = 24_000;
    let start = Instant::now();
    let mut wav = resample(clip, rate, S3GEN_RATE)?;
    normalize_to(&mut wav, S3GEN_RATE, REFERENCE_LUFS)?;
    let wav_16k = resample(&wav, S3GEN_RATE, 16_000)?;
    let audio = start.elapsed().as_secs_f64();
    let start = Instant::now();
    conditioner.s3gen_conditionals(&wav[..wav.len().min(10 * S3GEN_RATE as usize)])?;
    let s3gen = start.elapsed().as_secs_f64();
    let start = Instant::now();
    conditioner.t3_conditionals(&wav_16k)?;
    let t3 = start.elapsed().as_secs_f64();
    println!(
        "        stages: resample + loudness {audio:.2} s, S3Gen (mel, tokens, x-vector) {s3gen:.2} s, T3 (speaker embedding, tokens) {t3:.2} s"
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // SAFETY: set before any other thread starts; candle and rayon read it for their pools.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string()) };
    // SAFETY: as above; the product's defaults for candle's thread pool.
    unsafe { chatterbox::set_thread_defaults() };
    println!(
        "voice conditioning, full size, random weights, CPU with {} threads, clips at {} Hz",
        args.threads, args.rate
    );

    let dir = tempfile::tempdir()?;
    let mut manifest = CheckpointManifest::load(
        &chatterbox::parity::fixtures::fixture_dir().join("manifest_full.json"),
    )?;
    // The tokenizer's mel filters and window are computed (as librosa makes them) rather
    // than read as random values.
    manifest.retain(|file, name| {
        file == VOICE_ENCODER_FILE
            || (file == chatterbox::s3gen::CHECKPOINT_FILE
                && (name.starts_with("speaker_encoder.")
                    || (name.starts_with("tokenizer.")
                        && !matches!(name, "tokenizer._mel_filters" | "tokenizer.window"))))
    });
    let start = Instant::now();
    random_checkpoint(&manifest, dir.path(), args.seed)?;
    let conditioner =
        VoiceConditioner::load(dir.path(), &ChatterboxConfig::default(), &Device::Cpu)?;
    println!(
        "random checkpoint written and loaded in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    // (seconds, best, median) of each clip.
    let mut ours = Vec::with_capacity(args.seconds.len());
    for &seconds in &args.seconds {
        let clip = synthetic_voice(args.rate, seconds, args.seed + 1);
        conditioner.prepare(&clip, args.rate)?; // warm-up
        let mut times = Vec::with_capacity(args.runs);
        let mut conds = None;
        for _ in 0..args.runs {
            let start = Instant::now();
            conds = Some(conditioner.prepare(&clip, args.rate)?);
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let conds = conds.context("no run")?;
        println!(
            "{seconds:>4.0} s clip: best {:.2} s, median {:.2} s (T3 prompt {} tokens, S3Gen prompt {} tokens / {} mel frames)",
            times[0],
            times[times.len() / 2],
            conds.t3.prompt_tokens.len(),
            conds.s3gen.tokens.dim(1)?,
            conds.s3gen.mel.dim(1)?,
        );
        stage_times(&conditioner, &clip, args.rate)?;
        ours.push((seconds, times[0], times[times.len() / 2]));
    }
    if let Some(python) = &args.reference_python {
        let reference = run_reference(python, &args)?;
        println!("ours / reference (wall time):");
        for ((seconds, best, median), (reference_best, reference_median)) in
            ours.iter().zip(&reference)
        {
            println!(
                "{seconds:>4.0} s clip: best {:.2}, median {:.2}",
                best / reference_best,
                median / reference_median
            );
        }
    }
    Ok(())
}

/// Runs `conditioning_reference.py` with the same clips and runs; the (best, median)
/// seconds of each clip, in `args.seconds`' order.
fn run_reference(python: &str, args: &Args) -> anyhow::Result<Vec<(f64, f64)>> {
    let seconds: Vec<String> = args.seconds.iter().map(f64::to_string).collect();
    let stdout = chatterbox::testing::run_reference_script(
        python,
        REFERENCE_SCRIPT,
        &[
            "--threads".into(),
            args.threads.to_string(),
            "--seconds".into(),
            seconds.join(","),
            "--runs".into(),
            args.runs.to_string(),
        ],
    )?;
    // "reference prepare_conditionals 10 s clip, 2 threads: best 1.02 s, median 1.03 s (...)"
    let times: Vec<(f64, f64)> = stdout
        .lines()
        .filter(|l| l.starts_with("reference prepare_conditionals"))
        .map(|line| {
            let seconds_after = |marker: &str| -> anyhow::Result<f64> {
                let (_, rest) = line
                    .split_once(marker)
                    .with_context(|| format!("no {marker:?} in {line:?}"))?;
                let number = rest.split(" s").next().unwrap_or_default();
                number
                    .parse()
                    .with_context(|| format!("cannot read the time in {line:?}"))
            };
            Ok((seconds_after("best ")?, seconds_after("median ")?))
        })
        .collect::<anyhow::Result<_>>()?;
    if times.len() != args.seconds.len() {
        bail!(
            "the reference reported {} clips, expected {}",
            times.len(),
            args.seconds.len()
        );
    }
    Ok(times)
}
