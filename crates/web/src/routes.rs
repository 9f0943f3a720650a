//! The router: every route, documented ones first, and the headers every response
//! carries; the OpenAPI document derived from the documented routes.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::{ApiDoc, ErrorsByDefault, require_documented};
use crate::{
    AppState, api_keys, auth, billing, compat, generation_stream, generations, health, members,
    metrics, objects, orgs, pages, voices,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every documented route: the API and the health checks. A new API module's `routes()`
/// is merged here.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi_json))
        .merge(health::routes())
        .merge(auth::routes())
        .merge(orgs::routes())
        .merge(api_keys::routes())
        .merge(members::routes())
        .merge(voices::routes())
        .merge(billing::routes())
        .merge(generations::routes())
        .merge(generation_stream::routes())
}

/// The OpenAPI document of every route [`router`] documents.
pub fn api_document() -> utoipa::openapi::OpenApi {
    let mut document = documented_routes().into_openapi();
    ErrorsByDefault.modify(&mut document);
    document
}

pub fn router(state: AppState) -> Router {
    let (documented, doc) = documented_routes().split_for_parts();
    let routes = documented
        .route("/files/{*key}", get(objects::signed_file))
        .route("/metrics", get(metrics::metrics))
        // The drop-in APIs follow their peers' documentation, not ours.
        .merge(compat::routes())
        .merge(pages::routes());
    require_documented(routes, doc)
        .route_layer(axum::middleware::from_fn(metrics::track_requests))
        .with_state(state)
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let request_id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(security_header(
                    header::CONTENT_SECURITY_POLICY,
                    CONTENT_SECURITY_POLICY,
                ))
                .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
                .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .layer(security_header(header::REFERRER_POLICY, "same-origin")),
        )
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// What every response may do in a browser: scripts, styles, media and requests from this
/// site only (styles may also be inline: WaveSurfer styles its shadow DOM with a `<style>`),
/// never framed, never content-sniffed, no referrer sent to other sites.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// This OpenAPI document
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "documentation",
    security(()),
    responses((status = 200, description = "This document", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        serde_json::to_string_pretty(&api_document()).expect("the OpenAPI document serializes")
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}
