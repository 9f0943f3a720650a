//! Serving the router on a listener: connection limits, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::AppState;
use crate::routes::router;

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
