//! Chatterbox Turbo, natively in Rust with candle.
//!
//! One module per model part, each layer `new(cfg, vb)` + `forward`, as in
//! candle-transformers. Sizes come from [`config::ChatterboxConfig`].
//!
//! The `parity` feature adds the fixture loading and the checks against the
//! Python reference (`parity`, run by `resonance model verify`) and the test
//! artifacts built from those fixtures (`testing`); this crate's unit tests
//! always have both.

pub mod config;
pub mod rng;
pub mod weights;

pub use config::ChatterboxConfig;

pub mod campplus;
pub mod checkpoint;
pub mod conditionals;
pub mod dsp;
pub mod kernels;
pub mod matmul_bf16;
pub mod matvec;
#[cfg(any(test, feature = "parity"))]
pub mod parity;
pub mod recent;
pub mod s3gen;
pub mod s3tokenizer;
pub mod t3;
#[cfg(any(test, feature = "parity"))]
pub mod testing;
pub mod text;
pub mod tts;
pub mod voice_conditioner;
pub mod voice_encoder;

/// Runs `work` on one of rayon's threads, so that the parallel parts of its kernels split
/// between that thread and the other workers, instead of each waking the workers while
/// the calling thread sleeps (on 2 cores, a first stream window took 0.41 s instead of
/// 0.54 s).
pub(crate) fn on_rayon_thread<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}
