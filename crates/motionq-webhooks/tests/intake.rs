//! The intake over real HTTP against a real Redis: what each vendor's delivery does to the
//! job (a poll message and nothing else), and every rejection.

mod common;

use common::*;
use motionq_core::{JobState, Vendor};
use reqwest::StatusCode;

const FREEPIK_DONE: &str = r#"{"task_id":"fp-task-1","status":"COMPLETED","generated":["https://cdn.example.com/out.mp4"]}"#;

async fn post_freepik(
    h: &Harness,
    token: &str,
    headers: reqwest::header::HeaderMap,
    body: &str,
) -> reqwest::Response {
    h.http
        .post(h.url("freepik", token, ""))
        .headers(headers)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signed_freepik_webhook_pushes_an_immediate_poll_and_replays_are_deduplicated() {
    let h = Harness::start().await;
    h.enqueue(&[("fp-1", Vendor::Freepik), ("fp-2", Vendor::Freepik)])
        .await;
    h.submitted("fp-1", Vendor::Freepik, "fp-task-1", "mq-a-g0")
        .await;
    h.submitted("fp-2", Vendor::Freepik, "fp-task-2", "mq-b-g0")
        .await;
    let before = h.poll_queue().await;
    let other_due = h.next_poll_at("fp-2").await;

    let hdrs = signed(FREEPIK_SECRET, "msg_1", now_unix(), FREEPIK_DONE.as_bytes());
    let r = post_freepik(&h, TOKEN, hdrs.clone(), FREEPIK_DONE).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["outcome"],
        "poll_now"
    );

    let after = h.poll_queue().await;
    assert_eq!(after.unread, before.unread + 1, "one poll message, due now");
    assert_eq!(after.delayed, before.delayed);
    let now = h.redis_now_ms().await;
    assert!(
        h.next_poll_at("fp-1").await <= now,
        "the poll gate must let the message through"
    );
    assert_eq!(
        h.next_poll_at("fp-2").await,
        other_due,
        "another job is untouched"
    );
    let rec = h.job("fp-1").await;
    assert_eq!(
        rec.state,
        JobState::Submitted,
        "a webhook never changes job state"
    );
    assert!(!rec.fields.contains_key("output_url"));

    // The same delivery again (the vendor retried, or an attacker replays it within the
    // tolerance): answered 200, nothing pushed, counted as a duplicate.
    let r = post_freepik(&h, TOKEN, hdrs, FREEPIK_DONE).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["outcome"],
        "duplicate"
    );
    assert_eq!(h.poll_queue().await.unread, after.unread);
    assert_eq!(h.count(Vendor::Freepik, "accepted"), 1);
    assert_eq!(h.count(Vendor::Freepik, "duplicate"), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn forged_stale_future_unsigned_and_wrong_token_deliveries_are_refused() {
    let h = Harness::start().await;
    h.enqueue(&[("fp-1", Vendor::Freepik)]).await;
    h.submitted("fp-1", Vendor::Freepik, "fp-task-1", "mq-a-g0")
        .await;
    let before = h.poll_queue().await;
    let due = h.next_poll_at("fp-1").await;
    let body = FREEPIK_DONE;
    let now = now_unix();

    // Forged: signed with another secret.
    let forged = signed(
        "whsec_Zm9yZ2VkLXNlY3JldC1mb3ItdGVzdHM=",
        "msg_f",
        now,
        body.as_bytes(),
    );
    // Signed correctly, then the body changed.
    let tampered_hdrs = signed(FREEPIK_SECRET, "msg_t", now, body.as_bytes());
    let tampered_body = body.replace("out.mp4", "evil.mp4");
    let stale = signed(FREEPIK_SECRET, "msg_s", now - 301, body.as_bytes());
    let future = signed(FREEPIK_SECRET, "msg_u", now + 301, body.as_bytes());
    let cases: Vec<(&str, reqwest::header::HeaderMap, String, &str)> = vec![
        ("forged", forged, body.into(), "no `v1` signature matches"),
        (
            "tampered",
            tampered_hdrs,
            tampered_body,
            "no `v1` signature matches",
        ),
        ("stale", stale, body.into(), "old"),
        ("future", future, body.into(), "future"),
    ];
    for (what, hdrs, b, why) in cases {
        let r = post_freepik(&h, TOKEN, hdrs, &b).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        let text = r.text().await.unwrap();
        assert!(text.contains(why), "{what}: {text}");
        assert!(
            !text.contains("fp-task-1"),
            "{what}: the body is never echoed"
        );
    }
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut hdrs = signed(FREEPIK_SECRET, "msg_m", now, body.as_bytes());
        hdrs.remove(missing);
        let r = post_freepik(&h, TOKEN, hdrs, body).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{missing}");
        assert!(r.text().await.unwrap().contains(missing));
    }
    // A correctly signed delivery on a wrong token: the token is checked first.
    for token in [
        "tok-0123456789abcdefghijklmnoq",
        "tok",
        "",
        "x".repeat(300).as_str(),
    ] {
        let hdrs = signed(FREEPIK_SECRET, "msg_w", now, body.as_bytes());
        let r = h
            .http
            .post(h.url("freepik", token, ""))
            .headers(hdrs)
            .body(body)
            .send()
            .await
            .unwrap();
        let expected = if token.is_empty() {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(r.status(), expected, "token {token:?}");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains(TOKEN) && (token.is_empty() || !text.contains(token)),
            "{text}"
        );
    }
    // Evolink (unsigned vendor) with a wrong token.
    let r = h
        .http
        .post(h.url("evolink", "wrong-token-wrong-token-wrong", ""))
        .body(r#"{"id":"task-unified-1","status":"completed","results":["https://x"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(
        h.poll_queue().await.unread,
        before.unread,
        "nothing rejected reaches the queue"
    );
    assert_eq!(h.next_poll_at("fp-1").await, due);
    assert_eq!(h.count(Vendor::Freepik, "rejected_signature"), 4 + 3 + 3);
    assert_eq!(h.count(Vendor::Evolink, "rejected_signature"), 1);
    assert_eq!(h.count(Vendor::Freepik, "accepted"), 0);

    // After all that, the genuine delivery still works (rejections did not claim its dedup key).
    let ok = signed(FREEPIK_SECRET, "msg_t", now, body.as_bytes());
    assert_eq!(
        post_freepik(&h, TOKEN, ok, body).await.status(),
        StatusCode::OK
    );
    assert_eq!(h.poll_queue().await.unread, before.unread + 1);
    h.shutdown().await;
}

#[tokio::test]
async fn garbage_huge_and_misrouted_bodies_get_4xx_and_the_server_stays_up() {
    let h = Harness::start().await;
    let url = h.url("evolink", TOKEN, "");
    for body in [
        &b"not json at all"[..],
        b"",
        b"{\"id\":",
        b"\xff\xfe\x00garbage",
        b"[]",
        b"{\"id\":\"task-unified-1\"}",
        b"{\"id\":\"t\",\"status\":\"exploded\"}",
    ] {
        let r = h.http.post(&url).body(body.to_vec()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body:?}");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("garbage") && !text.contains("exploded") && !text.contains("not json"),
            "{text}"
        );
    }
    assert_eq!(h.count(Vendor::Evolink, "rejected_malformed"), 7);

    // Declared too large: refused before reading.
    let huge = vec![b' '; motionq_webhooks::DEFAULT_MAX_BODY_BYTES + 1];
    let r = h.http.post(&url).body(huge).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked (no Content-Length): refused once the cap is passed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 8 * 1024])).collect();
    let r = h
        .http
        .post(&url)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Exactly at the cap is fine size-wise (and then garbage).
    let at_cap = vec![b' '; motionq_webhooks::DEFAULT_MAX_BODY_BYTES];
    assert_eq!(
        h.http
            .post(&url)
            .body(at_cap)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );

    // Unknown vendor, a vendor without callbacks, other paths and methods.
    for v in ["nosuchvendor", "highwayapi", "EVOLINK"] {
        let r = h
            .http
            .post(h.url(v, TOKEN, ""))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{v}");
    }
    let r = h
        .http
        .get(h.url("evolink", TOKEN, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = h
        .http
        .post(format!("http://{}/webhooks/evolink", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = h
        .http
        .get(format!("http://{}/healthz", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m = h
        .http
        .get(format!("http://{}/metrics", h.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("motionq_webhooks_total{outcome=\"rejected_malformed\",vendor=\"evolink\"}"),
        "{m}"
    );
    assert!(!m.contains(TOKEN));
    h.shutdown().await;
}

#[tokio::test]
async fn evolink_aivideoapi_and_kkiai_callbacks_reach_their_jobs() {
    let h = Harness::start().await;
    h.enqueue(&[
        ("evo", Vendor::Evolink),
        ("avi", Vendor::Aivideoapi),
        ("kl", Vendor::Kkiai),
        ("bystander", Vendor::Kkiai),
    ])
    .await;
    h.submitted(
        "evo",
        Vendor::Evolink,
        "task-unified-1700000000-abcd1234",
        "mq-evo-g0",
    )
    .await;
    h.submitted(
        "avi",
        Vendor::Aivideoapi,
        "0b7c3a8e-1f2d-4c5b-9a6e-7d8f9a0b1c2d",
        "mq-avi-g0",
    )
    .await;
    h.submitted("kl", Vendor::Kkiai, "860123456789012345", "mq-kl-g0")
        .await;
    h.submitted("bystander", Vendor::Kkiai, "860000000000000001", "mq-by-g0")
        .await;
    let by_due = h.next_poll_at("bystander").await;
    let base = h.poll_queue().await.unread;

    let evo = r#"{"id":"task-unified-1700000000-abcd1234","object":"video.generation.task","status":"completed","progress":100,"results":["https://cdn.example.com/e.mp4"]}"#;
    let r = h
        .http
        .post(h.url("evolink", TOKEN, "?mq=mq-evo-g0"))
        .body(evo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(h.next_poll_at("evo").await <= h.redis_now_ms().await);
    assert_eq!(h.poll_queue().await.unread, base + 1);

    // AI Video API: the task id may come only in X-Task-Id.
    let avi = r#"{"status":"completed","output":{"urls":["https://cdn.example.com/a.mp4"]}}"#;
    let r = h
        .http
        .post(h.url("aivideoapi", TOKEN, ""))
        .header("X-Event", "task.completed")
        .header("X-Task-Id", "0b7c3a8e-1f2d-4c5b-9a6e-7d8f9a0b1c2d")
        .header("X-Timestamp", now_unix().to_string())
        .body(avi)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(h.next_poll_at("avi").await <= h.redis_now_ms().await);
    assert_eq!(h.poll_queue().await.unread, base + 2);

    // Kling: a `processing` callback speeds nothing up (no message), the `succeed` one does.
    let kl_proc = r#"{"task_id":"860123456789012345","task_status":"processing","task_info":{"external_task_id":"mq-kl-g0"}}"#;
    let r = h
        .http
        .post(h.url("kkiai", TOKEN, ""))
        .body(kl_proc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["outcome"],
        "accepted"
    );
    assert_eq!(h.poll_queue().await.unread, base + 2);
    let kl_done = r#"{"task_id":"860123456789012345","task_status":"succeed","task_status_msg":"","final_unit_deduction":"5","task_info":{"external_task_id":"mq-kl-g0"},"task_result":{"videos":[{"id":"v1","url":"https://cdn.example.com/k.mp4","duration":"5.0"}]}}"#;
    let r = h
        .http
        .post(h.url("kkiai", TOKEN, ""))
        .body(kl_done)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["outcome"],
        "poll_now"
    );
    assert!(h.next_poll_at("kl").await <= h.redis_now_ms().await);
    assert_eq!(h.poll_queue().await.unread, base + 3);
    // Kling retries the same status change: deduplicated.
    let r = h
        .http
        .post(h.url("kkiai", TOKEN, ""))
        .body(kl_done)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["outcome"],
        "duplicate"
    );
    assert_eq!(h.poll_queue().await.unread, base + 3);

    assert_eq!(
        h.next_poll_at("bystander").await,
        by_due,
        "only the named jobs were nudged"
    );
    for j in ["evo", "avi", "kl", "bystander"] {
        assert_eq!(h.job(j).await.state, JobState::Submitted);
    }
    assert_eq!(h.count(Vendor::Evolink, "accepted"), 1);
    assert_eq!(h.count(Vendor::Aivideoapi, "accepted"), 1);
    assert_eq!(h.count(Vendor::Kkiai, "accepted"), 2);
    assert_eq!(h.count(Vendor::Kkiai, "duplicate"), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_tasks_are_recorded_for_reconciliation_and_moved_on_jobs_are_left_alone() {
    let h = Harness::start().await;
    h.enqueue(&[("done", Vendor::Evolink), ("direct", Vendor::Evolink)])
        .await;
    let base = h.poll_queue().await.unread;

    // A task whose create answer was lost: the callback carries our idempotency key in the
    // URL. Unknown to the index, so 202, and the idempotency index now names the task, where
    // the submit stage's reconciliation looks first.
    let lost = r#"{"id":"task-unified-1700000001-lost0001","status":"completed","results":["https://cdn.example.com/l.mp4"]}"#;
    let r = h
        .http
        .post(h.url("evolink", TOKEN, "?mq=mq-lost-g0"))
        .body(lost)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        h.pipeline
            .task_for_idem(Vendor::Evolink, "mq-lost-g0")
            .await
            .unwrap()
            .as_deref(),
        Some("task-unified-1700000001-lost0001")
    );
    // Never overwrites what the worker recorded.
    h.pipeline
        .record_task(
            Vendor::Evolink,
            "task-unified-real",
            "hooks",
            "x",
            "mq-real-g0",
        )
        .await
        .unwrap();
    let other = r#"{"id":"task-unified-1700000001-other001","status":"failed","error":{"code":"internal_error","message":"x"}}"#;
    let r = h
        .http
        .post(h.url("evolink", TOKEN, "?mq=mq-real-g0"))
        .body(other)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "the recorded task's job `x` does not exist"
    );
    assert_eq!(
        h.pipeline
            .task_for_idem(Vendor::Evolink, "mq-real-g0")
            .await
            .unwrap()
            .as_deref(),
        Some("task-unified-real")
    );
    // No id at all.
    let r = h
        .http
        .post(h.url("evolink", TOKEN, ""))
        .body(
            r#"{"id":"task-unified-9-nobody","status":"completed","results":["https://x/y.mp4"]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(h.count(Vendor::Evolink, "rejected_unknown_task"), 3);

    // A job that already completed: nothing to do.
    h.submitted(
        "done",
        Vendor::Evolink,
        "task-unified-1700000002-done0001",
        "mq-done-g0",
    )
    .await;
    h.pipeline
        .store()
        .transition(
            "hooks",
            "done",
            &[JobState::Submitted],
            JobState::Completed,
            "test",
            &[],
        )
        .await
        .unwrap();
    let done = r#"{"id":"task-unified-1700000002-done0001","status":"completed","results":["https://cdn.example.com/d.mp4"]}"#;
    let r = h
        .http
        .post(h.url("evolink", TOKEN, ""))
        .body(done)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["outcome"],
        "duplicate"
    );
    assert_eq!(h.job("done").await.state, JobState::Completed);

    // The URL may name the job directly (`c`, `j`), even before the task is indexed.
    let t = h
        .pipeline
        .store()
        .transition(
            "hooks",
            "direct",
            &[],
            JobState::Submitted,
            "test",
            &[("vendor", "evolink".into())],
        )
        .await
        .unwrap();
    assert!(matches!(t, motionq_store::Transition::Moved(_)));
    let direct = r#"{"id":"task-unified-1700000003-dir00001","status":"completed","results":["https://cdn.example.com/x.mp4"]}"#;
    let r = h
        .http
        .post(h.url("evolink", TOKEN, "?c=hooks&j=direct"))
        .body(direct)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["outcome"],
        "poll_now"
    );
    assert_eq!(
        h.poll_queue().await.unread,
        base + 1,
        "only the submitted job got a message"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn freepik_without_a_configured_secret_is_refused() {
    let redis = motionq_testkit::RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let out = tempfile::tempdir().unwrap();
    let cfg = base_config(&redis, out.path());
    let p = std::sync::Arc::new(
        motionq_pipeline::Pipeline::connect(&cfg, Default::default())
            .await
            .unwrap(),
    );
    let secrets = motionq_webhooks::WebhookSecrets {
        token: TOKEN.to_string().into(),
        freepik: None,
    };
    let metrics = motionq_metrics::Metrics::new();
    let state =
        motionq_webhooks::WebhookState::new(&cfg, p, metrics, secrets, Default::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(motionq_webhooks::serve_state(
        state,
        listener,
        std::future::pending(),
    ));
    let hdrs = signed(FREEPIK_SECRET, "msg_1", now_unix(), FREEPIK_DONE.as_bytes());
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/freepik/{TOKEN}"))
        .headers(hdrs)
        .body(FREEPIK_DONE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("freepik_secret_env"));
    server.abort();
}

#[tokio::test]
async fn refuses_to_start_without_a_usable_token() {
    let mut cfg = motionq_config::Config::default();
    cfg.redis.url = "redis://127.0.0.1:1".into(); // never reached: the token is checked first
    let metrics = motionq_metrics::Metrics::new();
    let e = motionq_webhooks::WebhookState::connect(&cfg, metrics.clone(), Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("webhooks.token_env"), "{e}");
    cfg.webhooks.token_env = Some("MOTIONQ_WEBHOOKS_TEST_UNSET_VAR_7f3a".into());
    let e = motionq_webhooks::WebhookState::connect(&cfg, metrics.clone(), Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("MOTIONQ_WEBHOOKS_TEST_UNSET_VAR_7f3a"), "{e}");
    // A valid token, but a Freepik secret variable that is named and missing, or mangled.
    std::env::set_var("MOTIONQ_WEBHOOKS_TEST_TOKEN_9c1d", TOKEN);
    cfg.webhooks.token_env = Some("MOTIONQ_WEBHOOKS_TEST_TOKEN_9c1d".into());
    cfg.webhooks.freepik_secret_env = Some("MOTIONQ_WEBHOOKS_TEST_UNSET_SECRET_2b8e".into());
    let e = motionq_webhooks::WebhookState::connect(&cfg, metrics.clone(), Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("MOTIONQ_WEBHOOKS_TEST_UNSET_SECRET_2b8e"), "{e}");
    std::env::set_var("MOTIONQ_WEBHOOKS_TEST_SECRET_2b8e", "whsec_not*base64");
    cfg.webhooks.freepik_secret_env = Some("MOTIONQ_WEBHOOKS_TEST_SECRET_2b8e".into());
    let e = motionq_webhooks::WebhookState::connect(&cfg, metrics.clone(), Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not valid base64") && !e.contains("not*base64"),
        "{e}"
    );
    // A short token: refused unless the development flag is given.
    let weak = motionq_webhooks::PathToken::new(&"tinytoken".to_string().into(), false)
        .unwrap_err()
        .to_string();
    assert!(weak.contains("at least 24"), "{weak}");
    assert!(!weak.contains("tinytoken"));
}

#[tokio::test]
async fn redis_outage_answers_503_and_the_vendors_retry_is_processed_afterwards() {
    let mut h = Harness::start().await;
    h.enqueue(&[("evo", Vendor::Evolink)]).await;
    h.submitted(
        "evo",
        Vendor::Evolink,
        "task-unified-1700000000-outage01",
        "mq-evo-g0",
    )
    .await;
    let base = h.poll_queue().await.unread;
    let body = r#"{"id":"task-unified-1700000000-outage01","status":"completed","results":["https://cdn.example.com/e.mp4"]}"#;

    h.redis.kill();
    let r = h
        .http
        .post(h.url("evolink", TOKEN, ""))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the vendor must retry"
    );
    let health = h
        .http
        .get(format!("http://{}/healthz", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);

    h.redis.restart().await.unwrap();
    // The connection heals by itself; the retry is not mistaken for a duplicate.
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        let r = h
            .http
            .post(h.url("evolink", TOKEN, ""))
            .body(body)
            .send()
            .await
            .unwrap();
        status = r.status();
        if status != StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(
                r.json::<serde_json::Value>().await.unwrap()["outcome"],
                "poll_now"
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.poll_queue().await.unread, base + 1);
    assert_eq!(
        h.http
            .get(format!("http://{}/healthz", h.addr))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    h.shutdown().await;
}

#[tokio::test]
async fn serve_reads_its_secrets_from_the_environment_and_stops_on_shutdown() {
    let redis = motionq_testkit::RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let out = tempfile::tempdir().unwrap();
    let mut cfg = base_config(&redis, out.path());
    std::env::set_var("MOTIONQ_WEBHOOKS_TEST_SERVE_TOKEN_51ab", TOKEN);
    std::env::set_var("MOTIONQ_WEBHOOKS_TEST_SERVE_SECRET_51ab", FREEPIK_SECRET);
    cfg.webhooks.token_env = Some("MOTIONQ_WEBHOOKS_TEST_SERVE_TOKEN_51ab".into());
    cfg.webhooks.freepik_secret_env = Some("MOTIONQ_WEBHOOKS_TEST_SERVE_SECRET_51ab".into());
    let port = motionq_testkit::free_port().unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let metrics = motionq_metrics::Metrics::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let scfg = cfg.clone();
    let m = metrics.clone();
    let server = tokio::spawn(async move {
        motionq_webhooks::serve(&scfg, addr, Default::default(), m, async move {
            let _ = rx.await;
        })
        .await
    });
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("http://{addr}/healthz")).send().await {
            up = r.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "serve came up");
    let body = r#"{"task_id":"fp-unknown","status":"COMPLETED","generated":["https://cdn.example.com/o.mp4"]}"#;
    let hdrs = signed(FREEPIK_SECRET, "msg_serve", now_unix(), body.as_bytes());
    let r = http
        .post(format!("http://{addr}/webhooks/freepik/{TOKEN}"))
        .headers(hdrs)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "verified with the secret from the env; task unknown"
    );
    let m = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains(
            "motionq_webhooks_total{outcome=\"rejected_unknown_task\",vendor=\"freepik\"} 1"
        ),
        "{m}"
    );
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        http.get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err(),
        "stopped"
    );
}
