//! Decoding several generations together: sequences join a running batch once their
//! prefill is done and leave it when they finish, and every step samples each one's
//! next token with its own settings and sampler after one [`T3::decode_step`] for all.
//! Decoding is bound by reading the weights, so a step for N sequences costs little
//! more than a step for one. Each sequence gets the tokens it would get alone.

use candle_core::Result;

use super::{SampleStep, T3, T3Sequence, TokenSampler};

struct Running<K> {
    key: K,
    sequence: T3Sequence,
    sampler: Box<dyn TokenSampler + Send>,
}

/// The sequences decoding together, each known by a key `K` of the caller's.
pub struct T3Batch<K> {
    running: Vec<Running<K>>,
}

impl<K> Default for T3Batch<K> {
    fn default() -> Self {
        Self {
            running: Vec::new(),
        }
    }
}

impl<K> T3Batch<K> {
    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Adds a sequence fresh from [`T3::prefill`] (or left by a step): the next
    /// step samples its next token.
    pub fn join(&mut self, key: K, sequence: T3Sequence, sampler: Box<dyn TokenSampler + Send>) {
        self.running.push(Running {
            key,
            sequence,
            sampler,
        });
    }

    /// Keeps only the sequences whose key passes `keep`; the others leave the batch.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.running.retain(|running| keep(&running.key));
    }

    /// [`T3Batch::step_observed`] without observing.
    pub fn step(&mut self, t3: &T3) -> Vec<(K, Result<Vec<u32>>)> {
        self.step_observed(t3, &mut |_, _| {})
    }

    /// Samples every sequence's next token, then runs one decode step for those
    /// that go on. Returns the sequences that finished, with their speech tokens
    /// (or why they failed); they have left the batch. A failed decode step fails
    /// every sequence in it.
    pub fn step_observed(
        &mut self,
        t3: &T3,
        observe: &mut dyn FnMut(&K, SampleStep),
    ) -> Vec<(K, Result<Vec<u32>>)> {
        let mut done = Vec::new();
        let mut going_on = Vec::with_capacity(self.running.len());
        for mut running in self.running.drain(..) {
            let key = &running.key;
            let sampled = t3.sample_next(
                &mut running.sequence,
                running.sampler.as_mut(),
                &mut |step| observe(key, step),
            );
            match sampled {
                Err(e) => done.push((running.key, Err(e))),
                Ok(()) if running.sequence.is_finished() => {
                    done.push((running.key, Ok(running.sequence.into_speech_tokens())));
                }
                Ok(()) => going_on.push(running),
            }
        }
        let mut sequences: Vec<&mut T3Sequence> =
            going_on.iter_mut().map(|r| &mut r.sequence).collect();
        match t3.decode_step(&mut sequences) {
            Ok(()) => self.running = going_on,
            Err(e) => {
                let reason = e.to_string();
                done.extend(going_on.into_iter().map(|r| {
                    let error = candle_core::Error::Msg(format!("T3 decode step failed: {reason}"));
                    (r.key, Err(error))
                }));
            }
        }
        done
    }
}
