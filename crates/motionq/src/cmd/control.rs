//! `motionq pause|resume|cancel <campaign>` and `motionq retry <campaign> [--failed] [--expired]
//! [--job ID]`.

use motionq_config::Config;
use motionq_core::JobState;
use motionq_pipeline::ops::{self, CampaignChange, RetryFilter};
use motionq_store::{RedisConn, Store};
use serde_json::json;

use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct CampaignArg {
    /// Campaign id.
    pub campaign: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// Campaign id.
    pub campaign: String,
    /// Retry jobs that failed (default when nothing else is chosen).
    #[arg(long)]
    pub failed: bool,
    /// Retry jobs whose output link expired before it was stored. THIS SPENDS MONEY AGAIN: the
    /// vendor generates (and bills) the video a second time.
    #[arg(long)]
    pub expired: bool,
    /// Retry jobs that were cancelled.
    #[arg(long)]
    pub cancelled: bool,
    /// Only this job.
    #[arg(long)]
    pub job: Option<String>,
    /// Only failures of these error classes (comma-separated, e.g. upstream_transient,rate_limited).
    #[arg(long, value_delimiter = ',')]
    pub class: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn store(cfg: &Config) -> Result<Store, Failure> {
    let conn = RedisConn::connect(&cfg.redis)
        .await
        .map_err(Failure::operational)?;
    Ok(Store::new(conn, &cfg.redis.key_prefix))
}

fn pipeline_err(e: motionq_pipeline::PipelineError) -> Failure {
    Failure::operational(e)
}

#[derive(Debug, Clone, Copy)]
pub enum Action {
    Pause,
    Resume,
    Cancel,
}

pub async fn run(action: Action, a: &CampaignArg, cfg: &Config) -> Result<(), Failure> {
    let s = store(cfg).await?;
    let (change, cancelled) = match action {
        Action::Pause => (ops::pause(&s, &a.campaign).await.map_err(pipeline_err)?, 0),
        Action::Resume => (ops::resume(&s, &a.campaign).await.map_err(pipeline_err)?, 0),
        Action::Cancel => ops::cancel_campaign(&s, &a.campaign)
            .await
            .map_err(pipeline_err)?,
    };
    let verb = match action {
        Action::Pause => "paused",
        Action::Resume => "resumed",
        Action::Cancel => "cancelled",
    };
    match change {
        CampaignChange::Missing => Err(Failure::invalid(format!(
            "unknown campaign `{}`",
            a.campaign
        ))),
        CampaignChange::NotAllowed(state) if !matches!(action, Action::Cancel) => {
            Err(Failure::refused(format!(
                "campaign `{}` is `{state}` and cannot be {verb}",
                a.campaign
            )))
        }
        CampaignChange::Changed(prev) | CampaignChange::NotAllowed(prev) => {
            if a.json {
                println!(
                    "{}",
                    json!({"campaign": a.campaign, "previous_state": prev, "action": verb, "jobs_cancelled": cancelled})
                );
            } else if matches!(action, Action::Cancel) {
                println!(
                    "campaign `{}` {verb} (was {prev}): {cancelled} queued job(s) cancelled; jobs already at a vendor finish and are collected",
                    a.campaign
                );
            } else {
                println!("campaign `{}` {verb} (was {prev})", a.campaign);
            }
            Ok(())
        }
    }
}

pub async fn retry(a: &RetryArgs, cfg: &Config) -> Result<(), Failure> {
    let s = store(cfg).await?;
    s.campaign(&a.campaign).await?;
    let mut states = Vec::new();
    if a.failed || (!a.expired && !a.cancelled) {
        states.push(JobState::Failed);
    }
    if a.expired {
        states.push(JobState::Expired);
        eprintln!("note: retrying expired jobs spends money again: the vendor generates and bills each video a second time");
    }
    if a.cancelled {
        states.push(JobState::Cancelled);
    }
    let n = match &a.job {
        Some(id) => {
            let Some(job) = s.job(&a.campaign, id).await? else {
                return Err(Failure::invalid(format!(
                    "unknown job `{id}` in campaign `{}`",
                    a.campaign
                )));
            };
            let all = [JobState::Failed, JobState::Expired, JobState::Cancelled];
            if !all.contains(&job.state) {
                return Err(Failure::refused(format!(
                    "job `{id}` is `{}`; only failed, expired or cancelled jobs can be retried",
                    job.state
                )));
            }
            let filter = RetryFilter {
                states: vec![job.state],
                error_classes: a.class.clone(),
                job: Some(id.clone()),
            };
            ops::retry_jobs(&s, &a.campaign, &filter)
                .await
                .map_err(pipeline_err)?
        }
        None => {
            let filter = RetryFilter {
                states,
                error_classes: a.class.clone(),
                job: None,
            };
            ops::retry_jobs(&s, &a.campaign, &filter)
                .await
                .map_err(pipeline_err)?
        }
    };
    if a.json {
        println!("{}", json!({"campaign": a.campaign, "jobs_requeued": n}));
    } else {
        println!("{n} job(s) of `{}` sent back to the queue", a.campaign);
    }
    Ok(())
}
