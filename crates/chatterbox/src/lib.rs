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

pub mod amx;
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

/// The spins candle's elementwise thread pool makes before parking its worker, unless the
/// operator sets `CANDLE_BARRIER_POOL_SPIN_LIMIT`. candle's own default, 25,000, keeps
/// the worker spinning between operations, taking a core from rayon's threads on a small
/// machine: voice conditioning on 2 cores took 0.93 to 0.95 s with 200 and 1.06 to 1.20 s
/// with the default, and S3Gen and T3 were no slower (`docs/benchmarks.md`).
pub const CANDLE_POOL_SPINS: u32 = 200;

/// Sets candle's thread pool default ([`CANDLE_POOL_SPINS`]) where the environment does
/// not set it already.
///
/// # Safety
///
/// It sets an environment variable: call it first thing in `main`, before any other
/// thread starts.
pub unsafe fn set_thread_defaults() {
    const SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(SPIN_LIMIT).is_none() {
        // SAFETY: the caller's contract: no other thread reads the environment.
        unsafe { std::env::set_var(SPIN_LIMIT, CANDLE_POOL_SPINS.to_string()) };
    }
}

/// Runs `work` on one of rayon's threads, so that the parallel parts of its kernels split
/// between that thread and the other workers, instead of each waking the workers while
/// the calling thread sleeps (on 2 cores, a first stream window took 0.41 s instead of
/// 0.54 s).
pub(crate) fn on_rayon_thread<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}
