//! Who is asking: accounts, sessions, organizations, roles and API keys.

pub mod csrf;
pub mod rate_limit;
pub mod secrets;
