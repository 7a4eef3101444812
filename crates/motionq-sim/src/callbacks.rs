//! Callback delivery: the vendor's body, headers, signature and retry schedule.
//!
//! Each status change a vendor reports arrives here as an event; delivery runs in its own
//! task so a slow receiver never holds up the simulator. Retry delays are scaled by
//! `time_scale`; per-attempt timeouts are real time (they protect the simulator, not the story).

use crate::engine::{Engine, Events};
use crate::model::TaskView;
use crate::vendor::Vendor;
use crate::vendors::{self, CallbackBody};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Runs until the event channel closes or the server shuts down.
pub(crate) async fn dispatcher(engine: Arc<Engine>, mut rx: mpsc::UnboundedReceiver<Events>) {
    let mut shutdown = engine.shutdown.clone();
    loop {
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { return };
                for (view, url) in batch {
                    if let Some(body) = vendors::callback(&view) {
                        let e = engine.clone();
                        let mut stop = engine.shutdown.clone();
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = deliver(e, view, url, body) => {}
                                _ = stop.wait_for(|s| *s) => {}
                            }
                        });
                    }
                }
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// The Standard-Webhooks signature header value: `v1,<base64 HMAC-SHA256(key, "id.ts.body")>`.
pub fn standard_webhook_signature(key: &[u8], msg_id: &str, timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

async fn deliver(engine: Arc<Engine>, view: TaskView, url: String, cb: CallbackBody) {
    let vendor = view.vendor;
    engine.with_callback_ledger(vendor, |l| l.planned += 1);
    let (drop, duplicate) = engine.decide_callback(vendor);
    if drop {
        engine.with_callback_ledger(vendor, |l| l.dropped += 1);
        return;
    }
    if duplicate {
        engine.with_callback_ledger(vendor, |l| l.duplicated += 1);
    }
    let body = match serde_json::to_vec(&cb.body) {
        Ok(b) => b,
        Err(_) => return,
    };
    let msg_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    for _ in 0..if duplicate { 2 } else { 1 } {
        send_with_retries(&engine, vendor, &url, &cb, &body, &msg_id).await;
    }
}

async fn send_with_retries(
    engine: &Engine,
    vendor: Vendor,
    url: &str,
    cb: &CallbackBody,
    body: &[u8],
    msg_id: &str,
) {
    let policy = vendors::callback_policy(vendor);
    let attempts = policy.retry_delays.len() + 1;
    for attempt in 0..attempts {
        if attempt > 0 {
            let d = policy.retry_delays[attempt - 1].as_secs_f64();
            tokio::time::sleep(crate::clock::scaled(d, engine.cfg.time_scale)).await;
        }
        let mut req = engine
            .http
            .post(url)
            .timeout(policy.timeout)
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in &cb.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if policy.signed {
            let ts = crate::clock::now_ms() / 1000;
            let key = &engine.vendor_cfg(vendor).webhook_key;
            req = req
                .header("webhook-id", msg_id)
                .header("webhook-timestamp", ts.to_string())
                .header(
                    "webhook-signature",
                    standard_webhook_signature(key, msg_id, ts, body),
                );
        }
        engine.with_callback_ledger(vendor, |l| l.attempts += 1);
        let ok = matches!(req.send().await, Ok(r) if r.status().is_success());
        if ok {
            engine.with_callback_ledger(vendor, |l| l.delivered += 1);
            return;
        }
        engine.with_callback_ledger(vendor, |l| l.failed_attempts += 1);
    }
    engine.with_callback_ledger(vendor, |l| l.given_up += 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let key = crate::config::webhook_key_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let sig = standard_webhook_signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
