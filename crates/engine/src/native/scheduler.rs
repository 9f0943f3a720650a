//! The thread that decodes T3 for every request in flight: each request runs its prefill
//! on its own synthesis thread, then its sequence joins the batch this thread steps
//! ([`T3Batch`]), and the request gets each speech token as soon as it is sampled.
//! Concurrent generations so share every decode step, which reads T3's weights once for
//! all of them. A request that stops listening leaves the batch at the next step.
//!
//! While a request vocodes its first audio, the batch waits ([`FirstAudioHolds`]): on a
//! small machine the window would otherwise share the cores with decoding, and T3 runs
//! ahead of the speech anyway.

use std::cell::Cell;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};

use chatterbox::t3::{SeededSampler, T3Batch, T3Conditionals, T3Sequence};
use chatterbox::tts::{ChatterboxTurbo, SynthesisOptions};

/// What the decoding thread tells a request.
enum Decoded {
    Token(u32),
    /// The sequence finished (its tokens were all sent) or failed.
    End(candle_core::Result<()>),
}

struct Listener {
    sender: Sender<Decoded>,
    /// Raised when a token could not be delivered: nobody listens any more.
    gone: Cell<bool>,
}

struct Join {
    sequence: T3Sequence,
    sampler: SeededSampler,
    sender: Sender<Decoded>,
}

/// How many requests are vocoding their first audio; the decoding thread steps only
/// when none is.
#[derive(Default)]
struct FirstAudioHolds {
    count: Mutex<usize>,
    none_left: Condvar,
}

impl FirstAudioHolds {
    fn hold(&self) -> FirstAudioHold<'_> {
        *self.count.lock().expect("first audio holds lock") += 1;
        FirstAudioHold(self)
    }

    fn wait_for_none(&self) {
        let count = self.count.lock().expect("first audio holds lock");
        drop(
            self.none_left
                .wait_while(count, |count| *count > 0)
                .expect("first audio holds lock"),
        );
    }
}

struct FirstAudioHold<'a>(&'a FirstAudioHolds);

impl Drop for FirstAudioHold<'_> {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().expect("first audio holds lock");
        *count -= 1;
        if *count == 0 {
            self.0.none_left.notify_all();
        }
    }
}

/// Hands sequences to the decoding thread; the thread ends when this is dropped.
pub struct T3Scheduler {
    joins: Sender<Join>,
    holds: Arc<FirstAudioHolds>,
}

impl T3Scheduler {
    pub fn start(model: Arc<ChatterboxTurbo>) -> Self {
        let (joins, queue) = channel();
        let holds = Arc::new(FirstAudioHolds::default());
        let decoder_holds = Arc::clone(&holds);
        std::thread::Builder::new()
            .name("t3-decode".into())
            .spawn(move || decode(&model, &queue, &decoder_holds))
            .expect("spawning the T3 decoding thread");
        Self { joins, holds }
    }

    /// Decodes T3's speech tokens for `text_tokens` together with the other requests',
    /// handing each to `on_token` as it is sampled (the stop token last): the tokens
    /// [`ChatterboxTurbo::synthesize`] makes with the same seed. An error from `on_token`
    /// stops the decoding. Until `spoken` says the request's first audio is out, the batch
    /// waits while `on_token` runs. Blocks until the end: call it on a synthesis thread.
    pub fn speech_tokens(
        &self,
        model: &ChatterboxTurbo,
        text_tokens: &[u32],
        voice: &T3Conditionals,
        options: &SynthesisOptions,
        spoken: &dyn Fn() -> bool,
        on_token: &mut dyn FnMut(u32) -> candle_core::Result<()>,
    ) -> candle_core::Result<()> {
        let sequence = model.t3().prefill(text_tokens, voice, &options.sampling)?;
        let (sender, decoded) = channel();
        let join = Join {
            sequence,
            sampler: SeededSampler::new(options.seed),
            sender,
        };
        let gone = || candle_core::Error::Msg("the T3 decoding thread has stopped".into());
        self.joins.send(join).map_err(|_| gone())?;
        loop {
            match decoded.recv().map_err(|_| gone())? {
                Decoded::Token(token) => {
                    let _hold = (!spoken()).then(|| self.holds.hold());
                    on_token(token)?
                }
                Decoded::End(result) => return result,
            }
        }
    }
}

/// Steps the batch while it has sequences; waits for one when it is empty.
fn decode(model: &ChatterboxTurbo, queue: &Receiver<Join>, holds: &FirstAudioHolds) {
    let mut batch: T3Batch<Listener> = T3Batch::default();
    let join = |batch: &mut T3Batch<Listener>, join: Join| {
        let listener = Listener {
            sender: join.sender,
            gone: Cell::new(false),
        };
        batch.join(listener, join.sequence, Box::new(join.sampler));
    };
    loop {
        if batch.is_empty() {
            let Ok(next) = queue.recv() else { return };
            join(&mut batch, next);
        }
        for next in queue.try_iter() {
            join(&mut batch, next);
        }
        holds.wait_for_none();
        let finished = batch.step_observed(model.t3(), &mut |listener, step| {
            if listener.sender.send(Decoded::Token(step.token)).is_err() {
                listener.gone.set(true);
            }
        });
        for (listener, result) in finished {
            let _ = listener.sender.send(Decoded::End(result.map(|_| ())));
        }
        batch.retain(|listener| !listener.gone.get());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn decoding_waits_while_a_first_audio_is_held() {
        let holds = Arc::new(FirstAudioHolds::default());
        let first = holds.hold();
        let second = holds.hold();
        let stepped = Arc::new(AtomicBool::new(false));
        let decoder = {
            let (holds, stepped) = (Arc::clone(&holds), Arc::clone(&stepped));
            std::thread::spawn(move || {
                holds.wait_for_none();
                stepped.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(first);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!stepped.load(Ordering::SeqCst), "stepped with a hold left");
        drop(second);
        decoder.join().unwrap();
        assert!(stepped.load(Ordering::SeqCst));
    }
}
