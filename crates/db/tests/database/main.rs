//! The storage suite. Every test body runs twice: on SQLite (a real file) and on
//! PostgreSQL (a fresh database from the testkit).

mod billing;
mod connect;
mod generations;
mod jobs;
mod organizations;
mod voices;

use std::sync::Arc;

use resonance_db::{Database, NewVoice};
use resonance_domain::{
    Language, OrgId, OrganizationName, VoiceCategory, VoiceId, VoiceName, VoiceOwner,
};
use resonance_testkit::postgres::TestPostgres;
use sqlx::Connection;

#[derive(Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated, empty database and what keeps it alive.
pub struct TestDb {
    pub db: Arc<dyn Database>,
    pub url: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    _postgres: Option<TestPostgres>,
}

impl Backend {
    pub async fn open(self) -> TestDb {
        let (url, sqlite_dir, postgres) = match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                // A directory that does not exist yet: connect creates it.
                let path = dir.path().join("state").join("resonance.db");
                (format!("sqlite://{}", path.display()), Some(dir), None)
            }
            Backend::Postgres => {
                let postgres = TestPostgres::new()
                    .await
                    .expect("a PostgreSQL database for tests");
                (postgres.url().to_string(), None, Some(postgres))
            }
        };
        let db = resonance_db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        TestDb {
            db,
            url,
            _sqlite_dir: sqlite_dir,
            _postgres: postgres,
        }
    }
}

impl TestDb {
    /// Runs SQL directly, past the typed API, as anything else with access to the database could.
    pub async fn execute_raw(&self, sql: &'static str) -> Result<(), sqlx::Error> {
        if self.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
            sqlx::raw_sql(sql).execute(&mut conn).await?;
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await?;
            sqlx::raw_sql(sql).execute(&mut conn).await?;
        }
        Ok(())
    }

    /// The single integer `sql` selects.
    pub async fn count(&self, sql: &'static str) -> i64 {
        if self.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
    }

    pub async fn new_org(&self, name: &str) -> OrgId {
        let name = OrganizationName::parse(name).unwrap();
        self.db.create_organization(&name).await.unwrap().id
    }
}

pub fn new_voice(owner: VoiceOwner, name: &str) -> NewVoice {
    NewVoice {
        id: VoiceId::new(),
        owner,
        name: VoiceName::parse(name).unwrap(),
        description: None,
        category: VoiceCategory::General,
        language: Language::default(),
        object_key: None,
        consent: None,
    }
}

/// Defines `sqlite::<test>` and `postgres::<test>` for each named `async fn <test>(TestDb)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::Backend::Sqlite.open().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::Backend::Postgres.open().await).await;
                }
            )*
        }
    };
}
