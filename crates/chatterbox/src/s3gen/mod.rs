//! S3Gen meanflow: speech tokens to 24 kHz audio.

pub mod cfm;
pub mod conformer;
pub mod decoder;
pub mod flow_encoder;
pub mod hift;
