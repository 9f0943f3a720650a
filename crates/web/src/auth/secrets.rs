//! Passwords (Argon2id) and bearer secrets (session tokens, API keys).
//!
//! Bearer secrets carry 256 random bits, so a plain SHA-256 of the secret is a safe
//! lookup key for storage; only the hash is stored. API keys look like
//! `rsn_<prefix>_<secret>`: the prefix is shown in listings to tell keys apart.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const API_KEY_TAG: &str = "rsn";
const API_KEY_PREFIX_LEN: usize = 8;

fn argon2() -> Argon2<'static> {
    // OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid params"),
    )
}

/// Hashes a password (PHC string). CPU-heavy: call from a blocking thread.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing cannot fail")
        .to_string()
}

/// Checks a password against a stored PHC hash. CPU-heavy: call from a blocking thread.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A hash of a password nobody has, verified against when an account does not exist
/// so that sign-in takes the same time either way.
pub fn dummy_password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no account has this password"))
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a bearer secret, hex: what the database stores and looks up.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two secrets (or their hashes) in constant time.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A new session token (the cookie value).
pub fn new_session_token() -> String {
    random_secret()
}

/// A newly created API key: the full key is shown to its creator once.
pub struct NewApiKey {
    pub key: String,
    pub prefix: String,
    pub hash: String,
}

pub fn new_api_key() -> NewApiKey {
    let secret = random_secret();
    let prefix: String = secret
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(API_KEY_PREFIX_LEN)
        .collect();
    let key = format!("{API_KEY_TAG}_{prefix}_{secret}");
    let hash = secret_hash(&key);
    NewApiKey { key, prefix, hash }
}

/// The visible prefix of a presented API key, if it has the shape of one.
pub fn api_key_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_TAG)?.strip_prefix('_')?;
    let (prefix, secret) = rest.split_once('_')?;
    (prefix.len() == API_KEY_PREFIX_LEN && !secret.is_empty()).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse battery staple");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "OWASP's parameters: {hash}"
        );
        assert!(verify_password("correct horse battery staple", &hash));
        assert!(!verify_password("Correct horse battery staple", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn api_keys_have_a_visible_prefix_and_unique_secrets() {
        let a = new_api_key();
        let b = new_api_key();
        assert_ne!(a.key, b.key);
        assert_eq!(api_key_prefix(&a.key), Some(a.prefix.as_str()));
        assert_eq!(secret_hash(&a.key), a.hash);
        assert!(!a.hash.contains(&a.key));
        assert_eq!(api_key_prefix("Bearer nonsense"), None);
    }

    #[test]
    fn constant_time_comparison_is_still_a_comparison() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
