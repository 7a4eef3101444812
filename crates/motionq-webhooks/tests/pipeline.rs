//! End to end with the simulator and the real pipeline: jobs are submitted by the submit
//! stage with callback URLs pointing at this intake; the simulator sends each vendor's real
//! callbacks (Freepik signed with its `webhook_secret`); the scheduled polls are an hour
//! away, so a job can only complete in this test through the webhook's immediate poll.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use motionq_config::Config;
use motionq_core::{JobState, Vendor};
use motionq_metrics::Metrics;
use motionq_pipeline::{Pipeline, PipelineOptions, WorkerOptions};
use motionq_sim::{SimConfig, SimServer};
use motionq_store::{EnqueueMode, EnqueueRequest};
use motionq_testkit::RedisServer;
use motionq_webhooks::{IntakeOptions, WebhookSecrets, WebhookState};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const TOKEN_VAR: &str = "MOTIONQ_WEBHOOKS_E2E_TOKEN";
const SECRET_VAR: &str = "MOTIONQ_WEBHOOKS_E2E_FREEPIK_SECRET";
const TOKEN: &str = "e2e-token-0123456789abcdefghij";

fn set_env(sim_secret: &str) {
    // The values config/sim.toml accepts for config/demo.toml's key variables.
    for v in Vendor::ALL {
        for n in 1..=2 {
            let var = format!("MOTIONQ_DEMO_{}_KEY_{n}", v.as_str().to_uppercase());
            let val = if v == Vendor::Aivideoapi {
                format!("sk-demo-{v}-{n}")
            } else {
                format!("demo-{v}-{n}")
            };
            std::env::set_var(var, val);
        }
    }
    std::env::set_var(TOKEN_VAR, TOKEN);
    std::env::set_var(SECRET_VAR, sim_secret);
}

fn count(metrics: &Metrics, vendor: Vendor, outcome: &str) -> u64 {
    let want = format!("motionq_webhooks_total{{outcome=\"{outcome}\",vendor=\"{vendor}\"}}");
    metrics
        .encode()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&want)
                .map(|v| v.trim().parse::<f64>().unwrap() as u64)
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vendor_callbacks_complete_jobs_without_waiting_for_the_scheduled_poll() {
    let mut sim_cfg =
        SimConfig::from_toml_file(format!("{ROOT}/config/sim.toml")).expect("config/sim.toml");
    sim_cfg.time_scale = 0.01;
    sim_cfg.allow_private_callbacks = true;
    let sim_secret = sim_cfg
        .freepik
        .webhook_secret
        .clone()
        .expect("sim.toml sets Freepik's webhook_secret");
    set_env(&sim_secret);
    let redis = RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let sim = SimServer::start(sim_cfg).await.expect("simulator");
    let out = tempfile::tempdir().unwrap();

    // The intake listens first, so its address can go into the config the workers use.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let mut cfg = Config::load(&[PathBuf::from(format!("{ROOT}/config/demo.toml"))])
        .expect("config/demo.toml");
    cfg.redis.url = redis.url();
    cfg.redis.key_prefix = "e2e".into();
    for v in Vendor::ALL {
        let sv = motionq_sim::Vendor::ALL
            .into_iter()
            .find(|s| s.as_str() == v.as_str())
            .unwrap();
        if let Some(vc) = cfg.vendors.get_mut(&v) {
            vc.base_url = sim.vendor_base_url(sv);
        }
    }
    cfg.storage.url = out.path().to_string_lossy().to_string();
    cfg.webhooks.public_base_url = Some(format!("http://{addr}"));
    cfg.webhooks.token_env = Some(TOKEN_VAR.into());
    cfg.webhooks.freepik_secret_env = Some(SECRET_VAR.into());
    cfg.queue = toml::from_str("promote_interval_ms = 50\ndefer_delay_ms = 300\n").unwrap();

    let metrics = Metrics::new();
    let pipeline = Arc::new(
        Pipeline::connect(&cfg, PipelineOptions::default())
            .await
            .unwrap(),
    );
    let state = WebhookState::new(
        &cfg,
        pipeline.clone(),
        metrics.clone(),
        WebhookSecrets::from_env(&cfg.webhooks).unwrap(),
        IntakeOptions::default(),
    )
    .unwrap();
    let (stop_hooks, hooks_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(motionq_webhooks::serve_state(state, listener, async move {
        let _ = hooks_rx.await;
    }));

    // One job per vendor with callbacks.
    let media = |n: &str| sim.media_url(n);
    let jobs: Vec<serde_json::Value> = [("fp", "freepik"), ("evo", "evolink"), ("kl", "kkiai"), ("avi", "aivideoapi")]
        .iter()
        .map(|(id, v)| serde_json::json!({"id": id, "vendor": v, "image": media("portrait-720x1280.png"), "video": media("dance-8s.mp4"), "video_duration_s": 8, "prompt": format!("webhook e2e {id}")}))
        .collect();
    let manifest = serde_json::json!({
        "campaign": "hooks-e2e",
        "vendors": ["freepik", "evolink", "kkiai", "aivideoapi"],
        "defaults": {"orientation": "video", "tier": "std"},
        "jobs": jobs,
    });
    let v = motionq_core::validate::validate_bytes(
        &serde_json::to_vec(&manifest).unwrap(),
        &cfg.validate_options(),
    );
    let (spec, vjobs) = v
        .campaign
        .clone()
        .unwrap_or_else(|| panic!("manifest invalid: {:?}", v.problems));
    let costs = vec![None; vjobs.len()];
    pipeline
        .store()
        .enqueue(EnqueueRequest {
            campaign: &spec,
            jobs: &vjobs,
            job_costs: &costs,
            manifest_sha256: "t",
            expected_usd: None,
            worst_case_usd: None,
            mode: EnqueueMode::Strict,
            chunk: 100,
        })
        .await
        .unwrap();

    // Scheduled polls an hour away: only a webhook can bring a job forward in this test.
    let hour = Duration::from_secs(3600);
    let opts = WorkerOptions {
        pipeline: PipelineOptions {
            first_poll_delay: hour,
            poll_min: hour,
            poll_max: hour,
            feeder_interval: Duration::from_millis(100),
            sweep_interval: hour,
            sweep_stale: hour,
            ..Default::default()
        },
        shutdown_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let (stop_worker, worker_rx) = tokio::sync::oneshot::channel::<()>();
    let wcfg = cfg.clone();
    let worker = tokio::spawn(async move {
        motionq_pipeline::run_worker(&wcfg, opts, async move {
            let _ = worker_rx.await;
        })
        .await
    });

    let started = Instant::now();
    let ids = ["fp", "evo", "kl", "avi"];
    let mut states = Vec::new();
    while started.elapsed() < Duration::from_secs(120) {
        states.clear();
        for j in ids {
            states.push(pipeline.store().job("hooks-e2e", j).await.unwrap().unwrap());
        }
        if states.iter().all(|r| r.state == JobState::Stored) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let summary: Vec<(String, JobState)> = states.iter().map(|r| (r.id.clone(), r.state)).collect();
    assert!(
        states.iter().all(|r| r.state == JobState::Stored),
        "every job stored through its webhook: {summary:?}"
    );
    let elapsed = started.elapsed();
    assert!(elapsed < hour, "finished long before any scheduled poll");
    for r in &states {
        assert!(
            r.fields.get("task_id").is_some_and(|t| !t.is_empty()),
            "{}",
            r.id
        );
    }
    // Each vendor's callback was verified and pushed the poll; the simulator delivered it.
    for v in [
        Vendor::Freepik,
        Vendor::Evolink,
        Vendor::Kkiai,
        Vendor::Aivideoapi,
    ] {
        assert!(
            count(&metrics, v, "accepted") >= 1,
            "{v}: {}",
            metrics.encode()
        );
        assert_eq!(count(&metrics, v, "rejected_signature"), 0, "{v}");
        assert_eq!(count(&metrics, v, "rejected_malformed"), 0, "{v}");
    }
    let ledger = sim.ledger();
    let fp = ledger.vendors.get("freepik").expect("freepik ledger");
    assert!(fp.callbacks.delivered >= 1, "{:?}", fp.callbacks);
    assert_eq!(fp.callbacks.given_up, 0);
    // One query per job, made by the poll the webhook pushed: no scheduled poll ran.
    for v in ["freepik", "evolink", "kkiai", "aivideoapi"] {
        let vl = ledger.vendors.get(v).expect("vendor ledger");
        let queries: u64 = vl.keys.values().map(|k| k.queries).sum();
        let creates: u64 = vl.keys.values().map(|k| k.accepted).sum();
        assert_eq!(
            (creates, queries),
            (1, 1),
            "{v}: one paid create, one query"
        );
        assert!(vl.callbacks.delivered >= 1, "{v}: {:?}", vl.callbacks);
    }
    eprintln!("4 jobs stored via webhooks in {elapsed:?} (scheduled polls were {hour:?} away)");

    let _ = stop_worker.send(());
    worker.await.unwrap().unwrap();
    let _ = stop_hooks.send(());
    server.await.unwrap().unwrap();
    sim.shutdown().await;
}
