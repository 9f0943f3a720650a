//! CAMPPlus x-vector speaker embedding (S3Gen conditioning) and its Kaldi fbank front end
//! (`chatterbox/models/s3gen/xvector.py`).

mod conv2d;
pub mod fbank;

use candle_core::{
    CpuStorage, CustomOp1, D, DType, Device, IndexOp, Layout, Module, Shape, Tensor,
};
use candle_nn::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, VarBuilder};
use rayon::prelude::*;

use crate::config::CampplusConfig;
use crate::kernels::contiguous_f32;
use fbank::Fbank;

/// CAMPPlus works on 16 kHz audio.
pub const SAMPLE_RATE: u32 = 16_000;
const BATCH_NORM_EPS: f64 = 1e-5;
/// Frequency downsampling of the FCM head (three stride-2 stages).
const FCM_FREQ_REDUCTION: usize = 8;

/// Eval-mode BatchNorm over dim 1, folded into a per-channel scale and shift; on the CPU
/// one pass over f32 activations, with the ReLU that follows it where there is one.
struct BatchNorm {
    scale: Tensor,
    shift: Tensor,
    host_scale: Vec<f32>,
    host_shift: Vec<f32>,
}

/// `x * scale[c] + shift[c]` over `(B, C, ...)`, then `max(0, .)` when `relu`.
struct ChannelAffine<'a> {
    scale: &'a [f32],
    shift: &'a [f32],
    relu: bool,
}

impl CustomOp1 for ChannelAffine<'_> {
    fn name(&self) -> &'static str {
        "channel-affine"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous_f32("batch norm", storage, layout)?;
        let dims = layout.shape().dims();
        let channels = self.scale.len();
        if dims.len() < 2 || dims[1] != channels {
            candle_core::bail!("batch norm: {dims:?} has not {channels} channels in dim 1");
        }
        let inner = dims[2..].iter().product::<usize>().max(1);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(inner)
            .zip(x.par_chunks(inner))
            .enumerate()
            .with_min_len(16)
            .for_each(|(row, (out, x))| {
                let (scale, shift) = (self.scale[row % channels], self.shift[row % channels]);
                for (o, &x) in out.iter_mut().zip(x) {
                    let y = x * scale + shift;
                    *o = if self.relu { y.max(0.0) } else { y };
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

impl BatchNorm {
    fn new(channels: usize, affine: bool, vb: VarBuilder) -> candle_core::Result<Self> {
        let mean = vb.get(channels, "running_mean")?;
        let var = vb.get(channels, "running_var")?;
        let inv_std = (var + BATCH_NORM_EPS)?.sqrt()?.recip()?;
        let (scale, shift) = if affine {
            let scale = vb.get(channels, "weight")?.mul(&inv_std)?;
            let shift = vb.get(channels, "bias")?.sub(&mean.mul(&scale)?)?;
            (scale, shift)
        } else {
            let shift = mean.mul(&inv_std)?.neg()?;
            (inv_std, shift)
        };
        let host = |t: &Tensor| t.to_dtype(DType::F32)?.to_vec1::<f32>();
        Ok(Self {
            host_scale: host(&scale)?,
            host_shift: host(&shift)?,
            scale,
            shift,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(x, false)
    }

    fn forward_relu(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(x, true)
    }

    fn apply(&self, x: &Tensor, relu: bool) -> candle_core::Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            return x.contiguous()?.apply_op1_no_bwd(&ChannelAffine {
                scale: &self.host_scale,
                shift: &self.host_shift,
                relu,
            });
        }
        let mut shape = vec![1usize; x.rank()];
        shape[1] = self.scale.dim(0)?;
        let y = x
            .broadcast_mul(&self.scale.reshape(shape.as_slice())?)?
            .broadcast_add(&self.shift.reshape(shape.as_slice())?)?;
        if relu { y.relu() } else { Ok(y) }
    }
}

/// `get_nonlinear("batchnorm-relu")`, stored under `<prefix>.batchnorm`.
struct BatchNormRelu(BatchNorm);

impl BatchNormRelu {
    fn new(channels: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self(BatchNorm::new(channels, true, vb.pp("batchnorm"))?))
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.0.forward_relu(x)
    }
}

/// A 2-D convolution with stride `(stride_freq, 1)` over `(B, C, freq, time)`: on the CPU
/// [`conv2d::conv2d_freq_strided`]; elsewhere candle's conv2d, which takes one stride for
/// both axes, so it runs at stride 1 and keeps every `stride_freq`-th frequency row
/// (identical for these kernel/padding pairs).
struct FreqStridedConv2d {
    conv: Conv2d,
    stride_freq: usize,
}

impl FreqStridedConv2d {
    fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride_freq: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let cfg = Conv2dConfig {
            padding: kernel / 2,
            ..Default::default()
        };
        let conv = candle_nn::conv2d_no_bias(in_channels, out_channels, kernel, cfg, vb)?;
        Ok(Self { conv, stride_freq })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.device().is_cpu() {
            return conv2d::conv2d_freq_strided(x, self.conv.weight(), self.stride_freq);
        }
        let y = self.conv.forward(x)?;
        if self.stride_freq == 1 {
            return Ok(y);
        }
        let rows: Vec<u32> = (0..y.dim(2)? as u32).step_by(self.stride_freq).collect();
        let rows = Tensor::new(rows.as_slice(), y.device())?;
        y.index_select(&rows, 2)
    }
}

/// `BasicResBlock`: two 3x3 conv-BN stages with a (strided 1x1 conv-BN) shortcut.
struct BasicResBlock {
    conv1: FreqStridedConv2d,
    bn1: BatchNorm,
    conv2: FreqStridedConv2d,
    bn2: BatchNorm,
    shortcut: Option<(FreqStridedConv2d, BatchNorm)>,
}

impl BasicResBlock {
    fn new(
        in_planes: usize,
        planes: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let shortcut = if stride != 1 || in_planes != planes {
            let s = vb.pp("shortcut");
            Some((
                FreqStridedConv2d::new(in_planes, planes, 1, stride, s.pp("0"))?,
                BatchNorm::new(planes, true, s.pp("1"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: FreqStridedConv2d::new(in_planes, planes, 3, stride, vb.pp("conv1"))?,
            bn1: BatchNorm::new(planes, true, vb.pp("bn1"))?,
            conv2: FreqStridedConv2d::new(planes, planes, 3, 1, vb.pp("conv2"))?,
            bn2: BatchNorm::new(planes, true, vb.pp("bn2"))?,
            shortcut,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let out = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        let out = self.bn2.forward(&self.conv2.forward(&out)?)?;
        let residual = match &self.shortcut {
            Some((conv, bn)) => bn.forward(&conv.forward(x)?)?,
            None => x.clone(),
        };
        (out + residual)?.relu()
    }
}

/// The FCM head: 2-D residual front end over (frequency, time), flattened to
/// `(B, m_channels * feat_dim / 8, T)`.
pub(crate) struct Fcm {
    conv1: FreqStridedConv2d,
    bn1: BatchNorm,
    layers: Vec<BasicResBlock>,
    conv2: FreqStridedConv2d,
    bn2: BatchNorm,
}

impl Fcm {
    fn new(cfg: &CampplusConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let m = cfg.fcm_m_channels;
        let Some(&blocks_per_layer) = cfg.fcm_num_blocks.first() else {
            candle_core::bail!("campplus: fcm_num_blocks is empty");
        };
        let mut layers = Vec::new();
        // The reference builds both layer1 and layer2 with num_blocks[0].
        for layer in ["layer1", "layer2"] {
            for i in 0..blocks_per_layer {
                let stride = if i == 0 { 2 } else { 1 };
                layers.push(BasicResBlock::new(m, m, stride, vb.pp(layer).pp(i))?);
            }
        }
        Ok(Self {
            conv1: FreqStridedConv2d::new(1, m, 3, 1, vb.pp("conv1"))?,
            bn1: BatchNorm::new(m, true, vb.pp("bn1"))?,
            layers,
            conv2: FreqStridedConv2d::new(m, m, 3, 2, vb.pp("conv2"))?,
            bn2: BatchNorm::new(m, true, vb.pp("bn2"))?,
        })
    }

    /// `(B, F, T)` features to `(B, C * F / 8, T)`.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut out = self
            .bn1
            .forward_relu(&self.conv1.forward(&x.unsqueeze(1)?)?)?;
        for layer in &self.layers {
            out = layer.forward(&out)?;
        }
        let out = self.bn2.forward_relu(&self.conv2.forward(&out)?)?;
        let (b, c, f, t) = out.dims4()?;
        out.reshape((b, c * f, t))
    }
}

fn conv1d_config(padding: usize, stride: usize, dilation: usize) -> Conv1dConfig {
    Conv1dConfig {
        padding,
        stride,
        dilation,
        ..Default::default()
    }
}

/// A kernel-size-1 `Conv1d` as one product `weight (out, in) x x (B, in, T)`, without
/// the im2col copy and transposes of candle's `conv1d`.
struct Pointwise {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Pointwise {
    fn new(
        in_channels: usize,
        out_channels: usize,
        bias: bool,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let weight = vb
            .get((out_channels, in_channels, 1), "weight")?
            .reshape((out_channels, in_channels))?;
        let bias = if bias {
            Some(vb.get(out_channels, "bias")?.reshape((out_channels, 1))?)
        } else {
            None
        };
        Ok(Self { weight, bias })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.weight.broadcast_matmul(&x.contiguous()?)?;
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

/// Context-aware masking: a local dilated conv gated by a sigmoid mask computed from the
/// utterance mean plus the mean of the surrounding `seg_len`-frame segment.
struct CamLayer {
    linear_local: Conv1d,
    linear1: Pointwise,
    linear2: Pointwise,
    seg_len: usize,
}

impl CamLayer {
    /// The context (the mean plus its segment's mean) is the same across a segment, so
    /// the mask is computed once a segment and repeated over its frames.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.linear_local.forward(x)?;
        let context = x
            .mean_keepdim(D::Minus1)?
            .broadcast_add(&self.segment_means(x)?)?;
        let context = self.linear1.forward(&context)?.relu()?;
        let mask = candle_nn::ops::sigmoid(&self.linear2.forward(&context)?)?;
        let segment_of: Vec<u32> = (0..x.dim(2)?)
            .map(|frame| (frame / self.seg_len) as u32)
            .collect();
        y * mask.index_select(&Tensor::new(segment_of, x.device())?, 2)?
    }

    /// `(B, C, segments)`: `avg_pool1d(kernel=stride=seg_len, ceil_mode=True)`; the last,
    /// shorter segment averages only the frames it has.
    fn segment_means(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let t = x.dim(2)?;
        let means = (0..t)
            .step_by(self.seg_len)
            .map(|start| {
                x.narrow(2, start, self.seg_len.min(t - start))?
                    .mean_keepdim(2)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&means, 2)
    }
}

/// `CAMDenseTDNNLayer`: BN-ReLU, 1x1 bottleneck, BN-ReLU, CAM layer.
struct CamDenseTdnnLayer {
    nonlinear1: BatchNormRelu,
    linear1: Pointwise,
    nonlinear2: BatchNormRelu,
    cam_layer: CamLayer,
}

impl CamDenseTdnnLayer {
    fn new(
        cfg: &CampplusConfig,
        in_channels: usize,
        kernel: usize,
        dilation: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        if kernel.is_multiple_of(2) {
            candle_core::bail!("campplus: dense TDNN kernel must be odd, got {kernel}");
        }
        let bn_channels = cfg.bn_size * cfg.growth_rate;
        let cam = vb.pp("cam_layer");
        let padding = (kernel - 1) / 2 * dilation;
        Ok(Self {
            nonlinear1: BatchNormRelu::new(in_channels, vb.pp("nonlinear1"))?,
            linear1: Pointwise::new(in_channels, bn_channels, false, vb.pp("linear1"))?,
            nonlinear2: BatchNormRelu::new(bn_channels, vb.pp("nonlinear2"))?,
            cam_layer: CamLayer {
                linear_local: candle_nn::conv1d_no_bias(
                    bn_channels,
                    cfg.growth_rate,
                    kernel,
                    conv1d_config(padding, 1, dilation),
                    cam.pp("linear_local"),
                )?,
                linear1: Pointwise::new(bn_channels, bn_channels / 2, true, cam.pp("linear1"))?,
                linear2: Pointwise::new(bn_channels / 2, cfg.growth_rate, true, cam.pp("linear2"))?,
                seg_len: cfg.cam_seg_len,
            },
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.linear1.forward(&self.nonlinear1.forward(x)?)?;
        self.cam_layer.forward(&self.nonlinear2.forward(&x)?)
    }
}

/// A dense block (each layer's output appended to its input) followed by its transit layer
/// (BN-ReLU and a 1x1 conv halving the channels).
struct DenseBlock {
    layers: Vec<CamDenseTdnnLayer>,
    transit_nonlinear: BatchNormRelu,
    transit_linear: Pointwise,
}

impl DenseBlock {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            let y = layer.forward(&x)?;
            x = Tensor::cat(&[&x, &y], 1)?;
        }
        self.transit_linear
            .forward(&self.transit_nonlinear.forward(&x)?)
    }
}

/// Everything after the FCM head: TDNN, dense blocks, stats pooling, dense layer.
pub(crate) struct XVector {
    tdnn: Conv1d,
    tdnn_nonlinear: BatchNormRelu,
    blocks: Vec<DenseBlock>,
    out_nonlinear: BatchNormRelu,
    dense: Conv1d,
    dense_norm: BatchNorm,
}

impl XVector {
    fn new(cfg: &CampplusConfig, in_channels: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        if cfg.tdnn_kernel.is_multiple_of(2) {
            candle_core::bail!("campplus: TDNN kernel must be odd, got {}", cfg.tdnn_kernel);
        }
        if cfg.block_layers.len() != cfg.block_kernel_sizes.len()
            || cfg.block_layers.len() != cfg.block_dilations.len()
        {
            candle_core::bail!(
                "campplus: block_layers, block_kernel_sizes and block_dilations differ in length"
            );
        }
        let tdnn = candle_nn::conv1d_no_bias(
            in_channels,
            cfg.init_channels,
            cfg.tdnn_kernel,
            conv1d_config((cfg.tdnn_kernel - 1) / 2, cfg.tdnn_stride, 1),
            vb.pp("tdnn.linear"),
        )?;
        let tdnn_nonlinear = BatchNormRelu::new(cfg.init_channels, vb.pp("tdnn.nonlinear"))?;
        let mut channels = cfg.init_channels;
        let mut blocks = Vec::with_capacity(cfg.block_layers.len());
        for (i, ((&layers, &kernel), &dilation)) in cfg
            .block_layers
            .iter()
            .zip(&cfg.block_kernel_sizes)
            .zip(&cfg.block_dilations)
            .enumerate()
        {
            let block_vb = vb.pp(format!("block{}", i + 1));
            let layers = (0..layers)
                .map(|l| {
                    CamDenseTdnnLayer::new(
                        cfg,
                        channels + l * cfg.growth_rate,
                        kernel,
                        dilation,
                        block_vb.pp(format!("tdnnd{}", l + 1)),
                    )
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            channels += layers.len() * cfg.growth_rate;
            let transit = vb.pp(format!("transit{}", i + 1));
            blocks.push(DenseBlock {
                layers,
                transit_nonlinear: BatchNormRelu::new(channels, transit.pp("nonlinear"))?,
                transit_linear: Pointwise::new(
                    channels,
                    channels / 2,
                    false,
                    transit.pp("linear"),
                )?,
            });
            channels /= 2;
        }
        Ok(Self {
            tdnn,
            tdnn_nonlinear,
            blocks,
            out_nonlinear: BatchNormRelu::new(channels, vb.pp("out_nonlinear"))?,
            dense: candle_nn::conv1d_no_bias(
                channels * 2,
                cfg.embedding_size,
                1,
                Default::default(),
                vb.pp("dense.linear"),
            )?,
            dense_norm: BatchNorm::new(
                cfg.embedding_size,
                false,
                vb.pp("dense.nonlinear.batchnorm"),
            )?,
        })
    }

    /// Frame-level features `(B, C, T')` before stats pooling.
    pub(crate) fn frames(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = self.tdnn_nonlinear.forward(&self.tdnn.forward(x)?)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        self.out_nonlinear.forward(&x)
    }

    /// Mean and unbiased standard deviation over time, then the dense layer: `(B, E)`.
    pub(crate) fn embed(&self, frames: &Tensor) -> candle_core::Result<Tensor> {
        let t = frames.dim(2)?;
        if t < 2 {
            candle_core::bail!("campplus: need at least 2 frames for stats pooling, got {t}");
        }
        let mean = frames.mean_keepdim(2)?;
        let var = (frames.broadcast_sub(&mean)?.sqr()?.sum_keepdim(2)? / (t - 1) as f64)?;
        let stats = Tensor::cat(&[mean, var.sqrt()?], 1)?;
        let out = self.dense_norm.forward(&self.dense.forward(&stats)?)?;
        out.squeeze(2)
    }
}

/// CAMPPlus speaker encoder: 16 kHz wave to a `embedding_size` x-vector.
pub struct Campplus {
    pub(crate) fbank: Fbank,
    pub(crate) head: Fcm,
    pub(crate) xvector: XVector,
    dtype: DType,
    device: Device,
}

impl Campplus {
    /// `vb` points at the encoder's weights (`speaker_encoder` in `s3gen_meanflow.safetensors`).
    pub fn new(cfg: &CampplusConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        if cfg.fbank.num_mel_bins != cfg.feat_dim {
            candle_core::bail!(
                "campplus: fbank has {} mel bins but feat_dim is {}",
                cfg.fbank.num_mel_bins,
                cfg.feat_dim
            );
        }
        let fcm_channels = cfg.fcm_m_channels * (cfg.feat_dim / FCM_FREQ_REDUCTION);
        Ok(Self {
            fbank: Fbank::new(&cfg.fbank, SAMPLE_RATE)?,
            head: Fcm::new(cfg, vb.pp("head"))?,
            xvector: XVector::new(cfg, fcm_channels, vb.pp("xvector"))?,
            dtype: vb.dtype(),
            device: vb.device().clone(),
        })
    }

    /// Network input: log mel fbank minus its mean over time, `(1, T, feat_dim)`.
    pub fn features(&self, wav_16k: &[f32]) -> candle_core::Result<Tensor> {
        let fbank = self.fbank.compute(wav_16k)?;
        fbank
            .broadcast_sub(&fbank.mean_keepdim(0)?)?
            .unsqueeze(0)?
            .to_device(&self.device)?
            .to_dtype(self.dtype)
    }

    /// x-vectors `(B, embedding_size)` of mean-normalized features `(B, T, feat_dim)`.
    pub fn forward(&self, features: &Tensor) -> candle_core::Result<Tensor> {
        let fcm = self.head.forward(&features.transpose(1, 2)?)?;
        self.xvector.embed(&self.xvector.frames(&fcm)?)
    }

    /// The x-vector `(embedding_size,)` of a 16 kHz mono wave in [-1, 1].
    pub fn embed(&self, wav_16k: &[f32]) -> candle_core::Result<Tensor> {
        self.forward(&self.features(wav_16k)?)?.i(0)
    }
}
