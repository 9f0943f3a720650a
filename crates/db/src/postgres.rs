use std::str::FromStr;
use std::time::Duration;

use resonance_domain::OrgId;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{ConnectOptions, Connection, Postgres, Transaction};

use crate::DbError;
use crate::backend::{Backend, RowsAffected};

/// The database on a PostgreSQL server.
pub struct PostgresDatabase {
    pool: PgPool,
    /// "PostgreSQL at HOST:PORT/DB", for errors; never the credentials.
    target: String,
}

impl PostgresDatabase {
    /// Opens `postgres://USER:PASSWORD@HOST:PORT/DB`, failing at once when the server
    /// cannot be reached or refuses the login.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| DbError::InvalidUrl(format!("not a PostgreSQL URL: {e}")))?;
        let target = describe(&options);
        let unavailable = |source: sqlx::Error| DbError::Unavailable {
            target: target.clone(),
            source: source.into(),
        };
        // One direct connection first: the pool would retry a refused connection until its
        // timeout and then report only that it timed out.
        options
            .connect()
            .await
            .map_err(unavailable)?
            .close()
            .await
            .map_err(unavailable)?;
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        Ok(Self { pool, target })
    }
}

fn describe(options: &PgConnectOptions) -> String {
    let database = options.get_database().unwrap_or(options.get_username());
    match options.get_socket() {
        Some(socket) => format!("PostgreSQL at socket {}/{database}", socket.display()),
        None => format!(
            "PostgreSQL at {}:{}/{database}",
            options.get_host(),
            options.get_port()
        ),
    }
}

impl Backend for PostgresDatabase {
    type Db = Postgres;

    /// Parallel claims skip the rows others have locked instead of picking the same one.
    const ROW_LOCK: &'static str = "FOR UPDATE SKIP LOCKED";

    /// An identity column (migration 0011).
    const INSERTION_ORDER: &'static str = "seq";

    const MIGRATOR: &'static Migrator = &sqlx::migrate!("./migrations/postgres");

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn target(&self) -> &str {
        &self.target
    }

    /// A transaction holding the organization's row lock: parallel ones for the same
    /// organization wait until it ends, so what it counts stays true until it commits.
    async fn begin_for_org(&self, org: &OrgId) -> Result<Transaction<'static, Postgres>, DbError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        sqlx::query("SELECT id FROM organizations WHERE id = $1 FOR UPDATE")
            .bind(org.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        Ok(tx)
    }
}

impl RowsAffected for PgQueryResult {
    fn rows_affected(&self) -> u64 {
        PgQueryResult::rows_affected(self)
    }
}
