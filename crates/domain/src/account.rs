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
#[error(
    "password must be {min} to {max} characters",
    min = Password::MIN_CHARS,
    max = Password::MAX_CHARS
)]
pub struct PasswordError;

/// A password as typed at sign-up; never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    /// Bounds the hashing work one request can ask for.
    pub const MAX_CHARS: usize = 256;

    pub fn parse(s: &str) -> Result<Self, PasswordError> {
        let n = s.chars().count();
        if (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&n) {
            Ok(Self(s.to_string()))
        } else {
            Err(PasswordError)
        }
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
