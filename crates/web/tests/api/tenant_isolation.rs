//! Tenant isolation: two organizations, and for every route that takes an id, a member or
//! key of the other organization gets 404 (existence does not leak); for every route, no
//! session gets 401 and a member gets 403 where only admins may act. Later features add
//! their routes to [`routes`].

use std::time::Duration;

use crate::support::{DbKind, TestApp, TestUser};
use reqwest::Method;
use resonance_db::NewGeneration;
use resonance_domain::{GenerationId, GenerationParams, GenerationText, OrgId, VoiceId};
use resonance_storage::ObjectKey;
use resonance_testkit::audio::{UploadFormat, encode_as, speech_like};
use serde_json::{Value, json};

/// Two organizations, each with an admin, a member and a key, and one of everything the
/// routes below take an id of.
struct World {
    app: TestApp,
    /// The organization under test.
    org: String,
    admin: TestUser,
    member: TestUser,
    /// Another member, whose role and membership the routes change.
    target: TestUser,
    /// An admin, a member and a key of the other organization.
    outsiders: Vec<Caller>,
    ids: Ids,
}

struct Ids {
    api_key: String,
    invite: String,
    /// A custom voice of the organization.
    voice: String,
    /// A generation that has succeeded, with its audio.
    finished_generation: String,
    /// A generation still in the queue.
    queued_generation: String,
    /// A custom voice for the drop-in APIs to delete.
    compat_voice: String,
}

enum Caller {
    User(TestUser),
    Key(String),
}

impl Caller {
    fn client(&self, app: &TestApp) -> reqwest::Client {
        match self {
            Caller::User(user) => user.client.clone(),
            Caller::Key(key) => app.key_client(key),
        }
    }
}

/// A route with a body that would succeed for an admin.
struct Route {
    method: Method,
    path: String,
    body: Body,
    /// Whether a plain member of the organization is refused (403).
    admin_only: bool,
    /// Whether the route names something of the organization, which outsiders must not
    /// find (404); otherwise it acts in the caller's own organization.
    names_the_organizations: bool,
}

enum Body {
    None,
    Json(Value),
    /// A voice recording.
    Audio,
}

/// 12 s of speech-like sound, as a WAV file.
fn recording() -> Vec<u8> {
    encode_as(&speech_like(12.0, 0.5, 1), UploadFormat::Wav)
}

fn routes(w: &World) -> Vec<Route> {
    let org = &w.org;
    let member = &w.target.id;
    let voice = &w.ids.voice;
    let (finished, queued) = (&w.ids.finished_generation, &w.ids.queued_generation);
    let route = |method: Method, path: String, body: Option<Value>, admin_only| Route {
        method,
        path,
        body: body.map_or(Body::None, Body::Json),
        admin_only,
        names_the_organizations: true,
    };
    let in_own_organization = |route: Route| Route {
        names_the_organizations: false,
        ..route
    };
    vec![
        route(
            Method::POST,
            format!("/api/orgs/{org}/activate"),
            None,
            false,
        ),
        route(Method::GET, format!("/api/orgs/{org}/members"), None, false),
        route(
            Method::PATCH,
            format!("/api/orgs/{org}/members/{member}"),
            Some(json!({ "role": "member" })),
            true,
        ),
        route(Method::GET, format!("/api/orgs/{org}/invites"), None, true),
        route(
            Method::POST,
            format!("/api/orgs/{org}/invites"),
            Some(json!({ "role": "member" })),
            true,
        ),
        route(
            Method::DELETE,
            format!("/api/orgs/{org}/invites/{}", w.ids.invite),
            None,
            true,
        ),
        route(Method::GET, format!("/api/orgs/{org}/api-keys"), None, true),
        route(
            Method::POST,
            format!("/api/orgs/{org}/api-keys"),
            Some(json!({ "name": "k" })),
            true,
        ),
        route(
            Method::DELETE,
            format!("/api/orgs/{org}/api-keys/{}", w.ids.api_key),
            None,
            true,
        ),
        in_own_organization(route(Method::GET, "/api/generations".into(), None, false)),
        in_own_organization(route(
            Method::POST,
            "/api/generations".into(),
            Some(json!({ "text": "Hello.", "voiceId": voice })),
            false,
        )),
        route(
            Method::GET,
            format!("/api/generations/{finished}"),
            None,
            false,
        ),
        route(
            Method::GET,
            format!("/api/generations/{finished}/audio"),
            None,
            false,
        ),
        route(
            Method::GET,
            format!("/api/generations/{finished}/stream"),
            None,
            false,
        ),
        route(
            Method::POST,
            format!("/api/generations/{queued}/cancel"),
            None,
            false,
        ),
        // The drop-in APIs (errors in their peers' shapes, the same statuses).
        route(Method::GET, format!("/v1/history/{finished}"), None, false),
        route(
            Method::GET,
            format!("/v1/history/{finished}/audio"),
            None,
            false,
        ),
        route(
            Method::GET,
            format!("/api/generations/{finished}/audio?format=mp3"),
            None,
            false,
        ),
        route(Method::DELETE, format!("/v1/history/{queued}"), None, false),
        route(Method::GET, format!("/v1/voices/{voice}"), None, false),
        route(
            Method::DELETE,
            format!("/v1/voices/{}", w.ids.compat_voice),
            None,
            true,
        ),
        route(
            Method::DELETE,
            format!("/api/generations/{finished}"),
            None,
            false,
        ),
        // Voices after generations, which need the voice.
        in_own_organization(route(Method::GET, "/api/voices".into(), None, false)),
        route(Method::GET, format!("/api/voices/{voice}"), None, false),
        route(
            Method::GET,
            format!("/api/voices/{voice}/audio"),
            None,
            false,
        ),
        route(
            Method::PATCH,
            format!("/api/voices/{voice}"),
            Some(json!({ "description": "Edited" })),
            true,
        ),
        Route {
            body: Body::Audio,
            ..route(
                Method::PUT,
                format!("/api/voices/{voice}/sample?consent=true"),
                None,
                true,
            )
        },
        in_own_organization(Route {
            body: Body::Audio,
            ..route(
                Method::POST,
                "/api/voices?consent=true&name=Ada&language=en-US".into(),
                None,
                true,
            )
        }),
        route(Method::DELETE, format!("/api/voices/{voice}"), None, true),
        // Last: removes the target.
        route(
            Method::DELETE,
            format!("/api/orgs/{org}/members/{member}"),
            None,
            true,
        ),
    ]
}

async fn world(db: DbKind) -> World {
    let app = TestApp::builder().db(db).spawn().await;
    let admin = app.signed_up("admin@one.example").await;
    let org = app.create_org(&admin, "One").await;
    let member = app.add_member(&admin, &org, "member").await;
    let target = app.add_member(&admin, &org, "member").await;
    let key = app.create_api_key(&admin, &org).await;
    let keys: Value = admin
        .client
        .get(app.url(&format!("/api/orgs/{org}/api-keys")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_key = keys["apiKeys"][0]["id"].as_str().unwrap().to_string();
    assert!(!key.is_empty());
    let response = admin
        .client
        .post(app.url(&format!("/api/orgs/{org}/invites")))
        .json(&json!({ "role": "member" }))
        .send()
        .await
        .unwrap();
    let invite: Value = response.json().await.unwrap();
    let invite = invite["id"].as_str().unwrap().to_string();
    let response = admin
        .client
        .post(app.url("/api/voices?consent=true&name=Ours"))
        .header("content-type", "audio/wav")
        .body(recording())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "creating a voice");
    let voice: Value = response.json().await.unwrap();
    let voice = voice["id"].as_str().unwrap().to_string();
    let compat_voice = app.upload_voice(&admin, "Theirs").await;
    let (finished_generation, queued_generation) = generations(&app, &org, &voice).await;

    let other_admin = app.signed_up("admin@two.example").await;
    let other_org = app.create_org(&other_admin, "Two").await;
    let other_member = app.add_member(&other_admin, &other_org, "member").await;
    let other_key = app.create_api_key(&other_admin, &other_org).await;
    World {
        app,
        org,
        admin,
        member,
        target,
        outsiders: vec![
            Caller::User(other_admin),
            Caller::User(other_member),
            Caller::Key(other_key),
        ],
        ids: Ids {
            api_key,
            invite,
            voice,
            finished_generation,
            queued_generation,
            compat_voice,
        },
    }
}

/// A generation that has succeeded (claimed, stored and completed as a worker would) and
/// one left in the queue (the test server runs no worker): their ids.
async fn generations(app: &TestApp, org: &str, voice: &str) -> (String, String) {
    const WORKER: &str = "tenant-isolation";
    let org = OrgId::parse(org).unwrap();
    let new_generation = |text| NewGeneration {
        id: GenerationId::new(),
        org_id: org.clone(),
        voice_id: VoiceId::parse(voice).unwrap(),
        text: GenerationText::parse(text).unwrap(),
        params: GenerationParams::default(),
        seed: None,
    };
    let db = app.db();
    let finished = db
        .create_generation(&new_generation("Done."))
        .await
        .unwrap();
    let claimed = db
        .claim_generation(WORKER, Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, finished.id);
    let key = ObjectKey::generation(&org, &finished.id);
    app.state
        .storage
        .put(&key, recording().into(), "audio/wav")
        .await
        .unwrap();
    db.complete_generation(&finished.id, WORKER, key.as_str())
        .await
        .unwrap()
        .expect("the worker holds the job");
    let queued = db
        .create_generation(&new_generation("Queued."))
        .await
        .unwrap();
    (finished.id.to_string(), queued.id.to_string())
}

async fn send(app: &TestApp, client: &reqwest::Client, route: &Route) -> reqwest::StatusCode {
    let request = client.request(route.method.clone(), app.url(&route.path));
    let request = match &route.body {
        Body::None => request,
        Body::Json(body) => request.json(body),
        Body::Audio => request
            .header("content-type", "audio/wav")
            .body(recording()),
    };
    request.send().await.unwrap().status()
}

async fn other_organizations_get_404(db: DbKind) {
    let w = world(db).await;
    for route in routes(&w).into_iter().filter(|r| r.names_the_organizations) {
        for outsider in &w.outsiders {
            let status = send(&w.app, &outsider.client(&w.app), &route).await;
            assert_eq!(
                status, 404,
                "{} {} by an outsider",
                route.method, route.path
            );
        }
    }
}

async fn no_credentials_get_401(db: DbKind) {
    let w = world(db).await;
    for route in routes(&w) {
        let status = send(&w.app, &w.app.anonymous(), &route).await;
        assert_eq!(
            status, 401,
            "{} {} without credentials",
            route.method, route.path
        );
    }
}

async fn members_get_403_where_only_admins_may_act(db: DbKind) {
    let w = world(db).await;
    for route in routes(&w).into_iter().filter(|r| r.admin_only) {
        let status = send(&w.app, &w.member.client, &route).await;
        assert_eq!(status, 403, "{} {} by a member", route.method, route.path);
    }
    // The same requests succeed for an admin: the 403s above were about the role.
    for route in routes(&w) {
        let status = send(&w.app, &w.admin.client, &route).await;
        assert!(
            status.is_success(),
            "{} {} by an admin: {status}",
            route.method,
            route.path
        );
    }
}

/// Whether `path` (with its query, if any) is an instance of the OpenAPI path `template`.
fn instance_of(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap();
    let (template, path): (Vec<_>, Vec<_>) =
        (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| t.starts_with('{') || t == p)
}

/// New routes that take an id cannot be forgotten here: every such route in the OpenAPI
/// document must be in [`routes`].
#[tokio::test]
async fn every_documented_route_that_takes_an_id_is_in_this_suite() {
    // Invite tokens are secrets that anyone signed in may redeem, not ids of an organization.
    const NOT_ORGANIZATION_SCOPED: &[&str] = &["/api/invites/{token}/accept"];
    let w = world(DbKind::Sqlite).await;
    let document: Value = w
        .app
        .anonymous()
        .get(w.app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let routes = routes(&w);
    for (template, item) in document["paths"].as_object().unwrap() {
        if !template.contains('{') || NOT_ORGANIZATION_SCOPED.contains(&template.as_str()) {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            assert!(
                routes
                    .iter()
                    .any(|r| r.method == method && instance_of(template, &r.path)),
                "{method} {template} is not in the tenant-isolation suite"
            );
        }
    }
}

on_both_databases!(
    other_organizations_get_404,
    no_credentials_get_401,
    members_get_403_where_only_admins_may_act,
);
