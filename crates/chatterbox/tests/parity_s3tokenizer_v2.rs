//! S3Tokenizer V2 against the reference fixture: log-mel, encoder, FSQ projections
//! within 1e-4, speech tokens exactly (with and without `max_len`).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use chatterbox::parity::fixtures::{Fixture, fixture_dir};
use chatterbox::s3tokenizer::S3Tokenizer;

fn fixture() -> Fixture {
    Fixture::load(&fixture_dir(), "s3tokenizer_v2").unwrap()
}

fn fixture_tokens(fixture: &Fixture, name: &str) -> Vec<u32> {
    let tokens = fixture.tensor(name).unwrap().flatten_all().unwrap();
    tokens
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|t| u32::try_from(t).unwrap())
        .collect()
}

#[test]
fn s3tokenizer_v2_matches_reference() {
    chatterbox::parity::assert_module_passes("s3tokenizer_v2");
}

#[test]
fn builds_mel_filters_and_window_when_the_checkpoint_lacks_them() {
    let fixture = fixture();
    let cfg = fixture.config().unwrap();
    let file = fixture_dir().join("s3tokenizer_v2.safetensors");
    let tensors: HashMap<String, Tensor> = candle_core::safetensors::load(file, &Device::Cpu)
        .unwrap()
        .into_iter()
        .filter(|(name, _)| {
            name.starts_with("tokenizer.")
                && name != "tokenizer._mel_filters"
                && name != "tokenizer.window"
        })
        .collect();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let tokenizer = S3Tokenizer::new(&cfg.s3tokenizer, vb.pp("tokenizer")).unwrap();
    let wav = fixture.tensor("wav_16k").unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(
        tokenizer.tokenize(&wav, None).unwrap(),
        fixture_tokens(&fixture, "tokens")
    );
}

#[test]
fn long_audio_joins_30_s_windows_dropping_2_s_at_each_seam() {
    let fixture = fixture();
    let cfg = fixture.config().unwrap();
    let tokenizer =
        S3Tokenizer::new(&cfg.s3tokenizer, fixture.weights().unwrap().pp("tokenizer")).unwrap();
    let clip = fixture.tensor("wav_16k").unwrap().to_vec1::<f32>().unwrap();
    // 40 s: windows at frames 0 (3000 frames) and 2600 (1400 frames).
    let wav: Vec<f32> = clip.iter().copied().cycle().take(40 * 16_000).collect();
    let mel = tokenizer.log_mel_spectrogram(&wav).unwrap();
    assert_eq!(mel.dim(2).unwrap(), 4000);
    let tokens = tokenizer.quantize(&mel).unwrap();
    let first = tokenizer
        .quantize(&mel.narrow(2, 0, 3000).unwrap())
        .unwrap();
    let second = tokenizer
        .quantize(&mel.narrow(2, 2600, 1400).unwrap())
        .unwrap();
    assert_eq!(tokens.len(), 1000);
    assert_eq!(tokens[..700], first[..700]);
    assert_eq!(tokens[700..], second[50..]);
}

#[test]
fn max_len_truncates_the_mel_to_four_frames_per_token() {
    let fixture = fixture();
    let cfg = fixture.config().unwrap();
    let tokenizer =
        S3Tokenizer::new(&cfg.s3tokenizer, fixture.weights().unwrap().pp("tokenizer")).unwrap();
    let wav = fixture.tensor("wav_16k").unwrap().to_vec1::<f32>().unwrap();
    let full = tokenizer.tokenize(&wav, None).unwrap();
    assert_eq!(tokenizer.tokenize(&wav, Some(1000)).unwrap(), full);
    let short = tokenizer.tokenize(&wav, Some(20)).unwrap();
    assert_eq!(short.len(), 20);
    assert!(short.iter().all(|&t| t < 6561));
}

#[test]
fn too_short_audio_is_a_clear_error() {
    let fixture = fixture();
    let cfg = fixture.config().unwrap();
    let tokenizer =
        S3Tokenizer::new(&cfg.s3tokenizer, fixture.weights().unwrap().pp("tokenizer")).unwrap();
    let err = tokenizer.tokenize(&[0.1; 100], None).unwrap_err();
    assert!(err.to_string().contains("too short"), "{err}");
}
