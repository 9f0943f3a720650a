//! Object storage: local folder or S3-compatible bucket, keys built only from validated ids.
//!
//! A thin wrapper over `object_store`. The local backend keeps objects in a folder and
//! hands out HMAC-signed application URLs (`/files/{key}?expires=..&sig=..`) that the web
//! layer checks with [`Storage::verify_local_signature`]; the S3 backend (AWS S3, R2,
//! MinIO...) hands out real presigned bucket URLs.

mod error;
mod key;
mod signing;

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::signer::{Method, Signer, Url};
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, PutOptions,
    PutPayload, RetryConfig,
};

pub use error::{SignatureError, StorageError};
pub use key::{KeyPrefix, ObjectKey, SampleName};
pub use signing::{LOCAL_FILES_PATH, SecretError, UrlSigningSecret, load_or_create_secret};

/// How long signed URLs stay valid unless a caller asks otherwise.
pub const SIGNED_URL_TTL: Duration = Duration::from_secs(60 * 60);

/// Where an S3-compatible bucket lives and how to sign in. Filled from configuration.
#[derive(Clone)]
pub struct S3Settings {
    /// e.g. `https://<account>.r2.cloudflarestorage.com` or `http://minio:9000`;
    /// `None` means AWS S3's own endpoint for `region`.
    pub endpoint: Option<String>,
    /// `auto` for R2.
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Address objects as `https://{bucket}.{endpoint host}/{key}` instead of the default
    /// path style `https://{endpoint host}/{bucket}/{key}`.
    pub virtual_hosted_style: bool,
    /// Required for an `http://` endpoint.
    pub allow_http: bool,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// Size and, where the backend records it, content type of a stored object. The local
/// backend does not keep content types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub content_type: Option<String>,
}

/// One object found by [`Storage::list_objects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: ObjectKey,
    pub size: u64,
    pub last_modified: SystemTime,
}

/// An object's info and its bytes as they arrive.
pub struct ObjectStream {
    pub info: ObjectInfo,
    pub body: BoxStream<'static, Result<Bytes, StorageError>>,
}

#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    /// Names the store in errors, e.g. `local folder /data/objects`.
    target: Arc<str>,
}

/// What differs between the backends beyond the object operations: how to check the
/// store is there and how to hand out URLs.
#[derive(Debug, Clone)]
enum Backend {
    Local {
        root: PathBuf,
        secret: UrlSigningSecret,
    },
    S3(Arc<AmazonS3>),
}

impl Storage {
    /// Objects as files under `root`, which is created if missing.
    pub fn local(root: impl Into<PathBuf>, secret: UrlSigningSecret) -> Result<Self, StorageError> {
        let root = root.into();
        let target = format!("local folder {}", root.display());
        std::fs::create_dir_all(&root).map_err(|source| StorageError::Other {
            context: format!("creating {target}"),
            source: source.into(),
        })?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|source| other(format!("opening {target}"), source))?
            .with_automatic_cleanup(true);
        Ok(Self {
            store: Arc::new(store),
            backend: Backend::Local { root, secret },
            target: target.into(),
        })
    }

    /// Objects in an S3-compatible bucket. Makes no request; see [`Storage::ping`].
    pub fn s3(settings: &S3Settings) -> Result<Self, StorageError> {
        let target = match &settings.endpoint {
            Some(endpoint) => format!("S3 bucket {:?} at {endpoint}", settings.bucket),
            None => format!("S3 bucket {:?} in {}", settings.bucket, settings.region),
        };
        let mut builder = AmazonS3Builder::new()
            .with_region(&settings.region)
            .with_bucket_name(&settings.bucket)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key)
            .with_virtual_hosted_style_request(settings.virtual_hosted_style)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(settings.allow_http)
                    .with_connect_timeout(Duration::from_secs(5)),
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &settings.endpoint {
            // object_store takes a virtual-hosted endpoint with the bucket already in it.
            let endpoint = if settings.virtual_hosted_style {
                bucket_endpoint(endpoint, &settings.bucket).map_err(|source| {
                    StorageError::Other {
                        context: format!("invalid S3 endpoint {endpoint:?}"),
                        source,
                    }
                })?
            } else {
                endpoint.clone()
            };
            builder = builder.with_endpoint(endpoint);
        }
        let store = Arc::new(
            builder
                .build()
                .map_err(|source| other(format!("configuring {target}"), source))?,
        );
        Ok(Self {
            store: store.clone(),
            backend: Backend::S3(store),
            target: target.into(),
        })
    }

    /// Checks that the store is there: the folder exists, or the bucket answers a listing.
    pub async fn ping(&self) -> Result<(), StorageError> {
        let result = match &self.backend {
            Backend::Local { root, .. } => match tokio::fs::metadata(root).await {
                Ok(meta) if meta.is_dir() => Ok(()),
                Ok(_) => Err("it is not a folder".into()),
                Err(error) => Err(error.into()),
            },
            Backend::S3(s3) => s3
                .list_with_delimiter(None)
                .await
                .map(|_| ())
                .map_err(Into::into),
        };
        result.map_err(|source| self.unavailable(source))
    }

    /// Stores `bytes` under `key`, replacing any object there.
    pub async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let mut options = PutOptions::default();
        // The local backend refuses attributes; it has nowhere to keep them.
        if matches!(self.backend, Backend::S3(_)) {
            options.attributes =
                Attributes::from_iter([(Attribute::ContentType, content_type.to_string())]);
        }
        self.store
            .put_opts(&store_path(key), PutPayload::from_bytes(bytes), options)
            .await
            .map(|_| ())
            .map_err(|source| self.error(key, "writing", source))
    }

    pub async fn get(&self, key: &ObjectKey) -> Result<Bytes, StorageError> {
        let result = self
            .store
            .get(&store_path(key))
            .await
            .map_err(|source| self.error(key, "reading", source))?;
        result
            .bytes()
            .await
            .map_err(|source| self.error(key, "reading", source))
    }

    /// The bytes in `range` (half-open, in bytes). A range running past the end is cut at
    /// the end; an empty one or one starting at or past the end is
    /// [`StorageError::RangeNotSatisfiable`].
    pub async fn get_range(
        &self,
        key: &ObjectKey,
        range: Range<u64>,
    ) -> Result<Bytes, StorageError> {
        let not_satisfiable = |range| StorageError::RangeNotSatisfiable {
            key: key.to_string(),
            range,
        };
        if range.is_empty() {
            return Err(not_satisfiable(range));
        }
        match self.store.get_range(&store_path(key), range.clone()).await {
            Ok(bytes) => Ok(bytes),
            Err(object_store::Error::NotFound { .. }) => Err(StorageError::NotFound {
                key: key.to_string(),
            }),
            // Backends report an unsatisfiable range in their own ways (a local error, an
            // HTTP 416); the object's size tells it apart from a real failure.
            Err(source) => match self.head(key).await {
                Ok(info) if range.start >= info.size => Err(not_satisfiable(range)),
                _ => Err(self.error(key, "reading a range of", source)),
            },
        }
    }

    pub async fn head(&self, key: &ObjectKey) -> Result<ObjectInfo, StorageError> {
        let result = self
            .store
            .get_opts(&store_path(key), GetOptions::new().with_head(true))
            .await
            .map_err(|source| self.error(key, "reading the metadata of", source))?;
        Ok(object_info(&result.meta, &result.attributes))
    }

    /// The object's info and a stream of its bytes, for serving large files.
    pub async fn get_stream(&self, key: &ObjectKey) -> Result<ObjectStream, StorageError> {
        let result = self
            .store
            .get(&store_path(key))
            .await
            .map_err(|source| self.error(key, "reading", source))?;
        let info = object_info(&result.meta, &result.attributes);
        let (key, this) = (key.clone(), self.clone());
        let body = result
            .into_stream()
            .map_err(move |source| this.error(&key, "reading", source))
            .boxed();
        Ok(ObjectStream { info, body })
    }

    /// Removes the object; removing a missing object succeeds.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        match self.store.delete(&store_path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.error(key, "deleting", source)),
        }
    }

    /// Every key under `prefix`, in no particular order. Objects whose names are not one of
    /// our key shapes (put there by something else) are skipped with a warning.
    pub async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<ObjectKey>, StorageError> {
        Ok(self
            .list_objects(prefix)
            .await?
            .into_iter()
            .map(|object| object.key)
            .collect())
    }

    /// Like [`Storage::list`], with each object's size and last modification time.
    pub async fn list_objects(
        &self,
        prefix: &KeyPrefix,
    ) -> Result<Vec<ListedObject>, StorageError> {
        let prefix_path = prefix.as_str().map(StorePath::from);
        let metas: Vec<_> = self
            .store
            .list(prefix_path.as_ref())
            .try_collect()
            .await
            .map_err(|source| self.unavailable(source.into()))?;
        Ok(metas
            .into_iter()
            .filter_map(|meta| match ObjectKey::parse(meta.location.as_ref()) {
                Ok(key) => Some(ListedObject {
                    key,
                    size: meta.size,
                    last_modified: meta.last_modified.into(),
                }),
                Err(_) => {
                    tracing::warn!(object = %meta.location, store = %self.target, "skipping an object that is not a Resonance key");
                    None
                }
            })
            .collect())
    }

    /// A URL that fetches the object until `ttl` has passed ([`SIGNED_URL_TTL`] is the
    /// usual choice). For S3 an absolute presigned bucket URL; for the local backend an
    /// application path `/files/{key}?expires=..&sig=..` for the web layer to serve.
    pub async fn signed_url(&self, key: &ObjectKey, ttl: Duration) -> Result<String, StorageError> {
        match &self.backend {
            Backend::Local { secret, .. } => {
                let expires = unix_now().saturating_add(ttl.as_secs());
                Ok(secret.signed_path(key, expires))
            }
            Backend::S3(s3) => s3
                .signed_url(Method::GET, &store_path(key), ttl)
                .await
                .map(String::from)
                .map_err(|source| self.error(key, "signing a URL for", source)),
        }
    }

    /// Checks a local signed URL's `expires` (unix seconds) and `sig` for `key` at `now`
    /// (unix seconds). Comparison is constant-time.
    pub fn verify_local_signature(
        &self,
        key: &ObjectKey,
        expires: u64,
        sig: &str,
        now: u64,
    ) -> Result<(), SignatureError> {
        match &self.backend {
            Backend::Local { secret, .. } => secret.verify(key, expires, sig, now),
            Backend::S3(_) => Err(SignatureError::NotLocalStorage),
        }
    }

    fn unavailable(&self, source: Box<dyn std::error::Error + Send + Sync>) -> StorageError {
        StorageError::Unavailable {
            target: self.target.to_string(),
            source,
        }
    }

    fn error(&self, key: &ObjectKey, doing: &str, source: object_store::Error) -> StorageError {
        match source {
            object_store::Error::NotFound { .. } => StorageError::NotFound {
                key: key.to_string(),
            },
            object_store::Error::Generic { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => self.unavailable(source.into()),
            source => other(format!("{doing} {key} in {}", self.target), source),
        }
    }
}

fn other(context: String, source: object_store::Error) -> StorageError {
    StorageError::Other {
        context,
        source: source.into(),
    }
}

/// `https://host:port` to `https://{bucket}.host:port`.
fn bucket_endpoint(
    endpoint: &str,
    bucket: &str,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let mut url = Url::parse(endpoint)?;
    let host = url.host_str().ok_or("the endpoint has no host")?;
    url.set_host(Some(&format!("{bucket}.{host}")))?;
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn store_path(key: &ObjectKey) -> StorePath {
    StorePath::from(key.as_str())
}

fn object_info(meta: &object_store::ObjectMeta, attributes: &Attributes) -> ObjectInfo {
    ObjectInfo {
        size: meta.size,
        content_type: attributes
            .get(&Attribute::ContentType)
            .map(|value| value.as_ref().to_string()),
    }
}

/// Seconds since the Unix epoch, as used in local signed URLs.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
