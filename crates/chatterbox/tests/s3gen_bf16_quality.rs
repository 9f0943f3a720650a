//! Quality gate of S3Gen's bf16 products, at full size with random weights (the
//! official layout of `s3gen_meanflow.safetensors`, generated here): the same speech
//! tokens after the same 10 s voice prompt, with the same noise, through S3Gen in
//! `fp32` and in `bf16`; the bf16 waveform must be within an SNR of [`MIN_SNR_DB`] of the
//! fp32 one (issue 16's gate).

use candle_core::{DType, Device, Tensor};
use chatterbox::ChatterboxConfig;
use chatterbox::parity::fixtures::snr_db;
use chatterbox::rng::{RandomSource, SeededRandom};
use chatterbox::s3gen::{CHECKPOINT_FILE, S3Gen, S3GenConditionals, S3GenPrecision};
use chatterbox::weights::{CheckpointManifest, random_checkpoint};
use rand::{Rng, SeedableRng, rngs::StdRng};

const MIN_SNR_DB: f64 = 30.0;
/// Speech tokens of the voice prompt (10 s) and to synthesize (4 s).
const PROMPT_TOKENS: usize = 250;
const SPEECH_TOKENS: usize = 100;
const SPEECH_VOCAB: u32 = 6561;

#[test]
fn bf16_waveform_is_within_30_db_of_fp32() {
    if !chatterbox::matmul_bf16::available() {
        eprintln!("skipped: this CPU has no AVX-512 BF16, so S3Gen's bf16 is its fp32");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = CheckpointManifest::official();
    manifest.retain(|file, name| {
        file == CHECKPOINT_FILE && S3Gen::WEIGHT_PREFIXES.iter().any(|p| name.starts_with(p))
    });
    let files = random_checkpoint(&manifest, dir.path(), 11).unwrap();
    let cfg = ChatterboxConfig::default();
    let load = |precision| {
        let vb = chatterbox::weights::load(&files, DType::F32, &Device::Cpu).unwrap();
        S3Gen::with_precision(&cfg, precision, vb).unwrap()
    };

    let mut token_rng = StdRng::seed_from_u64(11);
    let mut tokens = |n: usize| {
        let tokens: Vec<u32> = (0..n)
            .map(|_| token_rng.random_range(0..SPEECH_VOCAB))
            .collect();
        Tensor::new(tokens, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
    };
    let mut draws = SeededRandom::new(3);
    let conditionals = S3GenConditionals {
        tokens: tokens(PROMPT_TOKENS),
        // A log-mel around -5 (quiet speech), 2 frames per token.
        mel: (draws
            .randn(&[1, 2 * PROMPT_TOKENS, cfg.flow.output_size], &Device::Cpu)
            .unwrap()
            - 5.0)
            .unwrap(),
        embedding: draws
            .randn(&[1, cfg.flow.spk_embed_dim], &Device::Cpu)
            .unwrap(),
    };
    let speech = tokens(SPEECH_TOKENS);
    // `S3Gen::inference` in its stages, to compare the mel too.
    let synthesize = |precision| {
        let s3gen = load(precision);
        let mut rng = SeededRandom::new(9);
        let noise = rng
            .randn(&[1, cfg.flow.output_size, 2 * SPEECH_TOKENS], &Device::Cpu)
            .unwrap();
        let c = s3gen
            .flow()
            .forward(&speech, &[SPEECH_TOKENS], &conditionals)
            .unwrap();
        let mel = s3gen
            .cfm()
            .forward(
                &c.mu,
                &c.mask,
                &c.spks,
                &c.cond,
                &noise,
                cfg.cfm.n_timesteps,
                &mut rng,
            )
            .unwrap();
        let mel = mel.narrow(2, c.prompt_frames, 2 * SPEECH_TOKENS).unwrap();
        let wave = s3gen
            .trim_fade(&s3gen.hift().inference(&mel, &mut rng).unwrap())
            .unwrap();
        let values = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        (values(mel), values(wave))
    };
    let (fp32_mel, fp32) = synthesize(S3GenPrecision::Fp32);
    let (bf16_mel, bf16) = synthesize(S3GenPrecision::Bf16);
    assert!(
        fp32.iter().any(|&x| x != 0.0),
        "the fp32 waveform is silent"
    );
    assert_ne!(
        fp32, bf16,
        "bf16 gave the fp32 waveform: its products did not run"
    );
    let (mel_snr, snr) = (snr_db(&fp32_mel, &bf16_mel), snr_db(&fp32, &bf16));
    println!(
        "S3Gen bf16 against fp32: mel SNR {mel_snr:.1} dB, waveform SNR {snr:.1} dB over {} samples",
        fp32.len()
    );
    assert!(
        snr >= MIN_SNR_DB,
        "waveform SNR {snr:.1} dB < {MIN_SNR_DB} dB"
    );
}
