//! Sign-in throttles with backoff. Each key (a client address, or an account from one
//! address) has a free allowance of attempts; past it, each attempt makes the next one wait,
//! twice as long each time from one second up to the window. A key is forgotten once a
//! window passes without attempts, or at once when [`Backoff::forgive`] is called (a
//! successful sign-in).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FIRST_DELAY: Duration = Duration::from_secs(1);

pub struct Backoff {
    free_attempts: u32,
    window: Duration,
    keys: Mutex<HashMap<String, Attempts>>,
}

struct Attempts {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

impl Backoff {
    /// `free_attempts` attempts pass freely until `window` passes without one.
    pub fn new(free_attempts: u32, window: Duration) -> Self {
        Self {
            free_attempts: free_attempts.max(1),
            window,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `key`, or refuses it with how long to wait while the key is
    /// blocked (a refused attempt does not count).
    pub fn attempt(&self, key: &str) -> Result<(), Duration> {
        self.attempt_at(key, Instant::now())
    }

    /// Forgets `key`'s attempts.
    pub fn forgive(&self, key: &str) {
        self.keys.lock().expect("throttle lock").remove(key);
    }

    fn attempt_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut keys = self.keys.lock().expect("throttle lock");
        if keys.len() > 100_000 {
            keys.retain(|_, attempts| now.duration_since(attempts.last) < self.window);
        }
        let attempts = keys.entry(key.to_string()).or_insert(Attempts {
            count: 0,
            last: now,
            blocked_until: now,
        });
        if now < attempts.blocked_until {
            let wait = attempts.blocked_until - now;
            // Whole seconds, rounded up: what `Retry-After` can say.
            return Err(Duration::from_secs(
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            ));
        }
        if now.duration_since(attempts.last) >= self.window {
            attempts.count = 0;
        }
        attempts.count += 1;
        attempts.last = now;
        if let Some(past_free) = attempts.count.checked_sub(self.free_attempts) {
            let delay = FIRST_DELAY
                .saturating_mul(1 << past_free.min(20))
                .min(self.window);
            attempts.blocked_until = now + delay;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(900);

    #[test]
    fn past_the_free_attempts_each_wait_doubles() {
        let backoff = Backoff::new(3, WINDOW);
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        for _ in 0..3 {
            assert!(backoff.attempt_at("a", t0).is_ok());
        }
        assert_eq!(backoff.attempt_at("a", t0), Err(Duration::from_secs(1)));
        assert!(backoff.attempt_at("b", t0).is_ok(), "keys are independent");
        assert!(backoff.attempt_at("a", at(1)).is_ok());
        assert_eq!(backoff.attempt_at("a", at(2)), Err(Duration::from_secs(1)));
        assert!(backoff.attempt_at("a", at(3)).is_ok());
        assert_eq!(backoff.attempt_at("a", at(3)), Err(Duration::from_secs(4)));
        assert!(backoff.attempt_at("a", at(7)).is_ok());
        assert_eq!(backoff.attempt_at("a", at(7)), Err(Duration::from_secs(8)));
    }

    #[test]
    fn waits_stop_at_the_window_and_a_quiet_window_forgets() {
        let backoff = Backoff::new(1, WINDOW);
        let t0 = Instant::now();
        let mut now = t0;
        let mut longest = Duration::ZERO;
        for _ in 0..40 {
            while let Err(wait) = backoff.attempt_at("a", now) {
                longest = longest.max(wait);
                now += wait;
            }
        }
        assert_eq!(longest, WINDOW);

        assert!(backoff.attempt_at("b", t0).is_ok());
        assert_eq!(backoff.attempt_at("b", t0), Err(Duration::from_secs(1)));
        let quiet = t0 + WINDOW;
        assert!(backoff.attempt_at("b", quiet).is_ok());
        assert_eq!(
            backoff.attempt_at("b", quiet),
            Err(Duration::from_secs(1)),
            "counting starts again"
        );
    }

    #[test]
    fn forgiving_clears_the_key() {
        let backoff = Backoff::new(1, WINDOW);
        let t0 = Instant::now();
        assert!(backoff.attempt_at("a", t0).is_ok());
        assert!(backoff.attempt_at("a", t0).is_err());
        backoff.forgive("a");
        assert!(backoff.attempt_at("a", t0).is_ok());
    }
}
