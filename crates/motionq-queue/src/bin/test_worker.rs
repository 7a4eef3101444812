//! A worker process for the queue tests (Q2 kills it with SIGKILL while it holds jobs).
//! Not part of motionq's product; configured by environment variables:
//!
//! * `MQ_REDIS_URL` (required), `MQ_PREFIX` (default `t`), `MQ_QUEUE` (default `q`)
//! * `MQ_SLEEP_MS`: how long each job runs (default 3600000: holds its jobs)
//! * `MQ_PREFETCH` (default 16), `MQ_CLAIM_MIN_IDLE_MS` (default: the queue default)
//!
//! Prints `identity <id>`, then `start <job-id>` and `done <job-id>` lines on stdout.

use std::io::Write;
use std::time::Duration;

use apalis::prelude::*;
use motionq_config::RedisConfig;
use motionq_queue::{Delivery, QueueConfig, StreamQueue};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn handle(_job: serde_json::Value, d: Delivery, sleep: Data<u64>) -> Result<(), BoxDynError> {
    say(format!("start {}", d.job_id));
    tokio::time::sleep(Duration::from_millis(*sleep)).await;
    say(format!("done {}", d.job_id));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = env("MQ_REDIS_URL").ok_or("MQ_REDIS_URL is required")?;
    let redis = RedisConfig {
        url,
        key_prefix: env("MQ_PREFIX").unwrap_or_else(|| "t".into()),
        ..Default::default()
    };
    let mut cfg = QueueConfig::default();
    if let Some(v) = env("MQ_PREFETCH") {
        cfg.prefetch = v.parse()?;
    }
    if let Some(v) = env("MQ_CLAIM_MIN_IDLE_MS") {
        cfg.claim_min_idle_ms = v.parse()?;
        cfg.refresh_interval_ms = cfg.claim_min_idle_ms / 4;
        cfg.claim_interval_ms = cfg.claim_min_idle_ms / 4;
    }
    let sleep: u64 = env("MQ_SLEEP_MS")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(3_600_000);
    let queue_name = env("MQ_QUEUE").unwrap_or_else(|| "q".into());
    let queue = StreamQueue::<serde_json::Value>::connect(&redis, &queue_name, cfg).await?;
    say(format!("identity {}", queue.identity()));
    WorkerBuilder::new("test-worker")
        .backend(queue)
        .data(sleep)
        .build(handle)
        .run()
        .await?;
    Ok(())
}
