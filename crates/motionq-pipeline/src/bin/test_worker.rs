//! A worker process for the crash test (it is SIGKILLed repeatedly). Not part of motionq's
//! product. Usage: `motionq-pipeline-test-worker <config.toml>`; API keys come from the env
//! vars the config names; `MOTIONQ_TEST_CRASH_AFTER_CREATE=<p>` aborts the process right after
//! a create call was answered with probability `p`. Runs every stage until SIGTERM/Ctrl-C.

use std::time::Duration;

use motionq_pipeline::{run_worker, PipelineOptions, WorkerOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: motionq-pipeline-test-worker <config.toml>"))?;
    let cfg = motionq_config::Config::load(&[path.into()])?;
    let ms = |var: &str, d: u64| {
        Duration::from_millis(
            std::env::var(var)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d),
        )
    };
    let opts = WorkerOptions {
        pipeline: PipelineOptions {
            first_poll_delay: ms("MQT_POLL_MS", 200),
            poll_min: ms("MQT_POLL_MS", 200),
            poll_max: ms("MQT_POLL_MAX_MS", 1000),
            feeder_interval: ms("MQT_FEEDER_MS", 100),
            sweep_interval: ms("MQT_SWEEP_MS", 2000),
            sweep_stale: ms("MQT_STALE_MS", 8000),
            job_lock_ttl: ms("MQT_LOCK_MS", 4000),
            ..PipelineOptions::default()
        },
        shutdown_timeout: Duration::from_secs(10),
        ..WorkerOptions::default()
    };
    println!("worker {} up", std::process::id());
    run_worker(&cfg, opts, async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    })
    .await
}
