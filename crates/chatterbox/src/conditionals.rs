//! A voice's conditioning for both models (`Conditionals` in the reference's
//! `chatterbox/tts_turbo.py`): what T3 and S3Gen need to speak in that voice.
//! It is computed once per voice and cached: [`Conditionals::to_safetensors`]
//! and [`Conditionals::from_safetensors`] are the cache format, and
//! [`Conditionals::from_torch_file`] reads the checkpoint's `conds.pt`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor};

use crate::config::ChatterboxConfig;
use crate::s3gen::S3GenConditionals;
use crate::t3::T3Conditionals;

#[derive(Debug, Clone)]
pub struct Conditionals {
    pub t3: T3Conditionals,
    pub s3gen: S3GenConditionals,
}

/// Tensor names of the cache format.
const T3_SPEAKER_EMB: &str = "t3.speaker_emb";
const T3_PROMPT_TOKENS: &str = "t3.prompt_tokens";
const S3GEN_PROMPT_TOKENS: &str = "s3gen.prompt_tokens";
const S3GEN_PROMPT_FEAT: &str = "s3gen.prompt_feat";
const S3GEN_EMBEDDING: &str = "s3gen.embedding";

impl Conditionals {
    /// Serializes to safetensors bytes (float32 embeddings and mel, int64 tokens).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let tokens = |t: &[u32]| {
            let ids: Vec<i64> = t.iter().map(|&x| x as i64).collect();
            Tensor::from_vec(ids, t.len(), &Device::Cpu)
        };
        let f32_cpu = |t: &Tensor| t.to_device(&Device::Cpu)?.to_dtype(DType::F32);
        let tensors = [
            (T3_SPEAKER_EMB, f32_cpu(&self.t3.speaker_emb)?),
            (T3_PROMPT_TOKENS, tokens(&self.t3.prompt_tokens)?),
            (
                S3GEN_PROMPT_TOKENS,
                tokens(&token_ids(&self.s3gen.tokens)?)?,
            ),
            (S3GEN_PROMPT_FEAT, f32_cpu(&self.s3gen.mel)?),
            (S3GEN_EMBEDDING, f32_cpu(&self.s3gen.embedding)?),
        ];
        safetensors::serialize(tensors.iter().map(|(n, t)| (*n, t)), None)
            .map_err(|e| candle_core::Error::Msg(format!("serializing conditionals: {e}")))
    }

    /// Reads bytes written by [`Conditionals::to_safetensors`].
    pub fn from_safetensors(bytes: &[u8], device: &Device) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(bytes, device)?;
        let get = |name: &str| {
            tensors
                .get(name)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("conditionals lack {name}")))
        };
        Ok(Self {
            t3: T3Conditionals {
                speaker_emb: get(T3_SPEAKER_EMB)?,
                prompt_tokens: token_ids(&get(T3_PROMPT_TOKENS)?)?,
            },
            s3gen: S3GenConditionals {
                tokens: prompt_row(&get(S3GEN_PROMPT_TOKENS)?)?,
                mel: get(S3GEN_PROMPT_FEAT)?,
                embedding: get(S3GEN_EMBEDDING)?,
            },
        })
    }

    /// Reads a torch pickle saved by the reference's `Conditionals.save` (the
    /// checkpoint's `conds.pt`): `{"t3": T3Cond fields, "gen": embed_ref dict}`.
    pub fn from_torch_file(path: &Path, device: &Device) -> Result<Self> {
        let context = |e: candle_core::Error| {
            candle_core::Error::Msg(format!(
                "reading voice conditionals {}: {e}",
                path.display()
            ))
        };
        let read = |key: &str| -> Result<HashMap<String, Tensor>> {
            let tensors = candle_core::pickle::read_all_with_key(path, Some(key))?;
            Ok(tensors.into_iter().collect())
        };
        let t3 = read("t3").map_err(context)?;
        let gen_dict = read("gen").map_err(context)?;
        let get = |dict: &HashMap<String, Tensor>, key: &str, name: &str| {
            dict.get(name).cloned().ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "voice conditionals {} lack {key}.{name}",
                    path.display()
                ))
            })
        };
        let prompt_tokens = prompt_row(&get(&gen_dict, "gen", "prompt_token")?)?;
        if let Some(len) = gen_dict.get("prompt_token_len") {
            let len = len.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?;
            if len != [prompt_tokens.dim(1)? as i64] {
                candle_core::bail!(
                    "voice conditionals {}: prompt_token_len {len:?} disagrees with {} prompt tokens",
                    path.display(),
                    prompt_tokens.dim(1)?
                );
            }
        }
        let on_device = |t: Tensor| t.to_dtype(DType::F32)?.to_device(device);
        Ok(Self {
            t3: T3Conditionals {
                speaker_emb: on_device(get(&t3, "t3", "speaker_emb")?)?,
                prompt_tokens: token_ids(&get(&t3, "t3", "cond_prompt_speech_tokens")?)?,
            },
            s3gen: S3GenConditionals {
                tokens: prompt_tokens.to_device(device)?,
                mel: on_device(get(&gen_dict, "gen", "prompt_feat")?)?,
                embedding: on_device(get(&gen_dict, "gen", "embedding")?)?,
            },
        })
    }

    /// Checks the sizes against a model configuration, so a voice made for
    /// another model size is refused with a clear message.
    pub fn validate(&self, cfg: &ChatterboxConfig) -> Result<()> {
        let speaker = self.t3.speaker_emb.elem_count();
        if speaker != cfg.t3.speaker_embed_size {
            candle_core::bail!(
                "voice speaker embedding has {speaker} values, the model expects {}",
                cfg.t3.speaker_embed_size
            );
        }
        let embedding = self.s3gen.embedding.elem_count();
        if embedding != cfg.flow.spk_embed_dim {
            candle_core::bail!(
                "voice x-vector has {embedding} values, the model expects {}",
                cfg.flow.spk_embed_dim
            );
        }
        let feat = self.s3gen.mel.dims();
        if feat.len() != 3 || feat[0] != 1 || feat[2] != cfg.flow.output_size {
            candle_core::bail!(
                "voice prompt mel is {feat:?}, the model expects (1, frames, {})",
                cfg.flow.output_size
            );
        }
        let vocab = cfg.t3.start_speech_token;
        let s3gen_tokens = token_ids(&self.s3gen.tokens)?;
        if let Some(bad) = self
            .t3
            .prompt_tokens
            .iter()
            .chain(&s3gen_tokens)
            .find(|&&t| t >= vocab)
        {
            candle_core::bail!("voice prompt token {bad} is not a speech token (< {vocab})");
        }
        Ok(())
    }
}

/// Prompt tokens as S3Gen takes them: one (1, N) int64 row.
fn prompt_row(t: &Tensor) -> Result<Tensor> {
    let n = t.elem_count();
    t.to_dtype(DType::I64)?.reshape((1, n))
}

/// Token ids of an integer tensor of any shape (rows of a batch of one).
pub(crate) fn token_ids(t: &Tensor) -> Result<Vec<u32>> {
    let ids = t.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?;
    ids.into_iter()
        .map(|id| {
            u32::try_from(id)
                .map_err(|_| candle_core::Error::Msg(format!("token id {id} is out of range")))
        })
        .collect()
}
