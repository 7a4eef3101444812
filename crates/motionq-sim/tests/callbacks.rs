//! Callbacks delivered to a local receiver: bodies, headers, Standard-Webhooks signature,
//! retry schedule, and the callback faults.

mod common;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post as route_post;
use common::*;
use motionq_sim::{SimHandle, Tier, Vendor};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Receiver, String) {
        let r = Receiver::default();
        *r.fail_first.lock().unwrap() = fail_first;
        let app = axum::Router::new()
            .route("/cb/{name}", route_post(hit))
            .with_state(r.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (r, url)
    }

    fn hits(&self, name: &str) -> Vec<Hit> {
        let path = format!("/cb/{name}");
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }

    /// Waits (bounded) until `n` hits arrived for `name`.
    async fn wait_for(&self, name: &str, n: usize) -> Vec<Hit> {
        for _ in 0..2000 {
            let hits = self.hits(name);
            if hits.len() >= n {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "{name}: expected {n} callbacks, got {:?}",
            self.hits(name).len()
        );
    }
}

async fn hit(
    State(r): State<Receiver>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    r.hits.lock().unwrap().push(Hit {
        path: format!("/cb/{name}"),
        headers,
        body: body.to_vec(),
    });
    let mut f = r.fail_first.lock().unwrap();
    if *f > 0 {
        *f -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

fn json(h: &Hit) -> Value {
    serde_json::from_slice(&h.body).expect("callback body is JSON")
}

/// Waits until the ledger has settled `n` callbacks (delivered, given up or dropped) for `v`.
async fn settled(sim: &SimHandle, v: Vendor, n: u64) {
    for _ in 0..4000 {
        let l = sim.ledger();
        let c = &l.vendor(v).unwrap().callbacks;
        if c.delivered + c.given_up + c.dropped >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{v}: callbacks never settled");
}

async fn run_job(sim: &SimHandle, v: Vendor, cb: &str, prompt: Option<&str>) -> String {
    let mut job = Job::new(sim, "portrait-720x1280.png", "dance-8s.mp4");
    job.callback = Some(cb.to_string());
    job.prompt = prompt.map(str::to_string);
    let id = create_ok(sim, v, &job).await;
    finish(sim, v, &id, Tier::Std).await;
    id
}

#[tokio::test]
async fn callbacks_carry_each_vendors_body_and_headers() {
    let (rx, base) = Receiver::start(0).await;
    let sim = start(config()).await;

    // EvoLink: once, on the terminal status, body = the query object.
    let id = run_job(&sim, Vendor::Evolink, &format!("{base}/cb/evolink"), None).await;
    let hits = rx.wait_for("evolink", 1).await;
    let b = json(&hits[0]);
    assert_eq!(
        (b["id"].as_str(), b["status"].as_str()),
        (Some(id.as_str()), Some("completed"))
    );
    assert!(b["results"][0].is_string());
    assert_eq!(hits[0].headers["content-type"], "application/json");

    // KKIAI: every status change, no watermark_url.
    let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
    job.callback = Some(format!("{base}/cb/kkiai"));
    job.watermark = true;
    job.external = Some("ext-cb".into());
    let id = create_ok(&sim, Vendor::Kkiai, &job).await;
    finish(&sim, Vendor::Kkiai, &id, Tier::Std).await;
    let hits = rx.wait_for("kkiai", 3).await;
    let mut statuses: Vec<String> = hits
        .iter()
        .map(|h| json(h)["task_status"].as_str().unwrap().to_string())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["processing", "submitted", "succeed"]);
    let last = hits
        .iter()
        .map(json)
        .find(|b| b["task_status"] == "succeed")
        .unwrap();
    assert_eq!(last["task_id"], id.as_str());
    assert_eq!(last["task_info"]["external_task_id"], "ext-cb");
    assert!(last["task_result"]["videos"][0]["url"].is_string());
    assert!(last["task_result"]["videos"][0]
        .get("watermark_url")
        .is_none());
    assert_eq!(last["final_unit_deduction"], "7.2");

    // AI Video API: terminal only, X-Event / X-Task-Id / X-Timestamp.
    let id = run_job(&sim, Vendor::Aivideoapi, &format!("{base}/cb/aiv"), None).await;
    let hits = rx.wait_for("aiv", 1).await;
    let h = &hits[0];
    assert_eq!(h.headers["x-event"], "task.completed");
    assert_eq!(h.headers["x-task-id"], id.as_str());
    assert!(h.headers["x-timestamp"]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());
    assert_eq!(json(h)["output"]["urls"].as_array().unwrap().len(), 1);
    let id = run_job(
        &sim,
        Vendor::Aivideoapi,
        &format!("{base}/cb/aivfail"),
        Some("sim:content_policy"),
    )
    .await;
    let hits = rx.wait_for("aivfail", 1).await;
    assert_eq!(hits[0].headers["x-event"], "task.failed");
    assert_eq!(json(&hits[0])["id"], id.as_str());

    // Freepik: IN_PROGRESS and COMPLETED, no data wrapper, signed.
    let id = run_job(&sim, Vendor::Freepik, &format!("{base}/cb/freepik"), None).await;
    let hits = rx.wait_for("freepik", 2).await;
    let key = motionq_sim::webhook_key_bytes(motionq_sim::DEFAULT_WEBHOOK_SECRET);
    let mut statuses = Vec::new();
    for h in &hits {
        let b = json(h);
        assert!(b.get("data").is_none());
        assert_eq!(b["task_id"], id.as_str());
        statuses.push(b["status"].as_str().unwrap().to_string());
        let msg_id = h.headers["webhook-id"].to_str().unwrap();
        let ts: u64 = h.headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let sig = h.headers["webhook-signature"].to_str().unwrap();
        assert!(sig.starts_with("v1,"));
        assert_eq!(
            sig,
            motionq_sim::standard_webhook_signature(&key, msg_id, ts, &h.body)
        );
        assert!(
            motionq_sim::now_ms() / 1000 - ts < 300,
            "within the 300 s tolerance"
        );
    }
    statuses.sort();
    assert_eq!(statuses, ["COMPLETED", "IN_PROGRESS"]);
    // The receiver records a delivery before the simulator has read its answer and counted
    // it: wait (bounded) for the ledger to catch up.
    let delivered = || {
        sim.ledger()
            .vendor(Vendor::Freepik)
            .unwrap()
            .callbacks
            .delivered
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while delivered() < 2 && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(delivered(), 2);
    let l = sim.ledger();
    assert_eq!(l.vendor(Vendor::Highwayapi).unwrap().callbacks.planned, 0);
}

#[tokio::test]
async fn failed_deliveries_are_retried_on_the_vendor_schedule() {
    // EvoLink: up to 3 retries (1/2/4 s, scaled); the third attempt succeeds here.
    let (rx, base) = Receiver::start(2).await;
    let sim = start(config()).await;
    run_job(&sim, Vendor::Evolink, &format!("{base}/cb/e"), None).await;
    let hits = rx.wait_for("e", 3).await;
    let bodies: Vec<Value> = hits.iter().map(json).collect();
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "same body on every attempt"
    );
    settled(&sim, Vendor::Evolink, 1).await;
    let c = sim
        .ledger()
        .vendor(Vendor::Evolink)
        .unwrap()
        .callbacks
        .clone();
    assert_eq!(
        (c.attempts, c.failed_attempts, c.delivered, c.given_up),
        (3, 2, 1, 0)
    );

    // AI Video API: 3 attempts in all, then given up.
    let (rx, base) = Receiver::start(100).await;
    run_job(&sim, Vendor::Aivideoapi, &format!("{base}/cb/a"), None).await;
    settled(&sim, Vendor::Aivideoapi, 1).await;
    assert_eq!(rx.hits("a").len(), 3);
    let c = sim
        .ledger()
        .vendor(Vendor::Aivideoapi)
        .unwrap()
        .callbacks
        .clone();
    assert_eq!((c.attempts, c.given_up), (3, 1));
}

#[tokio::test]
async fn callback_faults_drop_and_duplicate() {
    let (rx, base) = Receiver::start(0).await;
    let mut c = config();
    c.faults.evolink.callback.drop = 1.0;
    c.faults.aivideoapi.callback.duplicate = 1.0;
    let sim = start(c).await;
    run_job(&sim, Vendor::Evolink, &format!("{base}/cb/drop"), None).await;
    settled(&sim, Vendor::Evolink, 1).await;
    assert!(rx.hits("drop").is_empty());
    run_job(&sim, Vendor::Aivideoapi, &format!("{base}/cb/dup"), None).await;
    let hits = rx.wait_for("dup", 2).await;
    assert_eq!(hits[0].headers["x-task-id"], hits[1].headers["x-task-id"]);
    let l = sim.ledger();
    assert_eq!(l.vendor(Vendor::Evolink).unwrap().callbacks.dropped, 1);
    assert_eq!(
        l.vendor(Vendor::Aivideoapi).unwrap().callbacks.duplicated,
        1
    );
    assert_eq!(
        l.vendor(Vendor::Evolink).unwrap().faults_injected["callback.drop"],
        1
    );
}

#[tokio::test]
async fn private_or_plain_http_callbacks_are_refused_by_default() {
    let mut c = config();
    c.allow_private_callbacks = false;
    let sim = start(c).await;
    for (v, url) in [
        (Vendor::Evolink, "http://example.com/hook"),
        (Vendor::Evolink, "https://127.0.0.1/hook"),
        (Vendor::Evolink, "https://10.1.2.3/hook"),
        (Vendor::Evolink, "https://192.168.0.5/hook"),
        (Vendor::Kkiai, "https://localhost/hook"),
        (Vendor::Aivideoapi, "https://172.16.0.1/hook"),
        (Vendor::Freepik, "https://[::1]/hook"),
    ] {
        let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
        job.callback = Some(url.into());
        let (st, e) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
        assert_eq!(st, 400, "{v} {url}: {e}");
        if v == Vendor::Evolink {
            assert_eq!(e["error"]["param"], "callback_url");
        }
    }
    let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
    job.callback = Some(format!("https://hooks.example.com/{}", "x".repeat(2100)));
    let (st, _) = post(
        &sim,
        Vendor::Evolink,
        Tier::Std,
        key(Vendor::Evolink),
        &create_body(Vendor::Evolink, &job),
    )
    .await;
    assert_eq!(st, 400, "over 2048 characters");
}
