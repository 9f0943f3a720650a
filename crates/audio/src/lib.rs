//! Audio decoding, validation, resampling, loudness and encoding.

pub mod loudness;
pub mod resample;
