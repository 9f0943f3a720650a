//! A spectrogram picture of a seam: the one-window audio above the streamed audio, the
//! same stretch of time, as an 8-bit grayscale PNG (darker is louder).

use chatterbox::dsp::{PadMode, Stft, hann_window};

const N_FFT: usize = 512;
const HOP: usize = 48;
/// Decibels shown below each picture's loudest bin.
const RANGE_DB: f64 = 80.0;
/// White rows between the two spectrograms.
const GAP: usize = 6;

/// The spectrograms of `above` and `below` (equal lengths) stacked, as PNG bytes.
pub fn seam_png(above: &[f32], below: &[f32]) -> anyhow::Result<Vec<u8>> {
    let stft = Stft::new(
        N_FFT,
        HOP,
        &hann_window(N_FFT, true),
        true,
        PadMode::Reflect,
    )?;
    let (top, width, height) = decibels(&stft, above)?;
    let (bottom, _, _) = decibels(&stft, below)?;
    let loudest = top.iter().chain(&bottom).copied().fold(f64::MIN, f64::max);
    let mut pixels = Vec::with_capacity(width * (2 * height + GAP));
    let rows = |db: &[f64], pixels: &mut Vec<u8>| {
        // Low frequencies at the bottom.
        for bin in (0..height).rev() {
            for frame in 0..width {
                let level = ((loudest - db[bin * width + frame]) / RANGE_DB).clamp(0.0, 1.0);
                pixels.push((level * 255.0) as u8);
            }
        }
    };
    rows(&top, &mut pixels);
    pixels.extend(std::iter::repeat_n(255, GAP * width));
    rows(&bottom, &mut pixels);
    Ok(png(width, 2 * height + GAP, &pixels))
}

/// Frequency-major decibels, frames, bins.
fn decibels(stft: &Stft, wave: &[f32]) -> anyhow::Result<(Vec<f64>, usize, usize)> {
    let spectrum = stft.forward(wave)?;
    let db = spectrum
        .power()
        .into_iter()
        .map(|p| 10.0 * (p + 1e-12).log10())
        .collect();
    Ok((db, spectrum.n_frames, spectrum.n_freqs))
}

/// A grayscale PNG with its image data in stored (uncompressed) deflate blocks.
fn png(width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(height * (width + 1));
    for row in pixels.chunks(width) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut header = Vec::new();
    header.extend_from_slice(&(width as u32).to_be_bytes());
    header.extend_from_slice(&(height as u32).to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grayscale, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", header), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(&data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// CRC-32 (ISO-HDLC, the PNG one), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
