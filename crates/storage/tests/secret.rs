//! The local URL signing secret: generated once, kept private, reused after.

use std::os::unix::fs::PermissionsExt;

use resonance_domain::VoiceId;
use resonance_storage::{
    ObjectKey, SIGNED_URL_TTL, SecretError, Storage, UrlSigningSecret, load_or_create_secret,
};

#[tokio::test]
async fn a_created_secret_is_private_and_loads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("url-signing.key");

    let created = load_or_create_secret(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let stored = std::fs::read_to_string(&path).unwrap();
    assert_eq!(stored.len(), 64, "32 random bytes in hex");
    assert!(!format!("{created:?}").contains(&stored));

    // What one instance signs, the next start (loading the same file) accepts.
    let signer = Storage::local(dir.path().join("a"), created).unwrap();
    let verifier =
        Storage::local(dir.path().join("b"), load_or_create_secret(&path).unwrap()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        stored,
        "not regenerated"
    );
    let key = ObjectKey::system_voice(&VoiceId::new());
    let url = signer.signed_url(&key, SIGNED_URL_TTL).await.unwrap();
    let (expires, sig) = url
        .split_once("?expires=")
        .unwrap()
        .1
        .split_once("&sig=")
        .unwrap();
    let expires: u64 = expires.parse().unwrap();
    verifier
        .verify_local_signature(&key, expires, sig, expires)
        .unwrap();

    let other_dir = tempfile::tempdir().unwrap();
    let other = load_or_create_secret(&other_dir.path().join("url-signing.key")).unwrap();
    assert_ne!(
        std::fs::read_to_string(other_dir.path().join("url-signing.key")).unwrap(),
        stored,
        "each data dir gets its own random secret"
    );
    let other_verifier = Storage::local(other_dir.path().join("objects"), other).unwrap();
    assert!(
        other_verifier
            .verify_local_signature(&key, expires, sig, expires)
            .is_err()
    );
}

#[test]
fn short_or_malformed_secrets_are_refused() {
    assert!(matches!(
        UrlSigningSecret::new(b"too short".to_vec()),
        Err(SecretError::TooShort { len: 9 })
    ));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("url-signing.key");
    std::fs::write(&path, "not hex at all").unwrap();
    assert!(matches!(
        load_or_create_secret(&path),
        Err(SecretError::Malformed { .. })
    ));
    std::fs::write(&path, "abcd").unwrap();
    assert!(matches!(
        load_or_create_secret(&path),
        Err(SecretError::TooShort { len: 2 })
    ));
}
