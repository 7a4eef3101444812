//! The HTTP side: `GET /metrics` and `GET /healthz`, as a router to merge into a bigger server
//! (`motionq serve`) or as a standalone server (`motionq worker`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::Metrics;

/// Content type of the Prometheus text exposition format 0.0.4.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

type Health = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    health: Health,
}

/// A router with `GET /metrics` (runs the scrape hook, then the text format) and `GET /healthz`
/// (`200 ok` when `health()` is true, `503 unhealthy` otherwise).
pub fn router(metrics: Metrics, health: impl Fn() -> bool + Send + Sync + 'static) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz_handler))
        .with_state(AppState {
            metrics,
            health: Arc::new(health),
        })
}

async fn metrics_handler(State(s): State<AppState>) -> Response {
    let body = s.metrics.render().await;
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}

async fn healthz_handler(State(s): State<AppState>) -> Response {
    if (s.health)() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n").into_response()
    }
}

/// Binds `addr` and serves [`router`] until `shutdown` resolves (in-flight scrapes finish).
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    health: impl Fn() -> bool + Send + Sync + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_listener(listener, metrics, health, shutdown).await
}

/// Like [`serve`] on a listener already bound (tests bind port 0 and read `local_addr`).
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    health: impl Fn() -> bool + Send + Sync + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, health))
        .with_graceful_shutdown(shutdown)
        .await
}
