//! Benchmark 3, `enqueue`: a large manifest through parse + validate + `Store::enqueue`, vs
//! `redis-benchmark -P 16 -t set` on the same private server; Redis memory per queued job.

use std::fmt;
use std::time::Instant;

use crate::env;
use crate::measure::{info_conn, Machine, RedisInfo};
use crate::BenchError;

/// Inputs of [`run`].
#[derive(Debug, Clone)]
pub struct EnqueueOptions {
    /// Jobs in the manifest (the figure is 100,000).
    pub jobs: usize,
    /// `-n` of redis-benchmark (the figure is 1,000,000).
    pub set_requests: usize,
}

/// Everything [`run`] measured.
#[derive(Debug, Clone)]
pub struct EnqueueReport {
    pub machine: Machine,
    pub jobs: usize,
    /// Manifest size in bytes.
    pub manifest_bytes: usize,
    /// Parse + validate, seconds.
    pub validate_s: f64,
    /// `Store::enqueue`, seconds.
    pub enqueue_s: f64,
    /// Redis commands `Store::enqueue` sent (`INFO` delta).
    pub commands: u64,
    /// `used_memory` growth per queued job, bytes.
    pub memory_per_job: f64,
    /// redis-benchmark's pipelined SET requests per second.
    pub redis_set_per_s: f64,
    /// The exact redis-benchmark command line (port included).
    pub redis_benchmark_cmd: String,
}

impl EnqueueReport {
    pub fn total_s(&self) -> f64 {
        self.validate_s + self.enqueue_s
    }
    pub fn jobs_per_s(&self) -> f64 {
        self.jobs as f64 / self.total_s().max(1e-9)
    }
    /// Redis commands per second while `Store::enqueue` ran.
    pub fn commands_per_s(&self) -> f64 {
        self.commands as f64 / self.enqueue_s.max(1e-9)
    }
}

/// Runs the benchmark on a private Redis.
pub async fn run(opts: &EnqueueOptions) -> Result<EnqueueReport, BenchError> {
    if opts.jobs == 0 || opts.set_requests == 0 {
        return Err(BenchError::Setup(
            "jobs and set requests must be > 0".into(),
        ));
    }
    let redis = env::redis().await?;
    let mut info = info_conn(&redis.url()).await?;
    let machine = Machine::read(&mut info).await;
    let dir = tempfile::tempdir()?;
    // Nothing is submitted: the vendor base URL is never called.
    let (_, cfg) = env::motionq_config(dir.path(), &redis.url(), "http://127.0.0.1:9/kkiai", 16)?;
    let store = env::store(&cfg).await?;
    let text = env::manifest("enqueue-bench", opts.jobs, "http://127.0.0.1:8089/media");

    let i0 = RedisInfo::read(&mut info).await?;
    let times = env::enqueue(&store, &cfg, &text).await?;
    let i1 = RedisInfo::read(&mut info).await?;
    let queued: i64 = env::count(
        &store
            .campaign("enqueue-bench")
            .await
            .map_err(|e| BenchError::Measure(e.to_string()))?
            .counts,
        "queued",
    );
    if queued != opts.jobs as i64 {
        return Err(BenchError::Measure(format!(
            "{queued} of {} jobs queued",
            opts.jobs
        )));
    }

    let port = redis.port().to_string();
    let n = opts.set_requests.to_string();
    let args = ["-p", &port, "-P", "16", "-t", "set", "-n", &n, "-q"];
    let redis_benchmark_cmd = format!("redis-benchmark {}", args.join(" "));
    let t = Instant::now();
    let out = tokio::process::Command::new("redis-benchmark")
        .args(args)
        .output()
        .await
        .map_err(|e| {
            BenchError::Setup(format!(
                "redis-benchmark: {e}; it ships with redis-server (`apt-get install -y redis-server`)"
            ))
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let redis_set_per_s = parse_redis_benchmark(&stdout).ok_or_else(|| {
        BenchError::Measure(format!(
            "redis-benchmark printed no SET figure after {:.1} s: {stdout}",
            t.elapsed().as_secs_f64()
        ))
    })?;
    Ok(EnqueueReport {
        machine,
        jobs: opts.jobs,
        manifest_bytes: text.len(),
        validate_s: times.validate.as_secs_f64(),
        enqueue_s: times.enqueue.as_secs_f64(),
        commands: i1.commands - i0.commands,
        memory_per_job: (i1.used_memory as f64 - i0.used_memory as f64) / opts.jobs as f64,
        redis_set_per_s,
        redis_benchmark_cmd,
    })
}

/// The requests per second of `redis-benchmark -q`'s SET line (the last one: `-q` rewrites a
/// progress line with carriage returns before the final figure).
pub fn parse_redis_benchmark(text: &str) -> Option<f64> {
    text.split(['\r', '\n'])
        .filter_map(|l| l.trim().strip_prefix("SET:"))
        .filter_map(|rest| {
            let (num, tail) = rest.trim().split_once(' ')?;
            tail.starts_with("requests per second")
                .then(|| num.parse::<f64>().ok())
                .flatten()
        })
        .next_back()
}

impl fmt::Display for EnqueueReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "enqueue: {}", self.machine)?;
        writeln!(
            f,
            "motionq: {} jobs ({:.1} MB manifest): parse+validate {:.2} s, Store::enqueue {:.2} s, total {:.2} s = {:.0} jobs/s",
            self.jobs,
            self.manifest_bytes as f64 / 1e6,
            self.validate_s,
            self.enqueue_s,
            self.total_s(),
            self.jobs_per_s()
        )?;
        writeln!(
            f,
            "motionq: {} Redis commands ({:.2} per job) = {:.0} commands/s during Store::enqueue; Redis memory {:.0} bytes per queued job",
            self.commands,
            self.commands as f64 / self.jobs.max(1) as f64,
            self.commands_per_s(),
            self.memory_per_job
        )?;
        writeln!(
            f,
            "{}: {:.0} SET/s",
            self.redis_benchmark_cmd, self.redis_set_per_s
        )?;
        writeln!(
            f,
            "ratio motionq commands/s / redis-benchmark SET/s: {:.3}",
            self.commands_per_s() / self.redis_set_per_s.max(1e-9)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quiet_output() {
        let text = "SET: rps=12345.0 (overall: 1.0) avg_msec=1\rSET: 254452.92 requests per second, p50=2.847 msec\n\n";
        assert_eq!(parse_redis_benchmark(text), Some(254452.92));
        assert_eq!(parse_redis_benchmark("GET: 1 requests per second"), None);
    }
}
