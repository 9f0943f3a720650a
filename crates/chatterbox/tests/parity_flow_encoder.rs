//! Parity of the S3Gen flow encoder with the Python reference fixture.

use candle_core::{Device, Tensor};
use chatterbox::parity::fixtures::{Fixture, fixture_dir};
use chatterbox::s3gen::flow_encoder::{FlowEncoder, FlowPrompt};

#[test]
fn flow_encoder_matches_reference() {
    chatterbox::parity::assert_module_passes("flow_encoder");
}

fn tiny_flow() -> anyhow::Result<(Fixture, FlowEncoder, FlowPrompt)> {
    let fixture = Fixture::load(&fixture_dir(), "flow_encoder")?;
    let cfg = fixture.config()?;
    let flow = FlowEncoder::new(&cfg.flow, fixture.weights()?.pp("flow"))?;
    let prompt = FlowPrompt {
        tokens: fixture.tensor("prompt_token")?,
        mel: fixture.tensor("prompt_feat")?,
        embedding: fixture.tensor("embedding")?,
    };
    Ok((fixture, flow, prompt))
}

/// Each row of a padded batch gives what it gives alone (same padding, batch of
/// one), padded frames are masked out, and the padding token ids do not matter
/// (their embeddings are zeroed, as in the reference).
#[test]
fn padded_batch_rows_are_independent() -> anyhow::Result<()> {
    let (fixture, flow, prompt) = tiny_flow()?;
    let tokens = fixture.tensor("token")?;
    let full_len = tokens.dim(1)?;
    let short_len = full_len - 5;
    let padded_short = |id: i64| -> anyhow::Result<Tensor> {
        let padding = Tensor::full(id, (1, full_len - short_len), &Device::Cpu)?;
        Ok(Tensor::cat(
            &[&tokens.narrow(1, 0, short_len)?, &padding],
            1,
        )?)
    };
    let lens = [full_len, short_len];
    let batch = flow.forward(
        &Tensor::cat(&[&tokens, &padded_short(0)?], 0)?,
        &lens,
        &prompt,
    )?;
    let other_padding = flow.forward(
        &Tensor::cat(&[&tokens, &padded_short(4299)?], 0)?,
        &lens,
        &prompt,
    )?;
    assert_eq!(max_abs_diff(&batch.mu, &other_padding.mu)?, 0.0);

    for (row, (row_tokens, len)) in [(tokens.clone(), full_len), (padded_short(0)?, short_len)]
        .into_iter()
        .enumerate()
    {
        let alone = flow.forward(&row_tokens, &[len], &prompt)?;
        assert!(
            max_abs_diff(&batch.mu.narrow(0, row, 1)?, &alone.mu)? < 1e-5,
            "row {row}"
        );
        assert!(
            max_abs_diff(&batch.mask.narrow(0, row, 1)?, &alone.mask)? == 0.0,
            "row {row}"
        );
    }

    let real_frames = 2 * (prompt.tokens.dim(1)? + short_len);
    let mask = batch
        .mask
        .narrow(0, 1, 1)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert_eq!(mask.len(), batch.mu.dim(2)?);
    assert!(mask[..real_frames].iter().all(|&m| m == 1.0));
    assert!(mask[real_frames..].iter().all(|&m| m == 0.0));
    assert_eq!(batch.spks.dims(), &[2, 80]);
    assert_eq!(batch.cond.dims(), batch.mu.dims());
    assert_eq!(batch.prompt_frames, prompt.mel.dim(1)?);
    Ok(())
}

#[test]
fn rejects_out_of_range_tokens_and_bad_lengths() -> anyhow::Result<()> {
    let (fixture, flow, prompt) = tiny_flow()?;
    let tokens = fixture.tensor("token")?;
    let n = tokens.dim(1)?;
    let too_big = Tensor::new(&[[6561i64]], &Device::Cpu)?;
    let err = flow
        .forward(&too_big, &[1], &prompt)
        .unwrap_err()
        .to_string();
    assert!(err.contains("out of range"), "{err}");
    let err = flow
        .forward(&tokens, &[n + 1], &prompt)
        .unwrap_err()
        .to_string();
    assert!(err.contains("token_lens"), "{err}");
    Ok(())
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> anyhow::Result<f64> {
    Ok(chatterbox::parity::fixtures::max_abs_diff(a, b)?)
}
