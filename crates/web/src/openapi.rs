//! The OpenAPI document's fixed part, served with the routes at `GET /api/openapi.json`
//! (`routes.rs` merges the documented routes into it).
//!
//! It is derived from the handlers: every API module returns an [`OpenApiRouter`] and
//! registers its handlers with `routes!`, which takes each handler's path and method from its
//! `#[utoipa::path]` attribute, so a route and its documentation cannot drift apart. In debug
//! builds [`require_documented`] also makes any request to an undocumented route under `/api`
//! panic, so that a route registered some other way fails the tests that use it.
//!
//! [`OpenApiRouter`]: utoipa_axum::router::OpenApiRouter

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::auth::SESSION_COOKIE;
use crate::error::ErrorBody;
use resonance_service::billing::QuotaExceeded;

/// Security scheme names; operations' `security(...)` spell them out (the macro needs
/// literals): `"session"` (signed-in users only) or, by default, any of the three.
const SESSION: &str = "session";
const BEARER: &str = "bearer";
const XI_API_KEY: &str = "xiApiKey";

/// The document's fixed part; the paths come from the routers. Operations accept any of the
/// three credentials unless they say otherwise.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Resonance API",
        description = "Self-hosted text-to-speech and voice cloning. Errors are JSON: \
                       `{ \"error\": { \"code\", \"message\" } }`."
    ),
    components(schemas(ErrorBody, QuotaExceeded)),
    modifiers(&SecuritySchemes),
    security(("session" = []), ("bearer" = []), ("xiApiKey" = [])),
    tags(
        (name = "accounts", description = "Signing up, in and out"),
        (name = "organizations", description = "Organizations and the active one"),
        (name = "members", description = "Members and invites (signed-in admins)"),
        (name = "api-keys", description = "API keys (signed-in admins)"),
        (name = "voices", description = "The voice library and voice cloning"),
        (name = "generations", description = "Text to speech: queued jobs, their history and audio"),
        (name = "billing", description = "Usage against the plan, and subscriptions with Polar"),
        (name = "health", description = "Liveness and readiness"),
        (name = "documentation", description = "This document"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The session cookie set by sign-in. State-changing requests must also come \
                 from the same origin (Origin or Sec-Fetch-Site).",
            ))),
        );
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("An API key: `Authorization: Bearer <key>`.".into());
        components.add_security_scheme(BEARER, SecurityScheme::Http(bearer));
        components.add_security_scheme(
            XI_API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "xi-api-key",
                "An API key in the header ElevenLabs clients send.",
            ))),
        );
    }
}

/// Every operation may also fail in ways that are not its own (an unavailable database,
/// an internal error): those answers share the error body. Applied to the whole document,
/// after the routers have added their paths.
pub struct ErrorsByDefault;

impl Modify for ErrorsByDefault {
    fn modify(&self, doc: &mut Document) {
        let default = utoipa::openapi::ResponseBuilder::new()
            .description("An error, as `{ \"error\": { \"code\", \"message\" } }`")
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        ErrorBody::name(),
                    ))))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for (_, operation) in operations_mut(item) {
                operation
                    .responses
                    .responses
                    .entry("default".into())
                    .or_insert_with(|| default.clone().into());
            }
        }
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, &mut item.get),
        (Method::PUT, &mut item.put),
        (Method::POST, &mut item.post),
        (Method::DELETE, &mut item.delete),
        (Method::OPTIONS, &mut item.options),
        (Method::HEAD, &mut item.head),
        (Method::PATCH, &mut item.patch),
        (Method::TRACE, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation.as_mut()?)))
}

/// Every documented (method, path template) pair.
fn documented_routes(mut doc: Document) -> HashSet<(Method, String)> {
    doc.paths
        .paths
        .iter_mut()
        .flat_map(|(path, item)| {
            operations_mut(item)
                .map(|(method, _)| (method, path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// In debug builds, a request to a route under `/api` that `doc` does not document panics:
/// the test that sends it fails and names the route. Release builds are unchanged.
pub fn require_documented<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    doc: Document,
) -> Router<S> {
    if !cfg!(debug_assertions) {
        return router;
    }
    let documented = Arc::new(documented_routes(doc));
    router.route_layer(middleware::from_fn(move |request: Request, next: Next| {
        let documented = documented.clone();
        async move {
            if let Some(path) = request.extensions().get::<MatchedPath>() {
                let method = match request.method() {
                    &Method::HEAD => Method::GET,
                    other => other.clone(),
                };
                let path = path.as_str();
                assert!(
                    !path.starts_with("/api/")
                        || documented.contains(&(method.clone(), path.into())),
                    "{method} {path} is served but not in the OpenAPI document: register its \
                     handler with `routes!` and give it a `#[utoipa::path]`"
                );
            }
            next.run(request).await
        }
    }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;

    use super::*;

    #[utoipa::path(get, path = "/api/documented", responses((status = 200)))]
    async fn documented() -> &'static str {
        "ok"
    }

    fn app() -> Router {
        let (router, doc) = OpenApiRouter::new()
            .routes(routes!(documented))
            .route("/api/undocumented", get(|| async { "hidden" }))
            .route("/healthz-like", get(|| async { "not under /api" }))
            .split_for_parts();
        require_documented(router, doc)
    }

    async fn get_status(path: &str) -> axum::http::StatusCode {
        let request = Request::get(path).body(Body::empty()).unwrap();
        app().oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn documented_routes_and_routes_outside_the_api_pass() {
        assert_eq!(get_status("/api/documented").await, 200);
        assert_eq!(get_status("/healthz-like").await, 200);
    }

    #[tokio::test]
    #[should_panic(expected = "GET /api/undocumented is served but not in the OpenAPI document")]
    async fn an_undocumented_api_route_panics() {
        get_status("/api/undocumented").await;
    }
}
