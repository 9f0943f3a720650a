//! Password hashing with bounded memory. Each Argon2 hash or check fills 19 MiB, so a burst
//! of sign-ins would otherwise take memory in proportion to the burst: at most
//! `max_concurrent` run at once, each in one of at most `max_concurrent` buffers allocated
//! once and reused (so the allocator never holds freed 19 MiB blocks it does not return),
//! and a request that cannot start within `max_wait` is refused with 429 and `Retry-After`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Block;
use tokio::sync::Semaphore;

use super::secrets::password_memory;
use crate::ApiError;

pub struct PasswordHashing {
    permits: Arc<Semaphore>,
    max_wait: Duration,
    counts: Arc<Counts>,
    /// Buffers not in use; there are never more than the permits.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

#[derive(Default)]
struct Counts {
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl PasswordHashing {
    pub fn new(max_concurrent: usize, max_wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            max_wait,
            counts: Arc::default(),
            memory: Arc::default(),
        }
    }

    /// Runs `work` (a hash or a check, in the memory it is given) on a blocking thread once a
    /// permit is free. The permit goes with the work, so a client that leaves does not free
    /// it early.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(self.max_wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| ApiError::TooManyRequests {
                retry_after: Duration::from_secs(1),
            })?
            .expect("the semaphore is never closed");
        let counts = Arc::clone(&self.counts);
        let pool = Arc::clone(&self.memory);
        tokio::task::spawn_blocking(move || {
            let running = counts.running.fetch_add(1, Ordering::SeqCst) + 1;
            counts.peak.fetch_max(running, Ordering::SeqCst);
            let mut memory = pool
                .lock()
                .expect("the memory pool is never poisoned")
                .pop()
                .unwrap_or_else(password_memory);
            let result = work(&mut memory);
            pool.lock()
                .expect("the memory pool is never poisoned")
                .push(memory);
            counts.running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            result
        })
        .await
        .map_err(ApiError::internal)
    }

    /// Hashes or checks running now.
    pub fn running(&self) -> usize {
        self.counts.running.load(Ordering::SeqCst)
    }

    /// The most that ever ran at once.
    pub fn peak(&self) -> usize {
        self.counts.peak.load(Ordering::SeqCst)
    }

    /// Working buffers allocated so far: never more than may run at once.
    pub fn buffers(&self) -> usize {
        self.memory
            .lock()
            .expect("the memory pool is never poisoned")
            .len()
            + self.running()
    }
}
