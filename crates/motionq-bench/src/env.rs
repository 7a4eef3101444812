//! The benchmarks' surroundings: a private Redis, the simulator, a motionq config pointed at
//! both, a worker child process, synthetic manifests, enqueue and wait helpers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use motionq_config::Config;
use motionq_core::ValidateOptions;
use motionq_sim::{KeyConfig, SimConfig, SimHandle, SimServer, Tiered, Vendor as SimVendor};
use motionq_store::{EnqueueMode, EnqueueRequest, RedisConn, Store};
use motionq_testkit::{RedisOptions, RedisServer};
use serde::{Deserialize, Serialize};

use crate::BenchError;

/// Every benchmark uses one KKIAI key (exact reconciliation, no per-key create lock, so the
/// vendor adds no serialisation of its own).
pub const KEY_ENV: &str = "MQBENCH_KKIAI_KEY";
const KEY_SECRET: &str = "mqbench-kkiai-key";
/// Key prefix of motionq's records in the private Redis.
pub const PREFIX: &str = "mqb";

/// A private `redis-server` with AOF `appendfsync everysec` (the production setting; the test
/// default `always` would make every side of every benchmark fsync-bound).
pub async fn redis() -> Result<RedisServer, BenchError> {
    RedisServer::start_with(RedisOptions {
        appendfsync: "everysec",
        ..Default::default()
    })
    .await
    .map_err(|e| BenchError::Setup(format!("{e:#}. {}", motionq_testkit::INSTALL_HINT)))
}

/// Simulator with one unlimited KKIAI key: tasks wait `queue_s` then generate for `gen_s`
/// (simulated seconds, scaled by `time_scale`).
pub fn sim_config(queue_s: f64, gen_s: f64, time_scale: f64) -> SimConfig {
    let mut c = SimConfig::empty();
    c.time_scale = time_scale;
    c.allow_private_callbacks = true;
    let v = c.vendor_mut(SimVendor::Kkiai);
    v.keys = vec![KeyConfig::new(KEY_SECRET).alias("bench")];
    v.queue_seconds = Some(queue_s);
    v.generation_seconds = Some(Tiered {
        std: gen_s,
        pro: gen_s,
    });
    c
}

/// Starts the simulator on a free loopback port.
pub async fn sim(cfg: SimConfig) -> Result<SimHandle, BenchError> {
    SimServer::start(cfg)
        .await
        .map_err(|e| BenchError::Setup(format!("simulator: {e}")))
}

/// Stage concurrencies and timing of the worker child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub config: PathBuf,
    /// Async runtime threads of the worker child (`motionq worker --threads`).
    #[serde(default = "one_thread")]
    pub threads: usize,
    pub submit: usize,
    pub poll: usize,
    pub collect: usize,
    pub first_poll_ms: u64,
    pub poll_min_ms: u64,
    pub poll_max_ms: u64,
    pub feeder_interval_ms: u64,
    pub feeder_floor: u32,
    pub feeder_batch: usize,
}

fn one_thread() -> usize {
    1
}

impl WorkerSpec {
    /// Tuned for throughput against a simulator that answers at once: enough concurrency to
    /// hide each stage's round trips, polls as soon as the task exists, admission in big
    /// batches.
    pub fn throughput(config: PathBuf) -> WorkerSpec {
        WorkerSpec {
            config,
            threads: 1,
            submit: 64,
            poll: 64,
            collect: 32,
            first_poll_ms: 0,
            poll_min_ms: 50,
            poll_max_ms: 1000,
            feeder_interval_ms: 50,
            feeder_floor: 2,
            feeder_batch: 2000,
        }
    }

    /// The shipped poll timing (2 s → 30 s with age), for the scale benchmark.
    pub fn production_polling(config: PathBuf) -> WorkerSpec {
        let d = motionq_pipeline::PipelineOptions::default();
        WorkerSpec {
            first_poll_ms: d.first_poll_delay.as_millis() as u64,
            poll_min_ms: d.poll_min.as_millis() as u64,
            poll_max_ms: d.poll_max.as_millis() as u64,
            ..WorkerSpec::throughput(config)
        }
    }

    /// The options `run_worker` gets in the child.
    pub fn options(&self) -> motionq_pipeline::WorkerOptions {
        motionq_pipeline::WorkerOptions {
            submit_concurrency: Some(self.submit),
            poll_concurrency: Some(self.poll),
            collect_concurrency: Some(self.collect),
            pipeline: motionq_pipeline::PipelineOptions {
                first_poll_delay: Duration::from_millis(self.first_poll_ms),
                poll_min: Duration::from_millis(self.poll_min_ms),
                poll_max: Duration::from_millis(self.poll_max_ms),
                feeder_interval: Duration::from_millis(self.feeder_interval_ms),
                feeder_floor: self.feeder_floor,
                feeder_batch: self.feeder_batch,
                ..Default::default()
            },
            shutdown_timeout: Duration::from_secs(10),
            ..Default::default()
        }
    }
}

/// Writes a motionq config (TOML) into `dir` and loads it: Redis, a local-dir store under
/// `dir/out`, one KKIAI key with limits far above anything the benchmark can reach, and queue
/// timing suited to a busy worker (`prefetch` ≥ the stage concurrency, fast promotion of
/// delayed poll messages).
pub fn motionq_config(
    dir: &Path,
    redis_url: &str,
    kkiai_base_url: &str,
    prefetch: usize,
) -> Result<(PathBuf, Config), BenchError> {
    let out = dir.join("out");
    std::fs::create_dir_all(&out)?;
    let text = format!(
        r#"[redis]
url = "{redis_url}"
key_prefix = "{PREFIX}"

[validation]
allow_private_callbacks = true
allow_private_media = true

[storage]
url = "{out}"

[vendors.kkiai]
base_url = "{kkiai_base_url}"
[vendors.kkiai.price]
unit = "unit"
usd_per_unit = 0.14
std_per_second = 0.9
pro_per_second = 1.2
[[vendors.kkiai.keys]]
alias = "bench"
api_key_env = "{KEY_ENV}"
create_rate_per_s = 1000000
create_burst = 100000
query_rate_per_s = 1000000
query_burst = 100000
max_concurrent = 1000000

[queue]
prefetch = {prefetch}
promote_interval_ms = 20
defer_delay_ms = 200
"#,
        out = out.display()
    );
    let path = dir.join("motionq.toml");
    std::fs::write(&path, text)?;
    let cfg = Config::load(std::slice::from_ref(&path))
        .map_err(|e| BenchError::Setup(format!("bench config: {e}")))?;
    Ok((path, cfg))
}

/// A worker child process (`motionq-bench worker <spec>`). Dropping it stops the child: its
/// stdin closes, which is its shutdown signal; a child that does not stop is killed.
pub struct WorkerChild {
    child: Option<tokio::process::Child>,
    pid: u32,
}

impl WorkerChild {
    /// Starts `exe worker <spec as JSON>` with the API key in its environment.
    pub fn spawn(exe: &Path, spec: &WorkerSpec) -> Result<WorkerChild, BenchError> {
        let child = tokio::process::Command::new(exe)
            .arg("worker")
            .arg(serde_json::to_string(spec).map_err(|e| BenchError::Setup(e.to_string()))?)
            .env(KEY_ENV, KEY_SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::Setup(format!("cannot start {}: {e}", exe.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Setup("worker exited at once".into()))?;
        Ok(WorkerChild {
            child: Some(child),
            pid,
        })
    }

    /// The child's process id (for `/proc` samples).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the child gracefully (closes stdin), killing it after 15 s.
    pub async fn stop(mut self) -> Result<(), BenchError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        drop(child.stdin.take());
        match tokio::time::timeout(Duration::from_secs(15), child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    return Err(BenchError::Measure(format!("worker exited with {status}")));
                }
            }
            Err(_) => {
                let _ = child.kill().await;
            }
        }
        Ok(())
    }
}

/// A synthetic manifest of `n` KKIAI jobs shaped like `motionq example-manifest`'s (three
/// images × three reference videos from the simulator's media, a label per job).
pub fn manifest(campaign: &str, n: usize, media_base: &str) -> String {
    const IMAGES: [&str; 3] = [
        "portrait-720x1280.png",
        "square-1024x1024.jpg",
        "landscape-1280x720.png",
    ];
    const VIDEOS: [(&str, u32); 3] = [
        ("dance-3s.mp4", 3),
        ("dance-8s.mp4", 8),
        ("dance-10s.mp4", 10),
    ];
    let mut s = String::with_capacity(200 + n * 220);
    s.push_str(&format!(
        "{{\"campaign\":\"{campaign}\",\"vendor\":\"kkiai\",\"defaults\":{{\"prompt\":\"The character follows the reference motion.\",\"orientation\":\"video\",\"tier\":\"std\"}},\"jobs\":[\n"
    ));
    for i in 0..n {
        let img = IMAGES[i % IMAGES.len()];
        let (vid, secs) = VIDEOS[(i / IMAGES.len()) % VIDEOS.len()];
        let sep = if i + 1 == n { "" } else { "," };
        s.push_str(&format!(
            "{{\"id\":\"sku-{i:06}\",\"image\":\"{media_base}/{img}\",\"video\":\"{media_base}/{vid}\",\"video_duration_s\":{secs},\"labels\":{{\"sku\":\"{i:06}\"}}}}{sep}\n"
        ));
    }
    s.push_str("]}\n");
    s
}

/// Times of one parse + validate + enqueue.
#[derive(Debug, Clone, Copy)]
pub struct EnqueueTimes {
    pub validate: Duration,
    pub enqueue: Duration,
    pub jobs: usize,
}

/// Parses and validates `text` (as `motionq enqueue` does, without media probes) and enqueues
/// it with `Store::enqueue` in the config's chunk size.
pub async fn enqueue(store: &Store, cfg: &Config, text: &str) -> Result<EnqueueTimes, BenchError> {
    let t0 = Instant::now();
    let v = motionq_core::validate::validate_bytes(
        text.as_bytes(),
        &ValidateOptions {
            allow_private_callbacks: cfg.validation.allow_private_callbacks,
            allow_private_media: cfg.validation.allow_private_media,
        },
    );
    let errors: Vec<String> = v.errors().map(|p| format!("{p:?}")).collect();
    if !errors.is_empty() {
        return Err(BenchError::Setup(format!(
            "generated manifest invalid: {}",
            errors.join("; ")
        )));
    }
    let Some((spec, jobs)) = v.campaign else {
        return Err(BenchError::Setup(
            "generated manifest has no campaign".into(),
        ));
    };
    let validate = t0.elapsed();
    let t1 = Instant::now();
    let costs = vec![None; jobs.len()];
    store
        .enqueue(EnqueueRequest {
            campaign: &spec,
            jobs: &jobs,
            job_costs: &costs,
            manifest_sha256: "bench",
            expected_usd: None,
            worst_case_usd: None,
            mode: EnqueueMode::Strict,
            chunk: cfg.validation.enqueue_chunk,
        })
        .await
        .map_err(|e| BenchError::Measure(format!("enqueue: {e}")))?;
    Ok(EnqueueTimes {
        validate,
        enqueue: t1.elapsed(),
        jobs: jobs.len(),
    })
}

/// A store on the config's Redis.
pub async fn store(cfg: &Config) -> Result<Store, BenchError> {
    let conn = RedisConn::connect(&cfg.redis)
        .await
        .map_err(|e| BenchError::Setup(format!("redis: {e}")))?;
    Ok(Store::new(conn, &cfg.redis.key_prefix))
}

/// Polls the campaign's counts every `every` until `done(counts)` holds; fails after
/// `timeout` with the last counts, or when the worker child has exited.
pub async fn wait_counts(
    store: &Store,
    campaign: &str,
    every: Duration,
    timeout: Duration,
    worker_pid: Option<u32>,
    done: impl Fn(&BTreeMap<String, i64>) -> bool,
) -> Result<BTreeMap<String, i64>, BenchError> {
    let start = Instant::now();
    loop {
        let c = store
            .campaign(campaign)
            .await
            .map_err(|e| BenchError::Measure(format!("campaign counts: {e}")))?
            .counts;
        if done(&c) {
            return Ok(c);
        }
        let dead = worker_pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists());
        if dead || start.elapsed() > timeout {
            return Err(BenchError::Measure(format!(
                "campaign `{campaign}` {} after {:.0} s: {c:?}",
                if dead {
                    "stalled (worker exited)"
                } else {
                    "not done"
                },
                start.elapsed().as_secs_f64()
            )));
        }
        tokio::time::sleep(every).await;
    }
}

/// `counts[state]`, 0 when absent.
pub fn count(c: &BTreeMap<String, i64>, state: &str) -> i64 {
    c.get(state).copied().unwrap_or(0)
}

/// Jobs in a terminal state.
pub fn terminal(c: &BTreeMap<String, i64>) -> i64 {
    ["stored", "failed", "cancelled", "expired"]
        .iter()
        .map(|s| count(c, s))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_validates() {
        let text = manifest("m", 10, "http://127.0.0.1:9/media");
        let v = motionq_core::validate::validate_bytes(
            text.as_bytes(),
            &ValidateOptions {
                allow_private_callbacks: true,
                allow_private_media: true,
            },
        );
        assert_eq!(v.errors().count(), 0);
        assert_eq!(v.campaign.unwrap().1.len(), 10);
    }
}
