//! Organizations: the tenants that own custom voices and generations.

use serde::Serialize;

use crate::text::allowed_in_name;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "organization name must be 1-100 characters, without control, zero-width or text-direction characters"
)]
pub struct OrganizationNameError;

/// An organization's display name: 1-100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub fn parse(s: &str) -> Result<Self, OrganizationNameError> {
        let s = s.trim();
        let n = s.chars().count();
        if n == 0 || n > 100 || !s.chars().all(allowed_in_name) {
            return Err(OrganizationNameError);
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
    fn name_bounds() {
        assert!(OrganizationName::parse(" ").is_err());
        assert!(OrganizationName::parse("a\tb").is_err());
        assert!(OrganizationName::parse("Acme\u{202E}gnp.exe").is_err());
        assert!(OrganizationName::parse("Ac\u{200B}me").is_err());
        assert!(OrganizationName::parse(&"x".repeat(101)).is_err());
        assert_eq!(OrganizationName::parse(" Acme ").unwrap().as_str(), "Acme");
    }
}
