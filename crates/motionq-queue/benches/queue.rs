//! Queue throughput and idle pickup latency against a private redis-server
//! (`appendfsync everysec`), one worker process, no-op handler:
//!
//! ```text
//! cargo bench -p motionq-queue --bench queue
//! ```
//!
//! Prints push (bulk and one by one), consume (read + run + ack, prefetch 16 and 256),
//! orphan takeover (XAUTOCLAIM) and idle pickup latency. Figures are in the crate docs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::*;
use motionq_config::RedisConfig;
use motionq_queue::{QueueConfig, StreamQueue};
use motionq_testkit::{RedisOptions, RedisServer};

const N: u64 = 100_000;

#[derive(Clone, Default)]
struct Counter {
    done: Arc<AtomicU64>,
    last: Arc<std::sync::Mutex<Option<Instant>>>,
}

async fn noop(_job: u64, c: Data<Counter>) -> Result<(), BoxDynError> {
    c.done.fetch_add(1, Ordering::Relaxed);
    *c.last.lock().unwrap() = Some(Instant::now());
    Ok(())
}

type Stop = tokio::sync::oneshot::Sender<()>;

fn spawn_worker(
    q: StreamQueue<u64>,
    c: &Counter,
) -> (Stop, tokio::task::JoinHandle<Result<(), WorkerError>>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let w = WorkerBuilder::new("bench")
        .backend(q)
        .data(c.clone())
        .build(noop);
    let h = tokio::spawn(w.run_until(async move {
        let _ = rx.await;
        Ok::<(), std::io::Error>(())
    }));
    (tx, h)
}

async fn wait_for(c: &Counter, n: u64) {
    while c.done.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn rate(n: u64, d: Duration) -> String {
    format!(
        "{:>9.0} jobs/s ({n} in {d:.2?})",
        n as f64 / d.as_secs_f64()
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let redis = RedisServer::start_with(RedisOptions {
        appendfsync: "everysec",
        ..Default::default()
    })
    .await?;
    let rcfg = RedisConfig {
        url: redis.url(),
        key_prefix: "bench".into(),
        ..Default::default()
    };
    let jobs: Vec<u64> = (0..N).collect();

    // Push.
    let q = StreamQueue::<u64>::connect(&rcfg, "push", QueueConfig::default()).await?;
    let t = Instant::now();
    q.push_bulk(&jobs).await?;
    println!("push_bulk            {}", rate(N, t.elapsed()));
    let t = Instant::now();
    for j in 0..5_000u64 {
        q.push(&j).await?;
    }
    println!("push (one at a time) {}", rate(5_000, t.elapsed()));
    let t = Instant::now();
    q.push_bulk_after(&jobs, Duration::ZERO).await?;
    println!("push_bulk_after      {}", rate(N, t.elapsed()));

    // Consume: read + handler + ack, for a backlog of N.
    for prefetch in [16usize, 256] {
        let name = format!("consume{prefetch}");
        let q = StreamQueue::<u64>::connect(
            &rcfg,
            &name,
            QueueConfig {
                prefetch,
                ..Default::default()
            },
        )
        .await?;
        q.push_bulk(&jobs).await?;
        let c = Counter::default();
        let t = Instant::now();
        let (stop, h) = spawn_worker(q.clone(), &c);
        wait_for(&c, N).await;
        println!("consume prefetch {prefetch:<4}{}", rate(N, t.elapsed()));
        let _ = stop.send(());
        h.await??;
    }

    // Due delayed backlog: promotion (bounded Lua chunks) + consume.
    {
        let q = StreamQueue::<u64>::connect(
            &rcfg,
            "delayed",
            QueueConfig {
                prefetch: 256,
                ..Default::default()
            },
        )
        .await?;
        q.push_bulk_after(&jobs, Duration::ZERO).await?;
        let c = Counter::default();
        let t = Instant::now();
        let (stop, h) = spawn_worker(q.clone(), &c);
        wait_for(&c, N).await;
        println!("due delayed consume  {}", rate(N, t.elapsed()));
        let _ = stop.send(());
        h.await??;
    }

    // Orphan takeover: 20,000 entries held by a consumer that died.
    {
        let m = 20_000u64;
        let cfg = QueueConfig {
            prefetch: 256,
            claim_min_idle_ms: 400,
            claim_interval_ms: 100,
            refresh_interval_ms: 100,
            ..Default::default()
        };
        let q = StreamQueue::<u64>::connect(&rcfg, "claim", cfg).await?;
        q.push_bulk(&jobs[..m as usize]).await?;
        let mut raw = redis::Client::open(redis.url())?
            .get_multiplexed_async_connection()
            .await?;
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&q.keys().stream)
            .arg("motionq")
            .arg("0")
            .query_async(&mut raw)
            .await?;
        // In chunks: one reply of 20,000 entries would outlast the client's response timeout.
        for _ in 0..m / 1_000 {
            let _: redis::Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("motionq")
                .arg("dead-worker")
                .arg("COUNT")
                .arg(1_000)
                .arg("STREAMS")
                .arg(&q.keys().stream)
                .arg(">")
                .query_async(&mut raw)
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let c = Counter::default();
        let t = Instant::now();
        let (stop, h) = spawn_worker(q.clone(), &c);
        wait_for(&c, m).await;
        println!(
            "orphan takeover      {} (claim_interval 100 ms, COUNT = prefetch 256)",
            rate(m, t.elapsed())
        );
        let _ = stop.send(());
        h.await??;
    }

    // Idle pickup latency: push to an idle worker, time to the handler.
    {
        let q = StreamQueue::<u64>::connect(&rcfg, "idle", QueueConfig::default()).await?;
        let c = Counter::default();
        let (stop, h) = spawn_worker(q.clone(), &c);
        let mut lat = Vec::new();
        for i in 0..40u64 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let t = Instant::now();
            q.push(&i).await?;
            wait_for(&c, i + 1).await;
            let at = c.last.lock().unwrap().unwrap_or_else(Instant::now);
            lat.push(at.saturating_duration_since(t));
        }
        lat.sort();
        println!(
            "idle pickup latency  p50 {:.2?}  p90 {:.2?}  max {:.2?} (40 samples)",
            lat[lat.len() / 2],
            lat[lat.len() * 9 / 10],
            lat[lat.len() - 1]
        );
        let _ = stop.send(());
        h.await??;
    }
    Ok(())
}
