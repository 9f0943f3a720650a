use std::error::Error as StdError;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Every way a database operation fails, in terms the web layer maps to HTTP once.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The row does not exist, or exists but is not visible to the caller's organization.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The row exists and is visible, but the change is not the caller's to make.
    #[error("{0}")]
    Forbidden(String),
    /// A uniqueness, reference or check constraint refused the change.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or opened. `target` names the backend and where it is
    /// (host and port, or file path), never credentials.
    #[error("{target} is unavailable: {source}")]
    Unavailable {
        target: String,
        #[source]
        source: BoxError,
    },
    /// The URL names no supported backend or does not parse; it is not repeated here
    /// because it may hold a password.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The change would pass a plan's limit; nothing was written.
    #[error("the plan's {:?} limit would be passed", .0.limit)]
    OverLimit(crate::OverLimit),
    #[error("database error: {0}")]
    Other(#[source] BoxError),
}

impl DbError {
    /// Classifies an error from an operation on the database at `target`.
    pub(crate) fn from_sqlx(target: &str, error: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &error {
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::CheckViolation
                | ErrorKind::NotNullViolation => Self::Conflict(db.message().to_string()),
                _ => Self::Other(error.into()),
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable {
                target: target.to_string(),
                source: error.into(),
            },
            _ => Self::Other(error.into()),
        }
    }

    /// A stored value that no longer parses as its domain type.
    pub(crate) fn corrupt(table: &str, column: &str, error: impl std::fmt::Display) -> Self {
        Self::Other(format!("stored {table}.{column} is invalid: {error}").into())
    }
}
