use std::str::FromStr;
use std::time::Duration;

use resonance_domain::OrgId;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::DbError;
use crate::backend::{Backend, RowsAffected};

/// The database in one SQLite file, in WAL mode with foreign keys enforced.
pub struct SqliteDatabase {
    pool: SqlitePool,
    /// "SQLite database PATH", for errors.
    target: String,
}

impl SqliteDatabase {
    /// Opens `sqlite://PATH`, creating the file and its parent directory when missing.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| DbError::InvalidUrl(format!("not a SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let path = options.get_filename();
        let target = format!("SQLite database {}", path.display());
        let unavailable = |source: Box<dyn std::error::Error + Send + Sync>| DbError::Unavailable {
            target: target.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| unavailable(e.into()))?;
        }
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .map_err(|e| unavailable(e.into()))?;
        Ok(Self { pool, target })
    }
}

impl Backend for SqliteDatabase {
    type Db = Sqlite;

    /// SQLite runs one writer at a time, so no two claims pick the same row.
    const ROW_LOCK: &'static str = "";

    /// Every SQLite table without `WITHOUT ROWID` has one; new rows get the largest plus 1.
    const INSERTION_ORDER: &'static str = "rowid";

    const MIGRATOR: &'static Migrator = &sqlx::migrate!("./migrations/sqlite");

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn target(&self) -> &str {
        &self.target
    }

    /// A transaction that holds the database's write lock from its start: SQLite runs one
    /// writer at a time, so what it reads stays true until it commits.
    async fn begin_for_org(&self, _org: &OrgId) -> Result<Transaction<'static, Sqlite>, DbError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.error(e))
    }
}

impl RowsAffected for SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        SqliteQueryResult::rows_affected(self)
    }
}
