//! `motionq worker [--stages submit,poll,collect,feeder]`: one stateless worker process. Run one,
//! or fifty on ten machines against one Redis.

use motionq_config::Config;
use motionq_pipeline::{run_worker, Stages, WorkerOptions};

use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Stages this process runs: any of submit, poll, collect, feeder, or all.
    #[arg(long, default_value = "all")]
    pub stages: String,
    /// Concurrent jobs per stage (default: `[worker]` in the config).
    #[arg(long)]
    pub submit_concurrency: Option<usize>,
    #[arg(long)]
    pub poll_concurrency: Option<usize>,
    #[arg(long)]
    pub collect_concurrency: Option<usize>,
    /// Async runtime threads of this process. One is the default: every stage waits on the
    /// network, and on a small machine shared with Redis a second thread costs more in
    /// cross-thread wake-ups than it gives (measured: `motionq-bench queue`, README). On a
    /// larger machine run more worker processes, or raise this.
    #[arg(long, env = "MOTIONQ_WORKER_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,
}

pub async fn run(a: &WorkerArgs, cfg: &Config) -> Result<(), Failure> {
    let stages = Stages::parse(&a.stages).map_err(Failure::invalid)?;
    let metrics = motionq_metrics::Metrics::new();
    let store = super::control::store(cfg).await?;
    crate::telemetry::install_hook(cfg, &metrics, store.clone())
        .await
        .map_err(|e| Failure::operational(format!("{e:#}")))?;
    let addr: std::net::SocketAddr = cfg.metrics.listen.parse().map_err(|e| {
        Failure::invalid(format!(
            "metrics.listen `{}` is not an address: {e}",
            cfg.metrics.listen
        ))
    })?;
    crate::telemetry::serve(addr, metrics.clone(), store, shutdown_signal());
    let opts = WorkerOptions {
        stages,
        metrics: Some(metrics),
        submit_concurrency: a.submit_concurrency,
        poll_concurrency: a.poll_concurrency,
        collect_concurrency: a.collect_concurrency,
        pipeline: motionq_pipeline::PipelineOptions::from_worker_config(&cfg.worker),
        ..Default::default()
    };
    tracing::info!(stages = %a.stages, redis = %motionq_config::redact_url(&cfg.redis.url), "worker starting");
    run_worker(cfg, opts, shutdown_signal())
        .await
        .map_err(|e| Failure::operational(format!("{e:#}")))
}

/// Resolves on Ctrl-C or SIGTERM: in-flight work finishes or goes back to its queue.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
