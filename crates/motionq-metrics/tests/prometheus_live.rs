//! Every PromQL expression of the dashboard and the alert rules, evaluated by a real Prometheus
//! (the Debian package, a foreground child on a free loopback port with a temp data dir) that
//! scrapes what motionq really serves: this crate's `/metrics` for a worker and a webhook
//! server, populated by a driver that calls every recording function while Prometheus scrapes,
//! and a real `motionq-sim` server's `/metrics`. One worker and one webhook target are dead
//! ports, so `up == 0` exists for the process-down alerts. An expression fails the test when
//! Prometheus rejects it or when it never returns a series.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use motionq_core::Vendor;
use motionq_metrics::{KeyState, Metrics, ParkReason, WebhookOutcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_expression_returns_series_from_real_scrapes() {
    require_binary("prometheus", PROMETHEUS_INSTALL);

    // A worker process and a webhook server process, each with its own catalogue.
    let worker = Metrics::new();
    install_hook(&worker).await;
    let serve = Metrics::new();
    let worker_srv = TestServer::start(worker.clone()).await;
    let serve_srv = TestServer::start(serve.clone()).await;
    let sim = motionq_sim::SimServer::start(motionq_sim::SimConfig::default())
        .await
        .expect("start simulator");

    // The driver: a short, busy campaign's worth of events, every 200 ms while Prometheus
    // scrapes every second, so counters move and rates, increases and quantiles have data.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let driver = {
        let (worker, serve) = (worker.clone(), serve.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            loop {
                tick(&worker, i);
                worker.set_key_state(
                    Vendor::Evolink,
                    "e1",
                    KeyState::Parked(ParkReason::InsufficientFunds),
                );
                serve.webhook(Vendor::Kkiai, WebhookOutcome::Accepted);
                serve.webhook(Vendor::Freepik, WebhookOutcome::Duplicate);
                i += 1;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop_rx.changed() => break,
                }
            }
        })
    };

    let rules = repo_root().join("config/prometheus/alerts.yml");
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: motionq-worker
    static_configs:
      - targets: ["{worker}", "127.0.0.1:{dead1}"]
  - job_name: motionq-serve
    static_configs:
      - targets: ["{serve}", "127.0.0.1:{dead2}"]
  - job_name: motionq-sim
    static_configs:
      - targets: ["{sim}"]
"#,
        rules = rules.display(),
        worker = worker_srv.addr,
        serve = serve_srv.addr,
        sim = sim.local_addr(),
        dead1 = free_port(),
        dead2 = free_port(),
    );
    let prom = Prometheus::start(&config);

    // Readiness: the three live targets scraped (the first scrape comes a few seconds after
    // start). Deadlines only bound the wait; nothing asserts on speed.
    wait_for_targets(&prom, 3).await;

    // MotionqNoWorkerUp (`absent(up == 1)` of the workers) has a series only when every
    // worker is gone, which this state never is: it is checked by promtool's unit test
    // (config/prometheus/alerts_test.yml), and its expression must still be accepted here.
    let (no_worker, mut pending): (Vec<_>, Vec<_>) = shipped_expressions("1m")
        .into_iter()
        .partition(|(o, _)| o == "rule MotionqNoWorkerUp");
    assert_eq!(no_worker.len(), 1, "the rule is shipped");
    for (o, e) in &no_worker {
        if let Err(err) = prom.query(e).await {
            panic!("{o}: Prometheus rejected it: {err}");
        }
    }
    assert!(pending.len() >= 40, "expressions found: {}", pending.len());
    let total = pending.len();
    for (var, metric, label) in dashboard_variables() {
        pending.push((
            format!("dashboard variable ${var}"),
            format!("count by ({label}) ({metric})"),
        ));
    }
    let (rejected, pending) =
        evaluate_until_series(&prom, pending, Instant::now() + Duration::from_secs(120)).await;
    assert!(
        rejected.is_empty(),
        "Prometheus rejected:\n{}",
        rejected.join("\n")
    );

    // The driven state is a bad day on purpose, so Prometheus' own rule evaluation must have
    // every alert pending or firing (their `for` durations are minutes, so mostly pending).
    // Except MotionqNoWorkerUp: it needs every worker gone, and this state scrapes a live worker
    // (the per-instance MotionqWorkerDown covers the dead one here; promtool's unit test in
    // config/prometheus/alerts_test.yml makes MotionqNoWorkerUp fire).
    let alert_names: Vec<String> = shipped_expressions("1m")
        .into_iter()
        .filter_map(|(o, _)| o.strip_prefix("rule ").map(str::to_string))
        .filter(|n| n != "MotionqNoWorkerUp")
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut active: Vec<String>;
    loop {
        let body: serde_json::Value =
            reqwest::get(format!("http://127.0.0.1:{}/api/v1/alerts", prom.port))
                .await
                .expect("alerts api")
                .json()
                .await
                .expect("alerts json");
        active = body["data"]["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
            .collect();
        if alert_names.iter().all(|n| active.contains(n)) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = stop_tx.send(true);
    driver.await.expect("driver");
    let missing: Vec<&String> = alert_names.iter().filter(|n| !active.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "alerts never pending/firing in the driven bad-day state: {missing:?}"
    );
    assert!(
        pending.is_empty(),
        "{} of {total} expressions never returned a series:\n{}",
        pending.len(),
        pending
            .iter()
            .map(|(o, e)| format!("{o}\n    {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The rule file loaded in the real server too (not only in promtool), every alert healthy.
    let rules_resp: serde_json::Value =
        reqwest::get(format!("http://127.0.0.1:{}/api/v1/rules", prom.port))
            .await
            .expect("rules api")
            .json()
            .await
            .expect("rules json");
    let loaded: Vec<&serde_json::Value> = rules_resp["data"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .collect();
    assert_eq!(
        loaded.len(),
        alert_names.len() + 1,
        "rules loaded by Prometheus (every alert, MotionqNoWorkerUp included)"
    );
    for r in loaded {
        assert_eq!(
            r["health"], "ok",
            "rule {} unhealthy: {}",
            r["name"], r["lastError"]
        );
    }

    worker_srv.stop().await;
    serve_srv.stop().await;
    sim.shutdown().await;
    assert!(Path::new(&rules).exists());
}
