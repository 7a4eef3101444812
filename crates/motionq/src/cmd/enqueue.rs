//! `motionq enqueue <manifest> [--dry-run] [--probe] [--json] [--replace] [--allow-over-budget]`.

use std::path::PathBuf;

use motionq_config::Config;
use motionq_core::pricing::{estimate, Estimate};
use motionq_store::{EnqueueMode, EnqueueRequest, RedisConn, Store};
use serde_json::json;

use crate::exit::Failure;
use crate::manifest_io;

#[derive(Debug, clap::Args)]
pub struct EnqueueArgs {
    /// The manifest (JSON), or `-` for stdin.
    pub manifest: PathBuf,
    /// Validate and print the cost estimate; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Probe media headers first (exact durations make the estimate exact).
    #[arg(long)]
    pub probe: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Replace jobs whose content changed (only jobs not yet submitted) and update campaign
    /// settings.
    #[arg(long)]
    pub replace: bool,
    /// Enqueue even when the worst-case cost exceeds the budget or cannot be computed.
    /// Workers still never spend beyond the budget.
    #[arg(long)]
    pub allow_over_budget: bool,
}

pub async fn run(args: &EnqueueArgs, cfg: &Config) -> Result<(), Failure> {
    let m = manifest_io::read(&args.manifest, cfg)?;
    let v = manifest_io::validate(&m.bytes, cfg, args.probe).await;
    if !args.json || !v.is_valid() {
        manifest_io::print_problems(&v);
    }
    let Some((campaign, jobs)) = v.campaign.as_ref() else {
        if args.json {
            println!("{}", json!({"valid": false, "problems": v.problems}));
        }
        return Err(Failure::invalid(format!(
            "the manifest has {} error(s); nothing was enqueued",
            v.errors().count()
        )));
    };
    let est = estimate(jobs, campaign.routing, campaign.budget_usd, &cfg.prices());
    if args.dry_run {
        if args.json {
            println!(
                "{}",
                json!({
                    "campaign": campaign.id,
                    "jobs_total": jobs.len(),
                    "estimated_cost_usd": est.expected_usd,
                    "worst_case_cost_usd": est.worst_case_usd,
                    "budget_usd": campaign.budget_usd,
                    "fits_budget": est.fits_budget(),
                    "unknown_prices": est.unknown_prices,
                    "jobs_duration_unknown": est.jobs_duration_unknown,
                    "rows": est.rows,
                    "dry_run": true,
                })
            );
        } else {
            print_estimate(&campaign.id, &est, cfg);
            println!("dry run: nothing was written");
        }
        return budget_check(&est, args.allow_over_budget, true);
    }
    budget_check(&est, args.allow_over_budget, false)?;

    let conn = RedisConn::connect(&cfg.redis)
        .await
        .map_err(Failure::operational)?;
    let store = Store::new(conn, &cfg.redis.key_prefix);
    let costs: Vec<Option<f64>> = est.per_job.iter().map(|c| c.expected_usd).collect();
    let summary = store
        .enqueue(EnqueueRequest {
            campaign,
            jobs,
            job_costs: &costs,
            manifest_sha256: &m.sha256,
            expected_usd: est.expected_usd,
            worst_case_usd: est.worst_case_usd,
            mode: if args.replace {
                EnqueueMode::Replace
            } else {
                EnqueueMode::Strict
            },
            chunk: cfg.validation.enqueue_chunk,
        })
        .await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).expect("summary serialises")
        );
    } else {
        print_estimate(&campaign.id, &est, cfg);
        println!(
            "enqueued campaign `{}`: {} jobs ({} new, {} already there, {} replaced); state {}",
            summary.campaign,
            summary.jobs_total,
            summary.jobs_new,
            summary.jobs_existing,
            summary.jobs_replaced,
            summary.state
        );
    }
    Ok(())
}

fn budget_check(est: &Estimate, allow: bool, dry_run: bool) -> Result<(), Failure> {
    let Some(budget) = est.budget_usd else {
        return Ok(());
    };
    let verb = if dry_run { "would refuse" } else { "refusing" };
    match est.fits_budget() {
        Some(true) => Ok(()),
        _ if allow => Ok(()),
        Some(false) => Err(Failure::refused(format!(
            "{verb} to enqueue: the worst-case cost ${:.2} exceeds the campaign budget ${budget:.2} (use --allow-over-budget to enqueue anyway; workers will still stop at the budget)",
            est.worst_case_usd.unwrap_or(0.0)
        ))),
        None => Err(Failure::refused(format!(
            "{verb} to enqueue: the budget ${budget:.2} cannot be checked because the price of {} is not configured (set vendors.<vendor>.price, or use --allow-over-budget)",
            est.unknown_prices.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn money(v: Option<f64>) -> String {
    v.map(|x| format!("${x:.2}"))
        .unwrap_or_else(|| "unknown".into())
}

/// The estimate table.
pub fn print_estimate(campaign: &str, est: &Estimate, cfg: &Config) {
    println!("campaign `{campaign}`: {} jobs", est.jobs);
    println!(
        "{:<12} {:<5} {:>7} {:>10} {:>22} {:>12}",
        "vendor", "tier", "jobs", "billed s", "cost (vendor unit)", "cost USD"
    );
    for r in &est.rows {
        let units = match r.cost_units {
            Some(u) => format!("{u:.2} {}", r.unit),
            None => "price unknown".into(),
        };
        println!(
            "{:<12} {:<5} {:>7} {:>10.0} {:>22} {:>12}",
            r.vendor.as_str(),
            r.tier.as_str(),
            r.jobs,
            r.billed_seconds,
            units,
            money(r.cost_usd)
        );
    }
    println!("expected total: {}", money(est.expected_usd));
    let verdict = match est.fits_budget() {
        Some(true) => " (within budget)".to_string(),
        Some(false) => " (OVER BUDGET)".to_string(),
        None => String::new(),
    };
    match est.budget_usd {
        Some(b) => println!(
            "worst case: {} vs budget ${b:.2}{verdict}",
            money(est.worst_case_usd)
        ),
        None => println!(
            "worst case: {} (no campaign budget set)",
            money(est.worst_case_usd)
        ),
    }
    if est.jobs_duration_unknown > 0 {
        println!(
            "note: {} job(s) have no known video duration and are priced at their orientation's longest output; add video_duration_s or use --probe for an exact estimate",
            est.jobs_duration_unknown
        );
    }
    for v in &est.unknown_prices {
        let _ = cfg;
        println!(
            "note: {} publishes no price; its cost is unknown until vendors.{}.price is configured",
            v.display_name(),
            v.as_str()
        );
    }
}
