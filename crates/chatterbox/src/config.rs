//! Model configuration. Field names follow the reference's config dictionaries
//! (the `config` object of the fixtures' `index.json`), so a fixture directory's
//! configuration deserializes directly. `ChatterboxConfig::default()` is the
//! official Chatterbox Turbo configuration.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::weights::TensorLayout;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatterboxConfig {
    pub name: String,
    pub t3: T3Config,
    pub ve: VoiceEncoderConfig,
    pub s3tokenizer: S3TokenizerConfig,
    pub campplus: CampplusConfig,
    pub flow: FlowConfig,
    pub decoder: DecoderConfig,
    pub cfm: CfmConfig,
    pub hift: HiftConfig,
    pub mel_24k: Mel24kConfig,
}

impl Default for ChatterboxConfig {
    fn default() -> Self {
        serde_json::from_str(include_str!("config_full.json")).expect("embedded full config parses")
    }
}

impl ChatterboxConfig {
    /// Reads the `config` object of a fixture directory's `index.json`
    /// (or of any JSON file holding a `config` key).
    pub fn from_index_json(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        #[derive(Deserialize)]
        struct Index {
            config: ChatterboxConfig,
        }
        let index: Index = serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })?;
        Ok(index.config)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read model config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid model config {path}: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path} does not describe a T3 model: {reason}")]
    Checkpoint { path: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    pub n_embd: usize,
    pub n_head: usize,
    pub n_layer: usize,
    pub n_positions: usize,
    pub vocab_size: usize,
    pub layer_norm_epsilon: f64,
    pub activation_function: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct T3Config {
    pub gpt2: Gpt2Config,
    pub hidden_size: usize,
    pub text_tokens_dict_size: usize,
    pub speech_tokens_dict_size: usize,
    pub start_speech_token: u32,
    pub stop_speech_token: u32,
    pub speech_cond_prompt_len: usize,
    pub speaker_embed_size: usize,
    pub speech_head_bias: bool,
    pub text_head_bias: bool,
}

impl T3Config {
    /// This configuration with the sizes read from the tensors of T3's checkpoint
    /// file (`tensors`: its header): the width and the position table's length
    /// (`tfmr.wpe.weight`), the number of layers (`tfmr.h.<i>.*`), the GPT-2, text
    /// and speech vocabularies (`tfmr.wte`, `text_emb`, `speech_emb`) and the
    /// speaker embedding's size (`cond_enc.spkr_enc`). The head count follows the
    /// width at the configured head width (64 in GPT-2 small and medium). A tensor
    /// that is absent or not a matrix leaves its sizes as configured: loading then
    /// names it.
    pub fn with_checkpoint_shapes(
        &self,
        tensors: &BTreeMap<String, TensorLayout>,
    ) -> Result<Self, String> {
        let matrix = |name: &str| match tensors.get(name).map(|t| t.shape.as_slice()) {
            Some(&[rows, columns]) => Some((rows, columns)),
            _ => None,
        };
        let mut cfg = self.clone();
        if let Some((positions, width)) = matrix("tfmr.wpe.weight") {
            let head_width = self.gpt2.n_embd / self.gpt2.n_head.max(1);
            if head_width == 0 || width % head_width != 0 {
                return Err(format!(
                    "its width {width} (tfmr.wpe.weight) is not a multiple of the head width \
                     {head_width}"
                ));
            }
            cfg.gpt2.n_positions = positions;
            cfg.gpt2.n_embd = width;
            cfg.gpt2.n_head = width / head_width;
            cfg.hidden_size = width;
        }
        let last_layer = tensors
            .keys()
            .filter_map(|name| crate::checkpoint::layer(name))
            .max();
        if let Some(last_layer) = last_layer {
            cfg.gpt2.n_layer = last_layer + 1;
        }
        if let Some((rows, _)) = matrix("tfmr.wte.weight") {
            cfg.gpt2.vocab_size = rows;
        }
        if let Some((rows, _)) = matrix("text_emb.weight") {
            cfg.text_tokens_dict_size = rows;
        }
        if let Some((rows, _)) = matrix("speech_emb.weight") {
            cfg.speech_tokens_dict_size = rows;
        }
        if let Some((_, columns)) = matrix("cond_enc.spkr_enc.weight") {
            cfg.speaker_embed_size = columns;
        }
        Ok(cfg)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedsFromWavsConfig {
    pub rate: f64,
    pub overlap: f64,
    pub min_coverage: f64,
    pub trim_top_db: f64,
    pub frame_step: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceEncoderConfig {
    pub num_mels: usize,
    pub sample_rate: u32,
    pub n_fft: usize,
    pub hop_size: usize,
    pub win_size: usize,
    pub fmin: f64,
    pub fmax: f64,
    pub mel_power: f64,
    pub ve_hidden_size: usize,
    pub lstm_num_layers: usize,
    pub speaker_embed_size: usize,
    pub ve_partial_frames: usize,
    pub ve_final_relu: bool,
    pub embeds_from_wavs: EmbedsFromWavsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct S3TokenizerConfig {
    pub n_mels: usize,
    pub n_fft: usize,
    pub hop: usize,
    pub sample_rate: u32,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_codebook_size: usize,
    pub fsq_levels: usize,
    pub fsq_dim: usize,
    pub fsmn_kernel_size: usize,
    pub rope_dim: usize,
    pub rope_theta: f64,
    pub conv_stride: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FbankConfig {
    pub num_mel_bins: usize,
    pub dither: f64,
    pub frame_length_ms: f64,
    pub frame_shift_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampplusConfig {
    pub feat_dim: usize,
    pub embedding_size: usize,
    pub growth_rate: usize,
    pub bn_size: usize,
    pub init_channels: usize,
    pub fcm_m_channels: usize,
    pub fcm_num_blocks: Vec<usize>,
    pub block_layers: Vec<usize>,
    pub block_kernel_sizes: Vec<usize>,
    pub block_dilations: Vec<usize>,
    pub tdnn_kernel: usize,
    pub tdnn_stride: usize,
    pub cam_seg_len: usize,
    pub fbank: FbankConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerNormEps {
    pub after_norm: f64,
    pub layers: f64,
    pub embed: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowEncoderConfig {
    pub input_size: usize,
    pub output_size: usize,
    pub attention_heads: usize,
    pub linear_units: usize,
    pub num_blocks: usize,
    pub num_up_blocks: usize,
    pub pre_lookahead_len: usize,
    pub upsample_stride: usize,
    pub normalize_before: bool,
    pub key_bias: bool,
    pub layer_norm_eps: LayerNormEps,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowConfig {
    pub input_size: usize,
    pub output_size: usize,
    pub spk_embed_dim: usize,
    pub vocab_size: usize,
    pub token_mel_ratio: usize,
    pub pre_lookahead_len: usize,
    pub input_frame_rate: usize,
    pub encoder: FlowEncoderConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecoderConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub causal: bool,
    pub channels: Vec<usize>,
    pub attention_head_dim: usize,
    pub n_blocks: usize,
    pub num_mid_blocks: usize,
    pub num_heads: usize,
    pub meanflow: bool,
    pub time_embed_dim: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CfmConfig {
    pub spk_emb_dim: usize,
    pub n_timesteps: usize,
    pub sigma_min: f64,
    pub inference_cfg_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IstftParams {
    pub n_fft: usize,
    pub hop_len: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct F0PredictorConfig {
    pub num_class: usize,
    pub in_channels: usize,
    pub cond_channels: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiftConfig {
    pub in_channels: usize,
    pub base_channels: usize,
    pub nb_harmonics: usize,
    pub sampling_rate: u32,
    pub nsf_alpha: f64,
    pub nsf_sigma: f64,
    pub nsf_voiced_threshold: f64,
    pub upsample_rates: Vec<usize>,
    pub upsample_kernel_sizes: Vec<usize>,
    pub istft_params: IstftParams,
    pub resblock_kernel_sizes: Vec<usize>,
    pub resblock_dilation_sizes: Vec<Vec<usize>>,
    pub source_resblock_kernel_sizes: Vec<usize>,
    pub source_resblock_dilation_sizes: Vec<Vec<usize>>,
    pub lrelu_slope: f64,
    pub audio_limit: f64,
    pub f0_predictor: F0PredictorConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mel24kConfig {
    pub n_fft: usize,
    pub num_mels: usize,
    pub sampling_rate: u32,
    pub hop_size: usize,
    pub win_size: usize,
    pub fmin: f64,
    pub fmax: f64,
    pub center: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_config_is_turbo_sized() {
        let cfg = ChatterboxConfig::default();
        assert_eq!(cfg.name, "full");
        assert_eq!(cfg.t3.gpt2.n_layer, 24);
        assert_eq!(cfg.t3.gpt2.n_embd, 1024);
        assert_eq!(cfg.flow.encoder.output_size, 512);
        assert_eq!(cfg.hift.base_channels, 512);
    }
}
