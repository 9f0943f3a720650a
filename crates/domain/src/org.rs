//! Organizations: the tenants that own custom voices and generations.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("organization name must be 1-100 characters")]
pub struct OrganizationNameError;

/// An organization's display name: 1-100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub fn parse(s: &str) -> Result<Self, OrganizationNameError> {
        let s = s.trim();
        let n = s.chars().count();
        if n == 0 || n > 100 || s.chars().any(char::is_control) {
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
        assert!(OrganizationName::parse(&"x".repeat(101)).is_err());
        assert_eq!(OrganizationName::parse(" Acme ").unwrap().as_str(), "Acme");
    }
}
