//! What the intake logs: one line per rejection, and never the token, a signature, the
//! Freepik secret or anything from a request body.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use motionq_core::Vendor;
use reqwest::StatusCode;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn log_lines_name_the_rejection_and_never_carry_secrets_or_bodies() {
    let buf = Buf::default();
    let writer = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // This binary has one test, so the global subscriber sees only it.
    tracing::subscriber::set_global_default(sub).unwrap();

    let h = Harness::start().await;
    h.enqueue(&[("fp-1", Vendor::Freepik)]).await;
    h.submitted("fp-1", Vendor::Freepik, "fp-task-1", "mq-a-g0")
        .await;
    const MARKER: &str = "BODYMARKER7731";
    let now = now_unix();

    // Wrong token (close to the real one), garbage with a marker, a marker in a JSON value,
    // a forged signature, a stale one, and finally a genuine delivery.
    let near_token = format!("{}X", &TOKEN[..TOKEN.len() - 1]);
    let r = h
        .http
        .post(h.url("evolink", &near_token, ""))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = h
        .http
        .post(h.url("evolink", TOKEN, ""))
        .body(format!("{MARKER} not json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = h
        .http
        .post(h.url("evolink", TOKEN, ""))
        .body(format!(r#"{{"id":"t","status":"{MARKER}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body = r#"{"task_id":"fp-task-1","status":"COMPLETED","generated":["https://cdn.example.com/o.mp4"]}"#;
    let forged = signed(
        "whsec_Zm9yZ2VkLXNlY3JldC1mb3ItdGVzdHM=",
        "msg_x",
        now,
        body.as_bytes(),
    );
    let forged_sig = forged["webhook-signature"].to_str().unwrap().to_string();
    let r = h
        .http
        .post(h.url("freepik", TOKEN, ""))
        .headers(forged)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let stale = signed(FREEPIK_SECRET, "msg_y", now - 1000, body.as_bytes());
    let r = h
        .http
        .post(h.url("freepik", TOKEN, ""))
        .headers(stale)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let good = signed(FREEPIK_SECRET, "msg_z", now, body.as_bytes());
    let good_sig = good["webhook-signature"].to_str().unwrap().to_string();
    let r = h
        .http
        .post(h.url("freepik", TOKEN, "?mq=mq-a-g0"))
        .headers(good)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    h.shutdown().await;

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(logs.matches("webhook rejected").count(), 5, "{logs}");
    assert!(
        logs.contains("status=401") && logs.contains("status=400"),
        "{logs}"
    );
    assert!(logs.contains("webhook: job polled now"), "{logs}");
    for secret in [
        TOKEN,
        near_token.as_str(),
        MARKER,
        &forged_sig[3..],
        &good_sig[3..],
        &FREEPIK_SECRET[6..],
        "cdn.example.com",
    ] {
        assert!(!logs.contains(secret), "log leaks `{secret}`:\n{logs}");
    }
}
