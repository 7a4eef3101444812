//! Starting, addressing and stopping the simulator.

use crate::config::{ConfigError, SimConfig};
use crate::engine::Engine;
use crate::faults::Faults;
use crate::http::{DropConnection, Dropped};
use crate::ledger::Ledger;
use crate::media::MediaStore;
use crate::vendor::Vendor;
use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// Errors starting the simulator. None is retried: fix the address or the config.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound (in use, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Entry point: `SimServer::start(config).await?` binds 127.0.0.1:0 and serves in the background.
pub struct SimServer;

impl SimServer {
    /// Serves on `127.0.0.1:<free port>`.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        Self::start_on(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), config).await
    }

    /// Serves on `addr`.
    pub async fn start_on(addr: SocketAddr, config: SimConfig) -> Result<SimHandle, SimError> {
        config.validate()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| SimError::Bind { addr, source })?;
        let own = format!("http://{}", reachable(local));
        let base_url = config
            .public_base_url
            .clone()
            .map(|s| s.trim_end_matches('/').to_string())
            .unwrap_or_else(|| own.clone());
        let mut ports = vec![local.port()];
        if let Some(p) = url::Url::parse(&base_url)
            .ok()
            .and_then(|u| u.port_or_known_default())
        {
            ports.push(p);
        }
        // Generate the sample set (≈12 MB) once, off the async worker threads.
        let _ =
            tokio::task::spawn_blocking(|| motionq_media::sample("dance-8s.mp4").is_some()).await;
        let media = MediaStore::new(ports, config.assumed_reference_seconds);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (engine, events) = Engine::new(config, base_url.clone(), media, shutdown_rx.clone());
        let engine = Arc::new(engine);
        tokio::spawn(crate::callbacks::dispatcher(engine.clone(), events));
        let router = crate::routes::router(engine.clone());
        let task = tokio::spawn(accept_loop(listener, router, shutdown_rx));
        tracing::info!(addr = %local, base_url = %base_url, "motionq-sim listening");
        Ok(SimHandle {
            addr: local,
            own_url: own,
            base_url,
            engine,
            shutdown_tx,
            task: Some(task),
        })
    }
}

/// The address clients on this machine use (an unspecified bind address becomes loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// Own accept loop instead of `axum::serve`: a response marked [`DropConnection`] makes the
/// connection service fail, and hyper then closes the socket without writing a response.
async fn accept_loop(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let router = router.clone();
                        async move {
                            let resp = router
                                .oneshot(req.map(Body::new))
                                .await
                                .unwrap_or_else(|never| match never {});
                            if resp.extensions().get::<DropConnection>().is_some() {
                                Err(Dropped)
                            } else {
                                Ok(resp)
                            }
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    // Dropping the set aborts open connections: a stopped vendor answers nothing.
    conns.abort_all();
}

/// A running simulator. Dropping it stops the server (use [`SimHandle::shutdown`] to wait).
pub struct SimHandle {
    addr: SocketAddr,
    own_url: String,
    base_url: String,
    engine: Arc<Engine>,
    shutdown_tx: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl SimHandle {
    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `public_base_url` when configured).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// An adapter's base URL, e.g. `http://127.0.0.1:PORT/evolink` (under `public_base_url`
    /// when configured).
    pub fn vendor_base_url(&self, vendor: Vendor) -> String {
        format!("{}/{}", self.base_url, vendor.as_str())
    }

    /// `http://<bound address>`, whatever `public_base_url` says (for clients on this machine).
    pub fn local_url(&self) -> &str {
        &self.own_url
    }

    /// URL of a named sample, e.g. `media_url("dance-8s.mp4")`.
    pub fn media_url(&self, name: &str) -> String {
        format!("{}/media/{name}", self.base_url)
    }

    /// Names of all samples served under `/media/`.
    pub fn media_names(&self) -> Vec<&'static str> {
        motionq_media::sample_names().collect()
    }

    /// A snapshot of the ledger (tasks are advanced to now first).
    pub fn ledger(&self) -> Ledger {
        self.engine.ledger()
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.engine.faults()
    }

    /// Replaces the faults (same as `PUT /_sim/faults`); storm windows restart now.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        self.engine.set_faults(faults)
    }

    /// Clears tasks, links and the ledger and restores balances (same as `POST /_sim/reset`).
    pub fn reset(&self) {
        self.engine.reset()
    }

    /// Stops accepting, drops open connections and background work, and waits for the loop.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}
