//! Benchmark 5, `scale`: a worker holding many in-flight tasks that are being polled (the
//! simulator generates for hours), its RSS and CPU; Redis memory per queued and per in-flight
//! job.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use motionq_sim::Vendor as SimVendor;

use crate::env::{self, WorkerChild, WorkerSpec};
use crate::measure::{info_conn, Machine, ProcSample, RedisInfo};
use crate::BenchError;

/// Inputs of [`run`].
#[derive(Debug, Clone)]
pub struct ScaleOptions {
    /// Tasks in flight (the figure is 10,000).
    pub jobs: usize,
    /// Length of the steady-state window measured once every task is in flight.
    pub window: Duration,
    /// The `motionq-bench` binary, started as the worker process.
    pub worker_exe: PathBuf,
}

/// Everything [`run`] measured.
#[derive(Debug, Clone)]
pub struct ScaleReport {
    pub machine: Machine,
    pub jobs: usize,
    /// `used_memory` growth per queued job (after enqueue, before any worker), bytes.
    pub memory_per_queued: f64,
    /// `used_memory` growth per in-flight job (every job submitted, polls running), bytes.
    pub memory_per_inflight: f64,
    /// Seconds from worker start until every job was in flight.
    pub ramp_s: f64,
    /// The steady window, seconds.
    pub window_s: f64,
    /// Worker CPU in the window, as a share of one core.
    pub worker_cpu_share: f64,
    /// Worker RSS at the end of the window and its peak, KiB.
    pub worker_rss_kib: u64,
    pub worker_peak_rss_kib: u64,
    /// Redis commands per second in the window, and Redis's own CPU share.
    pub redis_commands_per_s: f64,
    pub redis_cpu_share: f64,
    /// Jobs still `submitted` at the end (must equal `jobs`: nothing finished or failed).
    pub inflight_at_end: i64,
}

/// Runs the benchmark on a private Redis.
pub async fn run(opts: &ScaleOptions) -> Result<ScaleReport, BenchError> {
    if opts.jobs == 0 {
        return Err(BenchError::Setup("jobs must be > 0".into()));
    }
    let redis = env::redis().await?;
    let mut info = info_conn(&redis.url()).await?;
    let machine = Machine::read(&mut info).await;
    // Ten simulated hours of generation at real time: nothing finishes during the run.
    let sim = env::sim(env::sim_config(0.0, 36_000.0, 1.0)).await?;
    let dir = tempfile::tempdir()?;
    let (path, cfg) = env::motionq_config(
        dir.path(),
        &redis.url(),
        &sim.vendor_base_url(SimVendor::Kkiai),
        64,
    )?;
    let store = env::store(&cfg).await?;
    let media = format!("{}/media", sim.base_url());

    let i0 = RedisInfo::read(&mut info).await?;
    env::enqueue(&store, &cfg, &env::manifest("scale", opts.jobs, &media)).await?;
    let i1 = RedisInfo::read(&mut info).await?;
    let memory_per_queued = (i1.used_memory as f64 - i0.used_memory as f64) / opts.jobs as f64;

    let t0 = Instant::now();
    let worker = WorkerChild::spawn(&opts.worker_exe, &WorkerSpec::production_polling(path))?;
    let n = opts.jobs as i64;
    env::wait_counts(
        &store,
        "scale",
        Duration::from_millis(500),
        Duration::from_secs(300 + opts.jobs as u64 / 10),
        Some(worker.pid()),
        |c| env::count(c, "submitted") >= n,
    )
    .await?;
    let ramp_s = t0.elapsed().as_secs_f64();

    let p0 = ProcSample::read(worker.pid())?;
    let r0 = RedisInfo::read(&mut info).await?;
    let w0 = Instant::now();
    tokio::time::sleep(opts.window).await;
    let p1 = ProcSample::read(worker.pid())?;
    let r1 = RedisInfo::read(&mut info).await?;
    let window_s = w0.elapsed().as_secs_f64();
    let counts = store
        .campaign("scale")
        .await
        .map_err(|e| BenchError::Measure(e.to_string()))?
        .counts;
    worker.stop().await?;
    sim.shutdown().await;
    Ok(ScaleReport {
        machine,
        jobs: opts.jobs,
        memory_per_queued,
        memory_per_inflight: (r1.used_memory as f64 - i0.used_memory as f64) / opts.jobs as f64,
        ramp_s,
        window_s,
        worker_cpu_share: (p1.cpu_ms - p0.cpu_ms) / 1000.0 / window_s,
        worker_rss_kib: p1.rss_kib,
        worker_peak_rss_kib: p1.hwm_kib,
        redis_commands_per_s: (r1.commands - r0.commands) as f64 / window_s,
        redis_cpu_share: (r1.cpu_s - r0.cpu_s) / window_s,
        inflight_at_end: env::count(&counts, "submitted"),
    })
}

impl fmt::Display for ScaleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scale: {}", self.machine)?;
        writeln!(
            f,
            "{} jobs in flight after {:.1} s (default poll timing: first poll 2 s, interval 2 s -> 30 s with age)",
            self.jobs, self.ramp_s
        )?;
        writeln!(
            f,
            "steady window {:.1} s: worker CPU {:.1}% of one core, RSS {:.1} MiB (peak {:.1} MiB); Redis {:.0} commands/s, {:.1}% of one core",
            self.window_s,
            self.worker_cpu_share * 100.0,
            self.worker_rss_kib as f64 / 1024.0,
            self.worker_peak_rss_kib as f64 / 1024.0,
            self.redis_commands_per_s,
            self.redis_cpu_share * 100.0
        )?;
        writeln!(
            f,
            "Redis memory: {:.0} bytes per queued job, {:.0} bytes per in-flight job; {} still in flight at the end",
            self.memory_per_queued, self.memory_per_inflight, self.inflight_at_end
        )
    }
}
