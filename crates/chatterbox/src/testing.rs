//! Small real artifacts for tests of this crate and of the crates using it: a
//! byte-level BPE tokenizer carrying the paralinguistic tags, and a tiny
//! random-weight checkpoint folder laid out like the official one (from the
//! `turbo_e2e` fixture, made by the Python reference).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::checkpoint;
use crate::parity::fixtures::{Fixture, fixture_dir};
use crate::text::PARALINGUISTIC_TAGS;
use crate::tts::{ChatterboxTurbo, LoadError};
use crate::weights::CheckpointManifest;

/// A GPT-2-style `tokenizer.json`: one token per byte (ids 0..256 in the
/// byte-level alphabet's order), the merges `Ġ t`, `h e`, `Ġt he`, and the
/// paralinguistic tags as added tokens when `with_tags`. Every id stays below
/// 300, inside the tiny checkpoints' text vocabulary.
pub fn byte_level_tokenizer_json(with_tags: bool) -> Vec<u8> {
    let mut alphabet: Vec<char> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
        .into_iter()
        .collect();
    alphabet.sort();
    let mut vocab: serde_json::Map<String, serde_json::Value> = alphabet
        .iter()
        .enumerate()
        .map(|(i, c)| (c.to_string(), i.into()))
        .collect();
    let merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he")];
    for (a, b) in merges {
        let id = vocab.len();
        vocab.insert(format!("{a}{b}"), id.into());
    }
    let added: Vec<serde_json::Value> = if with_tags {
        PARALINGUISTIC_TAGS
            .iter()
            .enumerate()
            .map(|(i, tag)| {
                serde_json::json!({
                    "id": vocab.len() + i, "content": tag, "single_word": false,
                    "lstrip": false, "rstrip": false, "normalized": true, "special": false
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
            "vocab": vocab,
            "merges": merges.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()
        }
    });
    serde_json::to_vec(&json).expect("tokenizer JSON serializes")
}

/// Writes a tiny checkpoint folder into `dir`: `t3_turbo_v1`, `s3gen_meanflow`
/// and `ve.safetensors` (the `turbo_e2e` fixture's random weights under their
/// official names), [`byte_level_tokenizer_json`] as `tokenizer.json`, the
/// fixture's conditionals as `conds.pt` and its configuration as
/// [`checkpoint::CONFIG_OVERRIDE`].
pub fn write_tiny_checkpoint(dir: &Path) -> candle_core::Result<()> {
    let io = |e: std::io::Error| candle_core::Error::Msg(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let fixtures = fixture_dir();
    let all = candle_core::safetensors::load(fixtures.join("turbo_e2e.safetensors"), &Device::Cpu)?;
    for (prefix, file) in [
        ("t3.", checkpoint::T3_WEIGHTS),
        ("s3gen.", checkpoint::S3GEN_WEIGHTS),
        ("ve.", checkpoint::VOICE_ENCODER_WEIGHTS),
    ] {
        let tensors: HashMap<String, Tensor> = all
            .iter()
            .filter_map(|(name, t)| Some((name.strip_prefix(prefix)?.to_string(), t.clone())))
            .collect();
        candle_core::safetensors::save(&tensors, dir.join(file))?;
    }
    std::fs::write(
        dir.join(checkpoint::TOKENIZER),
        byte_level_tokenizer_json(true),
    )
    .map_err(io)?;
    std::fs::copy(
        fixtures.join("turbo_e2e_conds.pt"),
        dir.join(checkpoint::BUILTIN_VOICE),
    )
    .map_err(io)?;
    let config = Fixture::load(&fixtures, "turbo_e2e")?.config()?;
    let config = serde_json::to_vec_pretty(&config)
        .map_err(|e| candle_core::Error::Msg(format!("serializing config: {e}")))?;
    std::fs::write(dir.join(checkpoint::CONFIG_OVERRIDE), config).map_err(io)?;
    Ok(())
}

/// Writes a Chatterbox Nano T3 beside the tiny checkpoint of [`write_tiny_checkpoint`] in
/// `dir`: the tiny T3 with its last layer repeated, so that the folder serves two models
/// whose T3s differ in shape and in speech.
pub fn write_tiny_nano_t3(dir: &Path) -> candle_core::Result<()> {
    let mut tensors =
        candle_core::safetensors::load(dir.join(checkpoint::T3_WEIGHTS), &Device::Cpu)?;
    let layers = tensors
        .keys()
        .filter_map(|name| checkpoint::layer(name))
        .max()
        .map_or(0, |last| last + 1);
    let last = format!("tfmr.h.{}.", layers.saturating_sub(1));
    let added: Vec<(String, Tensor)> = tensors
        .iter()
        .filter_map(|(name, tensor)| {
            let rest = name.strip_prefix(&last)?;
            Some((format!("tfmr.h.{layers}.{rest}"), tensor.clone()))
        })
        .collect();
    tensors.extend(added);
    candle_core::safetensors::save(&tensors, dir.join(checkpoint::NANO_T3_WEIGHTS))
}

/// Turbo from the checkpoint folder `dir`, configured by
/// [`ChatterboxTurbo::config_for`], on the CPU.
pub fn load_turbo(dir: &Path) -> Result<ChatterboxTurbo, LoadError> {
    let cfg = ChatterboxTurbo::config_for(dir, &checkpoint::TURBO)?;
    ChatterboxTurbo::load(dir, &checkpoint::TURBO, &cfg, &Device::Cpu)
}

/// Speech tokens of the random voice of [`random_voice`]: a 10 s reference clip's.
pub const RANDOM_VOICE_PROMPT_TOKENS: usize = 250;

/// Writes a full-size checkpoint of random weights (the official layout, seeded) and
/// [`byte_level_tokenizer_json`] into `dir`: the official model's speed, not its speech.
pub fn write_full_size_checkpoint(dir: &Path, seed: u64) -> candle_core::Result<()> {
    crate::weights::random_checkpoint(&CheckpointManifest::official(), dir, seed)?;
    std::fs::write(
        dir.join(checkpoint::TOKENIZER),
        byte_level_tokenizer_json(true),
    )
    .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", dir.display())))
}

/// Random conditioning shaped like a 10 s reference clip's, for `cfg`'s model.
pub fn random_voice(
    cfg: &crate::ChatterboxConfig,
    device: &Device,
    seed: u64,
) -> candle_core::Result<crate::conditionals::Conditionals> {
    use rand::{Rng, SeedableRng};

    use crate::rng::{RandomSource, SeededRandom};

    let mut tokens = rand::rngs::StdRng::seed_from_u64(seed + 1);
    let prompt: Vec<u32> = (0..RANDOM_VOICE_PROMPT_TOKENS)
        .map(|_| tokens.random_range(0..cfg.t3.start_speech_token))
        .collect();
    let mut rng = SeededRandom::new(seed);
    Ok(crate::conditionals::Conditionals {
        t3: crate::t3::T3Conditionals {
            speaker_emb: rng.randn(&[1, cfg.t3.speaker_embed_size], device)?,
            prompt_tokens: prompt.clone(),
        },
        s3gen: crate::s3gen::S3GenConditionals {
            tokens: Tensor::new(prompt.as_slice(), device)?.unsqueeze(0)?,
            // A log-mel around -5 (quiet speech), 2 frames per token.
            mel: (rng.randn(
                &[1, 2 * RANDOM_VOICE_PROMPT_TOKENS, cfg.flow.output_size],
                device,
            )? - 5.0)?,
            embedding: rng.randn(&[1, cfg.flow.spk_embed_dim], device)?,
        },
    })
}

/// T3's stop token in the official checkpoint.
pub const STOP_SPEECH_TOKEN: usize = 6562;

/// Seeded sampling that never picks the stop token, so that random weights make as many
/// speech tokens as a benchmark asks for.
pub struct NeverStop(pub crate::t3::SeededSampler);

impl NeverStop {
    pub fn new(seed: u64) -> Self {
        Self(crate::t3::SeededSampler::new(seed))
    }
}

impl crate::t3::TokenSampler for NeverStop {
    fn sample(&mut self, probs: &[f32]) -> candle_core::Result<usize> {
        let mut probs = probs.to_vec();
        probs[STOP_SPEECH_TOKEN] = 0.0;
        self.0.sample(&probs)
    }
}

/// Runs one of the Python reference's benchmark scripts (`benches/*_reference.py`) with
/// `python`, echoing its report indented by `  | `, and returns that report.
pub fn run_reference_script(
    python: &str,
    script: &str,
    args: &[String],
) -> std::io::Result<String> {
    println!("Python reference ({script}):");
    let output = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .env("TQDM_DISABLE", "1")
        .output()
        .map_err(|e| std::io::Error::new(e.kind(), format!("running {python}: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    for line in stdout.lines() {
        println!("  | {line}");
    }
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "reference benchmark failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(stdout)
}
