//! The poll stage: one delayed message per in-flight task ("poll chain"), intervals growing
//! with the task's age, the key's query rate respected, the concurrency lease renewed.

use std::time::{Duration, SystemTime};

use motionq_core::{ErrorClass, JobState, Vendor};
use motionq_limits::{Decision, KeyId, Op};
use motionq_queue::runtime::BoxDynError;
use motionq_queue::Delivery;
use motionq_store::JobRecord;
use motionq_vendors::{TaskRef, TaskStatus};
use tracing::Instrument;

use crate::error::PipelineError;
use crate::pipeline::{now_ms, JobIds, Pipeline, StageJob, POLL_GATE};
use crate::submit::{fail, gen_of, release_res};

/// Interval before the next poll of a task of age `age`: `clamp(age × factor, min, max)`.
pub fn poll_interval(age: Duration, min: Duration, max: Duration, factor: f64) -> Duration {
    let grown = age.mul_f64(factor.max(0.0));
    grown.clamp(min, max.max(min))
}

/// The handler of the `poll` queue.
pub(crate) async fn handle(p: &Pipeline, msg: StageJob, d: Delivery) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("poll", campaign = %msg.campaign, job = %msg.job, attempt = d.attempt, vendor = tracing::field::Empty, key = tracing::field::Empty);
    async {
        let (c, j) = (&msg.campaign, &msg.job);
        // The gate and the job's record in one round trip.
        let (gate, fields): (i64, std::collections::BTreeMap<String, String>) = POLL_GATE
            .key(p.store.keys().job(c, j))
            .arg(500)
            .invoke_async(&mut p.conn.clone())
            .await
            .map_err(PipelineError::from)?;
        if gate == 0 {
            return Ok(()); // a duplicate of a live chain
        }
        let Some(rec) = p.store.job_from_fields(c, j, fields)? else {
            return Ok(());
        };
        if gate != 1 {
            // Not submitted: hand a completed job to the collector (a crash may have
            // happened between the transition and the push); anything else is done here.
            if rec.state == JobState::Completed {
                p.push_collect(c, j, None).await?;
            }
            return Ok(());
        }
        poll_once(p, &rec, c).await.map_err(Into::into)
    }
    .instrument(span)
    .await
}

async fn schedule(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    delay: Duration,
    fields: &[(&str, String)],
    renewed_at: Option<u64>,
) -> Result<(), PipelineError> {
    let mut fields = fields.to_vec();
    if let Some(at) = renewed_at {
        fields.push(("slot_renewed_at", at.to_string()));
    }
    if p.touch(c, &rec.id, JobState::Submitted, Some(delay), &fields)
        .await?
    {
        p.push_poll(c, &rec.id, delay).await?;
    }
    Ok(())
}

async fn poll_once(p: &Pipeline, rec: &JobRecord, c: &str) -> Result<(), PipelineError> {
    let f = |k: &str| rec.fields.get(k).cloned().unwrap_or_default();
    let Ok(vendor) = f("vendor").parse::<Vendor>() else {
        fail(
            p,
            rec,
            c,
            JobState::Submitted,
            "invalid_request",
            "submitted job without a vendor",
        )
        .await?;
        return Ok(());
    };
    let key = KeyId::new(vendor, f("key_alias"))?;
    let span = tracing::Span::current();
    span.record("vendor", vendor.as_str());
    span.record("key", key.alias());
    let task_id = f("task_id");
    let ids = JobIds::new(c, &rec.id, gen_of(rec));
    let Some(client) = p.clients.get(&key) else {
        // The key left the config; keep the chain alive slowly so an operator can fix it.
        tracing::warn!(%key, "key not configured: cannot poll");
        return schedule(p, rec, c, p.opts.poll_max, &[], None).await;
    };
    // The vendor task still runs: keep its slot, renewing the lease once a quarter of it has
    // passed since it was taken (the intent) or last renewed, not on every poll.
    let renewed_at = keep_slot(p, rec, &key, &ids).await?;
    let admission = p.limits.acquire_timed(&key, Op::Query, 1).await?;
    // Successes are reported to the adaptive rate only while it is lowered after a 429.
    let raise_rate = admission.rate_lowered;
    match admission.decision {
        Decision::Allowed => {}
        Decision::Wait(w) => {
            let delay = w.max(Duration::from_millis(50));
            return schedule(p, rec, c, delay, &[], renewed_at).await;
        }
        Decision::Parked(_) => return schedule(p, rec, c, p.opts.poll_max, &[], renewed_at).await,
    }
    let submitted_at = f("submitted_at")
        .parse::<u64>()
        .unwrap_or_else(|_| now_ms());
    let age = Duration::from_millis(now_ms().saturating_sub(submitted_at));
    match p
        .vendor_call(
            &key,
            motionq_metrics::Operation::Query,
            client.query(&TaskRef {
                task_id: task_id.clone(),
                tier: rec.spec.tier,
            }),
        )
        .await
    {
        Ok(st) => match st.status {
            TaskStatus::Pending | TaskStatus::Processing => {
                if raise_rate {
                    let _ = p.limits.on_success(&key, Op::Query).await;
                }
                let next = poll_interval(
                    age,
                    p.opts.poll_min,
                    p.opts.poll_max,
                    p.opts.poll_age_factor,
                );
                let progress = st.progress.map(|x| x.to_string()).unwrap_or_default();
                schedule(
                    p,
                    rec,
                    c,
                    next,
                    &[
                        ("vendor_status", st.raw_status.clone()),
                        ("progress", progress),
                        ("poll_errors", "0".into()),
                    ],
                    renewed_at,
                )
                .await
            }
            TaskStatus::Completed {
                output_url,
                expires_at_hint,
                billed_seconds,
                vendor_charge,
            } => {
                if raise_rate {
                    let _ = p.limits.on_success(&key, Op::Query).await;
                }
                completed(
                    p,
                    rec,
                    c,
                    vendor,
                    &key,
                    &ids,
                    &output_url,
                    expires_at_hint,
                    billed_seconds,
                    vendor_charge,
                )
                .await
            }
            TaskStatus::Failed {
                class,
                code,
                message,
            } => task_failed(p, rec, c, &key, &ids, class, code, &message).await,
        },
        Err(e) => {
            let errors = f("poll_errors").parse::<u32>().unwrap_or(0) + 1;
            tracing::info!(error = %e, errors, "poll failed");
            if e.class == ErrorClass::RateLimited {
                p.limits
                    .on_rate_limited(&key, Op::Query, e.retry_after)
                    .await?;
            }
            if e.class == ErrorClass::NotFound && errors >= 3 {
                // The vendor does not know the task: nothing runs, nothing is charged.
                release_res(p, &ids.res_key).await?;
                release_res(p, &ids.res_campaign).await?;
                p.limits.release_slot(&key, &ids.holder).await?;
                fail(p, rec, c, JobState::Submitted, "not_found", &e.to_string()).await?;
                return Ok(());
            }
            // A paid task is never abandoned: keep polling, backing off up to poll_max.
            let delay = p
                .retry
                .ceiling(errors)
                .clamp(p.opts.poll_min, p.opts.poll_max);
            let delay = e.retry_after.map_or(delay, |r| r.max(delay));
            p.metrics
                .retry(motionq_metrics::Stage::Poll, e.class, delay);
            schedule(
                p,
                rec,
                c,
                delay,
                &[
                    ("poll_errors", errors.to_string()),
                    ("last_error", e.to_string()),
                ],
                renewed_at,
            )
            .await
        }
    }
}

/// Renews the job's concurrency lease on its key when a quarter of the lease has passed since
/// it was taken (at the submit intent, `intent_at`) or last renewed (`slot_renewed_at`), and
/// takes the slot again if the lease was lost meanwhile. Returns the renewal time to record,
/// `None` when no renewal was due.
async fn keep_slot(
    p: &Pipeline,
    rec: &JobRecord,
    key: &KeyId,
    ids: &JobIds,
) -> Result<Option<u64>, PipelineError> {
    let at = |k: &str| {
        rec.fields
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let since = at("intent_at").max(at("slot_renewed_at"));
    let lease = p.limits.key_limits(key)?.lease_ttl();
    let now = now_ms();
    if now.saturating_sub(since) < (lease / 4).as_millis() as u64 {
        return Ok(None);
    }
    if p.limits.renew_slot(key, &ids.holder, None).await?.is_none() {
        let _ = p.limits.acquire_slot(key, &ids.holder, None).await?;
    }
    Ok(Some(now))
}

#[allow(clippy::too_many_arguments)]
async fn completed(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    vendor: Vendor,
    key: &KeyId,
    ids: &JobIds,
    output_url: &str,
    expires_hint: Option<Duration>,
    billed: Option<f64>,
    vendor_charge: Option<String>,
) -> Result<(), PipelineError> {
    let secs = billed
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or_else(|| p.job_seconds(rec, vendor));
    let (units, usd) = p.cost(vendor, rec.spec.tier, secs);
    settle(p, &ids.res_key, units.unwrap_or(0)).await?;
    if let Some(u) = usd {
        p.metrics
            .spend_settled(vendor, key.alias(), c, u as f64 / 1e6);
    }
    if let Some(at) = rec
        .fields
        .get("submitted_at")
        .and_then(|v| v.parse::<u64>().ok())
    {
        p.metrics.generation_time(
            vendor,
            rec.spec.tier,
            Duration::from_millis(now_ms().saturating_sub(at)),
        );
    }
    if rec
        .fields
        .get("res_campaign")
        .is_some_and(|r| !r.is_empty())
    {
        settle(p, &ids.res_campaign, usd.unwrap_or(0)).await?;
    }
    p.limits.release_slot(key, &ids.holder).await?;
    let lifetime = expires_hint.unwrap_or(Duration::from_secs(
        vendor.capabilities().output_link_lifetime_s,
    ));
    let expires_at = SystemTime::now() + lifetime;
    let expires_ms = expires_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let fields = [
        ("output_url", output_url.to_string()),
        ("output_expires_at", expires_ms.to_string()),
        ("billed_seconds", format!("{secs}")),
        (
            "cost_units",
            units
                .map(|u| format!("{}", u as f64 / 1e6))
                .unwrap_or_default(),
        ),
        (
            "cost_usd",
            usd.map(|u| format!("{}", u as f64 / 1e6))
                .unwrap_or_default(),
        ),
        ("vendor_charge", vendor_charge.unwrap_or_default()),
        ("completed_at", now_ms().to_string()),
        ("next_poll_at", String::new()),
    ];
    let moved = p
        .transition(
            c,
            &rec.id,
            &[JobState::Submitted],
            JobState::Completed,
            "vendor task completed",
            &fields,
        )
        .await?;
    if matches!(moved, motionq_store::Transition::Moved(_)) {
        tracing::info!(billed_seconds = secs, "completed");
        p.push_collect(c, &rec.id, Some(expires_ms)).await?;
    }
    Ok(())
}

async fn settle(p: &Pipeline, id: &str, amount: u64) -> Result<(), PipelineError> {
    match p.limits.settle(id, amount).await {
        Ok(motionq_limits::SettleOutcome::Settled { overrun: true, .. }) => {
            tracing::warn!(reservation = id, "actual cost exceeded the reservation");
            Ok(())
        }
        Ok(_) | Err(motionq_limits::LimitsError::UnknownReservation(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn task_failed(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    key: &KeyId,
    ids: &JobIds,
    class: ErrorClass,
    code: Option<String>,
    message: &str,
) -> Result<(), PipelineError> {
    // Vendors refund failed tasks.
    release_res(p, &ids.res_key).await?;
    release_res(p, &ids.res_campaign).await?;
    p.limits.release_slot(key, &ids.holder).await?;
    let failures = rec
        .fields
        .get("vendor_failures")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    let text = format!(
        "{}{}",
        code.as_deref()
            .map(|c| format!("[{c}] "))
            .unwrap_or_default(),
        message
    );
    if class == ErrorClass::UpstreamTransient && failures < p.opts.vendor_retry_limit {
        // The vendor's own problem: submit again under a new generation (new idempotency key,
        // new reservations). The failed vendor is remembered so routing tries the job's other
        // allowed vendors first (`failed_vendors`, see `submit::route`).
        let mut failed_vendors = rec
            .fields
            .get("failed_vendors")
            .cloned()
            .unwrap_or_default();
        if !failed_vendors
            .split(',')
            .any(|v| v == key.vendor().as_str())
        {
            if !failed_vendors.is_empty() {
                failed_vendors.push(',');
            }
            failed_vendors.push_str(key.vendor().as_str());
        }
        let fields = [
            ("gen", (gen_of(rec) + 1).to_string()),
            ("vendor_failures", (failures + 1).to_string()),
            ("failed_vendors", failed_vendors),
            ("last_error", text.clone()),
            ("task_id", String::new()),
            ("vendor", String::new()),
            ("key_alias", String::new()),
            ("idem_key", String::new()),
            ("res_key", String::new()),
            ("res_campaign", String::new()),
            ("next_poll_at", String::new()),
        ];
        let moved = p
            .transition(
                c,
                &rec.id,
                &[JobState::Submitted],
                JobState::Admitted,
                &format!("vendor task failed ({text}); submitting again"),
                &fields,
            )
            .await?;
        if matches!(moved, motionq_store::Transition::Moved(_)) {
            p.push_submit(c, &rec.id).await?;
        }
        return Ok(());
    }
    fail(p, rec, c, JobState::Submitted, class.as_str(), &text).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_grows_with_age_and_is_capped() {
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(30));
        assert_eq!(poll_interval(Duration::ZERO, min, max, 0.2), min);
        assert_eq!(
            poll_interval(Duration::from_secs(50), min, max, 0.2),
            Duration::from_secs(10)
        );
        assert_eq!(poll_interval(Duration::from_secs(3600), min, max, 0.2), max);
        let a = poll_interval(Duration::from_secs(20), min, max, 0.2);
        let b = poll_interval(Duration::from_secs(40), min, max, 0.2);
        assert!(b > a);
    }
}
