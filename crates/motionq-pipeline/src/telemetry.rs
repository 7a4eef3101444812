//! What a working process (worker, demo) shows on `/metrics` beyond the events it records
//! itself: a scrape hook that reads, at scrape time, what lives in Redis (jobs by state per
//! campaign, queue depth per stage including the collect backlog, and every configured key's
//! state, in-flight count, effective rate and spend), and a `/healthz` probe that follows the
//! process's Redis connection.
//!
//! Both live here, not in the binary, so the live Prometheus test observes exactly the hook a
//! worker installs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use motionq_config::Config;
use motionq_core::Vendor;
use motionq_limits::{BudgetWindow, Limits};
use motionq_metrics::{
    CampaignSnapshot, KeyState, Metrics, Operation, ParkReason, QueueSnapshot, ScrapeSnapshot,
    Stage, Window,
};
use motionq_queue::StreamQueue;
use motionq_store::Store;

use crate::StageJob;

/// Installs on `metrics` the scrape hook that reads campaigns, queues and keys from Redis.
///
/// Key budgets are kept in the vendor's unit; the `motionq_key_spend_*_usd` gauges convert
/// them with the vendor's configured `usd_per_unit`. A vendor whose unit has no configured USD
/// value (Freepik by default) exports no key spend series rather than a wrong one.
pub async fn install_scrape_hook(
    cfg: &Config,
    metrics: &Metrics,
    store: Store,
) -> anyhow::Result<()> {
    let qcfg = crate::queue_config(cfg)?;
    let mut queues = Vec::new();
    for (stage, name) in [
        (Stage::Submit, "submit"),
        (Stage::Poll, "poll"),
        (Stage::Collect, "collect"),
    ] {
        let q = StreamQueue::<StageJob>::with_conn(store.conn(), &cfg.redis, name, qcfg.clone())?;
        queues.push((stage, q));
    }
    let limits = Limits::new(
        store.conn(),
        &cfg.redis.key_prefix,
        crate::limits_config(cfg),
    )?;
    let usd_per_unit: Arc<Vec<(Vendor, f64)>> = Arc::new(
        cfg.vendors
            .iter()
            .filter_map(|(v, vc)| Some((*v, vc.price.usd_per_unit?)))
            .collect(),
    );
    let m = metrics.clone();
    let backlog_key = crate::collect_backlog_key(&cfg.redis.key_prefix);
    metrics
        .set_scrape_hook(Box::new(move || {
            let store = store.clone();
            let queues = queues.clone();
            let limits = limits.clone();
            let m = m.clone();
            let backlog_key = backlog_key.clone();
            let usd_per_unit = usd_per_unit.clone();
            Box::pin(async move {
                let mut snap = ScrapeSnapshot::default();
                for id in store.campaign_ids().await? {
                    let c = store.campaign(&id).await?;
                    let limit = (c.spec.budget_usd.unwrap_or(0.0) * 1e6) as u64;
                    let budget = motionq_limits::BudgetRef::Campaign {
                        id: crate::campaign_budget_id(&id),
                        limit,
                    };
                    if let Some(b) = limits.budgets(&[budget]).await?.first() {
                        m.set_campaign_spend(
                            &id,
                            b.used as f64 / 1e6,
                            b.reserved as f64 / 1e6,
                            c.spec.budget_usd,
                        );
                    }
                    snap.campaigns.push(CampaignSnapshot {
                        campaign: id,
                        state: c.state.clone(),
                        jobs_enqueued: c.jobs_total,
                        jobs_by_state: c
                            .counts
                            .iter()
                            .filter_map(|(s, n)| Some((s.parse().ok()?, (*n).max(0) as u64)))
                            .collect(),
                    });
                }
                for (stage, q) in &queues {
                    let s = q.stats().await?;
                    // Completed jobs wait on the collect backlog (earliest expiry first) until
                    // a collector has room: they are the collect stage's unread work too.
                    let backlog: u64 = if *stage == Stage::Collect {
                        redis::cmd("ZCARD")
                            .arg(&backlog_key)
                            .query_async(&mut store.conn())
                            .await?
                    } else {
                        0
                    };
                    snap.queues.push(QueueSnapshot {
                        stage: *stage,
                        unread: s.unread + backlog,
                        pending: s.pending,
                        delayed: s.delayed,
                        dead: s.dead,
                    });
                }
                for k in limits.list_keys().await? {
                    let usd = usd_per_unit
                        .iter()
                        .find(|(v, _)| *v == k.key.vendor())
                        .map(|(_, u)| *u);
                    refresh_key(&m, &k, usd);
                }
                Ok(snap)
            })
        }))
        .await;
    Ok(())
}

/// One key's gauges from its Redis state; `usd_per_unit` converts its budgets (kept in the
/// vendor's unit, in millionths) to USD, `None` leaves the spend series out.
fn refresh_key(m: &Metrics, k: &motionq_limits::KeyState, usd_per_unit: Option<f64>) {
    let (vendor, alias) = (k.key.vendor(), k.key.alias());
    m.set_in_flight(vendor, alias, k.in_flight, k.max_concurrent);
    m.set_effective_rate(
        vendor,
        alias,
        Operation::Create,
        k.create.effective_per_s,
        k.create.configured_per_s,
    );
    m.set_effective_rate(
        vendor,
        alias,
        Operation::Query,
        k.query.effective_per_s,
        k.query.configured_per_s,
    );
    let state = match &k.parked {
        None => KeyState::Active,
        Some(p) => KeyState::Parked(match p.reason {
            motionq_limits::ParkReason::QuotaExhausted => ParkReason::QuotaExhausted,
            motionq_limits::ParkReason::InsufficientFunds => ParkReason::InsufficientFunds,
            motionq_limits::ParkReason::Auth => ParkReason::Auth,
            motionq_limits::ParkReason::Forbidden => ParkReason::Forbidden,
            motionq_limits::ParkReason::Operator => ParkReason::Operator,
            _ => ParkReason::Other,
        }),
    };
    m.set_key_state(vendor, alias, state);
    let Some(usd_per_unit) = usd_per_unit else {
        return;
    };
    let usd = usd_per_unit / 1e6;
    for b in &k.budgets {
        let window = match b.window {
            BudgetWindow::Hourly => Window::Hourly,
            BudgetWindow::Daily => Window::Daily,
            BudgetWindow::Total => Window::Total,
            BudgetWindow::Campaign => continue,
        };
        m.set_spend(
            vendor,
            alias,
            window,
            b.used as f64 * usd,
            b.reserved as f64 * usd,
            Some(b.limit as f64 * usd),
        );
    }
}

/// A `/healthz` probe for a worker: a background task `PING`s Redis every `every`; the probe
/// answers healthy while the last ping succeeded (and before the first one, so a starting
/// worker is not reported down). The task ends when `store`'s last clone is dropped with the
/// runtime.
pub fn redis_health(store: Store, every: Duration) -> impl Fn() -> bool + Send + Sync + 'static {
    let ok = Arc::new(AtomicBool::new(true));
    let flag = ok.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let ping = tokio::time::timeout(every, async {
                redis::cmd("PING")
                    .query_async::<String>(&mut store.conn())
                    .await
            })
            .await;
            let up = matches!(ping, Ok(Ok(ref s)) if s == "PONG");
            if flag.swap(up, Ordering::Relaxed) != up {
                if up {
                    tracing::info!("redis reachable again: /healthz healthy");
                } else {
                    tracing::warn!("redis unreachable: /healthz reports unhealthy");
                }
            }
        }
    });
    move || ok.load(Ordering::Relaxed)
}
