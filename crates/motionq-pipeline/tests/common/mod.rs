//! Shared test harness: a private redis-server, the simulator over HTTP, motionq's demo config
//! pointed at both, a temp-dir object store, and helpers to enqueue and wait.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use motionq_config::Config;
use motionq_core::{ValidateOptions, Vendor};
use motionq_sim::{SimConfig, SimHandle, SimServer};
use motionq_store::{EnqueueMode, EnqueueRequest, RedisConn, Store};
use motionq_testkit::RedisServer;

pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Sets the demo keys' env vars (the values the simulator's demo config accepts).
pub fn set_demo_keys() {
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
}

pub struct Env {
    pub redis: RedisServer,
    pub sim: SimHandle,
    pub out: tempfile::TempDir,
    pub cfg: Config,
    pub store: Store,
}

/// The simulator's demo config with a small time scale.
pub fn sim_config(time_scale: f64) -> SimConfig {
    let mut c =
        SimConfig::from_toml_file(format!("{ROOT}/config/sim.toml")).expect("config/sim.toml");
    c.time_scale = time_scale;
    c
}

pub async fn start(sim: SimConfig) -> Env {
    set_demo_keys();
    let redis = RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let sim = SimServer::start(sim).await.expect("simulator");
    let out = tempfile::tempdir().unwrap();
    let mut cfg = Config::load(&[PathBuf::from(format!("{ROOT}/config/demo.toml"))])
        .expect("config/demo.toml");
    cfg.redis.url = redis.url();
    cfg.redis.key_prefix = "t".into();
    for v in Vendor::ALL {
        if let Some(vc) = cfg.vendors.get_mut(&v) {
            vc.base_url = sim.vendor_base_url(sim_vendor(v));
            vc.request_timeout_ms = 10_000;
            // A killed worker's slots come back within the test's time.
            for k in &mut vc.keys {
                k.lease_ttl_s = 20;
            }
        }
    }
    cfg.webhooks.public_base_url = None;
    cfg.storage.url = out.path().to_string_lossy().to_string();
    cfg.queue = toml::from_str(
        "claim_min_idle_ms = 4000\nclaim_interval_ms = 1000\nrefresh_interval_ms = 1000\npromote_interval_ms = 50\ndefer_delay_ms = 300\n[retry]\nbase = 100\ncap = 2000\nmax_attempts = 30\nmax_total = 600000\n",
    )
    .unwrap();
    let conn = RedisConn::connect(&cfg.redis).await.unwrap();
    let store = Store::new(conn, "t");
    Env {
        redis,
        sim,
        out,
        cfg,
        store,
    }
}

pub fn sim_vendor(v: Vendor) -> motionq_sim::Vendor {
    motionq_sim::Vendor::ALL
        .into_iter()
        .find(|s| s.as_str() == v.as_str())
        .expect("sim vendor")
}

/// Validates a manifest (JSON text, `127.0.0.1:8089` rewritten to the simulator) and enqueues it.
pub async fn enqueue(env: &Env, manifest: &str) -> String {
    let text = manifest.replace(
        "http://127.0.0.1:8089",
        env.sim.base_url().trim_end_matches('/'),
    );
    let v = motionq_core::validate::validate_bytes(
        text.as_bytes(),
        &ValidateOptions {
            allow_private_callbacks: true,
            allow_private_media: true,
        },
    );
    let errors: Vec<_> = v.errors().collect();
    assert!(errors.is_empty(), "manifest invalid: {errors:?}");
    let (spec, jobs) = v.campaign.unwrap();
    let costs = vec![None; jobs.len()];
    env.store
        .enqueue(EnqueueRequest {
            campaign: &spec,
            jobs: &jobs,
            job_costs: &costs,
            manifest_sha256: "test",
            expected_usd: None,
            worst_case_usd: None,
            mode: EnqueueMode::Strict,
            chunk: 500,
        })
        .await
        .expect("enqueue");
    spec.id
}

/// A manifest of `n` jobs on `vendors`, each with a unique prompt (distinct ledger fingerprints).
pub fn manifest(campaign: &str, vendors: &[&str], n: usize, extra: &str) -> String {
    let jobs: Vec<String> = (0..n)
        .map(|i| format!(
            r#"{{"id":"j{i:05}","image":"http://127.0.0.1:8089/media/portrait-720x1280.png","video":"http://127.0.0.1:8089/media/dance-8s.mp4","video_duration_s":8,"prompt":"job {i} of {campaign}"}}"#
        ))
        .collect();
    let vs: Vec<String> = vendors.iter().map(|v| format!("\"{v}\"")).collect();
    format!(
        r#"{{"campaign":"{campaign}","vendors":[{}],"routing":"in_order"{extra},"defaults":{{"orientation":"video","tier":"std"}},"jobs":[{}]}}"#,
        vs.join(","),
        jobs.join(",")
    )
}

/// Counts of a campaign by state.
pub async fn counts(env: &Env, campaign: &str) -> std::collections::BTreeMap<String, i64> {
    env.store.campaign(campaign).await.unwrap().counts
}

/// Waits until `done(counts)` or the timeout; returns the last counts.
pub async fn wait_for(
    env: &Env,
    campaign: &str,
    timeout: Duration,
    done: impl Fn(&std::collections::BTreeMap<String, i64>) -> bool,
) -> std::collections::BTreeMap<String, i64> {
    let start = Instant::now();
    loop {
        let c = counts(env, campaign).await;
        if done(&c) || start.elapsed() > timeout {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn n(c: &std::collections::BTreeMap<String, i64>, state: &str) -> i64 {
    c.get(state).copied().unwrap_or(0)
}

/// Fast pipeline options for tests.
pub fn fast_options() -> motionq_pipeline::WorkerOptions {
    motionq_pipeline::WorkerOptions {
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
        ..Default::default()
    }
}

/// Runs a worker in this process until the returned sender is dropped or sent to.
pub fn spawn_worker(
    env: &Env,
    opts: motionq_pipeline::WorkerOptions,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = env.cfg.clone();
    let h = tokio::spawn(async move {
        motionq_pipeline::run_worker(&cfg, opts, async move {
            let _ = rx.await;
        })
        .await
    });
    (tx, h)
}

/// The limiter over the test's Redis and config (to park keys, read their state).
pub async fn limits(env: &Env) -> motionq_limits::Limits {
    let conn = RedisConn::connect(&env.cfg.redis).await.unwrap();
    motionq_limits::Limits::new(
        conn,
        &env.cfg.redis.key_prefix,
        motionq_pipeline::limits_config(&env.cfg),
    )
    .unwrap()
}
