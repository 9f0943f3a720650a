//! The voice routes on the real server with real accounts: SQLite with a local folder, and
//! PostgreSQL with an S3 server. Acme has an admin, a member and the instance operator as a
//! member; Other has its own admin.

use crate::support::{DbKind, TestApp, TestUser};
use bytes::Bytes;
use reqwest::StatusCode;
use resonance_audio::wav::encode_wav_pcm16;
use resonance_db::{Database, NewGeneration, Page, VoiceFilter};
use resonance_domain::{
    GenerationId, GenerationParams, GenerationText, Language, OrgId, VoiceCategory, VoiceId,
    VoiceName, VoiceOwner, VoiceVariant,
};
use resonance_service::voices::{self as library, Upload, VoiceDetails};
use resonance_storage::{KeyPrefix, ObjectKey, Storage};
use resonance_testkit::audio::{UploadFormat, encode_as, speech_like};
use resonance_web::voices;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
enum Setup {
    SqliteLocal,
    PostgresS3,
}

struct App {
    app: TestApp,
    acme: OrgId,
    other: OrgId,
    admin: TestUser,
    member: TestUser,
    operator: TestUser,
    other_admin: TestUser,
}

impl App {
    async fn start(setup: Setup, upload_limit: usize) -> Self {
        let builder = TestApp::builder().voice_upload_max_bytes(upload_limit);
        let app = match setup {
            Setup::SqliteLocal => builder.sqlite().local_storage(),
            Setup::PostgresS3 => builder.postgres().s3(),
        }
        .spawn()
        .await;
        // The first account is the instance operator.
        let operator = app.signed_up("operator@example.com").await;
        let admin = app.signed_up("admin@acme.example").await;
        let acme = app.create_org(&admin, "Acme").await;
        app.join(&admin, &operator, &acme, "member").await;
        let member = app.add_member(&admin, &acme, "member").await;
        let other_admin = app.signed_up("admin@other.example").await;
        let other = app.create_org(&other_admin, "Other").await;
        Self {
            acme: OrgId::parse(&acme).unwrap(),
            other: OrgId::parse(&other).unwrap(),
            app,
            admin,
            member,
            operator,
            other_admin,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str, who: Who) -> reqwest::RequestBuilder {
        let client = match who {
            Who::Anonymous => self.app.anonymous(),
            Who::Admin => self.admin.client.clone(),
            Who::Member => self.member.client.clone(),
            Who::Operator => self.operator.client.clone(),
            Who::OtherAdmin => self.other_admin.client.clone(),
        };
        client.request(method, self.app.url(path))
    }

    fn db(&self) -> &dyn Database {
        self.app.db().as_ref()
    }

    fn storage(&self) -> &Storage {
        &self.app.state.storage
    }

    fn get(&self, path: &str, who: Who) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path, who)
    }

    /// A raw upload with the fields as query parameters and the speaker's consent.
    fn upload(&self, query: &str, who: Who) -> reqwest::RequestBuilder {
        self.request(
            reqwest::Method::POST,
            &format!("/api/voices?consent=true&{query}"),
            who,
        )
    }

    /// Every stored voice row and voice object: both must stay empty after a refusal.
    async fn stored(&self) -> (usize, Vec<ObjectKey>) {
        let rows = self.db().all_voices().await.unwrap().len();
        let mut objects = self.storage().list(&KeyPrefix::everything()).await.unwrap();
        objects.sort();
        (rows, objects)
    }

    async fn system_voice(&self, name: &str, category: VoiceCategory) -> VoiceId {
        library::create_voice(
            self.db(),
            self.storage(),
            VoiceOwner::System,
            VoiceDetails {
                name: VoiceName::parse(name).unwrap(),
                description: None,
                category,
                language: Language::parse("en-GB").unwrap(),
                consent: None,
            },
            Upload {
                bytes: wav_speech(11.0).into(),
                content_type: "audio/wav".into(),
            },
            None,
        )
        .await
        .unwrap()
        .id
    }

    /// Makes every insert into the voices table fail, as a database failing half-way would.
    async fn refuse_voice_rows(&self) {
        match self.app.db_kind {
            DbKind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.app.db_url).await.unwrap();
                sqlx::query(
                    "CREATE TRIGGER refuse_voices BEFORE INSERT ON voices \
                     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                )
                .execute(&pool)
                .await
                .unwrap();
            }
            DbKind::Postgres => {
                let pool = sqlx::PgPool::connect(&self.app.db_url).await.unwrap();
                sqlx::query(
                    "CREATE FUNCTION refuse_voices() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
                )
                .execute(&pool)
                .await
                .unwrap();
                sqlx::query(
                    "CREATE TRIGGER refuse_voices BEFORE INSERT ON voices \
                     FOR EACH ROW EXECUTE FUNCTION refuse_voices()",
                )
                .execute(&pool)
                .await
                .unwrap();
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Who {
    Anonymous,
    /// Acme's admin.
    Admin,
    /// A plain member of Acme.
    Member,
    /// The instance operator, a plain member of Acme.
    Operator,
    /// Other's admin.
    OtherAdmin,
}

fn wav_speech(seconds: f64) -> Vec<u8> {
    encode_as(&speech_like(seconds, 0.5, 1), UploadFormat::Wav)
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body = json(response).await;
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

const FIELDS: &str = "name=Ada&category=NARRATIVE&language=en-GB&description=Warm";

/// Reads a stored voice sample: (channels, sample rate, seconds).
fn wav_shape(bytes: &[u8]) -> (u16, u32, f64) {
    let reader = hound::WavReader::new(bytes).unwrap();
    let spec = reader.spec();
    let seconds = f64::from(reader.duration()) / f64::from(spec.sample_rate);
    (spec.channels, spec.sample_rate, seconds)
}

async fn every_upload_format_becomes_a_24k_mono_voice(setup: Setup) {
    let app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    let admin = Who::Admin;
    for (seed, format) in UploadFormat::ALL.into_iter().enumerate() {
        let audio = encode_as(&speech_like(12.0, 0.5, seed as u32), format);
        let response = app
            .upload(
                &format!("name=Voice+{format:?}&category=PODCAST&language=en-us"),
                admin,
            )
            .header("content-type", format.content_type())
            .body(audio.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{format:?}");
        let voice = json(response).await;
        assert_eq!(voice["name"], format!("Voice {format:?}"));
        assert_eq!(voice["category"], "PODCAST");
        assert_eq!(voice["language"], "en-US");
        assert_eq!(voice["variant"], "CUSTOM");
        let id = VoiceId::parse(voice["id"].as_str().unwrap()).unwrap();

        let sample = app
            .storage()
            .get(&ObjectKey::custom_voice(&app.acme, &id))
            .await
            .unwrap();
        let (channels, rate, seconds) = wav_shape(&sample);
        assert_eq!((channels, rate), (1, 24_000), "{format:?}");
        // Encoders add or trim a few milliseconds of padding.
        assert!((seconds - 12.0).abs() < 0.15, "{format:?}: {seconds} s");
        let original = app
            .storage()
            .get(&ObjectKey::custom_voice_original(&app.acme, &id))
            .await
            .unwrap();
        assert_eq!(original, Bytes::from(audio), "{format:?}");

        let served = app
            .get(voice["audioUrl"].as_str().unwrap(), admin)
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), StatusCode::OK);
        assert_eq!(served.bytes().await.unwrap(), sample);
    }
    let listed = json(
        app.get("/api/voices?variant=CUSTOM", admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["total"], UploadFormat::ALL.len());
}

async fn the_web_form_uploads_a_voice(setup: Setup) {
    let app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    let form = |content_type: Option<&str>| {
        let mut part = reqwest::multipart::Part::bytes(wav_speech(10.5)).file_name("take.wav");
        if let Some(content_type) = content_type {
            part = part.mime_str(content_type).unwrap();
        }
        reqwest::multipart::Form::new()
            .text("name", "Form voice")
            .text("category", "CORPORATE")
            .text("language", "en-AU")
            .text("consent", "true")
            .part("file", part)
    };
    let refused = app
        .request(reqwest::Method::POST, "/api/voices", Who::Admin)
        .multipart(form(None))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(refused).await,
        (StatusCode::BAD_REQUEST, "MISSING_CONTENT_TYPE".into())
    );
    assert_eq!(app.stored().await, (0, vec![]));

    let created = app
        .request(reqwest::Method::POST, "/api/voices", Who::Admin)
        .multipart(form(Some("audio/wav")))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let voice = json(created).await;
    assert_eq!(voice["name"], "Form voice");
    assert_eq!(voice["category"], "CORPORATE");
    assert_eq!(voice["language"], "en-AU");
    assert_eq!(app.stored().await.0, 1);
}

async fn bad_uploads_are_refused_in_order_and_store_nothing(setup: Setup) {
    // Room for the 301 s clip (14.4 MB at 24 kHz).
    const LIMIT: usize = 16 * 1024 * 1024;
    let app = App::start(setup, LIMIT).await;
    let (admin, member) = (Who::Admin, Who::Member);
    let speech = wav_speech(12.0);
    let too_big = vec![1u8; LIMIT + 1];
    let short = wav_speech(9.0);
    let silent = encode_wav_pcm16(&vec![0.0; 16_000 * 12], 16_000);
    let too_long = encode_wav_pcm16(&speech_like(301.0, 0.5, 3)[..], 24_000);
    let long_name = format!("name={}", "n".repeat(101));
    let cases = vec![
        (
            "anonymous",
            Who::Anonymous,
            FIELDS,
            Some("audio/wav"),
            b"RIFF".to_vec(),
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        ),
        (
            "member, empty body",
            member,
            FIELDS,
            None,
            vec![],
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        ),
        (
            "empty body, no type",
            admin,
            FIELDS,
            None,
            vec![],
            StatusCode::BAD_REQUEST,
            "EMPTY_BODY",
        ),
        (
            "too big, no type",
            admin,
            FIELDS,
            None,
            too_big.clone(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "no type, garbage",
            admin,
            FIELDS,
            None,
            b"garbage".to_vec(),
            StatusCode::BAD_REQUEST,
            "MISSING_CONTENT_TYPE",
        ),
        (
            "garbage, bad name",
            admin,
            "name=&language=en-GB",
            Some("audio/wav"),
            b"garbage".to_vec(),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            "name too long",
            admin,
            long_name.as_str(),
            Some("audio/wav"),
            speech.clone(),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            "language without region",
            admin,
            "name=Ada&language=en",
            Some("audio/wav"),
            speech.clone(),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            "unknown category",
            admin,
            "name=Ada&category=ROBOT",
            Some("audio/wav"),
            speech.clone(),
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
        ),
        (
            "undecodable",
            admin,
            FIELDS,
            Some("audio/wav"),
            b"RIFF....WAVEjunk".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNDECODABLE_AUDIO",
        ),
        (
            "nine seconds",
            admin,
            FIELDS,
            Some("audio/wav"),
            short,
            StatusCode::UNPROCESSABLE_ENTITY,
            "AUDIO_TOO_SHORT",
        ),
        (
            "silence",
            admin,
            FIELDS,
            Some("audio/wav"),
            silent,
            StatusCode::UNPROCESSABLE_ENTITY,
            "AUDIO_SILENT",
        ),
        (
            "five minutes and a second",
            admin,
            FIELDS,
            Some("audio/wav"),
            too_long,
            StatusCode::UNPROCESSABLE_ENTITY,
            "AUDIO_TOO_LONG",
        ),
    ];
    for (label, who, query, content_type, body, status, code) in cases {
        let mut request = app.upload(query, who).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            error_code(response).await,
            (status, code.to_string()),
            "{label}"
        );
        assert_eq!(app.stored().await, (0, vec![]), "{label} stored something");
    }

    // A body without a declared length is cut off once it passes the limit.
    let chunks = (0..LIMIT / 65_536 + 2).map(|_| Ok::<_, std::io::Error>(vec![0u8; 65_536]));
    let response = app
        .upload(FIELDS, admin)
        .header("content-type", "audio/wav")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE".into())
    );
    assert_eq!(app.stored().await, (0, vec![]));
}

async fn a_failed_database_write_leaves_no_audio(setup: Setup) {
    let app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    // The row insert fails after the audio was stored.
    app.refuse_voice_rows().await;
    let response = app
        .upload(FIELDS, Who::Admin)
        .header("content-type", "audio/wav")
        .body(wav_speech(10.5))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL".into())
    );
    assert_eq!(app.stored().await, (0, vec![]));
}

async fn browse_filter_search_paginate_and_isolate(setup: Setup) {
    let app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    let aaron = app.system_voice("Aaron", VoiceCategory::Audiobook).await;
    app.system_voice("Walter", VoiceCategory::Narrative).await;
    let mut ours = Vec::new();
    for (name, who) in [
        ("Zed", Who::Admin),
        ("Ada", Who::Admin),
        ("Theirs", Who::OtherAdmin),
    ] {
        let response = app
            .upload(
                &format!("name={name}&category=NARRATIVE&language=en-US"),
                who,
            )
            .header("content-type", "audio/wav")
            .body(wav_speech(10.5))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        ours.push(json(response).await["id"].as_str().unwrap().to_string());
    }
    let theirs = ours.pop().unwrap();
    let member = Who::Member;
    let names = |body: &Value| -> Vec<String> {
        body["voices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    };
    let list = |query: &str| {
        let request = app.get(&format!("/api/voices{query}"), member);
        async move { json(request.send().await.unwrap()).await }
    };
    let all = list("").await;
    assert_eq!(names(&all), ["Aaron", "Ada", "Walter", "Zed"]);
    assert_eq!(all["total"], 4);
    assert_eq!(
        names(&list("?category=NARRATIVE").await),
        ["Ada", "Walter", "Zed"]
    );
    assert_eq!(names(&list("?variant=SYSTEM").await), ["Aaron", "Walter"]);
    assert_eq!(names(&list("?language=en-gb").await), ["Aaron", "Walter"]);
    assert_eq!(names(&list("?search=A").await), ["Aaron", "Ada", "Walter"]);
    let page = list("?limit=2&offset=1").await;
    assert_eq!(names(&page), ["Ada", "Walter"]);
    assert_eq!(page["total"], 4);
    let bad = app
        .get("/api/voices?category=ROBOT", member)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(bad).await,
        (StatusCode::BAD_REQUEST, "INVALID_QUERY".into())
    );

    let one = json(
        app.get(&format!("/api/voices/{}", ours[0]), member)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(one["name"], "Zed");
    let system = json(
        app.get(&format!("/api/voices/{aaron}"), member)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(system["variant"], "SYSTEM");

    // Another organization's voice does not exist for us, on every route.
    for path in [
        format!("/api/voices/{theirs}"),
        format!("/api/voices/{theirs}/audio"),
    ] {
        let response = app.get(&path, Who::Admin).send().await.unwrap();
        assert_eq!(
            error_code(response).await,
            (StatusCode::NOT_FOUND, "NOT_FOUND".into()),
            "{path}"
        );
    }
    let response = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/voices/{theirs}"),
            Who::Admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let still_there = app
        .db()
        .get_voice(&app.other, &VoiceId::parse(&theirs).unwrap())
        .await;
    assert!(still_there.is_ok());
    for path in [
        "/api/voices".to_string(),
        format!("/api/voices/{aaron}"),
        format!("/api/voices/{aaron}/audio"),
    ] {
        let response = app.get(&path, Who::Anonymous).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

async fn audio_serves_ranges_with_cache_headers(setup: Setup) {
    let app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    let system = app.system_voice("Aaron", VoiceCategory::Audiobook).await;
    let custom = app
        .upload(FIELDS, Who::Admin)
        .header("content-type", "audio/wav")
        .body(wav_speech(10.5))
        .send()
        .await
        .unwrap();
    let custom = json(custom).await["id"].as_str().unwrap().to_string();
    for (id, cache_control) in [
        (system.to_string(), "public, max-age=86400"),
        (custom, "private, max-age=3600"),
    ] {
        let path = format!("/api/voices/{id}/audio");
        let full = app.get(&path, Who::Member).send().await.unwrap();
        assert_eq!(full.status(), StatusCode::OK);
        assert_eq!(full.headers()["cache-control"], cache_control);
        assert_eq!(full.headers()["content-type"], "audio/wav");
        let full = full.bytes().await.unwrap();
        let part = app
            .get(&path, Who::Member)
            .header("range", "bytes=100-199")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.headers()["cache-control"], cache_control);
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes 100-199/{}", full.len()).as_str()
        );
        assert_eq!(part.bytes().await.unwrap(), full.slice(100..200));
    }
}

async fn deleting_removes_row_and_audio_and_keeps_history(setup: Setup) {
    let app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    let created = app
        .upload(FIELDS, Who::Admin)
        .header("content-type", "audio/wav")
        .body(wav_speech(10.5))
        .send()
        .await
        .unwrap();
    let id = VoiceId::parse(json(created).await["id"].as_str().unwrap()).unwrap();
    let generation = app
        .db()
        .create_generation(&NewGeneration {
            id: GenerationId::new(),
            org_id: app.acme.clone(),
            voice_id: id.clone(),
            text: GenerationText::parse("Hello there.").unwrap(),
            params: GenerationParams::default(),
            seed: None,
        })
        .await
        .unwrap();
    let system = app.system_voice("Aaron", VoiceCategory::Audiobook).await;
    let delete = |id: String, who| {
        app.request(reqwest::Method::DELETE, &format!("/api/voices/{id}"), who)
            .send()
    };

    let refused = delete(id.to_string(), Who::Member).await.unwrap();
    assert_eq!(
        error_code(refused).await,
        (StatusCode::FORBIDDEN, "FORBIDDEN".into())
    );
    let refused = delete(system.to_string(), Who::Admin).await.unwrap();
    assert_eq!(
        error_code(refused).await,
        (StatusCode::FORBIDDEN, "FORBIDDEN".into())
    );
    assert_eq!(app.stored().await.0, 2);

    let deleted = delete(id.to_string(), Who::Admin).await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let history = app
        .db()
        .get_generation(&app.acme, &generation.id)
        .await
        .unwrap();
    assert_eq!(
        (history.voice_id, history.voice_name.as_str()),
        (None, "Ada")
    );
    assert_eq!(
        app.stored().await,
        (1, vec![ObjectKey::system_voice(&system)])
    );

    let deleted = delete(system.to_string(), Who::Operator).await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.stored().await, (0, vec![]));
    let gone = delete(system.to_string(), Who::Operator).await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

async fn reconcile_removes_orphans_both_ways(setup: Setup) {
    let app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    let kept = app.system_voice("Kept", VoiceCategory::General).await;
    let lost = app.system_voice("Lost audio", VoiceCategory::General).await;
    app.storage()
        .delete(&ObjectKey::system_voice(&lost))
        .await
        .unwrap();
    let stray = ObjectKey::custom_voice(&app.acme, &VoiceId::new());
    app.storage()
        .put(&stray, Bytes::from_static(b"left by a crash"), "audio/wav")
        .await
        .unwrap();
    let db = app.db();

    let young = library::reconcile(
        db,
        app.storage(),
        std::time::Duration::from_secs(3600),
        true,
    )
    .await
    .unwrap();
    assert!(
        young.objects_without_rows.is_empty(),
        "within the grace period"
    );
    let report = library::reconcile(db, app.storage(), std::time::Duration::ZERO, true)
        .await
        .unwrap();
    let lost_rows: Vec<_> = report
        .rows_without_objects
        .iter()
        .map(|v| v.id.clone())
        .collect();
    assert_eq!(lost_rows, vec![lost.clone()]);
    assert_eq!(report.objects_without_rows, vec![stray.clone()]);
    assert_eq!(app.stored().await.0, 2, "a dry run removes nothing");

    let removed = library::reconcile(db, app.storage(), std::time::Duration::ZERO, false)
        .await
        .unwrap();
    assert_eq!(removed, report);
    assert_eq!(
        app.stored().await,
        (1, vec![ObjectKey::system_voice(&kept)])
    );
    let visible = db
        .list_voices(
            &app.acme,
            &VoiceFilter {
                variant: Some(VoiceVariant::System),
                ..Default::default()
            },
            Page::default(),
        )
        .await
        .unwrap();
    assert_eq!(visible.total, 1);
}

async fn a_storage_outage_stores_nothing(setup: Setup) {
    let mut app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    app.app.stop_s3();
    let response = app
        .upload(FIELDS, Who::Admin)
        .header("content-type", "audio/wav")
        .body(wav_speech(10.5))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response).await,
        (StatusCode::BAD_GATEWAY, "STORAGE_UNAVAILABLE".into())
    );
    assert_eq!(app.db().all_voices().await.unwrap().len(), 0);
}

macro_rules! on_both_setups {
    ($($test:ident),* $(,)?) => {
        mod sqlite_local {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Setup::SqliteLocal).await;
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Setup::PostgresS3).await;
                }
            )*
        }
    };
}

/// Admins edit their organization's voices and the operator the system voices; the audio
/// stays, bad fields get a 422 naming them, and nobody else changes anything.
async fn editing_renames_and_redescribes_a_voice_for_its_owners_only(setup: Setup) {
    let app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    let created = app
        .upload(FIELDS, Who::Admin)
        .header("content-type", "audio/wav")
        .body(wav_speech(10.5))
        .send()
        .await
        .unwrap();
    let created = json(created).await;
    let id = created["id"].as_str().unwrap().to_string();
    let system = app.system_voice("Aaron", VoiceCategory::Audiobook).await;
    let edit = |id: &str, who, body: Value| {
        app.request(reqwest::Method::PATCH, &format!("/api/voices/{id}"), who)
            .json(&body)
            .send()
    };
    let rename = json!({ "name": "Ada Lovelace", "description": "", "language": "en-US" });

    for (who, status) in [
        (Who::Anonymous, StatusCode::UNAUTHORIZED),
        (Who::Member, StatusCode::FORBIDDEN),
        (Who::OtherAdmin, StatusCode::NOT_FOUND),
    ] {
        let refused = edit(&id, who, rename.clone()).await.unwrap();
        assert_eq!(refused.status(), status);
    }
    let refused = edit(&system.to_string(), Who::Admin, rename.clone())
        .await
        .unwrap();
    assert_eq!(
        error_code(refused).await,
        (StatusCode::FORBIDDEN, "FORBIDDEN".into())
    );
    for (body, field) in [
        (json!({ "name": " " }), "name"),
        (json!({ "category": "OPERA" }), "category"),
        (json!({ "language": "english" }), "language"),
    ] {
        let refused = edit(&id, Who::Admin, body).await.unwrap();
        let status = refused.status();
        let error = json(refused).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["error"]["code"], "INVALID_FIELD");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{message}");
    }
    let refused = edit(&id, Who::Admin, json!({ "nickname": "Ada" }))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let edited = json(edit(&id, Who::Admin, rename).await.unwrap()).await;
    assert_eq!(edited["name"], "Ada Lovelace");
    assert_eq!(edited["description"], Value::Null);
    assert_eq!(edited["language"], "en-US");
    assert_eq!(
        edited["category"], created["category"],
        "absent fields stay"
    );
    let fetched = json(
        app.get(&format!("/api/voices/{id}"), Who::Member)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fetched["name"], "Ada Lovelace");
    let audio = app
        .get(&format!("/api/voices/{id}/audio"), Who::Member)
        .send()
        .await
        .unwrap();
    assert_eq!(audio.status(), StatusCode::OK, "the audio stays");

    let edited = edit(
        &system.to_string(),
        Who::Operator,
        json!({ "description": "The house narrator", "category": "NARRATIVE" }),
    )
    .await
    .unwrap();
    let edited = json(edited).await;
    assert_eq!(edited["name"], "Aaron");
    assert_eq!(edited["description"], "The house narrator");
    assert_eq!(edited["category"], "NARRATIVE");
}

/// A voice is cloned only with `consent=true`, as a query parameter or a form field; without
/// it the upload is refused with a sentence saying so, and nothing is stored. Who confirmed
/// it and when are kept with the voice.
async fn cloning_needs_the_speakers_consent(setup: Setup) {
    let app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    let form = |consent: Option<&str>| {
        let part = reqwest::multipart::Part::bytes(wav_speech(10.5))
            .file_name("take.wav")
            .mime_str("audio/wav")
            .unwrap();
        let form = reqwest::multipart::Form::new()
            .text("name", "Form voice")
            .part("file", part);
        match consent {
            Some(consent) => form.text("consent", consent.to_string()),
            None => form,
        }
    };
    let raw = |query: &str| {
        app.request(
            reqwest::Method::POST,
            &format!("/api/voices?{query}"),
            Who::Admin,
        )
        .header("content-type", "audio/wav")
        .body(wav_speech(10.5))
    };
    let refusals = [
        ("no consent", raw(FIELDS)),
        ("consent=false", raw(&format!("{FIELDS}&consent=false"))),
        (
            "a form without consent",
            app.request(reqwest::Method::POST, "/api/voices", Who::Admin)
                .multipart(form(None)),
        ),
        (
            "a form with consent=no",
            app.request(reqwest::Method::POST, "/api/voices", Who::Admin)
                .multipart(form(Some("no"))),
        ),
    ];
    for (label, request) in refusals {
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{label}"
        );
        let body = json(response).await;
        assert_eq!(body["error"]["code"], "CONSENT_REQUIRED", "{label}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Cloning a voice needs the speaker's consent")
                && message.ends_with('.'),
            "{label}: {message}"
        );
        assert_eq!(app.stored().await, (0, vec![]), "{label} stored something");
    }

    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for request in [
        raw(&format!("{FIELDS}&consent=true")),
        app.request(reqwest::Method::POST, "/api/voices", Who::Admin)
            .multipart(form(Some("true"))),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let voice = json(response).await;
        assert_eq!(voice["consent"]["by"], app.admin.id, "{voice}");
        let at = time::OffsetDateTime::parse(
            voice["consent"]["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!(at >= before, "{voice}");
    }
    assert_eq!(app.stored().await.0, 2);
}

/// `PUT /api/voices/{id}/sample`: the owners replace a voice's recording, checked like a
/// new voice's and with consent again; the new sample is stored under keys of its own, the
/// old one and its cached conditioning go, and a refused upload changes nothing.
async fn replacing_a_sample_swaps_the_audio_and_drops_the_old_conditioning(setup: Setup) {
    let app = App::start(setup, voices::DEFAULT_UPLOAD_MAX_BYTES).await;
    let created = app
        .upload(FIELDS, Who::Admin)
        .header("content-type", "audio/wav")
        .body(wav_speech(10.5))
        .send()
        .await
        .unwrap();
    let created = json(created).await;
    let id = VoiceId::parse(created["id"].as_str().unwrap()).unwrap();
    // What an engine cached from the first sample.
    app.storage()
        .put(
            &ObjectKey::voice_conditionals(&id),
            Bytes::from_static(b"conditioning"),
            "application/octet-stream",
        )
        .await
        .unwrap();
    let system = app.system_voice("Aaron", VoiceCategory::Audiobook).await;
    let before = app.stored().await;
    let replace = |id: &VoiceId, query: &str, who: Who, body: Vec<u8>| {
        app.request(
            reqwest::Method::PUT,
            &format!("/api/voices/{id}/sample{query}"),
            who,
        )
        .header("content-type", "audio/wav")
        .body(body)
        .send()
    };
    // Refused before the body is read, so a token body is enough.
    let refusals = [
        (
            "a member",
            replace(&id, "?consent=true", Who::Member, b"RIFF".to_vec()).await,
            (StatusCode::FORBIDDEN, "FORBIDDEN"),
        ),
        (
            "another organization's admin",
            replace(&id, "?consent=true", Who::OtherAdmin, b"RIFF".to_vec()).await,
            (StatusCode::NOT_FOUND, "NOT_FOUND"),
        ),
        (
            "an admin changing a system voice",
            replace(&system, "?consent=true", Who::Admin, b"RIFF".to_vec()).await,
            (StatusCode::FORBIDDEN, "FORBIDDEN"),
        ),
        (
            "no consent",
            replace(&id, "", Who::Admin, wav_speech(11.0)).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "CONSENT_REQUIRED"),
        ),
        (
            "nine seconds",
            replace(&id, "?consent=true", Who::Admin, wav_speech(9.0)).await,
            (StatusCode::UNPROCESSABLE_ENTITY, "AUDIO_TOO_SHORT"),
        ),
    ];
    for (label, response, (status, code)) in refusals {
        let response = response.unwrap();
        assert_eq!(error_code(response).await, (status, code.into()), "{label}");
        assert_eq!(
            app.stored().await,
            before,
            "{label} changed the stored objects"
        );
    }

    let recording = wav_speech(11.0);
    let form = reqwest::multipart::Form::new()
        .text("consent", "true")
        .part(
            "file",
            reqwest::multipart::Part::bytes(recording.clone())
                .file_name("new take.wav")
                .mime_str("audio/wav")
                .unwrap(),
        );
    let response = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/voices/{id}/sample"),
            Who::Admin,
        )
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let replaced = json(response).await;
    assert_eq!(
        (&replaced["id"], &replaced["name"], &replaced["description"]),
        (&created["id"], &created["name"], &created["description"])
    );
    assert_eq!(replaced["consent"]["by"], app.admin.id);
    let audio_url = replaced["audioUrl"].as_str().unwrap();
    let sample = audio_url
        .strip_prefix(&format!("/api/voices/{id}/audio?sample="))
        .unwrap_or_else(|| panic!("{audio_url}"));
    let name = resonance_storage::SampleName {
        voice: id.clone(),
        sample: Some(resonance_domain::VoiceSampleId::parse(sample).unwrap()),
    };
    let sample_key = ObjectKey::custom_voice_sample(&app.acme, &name);
    let mut expected = vec![
        sample_key.clone(),
        ObjectKey::custom_voice_sample_original(&app.acme, &name),
        ObjectKey::system_voice(&system),
    ];
    expected.sort();
    assert_eq!(app.stored().await, (2, expected));
    assert_eq!(
        app.storage()
            .get(&ObjectKey::custom_voice_sample_original(&app.acme, &name))
            .await
            .unwrap(),
        Bytes::from(recording)
    );
    let served = app.get(audio_url, Who::Member).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let (_, _, seconds) = wav_shape(&served.bytes().await.unwrap());
    assert!((seconds - 11.0).abs() < 0.1, "{seconds} s");
    let listed = json(
        app.get(&format!("/api/voices/{id}"), Who::Member)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["audioUrl"], audio_url);

    let system_replaced = replace(&system, "?consent=true", Who::Operator, wav_speech(12.0))
        .await
        .unwrap();
    assert_eq!(system_replaced.status(), StatusCode::OK);
    assert!(
        !app.stored()
            .await
            .1
            .contains(&ObjectKey::system_voice(&system))
    );

    let deleted = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/voices/{id}"),
            Who::Admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (rows, objects) = app.stored().await;
    assert_eq!(rows, 1);
    assert!(
        objects
            .iter()
            .all(|key| !key.as_str().contains(id.as_str())),
        "{objects:?}"
    );
}

on_both_setups!(
    replacing_a_sample_swaps_the_audio_and_drops_the_old_conditioning,
    cloning_needs_the_speakers_consent,
    editing_renames_and_redescribes_a_voice_for_its_owners_only,
    every_upload_format_becomes_a_24k_mono_voice,
    the_web_form_uploads_a_voice,
    bad_uploads_are_refused_in_order_and_store_nothing,
    a_failed_database_write_leaves_no_audio,
    browse_filter_search_paginate_and_isolate,
    audio_serves_ranges_with_cache_headers,
    deleting_removes_row_and_audio_and_keeps_history,
    reconcile_removes_orphans_both_ways,
);

/// Only the S3 setup has a server to take away.
#[tokio::test]
async fn a_storage_outage_stores_nothing_on_s3() {
    a_storage_outage_stores_nothing(Setup::PostgresS3).await;
}
