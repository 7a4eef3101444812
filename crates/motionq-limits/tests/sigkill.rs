//! A worker process SIGKILLed while holding concurrency leases and reservations: its slots
//! and its pending money come back within the lease time; money of a task the vendor may have
//! accepted (committed) stays held.
//!
//! The test binary is its own victim: started with `MOTIONQ_LIMITS_CHILD_REDIS=<url>` it runs
//! the worker (takes two slots, reserves twice, commits one, keeps renewing, prints `READY`),
//! otherwise it runs the test, which spawns itself as that worker and kills it with SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use motionq_config::RedisConfig;
use motionq_limits::*;
use motionq_store::RedisConn;

const CHILD_ENV: &str = "MOTIONQ_LIMITS_CHILD_REDIS";
const LEASE_MS: u64 = 2000;
const M: u64 = 1_000_000;

fn config() -> LimitsConfig {
    let mut cfg = LimitsConfig {
        reservation_lease_ms: LEASE_MS,
        ..Default::default()
    };
    cfg.keys.insert(
        "kkiai/w".into(),
        KeyLimits {
            create_rate_per_s: 100.0,
            create_burst: 10,
            query_rate_per_s: 100.0,
            query_burst: 10,
            create_max_per_s: None,
            query_max_per_s: None,
            max_concurrent: 2,
            lease_ttl_ms: LEASE_MS,
            spend: SpendLimits {
                total: Some(10 * M),
                ..Default::default()
            },
        },
    );
    cfg
}

async fn limits(url: &str) -> Result<Limits> {
    let redis = RedisConfig {
        url: url.to_string(),
        ..Default::default()
    };
    Ok(Limits::new(
        RedisConn::connect(&redis).await?,
        "mq",
        config(),
    )?)
}

/// The worker that gets killed.
async fn child(url: &str) -> Result<()> {
    let l = limits(url).await?;
    let k: KeyId = "kkiai/w".parse()?;
    let b = [BudgetRef::Key(k.clone())];
    for job in ["job-a", "job-b"] {
        ensure!(matches!(
            l.acquire_slot(&k, job, None).await?,
            SlotDecision::Acquired(_)
        ));
    }
    ensure!(matches!(
        l.reserve(&b, "job-a", 3 * M).await?,
        ReserveOutcome::Reserved(_)
    ));
    ensure!(matches!(
        l.reserve(&b, "job-b", 4 * M).await?,
        ReserveOutcome::Reserved(_)
    ));
    ensure!(l.commit("job-b", Some("task-b")).await? == CommitOutcome::Committed);
    println!("READY");
    // A live worker renews its leases (and its pending reservation) until it is killed.
    loop {
        for job in ["job-a", "job-b"] {
            l.renew_slot(&k, job, None).await?;
        }
        l.reserve(&b, "job-a", 3 * M).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn parent() -> Result<()> {
    let server = motionq_testkit::RedisServer::start().await?;
    let exe = std::env::current_exe()?;
    let mut worker = Command::new(exe)
        .env(CHILD_ENV, server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawn the worker process")?;
    let stdout = worker.stdout.take().context("worker stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("read the worker's READY")?;
    ensure!(line.trim() == "READY", "worker said {line:?}");
    // Connected before the kill, so the checks right after it are quick.
    let l = limits(&server.url()).await?;
    let k: KeyId = "kkiai/w".parse()?;
    let b = [BudgetRef::Key(k.clone())];
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.kill().context("SIGKILL the worker")?; // Child::kill is SIGKILL on Unix
    worker.wait()?;
    let killed = Instant::now();

    // Right after the kill the dead worker's slots and money are still held.
    ensure!(
        matches!(
            l.acquire_slot(&k, "job-c", None).await?,
            SlotDecision::Full { in_flight: 2, .. }
        ),
        "slots must stay held until their lease passes"
    );
    ensure!(l.budgets(&b).await?[0].reserved == 7 * M);

    // Slots come back by themselves once the leases pass: both can be taken by new holders
    // (the two leases were renewed a moment apart, so they come back a moment apart).
    let mut slot_back = Duration::ZERO;
    for holder in ["job-c", "job-d"] {
        slot_back = loop {
            match l.acquire_slot(&k, holder, None).await? {
                SlotDecision::Acquired(_) => break killed.elapsed(),
                SlotDecision::Full { .. } if killed.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                other => bail!("slot never came back for {holder}: {other:?}"),
            }
        };
    }
    // The pending reservation's money comes back; the committed one's stays.
    let money_back = loop {
        l.reap_expired().await?;
        let v = l.budgets(&b).await?;
        if v[0].reserved == 4 * M {
            break killed.elapsed();
        }
        ensure!(v[0].reserved == 7 * M, "unexpected {v:?}");
        ensure!(
            killed.elapsed() < Duration::from_secs(10),
            "pending money never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let a = l.reservation("job-a").await?.context("job-a record")?;
    ensure!(a.state == ReservationState::Expired, "{a:?}");
    let bres = l.reservation("job-b").await?.context("job-b record")?;
    ensure!(
        bres.state == ReservationState::Committed && bres.task_id.as_deref() == Some("task-b"),
        "{bres:?}"
    );
    // Reconciliation's list: exactly the committed one.
    let open = l.committed_reservations(Duration::ZERO, 10).await?;
    ensure!(
        open.len() == 1 && open[0].id == "job-b",
        "to reconcile: {open:?}"
    );
    tokio::time::sleep(Duration::from_millis(LEASE_MS + 200)).await;
    l.reap_expired().await?;
    ensure!(
        l.budgets(&b).await?[0].reserved == 4 * M,
        "committed money must stay held"
    );
    println!(
        "sigkill: lease {LEASE_MS} ms; slots back {} ms and pending money back {} ms after \
         SIGKILL; committed money kept",
        slot_back.as_millis(),
        money_back.as_millis()
    );
    Ok(())
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Ok(url) = std::env::var(CHILD_ENV) {
        return rt.block_on(child(&url));
    }
    // No libtest harness here: answer `--list` like it would; filters are not supported, the
    // one test always runs.
    if std::env::args().any(|a| a == "--list") {
        println!("sigkill_returns_slots_and_pending_money: test");
        return Ok(());
    }
    rt.block_on(parent())?;
    println!("test sigkill_returns_slots_and_pending_money ... ok");
    Ok(())
}
