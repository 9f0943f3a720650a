//! The HTTP server: REST API, compatibility APIs and web pages, over one shared
//! [`AppState`].

mod api_keys;
pub mod auth;
pub mod billing;
pub mod compat;
pub mod error;
mod generation_stream;
pub mod generations;
mod health;
mod json;
mod members;
pub mod metrics;
pub mod objects;
mod openapi;
mod orgs;
mod pages;
mod paging;
mod routes;
mod server;
mod state;
pub mod voices;

pub use error::ApiError;
pub use json::ApiJson;
pub use routes::{api_document, router};
pub use server::{ConnectionSettings, RunningServer, SHUTDOWN_GRACE, serve, serve_with};
pub use state::AppState;
