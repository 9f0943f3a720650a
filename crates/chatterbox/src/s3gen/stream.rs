//! S3Gen speaking T3's tokens while T3 still makes them (token-level streaming, as the
//! streaming of CosyVoice 2, whose flow S3Gen is: <https://arxiv.org/abs/2412.10117>).
//!
//! Tokens are vocoded in windows: a small first one, so that audio starts early, then
//! larger ones ([`StreamSchedule`]). Each window runs the flow encoder and the CFM over
//! `context` tokens already spoken and the new tokens, after the state the voice prompt
//! left, computed once per voice ([`super::StreamPrompt`], [`super::preceding`]: the
//! prompt attends only to itself, unlike in a one-shot synthesis); the last
//! `pre_lookahead_len` tokens received wait for the next window, because the encoder looks
//! that far ahead. HiFT then vocodes the window's new mel frames after the last
//! [`HIFT_OVERLAP_FRAMES`] frames of the window before, with the harmonic source going on
//! in phase across windows; the wave of those overlap frames, held back from the window
//! before, is crossfaded with their new wave, so the joined stream has no seams.
//!
//! Every random draw depends only on the seed and the frame or sample it is for, not on
//! where windows fall, so a stream differs from the same tokens vocoded in one window
//! ([`StreamSchedule::single_window`]) only by the windows' limited context.

use std::sync::Arc;

use candle_core::{D, DType, Tensor};

use super::flow_encoder::FlowPrompt;
use super::hift::SineState;
use super::preceding::Preceding;
use super::{S3Gen, StreamPrompt};
use crate::rng::{RandomSource, SeededRandom};
use crate::tts::SILENCE_TOKEN;

/// Mel frames HiFT vocodes again at the start of each window: its receptive field
/// around a frame (the F0 predictor's five `k = 3` convolutions and `conv_pre`'s `k = 7`
/// reach 5 frames; the upsampling ResBlocks less), so these frames' first wave, made
/// without what follows them, is replaced by a crossfade into their second.
pub const HIFT_OVERLAP_FRAMES: usize = 8;

/// Frames of generated-noise drawn at a time, so each frame's noise is the same
/// however the windows fall.
const NOISE_BLOCK_FRAMES: usize = 64;

/// Seed offset of the vocoder's draws (sine phases and noise), apart from the flow's.
const VOCODER_SEED: u64 = 0x5eed_0f51_4e00;

/// How tokens are grouped into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSchedule {
    /// New tokens in the first window.
    pub first: usize,
    /// Each later window takes this many times the new tokens of the one before...
    pub growth: usize,
    /// ...up to this many.
    pub largest: usize,
    /// Tokens already spoken that a window's flow sees again before its new ones.
    pub context: usize,
}

impl Default for StreamSchedule {
    /// First audio after 10 tokens, then windows of 20, 40, 80 and at most 160 tokens.
    /// A first window of 5 tokens ends sooner (`benches/streaming.rs`) but gives out only
    /// 2 mel frames, the 40 ms of `trim_fade`, as the last 8 frames wait for the next
    /// window ([`HIFT_OVERLAP_FRAMES`]); 10 tokens give out the first 0.24 s.
    fn default() -> Self {
        Self {
            first: 10,
            growth: 2,
            largest: 160,
            context: 10,
        }
    }
}

impl StreamSchedule {
    /// Everything in one window at the end: S3Gen over all the tokens at once.
    pub fn single_window() -> Self {
        Self {
            first: usize::MAX,
            growth: 1,
            largest: usize::MAX,
            context: 0,
        }
    }

    /// New tokens in window `index` (0-based).
    fn window(&self, index: usize) -> usize {
        let growth = self
            .growth
            .max(1)
            .saturating_pow(u32::try_from(index).unwrap_or(u32::MAX));
        self.first.max(1).saturating_mul(growth).min(self.largest)
    }
}

/// One utterance being vocoded as its tokens come.
pub struct S3GenStream<'a> {
    s3gen: &'a S3Gen,
    voice: &'a FlowPrompt,
    /// The voice prompt's state, from the first window on (T3 goes on meanwhile).
    prompt: Option<Arc<StreamPrompt>>,
    schedule: StreamSchedule,
    tokens: Vec<u32>,
    /// Tokens whose mel has gone to HiFT.
    spoken: usize,
    windows: usize,
    flow_rng: SeededRandom,
    /// Starting noise of generated frames, [`NOISE_BLOCK_FRAMES`] per block.
    noise_blocks: Vec<Tensor>,
    vocoder_rng: SeededRandom,
    sines: SineState,
    /// The last mel frames HiFT saw and their source, vocoded again next window.
    overlap_mel: Option<Tensor>,
    overlap_source: Vec<f32>,
    /// The wave of those frames, held back to be crossfaded.
    held: Vec<f32>,
    /// Samples handed out so far (for the fade-in).
    released: usize,
}

impl<'a> S3GenStream<'a> {
    /// A stream in `voice`, whose prompt state is computed at the first window of its
    /// first stream ([`S3Gen::stream_prompt`]).
    pub fn new(
        s3gen: &'a S3Gen,
        voice: &'a FlowPrompt,
        schedule: StreamSchedule,
        seed: u64,
    ) -> candle_core::Result<Self> {
        let mut vocoder_rng = SeededRandom::new(seed ^ VOCODER_SEED);
        let sines = s3gen.hift.source_module().start_stream(&mut vocoder_rng)?;
        Ok(Self {
            s3gen,
            voice,
            prompt: None,
            schedule,
            tokens: Vec::new(),
            spoken: 0,
            windows: 0,
            flow_rng: SeededRandom::new(seed),
            noise_blocks: Vec::new(),
            vocoder_rng,
            sines,
            overlap_mel: None,
            overlap_source: Vec::new(),
            held: Vec::new(),
            released: 0,
        })
    }

    /// Takes the next speech token (below the speech vocabulary); returns the audio that
    /// became final with it, usually none.
    pub fn push(&mut self, token: u32) -> candle_core::Result<Vec<f32>> {
        self.tokens.push(token);
        let lookahead = self.s3gen.lookahead_tokens;
        let ready = self.tokens.len().saturating_sub(lookahead);
        if ready - self.spoken < self.schedule.window(self.windows) {
            return Ok(Vec::new());
        }
        self.window(ready, false)
    }

    /// The rest of the audio, once every token has been pushed (S3Gen's 3 silence tokens
    /// are appended here, as [`crate::tts::s3gen_tokens`] does).
    pub fn finish(mut self) -> candle_core::Result<Vec<f32>> {
        self.tokens.extend([SILENCE_TOKEN; 3]);
        let end = self.tokens.len();
        self.window(end, true)
    }

    /// Vocodes the tokens from `spoken` to `end`.
    fn window(&mut self, end: usize, last: bool) -> candle_core::Result<Vec<f32>> {
        crate::on_rayon_thread(|| {
            let start = self.spoken.saturating_sub(self.schedule.context);
            let mel = self.mel(start, end, last)?;
            self.spoken = end;
            self.windows += 1;
            self.vocode(&mel, last)
        })
    }

    /// Mel of tokens `spoken..end` (of all of them when `last`), the flow and the CFM
    /// seeing the prompt's state and tokens `start..`.
    ///
    /// Token `j`'s frames are generated frames `2 j` and `2 j + 1`, at `2 (j - start)` in
    /// the window; generated frame `f` starts from noise `f`, the same in every window.
    fn mel(&mut self, start: usize, end: usize, last: bool) -> candle_core::Result<Tensor> {
        let s3gen = self.s3gen;
        let prompt = match &self.prompt {
            Some(prompt) => Arc::clone(prompt),
            None => Arc::clone(self.prompt.insert(s3gen.stream_prompt(self.voice)?)),
        };
        let device = prompt.spks.device();
        let window = Tensor::new(&self.tokens[start..], device)?.unsqueeze(0)?;
        let conditioning =
            s3gen
                .flow
                .forward_after_prompt(&window, &prompt.encoder, &prompt.spks)?;
        let frames = conditioning.mu.dim(D::Minus1)?;
        let ratio = s3gen.token_mel_ratio;
        let x = self
            .generated_noise(start * ratio, frames)?
            .to_dtype(conditioning.mu.dtype())?;
        let mut steps: Vec<Preceding> = prompt.decoder.iter().map(Preceding::prompt).collect();
        let mel = s3gen.cfm.integrate_after(x, &conditioning, &mut steps)?;
        let from = ((self.spoken * ratio).max(prompt.dropped_frames) - start * ratio).min(frames);
        let to = if last { frames } else { (end - start) * ratio }.max(from);
        mel.narrow(D::Minus1, from, to - from)
    }

    /// The starting noise of generated frames `from..from + frames`.
    fn generated_noise(&mut self, from: usize, frames: usize) -> candle_core::Result<Tensor> {
        let device = self.voice.mel.device();
        while self.noise_blocks.len() * NOISE_BLOCK_FRAMES < from + frames {
            let block = self
                .flow_rng
                .randn(&[1, self.s3gen.mel_bins, NOISE_BLOCK_FRAMES], device)?;
            self.noise_blocks.push(block);
        }
        let first = from / NOISE_BLOCK_FRAMES;
        let last = (from + frames).div_ceil(NOISE_BLOCK_FRAMES);
        let blocks: Vec<&Tensor> = self.noise_blocks[first..last].iter().collect();
        Tensor::cat(&blocks, D::Minus1)?.narrow(
            D::Minus1,
            from - first * NOISE_BLOCK_FRAMES,
            frames,
        )
    }

    /// HiFT over the overlap frames and `mel`; returns the wave that is final.
    fn vocode(&mut self, mel: &Tensor, last: bool) -> candle_core::Result<Vec<f32>> {
        let hift = &self.s3gen.hift;
        let per_frame = hift.samples_per_frame();
        let overlap_frames = self.held.len() / per_frame;
        let mel = match &self.overlap_mel {
            Some(overlap) => Tensor::cat(&[overlap, mel], D::Minus1)?,
            None => mel.clone(),
        };
        let frames = mel.dim(D::Minus1)?;
        let f0 = hift.f0(&mel)?;
        let new_f0 = hift
            .upsample_f0(&f0.narrow(1, overlap_frames, frames - overlap_frames)?)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let new_source = hift.source_module().continue_stream(
            &new_f0,
            &mut self.sines,
            &mut self.vocoder_rng,
            mel.device(),
        )?;
        // The last frames are held back unless this is the end, to be vocoded again.
        let keep_frames = if last {
            0
        } else {
            HIFT_OVERLAP_FRAMES.min(frames - overlap_frames)
        };
        let keep = keep_frames * per_frame;
        let mut source = std::mem::take(&mut self.overlap_source);
        source.extend_from_slice(&new_source);
        let source_len = source.len();
        self.overlap_source = source[source_len - keep..].to_vec();
        let source = Tensor::from_vec(source, (1, source_len, 1), mel.device())?;
        let spectrum = hift.decode(&mel, &hift.source_stft(&source)?)?;
        let wave = hift
            .spectrum_to_wave(&spectrum)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;

        let mut out = crossfade(&self.held, &wave[..self.held.len()]);
        out.extend_from_slice(&wave[self.held.len()..wave.len() - keep]);
        self.held = wave[wave.len() - keep..].to_vec();
        self.overlap_mel = (keep_frames > 0)
            .then(|| mel.narrow(D::Minus1, frames - keep_frames, keep_frames))
            .transpose()?;
        for (i, sample) in out.iter_mut().enumerate() {
            *sample *= self.s3gen.fade_gain(self.released + i);
        }
        self.released += out.len();
        Ok(out)
    }
}

/// `old` fading out into `new` (equal lengths) with a raised-cosine curve.
fn crossfade(old: &[f32], new: &[f32]) -> Vec<f32> {
    let n = old.len();
    old.iter()
        .zip(new)
        .enumerate()
        .map(|(i, (&old, &new))| {
            let w = 0.5 - 0.5 * (std::f32::consts::PI * (i as f32 + 0.5) / n as f32).cos();
            old * (1.0 - w) + new * w
        })
        .collect()
}
