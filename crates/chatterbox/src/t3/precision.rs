//! Number format of T3, chosen when the model loads. The checkpoint is always f32.
//!
//! - `bf16`, `fp16`: every T3 weight and activation in that 16-bit float (on a GPU,
//!   where its matmuls are fastest; the CPU converts and gains little);
//!
//! the quantized formats apply to T3's GPT-2 projection weights (attention
//! `c_attn`/`c_proj`, MLP `c_fc`/`c_proj`), quantized at load:
//!
//! - `int8`: on the CPU, 8-bit weights with an f32 scale per block of 32 weights of a
//!   row, times f32 activations ([`crate::matvec`]; 9 bits a weight); on a GPU,
//!   candle's Q8_0 (an f16 scale per block of 32, activations quantized to 8 bits too);
//! - `int4`: candle's Q4_K, super-blocks of 256 weights in 8 sub-blocks of 32, each with
//!   a 6-bit scale and minimum (4.5 bits a weight), activations quantized to 8 bits per
//!   block of 256 (Q8_K) by candle's kernels.
//!
//! Embeddings, positions and layer norms stay f32, and the speech head too but in `int8`
//! on the CPU. On the CPU, both quantized formats keep the cached keys and values in IEEE
//! half precision, which halves what attention reads at long positions.

use candle_core::DType;
use candle_core::quantized::GgmlDType;

/// The default is the fastest precision on the CPU that passes the quality gates (mean
/// KL(f32 || quantized) < 0.01 and top-1 agreement >= 99 % over 250 teacher-forced
/// positions, `tests/t3_quantized_quality.rs`): `int8`. On a GPU, `fp16` is the one
/// that passes them ([`Precision::default_for`], `docs/gpu.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// The checkpoint's f32 weights: parity with the reference.
    Fp32,
    /// bfloat16 weights and activations: half the bytes of f32, f32's range.
    Bf16,
    /// float16 weights and activations: half the bytes of f32, more precision than
    /// bf16 but a narrow range.
    Fp16,
    /// 8-bit weights: about 4 times fewer bytes read per token than f32.
    #[default]
    Int8,
    /// 4-bit weights: fastest, further from f32.
    Int4,
}

impl Precision {
    pub const ALL: [Self; 5] = [Self::Fp32, Self::Bf16, Self::Fp16, Self::Int8, Self::Int4];

    /// The setting's spelling: `fp32`, `bf16`, `fp16`, `int8` or `int4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
            Self::Fp16 => "fp16",
            Self::Int8 => "int8",
            Self::Int4 => "int4",
        }
    }

    /// The default on `device`: `int8` on the CPU, `fp16` on a GPU (where `int8` is
    /// candle's Q8_0, which misses the top-1 gate).
    pub fn default_for(device: &candle_core::Device) -> Self {
        if device.is_cpu() {
            Self::default()
        } else {
            Self::Fp16
        }
    }

    /// The float type of T3's weights and activations (f32 around quantized weights).
    pub fn dtype(self) -> DType {
        match self {
            Self::Bf16 => DType::BF16,
            Self::Fp16 => DType::F16,
            Self::Fp32 | Self::Int8 | Self::Int4 => DType::F32,
        }
    }

    /// Candle's block format of the projection weights; `None` unless quantized.
    pub(crate) fn block_format(self) -> Option<GgmlDType> {
        match self {
            Self::Fp32 | Self::Bf16 | Self::Fp16 => None,
            Self::Int8 => Some(GgmlDType::Q8_0),
            Self::Int4 => Some(GgmlDType::Q4K),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision {0:?}: expected fp32, bf16, fp16, int8 or int4")]
pub struct UnknownPrecision(pub String);

impl std::str::FromStr for Precision {
    type Err = UnknownPrecision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPrecision(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for p in Precision::ALL {
            assert_eq!(p.as_str().parse::<Precision>(), Ok(p));
        }
        assert_eq!(" INT4 ".parse::<Precision>(), Ok(Precision::Int4));
        assert_eq!(
            Precision::default_for(&candle_core::Device::Cpu),
            Precision::Int8
        );
        let err = "fp8".parse::<Precision>().unwrap_err().to_string();
        assert!(
            err.contains("fp8") && err.contains("fp32, bf16, fp16, int8 or int4"),
            "{err}"
        );
    }
}
