//! Operator helpers behind `motionq pause | resume | cancel | retry`.

use motionq_core::JobState;
use motionq_store::{Store, Transition};

use crate::error::PipelineError;
use crate::pipeline::CAMPAIGN_STATE;

/// Outcome of a campaign state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignChange {
    /// Changed; holds the previous state.
    Changed(String),
    /// Not in a state that allows it; holds the current state. Nothing changed.
    NotAllowed(String),
    /// No such campaign.
    Missing,
}

async fn set_state(
    store: &Store,
    campaign: &str,
    from: &str,
    to: &str,
) -> Result<CampaignChange, PipelineError> {
    let (status, state): (String, String) = CAMPAIGN_STATE
        .key(store.keys().meta(campaign))
        .arg(from)
        .arg(to)
        .invoke_async(&mut store.conn())
        .await?;
    Ok(match status.as_str() {
        "ok" => CampaignChange::Changed(state),
        "wrong_state" => CampaignChange::NotAllowed(state),
        _ => CampaignChange::Missing,
    })
}

/// Pauses an active campaign: the feeder skips it at once; admitted jobs go back to `queued`
/// when the submit stage sees them; submitted tasks finish (they are paid for).
pub async fn pause(store: &Store, campaign: &str) -> Result<CampaignChange, PipelineError> {
    set_state(store, campaign, "active", "paused").await
}

/// Resumes a paused campaign.
pub async fn resume(store: &Store, campaign: &str) -> Result<CampaignChange, PipelineError> {
    set_state(store, campaign, "paused", "active").await
}

/// Cancels a campaign: its queued jobs are moved to `cancelled` now (and by every feeder
/// round after), admitted ones when the submit stage sees them. Jobs already sent to a vendor
/// run to completion and are collected (they are paid for).
pub async fn cancel_campaign(
    store: &Store,
    campaign: &str,
) -> Result<(CampaignChange, u64), PipelineError> {
    let ch = set_state(store, campaign, "active,paused,enqueuing", "cancelled").await?;
    let mut cancelled = 0u64;
    if matches!(
        ch,
        CampaignChange::Changed(_) | CampaignChange::NotAllowed(_)
    ) {
        let keys = store.keys();
        loop {
            let moved: Vec<String> = crate::pipeline::ADMIT
                .key(keys.queued(campaign))
                .key(keys.counts(campaign))
                .key(keys.events(campaign))
                .key(format!(
                    "{}inflight",
                    keys.job(campaign, "").trim_end_matches("job:")
                ))
                .arg(1000)
                .arg(1_000_000)
                .arg(keys.job(campaign, ""))
                .arg("cancelled")
                .arg("campaign cancelled")
                .invoke_async(&mut store.conn())
                .await?;
            if moved.is_empty() {
                break;
            }
            cancelled += moved.len() as u64;
        }
    }
    Ok((ch, cancelled))
}

/// Which jobs [`retry_jobs`] resubmits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryFilter {
    /// States to retry: any of `failed`, `expired`, `cancelled`.
    pub states: Vec<JobState>,
    /// Only jobs whose `error_class` is one of these (empty: any).
    pub error_classes: Vec<String>,
    /// Only this job (`motionq retry --job ID`).
    pub job: Option<String>,
}

impl Default for RetryFilter {
    fn default() -> Self {
        Self {
            states: vec![JobState::Failed],
            error_classes: Vec::new(),
            job: None,
        }
    }
}

/// Sends matching terminal jobs back to `queued` under a new submission generation (new
/// idempotency key and reservations), clearing their error and task fields. **A retried job
/// is paid for again** when it had reached the vendor (expired outputs, unreconcilable
/// submissions). Returns how many jobs were re-queued.
pub async fn retry_jobs(
    store: &Store,
    campaign: &str,
    filter: &RetryFilter,
) -> Result<u64, PipelineError> {
    let allowed: Vec<JobState> = filter
        .states
        .iter()
        .copied()
        .filter(|s| {
            matches!(
                s,
                JobState::Failed | JobState::Expired | JobState::Cancelled
            )
        })
        .collect();
    if allowed.is_empty() {
        return Ok(0);
    }
    let mut n = 0u64;
    let mut start = 0isize;
    loop {
        let page = store.jobs_page(campaign, start, 500).await?;
        if page.is_empty() {
            break;
        }
        start += page.len() as isize;
        for rec in page {
            if !allowed.contains(&rec.state) || filter.job.as_ref().is_some_and(|j| *j != rec.id) {
                continue;
            }
            let class = rec.fields.get("error_class").cloned().unwrap_or_default();
            if !filter.error_classes.is_empty() && !filter.error_classes.contains(&class) {
                continue;
            }
            let gen = crate::submit::gen_of(&rec) + 1;
            let mut fields: Vec<(&str, String)> = [
                "error_class",
                "error_message",
                "failed_at",
                "task_id",
                "vendor",
                "key_alias",
                "idem_key",
                "intent_at",
                "res_key",
                "res_campaign",
                "output_url",
                "output_expires_at",
                "first_error_at",
                "vendor_failures",
                "failed_vendors",
                "wait_reason",
                "next_poll_at",
                "poll_errors",
                "last_running_age_ms",
            ]
            .iter()
            .map(|f| (*f, String::new()))
            .collect();
            fields.push(("gen", gen.to_string()));
            let t = store
                .transition(
                    campaign,
                    &rec.id,
                    &allowed,
                    JobState::Queued,
                    &format!("retried by operator (generation {gen})"),
                    &fields,
                )
                .await?;
            if matches!(t, Transition::Moved(_)) {
                n += 1;
            }
        }
    }
    Ok(n)
}
