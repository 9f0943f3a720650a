//! The voice prompt's frames as seen by the frames after them, kept so that a stream's
//! windows do not compute the prompt again (chunk-causal streaming, as CosyVoice 2's
//! flow streams: <https://arxiv.org/abs/2412.10117>, section 2.4).
//!
//! The flow encoder and the CFM decoder are causal but for their attention, which sees
//! the whole sequence. A prompt pass that attends only to the prompt makes the prompt's
//! state independent of the speech after it: each causal convolution's last inputs and
//! each attention's keys and values ([`PromptState`]). A window then runs on its own
//! frames with that state before them ([`Preceding::prompt`]), instead of on the
//! prompt and its frames together.

use candle_core::{D, Result, Tensor};

/// Each causal layer's state after the prompt's frames, in the order the layers run.
#[derive(Debug, Clone, Default)]
pub struct PromptState {
    /// `(batch, channels, kernel - 1)`: the last inputs of each causal convolution.
    conv_inputs: Vec<Tensor>,
    /// `(batch, heads, frames, head_dim)` keys and values of each attention.
    keys_values: Vec<(Tensor, Tensor)>,
}

enum Frames<'a> {
    /// The sequence starts with these frames (zero padding before them).
    None,
    /// As `None`, keeping what later frames need.
    Record(&'a mut PromptState),
    /// The recorded prompt comes before these frames.
    Prompt(&'a PromptState),
}

/// What comes before the frames of one forward pass, handed from layer to layer.
pub struct Preceding<'a> {
    frames: Frames<'a>,
    convs_seen: usize,
    attentions_seen: usize,
}

impl<'a> Preceding<'a> {
    /// Nothing: the reference's forward pass.
    pub fn none() -> Self {
        Self::with(Frames::None)
    }

    /// Nothing, recording the state the frames leave into `state` (emptied first).
    pub fn record(state: &'a mut PromptState) -> Self {
        *state = PromptState::default();
        Self::with(Frames::Record(state))
    }

    /// The frames recorded in `state`.
    pub fn prompt(state: &'a PromptState) -> Self {
        Self::with(Frames::Prompt(state))
    }

    fn with(frames: Frames<'a>) -> Self {
        Self {
            frames,
            convs_seen: 0,
            attentions_seen: 0,
        }
    }

    /// The input of a causal convolution looking `reach` frames back: `x`
    /// `(batch, channels, frames)` after `reach` zeros, or after the prompt's last inputs.
    pub fn conv_input(&mut self, x: &Tensor, reach: usize) -> Result<Tensor> {
        let index = self.convs_seen;
        self.convs_seen += 1;
        match &mut self.frames {
            Frames::None => x.pad_with_zeros(D::Minus1, reach, 0),
            Frames::Record(state) => {
                let padded = x.pad_with_zeros(D::Minus1, reach, 0)?;
                let len = padded.dim(D::Minus1)?;
                state
                    .conv_inputs
                    .push(padded.narrow(D::Minus1, len - reach, reach)?.contiguous()?);
                Ok(padded)
            }
            Frames::Prompt(state) => {
                let before = state.conv_inputs.get(index).ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "prompt state has {} convolution inputs, layer {index} asked",
                        state.conv_inputs.len()
                    ))
                })?;
                if before.dim(D::Minus1)? != reach {
                    candle_core::bail!(
                        "prompt state of convolution {index} does not reach {reach}"
                    );
                }
                Tensor::cat(&[before, &x.to_dtype(before.dtype())?], D::Minus1)
            }
        }
    }

    /// Frames the next attention finds before its own (the prompt's, or none).
    pub fn frames_before_attention(&self) -> Result<usize> {
        match &self.frames {
            Frames::Prompt(state) => match state.keys_values.get(self.attentions_seen) {
                Some((keys, _)) => keys.dim(2),
                None => Ok(0),
            },
            _ => Ok(0),
        }
    }

    /// An attention's keys and values `(batch, heads, frames, head_dim)`, after the
    /// prompt's when there is one.
    pub fn keys_values(&mut self, keys: Tensor, values: Tensor) -> Result<(Tensor, Tensor)> {
        let index = self.attentions_seen;
        self.attentions_seen += 1;
        match &mut self.frames {
            Frames::None => Ok((keys, values)),
            Frames::Record(state) => {
                state.keys_values.push((keys.clone(), values.clone()));
                Ok((keys, values))
            }
            Frames::Prompt(state) => {
                let (k, v) = state.keys_values.get(index).ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "prompt state has {} attentions, layer {index} asked",
                        state.keys_values.len()
                    ))
                })?;
                Ok((Tensor::cat(&[k, &keys], 2)?, Tensor::cat(&[v, &values], 2)?))
            }
        }
    }
}
