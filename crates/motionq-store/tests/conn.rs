//! One connection type for standalone, password-protected and Cluster Redis; survives restarts.

use motionq_config::{RedisConfig, RedisMode};
use motionq_store::RedisConn;
use motionq_testkit::{RedisCluster, RedisOptions, RedisServer};

async fn roundtrip(conn: &mut RedisConn, key: &str) {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("v")
        .query_async(conn)
        .await
        .unwrap();
    let v: String = redis::cmd("GET").arg(key).query_async(conn).await.unwrap();
    assert_eq!(v, "v");
}

#[tokio::test]
async fn standalone_and_reconnect_after_restart() {
    let mut r = RedisServer::start().await.unwrap();
    let cfg = RedisConfig {
        url: r.url(),
        ..Default::default()
    };
    let mut c = RedisConn::connect(&cfg).await.unwrap();
    roundtrip(&mut c, "a").await;
    r.kill();
    r.restart().await.unwrap();
    // The first command after the restart may fail; the connection heals itself.
    let mut ok = false;
    for _ in 0..50 {
        if redis::cmd("GET")
            .arg("a")
            .query_async::<Option<String>>(&mut c)
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "connection did not heal after a Redis restart");
    let v: Option<String> = redis::cmd("GET")
        .arg("a")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("v"), "AOF kept the acknowledged write");
}

#[tokio::test]
async fn password_from_env_var_and_never_in_errors() {
    let r = RedisServer::start_with(RedisOptions {
        password: Some("pw-9f3k".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    std::env::set_var("MQ_TEST_REDIS_PW", "pw-9f3k");
    let cfg = RedisConfig {
        url: format!("redis://127.0.0.1:{}/", r.port()),
        password_env: Some("MQ_TEST_REDIS_PW".into()),
        ..Default::default()
    };
    let mut c = RedisConn::connect(&cfg).await.unwrap();
    roundtrip(&mut c, "p").await;

    let bad = RedisConfig {
        url: format!("redis://:wrong-pw-77@127.0.0.1:{}/", r.port()),
        ..Default::default()
    };
    let err = match RedisConn::connect(&bad).await {
        Ok(_) => panic!("wrong password accepted"),
        Err(e) => e.to_string(),
    };
    assert!(!err.contains("wrong-pw-77"), "{err}");

    let missing = RedisConfig {
        password_env: Some("MQ_TEST_REDIS_PW_UNSET".into()),
        ..cfg
    };
    let err = RedisConn::connect(&missing)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("MQ_TEST_REDIS_PW_UNSET"), "{err}");
}

#[tokio::test]
async fn cluster_mode_routes_by_slot() {
    let cluster = RedisCluster::start().await.unwrap();
    let cfg = RedisConfig {
        mode: RedisMode::Cluster,
        nodes: cluster.urls(),
        ..Default::default()
    };
    let mut c = RedisConn::connect(&cfg).await.unwrap();
    assert!(c.is_cluster());
    for i in 0..50 {
        roundtrip(&mut c, &format!("key-{i}")).await;
    }
    // Keys with one hash tag can be used together (one slot).
    let _: () = redis::cmd("MSET")
        .arg("{c1}:a")
        .arg("1")
        .arg("{c1}:b")
        .arg("2")
        .query_async(&mut c)
        .await
        .unwrap();
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_error() {
    let port = motionq_testkit::free_port().unwrap();
    let cfg = RedisConfig {
        url: format!("redis://127.0.0.1:{port}/"),
        connect_timeout_ms: 500,
        ..Default::default()
    };
    let err = RedisConn::connect(&cfg)
        .await
        .err()
        .expect("must fail")
        .to_string();
    assert!(err.contains("cannot connect to Redis"), "{err}");
}
