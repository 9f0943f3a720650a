//! The HTTP server: REST API, compatibility APIs and web pages, over one shared
//! [`AppState`].

mod api_keys;
pub mod auth;
pub mod billing;
pub mod compat;
pub mod error;
pub mod generations;
mod health;
mod json;
mod members;
pub mod metrics;
pub mod model_status;
pub mod objects;
mod openapi;
mod orgs;
mod pages;
mod paging;
mod server;
pub mod voices;

pub use error::ApiError;
pub use json::ApiJson;
pub use server::{
    AppState, ConnectionSettings, RunningServer, SHUTDOWN_GRACE, api_document, router, serve,
    serve_with,
};
