//! VoiceEncoder: the 256-dim speaker embedding T3 is conditioned on
//! (`chatterbox.models.voice_encoder`, after Real-Time-Voice-Cloning).
//!
//! 16 kHz audio → silence trimmed (`librosa.effects.trim(top_db=20)`) → 40-bin power
//! mel → overlapping 160-frame partials → 3-layer LSTM, last hidden state →
//! Linear → ReLU → L2 norm → mean over partials → L2 norm.

use candle_core::{DType, Device, Module, Result, Tensor, bail};
use candle_nn::rnn::{LSTM, LSTMConfig, RNN};
use candle_nn::{Linear, VarBuilder};

use crate::config::VoiceEncoderConfig;
use crate::dsp::{self, MelFilterBank, MelFilterConfig, MelNorm, PadMode, Stft};

mod lstm;

use lstm::HostLstm;

/// `librosa.effects.trim` framing: RMS over 2048 samples every 512.
const TRIM_FRAME_LENGTH: usize = 2048;
const TRIM_HOP_LENGTH: usize = 512;
/// `amplitude_to_db`'s floor (1e-5 in amplitude, 1e-10 in power).
const TRIM_AMIN_POWER: f64 = 1e-10;

/// `[start, end)` of `wav` with leading and trailing frames quieter than `top_db`
/// below the loudest frame removed, exactly as `librosa.effects.trim(y, top_db)`:
/// frame RMS (centred, zero padded), `power_to_db` with `ref = max`.
pub fn trim_silence(wav: &[f32], top_db: f64) -> (usize, usize) {
    let half = TRIM_FRAME_LENGTH / 2;
    let n_frames = 1 + wav.len() / TRIM_HOP_LENGTH;
    let mean_square: Vec<f64> = (0..n_frames)
        .map(|frame| {
            // Frame `frame` covers samples [frame*hop - half, frame*hop + half).
            let centre = frame * TRIM_HOP_LENGTH;
            let from = centre.saturating_sub(half).min(wav.len());
            let to = (centre + half).min(wav.len());
            wav[from..to]
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                / TRIM_FRAME_LENGTH as f64
        })
        .collect();
    let loudest = mean_square.iter().copied().fold(0.0, f64::max);
    let ref_db = 10.0 * loudest.max(TRIM_AMIN_POWER).log10();
    let is_sound = |ms: &f64| 10.0 * ms.max(TRIM_AMIN_POWER).log10() - ref_db > -top_db;
    match (
        mean_square.iter().position(is_sound),
        mean_square.iter().rposition(is_sound),
    ) {
        (Some(first), Some(last)) => (
            first * TRIM_HOP_LENGTH,
            ((last + 1) * TRIM_HOP_LENGTH).min(wav.len()),
        ),
        _ => (0, 0),
    }
}

/// Frames between the starts of two partials: `round(sample_rate / rate / partial_frames)`
/// (the reference's `get_frame_step` with a rate).
fn frame_step(cfg: &VoiceEncoderConfig) -> usize {
    (f64::from(cfg.sample_rate) / cfg.embeds_from_wavs.rate / cfg.ve_partial_frames as f64)
        .round_ties_even() as usize
}

/// Number of partials covering `n_frames` (`get_num_wins`): the last one is kept when
/// at least `min_coverage` of it lies inside the utterance.
fn partial_count(n_frames: usize, step: usize, window: usize, min_coverage: f64) -> usize {
    let span = (n_frames + step).saturating_sub(window);
    let (mut n, remainder) = (span / step, span % step);
    if n == 0 || (remainder + window - step) as f64 / window as f64 >= min_coverage {
        n += 1;
    }
    n
}

/// The 3-layer LSTM: our own loop on the CPU, candle's `LSTM` elsewhere.
enum Lstm {
    Cpu(HostLstm),
    Device(Vec<LSTM>),
}

impl Lstm {
    /// The last layer's last hidden state `(N, H)` of `x (N, T, in)`.
    fn last_hidden(&self, x: &Tensor) -> Result<Tensor> {
        let layers = match self {
            Self::Cpu(lstm) => return lstm.last_hidden(x),
            Self::Device(layers) => layers,
        };
        let mut x = x.clone();
        let mut last_hidden = None;
        for layer in layers {
            let states = layer.seq(&x)?;
            last_hidden = states.last().map(|s| s.h().clone());
            x = layer.states_to_tensor(&states)?;
        }
        match last_hidden {
            Some(h) => Ok(h),
            None => bail!("voice encoder: empty input or no LSTM layers"),
        }
    }
}

pub struct VoiceEncoder {
    lstm: Lstm,
    proj: Linear,
    /// Centred STFT (reflect padding) with a periodic Hann window.
    stft: Stft,
    /// `(num_mels, n_fft/2 + 1)` Slaney mel filter bank.
    pub(crate) mel_filters: MelFilterBank,
    cfg: VoiceEncoderConfig,
    device: Device,
    dtype: DType,
}

impl VoiceEncoder {
    /// `vb` points at the root of `ve.safetensors`.
    pub fn new(cfg: &VoiceEncoderConfig, vb: VarBuilder) -> Result<Self> {
        if cfg.win_size != cfg.n_fft {
            bail!(
                "voice encoder: win_size {} must equal n_fft {}",
                cfg.win_size,
                cfg.n_fft
            );
        }
        let hidden = cfg.ve_hidden_size;
        let lstm = if vb.device().is_cpu() {
            Lstm::Cpu(HostLstm::new(
                cfg.num_mels,
                hidden,
                cfg.lstm_num_layers,
                vb.pp("lstm"),
            )?)
        } else {
            let layers = (0..cfg.lstm_num_layers)
                .map(|layer| {
                    let input = if layer == 0 { cfg.num_mels } else { hidden };
                    let config = LSTMConfig {
                        layer_idx: layer,
                        ..Default::default()
                    };
                    candle_nn::rnn::lstm(input, hidden, config, vb.pp("lstm"))
                })
                .collect::<Result<_>>()?;
            Lstm::Device(layers)
        };
        Ok(Self {
            lstm,
            proj: candle_nn::linear(hidden, cfg.speaker_embed_size, vb.pp("proj"))?,
            stft: Stft::new(
                cfg.n_fft,
                cfg.hop_size,
                &dsp::hann_window(cfg.n_fft, true),
                true,
                PadMode::Reflect,
            )?,
            mel_filters: MelFilterBank::new(&MelFilterConfig {
                sample_rate: f64::from(cfg.sample_rate),
                n_fft: cfg.n_fft,
                n_mels: cfg.num_mels,
                fmin: cfg.fmin,
                fmax: Some(cfg.fmax),
                htk: false,
                norm: MelNorm::Slaney,
            })?,
            cfg: cfg.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// `(T, num_mels)` mel of 16 kHz audio, `T = 1 + len / hop`: `|STFT|^mel_power`
    /// through the mel filters, no log.
    pub fn mel_spectrogram(&self, wav_16k: &[f32]) -> Result<Tensor> {
        let spectrum = self.stft.forward(wav_16k)?;
        let mut power = spectrum.power();
        // The STFT gives |X|^2; mel_power 2 keeps it, other powers rescale it.
        let exponent = self.cfg.mel_power / 2.0;
        if exponent != 1.0 {
            power.iter_mut().for_each(|p| *p = p.powf(exponent));
        }
        let mel = self.mel_filters.apply(&power, spectrum.n_frames)?;
        Tensor::from_vec(
            mel.into_iter().map(|x| x as f32).collect(),
            (self.cfg.num_mels, spectrum.n_frames),
            &self.device,
        )?
        .t()?
        .contiguous()?
        .to_dtype(self.dtype)
    }

    /// `(N, partial_frames, num_mels)` overlapping windows of a `(T, num_mels)` mel,
    /// zero-padded at the end when the last window runs past it.
    pub fn partials(&self, mel: &Tensor) -> Result<Tensor> {
        let n_frames = mel.dim(0)?;
        let window = self.cfg.ve_partial_frames;
        let step = frame_step(&self.cfg);
        let count = partial_count(
            n_frames,
            step,
            window,
            self.cfg.embeds_from_wavs.min_coverage,
        );
        let needed = window + step * (count - 1);
        let mel = if needed > n_frames {
            mel.pad_with_zeros(0, 0, needed - n_frames)?
        } else {
            mel.clone()
        };
        let windows = (0..count)
            .map(|i| mel.narrow(0, i * step, window))
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&windows, 0)
    }

    /// `(N, frames, num_mels)` → `(N, speaker_embed_size)` L2-normalised embeddings.
    pub fn forward(&self, mels: &Tensor) -> Result<Tensor> {
        let mut embeds = self.proj.forward(&self.lstm.last_hidden(mels)?)?;
        if self.cfg.ve_final_relu {
            embeds = embeds.relu()?;
        }
        l2_normalize(&embeds)
    }

    /// Speaker embedding `(speaker_embed_size,)` of one utterance, as
    /// `embeds_from_wavs([wav], sample_rate=16000)`: trim silence, mel, partials,
    /// mean of the partial embeddings, L2-normalised.
    pub fn embed_utterance(&self, wav_16k: &[f32]) -> Result<Tensor> {
        let (start, end) = trim_silence(wav_16k, self.cfg.embeds_from_wavs.trim_top_db);
        let mel = self.mel_spectrogram(&wav_16k[start..end])?;
        let partial_embeds = self.forward(&self.partials(&mel)?)?;
        l2_normalize(&partial_embeds.mean_keepdim(0)?)?.squeeze(0)
    }
}

/// Divides each row by its Euclidean norm.
fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(1)?.sqrt()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_keeps_the_frames_within_top_db_of_the_loudest() {
        // 1 s silence, 1 s tone, 1 s silence: the RMS frames (2048 wide, every 512)
        // first overlap the tone at frame 30 and last at frame 64.
        let wav: Vec<f32> = (0..48_000)
            .map(|i| {
                if (16_000..32_000).contains(&i) {
                    0.5 * (i as f32 * 0.1).sin()
                } else {
                    0.0
                }
            })
            .collect();
        assert_eq!(trim_silence(&wav, 20.0), (30 * 512, 65 * 512));
    }

    #[test]
    fn trim_leaves_silence_untrimmed_like_librosa() {
        // Every frame equals the (silent) maximum, so nothing counts as quieter.
        assert_eq!(trim_silence(&[0.0; 5000], 20.0), (0, 5000));
    }

    #[test]
    fn partial_count_follows_get_num_wins() {
        // (frames, partials) from the reference's get_num_wins(n, 77, 0.8).
        for (frames, expected) in [
            (1, 1),
            (160, 1),
            (200, 1),
            (236, 2),
            (250, 2),
            (300, 3),
            (324, 3),
            (1000, 12),
        ] {
            assert_eq!(partial_count(frames, 77, 160, 0.8), expected, "{frames}");
        }
    }

    #[test]
    fn frame_step_is_rounded_from_the_rate() {
        let cfg = crate::ChatterboxConfig::default().ve;
        assert_eq!(frame_step(&cfg), 77);
    }
}
