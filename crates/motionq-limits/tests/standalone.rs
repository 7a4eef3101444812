//! The limits suite against a private standalone redis-server (one per test).

mod suite;

use suite::Env;

macro_rules! standalone {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> anyhow::Result<()> {
            let env = Env::standalone().await?;
            suite::$name(&env, "mq").await
        }
    )*};
}

standalone!(
    gcra_hammer,
    gcra_edges,
    held_window,
    semaphore_race,
    semaphore_leases,
    spend_race,
    spend_lifecycle,
    spend_crash,
    spend_window_rollover,
    spend_stress,
    aimd,
    park_and_pick,
    key_expiry,
);

/// Redis is SIGKILLed and restarted (AOF, `appendfsync always`): every limit survives, and the
/// scripts, gone from the restarted server's cache, are loaded again by the `EVALSHA` fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_redis_crash_and_scripts_reload() -> anyhow::Result<()> {
    use anyhow::{ensure, Context};
    use motionq_limits::*;
    use std::time::Duration;

    let mut server = motionq_testkit::RedisServer::start().await?;
    let redis = motionq_config::RedisConfig {
        url: server.url(),
        ..Default::default()
    };
    let mut kl = suite::key_limits(0.1, 1, 2);
    kl.spend.total = Some(10_000_000);
    let cfg = suite::config(&[("evolink/d", kl)]);
    let limits = Limits::connect(&redis, cfg).await?;
    let k = suite::key("evolink/d");
    let b = [BudgetRef::Key(k.clone())];
    ensure!(limits.acquire(&k, Op::Create, 1).await? == Decision::Allowed);
    ensure!(matches!(
        limits.acquire_slot(&k, "job-1", None).await?,
        SlotDecision::Acquired(_)
    ));
    ensure!(matches!(
        limits.reserve(&b, "job-1", 4_000_000).await?,
        ReserveOutcome::Reserved(_)
    ));
    ensure!(limits.commit("job-1", Some("task-1")).await? == CommitOutcome::Committed);
    limits.on_rate_limited(&k, Op::Query, None).await?;

    server.kill();
    server.restart().await?;

    // The multiplexed connection reconnects by itself; the first command may see the drop.
    let mut state = None;
    for _ in 0..50 {
        match limits.state(&k).await {
            Ok(s) => {
                state = Some(s);
                break;
            }
            Err(LimitsError::Redis(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return Err(e.into()),
        }
    }
    let s = state.context("Redis did not come back")?;
    ensure!(s.in_flight == 1, "slot lost: {s:?}");
    ensure!(
        s.query.effective_per_s < s.query.configured_per_s,
        "AIMD lost: {s:?}"
    );
    ensure!(
        s.budgets[0].reserved == 4_000_000,
        "reservation lost: {s:?}"
    );
    // The rate state survived too: a second create within its 10 s interval must wait.
    ensure!(matches!(
        limits.acquire(&k, Op::Create, 1).await?,
        Decision::Wait(_)
    ));
    let r = limits.reservation("job-1").await?.context("record")?;
    ensure!(r.state == ReservationState::Committed && r.task_id.as_deref() == Some("task-1"));
    ensure!(
        limits.settle("job-1", 3_000_000).await?
            == SettleOutcome::Settled {
                overrun: false,
                late: false
            }
    );
    Ok(())
}
