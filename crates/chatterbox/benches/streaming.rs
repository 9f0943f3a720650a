//! Token-level streaming at full size with random weights on the CPU: time to first audio
//! and the whole stream's time for first windows of several sizes (the voice's prompt
//! state computed beforehand, as for a voice streamed before), against a one-shot
//! synthesis of the same text in the same run (T3, then S3Gen over the prompt and every
//! token); then S3Gen alone over the same tokens, one-shot, streamed and in one window,
//! with how far the streamed audio is from the one window and the one window from the
//! one-shot (SNR of the waves and of their mel magnitudes).
//! T3's stop token is never sampled: `--tokens` tokens (250 = 10 s of speech).
//!
//! It also draws the spectrogram of the first seam of the default schedule, one window
//! above the stream, into `--picture PATH` (PNG) when given.
//!
//! ```sh
//! cargo bench -p chatterbox --features parity --bench streaming -- [--threads 2] [--tokens 250] \
//!     [--picture docs/streaming-seam.png]
//! ```

mod streaming {
    pub mod seam_picture;
}

use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::Device;
use chatterbox::conditionals::Conditionals;
use chatterbox::dsp::Mel24k;
use chatterbox::parity::fixtures::snr_db;
use chatterbox::rng::SeededRandom;
use chatterbox::s3gen::stream::{S3GenStream, StreamSchedule};
use chatterbox::t3::SamplingParams;
use chatterbox::testing::NeverStop;
use chatterbox::tts::{ChatterboxTurbo, SAMPLE_RATE, SynthesisOptions};

/// 30 bytes, so 30 tokens in the test checkpoint's byte-level tokenizer: about as many
/// as the official GPT-2 tokenizer makes of "Streaming speech starts playing while the
/// rest of the sentence is still being made, so a listener hears the first words almost
/// at once." (136 characters, about 10 s of speech; English averages about 4.5
/// characters per GPT-2 token), so that T3's prefill is the one a user waits for.
const TEXT: &str = "Speech starts playing at once.";

fn main() -> anyhow::Result<()> {
    let (mut threads, mut tokens, mut picture) = (2usize, 250usize, None);
    let mut it = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--threads" => threads = value()?.parse()?,
            "--tokens" => tokens = value()?.parse()?,
            "--picture" => picture = Some(value()?),
            other => bail!("unknown argument {other}"),
        }
    }
    // SAFETY: set before any other thread starts; candle and rayon read it for their pools.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    // SAFETY: as above; the product's defaults for candle's thread pool.
    unsafe { chatterbox::set_thread_defaults() };
    let dir = tempfile::tempdir()?;
    chatterbox::testing::write_full_size_checkpoint(dir.path(), 0)?;
    let model = chatterbox::testing::load_turbo(dir.path())?;
    let cfg = model.config().clone();
    let voice = chatterbox::testing::random_voice(&cfg, &Device::Cpu, 0)?;
    let options = SynthesisOptions {
        sampling: SamplingParams {
            max_new_tokens: tokens,
            ..SamplingParams::default()
        },
        seed: 1,
    };
    let speech_tokens = |text: &[u32], on_token: &mut dyn FnMut(u32) -> candle_core::Result<()>| {
        let mut sampler = NeverStop::new(1);
        let mut failed = Ok(());
        model.speech_tokens_observed(
            text,
            &voice,
            &options.sampling,
            &mut sampler,
            &mut |step| {
                if failed.is_ok() {
                    failed = on_token(step.token);
                }
            },
        )?;
        failed
    };
    println!(
        "full-size random weights, T3 in {}, {threads} threads, {tokens} speech tokens, {}",
        chatterbox::t3::Precision::default(),
        load_line()
    );

    // One shot: every token, then S3Gen once over the prompt and all of them.
    let start = Instant::now();
    let text = model.text_tokens(TEXT)?;
    let mut codes = Vec::new();
    speech_tokens(&text, &mut |token| {
        if token < cfg.t3.start_speech_token {
            codes.push(token);
        }
        Ok(())
    })?;
    let one_shot_wave = model.vocode(&codes, &voice, &mut SeededRandom::new(3))?;
    let one_shot = start.elapsed().as_secs_f64();
    let one_shot_wave = one_shot_wave.to_vec1::<f32>()?;
    let seconds = one_shot_wave.len() as f64 / f64::from(SAMPLE_RATE);
    println!("one-shot synthesis: {one_shot:.2} s for {seconds:.1} s of speech");

    // The voice's prompt state, once per voice (then kept, as for a cached voice).
    let start = Instant::now();
    model.s3gen().stream_prompt(&voice.s3gen)?;
    println!(
        "voice prompt state: {:.2} s, once per voice",
        start.elapsed().as_secs_f64()
    );

    for first in [5, 10, 20] {
        let schedule = StreamSchedule {
            first,
            ..StreamSchedule::default()
        };
        let start = Instant::now();
        let mut first_audio = None;
        model.synthesize_streaming_with(
            TEXT,
            &voice,
            &options,
            schedule,
            speech_tokens,
            &mut |_| {
                first_audio.get_or_insert(start.elapsed().as_secs_f64());
                Ok(())
            },
        )?;
        let total = start.elapsed().as_secs_f64();
        println!(
            "stream, first window {first} tokens: first audio {:.2} s of {total:.2} s total, \
             stream / one-shot {:.2}",
            first_audio.unwrap_or(total),
            total / one_shot
        );
    }

    // S3Gen alone on the same tokens.
    let start = Instant::now();
    model.vocode(&codes, &voice, &mut SeededRandom::new(3))?;
    let s3gen_one_shot = start.elapsed().as_secs_f64();
    let (whole, whole_time) = vocode(&model, &voice, &codes, StreamSchedule::single_window())?;
    let whole = whole.concat();
    println!("S3Gen in one window: {whole_time:.2} s");
    let mel = Mel24k::new(&cfg.mel_24k)?;
    println!(
        "S3Gen one-shot (the prompt attending to the speech too): {s3gen_one_shot:.2} s; \
         one window against it: SNR {:.1} dB, mel SNR {:.1} dB",
        snr_db(&one_shot_wave, &whole),
        snr_db(
            &magnitudes(&mel, &one_shot_wave)?,
            &magnitudes(&mel, &whole)?
        )
    );
    for context in [0, 10, 30] {
        let schedule = StreamSchedule {
            context,
            ..StreamSchedule::default()
        };
        let (pieces, time) = vocode(&model, &voice, &codes, schedule)?;
        let streamed = pieces.concat();
        println!(
            "S3Gen streamed, context {context} tokens: {time:.2} s ({:.2} of one window), \
             SNR {:.1} dB, mel SNR {:.1} dB",
            time / whole_time,
            snr_db(&whole, &streamed),
            snr_db(&magnitudes(&mel, &whole)?, &magnitudes(&mel, &streamed)?)
        );
        if let Some(path) = picture
            .as_deref()
            .filter(|_| schedule == StreamSchedule::default())
        {
            // 0.3 s either side of where the second window's audio starts.
            let seam = pieces[0].len();
            let span = (SAMPLE_RATE as usize * 3 / 10).min(seam);
            let around = seam - span..(seam + span).min(whole.len());
            let png = streaming::seam_picture::seam_png(
                &whole[around.clone()],
                &streamed[around.clone()],
            )?;
            std::fs::write(path, png).with_context(|| format!("writing {path}"))?;
            println!(
                "seam picture: {path} ({:.2} s to {:.2} s; the crossfade starts at {:.2} s)",
                around.start as f64 / f64::from(SAMPLE_RATE),
                around.end as f64 / f64::from(SAMPLE_RATE),
                seam as f64 / f64::from(SAMPLE_RATE)
            );
        }
    }
    Ok(())
}

/// S3Gen over `codes` as a stream: its pieces, and the time it took.
fn vocode(
    model: &ChatterboxTurbo,
    voice: &Conditionals,
    codes: &[u32],
    schedule: StreamSchedule,
) -> anyhow::Result<(Vec<Vec<f32>>, f64)> {
    let start = Instant::now();
    let mut stream = S3GenStream::new(model.s3gen(), &voice.s3gen, schedule, 3)?;
    let mut pieces = Vec::new();
    for &code in codes {
        let piece = stream.push(code)?;
        if !piece.is_empty() {
            pieces.push(piece);
        }
    }
    pieces.push(stream.finish()?);
    Ok((pieces, start.elapsed().as_secs_f64()))
}

fn magnitudes(mel: &Mel24k, wave: &[f32]) -> anyhow::Result<Vec<f32>> {
    Ok(mel.compute(wave)?.0.into_iter().map(f32::exp).collect())
}

/// The machine's load average, as the benchmarks record it.
fn load_line() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| {
            format!(
                "load {}",
                l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
            )
        })
        .unwrap_or_default()
}
