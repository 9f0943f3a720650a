//! Audio decoding, validation, resampling, loudness and encoding.
