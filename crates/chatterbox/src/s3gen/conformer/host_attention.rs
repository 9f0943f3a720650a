//! [`super::RelPositionAttention`]'s scores, softmax and weighted values on the CPU, a
//! block of query rows at a time: the block's content and position scores stay in
//! cache, the position scores are computed only for the relative positions the block
//! uses (ESPnet's `rel_shift` becomes an offset per row), and the context is written
//! straight into its `(frames, heads * head_dim)` rows. Step by step with candle's ops,
//! the flow encoder spent a third of its time copying, shifting and summing
//! `(heads, frames, 2 * frames)` score tensors.

use rayon::prelude::*;

use crate::kernels;
use crate::s3gen::accumulate::{Strided, StridedRows, strided_accumulate};

/// Query rows per parallel task.
const TASK_ROWS: usize = 32;

/// One batch row's attention inputs, `width = heads * head_dim`.
pub struct RelAttentionInputs<'a> {
    /// `(frames, width)`: the projected queries, before the position biases.
    pub q: &'a [f32],
    /// `(heads, keys, head_dim)`.
    pub k: &'a [f32],
    /// `(heads, keys, head_dim)`.
    pub v: &'a [f32],
    /// `(keys + frames - 1, width)`: the projected position table, row `c` for relative
    /// position `keys - 1 - c`.
    pub p: &'a [f32],
    /// `(heads, head_dim)`: added to the queries for the content scores...
    pub pos_bias_u: &'a [f32],
    /// ...and for the position scores.
    pub pos_bias_v: &'a [f32],
    /// `(keys)`: 0 for padding, which gets no weight.
    pub key_mask: Option<&'a [u8]>,
    pub heads: usize,
    pub head_dim: usize,
}

/// Per-task scratch space.
#[derive(Default)]
struct Scratch {
    q_u: Vec<f32>,
    q_v: Vec<f32>,
    scores: Vec<f32>,
    positions: Vec<f32>,
    weights: Vec<f32>,
}

/// `softmax((q + u) k^T + rel_shift((q + v) p^T)) / sqrt(head_dim)) v` of every head, as
/// ESPnet's `RelPositionMultiHeadedAttention`, into `out (frames, width)`.
///
/// # Panics
///
/// If the slices do not fit the shapes documented on [`RelAttentionInputs`].
pub fn attend(inputs: &RelAttentionInputs, out: &mut [f32]) {
    let (heads, head_dim) = (inputs.heads, inputs.head_dim);
    let width = heads * head_dim;
    let frames = inputs.q.len() / width.max(1);
    let keys = inputs.k.len() / width.max(1);
    assert!(
        width > 0
            && inputs.q.len() == frames * width
            && inputs.k.len() == keys * width
            && inputs.v.len() == keys * width
            && inputs.p.len() == (keys + frames).saturating_sub(1) * width
            && inputs.pos_bias_u.len() == width
            && inputs.pos_bias_v.len() == width
            && inputs.key_mask.is_none_or(|mask| mask.len() == keys)
            && out.len() == frames * width,
        "relative-position attention: inputs do not fit {heads} heads of {head_dim}"
    );
    out.par_chunks_mut(TASK_ROWS * width)
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (task, out)| {
            kernels::vectorized(
                #[inline(always)]
                || attend_rows(inputs, task * TASK_ROWS, out, scratch),
            )
        });
}

/// Query rows `first..` (as many as `out` holds) of every head.
#[inline(always)]
fn attend_rows(inputs: &RelAttentionInputs, first: usize, out: &mut [f32], scratch: &mut Scratch) {
    let (heads, head_dim) = (inputs.heads, inputs.head_dim);
    let width = heads * head_dim;
    let frames = inputs.q.len() / width;
    let keys = inputs.k.len() / width;
    let rows = out.len() / width;
    // Query `i` and key `j` take position row `frames - 1 - i + j`; these rows take
    // position rows `window_start..` for `window` rows, row `r` from offset `rows - 1 - r`.
    let window_start = frames - first - rows;
    let window = keys + rows - 1;
    let scale = (1.0 / (head_dim as f64).sqrt()) as f32;
    let Scratch {
        q_u,
        q_v,
        scores,
        positions,
        weights,
    } = scratch;
    for head in 0..heads {
        let columns = head * head_dim..(head + 1) * head_dim;
        q_u.clear();
        q_v.clear();
        for i in first..first + rows {
            let q = &inputs.q[i * width..][columns.clone()];
            q_u.extend(
                q.iter()
                    .zip(&inputs.pos_bias_u[columns.clone()])
                    .map(|(q, u)| q + u),
            );
            q_v.extend(
                q.iter()
                    .zip(&inputs.pos_bias_v[columns.clone()])
                    .map(|(q, v)| q + v),
            );
        }
        let head_keys = &inputs.k[head * keys * head_dim..][..keys * head_dim];
        let head_values = &inputs.v[head * keys * head_dim..][..keys * head_dim];
        scores.clear();
        scores.resize(rows * keys, 0.0);
        strided_accumulate(
            StridedRows::new(scores, keys),
            Strided::rows(q_u, head_dim),
            Strided::columns(head_keys, head_dim),
            (rows, head_dim, keys),
            gemm::Parallelism::None,
        );
        positions.clear();
        positions.resize(rows * window, 0.0);
        strided_accumulate(
            StridedRows::new(positions, window),
            Strided::rows(q_v, head_dim),
            Strided::columns(&inputs.p[window_start * width + columns.start..], width),
            (rows, head_dim, window),
            gemm::Parallelism::None,
        );
        weights.resize(rows * keys, 0.0);
        for (r, (row, weights)) in scores
            .chunks_exact_mut(keys)
            .zip(weights.chunks_exact_mut(keys))
            .enumerate()
        {
            let shifted = &positions[r * window + rows - 1 - r..][..keys];
            for (score, position) in row.iter_mut().zip(shifted) {
                *score = (*score + position) * scale;
            }
            if let Some(mask) = inputs.key_mask {
                for (score, &keep) in row.iter_mut().zip(mask) {
                    if keep == 0 {
                        *score = f32::NEG_INFINITY;
                    }
                }
            }
            kernels::softmax_row(row, weights);
        }
        strided_accumulate(
            StridedRows::new(&mut out[columns.start..], width),
            Strided::rows(weights, keys),
            Strided::rows(head_values, head_dim),
            (rows, keys, head_dim),
            gemm::Parallelism::None,
        );
    }
}
