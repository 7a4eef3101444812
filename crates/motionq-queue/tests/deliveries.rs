//! Delivery accounting: a job whose entry keeps being taken from dead workers is dead-lettered
//! after `max_deliveries`, without running again; a `DeferredError` (waiting for a limit) is
//! re-offered without using up attempts.

mod common;

use std::time::Duration;

use common::*;
use motionq_queue::{QueueConfig, StreamQueue};
use motionq_testkit::RedisServer;

#[tokio::test]
async fn a_job_that_keeps_killing_workers_is_dead_lettered() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cfg = QueueConfig {
        max_deliveries: 2,
        claim_min_idle_ms: 400,
        refresh_interval_ms: 100,
        claim_interval_ms: 100,
        ..fast_cfg()
    };
    let queue = StreamQueue::<Job>::connect(&redis_cfg(&redis.url()), "crashy", cfg).await?;
    let id = queue.push(&Job::new(1)).await?;
    let stream = queue.keys().stream.clone();
    let mut raw = raw_conn(&redis.url()).await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("motionq")
        .arg("0")
        .query_async(&mut raw)
        .await?;
    // Two workers take it and die without acknowledging (deliveries 1, then 2).
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("motionq")
        .arg("crashed-1")
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut raw)
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _: redis::Value = redis::cmd("XAUTOCLAIM")
        .arg(&stream)
        .arg("motionq")
        .arg("crashed-2")
        .arg(400)
        .arg("0-0")
        .query_async(&mut raw)
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The third delivery exceeds max_deliveries = 2: dead letter, the handler never runs.
    let rec = Recorder::default();
    let w = start_worker("rescuer", queue.clone(), &rec);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while queue.stats().await?.dead == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = queue.dead_letters(10).await?;
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert_eq!(dead[0].job_id, id);
    assert!(
        dead[0].error.contains("delivered 3 times"),
        "{}",
        dead[0].error
    );
    assert!(rec.runs().is_empty());
    let s = queue.stats().await?;
    assert_eq!((s.pending, s.stream_len), (0, 0), "{s:?}");
    w.stop().await?;
    Ok(())
}

#[tokio::test]
async fn deferred_runs_do_not_use_up_attempts() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cfg = QueueConfig {
        defer_delay_ms: 50,
        ..fast_cfg() // max_attempts 3
    };
    let queue = StreamQueue::<Job>::connect(&redis_cfg(&redis.url()), "defer", cfg).await?;
    queue
        .push(&Job {
            defer_first: 5,
            ..Job::new(1)
        })
        .await?;
    let rec = Recorder::default();
    let w = start_worker("defer", queue.clone(), &rec);
    assert!(
        rec.wait_until(Duration::from_secs(20), |r| r.succeeded() == 1)
            .await,
        "{:#?}",
        rec.runs()
    );
    let runs = rec.runs();
    // Five deferrals (more than max_attempts) and a success, all as attempt 1.
    assert_eq!(runs.len(), 6, "{runs:#?}");
    assert!(runs.iter().all(|r| r.attempt == 1), "{runs:#?}");
    assert_eq!(queue.stats().await?.dead, 0);
    w.stop().await?;
    Ok(())
}
