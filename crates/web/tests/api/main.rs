//! The HTTP API, the pages and the drop-in APIs against the real server: one test binary,
//! one module per area, sharing the harness in `tests/support/`.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod accounts;
mod billing;
mod compat;
mod disconnect;
mod generation_stream;
mod generation_worker;
mod generations;
mod hardening;
mod hostile_uploads;
mod lifecycle;
mod models;
mod openapi;
mod pages;
mod sdk;
mod stream_input;
mod tenant_isolation;
mod voices;
