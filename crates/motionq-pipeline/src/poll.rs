//! The poll stage: one delayed message per in-flight task ("poll chain"), intervals growing
//! with the task's age, the key's query rate respected, the concurrency lease renewed.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use motionq_core::{ErrorClass, JobState, Tier, Vendor};
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

/// Interval before the next poll of a task of age `age` when tasks like it usually take
/// `expected` ([`CompletionModel`]). Before `expected`: the plain [`poll_interval`], shortened
/// to land on `expected` (never below `min`). From `expected` on: the plain schedule again,
/// but with the age counted from `expected`, so polls are dense just after the task is likely
/// done and space out again up to `max` if it runs long. Without an estimate: [`poll_interval`].
///
/// Cost: a task that takes longer than `expected` is polled about as often after `expected`
/// as a new task is after its start, so learning adds a bounded number of polls per task
/// (on 90–110 s tasks with the defaults: 18.1 → 21.9, see the unit test
/// `learning_cuts_the_lag_of_finished_tasks_at_a_bounded_poll_cost`), and the key's query
/// rate still caps them all.
pub fn learned_poll_interval(
    age: Duration,
    expected: Option<Duration>,
    min: Duration,
    max: Duration,
    factor: f64,
) -> Duration {
    match expected {
        Some(e) if age < e => poll_interval(age, min, max, factor).min(e - age).max(min),
        Some(e) => poll_interval(age - e, min, max, factor),
        None => poll_interval(age, min, max, factor),
    }
}

/// Samples kept per (vendor, tier).
const MODEL_WINDOW: usize = 128;
/// No estimate until this many tasks were seen finishing.
const MODEL_MIN_SAMPLES: usize = 8;
/// The estimate is this quantile of the samples: early rather than late, because a poll
/// before the end costs one request while a poll after it costs the slot's idle time.
const MODEL_QUANTILE: f64 = 0.2;

/// How long tasks take, per (vendor, tier), as this process has seen them finish: the last
/// [`MODEL_WINDOW`] samples, each the task's age at the last poll that still saw it running
/// (a lower bound of its generation time; ¾ of its age when the first poll already found it
/// done). In memory, per process: a restarted worker polls on the plain schedule until it has
/// seen [`MODEL_MIN_SAMPLES`] tasks of a kind finish.
#[derive(Debug, Default)]
pub struct CompletionModel {
    samples: Mutex<HashMap<(Vendor, Tier), VecDeque<u64>>>,
}

impl CompletionModel {
    /// Records that a task of `vendor`/`tier` took about `ms` milliseconds.
    pub fn record(&self, vendor: Vendor, tier: Tier, ms: u64) {
        let mut m = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let ring = m.entry((vendor, tier)).or_default();
        if ring.len() == MODEL_WINDOW {
            ring.pop_front();
        }
        ring.push_back(ms);
    }

    /// The expected generation time of a `vendor`/`tier` task, once enough were seen.
    pub fn expected(&self, vendor: Vendor, tier: Tier) -> Option<Duration> {
        let m = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let ring = m.get(&(vendor, tier))?;
        if ring.len() < MODEL_MIN_SAMPLES {
            return None;
        }
        let mut v: Vec<u64> = ring.iter().copied().collect();
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * MODEL_QUANTILE).round() as usize;
        Some(Duration::from_millis(v[i]))
    }
}

impl Pipeline {
    /// The learned generation time of `vendor`/`tier` tasks, when learning is on.
    pub(crate) fn expected_generation(&self, vendor: Vendor, tier: Tier) -> Option<Duration> {
        if self.opts.poll_learn {
            self.completion.expected(vendor, tier)
        } else {
            None
        }
    }

    /// Delay of a new task's first poll: `first_poll_delay`, or the learned generation time
    /// when that comes sooner (never below `poll_min`).
    pub(crate) fn first_poll_delay(&self, vendor: Vendor, tier: Tier) -> Duration {
        let first = self.opts.first_poll_delay;
        match self.expected_generation(vendor, tier) {
            Some(e) if e < first => e.max(self.opts.poll_min),
            _ => first,
        }
    }
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
        // Why the task was not queried this time (`poll_wait`, cleared by the next query).
        Decision::Wait(w) => {
            let delay = w.max(Duration::from_millis(50));
            let why = format!("query rate: next query in {w:?}");
            return schedule(p, rec, c, delay, &[("poll_wait", why)], renewed_at).await;
        }
        // Parks stop creates, not queries (`gcra.lua`); kept for a limiter that answers so.
        Decision::Parked(pk) => {
            let why = format!("key parked ({})", pk.reason);
            return schedule(
                p,
                rec,
                c,
                p.opts.poll_max,
                &[("poll_wait", why)],
                renewed_at,
            )
            .await;
        }
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
                let next = learned_poll_interval(
                    age,
                    p.expected_generation(vendor, rec.spec.tier),
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
                        ("poll_wait", String::new()),
                        ("last_running_age_ms", (age.as_millis() as u64).to_string()),
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
                // What this task says about how long such tasks take (see CompletionModel).
                let sample = rec
                    .fields
                    .get("last_running_age_ms")
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or_else(|| age.as_millis() as u64 * 3 / 4);
                p.completion.record(vendor, rec.spec.tier, sample);
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
                p.release_slot_and_wake(&key, &ids.holder).await?;
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
                    ("poll_wait", String::new()),
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
    p.release_slot_and_wake(key, &ids.holder).await?;
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
    p.release_slot_and_wake(key, &ids.holder).await?;
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
            ("last_running_age_ms", String::new()),
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

    const MIN: Duration = Duration::from_secs(2);
    const MAX: Duration = Duration::from_secs(30);
    const FIRST: Duration = Duration::from_secs(2);

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    #[test]
    fn learned_interval_lands_on_the_estimate_then_starts_dense_again() {
        // No estimate: the plain schedule.
        assert_eq!(
            learned_poll_interval(s(100), None, MIN, MAX, 0.2),
            poll_interval(s(100), MIN, MAX, 0.2)
        );
        // Before the estimate: the plain interval (20 s at 100 s), cut to land on it.
        assert_eq!(
            learned_poll_interval(s(100), Some(s(110)), MIN, MAX, 0.2),
            s(10)
        );
        assert_eq!(
            learned_poll_interval(s(50), Some(s(200)), MIN, MAX, 0.2),
            s(10)
        );
        // Never below poll_min, even when the estimate is closer.
        assert_eq!(
            learned_poll_interval(s(109), Some(s(110)), MIN, MAX, 0.2),
            MIN
        );
        // At and after the estimate: growth restarts from poll_min...
        assert_eq!(
            learned_poll_interval(s(110), Some(s(110)), MIN, MAX, 0.2),
            MIN
        );
        assert_eq!(
            learned_poll_interval(s(160), Some(s(110)), MIN, MAX, 0.2),
            s(10)
        );
        // ...and is capped by poll_max for a task that runs far beyond it.
        assert_eq!(
            learned_poll_interval(s(3000), Some(s(110)), MIN, MAX, 0.2),
            MAX
        );
    }

    #[test]
    fn model_needs_samples_keeps_a_window_and_takes_an_early_quantile() {
        let m = CompletionModel::default();
        for i in 0..(MODEL_MIN_SAMPLES as u64 - 1) {
            m.record(Vendor::Kkiai, Tier::Std, 10_000 + i);
        }
        assert_eq!(m.expected(Vendor::Kkiai, Tier::Std), None);
        m.record(Vendor::Kkiai, Tier::Std, 10_007);
        assert!(m.expected(Vendor::Kkiai, Tier::Std).is_some());
        // Kinds are learned apart.
        assert_eq!(m.expected(Vendor::Kkiai, Tier::Pro), None);
        assert_eq!(m.expected(Vendor::Evolink, Tier::Std), None);
        // 1..=100 s: the 20th percentile is about 21 s.
        let m = CompletionModel::default();
        for i in 1..=100u64 {
            m.record(Vendor::Freepik, Tier::Pro, i * 1000);
        }
        assert_eq!(m.expected(Vendor::Freepik, Tier::Pro), Some(s(21)));
        // Only the last MODEL_WINDOW samples count.
        for _ in 0..MODEL_WINDOW {
            m.record(Vendor::Freepik, Tier::Pro, 5_000);
        }
        assert_eq!(m.expected(Vendor::Freepik, Tier::Pro), Some(s(5)));
    }

    /// Deterministic generation times in `[base, base + spread)` ms.
    fn durations(n: usize, base: u64, spread: u64, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                base + (x >> 33) % spread
            })
            .collect()
    }

    /// Polls tasks of the given generation times one after another the way `poll_once` and
    /// `adopt` do (first poll, interval, sample), on simulated time. Returns the mean lag
    /// between a task's end and the poll that saw it (ms), the polls per task, and the model.
    fn simulate(tasks: &[u64], learn: bool, m: &CompletionModel) -> (f64, f64) {
        let (mut lag, mut polls) = (0u64, 0u64);
        for &d in tasks {
            let expected = if learn {
                m.expected(Vendor::Kkiai, Tier::Std)
            } else {
                None
            };
            let mut t = match expected {
                Some(e) if e < FIRST => e.max(MIN),
                _ => FIRST,
            }
            .as_millis() as u64;
            let mut last_running = None;
            loop {
                polls += 1;
                if t >= d {
                    lag += t - d;
                    m.record(Vendor::Kkiai, Tier::Std, last_running.unwrap_or(t * 3 / 4));
                    break;
                }
                last_running = Some(t);
                let next = learned_poll_interval(Duration::from_millis(t), expected, MIN, MAX, 0.2);
                t += next.as_millis() as u64;
            }
        }
        let n = tasks.len() as f64;
        (lag as f64 / n, polls as f64 / n)
    }

    #[test]
    fn learning_cuts_the_lag_of_finished_tasks_at_a_bounded_poll_cost() {
        // Generation times of 90-110 s, as a vendor's queue gives them on a steady day.
        let tasks = durations(400, 90_000, 20_000, 7);
        let (plain_lag, plain_polls) = simulate(&tasks, false, &CompletionModel::default());
        let (learned_lag, learned_polls) = simulate(&tasks, true, &CompletionModel::default());
        println!(
            "plain: mean lag {:.1} s, {:.1} polls/task; learned: mean lag {:.1} s, {:.1} polls/task",
            plain_lag / 1000.0,
            plain_polls,
            learned_lag / 1000.0,
            learned_polls
        );
        assert!(
            learned_lag * 3.0 < plain_lag,
            "learning should cut the lag to under a third: {learned_lag} vs {plain_lag}"
        );
        assert!(
            learned_polls < plain_polls * 1.6,
            "learning costs too many polls: {learned_polls} vs {plain_polls}"
        );
        // Without learning, the model is never consulted: same result as the plain schedule.
        let (again_lag, again_polls) = simulate(&tasks, false, &CompletionModel::default());
        assert_eq!((again_lag, again_polls), (plain_lag, plain_polls));
    }

    #[test]
    fn an_estimate_follows_tasks_that_get_faster_or_slower() {
        let m = CompletionModel::default();
        simulate(&durations(200, 90_000, 20_000, 11), true, &m);
        let before = m.expected(Vendor::Kkiai, Tier::Std).unwrap();
        assert!(before > s(60) && before <= s(110), "{before:?}");
        // The vendor gets faster: 30-40 s. The estimate comes down within one window.
        simulate(&durations(MODEL_WINDOW, 30_000, 10_000, 12), true, &m);
        let faster = m.expected(Vendor::Kkiai, Tier::Std).unwrap();
        assert!(faster <= s(40), "{faster:?}");
        // And slower: 200-220 s. The estimate climbs (lower bounds: last running poll).
        simulate(&durations(MODEL_WINDOW, 200_000, 20_000, 13), true, &m);
        let slower = m.expected(Vendor::Kkiai, Tier::Std).unwrap();
        assert!(slower > s(150) && slower <= s(220), "{slower:?}");
    }
}
