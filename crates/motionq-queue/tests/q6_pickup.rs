//! Q6: an idle worker picks up a new job promptly (the blocking read is woken by the push).
//! The latency is measured and printed, not asserted (speed belongs to the benchmark).

mod common;

use std::time::{Duration, Instant};

use common::*;
use motionq_queue::{QueueConfig, StreamQueue};
use motionq_testkit::RedisServer;

#[tokio::test]
async fn idle_worker_picks_up_new_jobs() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    // Default config: what production runs.
    let queue =
        StreamQueue::<Job>::connect(&redis_cfg(&redis.url()), "pickup", QueueConfig::default())
            .await?;
    let rec = Recorder::default();
    let w = start_worker("pickup", queue.clone(), &rec);
    let mut latencies = Vec::new();
    for n in 0..5u64 {
        // Idle for longer than one blocking read, so the worker is waiting in a fresh one.
        tokio::time::sleep(Duration::from_millis(1_300)).await;
        let t0 = Instant::now();
        queue.push(&Job::new(n)).await?;
        assert!(
            rec.wait_until(Duration::from_secs(10), |r| r.succeeded() == n as usize + 1)
                .await,
            "job {n} was picked up"
        );
        let at = rec.runs().last().unwrap().at;
        latencies.push(at - t0);
    }
    println!("idle pickup latencies: {latencies:?}");
    w.stop().await?;
    Ok(())
}
