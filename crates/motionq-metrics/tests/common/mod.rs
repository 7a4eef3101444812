//! Shared by the integration tests: a metrics server on port 0, a populator that calls every
//! recording function, and lookups of the external tools with install instructions.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use motionq_core::{ErrorClass, JobState, Tier, Vendor};
use motionq_metrics::{
    CampaignSnapshot, Collected, KeyState, LimitKind, Metrics, Operation, ParkReason,
    QueueSnapshot, ScrapeSnapshot, Stage, StageOutcome, WebhookOutcome, Window,
};

/// A running `serve_listener` on 127.0.0.1:0.
pub struct TestServer {
    pub addr: SocketAddr,
    pub healthy: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(metrics: Metrics) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let healthy = Arc::new(AtomicBool::new(true));
        let h = healthy.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(motionq_metrics::serve_listener(
            listener,
            metrics,
            move || h.load(Ordering::SeqCst),
            async move {
                let _ = rx.await;
            },
        ));
        TestServer {
            addr,
            healthy,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn scrape(&self) -> String {
        let resp = reqwest::get(self.url("/metrics"))
            .await
            .expect("GET /metrics");
        assert_eq!(resp.status(), 200);
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            ct.starts_with("text/plain; version=0.0.4"),
            "content type {ct}"
        );
        resp.text().await.expect("body")
    }

    /// Stops the server and waits for it (graceful shutdown must return Ok).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task").expect("server result");
        }
    }
}

pub const CAMPAIGN: &str = "spring-launch";

/// A snapshot as the binary's hook would build it from Redis.
pub fn snapshot(stored: u64) -> ScrapeSnapshot {
    ScrapeSnapshot {
        campaigns: vec![CampaignSnapshot {
            campaign: CAMPAIGN.into(),
            state: "running".into(),
            jobs_enqueued: 1000,
            jobs_by_state: vec![
                (JobState::Queued, 600u64.saturating_sub(stored)),
                (JobState::Submitted, 120),
                (JobState::Completed, 10),
                (JobState::Stored, 250 + stored),
                (JobState::Failed, 20),
            ],
        }],
        queues: vec![
            QueueSnapshot {
                stage: Stage::Submit,
                unread: 40,
                pending: 8,
                delayed: 3,
                dead: 1,
            },
            QueueSnapshot {
                stage: Stage::Poll,
                unread: 0,
                pending: 120,
                delayed: 0,
                dead: 0,
            },
            QueueSnapshot {
                stage: Stage::Collect,
                unread: 2,
                pending: 1,
                delayed: 0,
                dead: 0,
            },
        ],
    }
}

/// Installs a hook returning [`snapshot`] with a growing `stored` count, like a live campaign.
pub async fn install_hook(metrics: &Metrics) {
    let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
    metrics
        .set_scrape_hook(Box::new(move || {
            let stored = n.fetch_add(5, Ordering::SeqCst);
            async move { Ok(snapshot(stored.min(500))) }.boxed()
        }))
        .await;
}

/// One "tick" of a busy, slightly unhappy campaign: calls every recording function. Run it
/// repeatedly while Prometheus scrapes so counters move and rates are non-zero. The state it
/// leaves is chosen so every alert of config/prometheus/alerts.yml has a reason to fire:
/// a parked key, a 429 storm on one key, a nearly spent budget, outputs stored close to expiry.
pub fn tick(m: &Metrics, i: u64) {
    let ms = Duration::from_millis;
    for vendor in [Vendor::Kkiai, Vendor::Freepik] {
        m.vendor_request(vendor, "main", Operation::Create, Some(200), ms(300));
        m.vendor_request(vendor, "main", Operation::Query, Some(200), ms(80));
        m.vendor_request(vendor, "main", Operation::Download, Some(200), ms(900));
        m.generation_time(vendor, Tier::Std, Duration::from_secs(95 + i % 60));
        m.generation_time(vendor, Tier::Pro, Duration::from_secs(160 + i % 90));
        m.collected(
            vendor,
            Collected {
                bytes: 4_000_000 + i * 1000,
                duration: ms(1500),
                lag: Duration::from_secs(4 + i % 20),
                // Every fourth output is stored with only 8 minutes left.
                headroom: if i % 4 == 0 {
                    Duration::from_secs(480)
                } else {
                    Duration::from_secs(86_000)
                },
            },
        );
        // No job leaves `admitted`/`submitting`: the submit stage is stuck behind the parked
        // key and the 429 storm while 40 jobs wait in its queue (MotionqQueueNotDraining).
        m.job_transition(CAMPAIGN, JobState::Submitted, JobState::Completed);
        m.job_transition(CAMPAIGN, JobState::Completed, JobState::Stored);
        m.spend_settled(vendor, "main", CAMPAIGN, 0.42);
        m.webhook(vendor, WebhookOutcome::Accepted);
    }
    // A 429 storm on kkiai/burst (Kling's "too many requests" answer), 503s on freepik.
    m.vendor_request(Vendor::Kkiai, "burst", Operation::Create, Some(429), ms(40));
    m.vendor_request(Vendor::Kkiai, "burst", Operation::Create, Some(429), ms(40));
    m.vendor_request(
        Vendor::Kkiai,
        "burst",
        Operation::Create,
        Some(200),
        ms(250),
    );
    m.vendor_error(Vendor::Kkiai, "burst", ErrorClass::RateLimited);
    m.vendor_error(Vendor::Kkiai, "burst", ErrorClass::RateLimited);
    m.vendor_request(
        Vendor::Freepik,
        "main",
        Operation::Query,
        Some(503),
        ms(2000),
    );
    m.vendor_request(Vendor::Freepik, "main", Operation::Callback, None, ms(10));
    m.vendor_error(Vendor::Freepik, "main", ErrorClass::UpstreamTransient);
    m.vendor_error(Vendor::Kkiai, "main", ErrorClass::ContentPolicy);
    // Stage handler runs by outcome (the submit stage only defers: its keys cannot take work).
    m.stage_run(Stage::Submit, StageOutcome::Deferred, ms(5));
    m.stage_run(Stage::Poll, StageOutcome::Done, ms(90));
    m.stage_run(Stage::Poll, StageOutcome::Retried, ms(2000));
    m.stage_run(Stage::Collect, StageOutcome::Done, ms(1600));
    m.stage_run(Stage::Collect, StageOutcome::Failed, ms(30));
    m.retry(
        Stage::Submit,
        ErrorClass::RateLimited,
        Duration::from_secs(3),
    );
    m.retry(
        Stage::Poll,
        ErrorClass::UpstreamTransient,
        Duration::from_secs(1),
    );
    m.rate_limit_wait(Vendor::Kkiai, "burst", ms(700));
    m.limit_wait(Vendor::Freepik, "main", LimitKind::Concurrency, ms(2500));
    m.job_transition(CAMPAIGN, JobState::Submitted, JobState::Failed);
    m.webhook(Vendor::Freepik, WebhookOutcome::RejectedSignature);
    if i % 3 == 0 {
        m.output_expired(Vendor::Freepik);
    }

    for (vendor, key) in [
        (Vendor::Kkiai, "main"),
        (Vendor::Kkiai, "burst"),
        (Vendor::Freepik, "main"),
    ] {
        let slowed = if key == "burst" { 0.5 } else { 2.0 };
        m.set_effective_rate(vendor, key, Operation::Create, slowed, 2.0);
        m.set_effective_rate(vendor, key, Operation::Query, 10.0, 10.0);
        m.set_in_flight(vendor, key, 3 + (i % 5) as u32, 8);
        m.set_spend(vendor, key, Window::Daily, 40.0, 5.0, Some(100.0));
        m.set_spend(vendor, key, Window::Total, 400.0, 5.0, None);
    }
    // kkiai/burst's hourly window is 95% used.
    m.set_spend(
        Vendor::Kkiai,
        "burst",
        Window::Hourly,
        18.0,
        1.0,
        Some(20.0),
    );
    m.set_campaign_spend(CAMPAIGN, 460.0 + i as f64, 12.0, Some(500.0));
    m.set_key_state(Vendor::Kkiai, "main", KeyState::Active);
    m.set_key_state(Vendor::Freepik, "main", KeyState::Active);
    m.set_key_state(
        Vendor::Kkiai,
        "burst",
        KeyState::Parked(ParkReason::QuotaExhausted),
    );
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// An external binary on PATH, or a failure that says how to install it.
pub fn require_binary(name: &str, install: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!("`{name}` is not installed; this test needs it. Install it with: {install}"),
    }
}

pub const PROMETHEUS_INSTALL: &str =
    "apt-get install -y --no-install-recommends prometheus   (Debian; provides prometheus and promtool)";

/// Runs a command and returns (exit code, stdout+stderr).
pub fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("spawn command");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Every PromQL expression shipped in the repository, with where it comes from: each panel
/// target of the dashboard and each rule of the alert file. Grafana's variables are replaced by
/// what "All" would select (`$campaign`, `$vendor` → `.*`) and `$__rate_interval` by `window`.
pub fn shipped_expressions(window: &str) -> Vec<(String, String)> {
    let root = repo_root();
    let mut out = Vec::new();
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("config/grafana/dashboards/motionq.json"))
            .expect("read dashboard"),
    )
    .expect("dashboard is JSON");
    let mut panels: Vec<&serde_json::Value> = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        panels.push(p);
        if let Some(inner) = p["panels"].as_array() {
            panels.extend(inner.iter());
        }
    }
    for p in panels {
        for t in p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let expr = t["expr"].as_str().expect("target expr");
            let expr = expr
                .replace("$__rate_interval", window)
                .replace("$campaign", ".*")
                .replace("$vendor", ".*");
            out.push((
                format!(
                    "dashboard panel `{}` target {}",
                    p["title"].as_str().unwrap_or("?"),
                    t["refId"].as_str().unwrap_or("?")
                ),
                expr,
            ));
        }
    }
    let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("config/prometheus/alerts.yml")).expect("read alerts"),
    )
    .expect("alerts are YAML");
    for g in rules["groups"].as_sequence().expect("groups") {
        for r in g["rules"].as_sequence().expect("rules") {
            let name = r["alert"]
                .as_str()
                .or_else(|| r["record"].as_str())
                .expect("rule name");
            out.push((
                format!("rule {name}"),
                r["expr"].as_str().expect("rule expr").to_string(),
            ));
        }
    }
    out
}

/// Grafana template variables (`label_values(metric, label)`) as `(variable, metric, label)`.
pub fn dashboard_variables() -> Vec<(String, String, String)> {
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("config/grafana/dashboards/motionq.json"))
            .expect("read dashboard"),
    )
    .expect("dashboard is JSON");
    dash["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .map(|v| {
            let q = v["query"]["query"].as_str().expect("variable query");
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or_else(|| {
                    panic!("variable query `{q}` is not label_values(metric, label)")
                });
            let (metric, label) = inner.split_once(',').expect("metric, label");
            (
                v["name"].as_str().expect("name").to_string(),
                metric.trim().to_string(),
                label.trim().to_string(),
            )
        })
        .collect()
}

/// A real Prometheus (Debian package) as a foreground child on a free loopback port, with its
/// own temp data dir; killed and reaped on drop.
pub struct Prometheus {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(config: &str) -> Self {
        let bin = require_binary("prometheus", PROMETHEUS_INSTALL);
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config).expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = std::process::Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/query`: Ok(result array) or Err(error text) for a rejected expression.
    pub async fn query(&self, expr: &str) -> Result<Vec<serde_json::Value>, String> {
        let resp = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| format!("body: {e}"))?;
        if !status.is_success() || body["status"] != "success" {
            return Err(format!(
                "HTTP {status}: {} {}",
                body["errorType"].as_str().unwrap_or(""),
                body["error"].as_str().unwrap_or("")
            ));
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    // The OS picks a free port; it is released just before Prometheus binds it.
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls each expression until it returns a series or `deadline` passes. Returns the
/// expressions Prometheus rejected (with its error) and those that stayed empty.
pub async fn evaluate_until_series(
    prom: &Prometheus,
    mut pending: Vec<(String, String)>,
    deadline: std::time::Instant,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut rejected = Vec::new();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (origin, expr) in pending {
            match prom.query(&expr).await {
                Err(e) => rejected.push(format!("{origin}: {e}\n    {expr}")),
                Ok(series) if series.is_empty() => still.push((origin, expr)),
                Ok(_) => {}
            }
        }
        pending = still;
        if pending.is_empty() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    (rejected, pending)
}

/// Waits until `count(up == 1)` reaches `n`.
pub async fn wait_for_targets(prom: &Prometheus, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = prom.query("count(up == 1)").await {
            if r.first().and_then(|s| s["value"][1].as_str()) == Some(n.to_string().as_str()) {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus never scraped the {n} live targets; log:\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
