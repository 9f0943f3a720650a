//! An in-process S3-compatible server (s3s-fs) for tests.
//!
//! The server runs on its own thread with its own tokio runtime, so it outlives the
//! runtime of any single `#[tokio::test]` and works from synchronous code too. Dropping
//! [`TestS3`] stops the server, joins the thread and removes the root folder.

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::thread::JoinHandle;

use anyhow::Context;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use s3s_fs::FileSystem;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const ACCESS_KEY_ID: &str = "resonance-test-access-key";
const SECRET_ACCESS_KEY: &str = "resonance-test-secret-key";
const BUCKET: &str = "resonance-test";
/// s3s accepts any region in the signature scope; this is what clients should sign with.
const REGION: &str = "us-east-1";

pub struct TestS3 {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    _root: TempDir,
}

impl TestS3 {
    /// Starts a server on 127.0.0.1 with a free port and one empty bucket.
    pub fn start() -> anyhow::Result<Self> {
        let root = tempfile::tempdir().context("creating the S3 root folder")?;
        // s3s-fs keeps one folder per bucket under its root.
        std::fs::create_dir(root.path().join(BUCKET)).context("creating the test bucket")?;
        let file_system = FileSystem::new(root.path())
            .map_err(|error| anyhow::anyhow!("opening s3s-fs: {error:?}"))?;

        let mut builder = S3ServiceBuilder::new(file_system);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
        let service = builder.build();

        let listener = StdTcpListener::bind("127.0.0.1:0").context("binding the S3 port")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("building the S3 server runtime")?;
        let (shutdown, shutdown_requested) = oneshot::channel::<()>();
        let server = std::thread::Builder::new()
            .name("test-s3".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(error) => {
                            tracing::error!(%error, "test S3 server cannot listen");
                            return;
                        }
                    };
                    let mut shutdown_requested = std::pin::pin!(shutdown_requested);
                    loop {
                        let socket = tokio::select! {
                            accepted = listener.accept() => match accepted {
                                Ok((socket, _)) => socket,
                                Err(error) => {
                                    tracing::warn!(%error, "test S3 server accept failed");
                                    continue;
                                }
                            },
                            _ = shutdown_requested.as_mut() => break,
                        };
                        let service = service.clone();
                        tokio::spawn(async move {
                            let connection = http1::Builder::new()
                                .serve_connection(TokioIo::new(socket), service);
                            if let Err(error) = connection.await {
                                tracing::debug!(%error, "test S3 connection ended with an error");
                            }
                        });
                    }
                });
                // Dropping the runtime here cancels the open connections.
            })
            .context("spawning the S3 server thread")?;

        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            server: Some(server),
            _root: root,
        })
    }

    /// `http://127.0.0.1:<port>`: use with path-style requests and `allow_http`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn bucket(&self) -> &str {
        BUCKET
    }

    pub fn access_key_id(&self) -> &str {
        ACCESS_KEY_ID
    }

    pub fn secret_access_key(&self) -> &str {
        SECRET_ACCESS_KEY
    }

    pub fn region(&self) -> &str {
        REGION
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}
