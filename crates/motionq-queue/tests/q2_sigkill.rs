//! Q2: a worker process killed with SIGKILL while holding jobs: another worker runs them within
//! 30 s (default config). Also: a live worker's long job is not taken over (claims are
//! refreshed), and a graceful stop finishes the running job and gives back the prefetched ones.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use apalis::prelude::*;
use common::*;
use motionq_queue::{QueueConfig, StreamQueue};
use motionq_testkit::RedisServer;

#[tokio::test]
async fn sigkilled_workers_jobs_are_redelivered_within_30s() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let queue =
        StreamQueue::<Job>::connect(&redis_cfg(&redis.url()), "q", QueueConfig::default()).await?;
    let ids = queue
        .push_bulk(&(0..10).map(Job::new).collect::<Vec<_>>())
        .await?;

    let mut child = Command::new(env!("CARGO_BIN_EXE_motionq-queue-test-worker"))
        .env("MQ_REDIS_URL", redis.url())
        .env("MQ_PREFIX", "t")
        .env("MQ_QUEUE", "q")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait until the child runs all 10 (they sleep for an hour).
    let mut started = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while started < 10 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .map_err(|_| anyhow::anyhow!("the child worker started only {started} of 10 jobs"))?;
        if line.starts_with("start ") {
            started += 1;
        }
    }
    assert_eq!(queue.stats().await?.pending, 10);
    child.kill()?; // SIGKILL
    child.wait()?;
    let killed_at = Instant::now();

    let rec = Recorder::default();
    let w = start_worker("rescuer", queue.clone(), &rec);
    let ok = rec
        .wait_until(Duration::from_secs(30), |r| r.succeeded() == 10)
        .await;
    println!(
        "redelivered {} of 10 held jobs {:?} after SIGKILL (claim_min_idle_ms = 15000)",
        rec.succeeded(),
        killed_at.elapsed()
    );
    assert!(ok, "all 10 jobs of the killed worker ran within 30 s");
    let mut seen: Vec<String> = rec.runs().into_iter().map(|r| r.job_id).collect();
    seen.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(seen, ids, "each held job ran exactly once more");
    w.stop().await?;
    let s = queue.stats().await?;
    assert_eq!((s.pending, s.stream_len), (0, 0), "{s:?}");
    Ok(())
}

fn short_claims() -> QueueConfig {
    QueueConfig {
        claim_min_idle_ms: 1_000,
        claim_interval_ms: 200,
        refresh_interval_ms: 250,
        block_ms: 300,
        ..QueueConfig::default()
    }
}

#[tokio::test]
async fn long_jobs_of_live_workers_are_not_taken_over() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cfg = redis_cfg(&redis.url());
    let queue = StreamQueue::<Job>::connect(&cfg, "long", short_claims()).await?;
    let rec = Recorder::default();
    let a = start_worker("a", queue.clone(), &rec);
    queue
        .push(&Job {
            sleep_ms: 4_000,
            ..Job::new(1)
        })
        .await?;
    // Let worker a take it, then start a second worker that claims idle entries every 200 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = start_worker("b", queue.clone(), &rec);
    assert!(
        rec.wait_until(Duration::from_secs(20), |r| r.succeeded() == 1)
            .await
    );
    // Four times the min idle time passed while it ran; give a thief time to finish too.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(rec.runs().len(), 1, "ran once: {:#?}", rec.runs());
    a.stop().await?;
    b.stop().await?;
    Ok(())
}

#[tokio::test]
async fn graceful_stop_finishes_running_and_returns_prefetched() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cfg = redis_cfg(&redis.url());
    let queue = StreamQueue::<Job>::connect(
        &cfg,
        "drain",
        QueueConfig {
            prefetch: 8,
            ..short_claims()
        },
    )
    .await?;
    let jobs: Vec<Job> = (0..8)
        .map(|n| Job {
            sleep_ms: 500,
            ..Job::new(n)
        })
        .collect();
    queue.push_bulk(&jobs).await?;

    let rec = Recorder::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // One job at a time: the other seven wait in the worker's prefetch buffer.
    let worker = WorkerBuilder::new("drain")
        .backend(queue.clone())
        .data(rec.clone())
        .concurrency(1)
        .build(handler);
    let handle = tokio::spawn(worker.run_until(async move {
        let _ = stop_rx.await;
        Ok::<(), std::io::Error>(())
    }));
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue.stats().await?.pending < 8 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(queue.stats().await?.pending, 8, "all eight fetched");
    let _ = stop_tx.send(());
    handle.await??;
    // The running job finished; the rest went back to the stream, not to a dead consumer.
    let done = rec.succeeded();
    assert!((1..8).contains(&done), "{done} finished before the stop");
    let s = queue.stats().await?;
    assert_eq!(s.pending, 0, "{s:?}");
    assert_eq!(s.unread as usize, 8 - done, "{s:?}");
    // A new worker takes them at once (no claim_min_idle wait needed, but the bound is loose).
    let w = start_worker("drain2", queue.clone(), &rec);
    assert!(
        rec.wait_until(Duration::from_secs(20), |r| r.succeeded() == 8)
            .await
    );
    assert_eq!(rec.runs().len(), 8, "nothing ran twice");
    w.stop().await?;
    Ok(())
}
