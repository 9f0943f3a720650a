//! Number format of S3Gen's matrix products, chosen when the model loads.
//!
//! - `fp32`: every product in f32, the reference's numbers (the fallback);
//! - `bf16`: on a CPU with AVX-512 BF16, the CFM decoder's products (its linear layers
//!   and attention) round both operands to bfloat16 and sum in f32
//!   ([`crate::matmul_bf16`]), about twice as fast; on a CPU with AMX those run on its
//!   tiles ([`crate::amx`]), and HiFT's ResBlock convolutions too, each as three bf16
//!   products of operands split into high and low halves, near f32's precision;
//!   elsewhere (other CPUs, GPUs) the same as `fp32`. Activations, norms and everything
//!   between products stay f32.
//!
//! The default is `bf16`: it passes the quality gate (SNR >= 30 dB of the waveform
//! against `fp32` on the same tokens and noise, `tests/s3gen_bf16_quality.rs`).

use candle_core::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum S3GenPrecision {
    Fp32,
    #[default]
    Bf16,
}

impl S3GenPrecision {
    pub const ALL: [Self; 2] = [Self::Fp32, Self::Bf16];

    /// The setting's spelling: `fp32` or `bf16`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
        }
    }

    /// Whether products on `device` run in bf16: `bf16` on a CPU that has AVX-512 BF16.
    pub fn bf16_products_on(self, device: &Device) -> bool {
        self == Self::Bf16 && device.is_cpu() && crate::matmul_bf16::available()
    }

    /// Whether f32 products on `device` run as three bf16 products of split operands
    /// ([`crate::amx::SplitRhs`], within about `2^-16` of f32): `bf16` on a CPU with AMX.
    pub fn split_products_on(self, device: &Device) -> bool {
        self == Self::Bf16 && device.is_cpu() && crate::amx::available()
    }
}

impl std::fmt::Display for S3GenPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown S3Gen precision {0:?}: expected fp32 or bf16")]
pub struct UnknownS3GenPrecision(pub String);

impl std::str::FromStr for S3GenPrecision {
    type Err = UnknownS3GenPrecision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownS3GenPrecision(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for p in S3GenPrecision::ALL {
            assert_eq!(p.as_str().parse::<S3GenPrecision>(), Ok(p));
        }
        assert_eq!(" BF16".parse::<S3GenPrecision>(), Ok(S3GenPrecision::Bf16));
        assert!("int8".parse::<S3GenPrecision>().is_err());
        assert!(!S3GenPrecision::Fp32.bf16_products_on(&Device::Cpu));
    }
}
