//! Q8: on a local three-node Redis Cluster every queue operation works (one hash tag per queue,
//! no CROSSSLOT), and finished entries are trimmed by policy: deleted at ack by default, kept for
//! `keep_finished_ms` then trimmed (never a pending or unread one), dead letter capped.

mod common;

use std::time::{Duration, Instant};

use apalis::prelude::*;
use common::*;
use motionq_config::{RedisConfig, RedisMode};
use motionq_queue::{QueueConfig, StreamQueue};
use motionq_testkit::{RedisCluster, RedisServer};
use redis::AsyncCommands;

fn cluster_cfg(c: &RedisCluster) -> RedisConfig {
    let urls = c.urls();
    RedisConfig {
        url: urls[0].clone(),
        mode: RedisMode::Cluster,
        nodes: urls,
        key_prefix: "t".into(),
        ..Default::default()
    }
}

async fn wait_stats(
    q: &StreamQueue<Job>,
    limit: Duration,
    pred: impl Fn(&motionq_queue::QueueStats) -> bool,
) -> anyhow::Result<motionq_queue::QueueStats> {
    let deadline = Instant::now() + limit;
    loop {
        let s = q.stats().await?;
        if pred(&s) || Instant::now() > deadline {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_operation_works_on_a_three_node_cluster() -> anyhow::Result<()> {
    let cluster = RedisCluster::start().await?;
    let cfg = cluster_cfg(&cluster);
    let qcfg = QueueConfig {
        dead_max_len: 3,
        ..fast_cfg()
    };
    // Several queues, so their hash tags land on different nodes.
    for name in ["submit", "poll", "collect"] {
        let queue = StreamQueue::<Job>::connect(&cfg, name, qcfg.clone()).await?;
        queue.push(&Job::new(1)).await?;
        queue
            .push_bulk(&(2..20).map(Job::new).collect::<Vec<_>>())
            .await?;
        queue
            .push_after(&Job::new(20), Duration::from_millis(100))
            .await?;
        queue
            .push_bulk_after(&[Job::new(21)], Duration::from_millis(100))
            .await?;
        queue
            .push(&Job {
                fail_first: 1,
                ..Job::new(22)
            })
            .await?;
        for n in 30..36 {
            queue
                .push(&Job {
                    abort: true,
                    ..Job::new(n)
                })
                .await?;
        }
        let rec = Recorder::default();
        let w = start_worker(name, queue.clone(), &rec);
        assert!(
            rec.wait_until(Duration::from_secs(30), |r| r.succeeded() == 22)
                .await,
            "{name}: {:#?}",
            rec.runs()
        );
        // Jobs 1..=22 succeed; 22 after one retry.
        assert_eq!(rec.runs().iter().filter(|r| r.n == 22).count(), 2);
        let s = wait_stats(&queue, Duration::from_secs(10), |s| {
            s.pending == 0 && s.stream_len == 0
        })
        .await?;
        assert_eq!((s.stream_len, s.pending, s.delayed), (0, 0, 0), "{s:?}");
        // Six aborted jobs, dead letter capped at three.
        assert_eq!(s.dead, 3, "{s:?}");
        let dead = queue.dead_letters(10).await?;
        assert!(dead.iter().all(|d| d.error.contains("invalid")));
        assert_eq!(queue.requeue_dead(&[dead[0].dead_id.clone()]).await?, 1);
        assert!(
            rec.wait_until(Duration::from_secs(10), |r| r.runs().len()
                == 22 + 1 + 6 + 1)
                .await
        );
        assert!(w.is_running());
        w.stop().await?;
        // Keys of this queue all hash to one slot.
        let mut raw = redis::cluster::ClusterClient::new(cluster.urls())?
            .get_async_connection()
            .await?;
        let slots: Vec<i64> = {
            let mut v = Vec::new();
            for k in [
                &queue.keys().stream,
                &queue.keys().delayed,
                &queue.keys().dead,
            ] {
                let slot: i64 = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(k)
                    .query_async(&mut raw)
                    .await?;
                v.push(slot);
            }
            v
        };
        assert!(slots.windows(2).all(|w| w[0] == w[1]), "{slots:?}");
        // A poison entry on the cluster is dead-lettered too.
        let _: String = raw
            .xadd(&queue.keys().stream, "*", &[("id", "x"), ("payload", "[")])
            .await?;
        let w = start_worker(name, queue.clone(), &rec);
        let s = wait_stats(&queue, Duration::from_secs(10), |s| s.stream_len == 0).await?;
        assert_eq!((s.stream_len, s.pending), (0, 0), "{s:?}");
        assert!(queue
            .dead_letters(10)
            .await?
            .iter()
            .any(|d| d.job_id == "x" && d.error.contains("does not decode")));
        w.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn kept_finished_entries_are_trimmed_but_never_pending_or_unread_ones() -> anyhow::Result<()>
{
    let redis = RedisServer::start().await?;
    let cfg = redis_cfg(&redis.url());
    let queue = StreamQueue::<Job>::connect(
        &cfg,
        "keep",
        QueueConfig {
            keep_finished_ms: 300,
            trim_interval_ms: 100,
            prefetch: 1,
            ..fast_cfg()
        },
    )
    .await?;
    // One slow job, then three quick ones that stay unread while it runs (prefetch 1), far
    // longer than the 300 ms retention.
    queue
        .push(&Job {
            sleep_ms: 1_500,
            ..Job::new(0)
        })
        .await?;
    queue
        .push_bulk(&(1..4).map(Job::new).collect::<Vec<_>>())
        .await?;
    let rec = Recorder::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = WorkerBuilder::new("keep")
        .backend(queue.clone())
        .data(rec.clone())
        .concurrency(1)
        .build(handler);
    let handle = tokio::spawn(worker.run_until(async move {
        let _ = stop_rx.await;
        Ok::<(), std::io::Error>(())
    }));
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let mid = queue.stats().await?;
    assert_eq!(
        mid.stream_len, 4,
        "nothing pending or unread was trimmed: {mid:?}"
    );
    assert_eq!((mid.pending, mid.unread), (1, 3), "{mid:?}");
    assert!(
        rec.wait_until(Duration::from_secs(20), |r| r.succeeded() == 4)
            .await
    );
    // Finished entries are kept (stream_len counts them) and trimmed once old enough.
    let s = wait_stats(&queue, Duration::from_secs(10), |s| s.stream_len == 0).await?;
    assert_eq!((s.stream_len, s.pending, s.unread), (0, 0, 0), "{s:?}");
    let _ = stop_tx.send(());
    handle.await??;
    Ok(())
}
