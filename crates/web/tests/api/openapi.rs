//! The OpenAPI document the server serves: compared with the committed snapshot
//! (`UPDATE_SNAPSHOTS=1 cargo test -p resonance-web --test api openapi::` rewrites it after a
//! deliberate change), and checked for what every operation must say.

use crate::support::TestApp;
use serde_json::Value;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");

async fn served_document() -> Value {
    let app = TestApp::builder().spawn().await;
    let response = app
        .anonymous()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_served_document_matches_the_snapshot() {
    let served = served_document().await;
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(SNAPSHOT).parent().unwrap()).unwrap();
        std::fs::write(SNAPSHOT, &pretty).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        committed == pretty,
        "the OpenAPI document changed; if that is intended, rerun with UPDATE_SNAPSHOTS=1 and \
         commit {SNAPSHOT}"
    );
}

/// The (method, path) of every operation in the document.
fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(move |(method, operation)| (method.to_uppercase(), path.clone(), operation))
        })
        .collect()
}

#[tokio::test]
async fn every_api_route_is_documented_with_its_errors_and_security() {
    let document = served_document().await;
    let documented: Vec<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    for expected in [
        ("POST", "/api/auth/sign-up"),
        ("POST", "/api/auth/sign-in"),
        ("POST", "/api/auth/sign-out"),
        ("GET", "/api/me"),
        ("POST", "/api/auth/forgot-password"),
        ("GET", "/api/orgs"),
        ("POST", "/api/orgs"),
        ("POST", "/api/orgs/{orgId}/activate"),
        ("GET", "/api/orgs/{orgId}/invites"),
        ("POST", "/api/orgs/{orgId}/invites"),
        ("DELETE", "/api/orgs/{orgId}/invites/{inviteId}"),
        ("POST", "/api/invites/{token}/accept"),
        ("GET", "/api/orgs/{orgId}/members"),
        ("PATCH", "/api/orgs/{orgId}/members/{userId}"),
        ("DELETE", "/api/orgs/{orgId}/members/{userId}"),
        ("GET", "/api/orgs/{orgId}/api-keys"),
        ("POST", "/api/orgs/{orgId}/api-keys"),
        ("DELETE", "/api/orgs/{orgId}/api-keys/{keyId}"),
        ("GET", "/api/voices"),
        ("POST", "/api/voices"),
        ("GET", "/api/voices/{voiceId}"),
        ("DELETE", "/api/voices/{voiceId}"),
        ("GET", "/api/voices/{voiceId}/audio"),
        ("PUT", "/api/voices/{voiceId}/sample"),
        ("GET", "/api/generations"),
        ("POST", "/api/generations"),
        ("GET", "/api/generations/{generationId}"),
        ("DELETE", "/api/generations/{generationId}"),
        ("POST", "/api/generations/{generationId}/cancel"),
        ("GET", "/api/generations/{generationId}/audio"),
        ("GET", "/api/usage"),
        ("GET", "/api/billing/status"),
        ("POST", "/api/billing/checkout"),
        ("GET", "/api/openapi.json"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    ] {
        let expected = (expected.0.to_string(), expected.1.to_string());
        assert!(documented.contains(&expected), "{expected:?} is missing");
    }

    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "resonance_session");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["xiApiKey"]["in"], "header");
    assert_eq!(schemes["xiApiKey"]["name"], "xi-api-key");
    let error = &document["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error"]));
    assert_eq!(
        document["components"]["schemas"]["ErrorDetail"]["required"],
        serde_json::json!(["code", "message"])
    );

    for (method, path, operation) in operations(&document) {
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path} documents no success"
        );
        assert_eq!(
            responses["default"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{method} {path}"
        );
        let public = operation["security"] == serde_json::json!([{}]);
        if !public {
            assert!(
                responses.contains_key("401"),
                "{method} {path} needs credentials but documents no 401"
            );
        }
        for parameter in path.split('{').skip(1) {
            let name = parameter.split('}').next().unwrap();
            let documented = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
            assert!(documented, "{method} {path} does not document {{{name}}}");
        }
    }
}
