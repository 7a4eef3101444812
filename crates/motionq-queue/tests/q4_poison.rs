//! Q4: a payload that does not decode goes to the dead letter with its error; no worker dies,
//! and the next job is processed.

mod common;

use std::time::Duration;

use common::*;
use motionq_queue::StreamQueue;
use motionq_testkit::RedisServer;
use redis::AsyncCommands;

#[tokio::test]
async fn poison_payloads_are_dead_lettered_and_the_worker_goes_on() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let queue = StreamQueue::<Job>::connect(&redis_cfg(&redis.url()), "poison", fast_cfg()).await?;
    let keys = queue.keys().clone();
    let mut raw = raw_conn(&redis.url()).await;

    queue.push(&Job::new(1)).await?;
    // Garbage of three kinds: not our fields at all (binary), a payload that is not JSON, and
    // JSON of the wrong shape. Plus an unreadable delayed member.
    let _: String = raw
        .xadd(&keys.stream, "*", &[("junk", &b"\xff\x00\x01"[..])])
        .await?;
    let _: String = raw
        .xadd(
            &keys.stream,
            "*",
            &[("id", "bad-json"), ("payload", "{not json")],
        )
        .await?;
    let _: String = raw
        .xadd(
            &keys.stream,
            "*",
            &[("id", "bad-shape"), ("payload", r#"{"n":"seven"}"#)],
        )
        .await?;
    let _: i64 = raw.zadd(&keys.delayed, "\u{1}garbage", 0).await?;
    queue.push(&Job::new(2)).await?;

    let rec = Recorder::default();
    let w = start_worker("poison", queue.clone(), &rec);
    assert!(
        rec.wait_until(Duration::from_secs(20), |r| r.succeeded() == 2)
            .await
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while queue.stats().await?.dead < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = queue.dead_letters(10).await?;
    assert_eq!(dead.len(), 4, "{dead:#?}");
    let by_id = |id: &str| dead.iter().find(|d| d.job_id == id).cloned();
    let junk = dead
        .iter()
        .find(|d| d.payload.contains("junk"))
        .expect("the binary entry is dead-lettered with its raw fields");
    assert!(junk.error.contains("payload"), "{}", junk.error);
    let bad_json = by_id("bad-json").expect("bad-json dead-lettered");
    assert!(
        bad_json.error.contains("does not decode"),
        "{}",
        bad_json.error
    );
    assert_eq!(bad_json.payload, "{not json");
    let bad_shape = by_id("bad-shape").expect("bad-shape dead-lettered");
    assert!(
        bad_shape.error.contains("invalid type"),
        "{}",
        bad_shape.error
    );
    assert!(dead.iter().any(|d| d.error.contains("delayed entry")));

    // The worker is alive and takes the next job.
    assert!(w.is_running());
    queue.push(&Job::new(3)).await?;
    assert!(
        rec.wait_until(Duration::from_secs(20), |r| r.succeeded() == 3)
            .await
    );
    assert!(w.is_running());
    let stats = queue.stats().await?;
    assert_eq!(stats.pending, 0, "{stats:?}");
    assert_eq!(stats.stream_len, 0, "{stats:?}");
    w.stop().await?;
    Ok(())
}
