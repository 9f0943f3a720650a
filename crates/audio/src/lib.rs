//! Audio decoding, validation, resampling, loudness and encoding.

pub mod decode;
pub mod loudness;
pub mod resample;
pub mod wav;

pub use decode::{DecodeError, MonoAudio, decode};
