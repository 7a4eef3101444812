//! Throughput of the limiter's hot paths against a private redis-server on loopback.
//!
//! `cargo bench -p motionq-limits` (or `cargo bench -p motionq-limits --profile dev` for a
//! quick debug-build figure). Prints ops/s for 1 and 8 concurrent callers, each with its own
//! connection; every op is one script call (one round trip). The figures show motionq's own
//! overhead, which must stay far below the vendors' limits (a few creates per second per key).

use std::time::{Duration, Instant};

use anyhow::Result;
use motionq_config::RedisConfig;
use motionq_limits::{
    BudgetRef, Decision, KeyLimits, Limits, LimitsConfig, Op, ReserveOutcome, SlotDecision,
    SpendLimits,
};
use motionq_store::RedisConn;

const RUN: Duration = Duration::from_secs(2);

fn config() -> LimitsConfig {
    let mut cfg = LimitsConfig::default();
    cfg.keys.insert(
        "evolink/bench".into(),
        KeyLimits {
            // High enough that the limiter admits everything: this measures the script cost.
            create_rate_per_s: 1_000_000.0,
            create_burst: 1_000_000,
            query_rate_per_s: 1_000_000.0,
            query_burst: 1_000_000,
            create_max_per_s: None,
            query_max_per_s: None,
            max_concurrent: 1_000_000,
            lease_ttl_ms: 60_000,
            spend: SpendLimits {
                hourly: Some(1 << 49),
                daily: Some(1 << 49),
                total: Some(1 << 49),
            },
        },
    );
    cfg
}

async fn run<F, Fut>(name: &str, redis: &RedisConfig, tasks: usize, op: F) -> Result<()>
where
    F: Fn(Limits, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let mut handles = Vec::new();
    let start = Instant::now();
    for t in 0..tasks {
        let limits = Limits::new(RedisConn::connect(redis).await?, "bench", config())?;
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            let begin = Instant::now();
            while begin.elapsed() < RUN {
                op(limits.clone(), t, n).await?;
                n += 1;
            }
            Ok::<_, anyhow::Error>(n)
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<32} {tasks} caller(s): {:>8.0} ops/s",
        total as f64 / secs
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let server = motionq_testkit::RedisServer::start_with(motionq_testkit::RedisOptions {
        appendfsync: "everysec",
        ..Default::default()
    })
    .await?;
    let redis = RedisConfig {
        url: server.url(),
        ..Default::default()
    };
    let key: motionq_limits::KeyId = "evolink/bench".parse()?;
    for tasks in [1, 8] {
        let k = key.clone();
        run("acquire (GCRA)", &redis, tasks, move |l, _, _| {
            let k = k.clone();
            async move {
                anyhow::ensure!(l.acquire(&k, Op::Create, 1).await? == Decision::Allowed);
                Ok(())
            }
        })
        .await?;
        let k = key.clone();
        run(
            "acquire_slot + release_slot",
            &redis,
            tasks,
            move |l, t, n| {
                let k = k.clone();
                async move {
                    let holder = format!("h{t}-{n}");
                    anyhow::ensure!(matches!(
                        l.acquire_slot(&k, &holder, None).await?,
                        SlotDecision::Acquired(_)
                    ));
                    l.release_slot(&k, &holder).await?;
                    Ok(())
                }
            },
        )
        .await?;
        let k = key.clone();
        run("reserve (key + campaign)", &redis, tasks, move |l, t, n| {
            let k = k.clone();
            async move {
                let budgets = [
                    BudgetRef::Key(k),
                    BudgetRef::Campaign {
                        id: "bench".into(),
                        limit: 1 << 49,
                    },
                ];
                let id = format!("r{tasks}-{t}-{n}");
                anyhow::ensure!(matches!(
                    l.reserve(&budgets, &id, 1_000).await?,
                    ReserveOutcome::Reserved(_)
                ));
                Ok(())
            }
        })
        .await?;
        let k = key.clone();
        run(
            "reserve + commit + settle",
            &redis,
            tasks,
            move |l, t, n| {
                let k = k.clone();
                async move {
                    let budgets = [BudgetRef::Key(k)];
                    let id = format!("s{tasks}-{t}-{n}");
                    l.reserve(&budgets, &id, 1_000).await?;
                    l.commit(&id, Some("task")).await?;
                    l.settle(&id, 900).await?;
                    Ok(())
                }
            },
        )
        .await?;
    }
    Ok(())
}
