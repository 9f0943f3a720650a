//! Application state, the router and serving with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Request, header};
use axum::routing::get;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use resonance_db::Database;
use resonance_storage::Storage;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
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

/// A server running on a background task.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub task: JoinHandle<std::io::Result<()>>,
}

/// Limits on client connections, so that clients holding connections open without using
/// them (slowloris) or opening very many cannot starve the others.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// How long a client has to send a request's headers, counted from the connection
    /// opening or the previous response: also how long an idle keep-alive connection stays.
    pub header_read_timeout: Duration,
    /// Longest pause while a request body arrives; the request then fails.
    pub body_read_timeout: Duration,
    /// Connections served at once; further clients wait to be accepted.
    pub max_connections: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Serves `state` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish. Delivers the usage outbox to Polar meanwhile when Polar is configured.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<RunningServer> {
    serve_with(listener, state, ConnectionSettings::default(), shutdown)
}

/// [`serve`] with `connections` limits.
pub fn serve_with(
    listener: TcpListener,
    state: AppState,
    connections: ConnectionSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let outbox = state.billing.spawn_outbox(Arc::clone(&state.db));
    let app = router(state).layer(RequestBodyTimeoutLayer::new(connections.body_read_timeout));
    let task = tokio::spawn(async move {
        accept_connections(listener, app, &connections, shutdown).await;
        if let Some(outbox) = outbox {
            outbox.abort();
        }
        Ok(())
    });
    Ok(RunningServer { addr, task })
}

/// Accepts connections while fewer than `max_connections` are open, until `shutdown`;
/// then asks every connection to close after its current request and waits for them.
async fn accept_connections(
    listener: TcpListener,
    app: Router,
    settings: &ConnectionSettings,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let (closing, _) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        while connections.try_join_next().is_some() {}
        let (stream, remote, slot) = accepted;
        connections.spawn(serve_connection(
            stream,
            remote,
            app.clone(),
            settings.header_read_timeout,
            closing.subscribe(),
            slot,
        ));
    }
    drop(listener);
    closing.send_replace(true);
    while connections.join_next().await.is_some() {}
}

/// The next connection once a slot is free. Failures to accept (a client that reset, the
/// process out of file descriptors) are logged and retried.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    let slot = Arc::clone(slots)
        .acquire_owned()
        .await
        .expect("the connection semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => return (stream, remote, slot),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionAborted => {}
            Err(error) => {
                tracing::warn!(%error, "cannot accept a connection; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Serves HTTP/1 on one connection until the client closes it, a timeout does, or the
/// server shuts down (after the request in progress). Holds `_slot` meanwhile.
async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    header_read_timeout: Duration,
    mut closing: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let service = service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        app.clone().oneshot(request)
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        _ = closing.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%remote, %error, "connection closed");
    }
}

/// Upper bound on how long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
