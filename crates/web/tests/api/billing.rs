//! Usage metering, plans and quotas, and Polar billing on a real server with a real
//! database, against a fake Polar server that the tests start and can take down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use resonance_db::{NewGeneration, Plan, UsageKind};
use resonance_domain::{GenerationId, GenerationParams, GenerationText, OrgId};
use resonance_service::billing::outbox::OutboxSettings;
use resonance_service::billing::polar::{self, PolarSettings};
use resonance_service::billing::{Billing, BillingSettings, Period, QuotaExceeded, QuotaLimit};
use resonance_storage::KeyPrefix;
use resonance_testkit::audio::{UploadFormat, encode_as, speech_like};
use resonance_web::ApiError;
use resonance_web::billing;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::support::{DbKind, TestApp, TestUser, error_code};

const POLAR_TOKEN: &str = "polar_oat_test";
const PRODUCT: &str = "prod_tts";
const LEASE: Duration = Duration::from_secs(60);

fn wav_speech(seed: u32) -> Vec<u8> {
    encode_as(&speech_like(11.0, 0.5, seed), UploadFormat::Wav)
}

/// `POST /api/voices` as `user` with a fresh recording.
async fn upload_voice(app: &TestApp, user: &TestUser, name: &str, seed: u32) -> reqwest::Response {
    user.client
        .post(app.url(&format!("/api/voices?consent=true&name={name}")))
        .header("content-type", "audio/wav")
        .body(wav_speech(seed))
        .send()
        .await
        .unwrap()
}

async fn get_json(app: &TestApp, user: &TestUser, path: &str) -> Value {
    let response = user.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

/// A signed-in admin and the organization they act in.
async fn admin_and_org(app: &TestApp) -> (TestUser, OrgId) {
    let admin = app
        .signed_up(&format!("{}@example.com", crate::support::random_name()))
        .await;
    let org = app.create_org(&admin, "Acme").await;
    (admin, OrgId::parse(&org).unwrap())
}

/// Queues a generation of `text` for `org` with a SYSTEM voice, claims it and, with
/// `complete`, finishes it (which charges its characters).
async fn run_generation(app: &TestApp, org: &OrgId, text: &str, complete: bool) {
    let db = app.db();
    let voice = match db
        .list_voices(org, &Default::default(), Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .next()
    {
        Some(voice) => voice,
        None => db
            .create_voice(&resonance_db::NewVoice {
                id: resonance_domain::VoiceId::new(),
                owner: resonance_domain::VoiceOwner::System,
                name: resonance_domain::VoiceName::parse("Narrator").unwrap(),
                description: None,
                category: Default::default(),
                language: Default::default(),
                object_key: None,
                consent: None,
            })
            .await
            .unwrap(),
    };
    let generation = db
        .create_generation(&NewGeneration {
            id: GenerationId::new(),
            org_id: org.clone(),
            voice_id: voice.id,
            text: GenerationText::parse(text).unwrap(),
            params: GenerationParams::default(),
            seed: None,
        })
        .await
        .unwrap();
    let claimed = db.claim_generation("worker", LEASE).await.unwrap().unwrap();
    assert_eq!(claimed.id, generation.id);
    if complete {
        db.complete_generation(&generation.id, "worker", "generations/x")
            .await
            .unwrap()
            .unwrap();
    }
}

/// A server on `db` whose organizations all have the default plan `plan`.
async fn app_on_plan(db: DbKind, plan: Plan) -> TestApp {
    TestApp::builder()
        .db(db)
        .billing(Billing::new(BillingSettings {
            default_plan: plan,
            ..Default::default()
        }))
        .spawn()
        .await
}

fn quota_of(error: ApiError) -> QuotaExceeded {
    match error {
        ApiError::QuotaExceeded(quota) => quota,
        other => panic!("expected QUOTA_EXCEEDED, got {other:?}"),
    }
}

async fn usage_reports_the_period_the_plan_and_every_day(db: DbKind) {
    let plan = Plan {
        characters_per_month: Some(1000),
        voice_slots: Some(2),
        max_concurrent_jobs: Some(3),
    };
    let app = app_on_plan(db, plan).await;
    let (admin, org) = admin_and_org(&app).await;
    assert_eq!(upload_voice(&app, &admin, "Mine", 1).await.status(), 201);
    run_generation(&app, &org, "Hello there, world.", true).await;
    run_generation(&app, &org, "Still running.", false).await;

    let usage = get_json(&app, &admin, "/api/usage").await;
    let period = Period::containing(OffsetDateTime::now_utc());
    let rfc3339 = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert_eq!(usage["period"]["start"], rfc3339(period.start));
    assert_eq!(usage["period"]["end"], rfc3339(period.end));
    assert_eq!(usage["characters"], json!({ "used": 19, "limit": 1000 }));
    assert_eq!(usage["voices"], json!({ "used": 1, "limit": 2 }));
    assert_eq!(usage["concurrentJobs"], json!({ "used": 1, "limit": 3 }));
    let daily = usage["daily"].as_array().unwrap();
    assert_eq!(daily.len(), period.days().count());
    let today = OffsetDateTime::now_utc().date().to_string();
    for day in daily {
        let expected = if day["date"] == today.as_str() {
            json!({ "date": today, "characters": 19, "voiceCreations": 1 })
        } else {
            json!({ "date": day["date"], "characters": 0, "voiceCreations": 0 })
        };
        assert_eq!(day, &expected);
    }
    assert!(usage.get("meters").is_none(), "no Polar, no meters");

    let status = get_json(&app, &admin, "/api/billing/status").await;
    assert_eq!(
        status,
        json!({
            "billingEnabled": false,
            "hasActiveSubscription": false,
            "customerId": null,
            "estimatedCostCents": 0,
        })
    );
    let response = app
        .anonymous()
        .get(app.url("/api/usage"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn a_voice_over_the_slots_is_refused_and_nothing_is_stored(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let (admin, org) = admin_and_org(&app).await;
    app.db()
        .set_org_plan(
            &org,
            &Plan {
                voice_slots: Some(1),
                ..Plan::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(upload_voice(&app, &admin, "First", 1).await.status(), 201);
    let objects = app
        .state
        .storage
        .list(&KeyPrefix::everything())
        .await
        .unwrap();

    let refused = upload_voice(&app, &admin, "Second", 2).await;
    assert_eq!(refused.status(), 402);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "QUOTA_EXCEEDED");
    assert_eq!(body["error"]["limit"], "voice_slots");
    assert_eq!(body["error"]["used"], 1);
    assert_eq!(body["error"]["allowed"], 1);
    assert_eq!(body["error"]["resetsAt"], Value::Null);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("voice slots"),
        "{body}"
    );

    assert_eq!(app.db().custom_voice_count(&org).await.unwrap(), 1);
    assert_eq!(app.db().list_usage_events(&org).await.unwrap().len(), 1);
    assert_eq!(
        app.state
            .storage
            .list(&KeyPrefix::everything())
            .await
            .unwrap(),
        objects,
        "the refused upload stored no audio"
    );

    // Another organization has its own slots.
    let (other_admin, _) = admin_and_org(&app).await;
    assert_eq!(
        upload_voice(&app, &other_admin, "Theirs", 3).await.status(),
        201
    );
}

async fn parallel_voice_creations_are_each_charged_once(db: DbKind) {
    const N: u32 = 6;
    let app = Arc::new(TestApp::builder().db(db).spawn().await);
    let (admin, org) = admin_and_org(&app).await;
    let admin = Arc::new(admin);
    let uploads: Vec<_> = (0..N)
        .map(|n| {
            let (app, admin) = (Arc::clone(&app), Arc::clone(&admin));
            tokio::spawn(async move {
                upload_voice(&app, &admin, &format!("Voice{n}"), n)
                    .await
                    .status()
            })
        })
        .collect();
    for upload in uploads {
        assert_eq!(upload.await.unwrap(), 201);
    }
    let usage = app.db().list_usage_events(&org).await.unwrap();
    assert_eq!(usage.len(), N as usize);
    assert!(usage.iter().all(|e| e.kind == UsageKind::VoiceCreation));
    assert_eq!(usage.iter().map(|e| e.quantity).sum::<u64>(), u64::from(N));
    let usage_body = get_json(&app, &admin, "/api/usage").await;
    assert_eq!(usage_body["voices"]["used"], N);
}

async fn generations_are_checked_against_jobs_and_the_monthly_characters(db: DbKind) {
    let app = TestApp::builder().db(db).spawn().await;
    let (_, org) = admin_and_org(&app).await;
    app.db()
        .set_org_plan(
            &org,
            &Plan {
                characters_per_month: Some(30),
                voice_slots: None,
                max_concurrent_jobs: Some(1),
            },
        )
        .await
        .unwrap();
    billing::ensure_can_generate(&app.state, &org, 30)
        .await
        .unwrap();
    let too_long = quota_of(
        billing::ensure_can_generate(&app.state, &org, 31)
            .await
            .unwrap_err(),
    );
    assert_eq!(too_long.limit, QuotaLimit::CharactersPerMonth);

    run_generation(&app, &org, "Hello there.", false).await;
    let busy = quota_of(
        billing::ensure_can_generate(&app.state, &org, 1)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        busy,
        QuotaExceeded {
            limit: QuotaLimit::MaxConcurrentJobs,
            used: 1,
            allowed: 1,
            requested: 1,
            resets_at: None,
        }
    );

    let running = app
        .db()
        .list_generations(&org, &Default::default(), Default::default())
        .await
        .unwrap()
        .items
        .remove(0);
    app.db()
        .complete_generation(&running.id, "worker", "generations/x")
        .await
        .unwrap()
        .unwrap();
    // "Hello there." used 12 of the 30 characters.
    billing::ensure_can_generate(&app.state, &org, 18)
        .await
        .unwrap();
    let over = quota_of(
        billing::ensure_can_generate(&app.state, &org, 19)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        over,
        QuotaExceeded {
            limit: QuotaLimit::CharactersPerMonth,
            used: 12,
            allowed: 30,
            requested: 19,
            resets_at: Some(Period::containing(OffsetDateTime::now_utc()).end),
        }
    );

    // Another organization follows the (unlimited) default plan.
    let other = app
        .db()
        .create_organization(&resonance_domain::OrganizationName::parse("Other").unwrap())
        .await
        .unwrap()
        .id;
    billing::ensure_can_generate(&app.state, &other, 100_000)
        .await
        .unwrap();
}

async fn the_character_quota_starts_again_in_the_next_period(db: DbKind) {
    // Milliseconds the test clock runs ahead of the real one.
    let ahead = Arc::new(AtomicI64::new(0));
    let clock = {
        let ahead = Arc::clone(&ahead);
        Arc::new(move || {
            OffsetDateTime::now_utc() + time::Duration::milliseconds(ahead.load(Ordering::SeqCst))
        })
    };
    let plan = Plan {
        characters_per_month: Some(20),
        ..Plan::default()
    };
    let app = TestApp::builder()
        .db(db)
        .billing(
            Billing::new(BillingSettings {
                default_plan: plan,
                ..Default::default()
            })
            .with_clock(clock),
        )
        .spawn()
        .await;
    let (admin, org) = admin_and_org(&app).await;
    run_generation(&app, &org, "Hello there.", true).await;
    let refused = quota_of(
        billing::ensure_can_generate(&app.state, &org, 10)
            .await
            .unwrap_err(),
    );
    let next_period = refused.resets_at.unwrap();
    assert_eq!(
        next_period,
        Period::containing(OffsetDateTime::now_utc()).end
    );

    let until_next = next_period - OffsetDateTime::now_utc();
    ahead.store(
        until_next.whole_milliseconds() as i64 + 1000,
        Ordering::SeqCst,
    );
    billing::ensure_can_generate(&app.state, &org, 20)
        .await
        .unwrap();
    let usage = get_json(&app, &admin, "/api/usage").await;
    assert_eq!(usage["characters"], json!({ "used": 0, "limit": 20 }));
    assert_eq!(
        usage["period"]["start"],
        next_period
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
}

/// The SYSTEM voice "Announcer", whose audio is stored; created the first time.
async fn announcer(app: &TestApp) -> resonance_db::Voice {
    match app
        .db()
        .system_voices()
        .await
        .unwrap()
        .into_iter()
        .find(|voice| voice.name.as_str() == "Announcer")
    {
        Some(voice) => voice,
        None => app
            .db()
            .create_voice(&resonance_db::NewVoice {
                id: resonance_domain::VoiceId::new(),
                owner: resonance_domain::VoiceOwner::System,
                name: resonance_domain::VoiceName::parse("Announcer").unwrap(),
                description: None,
                category: Default::default(),
                language: Default::default(),
                object_key: Some("voices/system/announcer".into()),
                consent: None,
            })
            .await
            .unwrap(),
    }
}

/// `POST /api/generations` as `user` with [`announcer`].
async fn request_generation(app: &TestApp, user: &TestUser, text: &str) -> reqwest::Response {
    let voice = announcer(app).await;
    user.client
        .post(app.url("/api/generations"))
        .json(&json!({ "text": text, "voiceId": voice.id }))
        .send()
        .await
        .unwrap()
}

/// Sends `n` requests at once (`request(i)`) and returns their statuses and bodies.
async fn in_parallel<F, Fut>(n: usize, request: F) -> Vec<(u16, Value)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response> + Send + 'static,
{
    let requests: Vec<_> = (0..n)
        .map(|i| {
            let response = request(i);
            tokio::spawn(async move {
                let response = response.await;
                let status = response.status().as_u16();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    answers
}

/// How many answers have `status`; every refusal must be `QUOTA_EXCEEDED` over `limit`.
fn count_admitted(answers: &[(u16, Value)], status: u16, limit: &str) -> usize {
    for (code, body) in answers.iter().filter(|(code, _)| *code != status) {
        assert_eq!(*code, 402, "{body}");
        assert_eq!(body["error"]["code"], "QUOTA_EXCEEDED", "{body}");
        assert_eq!(body["error"]["limit"], limit, "{body}");
    }
    answers.iter().filter(|(code, _)| *code == status).count()
}

async fn parallel_uploads_create_no_more_voices_than_the_slots(db: DbKind) {
    let app = Arc::new(TestApp::builder().db(db).spawn().await);
    let (admin, org) = admin_and_org(&app).await;
    app.db()
        .set_org_plan(
            &org,
            &Plan {
                voice_slots: Some(1),
                ..Plan::default()
            },
        )
        .await
        .unwrap();
    let admin = Arc::new(admin);
    let answers = in_parallel(10, |n| {
        let (app, admin) = (Arc::clone(&app), Arc::clone(&admin));
        async move { upload_voice(&app, &admin, &format!("Voice{n}"), n as u32).await }
    })
    .await;
    assert_eq!(count_admitted(&answers, 201, "voice_slots"), 1);
    assert_eq!(app.db().custom_voice_count(&org).await.unwrap(), 1);
    assert_eq!(app.db().list_usage_events(&org).await.unwrap().len(), 1);
    let stored = app
        .state
        .storage
        .list(&KeyPrefix::everything())
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        2,
        "the kept voice's sample and upload, nothing of the refused ones: {stored:?}"
    );
}

async fn parallel_generations_count_queued_characters_against_the_month(db: DbKind) {
    let app = Arc::new(
        app_on_plan(
            db,
            Plan {
                characters_per_month: Some(100),
                ..Plan::default()
            },
        )
        .await,
    );
    let (admin, org) = admin_and_org(&app).await;
    let admin = Arc::new(admin);
    let fifty_characters = "Fifty characters of text, exactly this many here..";
    assert_eq!(fifty_characters.chars().count(), 50);
    announcer(&app).await;
    let answers = in_parallel(10, |_| {
        let (app, admin) = (Arc::clone(&app), Arc::clone(&admin));
        async move { request_generation(&app, &admin, fifty_characters).await }
    })
    .await;
    assert_eq!(
        count_admitted(&answers, 202, "characters_per_month"),
        2,
        "queued jobs count before they run"
    );
    let listed = app
        .db()
        .list_generations(&org, &Default::default(), Default::default())
        .await
        .unwrap();
    assert_eq!(listed.total, 2);

    // A cancelled job gives its characters back.
    let cancelled = admin
        .client
        .post(app.url(&format!("/api/generations/{}/cancel", listed.items[0].id)))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    assert_eq!(
        request_generation(&app, &admin, fifty_characters)
            .await
            .status(),
        202
    );
    let over = request_generation(&app, &admin, "One more.").await;
    assert_eq!(over.status(), 402);
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["error"]["used"], 100);
}

async fn parallel_generations_hold_the_concurrent_jobs(db: DbKind) {
    let app = Arc::new(
        app_on_plan(
            db,
            Plan {
                max_concurrent_jobs: Some(1),
                ..Plan::default()
            },
        )
        .await,
    );
    let (admin, org) = admin_and_org(&app).await;
    let admin = Arc::new(admin);
    announcer(&app).await;
    let answers = in_parallel(10, |n| {
        let (app, admin) = (Arc::clone(&app), Arc::clone(&admin));
        async move { request_generation(&app, &admin, &format!("Job number {n}.")).await }
    })
    .await;
    assert_eq!(count_admitted(&answers, 202, "max_concurrent_jobs"), 1);
    assert_eq!(app.db().active_generation_count(&org).await.unwrap(), 1);
}

async fn generation_requests_over_the_plan_are_refused_before_queueing(db: DbKind) {
    let app = app_on_plan(
        db,
        Plan {
            characters_per_month: Some(20),
            voice_slots: None,
            max_concurrent_jobs: Some(1),
        },
    )
    .await;
    let (admin, org) = admin_and_org(&app).await;
    let listed = || async {
        app.db()
            .list_generations(&org, &Default::default(), Default::default())
            .await
            .unwrap()
            .total
    };

    let too_long = request_generation(&app, &admin, "This sentence is too long.").await;
    assert_eq!(too_long.status(), 402);
    let body: Value = too_long.json().await.unwrap();
    assert_eq!(body["error"]["code"], "QUOTA_EXCEEDED");
    assert_eq!(body["error"]["limit"], "characters_per_month");
    assert_eq!(body["error"]["used"], 0);
    assert_eq!(body["error"]["allowed"], 20);
    assert_eq!(body["error"]["requested"], 26);
    let reset = Period::containing(OffsetDateTime::now_utc()).end;
    assert_eq!(
        body["error"]["resetsAt"],
        reset
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&reset.date().to_string()),
        "{body}"
    );
    assert_eq!(listed().await, 0, "nothing was queued");

    assert_eq!(
        request_generation(&app, &admin, "Hello.").await.status(),
        202
    );
    let busy = request_generation(&app, &admin, "Hello again.").await;
    assert_eq!(busy.status(), 402);
    let body: Value = busy.json().await.unwrap();
    assert_eq!(body["error"]["limit"], "max_concurrent_jobs");
    assert_eq!(body["error"]["resetsAt"], Value::Null);
    assert_eq!(listed().await, 1);
}

/// How the fake Polar answers event ingestion.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ingestion {
    /// Accepts events, ignoring those whose `external_id` it already has, as Polar does.
    Up,
    /// Answers 503 and keeps nothing.
    Down,
    /// Keeps the events but answers 502 once, as when the answer is lost on the way back.
    AnswerLost,
}

#[derive(Default)]
struct PolarState {
    ingestion: Option<Ingestion>,
    /// Organizations with an active subscription, and the cost of their metered usage.
    subscribed: HashMap<String, i64>,
    /// Accepted events by `external_id`, with how many times each was sent.
    events: HashMap<String, (Value, u32)>,
    failed_requests: u32,
    checkouts: Vec<Value>,
    /// Customer state answers 503 while set.
    customers_down: bool,
}

#[derive(Clone, Default)]
struct FakePolar {
    state: Arc<Mutex<PolarState>>,
}

impl FakePolar {
    async fn start(&self) -> SocketAddr {
        let app = Router::new()
            .route(
                "/v1/customers/external/{external_id}/state",
                get(customer_state),
            )
            .route("/v1/checkouts/", post(create_checkout))
            .route("/v1/events/ingest", post(ingest))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn set_ingestion(&self, ingestion: Ingestion) {
        self.state.lock().unwrap().ingestion = Some(ingestion);
    }

    fn subscribe(&self, org: &OrgId, cost_cents: i64) {
        self.state
            .lock()
            .unwrap()
            .subscribed
            .insert(org.to_string(), cost_cents);
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {POLAR_TOKEN}"))
}

async fn customer_state(
    State(polar): State<FakePolar>,
    Path(external_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let state = polar.state.lock().unwrap();
    if state.customers_down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match state.subscribed.get(&external_id) {
        None => (StatusCode::NOT_FOUND, Json(json!({ "error": "ResourceNotFound" })))
            .into_response(),
        Some(cost) => Json(json!({
            "id": format!("cus_{external_id}"),
            "external_id": external_id,
            "active_subscriptions": [
                { "id": "sub_other", "status": "active", "product_id": "prod_unrelated", "meters": [
                    { "meter_id": "m_other", "consumed_units": 5.0, "credited_units": 0.0, "amount": 9999 }
                ] },
                { "id": "sub_1", "status": "active", "product_id": PRODUCT, "meters": [
                    { "meter_id": "m_chars", "consumed_units": 1200.0, "credited_units": 1000.0, "amount": cost }
                ] }
            ],
            "granted_benefits": [],
        }))
        .into_response(),
    }
}

async fn create_checkout(
    State(polar): State<FakePolar>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    polar.state.lock().unwrap().checkouts.push(body);
    (
        StatusCode::CREATED,
        Json(json!({ "id": "co_1", "url": "https://polar.test/checkout/co_1", "status": "open" })),
    )
        .into_response()
}

async fn ingest(
    State(polar): State<FakePolar>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut state = polar.state.lock().unwrap();
    let ingestion = state.ingestion.unwrap_or(Ingestion::Up);
    if ingestion == Ingestion::Down {
        state.failed_requests += 1;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let (mut inserted, mut duplicates) = (0, 0);
    for event in body["events"].as_array().unwrap() {
        let id = event["external_id"].as_str().unwrap().to_string();
        let entry = state.events.entry(id).or_insert((event.clone(), 0));
        entry.1 += 1;
        if entry.1 == 1 {
            inserted += 1;
        } else {
            duplicates += 1;
        }
    }
    if ingestion == Ingestion::AnswerLost {
        state.ingestion = Some(Ingestion::Up);
        state.failed_requests += 1;
        return StatusCode::BAD_GATEWAY.into_response();
    }
    Json(json!({ "inserted": inserted, "duplicates": duplicates })).into_response()
}

async fn app_with_polar(db: DbKind, polar: &FakePolar) -> TestApp {
    let addr = polar.start().await;
    TestApp::builder()
        .db(db)
        .billing(Billing::new(BillingSettings {
            default_plan: Plan::default(),
            polar: Some(PolarSettings {
                access_token: POLAR_TOKEN.into(),
                product_ids: vec![PRODUCT.into()],
                api_url: format!("http://{addr}"),
            }),
            outbox: OutboxSettings {
                poll_interval: Duration::from_millis(50),
                first_retry: Duration::from_millis(100),
                max_retry: Duration::from_millis(400),
                batch_size: 2,
            },
        }))
        .spawn()
        .await
}

async fn polar_subscription_gates_voices_and_generations(db: DbKind) {
    let polar = FakePolar::default();
    let app = app_with_polar(db, &polar).await;
    let (admin, org) = admin_and_org(&app).await;

    let refused = upload_voice(&app, &admin, "Mine", 1).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(error_code(refused).await, "SUBSCRIPTION_REQUIRED");
    assert_eq!(app.db().custom_voice_count(&org).await.unwrap(), 0);
    assert!(
        app.state
            .storage
            .list(&KeyPrefix::everything())
            .await
            .unwrap()
            .is_empty()
    );
    let refused = request_generation(&app, &admin, "Hello.").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(error_code(refused).await, "SUBSCRIPTION_REQUIRED");
    assert_eq!(
        app.db()
            .list_generations(&org, &Default::default(), Default::default())
            .await
            .unwrap()
            .total,
        0
    );
    let status = get_json(&app, &admin, "/api/billing/status").await;
    assert_eq!(
        status,
        json!({
            "billingEnabled": true,
            "hasActiveSubscription": false,
            "customerId": null,
            "estimatedCostCents": 0,
        })
    );

    let checkout = admin
        .client
        .post(app.url("/api/billing/checkout"))
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.status(), 200);
    let checkout: Value = checkout.json().await.unwrap();
    assert_eq!(checkout["url"], "https://polar.test/checkout/co_1");
    assert_eq!(
        polar.state.lock().unwrap().checkouts,
        vec![json!({ "products": [PRODUCT], "external_customer_id": org.as_str() })]
    );
    let member = app.add_member(&admin, org.as_str(), "member").await;
    let response = member
        .client
        .post(app.url("/api/billing/checkout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "only admins open a checkout");

    polar.subscribe(&org, 250);
    assert_eq!(upload_voice(&app, &admin, "Mine", 1).await.status(), 201);
    assert_eq!(
        request_generation(&app, &admin, "Hello.").await.status(),
        202
    );
    let status = get_json(&app, &admin, "/api/billing/status").await;
    assert_eq!(
        status,
        json!({
            "billingEnabled": true,
            "hasActiveSubscription": true,
            "customerId": format!("cus_{org}"),
            "estimatedCostCents": 250,
        })
    );
    let usage = get_json(&app, &admin, "/api/usage").await;
    assert_eq!(
        usage["meters"],
        json!([{ "meterId": "m_chars", "consumedUnits": 1200.0, "creditedUnits": 1000.0, "amountCents": 250 }])
    );

    // While Polar cannot be asked, nothing new is let through; usage stays readable.
    polar.state.lock().unwrap().customers_down = true;
    let refused = upload_voice(&app, &admin, "Another", 2).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(error_code(refused).await, "BILLING_UNAVAILABLE");
    assert_eq!(app.db().custom_voice_count(&org).await.unwrap(), 1);
    let usage = get_json(&app, &admin, "/api/usage").await;
    assert_eq!(usage["voices"]["used"], 1);
    assert!(usage.get("meters").is_none());
}

/// Waits until the outbox is empty, for at most 20 seconds.
async fn outbox_drained(app: &TestApp) {
    for _ in 0..400 {
        if app.db().undelivered_usage_count().await.unwrap() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the usage outbox was not delivered");
}

async fn usage_events_survive_a_polar_outage_and_arrive_exactly_once(db: DbKind) {
    let polar = FakePolar::default();
    polar.set_ingestion(Ingestion::Down);
    let app = app_with_polar(db, &polar).await;
    let (admin, org) = admin_and_org(&app).await;
    polar.subscribe(&org, 0);

    for (n, name) in ["One", "Two", "Three"].into_iter().enumerate() {
        assert_eq!(
            upload_voice(&app, &admin, name, n as u32).await.status(),
            201
        );
    }
    run_generation(&app, &org, "Hello there.", true).await;
    run_generation(&app, &org, "A second, longer sentence.", true).await;

    // Polar stays down through several retries; nothing is lost meanwhile.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(polar.state.lock().unwrap().failed_requests >= 2);
    assert!(polar.state.lock().unwrap().events.is_empty());
    assert_eq!(app.db().undelivered_usage_count().await.unwrap(), 5);

    // It comes back, but the answer to the first delivery is lost: that batch is sent again.
    polar.set_ingestion(Ingestion::AnswerLost);
    outbox_drained(&app).await;

    let ledger = app.db().list_usage_events(&org).await.unwrap();
    assert_eq!(ledger.len(), 5);
    {
        let state = polar.state.lock().unwrap();
        assert_eq!(state.events.len(), 5, "every event arrived");
        assert!(
            state.events.values().any(|(_, sent)| *sent == 2),
            "the batch whose answer was lost was sent again"
        );
        for event in &ledger {
            let (received, _) = &state.events[&polar::external_event_id(event)];
            assert_eq!(received["name"], event.kind.as_str());
            assert_eq!(received["external_customer_id"], org.as_str());
            let metadata = match event.kind {
                UsageKind::TtsGeneration => json!({ "characters": event.quantity }),
                UsageKind::VoiceCreation => json!({}),
            };
            assert_eq!(received["metadata"], metadata);
        }
        let characters: u64 = state
            .events
            .values()
            .filter_map(|(event, _)| event["metadata"]["characters"].as_u64())
            .sum();
        assert_eq!(characters, 12 + 26);
    }

    // Delivered events are not sent again.
    let sent_before: u32 = polar
        .state
        .lock()
        .unwrap()
        .events
        .values()
        .map(|e| e.1)
        .sum();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_after: u32 = polar
        .state
        .lock()
        .unwrap()
        .events
        .values()
        .map(|e| e.1)
        .sum();
    assert_eq!(sent_before, sent_after);
}

on_both_databases!(
    usage_reports_the_period_the_plan_and_every_day,
    a_voice_over_the_slots_is_refused_and_nothing_is_stored,
    parallel_voice_creations_are_each_charged_once,
    generations_are_checked_against_jobs_and_the_monthly_characters,
    the_character_quota_starts_again_in_the_next_period,
    generation_requests_over_the_plan_are_refused_before_queueing,
    parallel_uploads_create_no_more_voices_than_the_slots,
    parallel_generations_count_queued_characters_against_the_month,
    parallel_generations_hold_the_concurrent_jobs,
    polar_subscription_gates_voices_and_generations,
    usage_events_survive_a_polar_outage_and_arrive_exactly_once,
);
