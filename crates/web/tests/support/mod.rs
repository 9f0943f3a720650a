//! The one harness every web test uses: the real server (`resonance_web::serve_with`) on
//! 127.0.0.1:0 against a real database (a SQLite file or a fresh PostgreSQL database) and
//! real object storage (a local folder or an in-process S3 server), plus helpers that act
//! as users, organizations and API keys over HTTP.
//!
//! ```ignore
//! let app = TestApp::builder().postgres().s3().spawn().await;
//! let alice = app.signed_up("alice@example.com").await;
//! let org = app.create_org(&alice, "Acme").await;
//! let bob = app.add_member(&alice, &org, "member").await;
//! let key = app.create_api_key(&alice, &org).await;
//! let response = app.key_client(&key).get(app.url("/api/me")).send().await.unwrap();
//! ```

#![allow(dead_code)] // Each test binary uses a different part of the harness.

pub mod gated;
pub mod timing;
pub mod tone;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use resonance_db::Database;
use resonance_engine::SpeechEngine;
use resonance_service::billing::Billing;
use resonance_service::generations::worker::{Worker, WorkerSettings};
use resonance_storage::{S3Settings, Storage, UrlSigningSecret};
use resonance_testkit::postgres::TestPostgres;
use resonance_testkit::s3::TestS3;
use resonance_web::auth::{AuthSettings, SESSION_COOKIE};
use resonance_web::{AppState, ConnectionSettings};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The password every test user has.
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    Local,
    S3,
}

pub struct TestAppBuilder {
    db: DbKind,
    storage: StorageKind,
    auth: AuthSettings,
    voice_upload_max_bytes: Option<usize>,
    billing: Option<Billing>,
    engine: Option<Arc<dyn SpeechEngine>>,
    connections: ConnectionSettings,
    metrics_token: Option<String>,
    smtp: Option<resonance_service::mail::SmtpSettings>,
    models: Option<Vec<resonance_domain::SpeechModel>>,
}

impl TestAppBuilder {
    pub fn sqlite(mut self) -> Self {
        self.db = DbKind::Sqlite;
        self
    }

    pub fn postgres(mut self) -> Self {
        self.db = DbKind::Postgres;
        self
    }

    pub fn db(mut self, db: DbKind) -> Self {
        self.db = db;
        self
    }

    pub fn local_storage(mut self) -> Self {
        self.storage = StorageKind::Local;
        self
    }

    pub fn s3(mut self) -> Self {
        self.storage = StorageKind::S3;
        self
    }

    /// Changes authentication settings (rate limits, secure cookies, lifetimes).
    pub fn auth(mut self, change: impl FnOnce(&mut AuthSettings)) -> Self {
        change(&mut self.auth);
        self
    }

    /// Changes the largest accepted voice upload.
    pub fn voice_upload_max_bytes(mut self, limit: usize) -> Self {
        self.voice_upload_max_bytes = Some(limit);
        self
    }

    /// Plans, quotas and Polar; unlimited and without Polar unless set.
    pub fn billing(mut self, billing: Billing) -> Self {
        self.billing = Some(billing);
        self
    }

    /// Changes the connection timeouts and cap.
    pub fn connections(mut self, change: impl FnOnce(&mut ConnectionSettings)) -> Self {
        change(&mut self.connections);
        self
    }

    /// Runs a generation worker in the server's process with `engine`, on leases short
    /// enough for tests.
    pub fn engine(mut self, engine: Arc<dyn SpeechEngine>) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Offers `models`, the first as the default (the server offers its default only).
    pub fn models(mut self, models: &[resonance_domain::SpeechModel]) -> Self {
        self.models = Some(models.to_vec());
        self
    }

    /// Serves `/metrics` to requests that send `token`.
    pub fn metrics_token(mut self, token: &str) -> Self {
        self.metrics_token = Some(token.to_string());
        self
    }

    /// Emails password reset links through the plain-text SMTP server on 127.0.0.1:`port`,
    /// with links to the server's own address unless a public URL is set.
    pub fn smtp(mut self, port: u16) -> Self {
        self.smtp = Some(resonance_service::mail::SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: resonance_service::mail::SmtpTls::None,
            credentials: None,
            from: "Resonance <no-reply@resonance.test>".into(),
        });
        self
    }

    pub async fn spawn(self) -> TestApp {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let (db_url, postgres) = match self.db {
            DbKind::Sqlite => (
                format!("sqlite://{}", dir.path().join("resonance.db").display()),
                None,
            ),
            DbKind::Postgres => {
                let postgres = TestPostgres::new()
                    .await
                    .expect("a PostgreSQL test database");
                (postgres.url().to_string(), Some(postgres))
            }
        };
        let db = resonance_db::connect(&db_url)
            .await
            .expect("connecting the database");
        db.migrate().await.expect("migrating the database");

        let (storage, s3) = match self.storage {
            StorageKind::Local => {
                let secret = UrlSigningSecret::new([7u8; 32]).unwrap();
                (
                    Storage::local(dir.path().join("objects"), secret).unwrap(),
                    None,
                )
            }
            StorageKind::S3 => {
                let server = TestS3::start().expect("an S3 test server");
                let storage = Storage::s3(&S3Settings {
                    endpoint: Some(server.endpoint()),
                    region: server.region().to_string(),
                    bucket: server.bucket().to_string(),
                    access_key_id: server.access_key_id().to_string(),
                    secret_access_key: server.secret_access_key().to_string(),
                    virtual_hosted_style: false,
                    allow_http: true,
                })
                .unwrap();
                (storage, Some(server))
            }
        };

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut auth = self.auth;
        if self.smtp.is_some() && auth.public_url.is_none() {
            auth.public_url = Some(format!("http://{}", listener.local_addr().unwrap()));
        }
        let mut state = AppState::new(db, storage, auth);
        if let Some(limit) = self.voice_upload_max_bytes {
            state.voice_upload_max_bytes = limit;
        }
        if let Some(billing) = self.billing {
            state.billing = Arc::new(billing);
        }
        state.metrics_token = self.metrics_token;
        if let Some(models) = self.models {
            state.models = models;
        }
        state.mailer = self.smtp.map(|smtp| {
            Arc::new(resonance_service::mail::Mailer::new(&smtp).expect("valid SMTP settings"))
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let server = resonance_web::serve_with(listener, state.clone(), self.connections, async {
            let _ = stopped.await;
        })
        .unwrap();
        let workers = match self.engine {
            Some(engine) => test_worker(&state, engine).spawn("test-worker", 1),
            None => Vec::new(),
        };
        TestApp {
            base_url: format!("http://{}", server.addr),
            workers,
            state,
            db_url,
            db_kind: self.db,
            storage_kind: self.storage,
            _stop: stop,
            _postgres: postgres,
            s3,
            _dir: dir,
        }
    }
}

/// A running server and what it runs on; everything stops when it is dropped.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    /// The server's state: its database and storage, for checks past the API.
    pub state: AppState,
    /// The database's URL, for tests that reach past the server's database layer.
    pub db_url: String,
    pub db_kind: DbKind,
    pub storage_kind: StorageKind,
    workers: Vec<JoinHandle<()>>,
    _stop: oneshot::Sender<()>,
    _postgres: Option<TestPostgres>,
    s3: Option<TestS3>,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.workers.iter().for_each(JoinHandle::abort);
    }
}

/// A worker sharing `state`'s database, storage and new-job signal, on short leases, and
/// counting its timings in `/metrics` as the server's workers do.
pub fn test_worker(state: &AppState, engine: Arc<dyn SpeechEngine>) -> Worker {
    Worker {
        db: state.db.clone(),
        storage: state.storage.clone(),
        engine,
        new_jobs: state.new_jobs.clone(),
        events: state.job_events.clone(),
        cancellations: state.cancellations.clone(),
        settings: test_worker_settings(),
        record_timings: Some(resonance_web::metrics::record_synthesis),
    }
}

/// Leases short enough that a killed worker's job is re-run within a test.
pub fn test_worker_settings() -> WorkerSettings {
    WorkerSettings {
        lease: Duration::from_millis(600),
        heartbeat: Duration::from_millis(100),
        poll_interval: Duration::from_millis(20),
    }
}

/// A signed-in user: `client` sends their session cookie and this server's Origin.
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub session_token: String,
    pub client: reqwest::Client,
}

impl TestApp {
    /// SQLite and local storage unless changed.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            db: DbKind::Sqlite,
            storage: StorageKind::Local,
            auth: AuthSettings::default(),
            voice_upload_max_bytes: None,
            billing: None,
            engine: None,
            connections: ConnectionSettings::default(),
            metrics_token: None,
            smtp: None,
            models: None,
        }
    }

    /// Stops the S3 server, as an outage would; panics without one.
    pub fn stop_s3(&mut self) {
        drop(self.s3.take().expect("an app on S3 storage"));
    }

    pub fn db(&self) -> &Arc<dyn Database> {
        &self.state.db
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A client without credentials that sends this server's Origin, as its web app would.
    pub fn anonymous(&self) -> reqwest::Client {
        self.client_with(HeaderMap::new())
    }

    /// A client that sends `cookies` (a `Cookie` header value) and this server's Origin.
    pub fn cookie_client(&self, cookies: &str) -> reqwest::Client {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::COOKIE,
            HeaderValue::from_str(cookies).unwrap(),
        );
        self.client_with(headers)
    }

    /// A client that authenticates with `Authorization: Bearer <key>` and sends no Origin.
    pub fn key_client(&self, key: &str) -> reqwest::Client {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    fn client_with(&self, mut headers: HeaderMap) -> reqwest::Client {
        headers.insert(
            reqwest::header::ORIGIN,
            HeaderValue::from_str(&self.base_url).unwrap(),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// `POST /api/auth/sign-up`.
    pub async fn sign_up(&self, email: &str, password: &str) -> reqwest::Response {
        self.anonymous()
            .post(self.url("/api/auth/sign-up"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// `POST /api/auth/sign-in`.
    pub async fn sign_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.anonymous()
            .post(self.url("/api/auth/sign-in"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// Signs in (asserting success) and returns the user with a client for the new session.
    pub async fn signed_in(&self, email: &str, password: &str) -> TestUser {
        let response = self.sign_in(email, password).await;
        assert_eq!(response.status(), 200, "signing in {email}");
        let token = session_cookie(&response).expect("sign-in sets the session cookie");
        let me: Value = response.json().await.unwrap();
        TestUser {
            id: me["user"]["id"].as_str().unwrap().to_string(),
            email: email.to_string(),
            client: self.cookie_client(&format!("{SESSION_COOKIE}={token}")),
            session_token: token,
        }
    }

    /// Signs up a new account with [`PASSWORD`] and signs it in.
    pub async fn signed_up(&self, email: &str) -> TestUser {
        let response = self.sign_up(email, PASSWORD).await;
        assert_eq!(response.status(), 202, "signing up {email}");
        self.signed_in(email, PASSWORD).await
    }

    /// `POST /api/orgs` as `user`; returns the new organization's id.
    pub async fn create_org(&self, user: &TestUser, name: &str) -> String {
        let response = user
            .client
            .post(self.url("/api/orgs"))
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "creating organization {name}");
        let org: Value = response.json().await.unwrap();
        org["id"].as_str().unwrap().to_string()
    }

    /// `POST /api/orgs/{org}/activate` as `user`.
    pub async fn activate(&self, user: &TestUser, org: &str) {
        let response = user
            .client
            .post(self.url(&format!("/api/orgs/{org}/activate")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "activating organization {org}");
    }

    /// A new user who joins `org` with `role` ("admin" or "member") through an invite that
    /// `admin` creates; the organization is the new user's active one.
    pub async fn add_member(&self, admin: &TestUser, org: &str, role: &str) -> TestUser {
        let email = format!("{}-{role}@example.com", random_name());
        let member = self.signed_up(&email).await;
        self.join(admin, &member, org, role).await;
        member
    }

    /// `POST /api/orgs/{org}/invites` as `admin`; returns the invite's token.
    pub async fn invite(&self, admin: &TestUser, org: &str, role: &str) -> String {
        let response = admin
            .client
            .post(self.url(&format!("/api/orgs/{org}/invites")))
            .json(&json!({ "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "inviting a {role} to {org}");
        let invite: Value = response.json().await.unwrap();
        let token = invite["token"].as_str().unwrap().to_string();
        // Relative: the test server has no public URL. `lifecycle` opens the page.
        assert_eq!(
            invite["url"],
            format!("/invites/{token}"),
            "the invite link"
        );
        token
    }

    /// `member` joins `org` with `role` through an invite that `admin` creates, and acts in
    /// it from then on.
    pub async fn join(&self, admin: &TestUser, member: &TestUser, org: &str, role: &str) {
        let token = self.invite(admin, org, role).await;
        let response = member
            .client
            .post(self.url(&format!("/api/invites/{token}/accept")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "accepting an invite to {org}");
    }

    /// `POST /api/voices` as `admin`: clones a voice named `name` from 12 s of a
    /// speech-like WAV; returns the new voice's id.
    pub async fn upload_voice(&self, admin: &TestUser, name: &str) -> String {
        let samples = resonance_testkit::audio::speech_like(12.0, 0.5, 1);
        let wav = resonance_testkit::audio::encode_as(
            &samples,
            resonance_testkit::audio::UploadFormat::Wav,
        );
        let response = admin
            .client
            .post(self.url(&format!(
                "/api/voices?consent=true&name={name}&category=NARRATIVE&language=en-US"
            )))
            .header(reqwest::header::CONTENT_TYPE, "audio/wav")
            .body(wav)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "uploading voice {name}");
        let voice: Value = response.json().await.unwrap();
        voice["id"].as_str().unwrap().to_string()
    }

    /// `POST /api/orgs/{org}/api-keys` as `admin`; returns the full key.
    pub async fn create_api_key(&self, admin: &TestUser, org: &str) -> String {
        let response = admin
            .client
            .post(self.url(&format!("/api/orgs/{org}/api-keys")))
            .json(&json!({ "name": "test key" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "creating an API key");
        let key: Value = response.json().await.unwrap();
        key["key"].as_str().unwrap().to_string()
    }
}

/// The session token a response sets, if it sets one.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// A unique lowercase name, for emails and tokens.
pub fn random_name() -> String {
    resonance_domain::UserId::new().to_string()
}

/// The `error.code` of an API error response.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Runs an async test body once on each database backend.
#[macro_export]
macro_rules! on_both_databases {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::support::DbKind::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::support::DbKind::Postgres).await;
                }
            )*
        }
    };
}

/// More than one chunk: three sentences of about 200 characters.
pub fn long_text() -> String {
    let sentence = "This sentence is long enough that two of them never share a chunk of \
                    speech, because every chunk holds at most three hundred characters of \
                    text, and so the worker speaks them one after another here.";
    [sentence; 3].join(" ")
}

/// 16-bit little-endian PCM as samples.
pub fn pcm16(bytes: &[u8]) -> Vec<i16> {
    assert_eq!(bytes.len() % 2, 0, "whole samples");
    bytes
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect()
}

impl TestApp {
    /// A generation's stored WAV, through the API, as 16-bit samples.
    pub async fn stored_samples(&self, user: &TestUser, generation: &str) -> Vec<i16> {
        let response = user
            .client
            .get(self.url(&format!("/api/generations/{generation}/audio")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let wav = response.bytes().await.unwrap();
        hound::WavReader::new(std::io::Cursor::new(wav))
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect()
    }

    /// The characters of speech metered to `org` in the usage ledger.
    pub async fn characters_metered(&self, org: &str) -> u64 {
        let org = resonance_domain::OrgId::parse(org).unwrap();
        self.db()
            .list_usage_events(&org)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == resonance_db::UsageKind::TtsGeneration)
            .map(|e| e.quantity)
            .sum()
    }

    /// A generation's `status`, through the API.
    pub async fn generation_status(&self, user: &TestUser, generation: &str) -> String {
        let view: serde_json::Value = user
            .client
            .get(self.url(&format!("/api/generations/{generation}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        view["status"].as_str().unwrap().to_string()
    }

    /// Waits up to 10 s for a generation to reach `wanted`.
    pub async fn wait_for_status(&self, user: &TestUser, generation: &str, wanted: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.generation_status(user, generation).await;
            if status == wanted {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the generation is {status}, not {wanted}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
