//! Password hashing with bounded memory. Each Argon2 hash or check holds 19 MiB for its
//! duration, so a burst of sign-ins would otherwise take memory in proportion to the burst:
//! at most `max_concurrent` run at once, and a request that cannot start within `max_wait`
//! is refused with 429 and `Retry-After`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::ApiError;

pub struct PasswordHashing {
    permits: Arc<Semaphore>,
    max_wait: Duration,
    counts: Arc<Counts>,
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
        }
    }

    /// Runs `work` (a hash or a check) on a blocking thread once a permit is free. The
    /// permit goes with the work, so a client that leaves does not free it early.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(self.max_wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| ApiError::TooManyRequests {
                retry_after: Duration::from_secs(1),
            })?
            .expect("the semaphore is never closed");
        let counts = Arc::clone(&self.counts);
        tokio::task::spawn_blocking(move || {
            let running = counts.running.fetch_add(1, Ordering::SeqCst) + 1;
            counts.peak.fetch_max(running, Ordering::SeqCst);
            let result = work();
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
}
