//! `VendorClient` over real loopback HTTP against a tiny scripted server: what goes on the wire
//! (method, path, auth header, body) and how every transport failure is classified.

use std::time::Duration;

use motionq_core::{ErrorClass, JobSpec, Orientation, Tier, Vendor};
use motionq_vendors::{
    adapter_for, CreateContext, FindOutcome, HttpOptions, TaskRef, TaskStatus, VendorClient,
};
use secrecy::SecretString;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

mod common;
use common::{read_request, Captured};

const KEY: &str = "test-key-0123456789";

/// What the scripted server does with each connection.
#[derive(Clone)]
enum Action {
    /// Write these bytes (a whole HTTP answer) and close.
    Respond(Vec<u8>),
    /// Read the request and never answer.
    Hang,
    /// Read the request and close the connection without a byte.
    Drop,
}

fn http(status: u16, extra_headers: &str, body: &str) -> Action {
    Action::Respond(
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra_headers}\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// Serves `action` on every connection of a port-0 listener; returns the base URL and a channel
/// of captured requests.
async fn server(action: Action) -> (url::Url, mpsc::UnboundedReceiver<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let action = action.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let Some(captured) = read_request(&mut sock).await else {
                    return;
                };
                let _ = tx.send(captured);
                match action {
                    Action::Respond(bytes) => {
                        let _ = sock.write_all(&bytes).await;
                        let _ = sock.shutdown().await;
                    }
                    Action::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Action::Drop => drop(sock),
                }
            });
        }
    });
    (format!("http://{addr}/prefix").parse().unwrap(), rx)
}

fn client(vendor: Vendor, base: url::Url, opts: HttpOptions) -> VendorClient {
    VendorClient::new(adapter_for(vendor), base, SecretString::from(KEY), opts).unwrap()
}

fn job() -> JobSpec {
    JobSpec {
        id: "job-1".into(),
        image: "https://example.com/character.png".into(),
        video_url: "https://example.com/motion.mp4".into(),
        prompt: Some("dance".into()),
        negative_prompt: None,
        orientation: Orientation::Video,
        tier: Tier::Pro,
        keep_sound: None,
        cfg_scale: None,
        video_duration_s: None,
    }
}

fn ctx() -> CreateContext {
    CreateContext {
        idempotency_key: "camp-1:job-1:0".into(),
        callback_url: None,
    }
}

#[tokio::test]
async fn create_sends_the_adapters_request_with_bearer_auth() {
    let (base, mut rx) = server(http(
        200,
        "",
        r#"{"id":"task-unified-1757169743-7cvnl5zw","status":"pending","object":"video.generation.task"}"#,
    ))
    .await;
    let c = client(Vendor::Evolink, base, HttpOptions::default());
    let created = c.create(&job(), &ctx()).await.unwrap();
    assert_eq!(created.task_id, "task-unified-1757169743-7cvnl5zw");
    let req = rx.recv().await.unwrap();
    assert_eq!(
        req.request_line(),
        "POST /prefix/v1/videos/generations HTTP/1.1"
    );
    assert_eq!(
        req.header("authorization").unwrap(),
        format!("Bearer {KEY}")
    );
    assert_eq!(req.header("content-type").unwrap(), "application/json");
    let sent: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    let built = c
        .adapter()
        .build_create(&job(), &ctx())
        .unwrap()
        .body
        .unwrap();
    assert_eq!(sent, built);
    assert_eq!(sent["quality"], "1080p");
    // Debug output never shows the key.
    assert!(!format!("{c:?}").contains(KEY));
}

#[tokio::test]
async fn freepik_query_uses_its_header_and_tier_path() {
    let (base, mut rx) = server(http(
        200,
        "",
        r#"{"data":{"task_id":"t-1","status":"COMPLETED","generated":["https://cdn.example.com/v.mp4"]}}"#,
    ))
    .await;
    let c = client(Vendor::Freepik, base, HttpOptions::default());
    let state = c
        .query(&TaskRef {
            task_id: "t-1".into(),
            tier: Tier::Std,
        })
        .await
        .unwrap();
    assert!(matches!(state.status, TaskStatus::Completed { .. }));
    let req = rx.recv().await.unwrap();
    assert_eq!(
        req.request_line(),
        "GET /prefix/v1/ai/video/kling-v3-motion-control-std/t-1 HTTP/1.1"
    );
    assert_eq!(req.header("x-freepik-api-key").unwrap(), KEY);
    assert!(req.header("authorization").is_none());
}

#[tokio::test]
async fn kkiai_find_queries_by_external_task_id() {
    let (base, mut rx) = server(http(
        404,
        "",
        r#"{"code":1203,"message":"task not found","request_id":"r"}"#,
    ))
    .await;
    let c = client(Vendor::Kkiai, base, HttpOptions::default());
    let found = c
        .find_by_idempotency_key("camp-1:job-1:0", Tier::Std)
        .await
        .unwrap();
    assert_eq!(found, Some(FindOutcome::Absent));
    let req = rx.recv().await.unwrap();
    assert_eq!(
        req.request_line(),
        "GET /prefix/kling/v1/videos/motion-control/camp-1%3Ajob-1%3A0 HTTP/1.1"
    );
}

#[tokio::test]
async fn vendors_without_lookup_send_nothing() {
    // No server at all: a request would fail with transport_connect.
    let c = client(
        Vendor::Highwayapi,
        "http://127.0.0.1:9/".parse().unwrap(),
        HttpOptions::default(),
    );
    assert_eq!(
        c.find_by_idempotency_key("k", Tier::Std).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn rejected_jobs_send_nothing() {
    let c = client(
        Vendor::Evolink,
        "http://127.0.0.1:9/".parse().unwrap(),
        HttpOptions::default(),
    );
    let mut j = job();
    j.cfg_scale = Some(0.5);
    let e = c.create(&j, &ctx()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::InvalidRequest);
    assert!(e.message.contains("cfg_scale"), "{}", e.message);
    assert!(!e.may_have_created_task());
}

#[tokio::test]
async fn connection_refused_is_transient_and_provably_unsent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = client(
        Vendor::Aivideoapi,
        format!("http://127.0.0.1:{port}").parse().unwrap(),
        HttpOptions::default(),
    );
    let e = c.create(&job(), &ctx()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::UpstreamTransient);
    assert_eq!(e.code.as_deref(), Some("transport_connect"));
    assert_eq!(e.http_status, None);
    assert!(!e.may_have_created_task());
}

#[tokio::test]
async fn timeout_is_transient_and_may_have_created() {
    let (base, _rx) = server(Action::Hang).await;
    let c = client(
        Vendor::Kkiai,
        base,
        HttpOptions {
            request_timeout: Duration::from_millis(300),
            ..HttpOptions::default()
        },
    );
    let e = c.create(&job(), &ctx()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::UpstreamTransient);
    assert_eq!(e.code.as_deref(), Some("transport_timeout"));
    assert!(e.may_have_created_task());
}

#[tokio::test]
async fn reset_is_transient() {
    let (base, _rx) = server(Action::Drop).await;
    let c = client(Vendor::Highwayapi, base, HttpOptions::default());
    let e = c
        .query(&TaskRef {
            task_id: "t".into(),
            tier: Tier::Std,
        })
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::UpstreamTransient);
    assert!(
        e.code.as_deref().unwrap().starts_with("transport_"),
        "{e:?}"
    );
}

#[tokio::test]
async fn truncated_body_is_transient() {
    let (base, _rx) = server(Action::Respond(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"task_id\":".to_vec(),
    ))
    .await;
    let c = client(Vendor::Highwayapi, base, HttpOptions::default());
    let e = c.create(&job(), &ctx()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::UpstreamTransient);
    assert_eq!(e.code.as_deref(), Some("transport_body"));
    assert!(e.may_have_created_task());
}

#[tokio::test]
async fn malformed_2xx_is_transient() {
    let (base, _rx) = server(http(200, "", r#"{"data":{"taskId""#)).await;
    let c = client(Vendor::Aivideoapi, base, HttpOptions::default());
    let e = c.create(&job(), &ctx()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::UpstreamTransient);
    assert_eq!(e.code.as_deref(), Some("malformed_response"));
}

#[tokio::test]
async fn an_echoed_key_is_scrubbed_and_retry_after_is_read() {
    let (base, _rx) = server(http(
        429,
        "Retry-After: 12\r\n",
        &format!(r#"{{"error":{{"code":"rate_limit_exceeded","message":"key {KEY} is too fast","type":"rate_limit_error"}}}}"#),
    ))
    .await;
    let c = client(Vendor::Aivideoapi, base, HttpOptions::default());
    let e = c.create(&job(), &ctx()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(12)));
    assert!(!e.message.contains(KEY), "{}", e.message);
    assert!(e.message.contains("[REDACTED]"));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (base, _rx) = server(http(302, "Location: http://127.0.0.1:9/elsewhere\r\n", "")).await;
    let c = client(Vendor::Evolink, base, HttpOptions::default());
    let e = c.create(&job(), &ctx()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::UpstreamTransient);
    assert_eq!(e.http_status, Some(302));
}

#[tokio::test]
async fn one_pool_serves_many_clients() {
    let (base, mut rx) = server(http(
        200,
        "",
        r#"{"task":{"task_id":"t","status":"TASK_STATUS_QUEUED"}}"#,
    ))
    .await;
    let pool = HttpOptions::default().build_client().unwrap();
    let a = VendorClient::with_http_client(
        adapter_for(Vendor::Highwayapi).into(),
        base.clone(),
        SecretString::from("key-a-000"),
        pool.clone(),
    );
    let b = a.clone();
    let t = TaskRef {
        task_id: "t".into(),
        tier: Tier::Std,
    };
    let (ra, rb) = tokio::join!(a.query(&t), b.query(&t));
    assert_eq!(ra.unwrap().status, TaskStatus::Pending);
    assert_eq!(rb.unwrap().status, TaskStatus::Pending);
    for _ in 0..2 {
        let req = rx.recv().await.unwrap();
        assert_eq!(
            req.request_line(),
            "GET /prefix/v3/async/task-result?task_id=t HTTP/1.1"
        );
        assert_eq!(req.header("authorization").unwrap(), "Bearer key-a-000");
    }
}
