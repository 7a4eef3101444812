//! Push, consume, acknowledge: the happy path, stats and graceful stop.

mod common;

use std::time::Duration;

use common::*;
use motionq_queue::StreamQueue;
use motionq_testkit::RedisServer;

#[tokio::test]
async fn push_consume_ack_and_stats() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cfg = redis_cfg(&redis.url());
    let queue = StreamQueue::<Job>::connect(&cfg, "basic", fast_cfg()).await?;
    let mut ids = Vec::new();
    for n in 0..50 {
        ids.push(queue.push(&Job::new(n)).await?);
    }
    ids.extend(
        queue
            .push_bulk(&(50..100).map(Job::new).collect::<Vec<_>>())
            .await?,
    );
    let before = queue.stats().await?;
    assert_eq!(before.stream_len, 100);
    assert_eq!(before.depth(), 100);

    let rec = Recorder::default();
    let w = start_worker("basic", queue.clone(), &rec);
    assert!(
        rec.wait_until(Duration::from_secs(30), |r| r.succeeded() >= 100)
            .await
    );
    let counts = rec.ok_counts();
    assert_eq!(counts.len(), 100);
    assert!(
        counts.values().all(|&c| c == 1),
        "each job ran once: {counts:?}"
    );
    // Job ids are the ones push returned, and apalis's attempt is 1 on a first run.
    let mut seen: Vec<String> = rec.runs().into_iter().map(|r| r.job_id).collect();
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
    assert!(rec
        .runs()
        .iter()
        .all(|r| r.attempt == 1 && r.apalis_attempt == 1));

    w.stop().await?;
    let after = queue.stats().await?;
    assert_eq!(
        after.stream_len, 0,
        "acknowledged entries are deleted: {after:?}"
    );
    assert_eq!(after.pending, 0);
    assert_eq!(after.depth(), 0);
    // The stopped consumer held nothing, so it left the group.
    assert_eq!(after.consumers, 0);
    Ok(())
}

#[tokio::test]
async fn push_after_runs_later() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cfg = redis_cfg(&redis.url());
    let queue = StreamQueue::<Job>::connect(&cfg, "later", fast_cfg()).await?;
    queue
        .push_after(&Job::new(1), Duration::from_millis(600))
        .await?;
    assert_eq!(queue.stats().await?.delayed, 1);
    let rec = Recorder::default();
    let w = start_worker("later", queue.clone(), &rec);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rec.succeeded(), 0, "not due yet");
    assert!(
        rec.wait_until(Duration::from_secs(10), |r| r.succeeded() == 1)
            .await
    );
    assert_eq!(queue.stats().await?.delayed, 0);
    w.stop().await?;
    Ok(())
}
