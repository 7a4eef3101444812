//! The queue under apalis's `Monitor`: several registered workers share a queue, and a
//! shutdown signal drains them gracefully (running jobs finish, prefetched ones go back, no job
//! is lost or run twice); a second Monitor finishes the rest.

mod common;

use std::time::Duration;

use apalis::prelude::*;
use common::*;
use motionq_queue::{QueueConfig, StreamQueue};
use motionq_testkit::RedisServer;

fn monitor(queue: &StreamQueue<Job>, rec: &Recorder) -> Monitor {
    let (queue, rec) = (queue.clone(), rec.clone());
    Monitor::new()
        .register_n(2, move |i, _restarts| {
            WorkerBuilder::new(format!("m{i}"))
                .backend(queue.clone())
                .data(rec.clone())
                .concurrency(2)
                .build(handler)
        })
        .shutdown_timeout(Duration::from_secs(30))
}

#[tokio::test]
async fn monitor_runs_workers_and_drains_on_shutdown() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let queue = StreamQueue::<Job>::connect(
        &redis_cfg(&redis.url()),
        "monitor",
        QueueConfig {
            prefetch: 4,
            ..fast_cfg()
        },
    )
    .await?;
    let jobs: Vec<Job> = (0..20)
        .map(|n| Job {
            sleep_ms: 300,
            ..Job::new(n)
        })
        .collect();
    queue.push_bulk(&jobs).await?;

    let rec = Recorder::default();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(monitor(&queue, &rec).run_with_signal(async move {
        let _ = rx.await;
        Ok(())
    }));
    // Both workers run (2 x concurrency 2): stop after a few finished.
    assert!(
        rec.wait_until(Duration::from_secs(20), |r| r.succeeded() >= 4)
            .await
    );
    let _ = tx.send(());
    run.await??;
    let first = rec.succeeded();
    assert!(first < 20, "stopped early: {first}");
    let s = queue.stats().await?;
    assert_eq!(
        s.pending, 0,
        "running jobs finished, prefetched ones given back: {s:?}"
    );
    assert_eq!(s.unread as usize, 20 - first, "{s:?}");
    assert_eq!(s.consumers, 0, "stopped consumers left the group: {s:?}");

    // A new Monitor (a restarted process) finishes the rest; nothing ran twice.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(monitor(&queue, &rec).run_with_signal(async move {
        let _ = rx.await;
        Ok(())
    }));
    assert!(
        rec.wait_until(Duration::from_secs(30), |r| r.succeeded() == 20)
            .await
    );
    let _ = tx.send(());
    run.await??;
    let counts = rec.ok_counts();
    assert_eq!(counts.len(), 20);
    assert!(counts.values().all(|&c| c == 1), "{counts:?}");
    Ok(())
}
