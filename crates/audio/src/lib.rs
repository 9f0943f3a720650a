//! Audio decoding, validation, resampling, loudness and encoding.

pub mod crossfade;
pub mod decode;
pub mod encode;
pub mod loudness;
pub mod opus;
pub mod resample;
pub mod stretch;
pub mod voice_sample;
pub mod wav;

pub use decode::{DecodeError, MonoAudio, decode, decode_at_most};
pub use encode::{OutputFormat, StreamEncoder, UnsupportedFormat, encode};
