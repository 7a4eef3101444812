//! The one limits test suite, run against a standalone server (`standalone.rs`, one server per
//! test) and a three-node Redis Cluster (`cluster.rs`, every case against one cluster: a
//! CROSSSLOT mistake in any script fails it).
//!
//! Every case takes an [`Env`] and a key prefix of its own, so cases can share a server.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use motionq_config::{RedisConfig, RedisMode};
use motionq_limits::*;
use motionq_store::RedisConn;
use motionq_testkit::{RedisCluster, RedisServer};

/// A running Redis (standalone or cluster) and how to connect to it.
pub struct Env {
    cfg: RedisConfig,
    _single: Option<RedisServer>,
    _cluster: Option<RedisCluster>,
}

impl Env {
    pub async fn standalone() -> Result<Self> {
        let server = RedisServer::start().await?;
        let cfg = RedisConfig {
            url: server.url(),
            ..Default::default()
        };
        Ok(Self {
            cfg,
            _single: Some(server),
            _cluster: None,
        })
    }

    pub async fn cluster() -> Result<Self> {
        let cluster = RedisCluster::start().await?;
        let urls = cluster.urls();
        let cfg = RedisConfig {
            url: urls[0].clone(),
            mode: RedisMode::Cluster,
            nodes: urls,
            ..Default::default()
        };
        Ok(Self {
            cfg,
            _single: None,
            _cluster: Some(cluster),
        })
    }

    /// A new connection of its own (as a separate worker process would have).
    pub async fn conn(&self) -> Result<RedisConn> {
        Ok(RedisConn::connect(&self.cfg).await?)
    }

    /// A limiter on a new connection.
    pub async fn limits(&self, prefix: &str, cfg: &LimitsConfig) -> Result<Limits> {
        Ok(Limits::new(self.conn().await?, prefix, cfg.clone())?)
    }
}

pub fn key(s: &str) -> KeyId {
    s.parse().expect("test key id")
}

/// A key's limits with the given create rate/burst and concurrency; generous query rate.
pub fn key_limits(rate: f64, burst: u32, max_concurrent: u32) -> KeyLimits {
    KeyLimits {
        create_rate_per_s: rate,
        create_burst: burst,
        query_rate_per_s: 1000.0,
        query_burst: 10,
        create_max_per_s: None,
        query_max_per_s: None,
        max_concurrent,
        lease_ttl_ms: 60_000,
        spend: SpendLimits::default(),
    }
}

pub fn config(keys: &[(&str, KeyLimits)]) -> LimitsConfig {
    LimitsConfig {
        keys: keys
            .iter()
            .map(|(k, l)| (k.to_string(), l.clone()))
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
}

fn us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

/// Redis server time, µs.
async fn server_now(conn: &mut RedisConn) -> Result<i64> {
    let (s, u): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(s * 1_000_000 + u)
}

async fn pttl(conn: &mut RedisConn, k: &str) -> Result<i64> {
    Ok(redis::cmd("PTTL").arg(k).query_async(conn).await?)
}

async fn exists(conn: &mut RedisConn, k: &str) -> Result<bool> {
    let n: i64 = redis::cmd("EXISTS").arg(k).query_async(conn).await?;
    Ok(n == 1)
}

/// Sleeps until server time is within the first 20% of a `len_s` window, so a test that fills
/// a window does not straddle a rollover by accident.
async fn align_to_window(conn: &mut RedisConn, len_s: u64) -> Result<()> {
    let len = len_s as i64 * 1_000_000;
    loop {
        let now = server_now(conn).await?;
        let into = now % len;
        if into < len / 5 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_micros((len - into) as u64 + 10_000)).await;
    }
}

fn reserved(o: &ReserveOutcome) -> bool {
    matches!(o, ReserveOutcome::Reserved(r) if !r.already)
}

/// Checks the spend invariant on budgets: used + reserved <= limit.
fn assert_invariant(views: &[BudgetView]) -> Result<()> {
    for b in views {
        ensure!(
            b.used + b.reserved <= b.limit,
            "invariant broken on {}: used {} + reserved {} > limit {}",
            b.name,
            b.used,
            b.reserved,
            b.limit
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GCRA

/// 8 workers, each on its own connection, hammer one key limited to R=50/s (burst 5) for ~3 s.
/// No 1-second window of the allowed requests (by Redis server time) holds more than R + burst.
pub async fn gcra_hammer(env: &Env, prefix: &str) -> Result<()> {
    const R: f64 = 50.0;
    const BURST: u32 = 5;
    let cfg = config(&[("evolink/main", key_limits(R, BURST, 10))]);
    let k = key("evolink/main");
    let run_for = Duration::from_secs(3);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let limits = env.limits(prefix, &cfg).await?;
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            let mut allowed = Vec::new();
            let mut waits = 0u32;
            let start = std::time::Instant::now();
            while start.elapsed() < run_for {
                let a = limits.acquire_timed(&k, Op::Create, 1).await?;
                match a.decision {
                    Decision::Allowed => allowed.push(us(a.server_time)),
                    Decision::Wait(d) => {
                        waits += 1;
                        tokio::time::sleep(d).await;
                    }
                    Decision::Parked(p) => bail!("unexpected park {p:?}"),
                }
            }
            Ok::<_, anyhow::Error>((allowed, waits))
        }));
    }
    let mut all = Vec::new();
    let mut waits = 0;
    // join_all: every worker has finished before anything is judged (no detached stragglers).
    for r in futures::future::join_all(tasks).await {
        let (a, w) = r??;
        all.extend(a);
        waits += w;
    }
    all.sort_unstable();
    ensure!(all.len() >= R as usize, "only {} allowed in 3 s", all.len());
    let mut worst = 0usize;
    let mut j = 0usize;
    for i in 0..all.len() {
        while all[j] <= all[i] - 1_000_000 {
            j += 1;
        }
        // all[j..=i] lie in the half-open second (all[i] - 1 s, all[i]].
        worst = worst.max(i - j + 1);
    }
    let span_s = (all[all.len() - 1] - all[0]) as f64 / 1e6;
    let achieved = (all.len() as f64 - f64::from(BURST)) / span_s;
    println!(
        "gcra_hammer[{prefix}]: {} allowed, {waits} waits, busiest 1 s window {worst} \
         (limit R + burst = {}), achieved {achieved:.1}/s = {:.3} of R",
        all.len(),
        R as u32 + BURST,
        achieved / R
    );
    ensure!(
        worst <= R as usize + BURST as usize,
        "a 1 s window admitted {worst} > R + burst"
    );
    Ok(())
}

/// A key never seen, burst exhaustion, and a returned wait that is exactly long enough.
pub async fn gcra_edges(env: &Env, prefix: &str) -> Result<()> {
    let cfg = config(&[("kkiai/a", key_limits(1.0, 3, 1))]);
    let limits = env.limits(prefix, &cfg).await?;
    let k = key("kkiai/a");
    // Never seen: a full burst is available.
    for i in 0..3 {
        let d = limits.acquire(&k, Op::Create, 1).await?;
        ensure!(d == Decision::Allowed, "burst request {i}: {d:?}");
    }
    // Burst exhausted: wait about one interval (1 s), never more.
    let wait = match limits.acquire(&k, Op::Create, 1).await? {
        Decision::Wait(d) => d,
        other => bail!("expected Wait after the burst, got {other:?}"),
    };
    ensure!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "wait {wait:?}"
    );
    // Peek does not count.
    ensure!(matches!(
        limits.peek(&k, Op::Create, 1).await?,
        Decision::Wait(_)
    ));
    tokio::time::sleep(wait).await;
    let d = limits.acquire(&k, Op::Create, 1).await?;
    ensure!(d == Decision::Allowed, "after waiting {wait:?}: {d:?}");
    // Create and query are counted separately.
    ensure!(limits.acquire(&k, Op::Query, 1).await? == Decision::Allowed);
    // Bad input is refused, not counted.
    ensure!(matches!(
        limits.acquire(&k, Op::Create, 4).await,
        Err(LimitsError::InvalidInput { field: "cost", .. })
    ));
    ensure!(matches!(
        limits.acquire(&key("kkiai/other"), Op::Create, 1).await,
        Err(LimitsError::UnknownKey(_))
    ));
    // A cost of 2 needs two intervals of room.
    let cfg2 = config(&[("kkiai/b", key_limits(1.0, 2, 1))]);
    let l2 = env.limits(prefix, &cfg2).await?;
    let kb = key("kkiai/b");
    ensure!(l2.acquire(&kb, Op::Create, 2).await? == Decision::Allowed);
    match l2.acquire(&kb, Op::Create, 2).await? {
        // Two 1 s intervals minus the (sub-second) time since the first call.
        Decision::Wait(d) => ensure!(
            d > Duration::from_secs(1) && d <= Duration::from_secs(2),
            "cost-2 wait {d:?}"
        ),
        other => bail!("expected Wait, got {other:?}"),
    }
    // Routing sees the rate too (and only looks).
    let none = l2
        .pick_usable(std::slice::from_ref(&kb), None)
        .await?
        .expect_err("rate used up");
    match &none.reasons[0].1 {
        Unusable::Rate { ready_in } => ensure!(*ready_in <= Duration::from_secs(2)),
        other => bail!("expected a rate reason, got {other:?}"),
    }
    ensure!(none.summary() == "all rate");
    // A per-second cap on top of a generous GCRA: 3 at once, then the 4th waits until the
    // first leaves the sliding second.
    let mut capped = key_limits(100.0, 10, 1);
    capped.create_max_per_s = Some(3);
    let cfg3 = config(&[("kkiai/c", capped)]);
    let l3 = env.limits(prefix, &cfg3).await?;
    let kc = key("kkiai/c");
    for i in 0..3 {
        let d = l3.acquire(&kc, Op::Create, 1).await?;
        ensure!(d == Decision::Allowed, "capped call {i}: {d:?}");
    }
    let wait = match l3.acquire(&kc, Op::Create, 1).await? {
        Decision::Wait(d) => d,
        other => bail!("expected the cap to hold, got {other:?}"),
    };
    // Routing and `motionq keys` see the cap too.
    let ready_in = l3.state(&kc).await?.create.ready_in;
    ensure!(
        ready_in > Duration::ZERO && ready_in <= wait,
        "ready_in {ready_in:?} vs wait {wait:?}"
    );
    ensure!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "cap wait {wait:?}"
    );
    let mut conn = env.conn().await?;
    let ttl = pttl(&mut conn, &l3.layout().window(&kc, Op::Create)).await?;
    ensure!(ttl > 0 && ttl <= 1001, "window log PTTL {ttl}");
    tokio::time::sleep(wait).await;
    ensure!(l3.acquire(&kc, Op::Create, 1).await? == Decision::Allowed);
    ensure!(matches!(
        l3.acquire(&kc, Op::Create, 4).await,
        Err(LimitsError::InvalidInput { field: "cost", .. })
    ));
    Ok(())
}

/// Held admissions (`acquire_held`): with a per-second cap of 2, an admission counts while its
/// call is in flight however long that takes, and for one second after `answered`; a held
/// admission whose caller died leaves the window when its hold passes; without a cap there is
/// no ticket.
pub async fn held_window(env: &Env, prefix: &str) -> Result<()> {
    let mut capped = key_limits(1000.0, 10, 1);
    capped.create_max_per_s = Some(2);
    let cfg = config(&[
        ("kkiai/h", capped),
        ("kkiai/free", key_limits(1000.0, 10, 1)),
    ]);
    let l = env.limits(prefix, &cfg).await?;
    let k = key("kkiai/h");
    let hold = Duration::from_secs(30);
    let a = l.acquire_held(&k, Op::Create, 1, hold).await?;
    let b = l.acquire_held(&k, Op::Create, 1, hold).await?;
    ensure!(a.decision == Decision::Allowed && b.decision == Decision::Allowed);
    let (ta, tb) = (a.ticket.expect("ticket a"), b.ticket.expect("ticket b"));
    // Both in flight for 1.3 s: an unheld cap would have let a third call in after 1 s.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    match l.acquire_held(&k, Op::Create, 1, hold).await?.decision {
        Decision::Wait(w) => ensure!(
            w <= Duration::from_millis(20),
            "in-flight calls: look again soon, got {w:?}"
        ),
        other => bail!("two calls in flight must fill a cap of 2: {other:?}"),
    }
    ensure!(l.answered(&ta).await?, "a was in flight");
    ensure!(!l.answered(&ta).await?, "answering twice changes nothing");
    // a answered now: its second runs from here; b still in flight.
    let w = match l.acquire_held(&k, Op::Create, 1, hold).await?.decision {
        Decision::Wait(w) => w,
        other => bail!("a counts for a second after its answer: {other:?}"),
    };
    ensure!(
        w > Duration::from_millis(500) && w <= Duration::from_secs(1),
        "wait until a's second ends: {w:?}"
    );
    let mut conn = env.conn().await?;
    let ttl = pttl(&mut conn, &l.layout().window(&k, Op::Create)).await?;
    ensure!(ttl > 1001, "the window log outlives held calls: PTTL {ttl}");
    tokio::time::sleep(w).await;
    let c = l
        .acquire_held(&k, Op::Create, 1, Duration::from_millis(400))
        .await?;
    ensure!(c.decision == Decision::Allowed, "a left the window: {c:?}");
    ensure!(l.answered(&tb).await?);
    // c's caller "dies" (never answers): it leaves the window 1 s after its 400 ms hold,
    // and b 1 s after its answer above.
    match l.acquire(&k, Op::Create, 1).await? {
        Decision::Wait(_) => {}
        other => bail!("b and c fill the cap: {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure!(l.acquire(&k, Op::Create, 1).await? == Decision::Allowed);
    // No cap: nothing to hold, no ticket.
    let free = l
        .acquire_held(&key("kkiai/free"), Op::Create, 1, hold)
        .await?;
    ensure!(free.decision == Decision::Allowed && free.ticket.is_none());
    ensure!(matches!(
        l.acquire_held(&k, Op::Create, 1, Duration::ZERO).await,
        Err(LimitsError::InvalidInput { field: "hold", .. })
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Concurrency

/// C=3 and 20 holders racing: never more than 3 at once; everyone gets through.
pub async fn semaphore_race(env: &Env, prefix: &str) -> Result<()> {
    let cfg = config(&[("freepik/k", key_limits(1000.0, 100, 3))]);
    let k = key("freepik/k");
    let active = Arc::new(AtomicU32::new(0));
    let max_seen = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let limits = env.limits(prefix, &cfg).await?;
        let (k, active, max_seen) = (k.clone(), active.clone(), max_seen.clone());
        tasks.push(tokio::spawn(async move {
            let holder = format!("job-{i}");
            loop {
                match limits.acquire_slot(&k, &holder, None).await? {
                    SlotDecision::Acquired(l) => {
                        ensure!(l.in_flight <= 3, "lease reports {} in flight", l.in_flight);
                        break;
                    }
                    SlotDecision::Full {
                        in_flight, limit, ..
                    } => {
                        ensure!(in_flight == 3 && limit == 3, "full at {in_flight}/{limit}");
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                    SlotDecision::Parked(p) => bail!("parked {p:?}"),
                }
            }
            // Counted only while the slot is held: incremented after acquire, decremented
            // before release, so this never exceeds what Redis holds.
            let now = active.fetch_add(1, Ordering::SeqCst) + 1;
            max_seen.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(15)).await;
            active.fetch_sub(1, Ordering::SeqCst);
            ensure!(
                limits.release_slot(&k, &holder).await?,
                "release found no slot"
            );
            Ok::<_, anyhow::Error>(())
        }));
    }
    for r in futures::future::join_all(tasks).await {
        r??;
    }
    let m = max_seen.load(Ordering::SeqCst);
    println!("semaphore_race[{prefix}]: at most {m} of 3 slots held at once by 20 holders");
    ensure!(m <= 3, "{m} holders at once with C=3");
    ensure!(m >= 1);
    let limits = env.limits(prefix, &cfg).await?;
    ensure!(limits.state(&k).await?.in_flight == 0);
    Ok(())
}

/// Idempotent re-acquire, renew, release, and reclaim of a dead holder's expired lease.
pub async fn semaphore_leases(env: &Env, prefix: &str) -> Result<()> {
    let cfg = config(&[("freepik/l", key_limits(1000.0, 100, 3))]);
    let limits = env.limits(prefix, &cfg).await?;
    let k = key("freepik/l");
    let short = Some(Duration::from_millis(1000));
    for h in ["a", "b"] {
        ensure!(matches!(
            limits.acquire_slot(&k, h, None).await?,
            SlotDecision::Acquired(_)
        ));
    }
    // The same holder again: renewed, not a second slot.
    match limits.acquire_slot(&k, "a", None).await? {
        SlotDecision::Acquired(l) => ensure!(l.in_flight == 2, "in flight {}", l.in_flight),
        other => bail!("{other:?}"),
    }
    // "dead" holds the last slot with a short lease and never renews (SIGKILLed worker).
    ensure!(matches!(
        limits.acquire_slot(&k, "dead", short).await?,
        SlotDecision::Acquired(_)
    ));
    let retry_in = match limits.acquire_slot(&k, "c", None).await? {
        SlotDecision::Full {
            in_flight: 3,
            limit: 3,
            retry_in,
        } => retry_in,
        other => bail!("expected Full, got {other:?}"),
    };
    ensure!(
        retry_in <= Duration::from_millis(1000),
        "retry_in {retry_in:?}"
    );
    tokio::time::sleep(Duration::from_millis(1050)).await;
    // Its lease passed: the next acquire reclaims the slot.
    match limits.acquire_slot(&k, "c", None).await? {
        SlotDecision::Acquired(l) => ensure!(l.in_flight == 3),
        other => bail!("expected the dead holder's slot, got {other:?}"),
    }
    ensure!(
        limits.renew_slot(&k, "dead", None).await?.is_none(),
        "a reclaimed lease must not renew"
    );
    let renewed = limits
        .renew_slot(&k, "b", None)
        .await?
        .ok_or_else(|| anyhow!("b lost its slot"))?;
    ensure!(renewed.in_flight == 3);
    // Release frees exactly one slot, once.
    ensure!(limits.release_slot(&k, "a").await?);
    ensure!(!limits.release_slot(&k, "a").await?);
    ensure!(matches!(
        limits.acquire_slot(&k, "d", None).await?,
        SlotDecision::Acquired(_)
    ));
    ensure!(limits.state(&k).await?.in_flight == 3);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Spend

fn spend_key(total: Option<u64>, hourly: Option<u64>, daily: Option<u64>) -> KeyLimits {
    KeyLimits {
        spend: SpendLimits {
            hourly,
            daily,
            total,
        },
        ..key_limits(100.0, 10, 10)
    }
}

/// 8 reservers race a budget that fits exactly K=7 reservations: exactly K succeed.
pub async fn spend_race(env: &Env, prefix: &str) -> Result<()> {
    const UNIT: u64 = 1_250_000; // 1.25 in micro-units
    const K: u64 = 7;
    let cfg = config(&[("evolink/s", spend_key(Some(K * UNIT), None, None))]);
    let k = key("evolink/s");
    let budgets = vec![
        BudgetRef::Key(k.clone()),
        BudgetRef::Campaign {
            id: "race".into(),
            limit: 100 * UNIT,
        },
    ];
    let mut tasks = Vec::new();
    for w in 0..8 {
        let limits = env.limits(prefix, &cfg).await?;
        let budgets = budgets.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = 0u64;
            for j in 0..4 {
                let o = limits
                    .reserve(&budgets, &format!("job-{w}-{j}"), UNIT)
                    .await?;
                match &o {
                    ReserveOutcome::Reserved(_) => won += 1,
                    ReserveOutcome::Denied(d) => {
                        ensure!(d.budget == "evolink/s:total", "denied by {}", d.budget);
                        ensure!(d.resets_at.is_none(), "a total budget never resets");
                    }
                    other => bail!("{other:?}"),
                }
            }
            Ok::<_, anyhow::Error>(won)
        }));
    }
    let mut won = 0;
    for r in futures::future::join_all(tasks).await {
        won += r??;
    }
    let limits = env.limits(prefix, &cfg).await?;
    let views = limits.budgets(&budgets).await?;
    println!("spend_race[{prefix}]: {won} of 32 reservations won, budget fits {K}");
    ensure!(
        won == K,
        "{won} reservations succeeded, budget fits exactly {K}"
    );
    ensure!(views[0].reserved == K * UNIT && views[0].used == 0);
    ensure!(views[1].reserved == K * UNIT, "campaign {:?}", views[1]);
    assert_invariant(&views)?;
    Ok(())
}

/// Settle lower / higher, release, idempotency, and the all-or-none rule across a key and a
/// campaign budget.
pub async fn spend_lifecycle(env: &Env, prefix: &str) -> Result<()> {
    const M: u64 = 1_000_000;
    let cfg = config(&[("aivideoapi/x", spend_key(Some(10 * M), None, Some(8 * M)))]);
    let limits = env.limits(prefix, &cfg).await?;
    let k = key("aivideoapi/x");
    let camp = |limit| BudgetRef::Campaign {
        id: "c1".into(),
        limit,
    };
    let both = |limit| vec![BudgetRef::Key(k.clone()), camp(limit)];

    // Idempotent: the same id twice reserves once.
    let first = limits.reserve(&both(5 * M), "j1", 2 * M).await?;
    ensure!(reserved(&first), "{first:?}");
    match limits.reserve(&both(5 * M), "j1", 2 * M).await? {
        ReserveOutcome::Reserved(r) => ensure!(r.already && r.amount == 2 * M),
        other => bail!("{other:?}"),
    }
    let v = limits.budgets(&both(5 * M)).await?;
    ensure!(v.iter().all(|b| b.reserved == 2 * M), "{v:?}");

    // The campaign (5) denies 4 more; the key's budgets (8 daily, 10 total) are untouched.
    match limits.reserve(&both(5 * M), "j2", 4 * M).await? {
        ReserveOutcome::Denied(d) => {
            ensure!(d.budget == "campaign/c1", "{d:?}");
            ensure!(matches!(
                d.reason,
                DenyReason::OverLimit {
                    used: 0,
                    reserved,
                    limit,
                    requested,
                    never_fits: false
                } if reserved == 2 * M && limit == 5 * M && requested == 4 * M
            ));
        }
        other => bail!("{other:?}"),
    }
    let v = limits.budgets(&both(5 * M)).await?;
    ensure!(
        v.iter().all(|b| b.reserved == 2 * M),
        "partial reserve: {v:?}"
    );

    // The key's daily budget (8) denies 7 more while the campaign (raised to 50) has room:
    // again nothing anywhere.
    match limits.reserve(&both(50 * M), "j3", 7 * M).await? {
        ReserveOutcome::Denied(d) => {
            ensure!(d.budget == "aivideoapi/x:daily", "{d:?}");
            // With the default window the reset is the next UTC midnight.
            let reset = d.resets_at.context("a daily window resets")?;
            let secs = reset.duration_since(UNIX_EPOCH)?.as_secs();
            ensure!(d.window == Some(BudgetWindow::Daily) && secs % 86_400 == 0);
            let left = reset.duration_since(SystemTime::now()).unwrap_or_default();
            ensure!(left <= Duration::from_secs(86_400), "reset in {left:?}");
        }
        other => bail!("{other:?}"),
    }
    let v = limits.budgets(&both(50 * M)).await?;
    ensure!(
        v.iter().all(|b| b.reserved == 2 * M),
        "partial reserve: {v:?}"
    );
    assert_invariant(&v)?;

    // A amount bigger than a limit never fits.
    match limits.reserve(&both(50 * M), "huge", 9 * M).await? {
        ReserveOutcome::Denied(Denial {
            reason: DenyReason::OverLimit {
                never_fits: true, ..
            },
            ..
        }) => {}
        other => bail!("{other:?}"),
    }

    // Settle lower: capacity returns (daily: used 1.5, nothing reserved).
    ensure!(limits.commit("j1", Some("task-1")).await? == CommitOutcome::Committed);
    ensure!(
        limits.settle("j1", 1_500_000).await?
            == SettleOutcome::Settled {
                overrun: false,
                late: false
            }
    );
    ensure!(
        limits.settle("j1", 1_500_000).await?
            == SettleOutcome::AlreadySettled { actual: 1_500_000 }
    );
    ensure!(matches!(
        limits.reserve(&both(50 * M), "j1", 2 * M).await?,
        ReserveOutcome::AlreadySettled { .. }
    ));
    let info = limits.reservation("j1").await?.context("j1 record")?;
    ensure!(info.state == ReservationState::Settled && info.actual == Some(1_500_000));
    ensure!(info.task_id.as_deref() == Some("task-1"));
    ensure!(info.budget_keys.len() == 3, "{info:?}");
    // 1.5 used of 8 daily: 6.5 fits exactly, 6.6 would not.
    let o = limits.reserve(&both(50 * M), "j4", 6_500_000).await?;
    ensure!(reserved(&o), "{o:?}");
    ensure!(!reserved(&limits.reserve(&both(50 * M), "j5", 1).await?));
    // Release: the 6.5 return.
    ensure!(limits.release("j4").await? == ReleaseOutcome::Released);
    ensure!(
        limits.release("j4").await? == ReleaseOutcome::AlreadyClosed(ReservationState::Released)
    );
    let v = limits.budgets(&both(50 * M)).await?;
    ensure!(v[0].name == "aivideoapi/x:daily" && v[0].used == 1_500_000 && v[0].reserved == 0);
    ensure!(v[1].name == "aivideoapi/x:total" && v[1].used == 1_500_000);
    ensure!(v[2].name == "campaign/c1" && v[2].limit == 50 * M);
    // A released id may reserve again (the first money was given back).
    ensure!(reserved(&limits.reserve(&both(50 * M), "j4", M).await?));
    // Settle higher than reserved: recorded, reported as overrun only when over the limit.
    ensure!(
        limits.settle("j4", 2 * M).await?
            == SettleOutcome::Settled {
                overrun: false,
                late: false
            }
    );
    let v = limits.budgets(&both(50 * M)).await?;
    ensure!(v[0].used == 3_500_000, "{v:?}");
    assert_invariant(&v)?;
    // A pending reservation asked for again with other budgets / amount moves atomically.
    let kb = || vec![BudgetRef::Key(k.clone())];
    let cb = || vec![camp(50 * M)];
    ensure!(reserved(&limits.reserve(&kb(), "mv", 2 * M).await?));
    let before = limits.budgets(&both(50 * M)).await?;
    ensure!(
        before[0].reserved == 2 * M && before[2].reserved == 0,
        "{before:?}"
    );
    // Re-routed to the campaign budget only, with a new amount: the key's money comes back.
    match limits.reserve(&cb(), "mv", 3 * M).await? {
        ReserveOutcome::Reserved(r) => ensure!(!r.already && r.amount == 3 * M, "{r:?}"),
        o => bail!("{o:?}"),
    }
    let after = limits.budgets(&both(50 * M)).await?;
    ensure!(
        after[0].reserved == 0 && after[1].reserved == 0,
        "{after:?}"
    );
    ensure!(after[2].reserved == 3 * M, "{after:?}");
    // A move that does not fit is denied and leaves the old reservation in place.
    ensure!(!reserved(&limits.reserve(&kb(), "mv", 7 * M).await?));
    ensure!(limits.budgets(&both(50 * M)).await?[2].reserved == 3 * M);
    // A bigger amount on the same budget fits as if the old amount were gone: 3.5 used,
    // 3 -> 46 of 50 (3.5 + 3 + 46 would not fit).
    ensure!(reserved(&limits.reserve(&cb(), "mv", 46 * M).await?));
    ensure!(limits.budgets(&both(50 * M)).await?[2].reserved == 46 * M);
    // Committed: never moved or resized; the retry is told to reconcile, not to send.
    ensure!(limits.commit("mv", None).await? == CommitOutcome::Committed);
    ensure!(limits.commit("mv", Some("task-mv")).await? == CommitOutcome::Committed);
    match limits.reserve(&kb(), "mv", M).await? {
        ReserveOutcome::AlreadyCommitted { amount, task_id } => ensure!(
            amount == 46 * M && task_id.as_deref() == Some("task-mv"),
            "{amount} {task_id:?}"
        ),
        o => bail!("{o:?}"),
    }
    ensure!(limits.release("mv").await? == ReleaseOutcome::Released);
    let v = limits.budgets(&both(50 * M)).await?;
    ensure!(v[0].reserved == 0 && v[2].reserved == 0, "{v:?}");
    assert_invariant(&v)?;

    // Unknown reservations are errors, not silent no-ops.
    ensure!(matches!(
        limits.settle("nope", 1).await,
        Err(LimitsError::UnknownReservation(_))
    ));
    ensure!(matches!(
        limits.reserve(&both(M), "bad id", 1).await,
        Err(LimitsError::InvalidInput { .. })
    ));
    Ok(())
}

/// A worker dies holding a pending and a committed reservation: the pending one returns after
/// its lease, the committed one stays until settled or released.
pub async fn spend_crash(env: &Env, prefix: &str) -> Result<()> {
    const M: u64 = 1_000_000;
    let mut cfg = config(&[("highwayapi/h", spend_key(Some(10 * M), None, None))]);
    cfg.reservation_lease_ms = 1000;
    let k = key("highwayapi/h");
    let b = vec![BudgetRef::Key(k.clone())];
    // Connected up front, so the steps below run well within the 1 s lease.
    let limits = env.limits(prefix, &cfg).await?;
    {
        // The "worker" that dies: its connection is dropped with the reservations open.
        let dead = env.limits(prefix, &cfg).await?;
        ensure!(reserved(&dead.reserve(&b, "pending-job", 3 * M).await?));
        ensure!(reserved(&dead.reserve(&b, "sent-job", 4 * M).await?));
        ensure!(dead.commit("sent-job", None).await? == CommitOutcome::Committed);
    }
    ensure!(limits.budgets(&b).await?[0].reserved == 7 * M);
    // Within the lease a redelivered job finds its own reservation and renews it.
    match limits.reserve(&b, "pending-job", 3 * M).await? {
        ReserveOutcome::Reserved(r) => ensure!(r.already && r.lease_until > SystemTime::now()),
        other => bail!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The next reserve (or reap) returns the pending one's money; the committed one is kept.
    ensure!(limits.reap_expired().await? == 1);
    let v = limits.budgets(&b).await?;
    ensure!(v[0].reserved == 4 * M, "{v:?}");
    ensure!(
        limits.reservation("pending-job").await?.map(|r| r.state)
            == Some(ReservationState::Expired)
    );
    ensure!(
        limits.reservation("sent-job").await?.map(|r| r.state) == Some(ReservationState::Committed)
    );
    // Reconciliation finds the committed one.
    let open = limits.committed_reservations(Duration::ZERO, 10).await?;
    ensure!(open.len() == 1 && open[0].id == "sent-job", "{open:?}");
    ensure!(limits
        .committed_reservations(Duration::from_secs(3600), 10)
        .await?
        .is_empty());
    // Too late to commit the expired one: the caller must not call the vendor.
    ensure!(
        limits.commit("pending-job", None).await? == CommitOutcome::Lost(ReservationState::Expired)
    );
    // If the vendor did charge it after all (reconciliation found the task), settle still
    // charges it.
    ensure!(
        limits.settle("pending-job", 3 * M).await?
            == SettleOutcome::Settled {
                overrun: false,
                late: true
            }
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ensure!(
        limits.reap_expired().await? == 0,
        "committed must not expire"
    );
    let v = limits.budgets(&b).await?;
    ensure!(v[0].reserved == 4 * M && v[0].used == 3 * M, "{v:?}");
    // Reconciled: settled, so no longer listed.
    limits.settle("sent-job", 4 * M).await?;
    ensure!(limits
        .committed_reservations(Duration::ZERO, 10)
        .await?
        .is_empty());
    assert_invariant(&v)?;
    // Expiry also happens inside reserve itself: 7 of 10 used, p2 holds 1, so p3's 3 fit only
    // if that same reserve call returns p2 first.
    ensure!(reserved(&limits.reserve(&b, "p2", M).await?));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ensure!(reserved(&limits.reserve(&b, "p3", 3 * M).await?));
    let v = limits.budgets(&b).await?;
    ensure!(
        v[0].reserved == 3 * M && v[0].used == 7 * M,
        "p2 not returned by reserve: {v:?}"
    );
    assert_invariant(&v)?;
    Ok(())
}

/// Hourly window rollover (window shortened to 4 s): a full window denies with its reset
/// time; after it the budget is empty again; a reservation from the old window settled late
/// does not touch the new one; a pending one retried after the rollover moves to the new one.
pub async fn spend_window_rollover(env: &Env, prefix: &str) -> Result<()> {
    const M: u64 = 1_000_000;
    let mut cfg = config(&[("kkiai/w", spend_key(Some(100 * M), Some(4 * M), None))]);
    cfg.hour_window_s = 4;
    let limits = env.limits(prefix, &cfg).await?;
    let mut conn = env.conn().await?;
    let k = key("kkiai/w");
    let b = vec![BudgetRef::Key(k.clone())];
    align_to_window(&mut conn, 4).await?;
    ensure!(reserved(&limits.reserve(&b, "w1", M).await?));
    ensure!(reserved(&limits.reserve(&b, "w2", 2 * M).await?));
    ensure!(reserved(&limits.reserve(&b, "wp", M).await?));
    ensure!(
        limits.settle("w1", M).await?
            == SettleOutcome::Settled {
                overrun: false,
                late: false
            }
    );
    let resets_at = match limits.reserve(&b, "w3", M).await? {
        ReserveOutcome::Denied(d) => {
            ensure!(d.budget == "kkiai/w:hourly", "{d:?}");
            d.resets_at.context("an hourly window resets")?
        }
        other => bail!("{other:?}"),
    };
    let now = server_now(&mut conn).await?;
    let reset_us = us(resets_at);
    ensure!(
        reset_us % 4_000_000 == 0,
        "windows are aligned to the epoch"
    );
    ensure!(reset_us > now && reset_us - now <= 4_000_000);
    // The window's hash expires at its end (+ grace), so idle windows disappear.
    let bkey = limits.layout().budget("kkiai/w:hourly");
    let ttl = pttl(&mut conn, &bkey).await?;
    ensure!(
        ttl > 0 && ttl <= (reset_us - now) / 1000 + 60_000 + 5,
        "hourly budget PTTL {ttl}"
    );
    // The total budget never expires.
    ensure!(pttl(&mut conn, &limits.layout().budget("kkiai/w:total")).await? == -1);

    tokio::time::sleep(Duration::from_micros((reset_us - now) as u64 + 20_000)).await;
    // New window: empty again; w2 and wp (reserved in the old window) no longer count here.
    let v = limits.budgets(&b).await?;
    ensure!(v[0].used == 0 && v[0].reserved == 0, "after rollover {v:?}");
    ensure!(v[1].used == M && v[1].reserved == 3 * M, "total {v:?}");
    // wp, still pending (never sent), retried now: it moves to the new window.
    match limits.reserve(&b, "wp", M).await? {
        ReserveOutcome::Reserved(r) => ensure!(!r.already, "{r:?}"),
        o => bail!("{o:?}"),
    }
    let v = limits.budgets(&b).await?;
    ensure!(v[0].reserved == M && v[1].reserved == 3 * M, "moved {v:?}");
    ensure!(reserved(&limits.reserve(&b, "w3", 3 * M).await?));
    // Settling w2 now charges the total but not the new hourly window.
    limits.settle("w2", 2 * M).await?;
    let v = limits.budgets(&b).await?;
    ensure!(v[0].used == 0 && v[0].reserved == 4 * M, "hourly {v:?}");
    ensure!(v[1].used == 3 * M && v[1].reserved == 4 * M, "total {v:?}");
    assert_invariant(&v)?;
    Ok(())
}

/// A small deterministic PRNG (xorshift64*) so the stress test needs no extra dependency and a
/// failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 8 workers run random reservation lifecycles (reserve on random budget sets, commit, settle
/// at or below the reservation, release, or abandon so the lease expires) while a checker
/// reads every budget atomically and never sees `used + reserved > limit`. At the end, with
/// everything closed or expired, each budget's `used` equals the sum of the actual costs its
/// workers settled, and nothing is left reserved.
pub async fn spend_stress(env: &Env, prefix: &str) -> Result<()> {
    const M: u64 = 1_000_000;
    let mut cfg = config(&[("freepik/s", spend_key(Some(100 * M), None, None))]);
    cfg.reservation_lease_ms = 200;
    let k = key("freepik/s");
    let all = vec![
        BudgetRef::Key(k.clone()),
        BudgetRef::Campaign {
            id: "sa".into(),
            limit: 60 * M,
        },
        BudgetRef::Campaign {
            id: "sb".into(),
            limit: 70 * M,
        },
    ];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let limits = env.limits(prefix, &cfg).await?;
        let (all, stop) = (all.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reads = 0u32;
            while !stop.load(Ordering::SeqCst) {
                assert_invariant(&limits.budgets(&all).await?)?;
                reads += 1;
            }
            Ok::<_, anyhow::Error>(reads)
        })
    };
    let mut workers = Vec::new();
    for w in 0..8u64 {
        let limits = env.limits(prefix, &cfg).await?;
        let all = all.clone();
        workers.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w + 1) * 0x1000_0001));
            // Settled actual per budget index.
            let mut settled = [0u64; 3];
            let (mut ok, mut denied) = (0u32, 0u32);
            for j in 0..40 {
                let id = format!("st-{w}-{j}");
                // A random non-empty subset of the three budgets.
                let mask = 1 + rng.below(7);
                let picked: Vec<usize> = (0..3).filter(|i| mask & (1 << i) != 0).collect();
                let refs: Vec<BudgetRef> = picked.iter().map(|&i| all[i].clone()).collect();
                let amount = (1 + rng.below(40)) * M / 10;
                match limits.reserve(&refs, &id, amount).await? {
                    ReserveOutcome::Reserved(r) => {
                        ensure!(!r.already);
                        ok += 1;
                    }
                    ReserveOutcome::Denied(_) => {
                        denied += 1;
                        continue;
                    }
                    other => bail!("{other:?}"),
                }
                match rng.below(10) {
                    // Abandoned before the create call: the lease returns it.
                    0 => {}
                    // Released (or, on a machine slow enough for the 200 ms lease to pass
                    // first, already expired: the money is back either way).
                    1 | 2 => ensure!(matches!(
                        limits.release(&id).await?,
                        ReleaseOutcome::Released
                            | ReleaseOutcome::AlreadyClosed(ReservationState::Expired)
                    )),
                    3 => {
                        limits.commit(&id, None).await?;
                        ensure!(matches!(
                            limits.release(&id).await?,
                            ReleaseOutcome::Released
                                | ReleaseOutcome::AlreadyClosed(ReservationState::Expired)
                        ));
                    }
                    _ => {
                        if limits.commit(&id, Some("t")).await? != CommitOutcome::Committed {
                            continue; // lease passed under load: the money was returned
                        }
                        let actual = amount - rng.below(amount / 2 + 1);
                        match limits.settle(&id, actual).await? {
                            SettleOutcome::Settled {
                                overrun: false,
                                late: false,
                            } => {}
                            other => bail!("settle {other:?}"),
                        }
                        for &i in &picked {
                            settled[i] += actual;
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>((settled, ok, denied))
        }));
    }
    let mut expected = [0u64; 3];
    let (mut ok, mut denied) = (0, 0);
    for r in futures::future::join_all(workers).await {
        let (s, o, d) = r??;
        for i in 0..3 {
            expected[i] += s[i];
        }
        ok += o;
        denied += d;
    }
    stop.store(true, Ordering::SeqCst);
    let reads = checker.await??;
    // Let every abandoned lease pass, then return them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let limits = env.limits(prefix, &cfg).await?;
    limits.reap_expired().await?;
    let v = limits.budgets(&all).await?;
    println!(
        "spend_stress[{prefix}]: {ok} reserved, {denied} denied, {reads} consistent reads; \
         used {:?} µ-units",
        v.iter().map(|b| b.used).collect::<Vec<_>>()
    );
    for (i, b) in v.iter().enumerate() {
        ensure!(
            b.reserved == 0,
            "{} still has {} reserved",
            b.name,
            b.reserved
        );
        ensure!(
            b.used == expected[i],
            "{}: used {} but workers settled {}",
            b.name,
            b.used,
            expected[i]
        );
    }
    ensure!(
        denied > 0,
        "the budgets were never tight; the test proves nothing"
    );
    assert_invariant(&v)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Adaptive rate, parking, reports

/// A 429 seen by one worker slows every worker; a retry hint blocks; successes recover.
pub async fn aimd(env: &Env, prefix: &str) -> Result<()> {
    let mut cfg = config(&[("evolink/r", key_limits(10.0, 1, 5))]);
    cfg.aimd.cooldown_ms = 5_000;
    let a = env.limits(prefix, &cfg).await?;
    let b = env.limits(prefix, &cfg).await?;
    // A worker configured without a cooldown, to walk the rate down to its floor quickly.
    let mut no_cooldown = cfg.clone();
    no_cooldown.aimd.cooldown_ms = 0;
    let c = env.limits(prefix, &no_cooldown).await?;
    let k = key("evolink/r");
    let st = a.on_rate_limited(&k, Op::Create, None).await?;
    ensure!(st.decreased && st.effective_per_s == 5.0, "{st:?}");
    // Seen by another worker, and only for creates.
    let s = b.state(&k).await?;
    ensure!(s.create.effective_per_s == 5.0 && s.create.configured_per_s == 10.0);
    ensure!(s.query.effective_per_s == s.query.configured_per_s);
    // Within the cooldown the same storm does not halve again.
    let st = b.on_rate_limited(&k, Op::Create, None).await?;
    ensure!(!st.decreased && st.effective_per_s == 5.0, "{st:?}");
    // The GCRA uses the lowered rate: the interval is now 200 ms, not 100 ms.
    let adm = b.acquire_timed(&k, Op::Create, 1).await?;
    ensure!(adm.decision == Decision::Allowed);
    ensure!(adm.interval == Duration::from_millis(200), "{adm:?}");
    ensure!(adm.rate_lowered, "a lowered rate is reported: {adm:?}");
    // Only for the operation that was slowed down.
    let q = b.acquire_timed(&k, Op::Query, 1).await?;
    ensure!(!q.rate_lowered, "{q:?}");
    // The floor (5% of 10/s = 0.5/s) holds after many 429s.
    let mut last = 0.0;
    for _ in 0..8 {
        last = c
            .on_rate_limited(&k, Op::Create, None)
            .await?
            .effective_per_s;
    }
    ensure!((last - 0.5).abs() < 1e-9, "floor: {last}");
    let adm = b.acquire_timed(&k, Op::Create, 1).await?;
    ensure!(adm.interval == Duration::from_secs(2), "{adm:?}");
    // Additive increase: +0.2/s per success, back to the configured rate and no further.
    let st = a.on_success(&k, Op::Create).await?;
    ensure!((st.effective_per_s - 0.7).abs() < 1e-6, "{st:?}");
    for _ in 0..60 {
        a.on_success(&k, Op::Create).await?;
    }
    ensure!(b.state(&k).await?.create.effective_per_s == 10.0);
    // Back at the configured rate: admissions (allowed or told to wait) stop asking for
    // success reports.
    let adm = b.acquire_timed(&k, Op::Create, 1).await?;
    ensure!(!adm.rate_lowered, "{adm:?}");
    // A retry hint blocks every worker until it has passed.
    let st = c
        .on_rate_limited(&k, Op::Create, Some(Duration::from_secs(3)))
        .await?;
    let blocked_until = st.blocked_until.context("a hint blocks")?;
    let wait = match b.acquire(&k, Op::Create, 1).await? {
        Decision::Wait(d) => d,
        other => bail!("expected the hint to block, got {other:?}"),
    };
    ensure!(
        wait <= Duration::from_secs(3) && wait > Duration::from_secs(1),
        "{wait:?}"
    );
    let left = blocked_until
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(wait.max(left)).await;
    // The block is over (the hint also halved the rate, which still admits this call).
    ensure!(b.acquire(&k, Op::Create, 1).await? == Decision::Allowed);
    Ok(())
}

/// Parking: a timed park ends by itself; an operator park outranks a timed one; every path
/// reports the reason; routing skips parked and full keys.
pub async fn park_and_pick(env: &Env, prefix: &str) -> Result<()> {
    let mut p1 = key_limits(100.0, 10, 1);
    p1.spend.total = Some(5_000_000);
    let cfg = config(&[("kkiai/p1", p1), ("kkiai/p2", key_limits(100.0, 10, 1))]);
    let limits = env.limits(prefix, &cfg).await?;
    let other = env.limits(prefix, &cfg).await?;
    let mut conn = env.conn().await?;
    let (k1, k2) = (key("kkiai/p1"), key("kkiai/p2"));

    let until = SystemTime::now() + Duration::from_millis(2000);
    let p = limits
        .park_for_error(&k1, motionq_core::ErrorClass::QuotaExhausted, Some(until))
        .await?
        .context("quota_exhausted parks")?;
    ensure!(p.reason == ParkReason::QuotaExhausted && p.until.is_some());
    ensure!(limits
        .park_for_error(&k1, motionq_core::ErrorClass::RateLimited, None)
        .await?
        .is_none());
    // Every path, from another worker, reports it.
    match other.acquire(&k1, Op::Create, 1).await? {
        Decision::Parked(p) => ensure!(p.reason == ParkReason::QuotaExhausted),
        d => bail!("{d:?}"),
    }
    // Except queries: the key's running tasks are paid for and must still be polled.
    ensure!(other.acquire(&k1, Op::Query, 1).await? == Decision::Allowed);
    ensure!(matches!(
        other.acquire_slot(&k1, "j", None).await?,
        SlotDecision::Parked(_)
    ));
    match other.reserve(&[BudgetRef::Key(k1.clone())], "j", 1).await? {
        ReserveOutcome::Denied(Denial {
            reason: DenyReason::KeyParked(p),
            resets_at: Some(_),
            ..
        }) => ensure!(p.reason == ParkReason::QuotaExhausted),
        o => bail!("{o:?}"),
    }
    // Routing: p1 parked, p2 usable.
    ensure!(
        other
            .pick_usable(&[k1.clone(), k2.clone()], Some(1))
            .await?
            == Ok(k2.clone())
    );
    // p2 full: nothing usable, and why.
    ensure!(matches!(
        other.acquire_slot(&k2, "busy", None).await?,
        SlotDecision::Acquired(_)
    ));
    let none = other
        .pick_usable(&[k1.clone(), k2.clone()], None)
        .await?
        .expect_err("no key is usable");
    ensure!(none.summary() == "mixed", "{none}");
    ensure!(none.reasons[0].1.label() == "parked" && none.reasons[1].1.label() == "concurrency");
    ensure!(none.retry_in(SystemTime::now()).is_some());
    // The timed park ends by itself (its hash expires at that time).
    let left = until.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(50)).await;
    ensure!(!exists(&mut conn, &limits.layout().park(&k1)).await?);
    ensure!(other.acquire(&k1, Op::Create, 1).await? == Decision::Allowed);
    ensure!(other.pick_usable(&[k2.clone(), k1.clone()], None).await? == Ok(k1.clone()));
    // Budget as a routing reason.
    let none = other
        .pick_usable(std::slice::from_ref(&k1), Some(6_000_000))
        .await?
        .expect_err("6 does not fit a budget of 5");
    ensure!(none.summary() == "all budget", "{none}");

    // An operator-level park (empty wallet) stays until unparked, and a timed park does not
    // replace it.
    limits
        .park(&k1, ParkReason::InsufficientFunds, None)
        .await?
        .context("parked")?;
    ensure!(pttl(&mut conn, &limits.layout().park(&k1)).await? == -1);
    let st = limits
        .park(
            &k1,
            ParkReason::QuotaExhausted,
            Some(SystemTime::now() + Duration::from_secs(1)),
        )
        .await?
        .context("still parked")?;
    ensure!(st.reason == ParkReason::InsufficientFunds && st.until.is_none());
    ensure!(matches!(
        other.acquire(&k1, Op::Create, 1).await?,
        Decision::Parked(_)
    ));
    ensure!(other.acquire(&k1, Op::Query, 1).await? == Decision::Allowed);
    limits.park(&k2, ParkReason::Auth, None).await?;
    let none = other
        .pick_usable(&[k1.clone(), k2.clone()], None)
        .await?
        .expect_err("both parked");
    ensure!(none.summary() == "all parked", "{none}");
    ensure!(
        none.retry_in(SystemTime::now()).is_none(),
        "only an operator helps"
    );

    // `motionq keys`.
    let keys = other.list_keys().await?;
    ensure!(keys.len() == 2);
    let s1 = &keys[0];
    ensure!(
        s1.key == k1
            && s1.parked.as_ref().map(|p| &p.reason) == Some(&ParkReason::InsufficientFunds)
    );
    ensure!(s1.parked.as_ref().and_then(|p| p.since).is_some());
    ensure!(s1.budgets.len() == 1 && s1.budgets[0].limit == 5_000_000);
    ensure!(keys[1].in_flight == 1 && keys[1].max_concurrent == 1);
    for s in &keys {
        println!("motionq keys[{prefix}]: {s}");
    }
    let line = keys[0].to_string();
    ensure!(
        line.starts_with("kkiai/p1 parked (insufficient_funds, until unparked) | in flight 0/1"),
        "{line}"
    );
    ensure!(line.contains("| total 0 used + 0 reserved of 5"), "{line}");
    ensure!(keys[1]
        .to_string()
        .contains("parked (auth, until unparked) | in flight 1/1"));

    ensure!(limits.unpark(&k1).await?);
    ensure!(!limits.unpark(&k1).await?);
    ensure!(other.acquire(&k1, Op::Create, 1).await? == Decision::Allowed);
    ensure!(other.state(&k1).await?.parked.is_none());
    Ok(())
}

/// Every limiter key carries a TTL so idle keys disappear, except the ones that must not.
pub async fn key_expiry(env: &Env, prefix: &str) -> Result<()> {
    let mut cfg = config(&[("freepik/t", key_limits(1.0, 2, 2))]);
    cfg.idle_ttl_s = 30;
    let limits = env.limits(prefix, &cfg).await?;
    let mut conn = env.conn().await?;
    let k = key("freepik/t");
    let lay = limits.layout().clone();

    // TAT: lives exactly until it is in the past (then the key is equivalent to absent).
    ensure!(limits.acquire(&k, Op::Create, 1).await? == Decision::Allowed);
    let ttl = pttl(&mut conn, &lay.tat(&k, Op::Create)).await?;
    ensure!(ttl > 0 && ttl <= 1001, "TAT PTTL {ttl} (one 1 s interval)");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    ensure!(!exists(&mut conn, &lay.tat(&k, Op::Create)).await?);
    // After it vanished the full burst is there again.
    ensure!(limits.acquire(&k, Op::Create, 1).await? == Decision::Allowed);
    ensure!(limits.acquire(&k, Op::Create, 1).await? == Decision::Allowed);

    // Slots: the ZSET lives as long as its longest lease (+1 s) and goes with the last release.
    limits
        .acquire_slot(&k, "h", Some(Duration::from_millis(500)))
        .await?;
    let ttl = pttl(&mut conn, &lay.slots(&k)).await?;
    ensure!(ttl > 0 && ttl <= 1500, "slots PTTL {ttl}");
    limits.release_slot(&k, "h").await?;
    ensure!(!exists(&mut conn, &lay.slots(&k)).await?);
    // A dead holder's ZSET disappears by itself.
    limits
        .acquire_slot(&k, "dead", Some(Duration::from_millis(100)))
        .await?;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    ensure!(!exists(&mut conn, &lay.slots(&k)).await?, "idle slots key");

    // AIMD state: idle TTL.
    limits.on_rate_limited(&k, Op::Create, None).await?;
    let ttl = pttl(&mut conn, &lay.aimd(&k)).await?;
    ensure!(ttl > 25_000 && ttl <= 30_000, "aimd PTTL {ttl}");
    // ...but at least as long as a retry hint longer than that.
    limits
        .on_rate_limited(&k, Op::Create, Some(Duration::from_secs(120)))
        .await?;
    let ttl = pttl(&mut conn, &lay.aimd(&k)).await?;
    ensure!(ttl > 120_000, "aimd PTTL {ttl} must cover the retry hint");
    Ok(())
}
