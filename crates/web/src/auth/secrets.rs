//! Passwords (Argon2id) and bearer secrets (session tokens, API keys).
//!
//! Bearer secrets carry 256 random bits, so a plain SHA-256 of the secret is a safe
//! lookup key for storage; only the hash is stored. API keys look like
//! `rsn_<prefix>_<secret>`: the prefix is shown in listings to tell keys apart.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const API_KEY_TAG: &str = "rsn";
const API_KEY_PREFIX_LEN: usize = 8;

/// OWASP's Argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
fn argon2_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("valid params")
}

/// Working memory for one password hash or check, reused across them (see
/// [`super::hashing`]): Argon2 fills every block of it.
pub fn password_memory() -> Vec<Block> {
    vec![Block::default(); argon2_params().block_count()]
}

/// Hashes a password (PHC string) in `memory` (from [`password_memory`]). CPU-heavy: call
/// from a blocking thread.
pub fn hash_password(password: &str, memory: &mut [Block]) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let params = argon2_params();
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut output, memory)
        .expect("the memory fits the parameters");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("valid params"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&output).expect("32 bytes is a valid output")),
    }
    .to_string()
}

/// Checks a password against a stored PHC hash, computing in `memory` (from
/// [`password_memory`]; a hash made with more memory than that gets its own). CPU-heavy:
/// call from a blocking thread.
pub fn verify_password(password: &str, stored: &str, memory: &mut [Block]) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(hash.algorithm),
        Version::try_from(hash.version.unwrap_or(Version::V0x13.into())),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut own_memory = Vec::new();
    let memory = if memory.len() >= params.block_count() {
        memory
    } else {
        own_memory.resize(params.block_count(), Block::default());
        &mut own_memory[..]
    };
    let mut output = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut output, memory)
        .is_ok()
        && bool::from(output.as_slice().ct_eq(expected.as_bytes()))
}

/// A hash of a password nobody has, verified against when an account does not exist
/// so that sign-in takes the same time either way.
pub fn dummy_password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no account has this password", &mut password_memory()))
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
        let mut memory = password_memory();
        let hash = hash_password("correct horse battery staple", &mut memory);
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "OWASP's parameters: {hash}"
        );
        assert!(verify_password(
            "correct horse battery staple",
            &hash,
            &mut memory
        ));
        assert!(!verify_password(
            "Correct horse battery staple",
            &hash,
            &mut memory
        ));
        assert!(!verify_password("anything", "not a hash", &mut memory));
    }

    /// Hashes stored before the memory was reused verify, and the other way round; a hash
    /// made with more memory than the shared buffer still verifies.
    #[test]
    fn hashes_match_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = password_memory();
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let standard = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params())
            .hash_password(b"hunter2 hunter2", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("hunter2 hunter2", &standard, &mut memory));
        let ours = hash_password("hunter2 hunter2", &mut memory);
        assert!(
            Argon2::default()
                .verify_password(b"hunter2 hunter2", &PasswordHash::new(&ours).unwrap())
                .is_ok()
        );
        let bigger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"hunter2 hunter2", &salt)
        .unwrap()
        .to_string();
        assert!(verify_password("hunter2 hunter2", &bigger, &mut memory));
        assert!(!verify_password("hunter3 hunter3", &bigger, &mut memory));
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
