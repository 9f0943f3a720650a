//! Speech generation: durable jobs and the workers that run them.

pub mod worker;
