//! The collect stage: `completed` jobs are streamed into object storage by
//! [`motionq_collect::Collector`] and become `stored` (or `expired` / `failed`).

use std::time::{Duration, SystemTime};

use motionq_collect::{CollectRequest, ErrorClass as CollectClass};
use motionq_core::JobState;
use motionq_queue::runtime::BoxDynError;
use motionq_queue::Delivery;
use motionq_store::JobRecord;
use tracing::Instrument;

use crate::pipeline::{now_ms, LockedJob, Pipeline, StageJob};
use crate::submit::fail;
use crate::PipelineError;

/// The sidecar stored next to the video: the job record (spec and every stage field).
pub(crate) fn sidecar(c: &str, rec: &JobRecord) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("campaign".into(), c.into());
    m.insert("job_id".into(), rec.id.clone().into());
    m.insert(
        "spec".into(),
        serde_json::to_value(&rec.spec).unwrap_or_default(),
    );
    m.insert(
        "vendors".into(),
        serde_json::to_value(&rec.vendors).unwrap_or_default(),
    );
    for (k, v) in &rec.fields {
        if k == "labels" {
            if let Ok(l) = serde_json::from_str::<serde_json::Value>(v) {
                m.insert(k.clone(), l);
                continue;
            }
        }
        m.entry(k.clone()).or_insert_with(|| v.clone().into());
    }
    serde_json::Value::Object(m)
}

/// The handler of the `collect` queue.
pub(crate) async fn handle(p: &Pipeline, msg: StageJob, d: Delivery) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("collect", campaign = %msg.campaign, job = %msg.job, attempt = d.attempt);
    async {
        let (c, j) = (&msg.campaign, &msg.job);
        let Some(lj) = p.lock_job(c, j).await? else {
            return Err(
                motionq_queue::runtime::DeferredError::new(crate::submit::Waiting(
                    "another worker holds this job".into(),
                ))
                .into(),
            );
        };
        let lease = lj.lease.clone();
        let r = p.keeping_job_lock(c, j, &lease, run(p, c, j, lj, &d)).await;
        p.unlock_job(c, j, &lease.token).await;
        r
    }
    .instrument(span)
    .await
}

async fn run(
    p: &Pipeline,
    c: &str,
    j: &str,
    lj: LockedJob,
    d: &Delivery,
) -> Result<(), BoxDynError> {
    let Some(rec) = lj.rec else {
        return Ok(());
    };
    if rec.state != JobState::Completed {
        return Ok(());
    }
    p.touch(
        c,
        j,
        JobState::Completed,
        None,
        &[("seen_at", now_ms().to_string())],
    )
    .await?;
    let Some(collector) = &p.collector else {
        return Err("no [storage] configured: cannot collect".into());
    };
    // Outputs go under the campaign's `output_prefix` (validated as safe relative segments).
    let prefix = p
        .campaign_view(c, lj.campaign_state, lj.spec_rev)
        .await?
        .spec
        .output_prefix
        .clone();
    let scoped;
    let collector = match prefix.as_deref() {
        Some(dir) if !dir.is_empty() => {
            scoped = collector.with_storage(collector.storage().subdir(dir));
            &scoped
        }
        _ => collector,
    };
    let url = match rec.fields.get("output_url").map(|u| u.parse::<url::Url>()) {
        Some(Ok(u)) => u,
        _ => {
            fail(
                p,
                &rec,
                c,
                JobState::Completed,
                "collect_invalid",
                "completed job without a valid output URL",
            )
            .await?;
            return Ok(());
        }
    };
    let expires_at = rec
        .fields
        .get("output_expires_at")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    let req = CollectRequest {
        campaign: c.to_string(),
        job_id: j.to_string(),
        url,
        expires_at,
        sidecar: sidecar(c, &rec),
    };
    let started = std::time::Instant::now();
    let vendor = rec
        .fields
        .get("vendor")
        .and_then(|v| v.parse::<motionq_core::Vendor>().ok());
    match collector.collect(&req).await {
        Ok(done) => {
            if let Some(v) = vendor {
                let now = SystemTime::now();
                let completed = rec
                    .fields
                    .get("completed_at")
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
                p.metrics.collected(
                    v,
                    motionq_metrics::Collected {
                        bytes: if done.skipped_existing { 0 } else { done.bytes },
                        duration: started.elapsed(),
                        lag: completed
                            .and_then(|c| now.duration_since(c).ok())
                            .unwrap_or_default(),
                        headroom: expires_at
                            .and_then(|e| e.duration_since(now).ok())
                            .unwrap_or_default(),
                    },
                );
            }
            tracing::info!(bytes = done.bytes, sha256 = %done.sha256, skipped = done.skipped_existing, "stored");
            p.transition(
                c,
                j,
                &[JobState::Completed],
                JobState::Stored,
                "output stored",
                &[
                    ("object_url", done.url.clone()),
                    ("object_key", done.key.clone()),
                    ("sha256", done.sha256.clone()),
                    ("bytes", done.bytes.to_string()),
                    ("stored_at", now_ms().to_string()),
                ],
            )
            .await?;
            Ok(())
        }
        Err(e) => match e.class() {
            CollectClass::Expired => {
                expire(p, c, j, vendor, &e.to_string()).await?;
                Ok(())
            }
            CollectClass::TooLarge | CollectClass::Invalid => {
                fail(
                    p,
                    &rec,
                    c,
                    JobState::Completed,
                    &format!("collect_{}", e.class().as_str()),
                    &e.to_string(),
                )
                .await?;
                Ok(())
            }
            CollectClass::Transient | CollectClass::Storage => {
                let gone = matches!(
                    &e,
                    motionq_collect::CollectError::Status {
                        status: 403 | 404 | 410,
                        ..
                    }
                );
                if d.attempt >= p.retry.max_attempts && gone {
                    // The link kept refusing before its announced expiry: it expired early.
                    expire(p, c, j, vendor, &format!("{e} on every attempt")).await?;
                    return Ok(());
                }
                if d.attempt >= p.retry.max_attempts {
                    fail(
                        p,
                        &rec,
                        c,
                        JobState::Completed,
                        &format!("collect_{}", e.class().as_str()),
                        &e.to_string(),
                    )
                    .await?;
                    return Ok(());
                }
                Err(e.into())
            }
        },
    }
}

/// Marks a completed job `expired`: its output link is gone before it could be stored.
async fn expire(
    p: &Pipeline,
    c: &str,
    j: &str,
    vendor: Option<motionq_core::Vendor>,
    why: &str,
) -> Result<(), PipelineError> {
    if let Some(v) = vendor {
        p.metrics.output_expired(v);
    }
    let msg = format!("output link expired before it could be stored: {why} (`motionq retry --expired` resubmits, which spends money again)");
    p.transition(
        c,
        j,
        &[JobState::Completed],
        JobState::Expired,
        &msg,
        &[
            ("error_class", "expired".into()),
            ("error_message", msg.clone()),
        ],
    )
    .await?;
    Ok(())
}
