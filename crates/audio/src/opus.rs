//! A safe mono/stereo Opus encoder and decoder over `unsafe-libopus`, libopus 1.3.1
//! translated to Rust (no C toolchain, no system library). Only what Resonance uses: 48 kHz,
//! float samples, one bitrate setting, the encoder's lookahead.

use std::fmt;

use unsafe_libopus::{
    OPUS_APPLICATION_AUDIO, OPUS_GET_LOOKAHEAD_REQUEST, OPUS_OK, OPUS_SET_BITRATE_REQUEST,
    OpusDecoder as RawDecoder, OpusEncoder as RawEncoder, opus_decode_float, opus_decoder_create,
    opus_decoder_destroy, opus_encode_float, opus_encoder_create, opus_encoder_ctl_impl,
    opus_encoder_destroy, varargs,
};

/// A libopus error code (negative), as `opus_strerror` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusError(i32);

impl fmt::Display for OpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            -1 => "invalid argument",
            -2 => "buffer too small",
            -3 => "internal error",
            -4 => "corrupted stream",
            -5 => "request not implemented",
            -6 => "invalid state",
            -7 => "memory allocation failed",
            _ => "unknown error",
        };
        write!(f, "opus: {name} ({})", self.0)
    }
}

impl std::error::Error for OpusError {}

fn check(code: i32) -> Result<i32, OpusError> {
    if code < 0 {
        Err(OpusError(code))
    } else {
        Ok(code)
    }
}

/// An encoder for one channel of 48 kHz float samples (`OPUS_APPLICATION_AUDIO`).
pub struct MonoEncoder {
    raw: *mut RawEncoder,
}

// SAFETY: the encoder state is a plain heap allocation owned by this value and touched
// only through `&mut self`.
unsafe impl Send for MonoEncoder {}

impl MonoEncoder {
    pub fn new(sample_rate: u32, bits_per_second: i32) -> Result<Self, OpusError> {
        let mut error = OPUS_OK;
        // SAFETY: plain constructor; the result is checked before use.
        let raw = unsafe {
            opus_encoder_create(sample_rate as i32, 1, OPUS_APPLICATION_AUDIO, &mut error)
        };
        check(error)?;
        if raw.is_null() {
            return Err(OpusError(-7));
        }
        let encoder = Self { raw };
        // SAFETY: `raw` is a live encoder; the request takes one i32.
        check(unsafe {
            opus_encoder_ctl_impl(
                encoder.raw,
                OPUS_SET_BITRATE_REQUEST,
                varargs!(bits_per_second),
            )
        })?;
        Ok(encoder)
    }

    /// Samples the decoder's output lags the input by (the Ogg pre-skip).
    pub fn lookahead(&mut self) -> Result<u32, OpusError> {
        let mut value = 0i32;
        // SAFETY: `raw` is a live encoder; the request writes one i32.
        check(unsafe {
            opus_encoder_ctl_impl(self.raw, OPUS_GET_LOOKAHEAD_REQUEST, varargs!(&mut value))
        })?;
        Ok(value as u32)
    }

    /// Encodes one frame (2.5 to 60 ms of samples) into `packet`, returning its length.
    pub fn encode(&mut self, frame: &[f32], packet: &mut [u8]) -> Result<usize, OpusError> {
        // SAFETY: the pointers and lengths come from live slices.
        let len = check(unsafe {
            opus_encode_float(
                self.raw,
                frame.as_ptr(),
                frame.len() as i32,
                packet.as_mut_ptr(),
                packet.len() as i32,
            )
        })?;
        Ok(len as usize)
    }
}

impl Drop for MonoEncoder {
    fn drop(&mut self) {
        // SAFETY: created by `opus_encoder_create`, destroyed once.
        unsafe { opus_encoder_destroy(self.raw) }
    }
}

/// A decoder for one or two channels, interleaved float output.
pub struct Decoder {
    raw: *mut RawDecoder,
    channels: usize,
}

// SAFETY: as for `MonoEncoder`.
unsafe impl Send for Decoder {}

impl Decoder {
    pub fn new(sample_rate: u32, channels: usize) -> Result<Self, OpusError> {
        if !(1..=2).contains(&channels) {
            return Err(OpusError(-1));
        }
        let mut error = OPUS_OK;
        // SAFETY: plain constructor; the result is checked before use.
        let raw = unsafe { opus_decoder_create(sample_rate as i32, channels as i32, &mut error) };
        check(error)?;
        if raw.is_null() {
            return Err(OpusError(-7));
        }
        Ok(Self { raw, channels })
    }

    /// Decodes one packet into `output` (interleaved), returning samples per channel.
    pub fn decode(&mut self, packet: &[u8], output: &mut [f32]) -> Result<usize, OpusError> {
        let frame_capacity = (output.len() / self.channels) as i32;
        // SAFETY: the pointers and lengths come from live slices; libopus writes at most
        // `frame_capacity * channels` samples.
        let frames = check(unsafe {
            opus_decode_float(
                self.raw,
                packet.as_ptr(),
                packet.len() as i32,
                output.as_mut_ptr(),
                frame_capacity,
                0,
            )
        })?;
        Ok(frames as usize)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: created by `opus_decoder_create`, destroyed once.
        unsafe { opus_decoder_destroy(self.raw) }
    }
}
