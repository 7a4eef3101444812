//! A short real campaign, observed the way an operator would: the demo manifest (12 jobs, all
//! five vendors) runs through `motionq_pipeline::run_worker` against a private `redis-server`
//! and the simulator (with injected 429s, 503s and content-policy failures), recording into a
//! [`Metrics`] served over HTTP with a scrape hook that reads Redis (campaign counts, queue
//! stats, key limits and budgets). A real Prometheus scrapes the worker and the simulator.
//!
//! Then: every dashboard expression must return series, except the few that need an event a
//! healthy run does not have (listed with the reason); every rule expression must be accepted;
//! the alerts that signal damage must stay quiet; and motionq's own counts must agree with the
//! simulator's ledger and with Redis, through PromQL.

mod common;

use std::time::{Duration, Instant};

use common::*;
use motionq_config::Config;
use motionq_core::{ValidateOptions, Vendor};
use motionq_metrics::Metrics;
use motionq_store::{EnqueueMode, EnqueueRequest, RedisConn, Store};

fn set_demo_keys() {
    for v in Vendor::ALL {
        for n in 1..=2 {
            let var = format!("MOTIONQ_DEMO_{}_KEY_{n}", v.as_str().to_uppercase());
            let val = if v == Vendor::Aivideoapi {
                format!("sk-demo-{}-{n}", v.as_str())
            } else {
                format!("demo-{}-{n}", v.as_str())
            };
            std::env::set_var(var, val);
        }
    }
}

fn sim_vendor(v: Vendor) -> motionq_sim::Vendor {
    motionq_sim::Vendor::ALL
        .into_iter()
        .find(|s| s.as_str() == v.as_str())
        .expect("the simulator serves every vendor")
}

/// Dashboard expressions a healthy 12-job run cannot fill, and why. Everything else must
/// return series.
const EMPTY_IN_A_HEALTHY_RUN: &[(&str, &str)] = &[
    (
        "Outputs lost to expiry",
        "no output expires in a healthy run (the driven test covers it)",
    ),
    (
        "Webhooks by outcome",
        "callbacks are counted by `motionq serve`, not run here (the driven test covers it)",
    ),
];

/// Alerts that signal damage; a healthy run must not trip their expressions.
const QUIET: &[&str] = &[
    "MotionqKeyBudgetNearlyExhausted",
    "MotionqCampaignBudgetNearlyExhausted",
    "MotionqKeyParkedNeedsOperator",
    "MotionqOutputsCloseToExpiry",
    "MotionqOutputsExpired",
    "MotionqQueueNotDraining",
    "MotionqWorkerDown",
    "MotionqNoWorkerUp",
    "MotionqWebhookServerDown",
];

async fn value(prom: &Prometheus, expr: &str) -> f64 {
    let r = prom
        .query(expr)
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    r.first()
        .and_then(|s| s["value"][1].as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{expr}: no value in {r:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_campaign_fills_the_dashboard_and_agrees_with_the_ledger() {
    require_binary("prometheus", PROMETHEUS_INSTALL);
    set_demo_keys();
    let root = repo_root();
    let redis = motionq_testkit::RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);

    // The simulator, fast, with faults so the error, retry and 429/503 panels have data.
    let mut sim_cfg = motionq_sim::SimConfig::from_toml_file(root.join("config/sim.toml"))
        .expect("config/sim.toml");
    sim_cfg.time_scale = 0.002;
    // HighwayAPI reports its link lifetime (`video_url_ttl`) and the simulator scales it: one
    // hour becomes 7.2 s real, so every HighwayAPI output is stored "close to expiry" and
    // MotionqOutputsCloseToExpiry fires whenever two scrapes bracket such a store. A healthy
    // run needs links that outlive the alert's 15 minutes in real time: 30 days scaled is
    // 5184 s.
    sim_cfg.highwayapi.output_ttl_seconds = Some(30.0 * 86_400.0);
    sim_cfg.faults.kkiai.create.rate_limited = 0.4;
    // Query 503s are retried by the poll stage, so the retry panels get data. With 0.3 on
    // Freepik's queries alone, one run in three here had no retry at all; 0.5 on four vendors'
    // queries makes such a run vanishingly rare.
    for v in [
        &mut sim_cfg.faults.freepik,
        &mut sim_cfg.faults.evolink,
        &mut sim_cfg.faults.aivideoapi,
        &mut sim_cfg.faults.highwayapi,
    ] {
        v.query.error_503 = 0.5;
    }
    sim_cfg.faults.evolink.content_policy = 0.5;
    let sim = motionq_sim::SimServer::start(sim_cfg)
        .await
        .expect("simulator");

    // motionq's demo config, pointed at both; every key gets a daily budget so the budget
    // panels have a limit to show.
    let out = tempfile::tempdir().unwrap();
    let mut cfg = Config::load(&[root.join("config/demo.toml")]).expect("config/demo.toml");
    cfg.redis.url = redis.url();
    cfg.redis.key_prefix = "m".into();
    for v in Vendor::ALL {
        let vc = cfg.vendors.get_mut(&v).expect("vendor configured");
        vc.base_url = sim.vendor_base_url(sim_vendor(v));
        for k in &mut vc.keys {
            k.spend_daily = Some(1_000_000.0);
        }
    }
    cfg.webhooks.public_base_url = None;
    cfg.storage.url = out.path().to_string_lossy().to_string();
    cfg.queue = toml::from_str(
        "claim_min_idle_ms = 4000\nclaim_interval_ms = 1000\nrefresh_interval_ms = 1000\n\
         promote_interval_ms = 50\ndefer_delay_ms = 300\n\
         [retry]\nbase = 100\ncap = 2000\nmax_attempts = 30\nmax_total = 600000\n",
    )
    .unwrap();

    // The worker's metrics, served over HTTP with the scrape hook a worker installs.
    let metrics = Metrics::new();
    let conn = RedisConn::connect(&cfg.redis).await.expect("redis");
    motionq_pipeline::telemetry::install_scrape_hook(
        &cfg,
        &metrics,
        Store::new(conn.clone(), &cfg.redis.key_prefix),
    )
    .await
    .expect("scrape hook");
    let worker_srv = TestServer::start(metrics.clone()).await;

    let prom = Prometheus::start(&format!(
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
      - targets: ["{worker}"]
  - job_name: motionq-sim
    static_configs:
      - targets: ["{sim}"]
"#,
        rules = root.join("config/prometheus/alerts.yml").display(),
        worker = worker_srv.addr,
        sim = sim.local_addr(),
    ));
    wait_for_targets(&prom, 2).await;

    // Enqueue the demo manifest (media on the simulator) and run the worker.
    let text = std::fs::read_to_string(root.join("manifests/demo.json"))
        .unwrap()
        .replace(
            "http://127.0.0.1:8089",
            sim.base_url().trim_end_matches('/'),
        );
    let v = motionq_core::validate::validate_bytes(
        text.as_bytes(),
        &ValidateOptions {
            allow_private_callbacks: true,
            allow_private_media: true,
        },
    );
    assert!(v.errors().next().is_none(), "demo manifest invalid");
    let (spec, jobs) = v.campaign.unwrap();
    let store = Store::new(conn.clone(), &cfg.redis.key_prefix);
    store
        .enqueue(EnqueueRequest {
            campaign: &spec,
            jobs: &jobs,
            job_costs: &vec![None; jobs.len()],
            manifest_sha256: "campaign_live",
            expected_usd: None,
            worst_case_usd: None,
            mode: EnqueueMode::Strict,
            chunk: 500,
        })
        .await
        .expect("enqueue");
    let campaign = spec.id.clone();
    let total = jobs.len() as i64;

    let opts = motionq_pipeline::WorkerOptions {
        pipeline: motionq_pipeline::PipelineOptions {
            first_poll_delay: Duration::from_millis(200),
            poll_min: Duration::from_millis(200),
            poll_max: Duration::from_millis(1000),
            feeder_interval: Duration::from_millis(100),
            sweep_interval: Duration::from_secs(2),
            sweep_stale: Duration::from_secs(8),
            job_lock_ttl: Duration::from_secs(4),
            ..Default::default()
        },
        shutdown_timeout: Duration::from_secs(10),
        metrics: Some(metrics.clone()),
        ..Default::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker_cfg = cfg.clone();
    let worker = tokio::spawn(async move {
        motionq_pipeline::run_worker(&worker_cfg, opts, async move {
            let _ = stop_rx.await;
        })
        .await
    });

    let deadline = Instant::now() + Duration::from_secs(180);
    let counts = loop {
        let c = store.campaign(&campaign).await.unwrap().counts;
        let n = |s: &str| c.get(s).copied().unwrap_or(0);
        if n("stored") + n("failed") + n("expired") + n("cancelled") == total {
            break c;
        }
        assert!(Instant::now() < deadline, "campaign did not finish: {c:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let stored = counts.get("stored").copied().unwrap_or(0);
    assert!(stored > 0, "nothing stored: {counts:?}");

    // Dashboard: every expression returns series (bar the listed exceptions).
    let all = shipped_expressions("1m");
    let (dash, rules): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|(o, _)| o.starts_with("dashboard"));
    let mut must = Vec::new();
    for (origin, expr) in dash {
        if !EMPTY_IN_A_HEALTHY_RUN
            .iter()
            .any(|(t, _)| origin.contains(t))
        {
            must.push((origin, expr));
        }
    }
    let (rejected, empty) =
        evaluate_until_series(&prom, must, Instant::now() + Duration::from_secs(60)).await;
    assert!(rejected.is_empty(), "rejected:\n{}", rejected.join("\n"));
    assert!(
        empty.is_empty(),
        "dashboard expressions without series after a real campaign:\n{}",
        empty
            .iter()
            .map(|(o, e)| format!("{o}\n    {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Rules: all accepted; the damage alerts quiet.
    for (origin, expr) in &rules {
        let r = prom
            .query(expr)
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        let name = origin.trim_start_matches("rule ");
        if QUIET.contains(&name) {
            assert!(r.is_empty(), "{origin} fires in a healthy run: {r:?}");
        }
    }

    // motionq's counts agree with the simulator's ledger and with Redis, through PromQL. The
    // counters are final once the last scrape after the campaign is in.
    let stored_f = stored as f64;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let transitions = value(
            &prom,
            "sum(motionq_job_transitions_total{job=\"motionq-worker\", to=\"stored\"})",
        )
        .await;
        let collected = value(&prom, "sum(motionq_collect_duration_seconds_count)").await;
        let jobs_stored = value(
            &prom,
            &format!("max(motionq_campaign_jobs{{campaign=\"{campaign}\", state=\"stored\"}})"),
        )
        .await;
        let paid_creates = value(
            &prom,
            "sum(motionq_vendor_requests_total{operation=\"create\", status_class=\"2xx\"})",
        )
        .await;
        let sim_creates = value(&prom, "sum(motionq_sim_creates_total)").await;
        let duplicates = value(&prom, "sum(motionq_sim_duplicate_creates_total)").await;
        let ok = transitions == stored_f
            && collected == stored_f
            && jobs_stored == stored_f
            && paid_creates == sim_creates
            && duplicates == 0.0;
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stored {stored}: transitions {transitions}, collected {collected}, \
             campaign gauge {jobs_stored}; creates motionq {paid_creates} vs simulator \
             {sim_creates}; duplicates {duplicates}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The injected faults were seen and classified.
    assert!(
        value(
            &prom,
            "sum(motionq_vendor_throttled_responses_total{vendor=\"kkiai\", code=\"429\"})"
        )
        .await
            > 0.0
    );
    assert!(value(&prom, "sum(motionq_sim_faults_injected_total)").await > 0.0);

    // Key spend is exported in USD: AI Video API bills credits worth $0.005 each, so the
    // settled USD of its keys is the simulator's net credits times 0.005 (not the credits).
    let usd_per_credit = cfg.vendors[&Vendor::Aivideoapi]
        .price
        .usd_per_unit
        .expect("AI Video API has a USD price");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let settled = value(
            &prom,
            "sum(motionq_key_spend_settled_usd{vendor=\"aivideoapi\", window=\"daily\"})",
        )
        .await;
        let net_credits = value(
            &prom,
            "sum(motionq_sim_charged_units_total{vendor=\"aivideoapi\"}) \
             - sum(motionq_sim_refunded_units_total{vendor=\"aivideoapi\"} or vector(0))",
        )
        .await;
        let expected = net_credits * usd_per_credit;
        if net_credits > 0.0 && (settled - expected).abs() <= 1e-6 * expected.max(1.0) {
            println!("aivideoapi: {net_credits} credits net = ${settled:.4} settled");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "aivideoapi key spend: {settled} USD settled, simulator {net_credits} credits \
             = {expected} USD"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let _ = stop_tx.send(());
    worker.await.expect("worker task").expect("worker");
    worker_srv.stop().await;
    sim.shutdown().await;
}
