//! `/metrics` and `/healthz` for every working process (worker, serve, demo): the metric
//! catalogue of `motionq-metrics`, plus a scrape hook that reads, at scrape time, what lives in
//! Redis: jobs by state per campaign, queue depth per stage, and every configured key's state,
//! in-flight count, effective rate and spend.

use std::net::SocketAddr;

use futures::FutureExt;
use motionq_config::Config;
use motionq_limits::{BudgetWindow, Limits};
use motionq_metrics::{
    CampaignSnapshot, KeyState, Metrics, Operation, ParkReason, QueueSnapshot, ScrapeSnapshot,
    Stage, Window,
};
use motionq_pipeline::StageJob;
use motionq_queue::StreamQueue;
use motionq_store::Store;

/// Installs the scrape hook on `metrics`.
pub async fn install_hook(cfg: &Config, metrics: &Metrics, store: Store) -> anyhow::Result<()> {
    let qcfg = motionq_pipeline::queue_config(cfg)?;
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
        motionq_pipeline::limits_config(cfg),
    )?;
    let m = metrics.clone();
    let backlog_key = motionq_pipeline::collect_backlog_key(&cfg.redis.key_prefix);
    metrics
        .set_scrape_hook(Box::new(move || {
            let store = store.clone();
            let queues = queues.clone();
            let limits = limits.clone();
            let m = m.clone();
            let backlog_key = backlog_key.clone();
            async move {
                let mut snap = ScrapeSnapshot::default();
                for id in store.campaign_ids().await? {
                    let c = store.campaign(&id).await?;
                    let limit = (c.spec.budget_usd.unwrap_or(0.0) * 1e6) as u64;
                    let budget = motionq_limits::BudgetRef::Campaign {
                        id: motionq_pipeline::campaign_budget_id(&id),
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
                    refresh_key(&m, &k);
                }
                Ok(snap)
            }
            .boxed()
        }))
        .await;
    Ok(())
}

fn refresh_key(m: &Metrics, k: &motionq_limits::KeyState) {
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
            b.used as f64 / 1e6,
            b.reserved as f64 / 1e6,
            Some(b.limit as f64 / 1e6),
        );
    }
}

/// Serves `/metrics` and `/healthz` on `addr` until `shutdown` resolves.
pub fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(async move {
        if let Err(e) = motionq_metrics::serve(addr, metrics, || true, shutdown).await {
            tracing::warn!(%addr, error = %e, "metrics endpoint not available");
        }
    });
}
