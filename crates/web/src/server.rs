//! Application state, the router and serving with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request};
use axum::routing::get;
use resonance_db::Database;
use resonance_storage::Storage;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Auth, AuthSettings};
use crate::billing::Billing;
use crate::generations::events::JobEvents;
use crate::model_status::ModelStatus;
use crate::openapi::{ApiDoc, ErrorsByDefault, require_documented};
use crate::{
    api_keys, auth, billing, compat, generations, health, members, metrics, objects, openapi, orgs,
    pages, voices,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything a request handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<dyn Database>,
    pub storage: Storage,
    pub auth: Arc<Auth>,
    /// Largest accepted voice upload; larger bodies are refused while they stream in.
    pub voice_upload_max_bytes: usize,
    /// Plans, quotas and the billing provider; unlimited and without one by default.
    pub billing: Arc<Billing>,
    /// Raised when a generation is queued, to wake this process's idle workers (workers in
    /// other processes find it by polling).
    pub new_jobs: Arc<Notify>,
    /// Where this process's workers publish the audio of jobs that a request streams.
    pub job_events: JobEvents,
    /// The speech model's state in this process, set by whatever starts the engine.
    pub model: ModelStatus,
    /// The bearer token `/metrics` asks for; without one it is not served.
    pub metrics_token: Option<String>,
}

/// The original's upload limit.
pub const DEFAULT_VOICE_UPLOAD_MAX_BYTES: usize = 20 * 1024 * 1024;

impl AppState {
    pub fn new(db: Arc<dyn Database>, storage: Storage, auth: AuthSettings) -> Self {
        Self {
            db,
            storage,
            auth: Arc::new(Auth::new(auth)),
            voice_upload_max_bytes: DEFAULT_VOICE_UPLOAD_MAX_BYTES,
            billing: Arc::new(Billing::default()),
            new_jobs: Arc::default(),
            job_events: JobEvents::default(),
            model: ModelStatus::default(),
            metrics_token: None,
        }
    }
}

/// Every documented route: the API and the health checks. A new API module's `routes()`
/// is merged here.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi::openapi_json))
        .merge(health::routes())
        .merge(auth::routes())
        .merge(orgs::routes())
        .merge(api_keys::routes())
        .merge(members::routes())
        .merge(voices::routes())
        .merge(billing::routes())
        .merge(generations::routes())
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
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
}

/// A server running on a background task.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub task: JoinHandle<std::io::Result<()>>,
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish. Delivers the usage outbox to Polar meanwhile when Polar is configured.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let outbox = state.billing.spawn_outbox(Arc::clone(&state.db));
    let app = router(state);
    let task = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        if let Some(outbox) = outbox {
            outbox.abort();
        }
        served
    });
    Ok(RunningServer { addr, task })
}

/// Upper bound on how long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
