//! The harness itself: a private server answers, keeps acknowledged writes across `kill -9`
//! (AOF with `appendfsync always`) and clean shutdown, and enforces its password.

use motionq_testkit::{RedisOptions, RedisServer};

async fn conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_and_shutdown() {
    let mut r = RedisServer::start().await.expect("start redis-server");
    let mut c = conn(&r.url()).await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v1")
        .query_async(&mut c)
        .await
        .unwrap();
    r.kill();
    r.restart().await.unwrap();
    let mut c = conn(&r.url()).await;
    let v: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, "v1");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v2")
        .query_async(&mut c)
        .await
        .unwrap();
    r.shutdown().await.unwrap();
    r.restart().await.unwrap();
    let mut c = conn(&r.url()).await;
    let v: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, "v2");
}

#[tokio::test]
async fn password_is_required() {
    let r = RedisServer::start_with(RedisOptions {
        password: Some("s3cret-pw".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let no_auth = format!("redis://127.0.0.1:{}/", r.port());
    let mut c = conn(&no_auth).await;
    let err = redis::cmd("PING")
        .query_async::<String>(&mut c)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NOAUTH"), "{err}");
    let mut c = conn(&r.url()).await;
    let pong: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn cluster_of_three_assigns_all_slots() {
    let cluster = motionq_testkit::RedisCluster::start()
        .await
        .expect("start cluster");
    let mut c = conn(&cluster.urls()[0]).await;
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    assert!(info.contains("cluster_known_nodes:3"), "{info}");
}
