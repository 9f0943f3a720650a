//! WAV encoding (16-bit PCM, the canonical container for stored audio).

use std::io::Cursor;

/// Encodes mono samples in [-1, 1] as a 16-bit PCM WAV file.
pub fn encode_wav_pcm16(samples: &[f32], sample_rate: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    {
        let mut writer =
            hound::WavWriter::new(&mut out, spec).expect("writing to memory cannot fail");
        for &s in samples {
            let v = (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16;
            writer
                .write_sample(v)
                .expect("writing to memory cannot fail");
        }
        writer.finalize().expect("writing to memory cannot fail");
    }
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;

    #[test]
    fn wav_round_trips_through_the_decoder() {
        let rate = 24_000;
        let tone: Vec<f32> = (0..rate)
            .map(|i| 0.5 * (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin())
            .collect();
        let bytes = encode_wav_pcm16(&tone, rate);
        let decoded = decode(&bytes, Some("audio/wav")).unwrap();
        assert_eq!(decoded.sample_rate, rate);
        assert_eq!(decoded.samples.len(), tone.len());
        let max_err = decoded
            .samples
            .iter()
            .zip(&tone)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(max_err < 1e-4, "max error {max_err}");
    }

    #[test]
    fn garbage_is_not_audio() {
        assert!(decode(b"definitely not audio at all", None).is_err());
    }
}
