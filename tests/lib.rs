//! # tests: motionq's reliability suites (issue 10)
//!
//! End-to-end suites that run the real `motionq` binary as separate processes against a private
//! `redis-server` (standalone, password-protected or a three-node cluster, from
//! `motionq-testkit`), the vendor simulator over loopback HTTP (`motionq-sim`, in the test
//! process so its **ledger** can be read directly) and a local object store in a temp dir. The
//! ground truth is never motionq's own counters: it is the simulator's ledger (accepted
//! creates, fingerprints, in-flight maxima, rejections, sha256 of every output) and the files
//! in the object store.
//!
//! ## Running
//!
//! The suites start `<target>/debug/motionq`; build it first:
//!
//! ```sh
//! cargo build -p motionq && cargo test -p tests -- --nocapture      # bounded (CI) sizes
//! MOTIONQ_LONG=1 cargo test -p tests --test crash -- --nocapture    # soak sizes
//! ```
//!
//! A missing binary or `redis-server` fails the suite with the command that fixes it.
//!
//! ## Layout
//!
//! This library is the shared harness: [`motionq_bin`] (where the binary is), [`Deployment`]
//! (Redis + simulator + object store + a worker config, and helpers to run `motionq`
//! subcommands and worker processes against them), [`Audit`] (the cross-check of records,
//! stored files and the ledger), manifest builders and small helpers. The suites are in
//! `tests/`: `crash`, `redis_restart`, `scale_out`, `vendor_faults` (also the limits-under-chaos
//! checks), `bad_input`, `security`. Figures and reproduction commands are collected in
//! `docs/RELIABILITY.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use motionq_sim::{SimConfig, SimHandle, SimServer};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The workspace root.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The five vendors, as the simulator and the config name them.
pub const VENDORS: [&str; 5] = ["evolink", "kkiai", "aivideoapi", "highwayapi", "freepik"];

/// States in which a job is finished.
pub const TERMINAL: [&str; 4] = ["stored", "failed", "expired", "cancelled"];

/// True when `MOTIONQ_LONG=1`: suites run their soak sizes.
pub fn long_mode() -> bool {
    std::env::var("MOTIONQ_LONG").is_ok_and(|v| v == "1" || v == "true")
}

/// `n` normally, `long` with `MOTIONQ_LONG=1`.
pub fn size(n: usize, long: usize) -> usize {
    if long_mode() {
        long
    } else {
        n
    }
}

/// Path of the `motionq` binary built in the same target dir as this test.
///
/// A test of package `tests` cannot use `CARGO_BIN_EXE_motionq` (the binary belongs to another
/// package), so it is found next to the test executable: `<target>/debug/deps/<test>` →
/// `<target>/debug/motionq`. Panics with the build command when it is missing.
pub fn motionq_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let debug = exe
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "debug"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| exe.parent().unwrap().parent().unwrap().to_path_buf());
    let bin = debug.join("motionq");
    assert!(
        bin.is_file(),
        "the motionq binary is missing at {}: run `cargo build -p motionq` (same CARGO_TARGET_DIR) before `cargo test -p tests`",
        bin.display()
    );
    bin
}

/// The demo keys' env vars (`MOTIONQ_DEMO_<VENDOR>_KEY_<n>`) and the simulator's values for them.
pub fn demo_keys() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in VENDORS {
        for n in 1..=2 {
            let val = if v == "aivideoapi" {
                format!("sk-demo-{v}-{n}")
            } else {
                format!("demo-{v}-{n}")
            };
            out.push((format!("MOTIONQ_DEMO_{}_KEY_{n}", v.to_uppercase()), val));
        }
    }
    out
}

/// The simulator's demo config (`config/sim.toml`) with the given time scale.
pub fn sim_config(time_scale: f64) -> SimConfig {
    let mut c = SimConfig::from_toml_file(format!("{ROOT}/config/sim.toml"))
        .expect("config/sim.toml parses");
    c.time_scale = time_scale;
    c
}

/// How workers reach Redis.
#[derive(Debug, Clone)]
pub enum RedisTarget {
    /// `redis://127.0.0.1:PORT/` (no auth).
    Standalone(String),
    /// URL without the password; the password travels in the env var named by
    /// `MOTIONQ__REDIS__PASSWORD_ENV`.
    Password { url: String, password: String },
    /// Cluster seeds (`MOTIONQ__REDIS__MODE=cluster`, `MOTIONQ__REDIS__NODES`).
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// The env vars that point a `motionq` process at this Redis.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            RedisTarget::Standalone(url) => vec![("MOTIONQ__REDIS__URL".into(), url.clone())],
            RedisTarget::Password { url, password } => vec![
                ("MOTIONQ__REDIS__URL".into(), url.clone()),
                (
                    "MOTIONQ__REDIS__PASSWORD_ENV".into(),
                    "MQTEST_REDIS_PASSWORD".into(),
                ),
                ("MQTEST_REDIS_PASSWORD".into(), password.clone()),
            ],
            RedisTarget::Cluster(nodes) => vec![
                ("MOTIONQ__REDIS__MODE".into(), "cluster".into()),
                ("MOTIONQ__REDIS__NODES".into(), nodes.join(",")),
                ("MOTIONQ__REDIS__URL".into(), nodes[0].clone()),
            ],
        }
    }
}

/// Settings appended to `config/demo.toml` for the suites: fast queue redelivery (a SIGKILLed
/// worker's messages come back after 3 s) and enough deliveries that repeated kills never
/// dead-letter a job.
pub const TEST_QUEUE_TOML: &str = r#"
[queue]
claim_min_idle_ms = 3000
claim_interval_ms = 1000
refresh_interval_ms = 1000
promote_interval_ms = 50
defer_delay_ms = 300
max_deliveries = 1000
[queue.retry]
base = 100
cap = 2000
max_attempts = 30
max_total = 600000
"#;

/// One deployment under test: Redis, the simulator, an object store directory and a worker
/// config file, plus helpers to run `motionq` against them.
pub struct Deployment {
    /// The simulator (in this process; its ledger is the truth).
    pub sim: SimHandle,
    /// Where workers find Redis.
    pub redis: RedisTarget,
    /// Object store root (`MOTIONQ__STORAGE__URL`).
    pub out: PathBuf,
    /// Temp dir with the config file, worker logs and manifests.
    pub dir: tempfile::TempDir,
    /// The worker config file (`config/demo.toml` + [`TEST_QUEUE_TOML`] + extra).
    pub config: PathBuf,
    /// Redis key prefix of this deployment.
    pub prefix: String,
    /// Extra env for every process (tests add switches here).
    pub extra_env: Vec<(String, String)>,
    logs: std::sync::atomic::AtomicUsize,
}

impl Deployment {
    /// Starts the simulator with `sim` and writes the worker config. `extra_toml` is appended to
    /// the config (e.g. `[worker]` settings).
    pub async fn start(redis: RedisTarget, sim: SimConfig, extra_toml: &str) -> Result<Self> {
        let sim = SimServer::start(sim).await.context("start the simulator")?;
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("objects");
        std::fs::create_dir_all(&out)?;
        // The demo config without its public webhook URL: no webhook server runs in the suites
        // (jobs are polled), so vendors must not be given a callback address nobody serves.
        let demo = std::fs::read_to_string(format!("{ROOT}/config/demo.toml"))?;
        let demo: String = demo
            .lines()
            .filter(|l| !l.trim_start().starts_with("public_base_url"))
            .map(|l| format!("{l}\n"))
            .collect();
        let config = dir.path().join("worker.toml");
        std::fs::write(
            &config,
            format!("{demo}\n{TEST_QUEUE_TOML}\n{extra_toml}\n"),
        )?;
        Ok(Self {
            sim,
            redis,
            out,
            dir,
            config,
            prefix: "rel".into(),
            extra_env: Vec::new(),
            logs: Default::default(),
        })
    }

    /// Every env var a `motionq` process of this deployment gets.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.redis.env();
        env.push(("MOTIONQ__REDIS__KEY_PREFIX".into(), self.prefix.clone()));
        env.push((
            "MOTIONQ__STORAGE__URL".into(),
            self.out.to_string_lossy().into_owned(),
        ));
        for v in VENDORS {
            env.push((
                format!("MOTIONQ__VENDORS__{}__BASE_URL", v.to_uppercase()),
                self.sim.vendor_base_url(sim_vendor(v)),
            ));
        }
        env.extend(demo_keys());
        env.extend(self.extra_env.iter().cloned());
        env
    }

    /// `motionq --config <worker.toml> <args>` with this deployment's env.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(motionq_bin());
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("RUST_LOG");
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs a subcommand to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run motionq")
    }

    /// Runs a subcommand that must succeed; returns its stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "motionq {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Starts `motionq worker <args>` with `env` added; its stderr goes to a log file in the
    /// temp dir (returned), its stdout is discarded.
    pub fn spawn_worker(&self, args: &[&str], env: &[(&str, &str)]) -> (Child, PathBuf) {
        let n = self.logs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.path().join(format!("worker-{n}.log"));
        let file = std::fs::File::create(&log).expect("worker log");
        let mut all = vec!["worker"];
        all.extend_from_slice(args);
        let mut cmd = self.command(&all);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn motionq worker");
        (child, log)
    }

    /// Writes `manifest` (media URLs `http://127.0.0.1:8089/...` rewritten to the simulator),
    /// runs `motionq enqueue --json`, and returns the campaign id.
    pub fn enqueue(&self, manifest: &str) -> String {
        let text = manifest.replace(
            "http://127.0.0.1:8089",
            self.sim.base_url().trim_end_matches('/'),
        );
        let v: Value = serde_json::from_str(&text).expect("manifest is JSON");
        let id = v["campaign"].as_str().expect("campaign id").to_string();
        let path = self.dir.path().join(format!("{id}.json"));
        std::fs::write(&path, text).unwrap();
        let out = self.run_ok(&[
            "enqueue",
            path.to_str().unwrap(),
            "--json",
            "--allow-over-budget",
        ]);
        let answer: Value = serde_json::from_str(out.trim()).expect("enqueue --json");
        assert_eq!(answer["campaign"].as_str(), Some(id.as_str()), "{answer}");
        id
    }

    /// `motionq status <campaign> --json`, or `None` when the command failed (Redis down).
    pub fn status(&self, campaign: &str) -> Option<Value> {
        let o = self.run(&["status", campaign, "--json"]);
        if !o.status.success() {
            return None;
        }
        serde_json::from_slice(&o.stdout).ok()
    }

    /// Jobs by state, from `motionq status --json`.
    pub fn counts(&self, campaign: &str) -> Option<BTreeMap<String, i64>> {
        let s = self.status(campaign)?;
        let c = find_counts(&s)?;
        Some(c)
    }

    /// Waits until every job of `campaigns` is terminal (or `timeout`); returns whether they
    /// all are. `tick` runs between checks (chaos loops restart workers there).
    pub async fn wait_terminal(
        &self,
        campaigns: &[(String, usize)],
        timeout: Duration,
        mut tick: impl FnMut(),
    ) -> bool {
        let end = Instant::now() + timeout;
        loop {
            tick();
            let done = campaigns.iter().all(|(c, n)| {
                self.counts(c)
                    .is_some_and(|m| terminal_count(&m) == *n as i64)
            });
            if done {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `motionq report <campaign> --format json`: one object per job.
    pub fn report(&self, campaign: &str) -> Vec<BTreeMap<String, String>> {
        let out = self.run_ok(&["report", campaign, "--format", "json"]);
        let doc: Value = serde_json::from_str(&out).expect("report json");
        doc["jobs"]
            .as_array()
            .expect("report.jobs")
            .iter()
            .map(|j| {
                j.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .collect()
    }

    /// Every regular file under the object store root (relative path → sha256), excluding
    /// sidecars (`.json`).
    pub fn stored_files(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        walk(&self.out, &mut |p| {
            if p.extension().is_some_and(|e| e == "json") {
                return;
            }
            let rel = p
                .strip_prefix(&self.out)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(rel, sha256_file(p));
        });
        out
    }
}

/// The simulator's vendor enum for a vendor name.
pub fn sim_vendor(v: &str) -> motionq_sim::Vendor {
    motionq_sim::Vendor::ALL
        .into_iter()
        .find(|s| s.as_str() == v)
        .expect("sim vendor")
}

/// Finds the jobs-by-state map in `status --json` output, wherever the command puts it.
fn find_counts(v: &Value) -> Option<BTreeMap<String, i64>> {
    match v {
        Value::Object(m) => {
            for key in ["counts", "by_state", "jobs_by_state"] {
                if let Some(Value::Object(c)) = m.get(key) {
                    if c.values().all(Value::is_number) {
                        return Some(
                            c.iter()
                                .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
                                .collect(),
                        );
                    }
                }
            }
            m.values().find_map(find_counts)
        }
        Value::Array(a) => a.iter().find_map(find_counts),
        _ => None,
    }
}

/// Jobs in a terminal state.
pub fn terminal_count(c: &BTreeMap<String, i64>) -> i64 {
    TERMINAL
        .iter()
        .map(|s| c.get(*s).copied().unwrap_or(0))
        .sum()
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

/// Hex sha256 of a file.
pub fn sha256_file(p: &Path) -> String {
    let bytes = std::fs::read(p).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// A manifest of jobs; `vendor_of(i)` picks each job's vendor; `prompt_of(i)` may add words
/// (e.g. `sim:content_policy`). Media are the simulator's samples (valid for every vendor).
pub fn manifest(
    campaign: &str,
    n: usize,
    vendor_of: impl Fn(usize) -> &'static str,
    prompt_of: impl Fn(usize) -> String,
) -> String {
    let jobs: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "id": format!("j{i:05}"),
                "vendor": vendor_of(i),
                "image": "http://127.0.0.1:8089/media/portrait-720x1280.png",
                "video": "http://127.0.0.1:8089/media/dance-8s.mp4",
                "video_duration_s": 8,
                "prompt": format!("job {i} of {campaign} {}", prompt_of(i)),
            })
        })
        .collect();
    serde_json::json!({
        "campaign": campaign,
        "vendors": VENDORS,
        "routing": "in_order",
        "defaults": {"orientation": "video", "tier": "std"},
        "jobs": jobs,
    })
    .to_string()
}

/// The cross-check of one finished campaign against the object store and the ledger.
#[derive(Debug, Default)]
pub struct Audit {
    /// Jobs by state (from the report).
    pub states: BTreeMap<String, usize>,
    /// Failed jobs by error class.
    pub failed_classes: BTreeMap<String, usize>,
    /// Stored jobs whose file exists with the recorded sha256, equal to the ledger's.
    pub stored_verified: usize,
    /// Problems found (empty = everything held).
    pub problems: Vec<String>,
}

/// Checks every stored job of `rows`: its object exists once, its sha256 equals the file's and
/// the simulator ledger's output sha256 of its task; no other object exists in `files` for
/// that job.
pub fn audit(
    rows: &[BTreeMap<String, String>],
    files: &BTreeMap<String, String>,
    ledger: &motionq_sim::Ledger,
) -> Audit {
    let mut a = Audit::default();
    // task id → output sha256 from the ledger (creates and downloads).
    let mut truth: BTreeMap<&str, &str> = BTreeMap::new();
    for vl in ledger.vendors.values() {
        for k in vl.keys.values() {
            for c in &k.creates {
                if let Some(s) = &c.output_sha256 {
                    truth.insert(&c.task_id, s);
                }
            }
            for (t, d) in &k.downloads.tasks {
                truth.entry(t.as_str()).or_insert(d.sha256.as_str());
            }
        }
    }
    let mut used_files = 0usize;
    for r in rows {
        let state = r.get("state").cloned().unwrap_or_default();
        *a.states.entry(state.clone()).or_default() += 1;
        if state == "failed" {
            *a.failed_classes
                .entry(r.get("error_class").cloned().unwrap_or_default())
                .or_default() += 1;
        }
        if state != "stored" {
            continue;
        }
        let job = &r["job_id"];
        let sha = r.get("sha256").cloned().unwrap_or_default();
        let url = r.get("object_url").cloned().unwrap_or_default();
        let task = r.get("task_id").cloned().unwrap_or_default();
        let matching: Vec<(&String, &String)> = files
            .iter()
            .filter(|(p, _)| url.ends_with(p.as_str()))
            .collect();
        if matching.len() != 1 {
            a.problems
                .push(format!("{job}: {} objects match {url}", matching.len()));
            continue;
        }
        used_files += 1;
        if matching[0].1 != &sha {
            a.problems.push(format!(
                "{job}: file sha256 {} != record {sha}",
                matching[0].1
            ));
            continue;
        }
        match truth.get(task.as_str()) {
            Some(t) if *t == sha => a.stored_verified += 1,
            Some(t) => a.problems.push(format!(
                "{job}: record sha256 {sha} != ledger {t} (task {task})"
            )),
            None => a.problems.push(format!(
                "{job}: task {task} unknown to the simulator ledger"
            )),
        }
    }
    let _ = used_files;
    a
}

/// Accepted creates on `vendor` (all keys) and how many shared a fingerprint with an earlier
/// accepted create (a job paid twice).
pub fn creates_and_duplicates(ledger: &motionq_sim::Ledger, vendor: &str) -> (usize, usize) {
    let Some(vl) = ledger.vendors.get(vendor) else {
        return (0, 0);
    };
    let mut fps: Vec<&str> = vl
        .keys
        .values()
        .flat_map(|k| k.creates.iter().map(|c| c.fingerprint.as_str()))
        .collect();
    let all = fps.len();
    fps.sort_unstable();
    fps.dedup();
    (all, all - fps.len())
}

/// Kills a child with SIGKILL and reaps it.
pub fn sigkill(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// Sends SIGTERM and waits up to `timeout` for the process to exit: its status, or `None`
/// if it is still running then.
fn term_and_wait(c: &mut Child, timeout: Duration) -> Result<Option<std::process::ExitStatus>> {
    let pid = c.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status()?;
    if !st.success() {
        bail!("kill -TERM {pid} failed");
    }
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Some(status) = c.try_wait()? {
            return Ok(Some(status));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(None)
}

/// Sends SIGTERM (graceful stop) and waits up to `timeout`, then SIGKILLs. For tearing down;
/// [`sigterm_graceful`] is the one that checks the stop was graceful.
pub fn sigterm(c: &mut Child, timeout: Duration) -> Result<()> {
    if term_and_wait(c, timeout)?.is_none() {
        sigkill(c);
    }
    Ok(())
}

/// Sends SIGTERM and waits up to `timeout` for the process to stop by itself. Unlike
/// [`sigterm`], never falls back to SIGKILL: a process still running at the deadline is an
/// error (it is then killed so the test leaves nothing behind), and so is a non-zero exit.
pub fn sigterm_graceful(c: &mut Child, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    match term_and_wait(c, timeout)? {
        Some(status) if status.success() => Ok(start.elapsed()),
        Some(status) => bail!("after SIGTERM the worker exited with {status}"),
        None => {
            sigkill(c);
            bail!("the worker did not stop within {timeout:?} of SIGTERM")
        }
    }
}

/// Reads the limiter's state in Redis after a run: live concurrency leases per key, pending
/// (uncommitted) and committed-but-unsettled spend reservations.
pub async fn limits_leftovers(
    config: &Path,
    redis: &RedisTarget,
    prefix: &str,
) -> Result<(BTreeMap<String, u32>, usize, usize)> {
    let mut cfg = motionq_config::Config::load_with_env(
        &[config.to_path_buf()],
        redis
            .env()
            .into_iter()
            .chain(demo_keys())
            .chain([("MOTIONQ__REDIS__KEY_PREFIX".to_string(), prefix.to_string())]),
    )?;
    cfg.redis.key_prefix = prefix.into();
    if let RedisTarget::Password { password, .. } = redis {
        // The library reads the password from the process env the config names.
        cfg.redis.password_env = None;
        cfg.redis.url = cfg
            .redis
            .url
            .replacen("redis://", &format!("redis://:{password}@"), 1);
    }
    let conn = motionq_store::RedisConn::connect(&cfg.redis).await?;
    let limits = motionq_limits::Limits::new(conn.clone(), prefix, limits_config(&cfg))?;
    let mut leases = BTreeMap::new();
    for st in limits.list_keys().await? {
        leases.insert(st.key.to_string(), st.in_flight);
    }
    let pending: usize = redis::cmd("ZCARD")
        .arg(limits.layout().pending())
        .query_async(&mut conn.clone())
        .await?;
    let committed = limits
        .committed_reservations(Duration::ZERO, 100_000)
        .await?
        .len();
    Ok((leases, pending, committed))
}

/// The limiter's config for the keys of `cfg` (only what reading the state needs: which keys
/// exist and their limits), the same mapping the pipeline applies.
fn limits_config(cfg: &motionq_config::Config) -> motionq_limits::LimitsConfig {
    let mut lc = motionq_limits::LimitsConfig::default();
    for (v, vc) in &cfg.vendors {
        for k in &vc.keys {
            let limits: motionq_limits::KeyLimits = serde_json::from_value(serde_json::json!({
                "create_rate_per_s": k.create_rate_per_s,
                "create_burst": k.create_burst.max(1),
                "create_max_per_s": k.create_max_per_s,
                "query_rate_per_s": k.query_rate_per_s,
                "query_burst": k.query_burst.max(1),
                "max_concurrent": k.max_concurrent,
                "lease_ttl_ms": k.lease_ttl_s.max(1) * 1000,
            }))
            .expect("KeyLimits from a complete JSON object");
            lc.keys.insert(format!("{v}/{}", k.alias), limits);
        }
    }
    lc
}
