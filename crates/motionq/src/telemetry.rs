//! `/metrics` and `/healthz` for every working process (worker, demo): the metric catalogue of
//! `motionq-metrics` with the Redis-reading scrape hook of
//! [`motionq_pipeline::telemetry`], and a health probe that follows the Redis connection.

use std::net::SocketAddr;
use std::time::Duration;

use motionq_config::Config;
use motionq_metrics::Metrics;
use motionq_store::Store;

/// Installs the scrape hook on `metrics`.
pub async fn install_hook(cfg: &Config, metrics: &Metrics, store: Store) -> anyhow::Result<()> {
    motionq_pipeline::telemetry::install_scrape_hook(cfg, metrics, store).await
}

/// Serves `/metrics` and `/healthz` on `addr` until `shutdown` resolves; `/healthz` answers 503
/// while Redis does not answer a `PING` (checked every 5 s).
pub fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    store: Store,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let health = motionq_pipeline::telemetry::redis_health(store, Duration::from_secs(5));
    tokio::spawn(async move {
        if let Err(e) = motionq_metrics::serve(addr, metrics, health, shutdown).await {
            tracing::warn!(%addr, error = %e, "metrics endpoint not available");
        }
    });
}
