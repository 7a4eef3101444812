//! Per-key limits and billing, each answered with the vendor's own error: rate (create and
//! query), concurrency, balance, spend caps; pre-charge and refund on failure.

mod common;

use common::*;
use motionq_sim::{ChargeKind, KeyConfig, SimConfig, Tier, Tiered, Vendor, VendorConfig};
use serde_json::Value;

fn with_key(mut c: SimConfig, f: impl Fn(&mut KeyConfig)) -> SimConfig {
    for v in Vendor::ALL {
        let mut k = KeyConfig::new(key(v)).alias(ALIAS);
        f(&mut k);
        *c.vendor_mut(v) = VendorConfig::with_keys(vec![k]);
    }
    c
}

/// The vendor's rate-limit answer.
fn is_rate_limited(v: Vendor, st: u16, e: &Value) -> bool {
    st == 429
        && match v {
            Vendor::Evolink => e["error"]["code"] == "rate_limit_exceeded",
            Vendor::Kkiai => e["code"] == 1302,
            Vendor::Aivideoapi => {
                e["error"]["code"] == "rate_limit_exceeded"
                    && e["error"]["type"] == "rate_limit_error"
            }
            Vendor::Highwayapi => e["reason"] == "RATE_LIMIT_EXCEEDED",
            Vendor::Freepik => e["message"].is_string(),
        }
}

#[tokio::test]
async fn create_rate_limit_per_key() {
    let sim = start(with_key(config(), |k| k.rate_per_sec = Some(2))).await;
    for v in Vendor::ALL {
        let job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
        let body = create_body(v, &job);
        let (mut ok, mut limited) = (0, 0);
        // Quick successive creates: the third within a second must be refused.
        for _ in 0..200 {
            let (st, e) = post(&sim, v, Tier::Std, key(v), &body).await;
            if st == 200 {
                ok += 1;
            } else {
                assert!(is_rate_limited(v, st, &e), "{v}: {st} {e}");
                limited += 1;
                if limited >= 3 {
                    break;
                }
            }
        }
        assert!(limited >= 3, "{v}: never rate limited");
        let k = sim.ledger().key(v, ALIAS).unwrap().clone();
        assert_eq!(k.creates.len(), ok);
        assert!(
            k.max_creates_in_window(1000) <= 2,
            "{v}: {}",
            k.max_creates_in_window(1000)
        );
        assert_eq!(k.rejected("rate_limit"), limited as u64);
    }
}

#[tokio::test]
async fn query_rate_limit_per_key() {
    let sim = start(with_key(config(), |k| k.query_rate_per_sec = Some(3))).await;
    for v in Vendor::ALL {
        let job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
        let id = create_ok(&sim, v, &job).await;
        let url = query_url(&sim, v, &id, Tier::Std);
        let mut limited = 0;
        for _ in 0..200 {
            let (st, e) = get(v, &url, key(v)).await;
            if st != 200 {
                assert!(is_rate_limited(v, st, &e), "{v}: {st} {e}");
                limited += 1;
                break;
            }
        }
        assert_eq!(limited, 1, "{v}: queries never limited");
        assert_eq!(
            sim.ledger()
                .key(v, ALIAS)
                .unwrap()
                .rejected("query_rate_limit"),
            1
        );
    }
}

#[tokio::test]
async fn concurrency_limit_distinguishes_kling_1303() {
    let mut c = with_key(config(), |k| k.max_concurrent = Some(2));
    for v in Vendor::ALL {
        c.vendor_mut(v).generation_seconds = Some(Tiered {
            std: 3000.0,
            pro: 3000.0,
        });
    }
    let sim = start(c).await;
    for v in Vendor::ALL {
        let mut ids = Vec::new();
        for i in 0..2 {
            let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
            job.prompt = Some(format!("job {i}"));
            ids.push(create_ok(&sim, v, &job).await);
        }
        let job = Job::new(&sim, "portrait-720x1280.png", "dance-3s.mp4");
        let (st, e) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
        assert_eq!(st, 429, "{v}: {e}");
        match v {
            Vendor::Kkiai => assert_eq!(e["code"], 1303, "{e}"),
            _ => assert!(is_rate_limited(v, st, &e), "{v}: {e}"),
        }
        // Once one finishes, a slot frees up.
        finish(&sim, v, &ids[0], Tier::Std).await;
        let (st, e) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
        assert_eq!(st, 200, "{v}: {e}");
        let k = sim.ledger().key(v, ALIAS).unwrap().clone();
        assert_eq!(k.max_in_flight, 2, "{v}");
        assert_eq!(k.rejected("concurrency"), 1, "{v}");
    }
}

/// The vendor's answer for an empty balance (VENDORS.md 6.4 insufficient_funds).
fn is_insufficient(v: Vendor, st: u16, e: &Value) -> bool {
    match v {
        Vendor::Evolink => st == 402 && e["error"]["code"] == "insufficient_quota",
        Vendor::Kkiai => st == 429 && e["code"] == 1102,
        Vendor::Aivideoapi => {
            st == 402
                && e["error"]["code"] == "insufficient_credits"
                && e["error"]["type"] == "billing_error"
        }
        Vendor::Highwayapi => st == 403 && e["reason"] == "NOT_ENOUGH_BALANCE",
        Vendor::Freepik => st == 429 && e["message"].is_string(),
    }
}

/// The vendor's answer for a spend cap (quota_exhausted, or its closest equivalent).
fn is_spend_capped(v: Vendor, st: u16, e: &Value) -> bool {
    match v {
        Vendor::Evolink => st == 402 && e["error"]["code"] == "insufficient_quota",
        Vendor::Kkiai => st == 429 && e["code"] == 1102,
        Vendor::Aivideoapi => {
            st == 429
                && e["error"]["code"] == "spend_limit_exceeded"
                && e["error"]["type"] == "billing_error"
        }
        Vendor::Highwayapi => st == 403 && e["reason"] == "NOT_ENOUGH_BALANCE",
        Vendor::Freepik => st == 429 && e["message"].as_str().unwrap_or("").contains("limit"),
    }
}

fn price(v: Vendor, seconds: f64) -> f64 {
    motionq_sim::VendorDefaults::of(v).price_per_second.std * seconds
}

#[tokio::test]
async fn balance_runs_out_with_the_vendor_error() {
    let mut c = config();
    for v in Vendor::ALL {
        // Room for one 8 s std job, not two.
        let mut k = KeyConfig::new(key(v)).alias(ALIAS);
        k.balance = price(v, 8.0) * 1.5;
        *c.vendor_mut(v) = VendorConfig::with_keys(vec![k]);
    }
    let sim = start(c).await;
    for v in Vendor::ALL {
        let job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
        create_ok(&sim, v, &job).await;
        let (st, e) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
        assert!(is_insufficient(v, st, &e), "{v}: {st} {e}");
        let k = sim.ledger().key(v, ALIAS).unwrap().clone();
        assert_eq!(k.rejected("insufficient_balance"), 1);
        assert!(
            (k.balance - price(v, 8.0) * 0.5).abs() < 1e-6,
            "{v}: {}",
            k.balance
        );
    }
    // AI Video API reports the balance at /v1/credits.
    let url = format!("{}/v1/credits", sim.vendor_base_url(Vendor::Aivideoapi));
    let (st, body) = get(Vendor::Aivideoapi, &url, key(Vendor::Aivideoapi)).await;
    assert_eq!(st, 200);
    assert_eq!(body["data"]["balance"].as_f64(), Some(120.0));
    assert_eq!(body["data"]["total_consumed"].as_f64(), Some(240.0));
}

#[tokio::test]
async fn spend_caps_answer_with_the_vendor_error() {
    for cap in ["hourly", "daily", "total"] {
        // Caps in each vendor's unit, sized for two 8 s std jobs of that vendor.
        let mut c = config();
        for v in Vendor::ALL {
            let mut k = KeyConfig::new(key(v)).alias(ALIAS);
            let limit = Some(price(v, 16.0) + 1e-6);
            match cap {
                "hourly" => k.spend_cap_hourly = limit,
                "daily" => k.spend_cap_daily = limit,
                _ => k.spend_cap_total = limit,
            }
            *c.vendor_mut(v) = VendorConfig::with_keys(vec![k]);
        }
        // A slow clock, so the scaled hour cannot pass during the test.
        c.time_scale = 0.01;
        let sim = start(c).await;
        for v in Vendor::ALL {
            for i in 0..2 {
                let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
                job.prompt = Some(format!("{cap} {i}"));
                create_ok(&sim, v, &job).await;
            }
            let job = Job::new(&sim, "portrait-720x1280.png", "dance-3s.mp4");
            let (st, e) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
            assert!(is_spend_capped(v, st, &e), "{cap} {v}: {st} {e}");
            let k = sim.ledger().key(v, ALIAS).unwrap().clone();
            assert_eq!(k.rejected("spend_cap"), 1, "{v}");
            assert!((k.spend.total - price(v, 16.0)).abs() < 1e-6);
        }
    }
}

#[tokio::test]
async fn failed_tasks_are_refunded() {
    let mut c = config();
    for v in Vendor::ALL {
        let mut k = KeyConfig::new(key(v)).alias(ALIAS);
        k.spend_cap_total = Some(price(v, 8.0) + 1e-6);
        *c.vendor_mut(v) = VendorConfig::with_keys(vec![k]);
    }
    let sim = start(c).await;
    for v in Vendor::ALL {
        let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
        job.prompt = Some("please fail: sim:content_policy".into());
        let id = create_ok(&sim, v, &job).await;
        let done = finish(&sim, v, &id, Tier::Std).await;
        assert_eq!(status(v, &done), "failed", "{v}");
        match v {
            Vendor::Evolink => assert_eq!(done["error"]["code"], "content_policy_violation"),
            Vendor::Kkiai => {
                assert_eq!(done["data"]["final_unit_deduction"], "0");
                assert!(!done["data"]["task_status_msg"].as_str().unwrap().is_empty());
            }
            Vendor::Aivideoapi => assert_eq!(done["error"]["code"], "upstream_error"),
            Vendor::Highwayapi => assert!(!done["task"]["reason"].as_str().unwrap().is_empty()),
            Vendor::Freepik => assert_eq!(done["data"]["generated"], serde_json::json!([])),
        }
        let k = sim.ledger().key(v, ALIAS).unwrap().clone();
        assert!((k.refunded - price(v, 8.0)).abs() < 1e-6, "{v}");
        assert!((k.balance - k.initial_balance).abs() < 1e-6, "{v}");
        assert_eq!(k.failed, 1);
        let kinds: Vec<ChargeKind> = k.charges.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, vec![ChargeKind::PreCharge, ChargeKind::Refund]);
        // The refund frees the total cap: a real job of the same size fits again.
        let ok = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
        create_ok(&sim, v, &ok).await;
    }
}

#[tokio::test]
async fn retry_after_is_sent_only_when_enabled() {
    for enabled in [false, true] {
        let mut c = with_key(config(), |k| k.rate_per_sec = Some(1));
        c.retry_after = enabled;
        c.retry_after_seconds = 2;
        let sim = start(c).await;
        let v = Vendor::Evolink;
        let body = create_body(v, &Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4"));
        let mut header = None;
        for _ in 0..100 {
            let r = auth(
                v,
                client().post(create_url(&sim, v, Tier::Std)).json(&body),
                key(v),
            )
            .send()
            .await
            .unwrap();
            if r.status() == 429 {
                header = Some(
                    r.headers()
                        .get("retry-after")
                        .map(|h| h.to_str().unwrap().to_string()),
                );
                break;
            }
        }
        let header = header.expect("rate limited");
        assert_eq!(header, enabled.then(|| "2".to_string()));
    }
}

#[tokio::test]
async fn content_refused_at_create_where_the_vendor_does_that() {
    let sim = start(config()).await;
    for v in Vendor::ALL {
        let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
        job.prompt = Some("sim:content_policy_reject".into());
        let (st, e) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
        let k = || sim.ledger().key(v, ALIAS).unwrap().clone();
        match v {
            Vendor::Kkiai => {
                assert_eq!((st, e["code"].as_u64()), (400, Some(1301)), "{e}");
                assert_eq!((k().charged, k().rejected("content_policy")), (0.0, 1));
            }
            Vendor::Aivideoapi => {
                assert_eq!(
                    (st, e["error"]["code"].as_str()),
                    (503, Some("upstream_error"))
                );
                assert_eq!((k().charged, k().rejected("content_policy")), (0.0, 1));
            }
            // The others accept and fail the task (refunded).
            _ => {
                assert_eq!(st, 200, "{v}: {e}");
                let done = finish(&sim, v, &task_id(v, &e), Tier::Std).await;
                assert_eq!(status(v, &done), "failed");
                assert_eq!(k().balance, k().initial_balance);
            }
        }
    }
}

/// The vendor's documented access-denied answer (VENDORS.md 6.4 forbidden).
fn is_forbidden(v: Vendor, st: u16, e: &Value) -> bool {
    st == 403
        && match v {
            Vendor::Evolink => {
                e["error"]["code"] == "model_access_denied"
                    && e["error"]["type"] == "invalid_request_error"
            }
            Vendor::Kkiai => e["code"] == 1103 && e["request_id"].is_string(),
            Vendor::Aivideoapi => {
                e["error"]["code"] == "ip_not_allowed" && e["error"]["type"] == "permission_error"
            }
            Vendor::Highwayapi => e["code"] == 403 && e["reason"] == "ACCESS_DENY",
            Vendor::Freepik => e["message"].is_string(),
        }
}

/// A key configured `forbidden` is refused every call (create and query, even of a task that
/// exists) with the vendor's 403, counted as rejection `forbidden`, nothing created; the
/// vendor's other key is unaffected. KKIAI keeps Kling's 1103 with `gateway_errors` on.
#[tokio::test]
async fn a_forbidden_key_is_denied_with_the_vendor_403() {
    for gateway in [false, true] {
        let mut c = config();
        for v in Vendor::ALL {
            let mut denied = KeyConfig::new(format!("{}-denied", key(v))).alias("denied");
            denied.forbidden = true;
            *c.vendor_mut(v) =
                VendorConfig::with_keys(vec![KeyConfig::new(key(v)).alias(ALIAS), denied]);
        }
        c.vendor_mut(Vendor::Kkiai).gateway_errors = gateway;
        let sim = start(c).await;
        let vendors: &[Vendor] = if gateway {
            &[Vendor::Kkiai]
        } else {
            &Vendor::ALL
        };
        for &v in vendors {
            let denied_key = format!("{}-denied", key(v));
            let job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
            let (st, e) = post(&sim, v, Tier::Std, &denied_key, &create_body(v, &job)).await;
            println!("{v} (gateway_errors {gateway}): forbidden create → {st} {e}");
            assert!(is_forbidden(v, st, &e), "{v}: {st} {e}");
            // The healthy key works, and its task is still refused to the denied key.
            let id = create_ok(&sim, v, &job).await;
            let (st, e) = get(v, &query_url(&sim, v, &id, Tier::Std), &denied_key).await;
            println!("{v} (gateway_errors {gateway}): forbidden query → {st} {e}");
            assert!(is_forbidden(v, st, &e), "{v} query: {st} {e}");
            let ledger = sim.ledger();
            let d = ledger.key(v, "denied").unwrap();
            assert_eq!(d.rejected("forbidden"), 2, "{v}: {:?}", d.rejections);
            assert!(
                d.creates.is_empty(),
                "{v}: nothing created on the denied key"
            );
            assert_eq!(d.charged, 0.0, "{v}: nothing charged");
            let m = ledger.key(v, ALIAS).unwrap();
            assert_eq!(m.creates.len(), 1, "{v}: the other key is unaffected");
            assert_eq!(m.rejected("forbidden"), 0, "{v}");
        }
    }
}
