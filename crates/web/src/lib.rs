//! The HTTP server: REST API, compatibility APIs and web pages, over one shared
//! [`AppState`].

pub mod error;
pub mod auth;
mod health;
pub mod objects;
mod server;
pub mod voices;

pub use error::ApiError;
pub use server::{AppState, RunningServer, router, serve};
