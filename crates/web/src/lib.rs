//! The HTTP server: REST API, compatibility APIs and web pages, over one shared
//! [`AppState`].

pub mod auth;
pub mod error;
pub mod generations;
mod health;
pub mod objects;
mod server;

pub use error::ApiError;
pub use server::{AppState, RunningServer, router, serve};
