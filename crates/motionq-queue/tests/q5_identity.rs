//! Q5: every process start (every backend instance) has a unique worker identity, and an
//! immediate restart under the same apalis worker name works, after a graceful stop and after
//! a crash.

mod common;

use std::time::Duration;

use common::*;
use motionq_queue::StreamQueue;
use motionq_testkit::RedisServer;

#[tokio::test]
async fn identities_are_unique_and_restart_is_immediate() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let cfg = redis_cfg(&redis.url());
    let a = StreamQueue::<Job>::connect(&cfg, "ident", fast_cfg()).await?;
    let b = StreamQueue::<Job>::connect(&cfg, "ident", fast_cfg()).await?;
    let c = a.clone();
    assert_ne!(a.identity(), b.identity());
    assert_ne!(a.identity(), c.identity());
    assert!(a.identity().contains(&std::process::id().to_string()));

    let rec = Recorder::default();
    // Start, process, stop gracefully, and start again at once with the same worker name.
    for round in 0..3u64 {
        let w = start_worker("same-name", a.clone(), &rec);
        a.push(&Job::new(round)).await?;
        assert!(
            rec.wait_until(Duration::from_secs(10), |r| r.succeeded()
                == round as usize + 1)
                .await,
            "round {round}"
        );
        w.stop().await?;
    }

    // A crash (the worker's task is dropped mid-run) and an immediate restart with the same
    // name: the new worker gets new jobs at once, and the crashed one's job after
    // claim_min_idle_ms.
    let slow = Job {
        sleep_ms: 3_000,
        ..Job::new(100)
    };
    let w = start_worker("same-name", a.clone(), &rec);
    a.push(&slow).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a.stats().await?.pending == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.handle.abort();
    let _ = w.handle.await;
    let w2 = start_worker("same-name", a.clone(), &rec);
    a.push(&Job::new(101)).await?;
    assert!(
        rec.wait_until(Duration::from_secs(10), |r| r
            .ok_counts()
            .contains_key(&101))
            .await
    );
    // The crashed consumer is still in the group next to the new one: distinct names.
    let mut raw = raw_conn(&redis.url()).await;
    let consumers: redis::Value = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(&a.keys().stream)
        .arg("motionq")
        .query_async(&mut raw)
        .await?;
    let redis::Value::Array(list) = consumers else {
        panic!("XINFO CONSUMERS: {consumers:?}")
    };
    assert_eq!(list.len(), 2, "crashed + new consumer: {list:?}");
    // The crashed worker's job is taken over by the new one.
    assert!(
        rec.wait_until(Duration::from_secs(20), |r| r
            .ok_counts()
            .contains_key(&100))
            .await
    );
    w2.stop().await?;
    Ok(())
}
