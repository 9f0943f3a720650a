//! The HTTP server: REST API, compatibility APIs and web pages, over one shared
//! [`AppState`].

pub mod error;
mod health;
mod server;

pub use error::ApiError;
pub use server::{AppState, RunningServer, router, serve};
