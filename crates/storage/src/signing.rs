//! HMAC-SHA256 signed, expiring URLs for objects served by this application from the
//! local backend: `/files/{key}?expires=<unix seconds>&sig=<hex>`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{ObjectKey, SignatureError};

/// The path the web layer serves signed local files under; the key follows it.
pub const LOCAL_FILES_PATH: &str = "/files/";

const MIN_SECRET_LEN: usize = 32;
const GENERATED_SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the URL signing secret must be at least {MIN_SECRET_LEN} bytes, got {len}")]
    TooShort { len: usize },
    #[error("URL signing secret file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("URL signing secret file {path} does not hold a hex secret")]
    Malformed { path: PathBuf },
}

/// The secret local file URLs are signed with. Its value is never printed.
#[derive(Clone)]
pub struct UrlSigningSecret(Vec<u8>);

impl UrlSigningSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort { len: secret.len() });
        }
        Ok(Self(secret))
    }

    fn mac(&self, key: &ObjectKey, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .expect("HMAC-SHA256 accepts keys of any length");
        mac.update(key.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// `/files/{key}?expires=..&sig=..`, valid until `expires` (unix seconds).
    pub(crate) fn signed_path(&self, key: &ObjectKey, expires: u64) -> String {
        let sig = hex::encode(self.mac(key, expires).finalize().into_bytes());
        format!("{LOCAL_FILES_PATH}{key}?expires={expires}&sig={sig}")
    }

    pub(crate) fn verify(
        &self,
        key: &ObjectKey,
        expires: u64,
        sig: &str,
        now: u64,
    ) -> Result<(), SignatureError> {
        let expected = self.mac(key, expires).finalize().into_bytes();
        let given = hex::decode(sig).map_err(|_| SignatureError::Mismatch)?;
        if !bool::from(expected.as_slice().ct_eq(&given)) {
            return Err(SignatureError::Mismatch);
        }
        if now > expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

impl fmt::Debug for UrlSigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UrlSigningSecret(<redacted>)")
    }
}

/// Reads the hex secret stored at `path`, or generates a random one and writes it there
/// readable by the owner only (0600), creating the parent folder if needed.
pub fn load_or_create_secret(path: &Path) -> Result<UrlSigningSecret, SecretError> {
    let io_error = |source| SecretError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|_| SecretError::Malformed {
                path: path.to_path_buf(),
            })?;
            UrlSigningSecret::new(bytes)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = vec![0u8; GENERATED_SECRET_LEN];
            rand::rng().fill_bytes(&mut secret);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io_error)?;
            }
            write_owner_only(path, hex::encode(&secret).as_bytes()).map_err(io_error)?;
            UrlSigningSecret::new(secret)
        }
        Err(error) => Err(io_error(error)),
    }
}

fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
