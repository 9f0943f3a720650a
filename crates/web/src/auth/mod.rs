//! Who is asking: accounts, sessions, organizations, roles and API keys.
//!
//! Every org-scoped route takes a [`Caller`] (the organization it acts in and its role
//! there); routes for a signed-in person outside any organization take a [`SignedIn`];
//! routes under `/api/orgs/{orgId}` take a [`Principal`] and call [`Principal::in_org`].
//! An API key acts for its own organization with the admin role, except that keys cannot
//! manage keys, members or invites: those need a signed-in admin ([`Caller::require_user`]).

mod accounts;
pub mod client_ip;
pub mod csrf;
mod extract;
pub mod hashing;
mod password;
pub mod rate_limit;
pub mod reset_links;
pub mod secrets;

use std::time::Duration;

use utoipa_axum::router::OpenApiRouter;

pub use client_ip::{ClientIp, IpNetwork};
pub(crate) use extract::presented_api_key;
pub use extract::{Caller, Principal, SESSION_COOKIE, SignedIn};
pub use resonance_domain::Role;

use crate::AppState;
use hashing::PasswordHashing;
use rate_limit::Backoff;

/// How authentication behaves; the defaults suit a server on plain HTTP.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Marks the session cookie `Secure`: set when users reach the server over HTTPS.
    pub secure_cookies: bool,
    /// The base URL users reach the server at, for invite links; relative links without it.
    pub public_url: Option<String>,
    /// How long a session lasts after signing in.
    pub session_ttl: Duration,
    /// How long an invite link stays valid.
    pub invite_ttl: Duration,
    /// Sign-in attempts on one account from one client IP before each further attempt
    /// waits, twice as long each time; a successful sign-in starts again. Other addresses
    /// (the owner's) are not slowed.
    pub attempts_per_account: u32,
    /// Sign-in and sign-up attempts from one client IP before each further attempt waits,
    /// twice as long each time.
    pub attempts_per_ip: u32,
    /// How long the waits grow to, and how long without attempts forgets them.
    pub attempt_window: Duration,
    /// Argon2 hashes and checks (19 MiB each) running at once.
    pub max_concurrent_password_hashing: usize,
    /// How long a sign-in or sign-up waits for a hashing slot before 429.
    pub password_hashing_wait: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client; none by default, since
    /// any client can send the header.
    pub trusted_proxies: Vec<IpNetwork>,
    /// The host names (with the port when not the scheme's default), lowercase, that
    /// cookie-authenticated writes may come to; any when empty.
    pub allowed_hosts: Vec<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            public_url: None,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            attempts_per_account: 10,
            attempts_per_ip: 100,
            attempt_window: Duration::from_secs(15 * 60),
            max_concurrent_password_hashing: std::thread::available_parallelism()
                .map_or(1, |cores| cores.get().min(4)),
            password_hashing_wait: Duration::from_secs(2),
            trusted_proxies: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

/// Authentication settings, the sign-in throttles and the password hashing bound, shared
/// by all requests.
pub struct Auth {
    pub settings: AuthSettings,
    /// Keyed by account and client IP.
    per_account: Backoff,
    per_ip: Backoff,
    pub password_hashing: PasswordHashing,
}

impl Auth {
    pub fn new(settings: AuthSettings) -> Self {
        Self {
            per_account: Backoff::new(settings.attempts_per_account, settings.attempt_window),
            per_ip: Backoff::new(settings.attempts_per_ip, settings.attempt_window),
            password_hashing: PasswordHashing::new(
                settings.max_concurrent_password_hashing,
                settings.password_hashing_wait,
            ),
            settings,
        }
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    accounts::routes().merge(password::routes())
}
