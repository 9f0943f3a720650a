//! Unguessable identifiers. Every id is 24 lowercase base-32 characters (120 random
//! bits), so an id is always safe to use in an object-storage key or a URL path.

use std::fmt;
use std::marker::PhantomData;

use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const LEN: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id")]
pub struct IdError {
    pub kind: &'static str,
}

/// What an id identifies; only gives the id type a name for messages and the API schema.
pub trait IdKind {
    const NAME: &'static str;
    /// The id type's name in the OpenAPI document, like `VoiceId`.
    const SCHEMA_NAME: &'static str;
}

pub struct Id<K> {
    value: String,
    kind: PhantomData<K>,
}

impl<K: IdKind> Id<K> {
    pub fn new() -> Self {
        let mut bytes = [0u8; LEN];
        rand::rng().fill_bytes(&mut bytes);
        let value = bytes
            .iter()
            .map(|b| ALPHABET[(b & 31) as usize] as char)
            .collect();
        Self {
            value,
            kind: PhantomData,
        }
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = s.len() == LEN && s.bytes().all(|b| ALPHABET.contains(&b));
        if ok {
            Ok(Self {
                value: s.to_string(),
                kind: PhantomData,
            })
        } else {
            Err(IdError { kind: K::NAME })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl<K: IdKind> Default for Id<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<K> Eq for Id<K> {}

impl<K> std::hash::Hash for Id<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}

impl<K> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl<K: IdKind> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", K::NAME, self.value)
    }
}

impl<K> Serialize for Id<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.value)
    }
}

impl<'de, K: IdKind> Deserialize<'de> for Id<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl<K: IdKind> utoipa::PartialSchema for Id<K> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let pattern = format!(
            "^[{}]{{{LEN}}}$",
            std::str::from_utf8(ALPHABET).expect("ASCII")
        );
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(format!(
                "{} id: {LEN} lowercase base-32 characters",
                K::NAME
            )))
            .pattern(Some(pattern))
            .into()
    }
}

impl<K: IdKind> utoipa::ToSchema for Id<K> {
    fn name() -> std::borrow::Cow<'static, str> {
        K::SCHEMA_NAME.into()
    }
}

macro_rules! id_kind {
    ($kind:ident, $alias:ident, $name:literal) => {
        #[derive(Debug)]
        pub enum $kind {}
        impl IdKind for $kind {
            const NAME: &'static str = $name;
            const SCHEMA_NAME: &'static str = stringify!($alias);
        }
        pub type $alias = Id<$kind>;
    };
}

id_kind!(Org, OrgId, "organization");
id_kind!(User, UserId, "user");
id_kind!(Voice, VoiceId, "voice");
id_kind!(Generation, GenerationId, "generation");
id_kind!(ApiKey, ApiKeyId, "API key");
id_kind!(Invite, InviteId, "invite");
id_kind!(VoiceSample, VoiceSampleId, "voice sample");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_parse_back_and_differ() {
        let a = VoiceId::new();
        let b = VoiceId::new();
        assert_ne!(a, b);
        assert_eq!(VoiceId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn rejects_path_characters_and_wrong_length() {
        for bad in [
            "../../etc/passwd",
            "",
            "ABCDEFGHJKMNPQRSTVWXYZ01",
            "0123456789abcdefghjkmnp/",
            "0123",
        ] {
            assert!(VoiceId::parse(bad).is_err(), "{bad}");
        }
    }
}
