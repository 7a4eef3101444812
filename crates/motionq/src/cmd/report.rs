//! `motionq report <campaign> --format csv|json [--out FILE]`: one row per job, totals at the end.
//!
//! Columns (stable; new columns are only ever added at the end):
//!
//! | column | meaning |
//! |---|---|
//! | `job_id` | the job's id |
//! | `state` | queued, admitted, submitting, submitted, completed, stored, failed, cancelled, expired |
//! | `vendor`, `key_alias` | where it ran (the key's configured alias, never the key) |
//! | `task_id` | the vendor's task id |
//! | `generation` | submissions of this job (0 = first); a retry starts a new generation |
//! | `estimated_cost_usd` | the enqueue-time estimate |
//! | `actual_cost_usd`, `actual_cost_units`, `billed_seconds` | what the vendor billed, when known |
//! | `queued_at`, `submitted_at`, `completed_at`, `stored_at` | RFC 3339 UTC timestamps |
//! | `object_url`, `sha256`, `bytes` | the stored output |
//! | `error_class`, `error_message` | why it failed or waits |
//! | `attempts` | create attempts made for the job over all its generations (each written as a submit intent before the call; a rate-limit wait is not one) |
//!
//! The CSV ends with a `TOTAL` row (jobs, estimated and actual cost, bytes); the JSON has a
//! `totals` object.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use motionq_config::Config;
use motionq_store::JobRecord;
use serde_json::json;

use crate::exit::Failure;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Campaign id.
    pub campaign: String,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

pub const COLUMNS: [&str; 20] = [
    "job_id",
    "state",
    "vendor",
    "key_alias",
    "task_id",
    "generation",
    "estimated_cost_usd",
    "actual_cost_usd",
    "actual_cost_units",
    "billed_seconds",
    "queued_at",
    "submitted_at",
    "completed_at",
    "stored_at",
    "object_url",
    "sha256",
    "bytes",
    "error_class",
    "error_message",
    "attempts",
];

fn ts(ms: Option<&String>) -> String {
    ms.and_then(|v| v.parse::<u64>().ok())
        .map(|ms| {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        })
        .unwrap_or_default()
}

/// One job as report cells, in [`COLUMNS`] order.
pub fn row(j: &JobRecord) -> Vec<String> {
    let f = |k: &str| j.fields.get(k).cloned().unwrap_or_default();
    vec![
        j.id.clone(),
        j.state.to_string(),
        f("vendor"),
        f("key_alias"),
        f("task_id"),
        j.fields.get("gen").cloned().unwrap_or_else(|| "0".into()),
        f("est_usd"),
        f("cost_usd"),
        f("cost_units"),
        f("billed_seconds"),
        ts(j.fields.get("created_at")),
        ts(j.fields.get("submitted_at")),
        ts(j.fields.get("completed_at")),
        ts(j.fields.get("stored_at")),
        f("object_url"),
        f("sha256"),
        f("bytes"),
        f("error_class"),
        f("error_message"),
        j.fields
            .get("attempts")
            .cloned()
            .unwrap_or_else(|| "0".into()),
    ]
}

#[derive(Default)]
struct Totals {
    jobs: u64,
    estimated: f64,
    actual: f64,
    bytes: u64,
    by_state: std::collections::BTreeMap<String, u64>,
}

/// Writes the report; returns the number of jobs. Pages of 1,000 jobs are read and written in
/// turn, so a 100,000-job report streams.
pub async fn write_report(
    store: &motionq_store::Store,
    campaign: &str,
    format: Format,
    out: &mut dyn Write,
) -> Result<u64, Failure> {
    store.campaign(campaign).await?;
    let mut totals = Totals::default();
    let csv_err = |e: csv::Error| Failure::operational(format!("writing the report: {e}"));
    let io = |e: std::io::Error| Failure::operational(format!("writing the report: {e}"));
    // Each page is written into a buffer that is flushed to `out` before the next page.
    let csv_page = |rows: &[Vec<String>]| -> Result<Vec<u8>, Failure> {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in rows {
            w.write_record(r).map_err(csv_err)?;
        }
        w.into_inner()
            .map_err(|e| Failure::operational(format!("writing the report: {e}")))
    };
    let is_csv = matches!(format, Format::Csv);
    if is_csv {
        out.write_all(&csv_page(&[COLUMNS
            .iter()
            .map(|c| c.to_string())
            .collect()])?)
            .map_err(io)?;
    }
    let mut json_rows = Vec::new();
    let mut start = 0isize;
    loop {
        let page = store.jobs_page(campaign, start, 1000).await?;
        if page.is_empty() {
            break;
        }
        start += page.len() as isize;
        let mut csv_rows = Vec::new();
        for j in &page {
            let r = row(j);
            totals.jobs += 1;
            totals.estimated += r[6].parse::<f64>().unwrap_or(0.0);
            totals.actual += r[7].parse::<f64>().unwrap_or(0.0);
            totals.bytes += r[16].parse::<u64>().unwrap_or(0);
            *totals.by_state.entry(r[1].clone()).or_default() += 1;
            if is_csv {
                csv_rows.push(r);
            } else {
                json_rows.push(serde_json::Value::Object(
                    COLUMNS
                        .iter()
                        .zip(r)
                        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
                        .collect(),
                ));
            }
        }
        if is_csv {
            out.write_all(&csv_page(&csv_rows)?).map_err(io)?;
        }
    }
    if is_csv {
        {
            let mut total = vec![String::new(); COLUMNS.len()];
            total[0] = "TOTAL".into();
            total[1] = format!("{} jobs", totals.jobs);
            total[6] = format!("{:.4}", totals.estimated);
            total[7] = format!("{:.4}", totals.actual);
            total[16] = totals.bytes.to_string();
            out.write_all(&csv_page(&[total])?).map_err(io)?;
        }
    } else {
        {
            let doc = json!({
                "campaign": campaign,
                "columns": COLUMNS,
                "jobs": json_rows,
                "totals": {
                    "jobs": totals.jobs,
                    "by_state": totals.by_state,
                    "estimated_cost_usd": totals.estimated,
                    "actual_cost_usd": totals.actual,
                    "bytes": totals.bytes,
                },
            });
            serde_json::to_writer_pretty(&mut *out, &doc)
                .map_err(|e| Failure::operational(e.to_string()))?;
            writeln!(out).map_err(io)?;
        }
    }
    Ok(totals.jobs)
}

pub async fn run(a: &ReportArgs, cfg: &Config) -> Result<(), Failure> {
    let store = super::control::store(cfg).await?;
    match &a.out {
        Some(p) => {
            let f = std::fs::File::create(p)
                .map_err(|e| Failure::operational(format!("{}: {e}", p.display())))?;
            let mut w = std::io::BufWriter::new(f);
            let n = write_report(&store, &a.campaign, a.format, &mut w).await?;
            w.flush().map_err(|e| Failure::operational(e.to_string()))?;
            eprintln!("wrote {n} job(s) to {}", p.display());
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            write_report(&store, &a.campaign, a.format, &mut lock).await?;
        }
    }
    Ok(())
}
