//! The HTTP server: REST API, compatibility APIs and web pages, over one shared
//! [`AppState`].

pub mod auth;
pub mod error;
mod health;
pub mod objects;
mod pages;
mod server;

pub use error::ApiError;
pub use server::{AppState, RunningServer, SHUTDOWN_GRACE, router, serve};
