//! What the platform does, apart from how it is asked: generation jobs and their worker,
//! the stream events a worker publishes, the voice library, plans, quotas and usage with
//! the Polar outbox, the speech model's state, and email. The HTTP server (`resonance-web`) and
//! the command line (`resonance`) both call it; it knows nothing of HTTP.

pub mod billing;
pub mod generations;
pub mod mail;
pub mod model_status;
pub mod voices;
