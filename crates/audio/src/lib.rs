//! Audio decoding, validation, resampling, loudness and encoding.

pub mod crossfade;
pub mod decode;
pub mod encode;
pub mod loudness;
pub mod matroska;
pub mod opus;
pub mod resample;
pub mod stretch;
pub mod voice_sample;
pub mod wav;

pub use decode::{Bounds, DecodeError, MonoAudio, decode, decode_bounded};
pub use encode::{OutputFormat, StreamEncoder, UnsupportedFormat, encode};
