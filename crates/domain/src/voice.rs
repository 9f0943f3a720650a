//! Voice attributes as the seed's `Voice` model defines them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::OrgId;
use crate::text::allowed_in_name;

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VoiceCategory {
    Audiobook,
    Conversational,
    CustomerService,
    #[default]
    General,
    Narrative,
    Characters,
    Meditation,
    Motivational,
    Podcast,
    Advertising,
    Voiceover,
    Corporate,
}

impl VoiceCategory {
    pub const ALL: [VoiceCategory; 12] = [
        Self::Audiobook,
        Self::Conversational,
        Self::CustomerService,
        Self::General,
        Self::Narrative,
        Self::Characters,
        Self::Meditation,
        Self::Motivational,
        Self::Podcast,
        Self::Advertising,
        Self::Voiceover,
        Self::Corporate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audiobook => "AUDIOBOOK",
            Self::Conversational => "CONVERSATIONAL",
            Self::CustomerService => "CUSTOMER_SERVICE",
            Self::General => "GENERAL",
            Self::Narrative => "NARRATIVE",
            Self::Characters => "CHARACTERS",
            Self::Meditation => "MEDITATION",
            Self::Motivational => "MOTIVATIONAL",
            Self::Podcast => "PODCAST",
            Self::Advertising => "ADVERTISING",
            Self::Voiceover => "VOICEOVER",
            Self::Corporate => "CORPORATE",
        }
    }
}

impl fmt::Display for VoiceCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown voice category {0:?}; expected one of AUDIOBOOK, CONVERSATIONAL, CUSTOMER_SERVICE, GENERAL, NARRATIVE, CHARACTERS, MEDITATION, MOTIVATIONAL, PODCAST, ADVERTISING, VOICEOVER, CORPORATE"
)]
pub struct UnknownCategory(pub String);

impl FromStr for VoiceCategory {
    type Err = UnknownCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCategory(s.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VoiceVariant {
    System,
    Custom,
}

impl VoiceVariant {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "SYSTEM",
            Self::Custom => "CUSTOM",
        }
    }
}

impl FromStr for VoiceVariant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "SYSTEM" => Ok(Self::System),
            "CUSTOM" => Ok(Self::Custom),
            _ => Err(format!(
                "unknown voice variant {s:?}; expected SYSTEM or CUSTOM"
            )),
        }
    }
}

/// Who a voice belongs to: every organization (a SYSTEM voice) or one (a CUSTOM voice).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VoiceOwner {
    System,
    Org(OrgId),
}

impl VoiceOwner {
    pub fn variant(&self) -> VoiceVariant {
        match self {
            Self::System => VoiceVariant::System,
            Self::Org(_) => VoiceVariant::Custom,
        }
    }

    pub fn org_id(&self) -> Option<&OrgId> {
        match self {
            Self::System => None,
            Self::Org(org) => Some(org),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoiceFieldError {
    #[error(
        "name must be 1-100 characters, without control, zero-width or text-direction characters"
    )]
    Name,
    #[error("description must be at most 1000 characters")]
    Description,
    #[error("language must be a BCP-47 tag with a region, like en-US")]
    Language,
}

/// A voice's display name: 1-100 characters after trimming. Not a key: names may repeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct VoiceName(String);

impl VoiceName {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 100;

    pub fn parse(s: &str) -> Result<Self, VoiceFieldError> {
        let s = s.trim();
        let n = s.chars().count();
        if n == 0 || n > Self::MAX_CHARS || !s.chars().all(allowed_in_name) {
            return Err(VoiceFieldError::Name);
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Optional free text describing a voice, at most 1000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct VoiceDescription(String);

impl VoiceDescription {
    pub fn parse(s: &str) -> Result<Self, VoiceFieldError> {
        let s = s.trim();
        if s.chars().count() > 1000 {
            return Err(VoiceFieldError::Description);
        }
        Ok(Self(s.to_string()))
    }

    /// A description given in a form, where blank means none.
    pub fn parse_optional(s: &str) -> Result<Option<Self>, VoiceFieldError> {
        if s.trim().is_empty() {
            return Ok(None);
        }
        Self::parse(s).map(Some)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A BCP-47 language tag with a region (`en-US`), normalized to `ll-RR` case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Language(String);

impl Language {
    pub fn parse(s: &str) -> Result<Self, VoiceFieldError> {
        let mut parts = s.trim().split(['-', '_']);
        let (Some(lang), Some(region), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(VoiceFieldError::Language);
        };
        let lang_ok =
            (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_alphabetic());
        let region_ok = (region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic()))
            || (region.len() == 3 && region.chars().all(|c| c.is_ascii_digit()));
        if !lang_ok || !region_ok {
            return Err(VoiceFieldError::Language);
        }
        Ok(Self(format!(
            "{}-{}",
            lang.to_ascii_lowercase(),
            region.to_ascii_uppercase()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Language {
    fn default() -> Self {
        Self("en-US".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_description_is_none_and_a_long_one_is_refused() {
        assert_eq!(VoiceDescription::parse_optional(" \n "), Ok(None));
        assert_eq!(
            VoiceDescription::parse_optional(" Warm ")
                .unwrap()
                .unwrap()
                .as_str(),
            "Warm"
        );
        assert_eq!(
            VoiceDescription::parse_optional(&"a".repeat(1001)),
            Err(VoiceFieldError::Description)
        );
    }

    #[test]
    fn categories_round_trip() {
        for c in VoiceCategory::ALL {
            assert_eq!(c.as_str().parse::<VoiceCategory>().unwrap(), c);
        }
        assert!("ROBOT".parse::<VoiceCategory>().is_err());
    }

    #[test]
    fn language_needs_a_region() {
        assert_eq!(Language::parse("en-us").unwrap().as_str(), "en-US");
        assert_eq!(Language::parse("es-419").unwrap().as_str(), "es-419");
        for bad in ["en", "english-US", "en-USA-x", "", "e1-US"] {
            assert!(Language::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn voice_name_bounds() {
        assert!(VoiceName::parse("  ").is_err());
        assert!(VoiceName::parse(&"a".repeat(101)).is_err());
        assert_eq!(VoiceName::parse(" Aaron ").unwrap().as_str(), "Aaron");
    }
}
