//! Q1: a 100,000-job backlog built while no worker runs is drained without error, and so is a
//! 100,000-job backlog of due delayed jobs (the case that wedges apalis-redis 1.0.0 above
//! ~8,000: promotion here moves bounded chunks).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use motionq_queue::{QueueConfig, StreamQueue};
use motionq_testkit::{RedisOptions, RedisServer};

const N: u64 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_backlog_drains() -> anyhow::Result<()> {
    let redis = RedisServer::start_with(RedisOptions {
        appendfsync: "everysec",
        ..Default::default()
    })
    .await?;
    let cfg = QueueConfig {
        prefetch: 256,
        ..QueueConfig::default()
    };
    let queue = StreamQueue::<Job>::connect(&redis_cfg(&redis.url()), "backlog", cfg).await?;

    let t0 = Instant::now();
    let direct: Vec<Job> = (0..N).map(Job::new).collect();
    let mut ids: HashSet<String> = queue.push_bulk(&direct).await?.into_iter().collect();
    let delayed: Vec<Job> = (N..2 * N).map(Job::new).collect();
    ids.extend(queue.push_bulk_after(&delayed, Duration::ZERO).await?);
    println!("pushed {} jobs in {:?}", 2 * N, t0.elapsed());
    assert_eq!(ids.len(), 2 * N as usize);
    let s = queue.stats().await?;
    assert_eq!((s.stream_len, s.delayed), (N, N), "{s:?}");

    let rec = Recorder::default();
    let t1 = Instant::now();
    let w = start_worker("backlog", queue.clone(), &rec);
    let drained = rec
        .wait_until(Duration::from_secs(600), |r| {
            r.runs.lock().unwrap().len() >= 2 * N as usize
        })
        .await;
    let took = t1.elapsed();
    assert!(drained, "only {} of {} jobs ran", rec.runs().len(), 2 * N);
    println!(
        "drained {} jobs in {took:?} ({:.0} jobs/s, debug build)",
        2 * N,
        (2 * N) as f64 / took.as_secs_f64()
    );
    assert!(w.is_running(), "the worker never stopped on an error");
    w.stop().await?;

    let runs = rec.runs();
    // No redelivery happens in this test (no crash, claims refreshed): every job exactly once.
    assert_eq!(runs.len(), 2 * N as usize);
    let seen: HashSet<String> = runs.iter().map(|r| r.job_id.clone()).collect();
    assert_eq!(seen, ids);
    assert!(runs.iter().all(|r| r.ok));
    let s = queue.stats().await?;
    assert_eq!(
        (s.stream_len, s.pending, s.delayed, s.dead),
        (0, 0, 0, 0),
        "{s:?}"
    );
    Ok(())
}
