//! The thread that decodes T3 for every request in flight: each request runs its prefill
//! on its own synthesis thread, then its sequence joins the batch this thread steps
//! ([`T3Batch`]), and the request gets its speech tokens back when the sequence
//! finishes. Concurrent generations so share every decode step, which reads T3's
//! weights once for all of them.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use chatterbox::t3::{SeededSampler, T3Batch, T3Conditionals, T3Sequence};
use chatterbox::tts::{ChatterboxTurbo, SynthesisOptions};

type Reply = Sender<candle_core::Result<Vec<u32>>>;

struct Join {
    sequence: T3Sequence,
    sampler: SeededSampler,
    reply: Reply,
}

/// Hands sequences to the decoding thread; the thread ends when this is dropped.
pub struct T3Scheduler {
    joins: Sender<Join>,
}

impl T3Scheduler {
    pub fn start(model: Arc<ChatterboxTurbo>) -> Self {
        let (joins, queue) = channel();
        std::thread::Builder::new()
            .name("t3-decode".into())
            .spawn(move || decode(&model, &queue))
            .expect("spawning the T3 decoding thread");
        Self { joins }
    }

    /// T3's speech tokens for `text_tokens`, as [`ChatterboxTurbo::synthesize`] makes
    /// them (the same seed, the same tokens), decoded together with the other requests'.
    /// Blocks until they are decoded: call it on a synthesis thread.
    pub fn speech_tokens(
        &self,
        model: &ChatterboxTurbo,
        text_tokens: &[u32],
        voice: &T3Conditionals,
        options: &SynthesisOptions,
    ) -> candle_core::Result<Vec<u32>> {
        let sequence = model.t3().prefill(text_tokens, voice, &options.sampling)?;
        let (reply, answer) = channel();
        let join = Join {
            sequence,
            sampler: SeededSampler::new(options.seed),
            reply,
        };
        let gone = || candle_core::Error::Msg("the T3 decoding thread has stopped".into());
        self.joins.send(join).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

/// Steps the batch while it has sequences; waits for one when it is empty.
fn decode(model: &ChatterboxTurbo, queue: &Receiver<Join>) {
    let mut batch: T3Batch<Reply> = T3Batch::default();
    loop {
        if batch.is_empty() {
            let Ok(join) = queue.recv() else { return };
            batch.join(join.reply, join.sequence, Box::new(join.sampler));
        }
        for join in queue.try_iter() {
            batch.join(join.reply, join.sequence, Box::new(join.sampler));
        }
        for (reply, tokens) in batch.step(model.t3()) {
            // A request that gave up no longer listens.
            let _ = reply.send(tokens);
        }
    }
}
