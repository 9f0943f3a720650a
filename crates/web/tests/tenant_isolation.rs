//! Tenant isolation: two organizations, and for every route that takes an id, a member or
//! key of the other organization gets 404 (existence does not leak), no session gets 401,
//! and a member gets 403 where only admins may act. Later features add their routes to
//! [`routes`].

mod support;

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use support::tone::ToneEngine;
use support::{DbKind, TestApp, TestUser};

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
    voice: String,
    /// A generation that has succeeded.
    generation: String,
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

/// A route that takes an id, with a body that would succeed for an admin.
struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Whether a plain member of the organization is refused (403).
    admin_only: bool,
}

fn routes(w: &World) -> Vec<Route> {
    let org = &w.org;
    let member = &w.target.id;
    let route = |method: Method, path: String, body: Option<Value>, admin_only| Route {
        method,
        path,
        body,
        admin_only,
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
        // The drop-in APIs (errors in their peers' shapes, same statuses).
        route(
            Method::GET,
            format!("/v1/voices/{}", w.ids.voice),
            None,
            false,
        ),
        route(
            Method::POST,
            format!("/v1/text-to-speech/{}?output_format=pcm_16000", w.ids.voice),
            Some(json!({ "text": "Hello." })),
            false,
        ),
        route(
            Method::POST,
            format!("/v1/text-to-speech/{}/stream", w.ids.voice),
            Some(json!({ "text": "Hello." })),
            false,
        ),
        route(
            Method::GET,
            format!("/v1/history/{}", w.ids.generation),
            None,
            false,
        ),
        route(
            Method::GET,
            format!("/v1/history/{}/audio", w.ids.generation),
            None,
            false,
        ),
        route(
            Method::GET,
            format!("/api/generations/{}/audio?format=flac", w.ids.generation),
            None,
            false,
        ),
        route(
            Method::DELETE,
            format!("/v1/history/{}", w.ids.generation),
            None,
            false,
        ),
        route(
            Method::DELETE,
            format!("/v1/voices/{}", w.ids.voice),
            None,
            true,
        ),
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
    let app = TestApp::builder()
        .db(db)
        .engine(Arc::new(ToneEngine::default()))
        .spawn()
        .await;
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
    let voice = app.upload_voice(&admin, "Narrator").await;
    let response = admin
        .client
        .post(app.url("/api/generations?wait=true"))
        .json(&json!({ "text": "Hello there.", "voiceId": voice }))
        .send()
        .await
        .unwrap();
    let generation: Value = response.json().await.unwrap();
    assert_eq!(generation["status"], "succeeded", "{generation}");
    let generation = generation["id"].as_str().unwrap().to_string();

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
            generation,
        },
    }
}

async fn send(app: &TestApp, client: &reqwest::Client, route: &Route) -> reqwest::StatusCode {
    let mut request = client.request(route.method.clone(), app.url(&route.path));
    if let Some(body) = &route.body {
        request = request.json(body);
    }
    request.send().await.unwrap().status()
}

async fn other_organizations_get_404(db: DbKind) {
    let w = world(db).await;
    for route in routes(&w) {
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

on_both_databases!(
    other_organizations_get_404,
    no_credentials_get_401,
    members_get_403_where_only_admins_may_act,
);
