//! Benchmark 1, `queue`: full motionq job lifecycles per second vs a bare apalis-redis 1.0.0
//! no-op worker vs a BullMQ no-op worker, all on one private Redis in one run.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::*;
use motionq_sim::Vendor as SimVendor;

use crate::env::{self, WorkerChild, WorkerSpec};
use crate::measure::{info_conn, own_cpu, Machine, ProcSample, RedisInfo};
use crate::profile::{CommandStats, MonitorCapture, RoundTrips};
use crate::BenchError;

/// Default stage concurrency of every side: enough in-flight jobs per motionq stage to hide
/// the round trips of each job's steps on one worker thread (64 left the machine partly idle).
pub const DEFAULT_CONCURRENCY: usize = 256;

/// Inputs of [`run`].
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// Jobs per side (apalis-redis 1.0.0 breaks above ~8,000 due jobs: APALIS.md R1).
    pub jobs: usize,
    /// Concurrency of every side (motionq's submit and poll stages; collect gets half).
    pub concurrency: usize,
    /// Async runtime threads of the motionq worker process (`motionq worker --threads`).
    pub worker_threads: usize,
    /// Where the motionq side's local object store writes (`None`: a temporary directory).
    pub store_dir: Option<PathBuf>,
    /// The `motionq-bench` binary, started as the motionq worker process.
    pub worker_exe: PathBuf,
    /// Directory of `bullmq-noop.mjs` and its `package.json`.
    pub node_dir: PathBuf,
    /// Jobs of the extra motionq campaign run under `MONITOR` after the measured one (the
    /// round-trip profile; `MONITOR` slows Redis, so it is never part of the timed run).
    pub profile_jobs: usize,
}

/// One side's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub name: &'static str,
    /// Jobs finished (must equal the jobs pushed).
    pub jobs: usize,
    /// Wall time from the first push/enqueue to the last job finished.
    pub seconds: f64,
    /// Redis commands processed meanwhile (`INFO stats` delta).
    pub commands: u64,
    /// CPU time of the worker process meanwhile (motionq: the worker child; apalis: this
    /// process; BullMQ: the Node process's own `cpuUsage`).
    pub cpu_ms: f64,
    /// CPU time of `redis-server` meanwhile.
    pub redis_cpu_ms: f64,
}

impl Side {
    pub fn jobs_per_s(&self) -> f64 {
        self.jobs as f64 / self.seconds.max(1e-9)
    }
    pub fn commands_per_job(&self) -> f64 {
        self.commands as f64 / self.jobs.max(1) as f64
    }
    pub fn cpu_ms_per_job(&self) -> f64 {
        self.cpu_ms / self.jobs.max(1) as f64
    }
    pub fn redis_cpu_ms_per_job(&self) -> f64 {
        self.redis_cpu_ms / self.jobs.max(1) as f64
    }
}

/// Everything [`run`] measured.
#[derive(Debug, Clone)]
pub struct QueueReport {
    pub machine: Machine,
    pub motionq: Side,
    /// Of the motionq wall time: parse + validate, and `Store::enqueue`.
    pub motionq_validate_s: f64,
    pub motionq_enqueue_s: f64,
    /// Peak RSS of the motionq worker process, KiB.
    pub motionq_peak_rss_kib: u64,
    /// The motionq worker's runtime threads and stage concurrency.
    pub motionq_threads: usize,
    pub concurrency: usize,
    /// The filesystem the motionq side stored its outputs on (`/proc/mounts` type).
    pub store_fs: String,
    /// Redis server time by command during the measured motionq run: (command, calls per
    /// job, µs per job), most expensive first; script-internal commands included.
    pub motionq_commandstats: Vec<(String, f64, f64)>,
    /// The `MONITOR` profile of the extra campaign.
    pub motionq_round_trips: RoundTrips,
    pub apalis: Side,
    /// `Err(notice)` when the BullMQ side was skipped (npm missing).
    pub bullmq: Result<Side, String>,
}

/// Runs the three sides, one after the other, on one private Redis.
pub async fn run(opts: &QueueOptions) -> Result<QueueReport, BenchError> {
    if opts.jobs == 0 || opts.concurrency == 0 {
        return Err(BenchError::Setup("jobs and concurrency must be > 0".into()));
    }
    let redis = env::redis().await?;
    let mut info = info_conn(&redis.url()).await?;
    let machine = Machine::read(&mut info).await;

    let m = motionq_side(opts, &redis.url(), redis.port()).await?;
    let store_fs = m.store_fs.clone();
    let apalis = apalis_side(opts, &redis.url()).await?;
    let bullmq = match bullmq_side(opts, redis.port(), &mut info).await {
        Ok(s) => Ok(s),
        Err(BenchError::Skipped(why)) => Err(why),
        Err(e) => return Err(e),
    };
    Ok(QueueReport {
        machine,
        motionq: m.side,
        motionq_validate_s: m.validate_s,
        motionq_enqueue_s: m.enqueue_s,
        motionq_peak_rss_kib: m.peak_rss_kib,
        motionq_threads: opts.worker_threads,
        concurrency: opts.concurrency,
        store_fs,
        motionq_commandstats: m.commandstats,
        motionq_round_trips: m.round_trips,
        apalis,
        bullmq,
    })
}

struct MotionqSide {
    side: Side,
    store_fs: String,
    validate_s: f64,
    enqueue_s: f64,
    peak_rss_kib: u64,
    commandstats: Vec<(String, f64, f64)>,
    round_trips: RoundTrips,
}

async fn motionq_side(
    opts: &QueueOptions,
    redis_url: &str,
    redis_port: u16,
) -> Result<MotionqSide, BenchError> {
    // Zero queue and generation time: a task is done when created, so the lifecycle is
    // motionq's own work plus the simulator's HTTP answers.
    let sim = env::sim(env::sim_config(0.0, 0.0, 0.001)).await?;
    let dir = match &opts.store_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    };
    let store_fs = crate::measure::filesystem_of(dir.path());
    let (path, cfg) = env::motionq_config(
        dir.path(),
        redis_url,
        &sim.vendor_base_url(SimVendor::Kkiai),
        opts.concurrency,
    )?;
    let spec = WorkerSpec {
        threads: opts.worker_threads.max(1),
        submit: opts.concurrency,
        poll: opts.concurrency,
        collect: (opts.concurrency / 2).max(1),
        ..WorkerSpec::throughput(path)
    };
    let worker = WorkerChild::spawn(&opts.worker_exe, &spec)?;
    let store = env::store(&cfg).await?;
    let media = format!("{}/media", sim.base_url());
    let every = Duration::from_millis(100);

    // Warm-up campaign: the worker has started, connected and opened its HTTP connections
    // before the clock starts.
    env::enqueue(&store, &cfg, &env::manifest("warmup", 20, &media)).await?;
    env::wait_counts(
        &store,
        "warmup",
        every,
        Duration::from_secs(180),
        Some(worker.pid()),
        |c| env::terminal(c) >= 20,
    )
    .await?;

    let text = env::manifest("bench", opts.jobs, &media);
    let mut info = info_conn(redis_url).await?;
    let cs0 = CommandStats::read(&mut info).await?;
    let i0 = RedisInfo::read(&mut info).await?;
    let p0 = ProcSample::read(worker.pid())?;
    let t0 = Instant::now();
    let times = env::enqueue(&store, &cfg, &text).await?;
    let n = opts.jobs as i64;
    let counts = env::wait_counts(
        &store,
        "bench",
        every,
        Duration::from_secs(120 + opts.jobs as u64 / 10),
        Some(worker.pid()),
        |c| env::terminal(c) >= n,
    )
    .await?;
    let seconds = t0.elapsed().as_secs_f64();
    let p1 = ProcSample::read(worker.pid())?;
    let i1 = RedisInfo::read(&mut info).await?;
    let cs1 = CommandStats::read(&mut info).await?;
    let stored = env::count(&counts, "stored");
    if stored != n {
        return Err(BenchError::Measure(format!(
            "motionq: {stored} of {n} jobs stored: {counts:?}"
        )));
    }

    // Round-trip profile: the same lifecycle for a few more jobs under MONITOR.
    let capture = MonitorCapture::start(redis_port, &dir.path().join("monitor.txt"))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pj = opts.profile_jobs.max(1);
    env::enqueue(&store, &cfg, &env::manifest("profile", pj, &media)).await?;
    env::wait_counts(
        &store,
        "profile",
        Duration::from_millis(250),
        Duration::from_secs(180 + pj as u64 / 10),
        Some(worker.pid()),
        |c| env::terminal(c) >= pj as i64,
    )
    .await?;
    let monitor = capture.stop().await?;
    worker.stop().await?;
    sim.shutdown().await;
    let side = Side {
        name: "motionq (full lifecycle)",
        jobs: opts.jobs,
        seconds,
        commands: i1.commands - i0.commands,
        cpu_ms: p1.cpu_ms - p0.cpu_ms,
        redis_cpu_ms: (i1.cpu_s - i0.cpu_s) * 1000.0,
    };
    Ok(MotionqSide {
        side,
        store_fs,
        validate_s: times.validate.as_secs_f64(),
        enqueue_s: times.enqueue.as_secs_f64(),
        peak_rss_kib: p1.hwm_kib,
        commandstats: cs1.since(&cs0).top_per_job(opts.jobs, 8),
        round_trips: RoundTrips::parse(&monitor, pj, &["INFO", "MONITOR"]),
    })
}

/// Shared by the no-op handler: it stops the worker after the last job.
struct Countdown {
    done: AtomicUsize,
    total: usize,
}

async fn noop(_job: u64, c: Data<Arc<Countdown>>, w: WorkerContext) -> Result<(), BoxDynError> {
    if c.done.fetch_add(1, Ordering::SeqCst) + 1 == c.total {
        w.stop()?;
    }
    Ok(())
}

async fn apalis_side(opts: &QueueOptions, redis_url: &str) -> Result<Side, BenchError> {
    if opts.jobs > 7_000 {
        return Err(BenchError::Setup(
            "apalis-redis 1.0.0 fails to fetch above ~8,000 due jobs (APALIS.md R1): use --jobs <= 7000"
                .into(),
        ));
    }
    let mut info = info_conn(redis_url).await?;
    let conn = apalis_redis::connect(redis_url.to_string()).await?;
    let stamp = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    // APALIS.md's rules: no O(backlog) LREM lock per task, an interval poll so idle pickup
    // does not wait for the heartbeat, a worker name used once.
    let config = apalis_redis::Config::default()
        .queue(format!("mqbench-apalis-{stamp}"))
        .lock_tasks(false)
        .batch_size(opts.concurrency.max(10));
    let storage = apalis_redis::RedisStorage::<u64>::new(conn).with_config(config);
    let countdown = Arc::new(Countdown {
        done: AtomicUsize::new(0),
        total: opts.jobs,
    });
    let i0 = RedisInfo::read(&mut info).await?;
    let c0 = own_cpu();
    let t0 = Instant::now();
    let worker = WorkerBuilder::new(format!("mqbench-apalis-{stamp}"))
        .backend(
            storage
                .clone()
                .poll_with_interval(Duration::from_millis(50)),
        )
        .data(countdown.clone())
        .concurrency(opts.concurrency)
        .build(noop);
    let running = tokio::spawn(async move { worker.run().await });
    let mut pusher = storage;
    for chunk in (0..opts.jobs as u64).collect::<Vec<_>>().chunks(1000) {
        pusher
            .push_bulk(chunk.to_vec())
            .await
            .map_err(|e| BenchError::Measure(format!("apalis push_bulk: {e}")))?;
    }
    let limit = Duration::from_secs(120 + opts.jobs as u64 / 100);
    match tokio::time::timeout(limit, running).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => return Err(BenchError::Measure(format!("apalis worker: {e}"))),
        Ok(Err(e)) => return Err(BenchError::Measure(format!("apalis worker task: {e}"))),
        Err(_) => {
            return Err(BenchError::Measure(format!(
                "apalis: {} of {} jobs after {limit:?}",
                countdown.done.load(Ordering::SeqCst),
                opts.jobs
            )))
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = own_cpu() - c0;
    let i1 = RedisInfo::read(&mut info).await?;
    Ok(Side {
        name: "apalis-redis 1.0.0 (no-op)",
        jobs: countdown.done.load(Ordering::SeqCst),
        seconds,
        commands: i1.commands - i0.commands,
        cpu_ms: cpu.as_secs_f64() * 1000.0,
        redis_cpu_ms: (i1.cpu_s - i0.cpu_s) * 1000.0,
    })
}

#[derive(serde::Deserialize)]
struct NodeResult {
    jobs: usize,
    elapsed_ms: f64,
    cpu_ms: f64,
}

/// Installs the Node package (once; into `node_modules`, which git ignores) and runs the
/// BullMQ no-op peer. `Skipped` only when npm/node is not installed.
async fn bullmq_side(
    opts: &QueueOptions,
    redis_port: u16,
    info: &mut redis::aio::MultiplexedConnection,
) -> Result<Side, BenchError> {
    let has = |bin: &str| {
        std::process::Command::new(bin)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has("npm") || !has("node") {
        return Err(BenchError::Skipped(
            "BullMQ side skipped: npm/node not found (install Node 20 with npm to run it)".into(),
        ));
    }
    if !opts.node_dir.join("node_modules/bullmq").is_dir() {
        let st = tokio::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&opts.node_dir)
            .status()
            .await?;
        if !st.success() {
            return Err(BenchError::Setup(format!(
                "npm install in {} failed ({st})",
                opts.node_dir.display()
            )));
        }
    }
    let i0 = RedisInfo::read(info).await?;
    let out = tokio::process::Command::new("node")
        .arg("bullmq-noop.mjs")
        .arg(redis_port.to_string())
        .arg(opts.jobs.to_string())
        .arg(opts.concurrency.to_string())
        .current_dir(&opts.node_dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await?;
    let i1 = RedisInfo::read(info).await?;
    if !out.status.success() {
        return Err(BenchError::Measure(format!(
            "bullmq-noop.mjs exited with {}",
            out.status
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let r: NodeResult = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| BenchError::Measure(format!("bullmq-noop.mjs printed no result: {text}")))?;
    Ok(Side {
        name: "BullMQ (no-op, Node)",
        jobs: r.jobs,
        seconds: r.elapsed_ms / 1000.0,
        commands: i1.commands - i0.commands,
        cpu_ms: r.cpu_ms,
        redis_cpu_ms: (i1.cpu_s - i0.cpu_s) * 1000.0,
    })
}

impl fmt::Display for QueueReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "queue: {}", self.machine)?;
        writeln!(
            f,
            "concurrency {} per side; motionq worker: {} runtime thread(s), outputs stored on {}",
            self.concurrency, self.motionq_threads, self.store_fs
        )?;
        writeln!(
            f,
            "{:<28} {:>6} {:>8} {:>10} {:>10} {:>12} {:>14}",
            "side", "jobs", "seconds", "jobs/s", "cmds/job", "cpu ms/job", "redis ms/job"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, s: &Side| {
            writeln!(
                f,
                "{:<28} {:>6} {:>8.2} {:>10.0} {:>10.1} {:>12.3} {:>14.3}",
                s.name,
                s.jobs,
                s.seconds,
                s.jobs_per_s(),
                s.commands_per_job(),
                s.cpu_ms_per_job(),
                s.redis_cpu_ms_per_job()
            )
        };
        row(f, &self.motionq)?;
        row(f, &self.apalis)?;
        match &self.bullmq {
            Ok(b) => row(f, b)?,
            Err(why) => writeln!(f, "{why}")?,
        }
        writeln!(
            f,
            "motionq: parse+validate {:.3} s, Store::enqueue {:.3} s of its {:.2} s; worker peak RSS {} MiB",
            self.motionq_validate_s,
            self.motionq_enqueue_s,
            self.motionq.seconds,
            self.motionq_peak_rss_kib / 1024
        )?;
        let ratios = |f: &mut fmt::Formatter<'_>, peer: &Side| {
            writeln!(
                f,
                "ratio motionq / {}: jobs/s {:.3}, cmds/job {:.1}x, cpu/job {:.1}x",
                peer.name,
                self.motionq.jobs_per_s() / peer.jobs_per_s().max(1e-9),
                self.motionq.commands_per_job() / peer.commands_per_job().max(1e-9),
                self.motionq.cpu_ms_per_job() / peer.cpu_ms_per_job().max(1e-9)
            )
        };
        ratios(f, &self.apalis)?;
        if let Ok(b) = &self.bullmq {
            ratios(f, b)?;
        }
        writeln!(
            f,
            "motionq Redis server time by command (INFO commandstats, script-internal included):"
        )?;
        for (cmd, calls, usec) in &self.motionq_commandstats {
            writeln!(f, "  {cmd:<16} {calls:>7.2} calls/job {usec:>8.1} us/job")?;
        }
        write!(f, "{}", self.motionq_round_trips)
    }
}
