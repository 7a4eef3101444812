//! Q3: Redis killed with SIGKILL, and later shut down cleanly, while jobs are pushed and
//! processed: workers reconnect with backoff and go on, and every push that Redis acknowledged
//! is processed (AOF with `appendfsync always`).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use motionq_queue::StreamQueue;
use motionq_testkit::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_survive_redis_kill_and_restart() -> anyhow::Result<()> {
    let mut redis = RedisServer::start().await?;
    let cfg = redis_cfg(&redis.url());
    let queue = StreamQueue::<Job>::connect(&cfg, "restart", fast_cfg()).await?;
    let rec = Recorder::default();
    let w1 = start_worker("r1", queue.clone(), &rec);
    let w2 = start_worker("r2", queue.clone(), &rec);

    // A producer pushing continuously; it records the pushes Redis acknowledged.
    let acked: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let failed = Arc::new(Mutex::new(0u64));
    let running = Arc::new(AtomicBool::new(true));
    let producer = {
        let (q, acked, failed, running) = (
            queue.clone(),
            acked.clone(),
            failed.clone(),
            running.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0u64;
            while running.load(Ordering::SeqCst) {
                match q.push(&Job::new(n)).await {
                    Ok(_) => {
                        acked.lock().unwrap().insert(n);
                    }
                    Err(_) => {
                        *failed.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let acked_now = |a: &Arc<Mutex<HashSet<u64>>>| a.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before_kill = acked_now(&acked);
    redis.kill(); // SIGKILL
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    redis.restart().await?;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let before_shutdown = acked_now(&acked);
    redis.shutdown().await?; // clean SHUTDOWN
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    redis.restart().await?;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    running.store(false, Ordering::SeqCst);
    producer.await?;
    let acked: HashSet<u64> = acked.lock().unwrap().clone();
    println!(
        "acknowledged pushes: {} (before kill {before_kill}, before shutdown {before_shutdown}), \
         failed pushes while Redis was down: {}",
        acked.len(),
        failed.lock().unwrap()
    );
    assert!(acked.len() > before_shutdown && before_shutdown > before_kill);

    let ok = rec
        .wait_until(Duration::from_secs(60), |r| {
            let done = r.ok_counts();
            acked.iter().all(|n| done.contains_key(n))
        })
        .await;
    let done = rec.ok_counts();
    let missing: Vec<u64> = acked
        .iter()
        .filter(|n| !done.contains_key(n))
        .copied()
        .collect();
    assert!(ok, "acknowledged but never processed: {missing:?}");
    let dups = done.values().filter(|&&c| c > 1).count();
    println!(
        "processed {} distinct jobs, {dups} more than once (at-least-once)",
        done.len()
    );
    assert!(w1.is_running() && w2.is_running(), "no worker died");
    // Both workers still take new work after the restarts.
    queue.push(&Job::new(u64::MAX)).await?;
    assert!(
        rec.wait_until(Duration::from_secs(20), |r| r
            .ok_counts()
            .contains_key(&u64::MAX))
            .await
    );
    w1.stop().await?;
    w2.stop().await?;
    Ok(())
}
