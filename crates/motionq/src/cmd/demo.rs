//! `motionq demo`: the whole system on one machine, against the simulator.
//!
//! Starts the simulator (`config/sim.toml`), a private `redis-server` when one is installed (or
//! uses the Redis at `MOTIONQ__REDIS__URL` under a fresh key prefix), a worker running every stage
//! and the webhook receiver, all in this process; enqueues `manifests/demo.json` and shows live
//! progress until every job is terminal. Exits 0 when every job is stored, printing where the
//! outputs and the report are. Never touches a real vendor: every base URL points at the
//! simulator.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use motionq_config::Config;
use motionq_core::pricing::estimate;
use motionq_core::Vendor;
use motionq_store::{EnqueueMode, EnqueueRequest, RedisConn, Store};

use crate::exit::Failure;

/// The simulator has its own vendor enum (it shares no code with the adapters on purpose).
fn sim_vendor(v: Vendor) -> motionq_sim::Vendor {
    motionq_sim::Vendor::ALL
        .into_iter()
        .find(|s| s.as_str() == v.as_str())
        .expect("the simulator serves all five vendors")
}

/// The shipped demo files, embedded so the demo runs from any directory.
const DEMO_CONFIG: &str = include_str!("../../../../config/demo.toml");
const SIM_CONFIG: &str = include_str!("../../../../config/sim.toml");
const DEMO_MANIFEST: &str = include_str!("../../../../manifests/demo.json");
/// The media base written in `manifests/demo.json`.
const MANIFEST_MEDIA_BASE: &str = "http://127.0.0.1:8089/media";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Manifest to run (default: the embedded manifests/demo.json). Its media URLs may use
    /// http://127.0.0.1:8089/media; they are pointed at the simulator's real port.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Where outputs go (default: .motionq/demo-outputs).
    #[arg(long, default_value = ".motionq/demo-outputs")]
    pub outputs: PathBuf,
    /// Simulator port (a free one is used when it is taken).
    #[arg(long, default_value_t = 8089)]
    pub sim_port: u16,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_s: u64,
}

/// The demo's API keys: the simulator's demo keys, exported under the env var names that
/// `config/demo.toml` gives. Called before the async runtime starts (setting the environment is
/// only sound while a single thread runs).
pub fn export_demo_keys() -> Result<(), Failure> {
    let cfg = demo_config_from_str()?;
    let sim = motionq_sim::SimConfig::from_toml_str(SIM_CONFIG).map_err(Failure::operational)?;
    // The webhook path token (fresh each run) and the simulator's Freepik signing secret.
    if let Some(var) = &cfg.webhooks.token_env {
        if std::env::var_os(var).is_none() {
            let token: String = (0..40)
                .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rand_index(36)]))
                .collect();
            std::env::set_var(var, token);
        }
    }
    if let (Some(var), Some(secret)) = (
        &cfg.webhooks.freepik_secret_env,
        &sim.freepik.webhook_secret,
    ) {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, secret);
        }
    }
    for v in Vendor::ALL {
        let sim_keys = &sim.vendor(sim_vendor(v)).keys;
        let Some(vc) = cfg.vendors.get(&v) else {
            continue;
        };
        for (i, k) in vc.keys.iter().enumerate() {
            if std::env::var_os(&k.api_key_env).is_some() {
                continue;
            }
            if let Some(sk) = sim_keys.get(i) {
                use secrecy::ExposeSecret;
                // SAFETY-free: single-threaded at this point (see the function doc).
                std::env::set_var(&k.api_key_env, sk.key.expose_secret());
            }
        }
    }
    Ok(())
}

/// A random index below `n` from the OS's hasher seed (no extra dependency for a demo token).
fn rand_index(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (h.finish() % n as u64) as usize
}

fn demo_config_from_str() -> Result<Config, Failure> {
    let dir = std::env::temp_dir().join(format!("motionq-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(Failure::operational)?;
    let path = dir.join("demo.toml");
    std::fs::write(&path, DEMO_CONFIG).map_err(Failure::operational)?;
    let cfg = Config::load(&[path]).map_err(Failure::operational);
    let _ = std::fs::remove_dir_all(&dir);
    cfg
}

/// Keeps a private server alive (it stops when dropped) or records that a shared one is used.
enum RedisChoice {
    Private(#[allow(dead_code)] motionq_testkit::RedisServer),
    Shared,
}

async fn redis_for_demo(cfg: &mut Config) -> Result<RedisChoice, Failure> {
    let explicit = std::env::var_os("MOTIONQ__REDIS__URL").is_some();
    if !explicit {
        match motionq_testkit::RedisServer::start().await {
            Ok(server) => {
                cfg.redis.url = server.url();
                println!(
                    "redis:   private redis-server on 127.0.0.1:{} (AOF in {})",
                    server.port(),
                    server.dir().display()
                );
                return Ok(RedisChoice::Private(server));
            }
            Err(e) => {
                tracing::info!(error = %e, "no private redis-server; using the configured Redis")
            }
        }
    }
    // A shared Redis: a fresh key prefix keeps this run apart from anything else in it.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    cfg.redis.key_prefix = format!("mqdemo{secs}");
    match RedisConn::connect(&cfg.redis).await {
        Ok(_) => {
            println!(
                "redis:   {} (keys under `{}:`)",
                motionq_config::redact_url(&cfg.redis.url),
                cfg.redis.key_prefix
            );
            Ok(RedisChoice::Shared)
        }
        Err(e) => Err(Failure::operational(format!(
            "{e}. The demo needs Redis: set MOTIONQ__REDIS__URL, start one on 127.0.0.1:6379, or install redis-server (`sudo apt-get install -y redis-server`) and the demo starts a private one"
        ))),
    }
}

pub async fn run(a: &DemoArgs, config_path: Option<&Path>) -> Result<(), Failure> {
    let started = Instant::now();
    let mut cfg = match config_path {
        Some(p) => Config::load(&[p.to_path_buf()]).map_err(Failure::operational)?,
        None => demo_config_from_str()?,
    };
    println!("motionq demo: every vendor is simulated; nothing here reaches a real vendor\n");

    // Simulator.
    let mut sim_cfg =
        motionq_sim::SimConfig::from_toml_str(SIM_CONFIG).map_err(Failure::operational)?;
    sim_cfg.admin_enabled = true;
    sim_cfg.allow_private_callbacks = true;
    let sim = match motionq_sim::SimServer::start_on(
        ([127, 0, 0, 1], a.sim_port).into(),
        sim_cfg.clone(),
    )
    .await
    {
        Ok(s) => s,
        Err(_) => motionq_sim::SimServer::start_on(([127, 0, 0, 1], 0).into(), sim_cfg)
            .await
            .map_err(Failure::operational)?,
    };
    println!(
        "sim:     {} (five vendors; ledger at {}/_sim/ledger)",
        sim.base_url(),
        sim.base_url()
    );
    for v in Vendor::ALL {
        if let Some(vc) = cfg.vendors.get_mut(&v) {
            vc.base_url = sim.vendor_base_url(sim_vendor(v));
        }
    }

    let _redis = redis_for_demo(&mut cfg).await?;
    let outputs = std::path::absolute(&a.outputs).map_err(Failure::operational)?;
    std::fs::create_dir_all(&outputs)
        .map_err(|e| Failure::operational(format!("{}: {e}", outputs.display())))?;
    cfg.storage.url = format!("file://{}", outputs.display());
    println!("outputs: {}", outputs.display());

    // Manifest, pointed at the simulator's media.
    let text = match &a.manifest {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| Failure::invalid(format!("{}: {e}", p.display())))?,
        None => DEMO_MANIFEST.to_string(),
    };
    let text = text.replace(MANIFEST_MEDIA_BASE, &format!("{}/media", sim.base_url()));
    let v = crate::manifest_io::validate(text.as_bytes(), &cfg, false).await;
    crate::manifest_io::print_problems(&v);
    let Some((campaign, jobs)) = v.campaign.as_ref() else {
        return Err(Failure::invalid("the demo manifest is invalid"));
    };
    let est = estimate(jobs, campaign.routing, campaign.budget_usd, &cfg.prices());
    let conn = RedisConn::connect(&cfg.redis)
        .await
        .map_err(Failure::operational)?;
    let store = Store::new(conn, &cfg.redis.key_prefix);
    let costs: Vec<Option<f64>> = est.per_job.iter().map(|c| c.expected_usd).collect();
    let summary = store
        .enqueue(EnqueueRequest {
            campaign,
            jobs,
            job_costs: &costs,
            manifest_sha256: "demo",
            expected_usd: est.expected_usd,
            worst_case_usd: est.worst_case_usd,
            mode: EnqueueMode::Strict,
            chunk: cfg.validation.enqueue_chunk,
        })
        .await?;
    println!(
        "enqueued campaign `{}`: {} jobs on {} vendors, estimated ${:.2} (budget ${:.2})\n",
        summary.campaign,
        summary.jobs_total,
        est.rows
            .iter()
            .map(|r| r.vendor)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        est.expected_usd.unwrap_or(0.0),
        campaign.budget_usd.unwrap_or(0.0)
    );

    // Webhook receiver, metrics and a worker (every stage), all in this process.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };
    let metrics = motionq_metrics::Metrics::new();
    let hooks = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(Failure::operational)?;
    let hooks_addr = hooks.local_addr().map_err(Failure::operational)?;
    cfg.webhooks.public_base_url = Some(format!("http://{hooks_addr}"));
    let state = motionq_webhooks::WebhookState::connect(
        &cfg,
        metrics.clone(),
        motionq_webhooks::IntakeOptions::default(),
    )
    .await
    .map_err(|e| Failure::operational(format!("webhooks: {e:#}")))?;
    tokio::spawn(motionq_webhooks::serve_state(
        state,
        hooks,
        stopped(stop_rx.clone()),
    ));
    println!("hooks:   http://{hooks_addr}/webhooks/<vendor>/<token> (vendors call back here)");
    crate::telemetry::install_hook(&cfg, &metrics, store.clone())
        .await
        .map_err(|e| Failure::operational(format!("{e:#}")))?;
    if let Ok(addr) = cfg.metrics.listen.parse::<std::net::SocketAddr>() {
        crate::telemetry::serve(
            addr,
            metrics.clone(),
            store.clone(),
            stopped(stop_rx.clone()),
        );
        println!("metrics: http://{addr}/metrics");
    }
    println!();
    let worker_cfg = cfg.clone();
    let worker_stop = stopped(stop_rx.clone());
    let worker = tokio::spawn(async move {
        let opts = motionq_pipeline::WorkerOptions {
            metrics: Some(metrics),
            pipeline: motionq_pipeline::PipelineOptions::from_worker_config(&worker_cfg.worker),
            ..Default::default()
        };
        motionq_pipeline::run_worker(&worker_cfg, opts, worker_stop).await
    });

    // Live progress.
    let bar = ProgressBar::new(summary.jobs_total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} done  {msg}",
        )
        .expect("static template")
        .progress_chars("##-"),
    );
    let deadline = Instant::now() + Duration::from_secs(a.timeout_s);
    let terminal = ["stored", "failed", "cancelled", "expired"];
    let record = loop {
        let c = store.campaign(&campaign.id).await?;
        let done: i64 = terminal
            .iter()
            .map(|s| c.counts.get(*s).copied().unwrap_or(0))
            .sum();
        bar.set_position(done.max(0) as u64);
        let states: Vec<String> = c.counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
        bar.set_message(states.join(", "));
        if done as u64 >= c.jobs_total {
            bar.finish();
            break c;
        }
        if Instant::now() > deadline || worker.is_finished() {
            bar.abandon();
            let _ = stop_tx.send(true);
            return Err(Failure::operational(format!(
                "the demo did not finish within {} s: {}",
                a.timeout_s,
                states.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let _ = stop_tx.send(true);
    match tokio::time::timeout(Duration::from_secs(30), worker).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "worker stopped with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "worker task failed"),
        _ => {}
    }

    // Report and summary.
    let report_path = outputs.parent().unwrap_or(&outputs).join("demo-report.csv");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&report_path)
            .map_err(|e| Failure::operational(format!("{}: {e}", report_path.display())))?,
    );
    super::report::write_report(&store, &campaign.id, super::report::Format::Csv, &mut f).await?;
    std::io::Write::flush(&mut f).map_err(Failure::operational)?;
    let ledger = sim.ledger();
    let creates: u64 = ledger
        .vendors
        .values()
        .flat_map(|v| v.keys.values())
        .map(|k| k.accepted)
        .sum();
    let duplicates: u64 = ledger
        .vendors
        .values()
        .flat_map(|v| v.keys.values())
        .map(|k| k.duplicates)
        .sum();
    let stored = record.counts.get("stored").copied().unwrap_or(0);
    println!();
    println!(
        "campaign `{}` finished in {:.1} s",
        campaign.id,
        started.elapsed().as_secs_f64()
    );
    for (state, n) in &record.counts {
        println!("  {state:<10} {n}");
    }
    let callbacks: u64 = ledger.vendors.values().map(|v| v.callbacks.delivered).sum();
    println!("simulator ledger: {creates} paid create calls accepted, {duplicates} duplicate submissions, {callbacks} callbacks delivered");
    println!(
        "outputs: {}",
        outputs
            .join(campaign.output_prefix.as_deref().unwrap_or(""))
            .join(&campaign.id)
            .display()
    );
    println!("report:  {}", report_path.display());
    sim.shutdown().await;
    if stored as u64 == record.jobs_total {
        println!("\nall {} jobs stored.", record.jobs_total);
        Ok(())
    } else {
        Err(Failure::operational(format!(
            "{} of {} jobs were stored; see the report for the others",
            stored, record.jobs_total
        )))
    }
}
