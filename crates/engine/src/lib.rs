//! Speech engines behind a request queue.
