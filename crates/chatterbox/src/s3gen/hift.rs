//! HiFTGenerator vocoder: mel to waveform, with the F0 predictor and sine source
//! (`s3gen/hifigan.py`, `s3gen/f0_predictor.py`; HiFTNet = neural source filter +
//! iSTFTNet, <https://arxiv.org/abs/2309.09493>).
//!
//! mel `(B, 80, T)` -> F0 `(B, T)` Hz -> F0 repeated to the sample rate -> 9 sine
//! harmonics + noise -> one-channel source -> its STFT fused into an upsampling
//! HiFi-GAN whose last layer predicts log-magnitude and phase of a 16-point STFT ->
//! iSTFT -> wave `(B, T * 480)` at 24 kHz.

mod conv;

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, D, DType, Layout, Module, Shape, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, Linear, VarBuilder};
use rayon::prelude::*;

use crate::config::{F0PredictorConfig, HiftConfig};
use crate::dsp::{PadMode, Spectrum, Stft, hann_window};
use crate::kernels::{self, contiguous_f32};
use crate::rng::RandomSource;
use crate::s3gen::S3GenPrecision;
use crate::weights::weight_norm;
use conv::{RowMap, TimeMajorConv1d, TimeMajorUpsample};

/// `F.leaky_relu`'s default slope, used (on purpose, as in the reference) before `conv_post`.
const FINAL_LRELU_SLOPE: f64 = 0.01;
/// Snake's guard against division by zero: `x + sin^2(alpha x) / (alpha + 1e-9)`.
const SNAKE_EPS: f64 = 1e-9;
/// The predicted magnitude is clipped to this before the iSTFT.
const MAX_MAGNITUDE: f64 = 1e2;

fn conv1d_weight_norm(
    vb: VarBuilder,
    in_channels: usize,
    out_channels: usize,
    kernel_size: usize,
    cfg: Conv1dConfig,
) -> candle_core::Result<Conv1d> {
    let weight = weight_norm(&vb, &[out_channels, in_channels, kernel_size])?;
    let bias = vb.get(out_channels, "bias")?;
    Ok(Conv1d::new(weight, Some(bias), cfg))
}

fn padded(padding: usize) -> Conv1dConfig {
    Conv1dConfig {
        padding,
        ..Default::default()
    }
}

/// Time steps per parallel work unit of [`Snake`].
const SNAKE_ROWS_PER_UNIT: usize = 1024;

/// Snake activation `x + sin^2(alpha x) / alpha` with one alpha per channel, on
/// time-major `(B, L, C)` f32 tensors: on the CPU in one pass (the elementwise ops one
/// by one would each allocate and sweep a tensor as large as the activation), with
/// candle's ops elsewhere.
enum Snake {
    Cpu(HostSnake),
    Device { alpha: Tensor, inv_alpha: Tensor },
}

#[derive(Clone)]
struct HostSnake {
    alpha: Vec<f32>,
    inv_alpha: Vec<f32>,
}

impl Snake {
    fn new(channels: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let alpha = vb.get(channels, "alpha")?.to_dtype(DType::F32)?;
        let inv_alpha = alpha.affine(1.0, SNAKE_EPS)?.recip()?;
        if !vb.device().is_cpu() {
            return Ok(Self::Device { alpha, inv_alpha });
        }
        Ok(Self::Cpu(HostSnake {
            alpha: alpha.to_vec1()?,
            inv_alpha: inv_alpha.to_vec1()?,
        }))
    }
}

impl Module for Snake {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Cpu(snake) => x.contiguous()?.apply_op1_no_bwd(snake),
            Self::Device { alpha, inv_alpha } => {
                let sin = x.broadcast_mul(alpha)?.sin()?;
                x + sin.sqr()?.broadcast_mul(inv_alpha)?
            }
        }
    }
}

impl CustomOp1 for HostSnake {
    fn name(&self) -> &'static str {
        "snake"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("snake", storage, layout)?;
        let channels = layout.shape().dims3()?.2;
        if channels != self.alpha.len() {
            candle_core::bail!("snake: {channels} channels, {} alphas", self.alpha.len());
        }
        let mut out = vec![0f32; x.len()];
        let unit = channels * SNAKE_ROWS_PER_UNIT;
        out.par_chunks_mut(unit)
            .zip(x.par_chunks(unit))
            .for_each(|(out, x)| {
                kernels::vectorized(
                    #[inline(always)]
                    || self.snake_rows(out, x, channels),
                )
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

impl RowMap for HostSnake {
    fn map_row(&self, x: &[f32], out: &mut [f32]) {
        kernels::vectorized(
            #[inline(always)]
            || self.snake_rows(out, x, x.len()),
        )
    }
}

impl HostSnake {
    /// Snake of the rows of `channels` values of `x`, into `out`.
    #[inline(always)]
    fn snake_rows(&self, out: &mut [f32], x: &[f32], channels: usize) {
        for (out, x) in out.chunks_exact_mut(channels).zip(x.chunks_exact(channels)) {
            for (((out, &x), &alpha), &inv_alpha) in
                out.iter_mut().zip(x).zip(&self.alpha).zip(&self.inv_alpha)
            {
                let sin = kernels::sin(x * alpha);
                *out = x + sin * sin * inv_alpha;
            }
            // The vectorized sine is accurate up to SIN_MAX_INPUT only. Checked first, so
            // that the compiler cannot turn the rare recomputation into a libm call for
            // every value.
            let beyond = |x: f32, alpha: f32| (x * alpha).abs() > kernels::SIN_MAX_INPUT;
            if !x
                .iter()
                .zip(&self.alpha)
                .any(|(&x, &alpha)| beyond(x, alpha))
            {
                continue;
            }
            for (((out, &x), &alpha), &inv_alpha) in
                out.iter_mut().zip(x).zip(&self.alpha).zip(&self.inv_alpha)
            {
                if beyond(x, alpha) {
                    let sin = (x * alpha).sin();
                    *out = x + sin * sin * inv_alpha;
                }
            }
        }
    }
}

/// HiFi-GAN residual block with Snake activations on time-major `(B, L, C)`
/// activations: per dilation, `x += conv2(snake(conv1_dilated(snake(x))))`.
struct ResBlock {
    layers: Vec<(Snake, TimeMajorConv1d, Snake, TimeMajorConv1d)>,
}

impl ResBlock {
    /// With `split`, the convolutions' products run as split bf16 products
    /// ([`TimeMajorConv1d::split_products`]).
    fn new(
        channels: usize,
        kernel_size: usize,
        dilations: &[usize],
        split: bool,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        // On the CPU each Snake runs inside the convolution after it, as it copies its
        // input.
        let conv = |vb, dilation, snake: &Snake| {
            let mut conv = same_length_conv(vb, channels, kernel_size, dilation)?;
            if split {
                conv = conv.split_products();
            }
            if let Snake::Cpu(snake) = snake {
                conv = conv.after(Arc::new(snake.clone()));
            }
            Ok::<_, candle_core::Error>(conv)
        };
        let layers = dilations
            .iter()
            .enumerate()
            .map(|(i, &dilation)| {
                let act1 = Snake::new(channels, vb.pp(format!("activations1.{i}")))?;
                let conv1 = conv(vb.pp(format!("convs1.{i}")), dilation, &act1)?;
                let act2 = Snake::new(channels, vb.pp(format!("activations2.{i}")))?;
                let conv2 = conv(vb.pp(format!("convs2.{i}")), 1, &act2)?;
                Ok((act1, conv1, act2, conv2))
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { layers })
    }
}

impl Module for ResBlock {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // `act(x)`, unless `conv` applies it itself.
        let activated = |act: &Snake, conv: &TimeMajorConv1d, x: &Tensor| match conv.maps_input() {
            true => Ok(x.clone()),
            false => act.forward(x),
        };
        let mut x = x.clone();
        for (act1, conv1, act2, conv2) in &self.layers {
            let h = conv1.forward(&activated(act1, conv1, &x)?)?;
            x = conv2.forward_residual(&activated(act2, conv2, &h)?, &x)?;
        }
        Ok(x)
    }
}

/// A weight-normed `channels` to `channels` conv that keeps the length.
fn same_length_conv(
    vb: VarBuilder,
    channels: usize,
    kernel_size: usize,
    dilation: usize,
) -> candle_core::Result<TimeMajorConv1d> {
    let weight = weight_norm(&vb, &[channels, channels, kernel_size])?;
    let cfg = Conv1dConfig {
        padding: dilation * (kernel_size - 1) / 2,
        dilation,
        ..Default::default()
    };
    TimeMajorConv1d::new(&weight, &vb.get(channels, "bias")?, cfg)
}

/// `(B, C, L)` to time-major `(B, L, C)`, contiguous.
fn time_major(x: &Tensor) -> candle_core::Result<Tensor> {
    x.transpose(1, 2)?.contiguous()
}

/// ConvRNNF0Predictor: five `conv(k=3) + ELU` layers, a linear head, `abs`.
pub struct F0Predictor {
    condnet: Vec<Conv1d>,
    classifier: Linear,
}

impl F0Predictor {
    /// `vb` at `mel2wav.f0_predictor`.
    pub fn new(cfg: &F0PredictorConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let condnet = (0..5)
            .map(|i| {
                let in_channels = if i == 0 {
                    cfg.in_channels
                } else {
                    cfg.cond_channels
                };
                // Sequential indices skip the ELU modules: 0, 2, 4, 6, 8.
                conv1d_weight_norm(
                    vb.pp(format!("condnet.{}", 2 * i)),
                    in_channels,
                    cfg.cond_channels,
                    3,
                    padded(1),
                )
            })
            .collect::<candle_core::Result<_>>()?;
        let classifier = candle_nn::linear(cfg.cond_channels, cfg.num_class, vb.pp("classifier"))?;
        Ok(Self {
            condnet,
            classifier,
        })
    }

    /// F0 in Hz `(B, T)` from a log-mel `(B, C, T)`.
    pub fn forward(&self, mel: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = mel.clone();
        for conv in &self.condnet {
            x = conv.forward(&x)?.elu(1.0)?;
        }
        self.classifier
            .forward(&x.transpose(1, 2)?)?
            .squeeze(D::Minus1)?
            .abs()
    }
}

/// The harmonic source of one call: SineGen's output and voicing flags.
pub struct Source {
    /// `(B, harmonics, L)` noisy sines (SineGen output).
    pub sine_waves: Tensor,
    /// `(B, 1, L)` 1.0 where F0 is above the voicing threshold.
    pub uv: Tensor,
    /// `(B, L, 1)` merged excitation `tanh(linear(sine_waves))`.
    pub source: Tensor,
}

/// Where a stream's sines are: each harmonic's start phase and the cycles it has run.
pub struct SineState {
    phases: Vec<f32>,
    cycles: Vec<f64>,
}

/// SineGen + SourceModuleHnNSF: F0 at the sample rate to a one-channel excitation.
pub struct SourceModule {
    harmonics: usize,
    sampling_rate: f32,
    sine_amp: f32,
    noise_std: f32,
    voiced_threshold: f32,
    merge: Linear,
}

impl SourceModule {
    /// `vb` at `mel2wav.m_source`.
    pub fn new(cfg: &HiftConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let harmonics = cfg.nb_harmonics + 1;
        Ok(Self {
            harmonics,
            sampling_rate: cfg.sampling_rate as f32,
            sine_amp: cfg.nsf_alpha as f32,
            noise_std: cfg.nsf_sigma as f32,
            voiced_threshold: cfg.nsf_voiced_threshold as f32,
            merge: candle_nn::linear(harmonics, 1, vb.pp("l_linear"))?,
        })
    }

    /// Harmonic source from F0 at the sample rate `(B, L)`.
    ///
    /// Random draws, in the reference's order: the phases `rand (B, H, 1)`, the sine
    /// noise `randn (B, H, L)`, and the noise branch `randn (B, L, 1)`, which inference
    /// never uses but draws, keeping the random stream aligned with the reference.
    pub fn forward(&self, f0: &Tensor, rng: &mut dyn RandomSource) -> candle_core::Result<Source> {
        let (batch, len) = f0.dims2()?;
        let device = f0.device();
        let h = self.harmonics;
        let phase_u = rng
            .rand(&[batch, h, 1], device)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let noise = rng
            .randn(&[batch, h, len], device)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        rng.randn(&[batch, len, 1], device)?;
        let f0 = f0.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        let mut sines = vec![0f32; batch * h * len];
        let mut uv = vec![0f32; batch * len];
        for (b, f0) in f0.iter().enumerate() {
            let mut state = self.sine_state(&phase_u[b * h..(b + 1) * h]);
            self.fill_sines(
                f0,
                &mut state,
                &noise[b * h * len..(b + 1) * h * len],
                &mut sines[b * h * len..(b + 1) * h * len],
                &mut uv[b * len..(b + 1) * len],
            );
        }
        let sine_waves = Tensor::from_vec(sines, (batch, h, len), device)?;
        let uv = Tensor::from_vec(uv, (batch, 1, len), device)?;
        let source = self.merge.forward(&sine_waves.transpose(1, 2)?)?.tanh()?;
        Ok(Source {
            sine_waves,
            uv,
            source,
        })
    }

    /// The SineGen state of a new stream: each harmonic's start phase, drawn as
    /// [`SourceModule::forward`] draws it (`rand (1, H, 1)`).
    pub fn start_stream(&self, rng: &mut dyn RandomSource) -> candle_core::Result<SineState> {
        let phase_u = rng
            .rand(&[1, self.harmonics, 1], &candle_core::Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(self.sine_state(&phase_u))
    }

    /// The merged excitation `(L,)` for the next `L` samples of F0 of a stream, the
    /// sines going on in phase from where the previous call left them. Draws the
    /// sine noise sample by sample (`randn (L, H)`), so that each sample's noise is the
    /// same however a stream is cut into calls.
    pub fn continue_stream(
        &self,
        f0: &[f32],
        state: &mut SineState,
        rng: &mut dyn RandomSource,
        device: &candle_core::Device,
    ) -> candle_core::Result<Vec<f32>> {
        let (h, len) = (self.harmonics, f0.len());
        let noise = rng
            .randn(&[len, h], &candle_core::Device::Cpu)?
            .t()?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut sines = vec![0f32; h * len];
        let mut uv = vec![0f32; len];
        self.fill_sines(f0, state, &noise, &mut sines, &mut uv);
        let sine_waves = Tensor::from_vec(sines, (1, h, len), device)?;
        self.merge
            .forward(&sine_waves.transpose(1, 2)?)?
            .tanh()?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()
    }

    /// Start phases from uniform draws: `Uniform(-pi, pi).sample() = low + u * (high -
    /// low)` in f32, the fundamental at phase 0.
    fn sine_state(&self, phase_u: &[f32]) -> SineState {
        let (low, high) = (-std::f32::consts::PI, std::f32::consts::PI);
        SineState {
            phases: (0..self.harmonics)
                .map(|k| {
                    if k == 0 {
                        0.0
                    } else {
                        low + phase_u[k] * (high - low)
                    }
                })
                .collect(),
            cycles: vec![0.0; self.harmonics],
        }
    }

    /// SineGen over one row: `sines` `(H, L)` harmonic-major and `uv` `(L,)` from F0
    /// `(L,)` and the noise `(H, L)`, advancing each harmonic's cycle count.
    fn fill_sines(
        &self,
        f0: &[f32],
        state: &mut SineState,
        noise: &[f32],
        sines: &mut [f32],
        uv: &mut [f32],
    ) {
        let len = f0.len();
        let two_pi = std::f32::consts::TAU;
        let unvoiced_noise = self.sine_amp / 3.0;
        for (flag, &f) in uv.iter_mut().zip(f0) {
            *flag = if f > self.voiced_threshold { 1.0 } else { 0.0 };
        }
        for k in 0..self.harmonics {
            let phase = state.phases[k];
            let offset = k * len;
            let harmonic = (k + 1) as f32;
            // torch's CPU cumsum accumulates f32 in f64 and rounds each output.
            let cycles = &mut state.cycles[k];
            for t in 0..len {
                *cycles += f64::from(f0[t] * harmonic / self.sampling_rate);
                let turns = *cycles as f32;
                let theta = two_pi * (turns - turns.floor());
                let sine = self.sine_amp * (theta + phase).sin();
                let noise_amp = if uv[t] > 0.0 {
                    self.noise_std
                } else {
                    unvoiced_noise
                };
                sines[offset + t] = sine * uv[t] + noise_amp * noise[offset + t];
            }
        }
    }
}

/// HiFTGenerator (`mel2wav`).
pub struct Hift {
    f0_predictor: F0Predictor,
    source_module: SourceModule,
    conv_pre: Conv1d,
    ups: Vec<TimeMajorUpsample>,
    source_downs: Vec<TimeMajorConv1d>,
    source_resblocks: Vec<ResBlock>,
    /// `resblock_kernel_sizes.len()` blocks per upsampling stage, averaged.
    resblocks: Vec<Vec<ResBlock>>,
    conv_post: TimeMajorConv1d,
    stft: Stft,
    /// Waveform samples per mel frame: `prod(upsample_rates) * hop`.
    samples_per_frame: usize,
    lrelu_slope: f64,
    audio_limit: f64,
}

impl Hift {
    /// `vb` at `mel2wav` of the S3Gen checkpoint; every product in f32.
    pub fn new(cfg: &HiftConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Self::with_precision(cfg, S3GenPrecision::Fp32, vb)
    }

    /// [`Hift::new`] with the ResBlocks' products as `precision` allows: split bf16
    /// products on AMX ([`S3GenPrecision::split_products_on`]), f32 elsewhere.
    pub fn with_precision(
        cfg: &HiftConfig,
        precision: S3GenPrecision,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let split = precision.split_products_on(vb.device());
        let n_fft = cfg.istft_params.n_fft;
        let hop = cfg.istft_params.hop_len;
        let stages = cfg.upsample_rates.len();
        if cfg.upsample_kernel_sizes.len() != stages
            || cfg.source_resblock_kernel_sizes.len() != stages
            || cfg.source_resblock_dilation_sizes.len() != stages
            || cfg.resblock_kernel_sizes.len() != cfg.resblock_dilation_sizes.len()
        {
            candle_core::bail!("hift config: per-stage lists have different lengths");
        }
        let channels = |i: usize| cfg.base_channels >> i;
        let conv_pre = conv1d_weight_norm(
            vb.pp("conv_pre"),
            cfg.in_channels,
            cfg.base_channels,
            7,
            padded(3),
        )?;
        let mut ups = Vec::with_capacity(stages);
        for (i, (&rate, &kernel)) in cfg
            .upsample_rates
            .iter()
            .zip(&cfg.upsample_kernel_sizes)
            .enumerate()
        {
            let vb = vb.pp(format!("ups.{i}"));
            // ConvTranspose1d weights are (in, out, k): weight norm over dim 0 = input channels.
            let weight = weight_norm(&vb, &[channels(i), channels(i + 1), kernel])?;
            let bias = vb.get(channels(i + 1), "bias")?;
            ups.push(TimeMajorUpsample::new(
                &weight,
                &bias,
                rate,
                (kernel - rate) / 2,
            )?);
        }
        // Stage i fuses the source STFT downsampled to its rate: the product of the
        // upsampling rates of the stages after it.
        let mut source_downs = Vec::with_capacity(stages);
        let mut source_resblocks = Vec::with_capacity(stages);
        for i in 0..stages {
            let rate: usize = cfg.upsample_rates[i + 1..].iter().product();
            let vb_down = vb.pp(format!("source_downs.{i}"));
            let (kernel, cfg_down) = if rate == 1 {
                (1, Conv1dConfig::default())
            } else {
                (
                    rate * 2,
                    Conv1dConfig {
                        padding: rate / 2,
                        stride: rate,
                        ..Default::default()
                    },
                )
            };
            let weight = vb_down.get((channels(i + 1), n_fft + 2, kernel), "weight")?;
            let bias = vb_down.get(channels(i + 1), "bias")?;
            source_downs.push(TimeMajorConv1d::new(&weight, &bias, cfg_down)?);
            source_resblocks.push(ResBlock::new(
                channels(i + 1),
                cfg.source_resblock_kernel_sizes[i],
                &cfg.source_resblock_dilation_sizes[i],
                split,
                vb.pp(format!("source_resblocks.{i}")),
            )?);
        }
        let kernels = cfg.resblock_kernel_sizes.len();
        let resblocks = (0..stages)
            .map(|i| {
                cfg.resblock_kernel_sizes
                    .iter()
                    .zip(&cfg.resblock_dilation_sizes)
                    .enumerate()
                    .map(|(j, (&k, d))| {
                        ResBlock::new(
                            channels(i + 1),
                            k,
                            d,
                            split,
                            vb.pp(format!("resblocks.{}", i * kernels + j)),
                        )
                    })
                    .collect::<candle_core::Result<Vec<_>>>()
            })
            .collect::<candle_core::Result<_>>()?;
        let conv_post = TimeMajorConv1d::new(
            &weight_norm(&vb.pp("conv_post"), &[n_fft + 2, channels(stages), 7])?,
            &vb.pp("conv_post").get(n_fft + 2, "bias")?,
            padded(3),
        )?;
        Ok(Self {
            f0_predictor: F0Predictor::new(&cfg.f0_predictor, vb.pp("f0_predictor"))?,
            source_module: SourceModule::new(cfg, vb.pp("m_source"))?,
            conv_pre,
            ups,
            source_downs,
            source_resblocks,
            resblocks,
            conv_post,
            stft: Stft::new(
                n_fft,
                hop,
                &hann_window(n_fft, true),
                true,
                PadMode::Reflect,
            )?,
            samples_per_frame: cfg.upsample_rates.iter().product::<usize>() * hop,
            lrelu_slope: cfg.lrelu_slope,
            audio_limit: cfg.audio_limit,
        })
    }

    /// Wave `(B, T * 480)` from a log-mel `(B, 80, T)`.
    pub fn inference(
        &self,
        mel: &Tensor,
        rng: &mut dyn RandomSource,
    ) -> candle_core::Result<Tensor> {
        let f0 = self.f0(mel)?;
        let source = self.source(&self.upsample_f0(&f0)?, rng)?;
        let conv_post_out = self.decode(mel, &self.source_stft(&source.source)?)?;
        self.spectrum_to_wave(&conv_post_out)
    }

    pub fn source_module(&self) -> &SourceModule {
        &self.source_module
    }

    /// Waveform samples per mel frame (480).
    pub fn samples_per_frame(&self) -> usize {
        self.samples_per_frame
    }

    /// F0 in Hz per mel frame `(B, T)`.
    pub fn f0(&self, mel: &Tensor) -> candle_core::Result<Tensor> {
        self.f0_predictor.forward(mel)
    }

    /// F0 repeated to the sample rate: `(B, T)` -> `(B, T * 480)`.
    pub fn upsample_f0(&self, f0: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, frames) = f0.dims2()?;
        f0.unsqueeze(D::Minus1)?
            .broadcast_as((batch, frames, self.samples_per_frame))?
            .reshape((batch, frames * self.samples_per_frame))
    }

    /// The harmonic source of F0 at the sample rate `(B, L)`.
    pub fn source(&self, f0: &Tensor, rng: &mut dyn RandomSource) -> candle_core::Result<Source> {
        self.source_module.forward(f0, rng)
    }

    /// `[real | imag]` of the source's STFT: `(B, L, 1)` -> `(B, n_fft + 2, L / hop + 1)`.
    pub fn source_stft(&self, source: &Tensor) -> candle_core::Result<Tensor> {
        let rows = source
            .squeeze(D::Minus1)?
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?;
        let mut data = Vec::new();
        let mut frames = 0;
        for row in &rows {
            let spectrum = self.stft.forward(row)?;
            data.extend(spectrum.re.iter().chain(&spectrum.im).map(|&v| v as f32));
            frames = spectrum.n_frames;
        }
        Tensor::from_vec(
            data,
            (rows.len(), 2 * self.stft.n_freqs(), frames),
            source.device(),
        )
    }

    /// The generator: log-mel `(B, 80, T)` and source STFT to `conv_post`'s output
    /// `(B, n_fft + 2, F)`: log-magnitudes then phases of the output STFT.
    pub fn decode(&self, mel: &Tensor, source_stft: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = time_major(&self.conv_pre.forward(mel)?)?;
        let source_stft = time_major(source_stft)?;
        let last = self.ups.len() - 1;
        for (i, up) in self.ups.iter().enumerate() {
            x = up.forward(&candle_nn::ops::leaky_relu(&x, self.lrelu_slope)?)?;
            if i == last {
                // ReflectionPad1d((1, 0)): prepend step 1.
                x = Tensor::cat(&[&x.narrow(1, 1, 1)?, &x], 1)?;
            }
            let si =
                self.source_resblocks[i].forward(&self.source_downs[i].forward(&source_stft)?)?;
            let x_and_source = (x + si)?;
            let mut sum = self.resblocks[i][0].forward(&x_and_source)?;
            for block in &self.resblocks[i][1..] {
                sum = (sum + block.forward(&x_and_source)?)?;
            }
            x = (sum / self.resblocks[i].len() as f64)?;
        }
        self.conv_post
            .forward(&candle_nn::ops::leaky_relu(&x, FINAL_LRELU_SLOPE)?)?
            .transpose(1, 2)
    }

    /// `conv_post`'s output to the clamped wave `(B, L)`: magnitude `exp` (clipped at
    /// 100), phase `sin` (redundant, as in the reference), iSTFT.
    pub fn spectrum_to_wave(&self, conv_post_out: &Tensor) -> candle_core::Result<Tensor> {
        let n_freqs = self.stft.n_freqs();
        let magnitude = conv_post_out
            .narrow(1, 0, n_freqs)?
            .exp()?
            .clamp(f64::NEG_INFINITY, MAX_MAGNITUDE)?;
        let phase = conv_post_out.narrow(1, n_freqs, n_freqs)?.sin()?;
        let re = (&magnitude * phase.cos()?)?;
        let im = (&magnitude * phase.sin()?)?;
        let (batch, _, frames) = re.dims3()?;
        let re = re.to_dtype(DType::F32)?.to_vec3::<f32>()?;
        let im = im.to_dtype(DType::F32)?.to_vec3::<f32>()?;
        let mut data = Vec::new();
        for (re, im) in re.iter().zip(&im) {
            let spectrum = Spectrum {
                n_freqs,
                n_frames: frames,
                re: re.iter().flatten().map(|&v| f64::from(v)).collect(),
                im: im.iter().flatten().map(|&v| f64::from(v)).collect(),
            };
            data.extend(self.stft.inverse(&spectrum)?);
        }
        let len = data.len() / batch;
        Tensor::from_vec(data, (batch, len), conv_post_out.device())?
            .clamp(-self.audio_limit, self.audio_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use std::collections::HashMap;

    #[test]
    fn snake_on_other_devices_matches_the_cpu_kernel() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let alpha = Tensor::rand(0.5f32, 1.5, 6, &dev)?;
        let vb = VarBuilder::from_tensors(
            HashMap::from([("alpha".to_string(), alpha.clone())]),
            DType::F32,
            &dev,
        );
        let host = Snake::new(6, vb)?;
        assert!(matches!(host, Snake::Cpu(_)));
        let inv_alpha = alpha.affine(1.0, SNAKE_EPS)?.recip()?;
        let device = Snake::Device { alpha, inv_alpha };
        let x = Tensor::randn(0f32, 3.0, (2, 50, 6), &dev)?;
        let diff = (host.forward(&x)? - device.forward(&x)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-5, "max difference {diff}");
        Ok(())
    }
}
