//! What the one implementation of the storage traits (`queries.rs`, `accounts/queries.rs`,
//! `billing/queries.rs`) asks of a backend: its pool, where it is, and the few things its
//! dialect does its own way.

use std::future::Future;

use resonance_domain::OrgId;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Database, Decode, Encode, IntoArguments, Pool, Transaction, Type};

use crate::DbError;

/// A backend struct ([`crate::SqliteDatabase`], [`crate::PostgresDatabase`]). The storage
/// traits are implemented for every `B: Backend` whose `Db` has what the queries bind and
/// read. Rust does not carry a trait's `where` clauses over to the items using it
/// (rust-lang/rust#20671), so each of those impls repeats the same list:
///
/// - `for<'c> &'c mut ConnectionOf<B>: Executor<'c, Database = B::Db>`: a transaction, and
///   through it the pool, runs queries;
/// - `for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>` and the same for `Option<&'q str>`;
/// - `String`, `i64`, `Option<i64>`, `i32`, `f64`, `bool`: [`Stored`];
/// - `usize` and `for<'n> &'n str`: `ColumnIndex<RowOf<B>>`, to read tuples and rows by name.
pub(crate) trait Backend: Send + Sync {
    /// Bounds on `Db`'s own types, unlike those in a `where` clause, hold wherever
    /// `B: Backend` does.
    type Db: Database<Arguments: IntoArguments<Self::Db>, QueryResult: RowsAffected, Connection: Migrate>;

    /// Ends the subquery that picks the job to claim, so that parallel claims never pick the
    /// same job.
    const ROW_LOCK: &'static str;

    /// A column of `generations` that grows with each insert: history orders by it after
    /// `created_at`, so that generations made in the same millisecond (the sentences of a
    /// text streamed in) list in the order they were made.
    const INSERTION_ORDER: &'static str;

    const MIGRATOR: &'static Migrator;

    fn pool(&self) -> &Pool<Self::Db>;

    /// Where the database is, for errors; never credentials.
    fn target(&self) -> &str;

    /// A transaction that parallel ones for the same organization wait on, so that what it
    /// counts stays true until it commits.
    fn begin_for_org(
        &self,
        org: &OrgId,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, DbError>> + Send;

    fn error(&self, error: sqlx::Error) -> DbError {
        DbError::from_sqlx(self.target(), error)
    }
}

/// How many rows a statement changed, which sqlx gives each backend's result as its own
/// method.
pub(crate) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

/// A Rust type a column holds: bound as a parameter and decoded from a result.
pub(crate) trait Stored<DB: Database>:
    Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>
{
}

impl<DB: Database, T> Stored<DB> for T where
    T: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>
{
}

pub(crate) type ConnectionOf<B> = <<B as Backend>::Db as Database>::Connection;

pub(crate) type RowOf<B> = <<B as Backend>::Db as Database>::Row;
