use std::ops::Range;

/// Every storage failure. The web layer maps these to HTTP statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {key} not found")]
    NotFound { key: String },

    /// Not one of the key shapes in [`crate::ObjectKey`]; carries the rejected text.
    #[error("invalid object key {key:?}")]
    InvalidKey { key: String },

    /// The requested byte range does not start inside the object (HTTP 416).
    #[error("range {}..{} is not satisfiable for object {key}", range.start, range.end)]
    RangeNotSatisfiable { key: String, range: Range<u64> },

    /// The store could not be reached or refused us (network, credentials, missing bucket
    /// or folder). `target` names the store, e.g. `S3 bucket "b" at https://...`.
    #[error("{target} is unavailable: {source}")]
    Unavailable {
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("{context}: {source}")]
    Other {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Why a local signed file URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signed URL has expired")]
    Expired,
    #[error("the URL signature does not match")]
    Mismatch,
    #[error("this storage serves files through presigned bucket URLs, not signed local URLs")]
    NotLocalStorage,
}
