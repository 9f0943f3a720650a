//! Loading checkpoints: memory-mapped safetensors under the official tensor names.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

/// Memory-maps safetensors files into a VarBuilder (no copy until a tensor is used).
pub fn load(
    files: &[PathBuf],
    dtype: DType,
    device: &Device,
) -> candle_core::Result<VarBuilder<'static>> {
    for file in files {
        if !file.exists() {
            candle_core::bail!("weights file not found: {}", file.display());
        }
    }
    // SAFETY: the files are mapped read-only and must not change while the model is loaded.
    unsafe { VarBuilder::from_mmaped_safetensors(files, dtype, device) }
}

/// A weight-normed parameter: the checkpoint stores `parametrizations.weight.original0`
/// (g, one gain per output channel) and `original1` (v); the weight is
/// `g * v / ||v||` with the norm over every dim except dim 0.
/// Falls back to a plain `weight` tensor when the checkpoint holds one.
pub fn weight_norm(vb: &VarBuilder, shape: &[usize]) -> candle_core::Result<Tensor> {
    if vb.contains_tensor("weight") {
        return vb.get(shape, "weight");
    }
    let p = vb.pp("parametrizations.weight");
    let mut g_shape = vec![1usize; shape.len()];
    g_shape[0] = shape[0];
    let g = p.get(g_shape.as_slice(), "original0")?;
    let v = p.get(shape, "original1")?;
    let dims: Vec<usize> = (1..shape.len()).collect();
    let norm = v.sqr()?.sum_keepdim(dims)?.sqrt()?;
    v.broadcast_mul(&g.broadcast_div(&norm)?)
}
