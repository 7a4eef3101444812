//! `motionq status [<campaign>] [--watch] [--json]` and `motionq keys`.

use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use motionq_config::Config;
use motionq_limits::{BudgetRef, KeyState, Limits};
use motionq_store::{CampaignRecord, Store};
use serde_json::json;

use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Campaign id; all campaigns when omitted.
    pub campaign: Option<String>,
    /// Keep refreshing (progress bar with rate and ETA, keys, latest failures) until every job
    /// is terminal or Ctrl-C. A terminal view: not combined with `--json`.
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: Option<KeysAction>,
    /// Print JSON (also after `park`/`unpark`).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysAction {
    /// Stop using a key (e.g. rotating it) until `unpark`.
    Park { key: String },
    /// Use a parked key again (after topping up, fixing auth, ...).
    Unpark { key: String },
}

const TERMINAL: [&str; 4] = ["stored", "failed", "cancelled", "expired"];
const IN_FLIGHT: [&str; 4] = ["admitted", "submitting", "submitted", "completed"];

fn count(c: &CampaignRecord, states: &[&str]) -> i64 {
    states
        .iter()
        .map(|s| c.counts.get(*s).copied().unwrap_or(0))
        .sum()
}

async fn limits(cfg: &Config, store: &Store) -> Result<Limits, Failure> {
    Limits::new(
        store.conn(),
        &cfg.redis.key_prefix,
        motionq_pipeline::limits_config(cfg),
    )
    .map_err(Failure::operational)
}

fn micro_usd(v: u64) -> f64 {
    v as f64 / 1e6
}

/// Spend of a campaign from its budget in the limiter: (settled, reserved), USD.
async fn campaign_spend(l: &Limits, campaign: &str, budget: Option<f64>) -> Option<(f64, f64)> {
    let limit = (budget.unwrap_or(0.0) * 1e6) as u64;
    let views = l
        .budgets(&[BudgetRef::Campaign {
            id: motionq_pipeline::campaign_budget_id(campaign),
            limit,
        }])
        .await
        .ok()?;
    views
        .first()
        .map(|v| (micro_usd(v.used), micro_usd(v.reserved)))
}

/// The last `n` failures from the campaign's event stream, with their class and message.
async fn recent_failures(store: &Store, campaign: &str, n: usize) -> Vec<(String, String, String)> {
    let mut conn = store.conn();
    let reply: redis::RedisResult<redis::streams::StreamRangeReply> = redis::cmd("XREVRANGE")
        .arg(store.keys().events(campaign))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(2000)
        .query_async(&mut conn)
        .await;
    let mut out = Vec::new();
    let Ok(reply) = reply else { return out };
    for e in reply.ids {
        if e.get::<String>("to").as_deref() != Some("failed") {
            continue;
        }
        let Some(job) = e.get::<String>("job") else {
            continue;
        };
        if out.iter().any(|(j, _, _)| *j == job) {
            continue;
        }
        if let Ok(Some(rec)) = store.job(campaign, &job).await {
            out.push((
                job,
                rec.fields.get("error_class").cloned().unwrap_or_default(),
                rec.fields.get("error_message").cloned().unwrap_or_default(),
            ));
        }
        if out.len() >= n {
            break;
        }
    }
    out
}

/// Why the campaign's admitted jobs wait: from the most recent `waiting: ...` events, the
/// jobs still admitted with a wait reason, grouped by reason (digits ignored: waits and
/// amounts change on every attempt), most jobs first, each with its latest wording.
async fn waiting_reasons(store: &Store, campaign: &str) -> Vec<(String, u64)> {
    let mut conn = store.conn();
    let reply: redis::RedisResult<redis::streams::StreamRangeReply> = redis::cmd("XREVRANGE")
        .arg(store.keys().events(campaign))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(2000)
        .query_async(&mut conn)
        .await;
    let Ok(reply) = reply else {
        return Vec::new();
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut groups: Vec<(String, String, u64)> = Vec::new();
    for e in reply.ids {
        let Some(job) = e.get::<String>("job") else {
            continue;
        };
        if !e
            .get::<String>("detail")
            .is_some_and(|d| d.starts_with("waiting: "))
            || !seen.insert(job.clone())
        {
            continue;
        }
        let Ok(Some(rec)) = store.job(campaign, &job).await else {
            continue;
        };
        let reason = rec.fields.get("wait_reason").cloned().unwrap_or_default();
        if rec.state.as_str() != "admitted" || reason.is_empty() {
            continue;
        }
        let kind: String = reason.chars().filter(|c| !c.is_ascii_digit()).collect();
        match groups.iter_mut().find(|g| g.0 == kind) {
            Some(g) => g.2 += 1,
            None => groups.push((kind, reason, 1)),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.2));
    groups.into_iter().map(|(_, r, n)| (r, n)).collect()
}

fn key_line(k: &KeyState) -> String {
    let state = match &k.parked {
        None => "active".to_string(),
        Some(p) => match p.until {
            Some(u) => format!(
                "parked: {} (for {})",
                p.reason.as_str(),
                humantime::format_duration(Duration::from_secs(
                    u.duration_since(SystemTime::now())
                        .unwrap_or_default()
                        .as_secs()
                ))
            ),
            None => format!(
                "parked: {} (until `motionq keys unpark`)",
                p.reason.as_str()
            ),
        },
    };
    let budgets: Vec<String> = k
        .budgets
        .iter()
        .map(|b| {
            format!(
                "{:?} {:.2}+{:.2}/{:.2}",
                b.window,
                micro_usd(b.used),
                micro_usd(b.reserved),
                micro_usd(b.limit)
            )
            .to_lowercase()
        })
        .collect();
    format!(
        "{:<24} {:<44} in flight {:>3}/{:<3} create {:.2}/s (of {:.2}) {}",
        k.key.to_string(),
        state,
        k.in_flight,
        k.max_concurrent,
        k.create.effective_per_s,
        k.create.configured_per_s,
        budgets.join(" ")
    )
}

fn key_json(k: &KeyState) -> serde_json::Value {
    json!({
        "key": k.key.to_string(),
        "state": if k.parked.is_some() { "parked" } else { "active" },
        "parked_reason": k.parked.as_ref().map(|p| p.reason.as_str().to_string()),
        "in_flight": k.in_flight,
        "max_concurrent": k.max_concurrent,
        "create_rate_effective": k.create.effective_per_s,
        "create_rate_configured": k.create.configured_per_s,
        "budgets": k.budgets.iter().map(|b| json!({
            "name": b.name, "used": micro_usd(b.used), "reserved": micro_usd(b.reserved), "limit": micro_usd(b.limit),
        })).collect::<Vec<_>>(),
    })
}

pub async fn keys(a: &KeysArgs, cfg: &Config) -> Result<(), Failure> {
    let store = super::control::store(cfg).await?;
    let l = limits(cfg, &store).await?;
    match &a.action {
        Some(KeysAction::Park { key }) | Some(KeysAction::Unpark { key }) => {
            let id: motionq_limits::KeyId = key.parse().map_err(|e| {
                Failure::invalid(format!(
                    "{e} (expected <vendor>/<alias>, e.g. evolink/main)"
                ))
            })?;
            l.key_limits(&id).map_err(|_| {
                Failure::invalid(format!("key `{key}` is not in the configuration"))
            })?;
            let park = matches!(a.action, Some(KeysAction::Park { .. }));
            if park {
                l.park(&id, motionq_limits::ParkReason::parse("operator"), None)
                    .await
                    .map_err(Failure::operational)?;
            } else {
                l.unpark(&id).await.map_err(Failure::operational)?;
            }
            if a.json {
                println!(
                    "{}",
                    json!({"key": key, "state": if park { "parked" } else { "active" }, "reason": if park { Some("operator") } else { None }})
                );
            } else if park {
                println!("{key} parked until `motionq keys unpark {key}`");
            } else {
                println!("{key} unparked");
            }
            return Ok(());
        }
        None => {}
    }
    let list = l.list_keys().await.map_err(Failure::operational)?;
    if a.json {
        println!(
            "{}",
            serde_json::Value::Array(list.iter().map(key_json).collect())
        );
    } else if list.is_empty() {
        println!("no vendor keys are configured ([[vendors.<vendor>.keys]] in the config)");
    } else {
        for k in &list {
            println!("{}", key_line(k));
        }
    }
    Ok(())
}

pub async fn run(a: &StatusArgs, cfg: &Config) -> Result<(), Failure> {
    let store = super::control::store(cfg).await?;
    let l = limits(cfg, &store).await?;
    let Some(campaign) = &a.campaign else {
        let ids = store.campaign_ids().await?;
        let mut rows = Vec::new();
        for id in &ids {
            let c = store.campaign(id).await?;
            rows.push((id.clone(), c));
        }
        if a.json {
            let v: Vec<_> = rows
                .iter()
                .map(|(id, c)| json!({"campaign": id, "state": c.state, "jobs_total": c.jobs_total, "counts": c.counts}))
                .collect();
            println!("{}", serde_json::Value::Array(v));
        } else if rows.is_empty() {
            println!("no campaigns (enqueue one with `motionq enqueue <manifest>`)");
        } else {
            for (id, c) in &rows {
                println!(
                    "{:<24} {:<10} {:>7}/{:<7} done  stored {:<7} failed {:<5} in flight {:<6} est ${:.2}",
                    id,
                    c.state,
                    count(c, &TERMINAL),
                    c.jobs_total,
                    count(c, &["stored"]),
                    count(c, &["failed", "expired"]),
                    count(c, &IN_FLIGHT),
                    c.est_expected_usd.unwrap_or(0.0)
                );
            }
        }
        return Ok(());
    };
    if a.watch {
        return watch(&store, &l, campaign).await;
    }
    let c = store.campaign(campaign).await?;
    let spend = campaign_spend(&l, campaign, c.spec.budget_usd).await;
    let failures = recent_failures(&store, campaign, 5).await;
    let waiting = waiting_reasons(&store, campaign).await;
    let keys = l.list_keys().await.map_err(Failure::operational)?;
    let used: Vec<&KeyState> = keys
        .iter()
        .filter(|k| c.spec.vendors.is_empty() || c.spec.vendors.contains(&k.key.vendor()))
        .collect();
    if a.json {
        println!(
            "{}",
            json!({
                "campaign": campaign,
                "state": c.state,
                "jobs_total": c.jobs_total,
                "counts": c.counts,
                "done": count(&c, &TERMINAL),
                "budget_usd": c.spec.budget_usd,
                "estimated_cost_usd": c.est_expected_usd,
                "spent_usd": spend.map(|s| s.0),
                "reserved_usd": spend.map(|s| s.1),
                "keys": used.iter().map(|k| key_json(k)).collect::<Vec<_>>(),
                "recent_failures": failures.iter().map(|(j, cl, m)| json!({"job": j, "error_class": cl, "message": m})).collect::<Vec<_>>(),
                "waiting": waiting.iter().map(|(r, n)| json!({"reason": r, "jobs": n})).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    print_campaign(campaign, &c, spend, &used, &failures);
    if !waiting.is_empty() {
        println!("  waiting (admitted jobs, by reason):");
        for (r, n) in waiting.iter().take(5) {
            println!("    {n} × {r}");
        }
    }
    Ok(())
}

fn print_campaign(
    id: &str,
    c: &CampaignRecord,
    spend: Option<(f64, f64)>,
    keys: &[&KeyState],
    failures: &[(String, String, String)],
) {
    let done = count(c, &TERMINAL);
    let width = 40usize;
    let filled = if c.jobs_total == 0 {
        0
    } else {
        (done as usize * width) / c.jobs_total as usize
    };
    println!("campaign {id} [{}]", c.state);
    println!(
        "  [{}{}] {done}/{} done{}",
        "#".repeat(filled),
        "-".repeat(width - filled),
        c.jobs_total,
        pace(c, done)
    );
    let states: Vec<String> = c.counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!("  jobs: {}", states.join(", "));
    match (spend, c.spec.budget_usd) {
        (Some((s, r)), Some(b)) => println!(
            "  spend: ${s:.2} settled + ${r:.2} reserved of ${b:.2} budget (estimate ${:.2})",
            c.est_expected_usd.unwrap_or(0.0)
        ),
        (Some((s, r)), None) => println!(
            "  spend: ${s:.2} settled + ${r:.2} reserved (no budget; estimate ${:.2})",
            c.est_expected_usd.unwrap_or(0.0)
        ),
        _ => {}
    }
    if !keys.is_empty() {
        println!("  keys:");
        for k in keys {
            println!("    {}", key_line(k));
        }
    }
    if !failures.is_empty() {
        println!("  recent failures:");
        for (j, cl, m) in failures {
            println!("    {j}: {cl}: {m}");
        }
    }
}

/// `, 12.0 jobs/min since enqueue, ETA 3m 20s`: the campaign's average pace since it was
/// enqueued (a snapshot has no shorter window to measure), and the time the rest takes at it.
fn pace(c: &CampaignRecord, done: i64) -> String {
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let elapsed_s = now_ms.saturating_sub(c.created_at_ms) as f64 / 1000.0;
    if done <= 0 || elapsed_s <= 0.0 {
        return String::new();
    }
    let per_min = done as f64 * 60.0 / elapsed_s;
    let left = (c.jobs_total as i64 - done).max(0);
    if left == 0 {
        return format!(", {per_min:.1} jobs/min since enqueue");
    }
    let eta = Duration::from_secs((left as f64 * 60.0 / per_min).round() as u64);
    format!(
        ", {per_min:.1} jobs/min since enqueue, ETA {}",
        humantime::format_duration(eta)
    )
}

/// The `--watch` view: an indicatif bar (rate and ETA over the watch), job counts and spend,
/// and below it the campaign's keys (in flight, parked and why) and its latest failures.
async fn watch(store: &Store, l: &Limits, campaign: &str) -> Result<(), Failure> {
    let c = store.campaign(campaign).await?;
    let bar = ProgressBar::new(c.jobs_total);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta}\n{msg}",
        )
        .expect("static template")
        .progress_chars("##-"),
    );
    bar.set_prefix(campaign.to_string());
    let started = Instant::now();
    loop {
        let c = store.campaign(campaign).await?;
        bar.set_length(c.jobs_total);
        bar.set_position(count(&c, &TERMINAL) as u64);
        let spend = campaign_spend(l, campaign, c.spec.budget_usd).await;
        let states: Vec<String> = c.counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let money = spend
            .map(|(s, r)| format!(" | spent ${s:.2} + ${r:.2} reserved"))
            .unwrap_or_default();
        let mut lines = vec![format!("[{}] {}{money}", c.state, states.join(", "))];
        if let Ok(keys) = l.list_keys().await {
            for k in keys
                .iter()
                .filter(|k| c.spec.vendors.is_empty() || c.spec.vendors.contains(&k.key.vendor()))
            {
                lines.push(format!("  {}", key_line(k)));
            }
        }
        for (j, cl, m) in recent_failures(store, campaign, 3).await {
            lines.push(format!("  failed {j}: {cl}: {m}"));
        }
        bar.set_message(lines.join("\n"));
        if c.jobs_total > 0 && count(&c, &TERMINAL) as u64 >= c.jobs_total {
            bar.finish();
            println!(
                "all {} jobs are terminal after {}",
                c.jobs_total,
                humantime::format_duration(Duration::from_secs(started.elapsed().as_secs()))
            );
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = tokio::signal::ctrl_c() => { bar.abandon(); return Ok(()); }
        }
    }
}
