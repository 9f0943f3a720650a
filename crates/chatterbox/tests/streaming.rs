//! Token-level streaming (`s3gen::stream`) on the tiny checkpoint: a stream is as long
//! as a one-shot synthesis of the same tokens, close to it (closer for the context it
//! sees again), and the same for the same seed, its voice's prompt state kept or not; `synthesize_streaming` hands out exactly what it speaks.

use chatterbox::parity::fixtures::snr_db;
use chatterbox::rng::SeededRandom;
use chatterbox::s3gen::stream::{S3GenStream, StreamSchedule};
use chatterbox::t3::{SamplingParams, SeededSampler};
use chatterbox::tts::{ChatterboxTurbo, SynthesisOptions};

const TEXT: &str = "Hello there, this is a somewhat longer sentence to stream.";

fn tiny_model() -> (tempfile::TempDir, ChatterboxTurbo) {
    let dir = tempfile::tempdir().unwrap();
    chatterbox::testing::write_tiny_checkpoint(dir.path()).unwrap();
    let model = chatterbox::testing::load_turbo(dir.path()).unwrap();
    (dir, model)
}

/// T3's speech codes for `TEXT` (BOS, EOS dropped), at most `limit` of them.
fn speech_codes(model: &ChatterboxTurbo, limit: usize) -> Vec<u32> {
    let voice = model.builtin_voice().unwrap();
    let sampling = SamplingParams {
        max_new_tokens: limit,
        ..SamplingParams::default()
    };
    let text = model.text_tokens(TEXT).unwrap();
    let tokens = model
        .speech_tokens(&text, &voice, &sampling, &mut SeededSampler::new(5))
        .unwrap();
    let vocab = model.config().t3.start_speech_token;
    tokens.into_iter().filter(|&t| t < vocab).collect()
}

/// The stream's pieces for `tokens`.
fn stream(model: &ChatterboxTurbo, tokens: &[u32], schedule: StreamSchedule) -> Vec<Vec<f32>> {
    let voice = model.builtin_voice().unwrap();
    let s3gen = model.s3gen();
    let mut stream = S3GenStream::new(s3gen, &voice.s3gen, schedule, 9).unwrap();
    let mut pieces = Vec::new();
    for &token in tokens {
        let piece = stream.push(token).unwrap();
        if !piece.is_empty() {
            pieces.push(piece);
        }
    }
    pieces.push(stream.finish().unwrap());
    pieces
}

/// [`snr_db`] of the waves' mel magnitudes (S3Gen's 24 kHz mel): blind to phase.
fn mel_snr_db(model: &ChatterboxTurbo, reference: &[f32], other: &[f32]) -> f64 {
    let mel = chatterbox::dsp::Mel24k::new(&model.config().mel_24k).unwrap();
    let magnitude = |wave| {
        let (log_mel, _) = mel.compute(wave).unwrap();
        log_mel.into_iter().map(f32::exp).collect::<Vec<f32>>()
    };
    snr_db(&magnitude(reference), &magnitude(other))
}

#[test]
fn a_stream_is_as_long_as_the_one_shot_and_close_to_it() {
    let (_dir, model) = tiny_model();
    let tokens = speech_codes(&model, 200);
    assert!(tokens.len() >= 60, "only {} tokens", tokens.len());
    let schedule = StreamSchedule {
        first: 10,
        growth: 2,
        largest: 40,
        context: 10,
    };
    let streamed = stream(&model, &tokens, schedule);
    assert!(streamed.len() >= 3, "{} pieces", streamed.len());
    let whole = stream(&model, &tokens, StreamSchedule::single_window());
    assert_eq!(whole.len(), 1);
    let whole = &whole[0];

    let voice = model.builtin_voice().unwrap();
    let one_shot = model
        .vocode(&tokens, &voice, &mut SeededRandom::new(9))
        .unwrap();
    assert_eq!(whole.len(), one_shot.dims1().unwrap());
    let streamed: Vec<f32> = streamed.concat();
    assert_eq!(streamed.len(), whole.len());
    assert!(streamed.iter().all(|s| s.abs() <= 1.0));
    // The first 20 ms are silent and the next 20 ms fade in, as in a one-shot wave.
    assert!(streamed[..480].iter().all(|&s| s == 0.0));
    assert!(streamed[960..].iter().any(|&s| s != 0.0));

    // Random weights make HiFT's harmonic source drift in phase with any difference
    // in the mel, so the waves' SNR says little; their mel magnitudes are compared.
    let snr = snr_db(whole, &streamed);
    let mel_snr = mel_snr_db(&model, whole, &streamed);
    println!(
        "streamed ({} tokens, windows of 10, 20, 40 tokens) against one window: SNR {snr:.1} dB, \
         mel SNR {mel_snr:.1} dB",
        tokens.len()
    );
    assert!(mel_snr > 8.0, "mel SNR {mel_snr:.1} dB");
    // A stream's windows see the voice prompt's kept state, in which the prompt attended
    // only to itself: a one-shot synthesis lets it attend to the speech too.
    let one_shot = one_shot.to_vec1::<f32>().unwrap();
    let one_window_snr = mel_snr_db(&model, &one_shot, whole);
    let streamed_snr = mel_snr_db(&model, &one_shot, &streamed);
    println!(
        "against the one-shot: one window mel SNR {one_window_snr:.1} dB, streamed {streamed_snr:.1} dB"
    );
    assert!(one_window_snr > 8.0, "mel SNR {one_window_snr:.1} dB");
    assert!(streamed_snr > 8.0, "mel SNR {streamed_snr:.1} dB");
    // Without the tokens before each window seen again, windows start cold.
    let without_context = stream(
        &model,
        &tokens,
        StreamSchedule {
            context: 0,
            ..schedule
        },
    )
    .concat();
    let mel_snr_without = mel_snr_db(&model, whole, &without_context);
    println!("without context: mel SNR {mel_snr_without:.1} dB against one window");
    assert!(mel_snr_without > 8.0, "mel SNR {mel_snr_without:.1} dB");
    assert!(
        mel_snr_without < mel_snr,
        "{mel_snr_without:.1} dB against {mel_snr:.1} dB"
    );
}

#[test]
fn tokens_arriving_in_any_rhythm_give_the_same_audio() {
    let (_dir, model) = tiny_model();
    let tokens = speech_codes(&model, 80);
    let schedule = StreamSchedule {
        first: 7,
        growth: 3,
        largest: 30,
        context: 4,
    };
    let once: Vec<f32> = stream(&model, &tokens, schedule).concat();
    let again: Vec<f32> = stream(&model, &tokens, schedule).concat();
    assert_eq!(once, again);
    let other_seed = {
        let voice = model.builtin_voice().unwrap();
        let mut stream = S3GenStream::new(model.s3gen(), &voice.s3gen, schedule, 10).unwrap();
        let mut audio = Vec::new();
        for &token in &tokens {
            audio.extend(stream.push(token).unwrap());
        }
        audio.extend(stream.finish().unwrap());
        audio
    };
    assert_ne!(once, other_seed);
}

#[test]
fn synthesize_streaming_hands_out_what_it_speaks() {
    let (_dir, model) = tiny_model();
    let voice = model.builtin_voice().unwrap();
    let options = SynthesisOptions::seeded(3);
    let mut pieces = Vec::new();
    model
        .synthesize_streaming(
            TEXT,
            &voice,
            &options,
            StreamSchedule::default(),
            &mut |piece| {
                pieces.push(piece.to_vec());
                Ok(())
            },
        )
        .unwrap();
    assert!(pieces.len() >= 2, "{} pieces", pieces.len());
    // The same tokens as a one-shot synthesis with the seed: the same length.
    let one_shot = model.synthesize(TEXT, &voice, &options).unwrap();
    assert_eq!(pieces.concat().len(), one_shot.len());

    // A listener that stops after the first piece stops the synthesis.
    let mut heard = 0;
    let stopped = model.synthesize_streaming(
        TEXT,
        &voice,
        &options,
        StreamSchedule::default(),
        &mut |_| {
            heard += 1;
            Err(candle_core::Error::Msg("gone".into()))
        },
    );
    assert!(stopped.is_err());
    assert_eq!(heard, 1);
}
