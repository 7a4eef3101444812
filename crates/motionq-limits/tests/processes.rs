//! 8 worker *processes* hammer one key whose vendor allows R creates per second, configured two
//! ways: GCRA with burst 1 (`freepik/strict`), and GCRA with burst 4 plus a hard cap of R in any
//! sliding second (`freepik/capped`). In both, no 1 s window of admitted calls, by Redis server
//! time, holds more than R; the achieved rate is printed as a fraction of R (burst 1 loses
//! every late wake-up, the cap does not).
//!
//! The test binary is its own worker: started with `MOTIONQ_LIMITS_HAMMER_REDIS=<url>` and
//! `MOTIONQ_LIMITS_HAMMER_KEY=<key>` it hammers for `RUN_S` seconds and prints the server time
//! (µs) of every admitted call, one per line; otherwise it starts Redis, spawns 8 such workers
//! per configuration and judges their output.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use motionq_config::RedisConfig;
use motionq_limits::*;

const CHILD_ENV: &str = "MOTIONQ_LIMITS_HAMMER_REDIS";
const KEY_ENV: &str = "MOTIONQ_LIMITS_HAMMER_KEY";
const R: u32 = 20;
const WORKERS: usize = 8;
const RUN_S: u64 = 4;

fn config() -> LimitsConfig {
    let mut cfg = LimitsConfig::default();
    for (name, burst, cap) in [("freepik/strict", 1, None), ("freepik/capped", 4, Some(R))] {
        cfg.keys.insert(
            name.into(),
            KeyLimits {
                create_rate_per_s: f64::from(R),
                create_burst: burst,
                create_max_per_s: cap,
                query_rate_per_s: 1.0,
                query_burst: 1,
                query_max_per_s: None,
                max_concurrent: 1,
                lease_ttl_ms: 60_000,
                spend: SpendLimits::default(),
            },
        );
    }
    cfg
}

async fn worker(url: &str, key: &str) -> Result<()> {
    let redis = RedisConfig {
        url: url.to_string(),
        ..Default::default()
    };
    let limits = Limits::connect(&redis, config()).await?;
    let k: KeyId = key.parse()?;
    let start = Instant::now();
    let mut out = String::new();
    while start.elapsed() < Duration::from_secs(RUN_S) {
        let a = limits.acquire_timed(&k, Op::Create, 1).await?;
        match a.decision {
            Decision::Allowed => {
                let us = a
                    .server_time
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_micros();
                out.push_str(&format!("{us}\n"));
            }
            Decision::Wait(d) => tokio::time::sleep(d).await,
            Decision::Parked(p) => bail!("unexpected park {p:?}"),
        }
    }
    print!("{out}");
    Ok(())
}

async fn parent(key: &str) -> Result<()> {
    let server = motionq_testkit::RedisServer::start().await?;
    let exe = std::env::current_exe()?;
    let children = (0..WORKERS)
        .map(|_| {
            Command::new(&exe)
                .env(CHILD_ENV, server.url())
                .env(KEY_ENV, key)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("spawn a worker process")
        })
        .collect::<Result<Vec<_>>>()?;
    let mut all: Vec<i64> = Vec::new();
    let mut per_worker = Vec::new();
    for c in children {
        let out = tokio::task::spawn_blocking(move || c.wait_with_output()).await??;
        ensure!(out.status.success(), "a worker failed: {}", out.status);
        let text = String::from_utf8(out.stdout)?;
        let mut n = 0;
        for line in text.lines() {
            all.push(line.trim().parse().context("worker output")?);
            n += 1;
        }
        per_worker.push(n);
    }
    all.sort_unstable();
    ensure!(all.len() > R as usize, "only {} admitted", all.len());
    let (mut worst, mut j) = (0usize, 0usize);
    for i in 0..all.len() {
        while all[j] <= all[i] - 1_000_000 {
            j += 1;
        }
        worst = worst.max(i - j + 1);
    }
    // Long-run rate: the initial burst is free, the rest is paced.
    let burst = config().keys[key].create_burst as usize;
    let span_s = (all[all.len() - 1] - all[0]) as f64 / 1e6;
    let achieved = (all.len() - burst) as f64 / span_s;
    println!(
        "processes[{key}]: {WORKERS} worker processes, R = {R}/s: {} admitted \
         {per_worker:?}, busiest 1 s window {worst}, achieved {achieved:.2}/s = {:.3} of R",
        all.len(),
        achieved / f64::from(R)
    );
    ensure!(
        worst <= R as usize,
        "a 1 s window admitted {worst} > R = {R}"
    );
    ensure!(
        per_worker.iter().filter(|&&n| n > 0).count() > 1,
        "only one process was ever admitted: {per_worker:?}"
    );
    Ok(())
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Ok(url) = std::env::var(CHILD_ENV) {
        let key = std::env::var(KEY_ENV).context("worker without a key")?;
        return rt.block_on(worker(&url, &key));
    }
    // No libtest harness here: answer `--list` like it would; the one test always runs.
    if std::env::args().any(|a| a == "--list") {
        println!("eight_processes_never_exceed_the_rate: test");
        return Ok(());
    }
    rt.block_on(parent("freepik/strict"))?;
    rt.block_on(parent("freepik/capped"))?;
    println!("test eight_processes_never_exceed_the_rate ... ok");
    Ok(())
}
