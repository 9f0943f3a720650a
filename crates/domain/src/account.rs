//! Accounts: email addresses, passwords, roles in an organization, API key names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::text::allowed_in_name;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("enter a valid email address (at most 254 characters)")]
pub struct EmailError;

/// An email address, trimmed and lowercased so that one mailbox is one account however it
/// is capitalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, EmailError> {
        let s = s.trim().to_lowercase();
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(EmailError);
        };
        let valid = s.len() <= 254
            && !local.is_empty()
            && !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid { Ok(Self(s)) } else { Err(EmailError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "password must be {} to {} characters",
        Password::MIN_CHARS,
        Password::MAX_CHARS
    )]
    Length,
    #[error(
        "this password is one of the most common ones, which attackers try first; choose another"
    )]
    Common,
}

/// A password as typed at sign-up; never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    /// Bounds the hashing work one request can ask for.
    pub const MAX_CHARS: usize = 256;

    /// A password of 8 to 256 characters that is not on the bundled list of common ones.
    pub fn parse(s: &str) -> Result<Self, PasswordError> {
        let n = s.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&n) {
            return Err(PasswordError::Length);
        }
        if is_common_password(s) {
            return Err(PasswordError::Common);
        }
        Ok(Self(s.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The passwords of 8 characters or more from Django's list of 20,000 common passwords
/// (`django/contrib/auth/common-passwords.txt.gz`, BSD-3-Clause, compiled by Royce
/// Williams from leaked password sets), lowercased and sorted.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Whether `password`, ignoring case, is on the bundled list of common passwords.
fn is_common_password(password: &str) -> bool {
    static COMMON: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    COMMON
        .get_or_init(|| COMMON_PASSWORDS.lines().collect())
        .contains(password.to_lowercase().as_str())
}

/// What a member may do in an organization. Admins manage custom voices, API keys and
/// members; members use the organization's voices and generate speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; expected admin or member")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "API key name must be 1-100 characters, without control, zero-width or text-direction characters"
)]
pub struct ApiKeyNameError;

/// The name an admin gives an API key to tell it apart: 1-100 characters after trimming,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    pub fn parse(s: &str) -> Result<Self, ApiKeyNameError> {
        let s = s.trim();
        let n = s.chars().count();
        if n == 0 || n > 100 || !s.chars().all(allowed_in_name) {
            return Err(ApiKeyNameError);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_fold_case_and_need_a_domain() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in ["", "ada", "@example.com", "ada@", "ada@.com", "a da@x.io"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@x.io", "a".repeat(250))).is_err());
    }

    #[test]
    fn passwords_have_bounds_and_are_never_printed() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(257)).is_err());
        let password = Password::parse("long enough secret").unwrap();
        assert_eq!(password.expose(), "long enough secret");
        assert!(!format!("{password:?}").contains("secret"));
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for common in [
            "password1",
            "Password1",
            "QWERTYUIOP",
            "iloveyou",
            "123456789",
        ] {
            assert_eq!(
                Password::parse(common).unwrap_err(),
                PasswordError::Common,
                "{common}"
            );
        }
        assert_eq!(Password::parse("short").unwrap_err(), PasswordError::Length);
        assert!(Password::parse("correct horse battery staple").is_ok());
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Admin, Role::Member] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("owner".parse::<Role>().is_err());
    }

    #[test]
    fn key_names_are_trimmed_and_bounded() {
        assert_eq!(ApiKeyName::parse(" ci ").unwrap().as_str(), "ci");
        assert!(ApiKeyName::parse("").is_err());
        assert!(ApiKeyName::parse(&"k".repeat(101)).is_err());
    }
}
