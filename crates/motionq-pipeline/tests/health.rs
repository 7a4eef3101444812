//! The worker's `/healthz` probe follows its Redis connection: healthy while Redis answers
//! `PING`, unhealthy once it stops, healthy again after a restart.

use std::time::{Duration, Instant};

use motionq_pipeline::telemetry::redis_health;
use motionq_store::{RedisConn, Store};

async fn wait_for(probe: &(impl Fn() -> bool + ?Sized), want: bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe() != want {
        assert!(Instant::now() < deadline, "{what}: probe stayed {}", !want);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_follows_redis() {
    let mut redis = motionq_testkit::RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let mut cfg = motionq_config::Config::default();
    cfg.redis.url = redis.url();
    let conn = RedisConn::connect(&cfg.redis).await.expect("redis");
    let probe = redis_health(Store::new(conn, "h"), Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(probe(), "healthy while Redis answers");

    redis.kill();
    wait_for(&probe, false, "after Redis was killed").await;

    redis.restart().await.expect("redis restart");
    wait_for(&probe, true, "after Redis came back").await;
}
