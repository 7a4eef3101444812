//! The submit stage: route, limit, write the intent, create, record; and reconciliation of a
//! job found in `submitting` (see the crate docs for the exactly-once design).

use std::time::{Duration, SystemTime};

use motionq_core::{ErrorClass, JobState, Reconciliation, Vendor};
use motionq_limits::{
    BudgetRef, CommitOutcome, Decision, KeyId, Op, ReservationState, ReserveOutcome, SlotDecision,
};
use motionq_metrics::LimitKind;
use motionq_queue::runtime::{BoxDynError, DeferredError, RetryAfterError};
use motionq_queue::Delivery;
use motionq_store::{JobRecord, Transition};

use crate::pipeline::{CampaignView, LockedJob};
use motionq_vendors::{CreateContext, FindOutcome, VendorError};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::error::PipelineError;
use crate::pipeline::{micro, now_ms, JobIds, Pipeline, StageJob, Unreconcilable};

/// Fields of the submit intent, cleared when a job goes back to `admitted`.
const INTENT_FIELDS: [&str; 7] = [
    "vendor",
    "key_alias",
    "idem_key",
    "intent_at",
    "intent_by",
    "res_key",
    "res_campaign",
];

tokio::task_local! {
    /// Keys a submit delivery found with every slot in use.
    static FULL_KEYS: std::cell::RefCell<Vec<KeyId>>;
    /// The job lock this delivery holds (its token is written with the intent as
    /// `intent_by`, and checked right before the create call).
    static LEASE: std::sync::Arc<crate::pipeline::JobLease>;
}

/// Why the job is waiting (not an error): deferred without counting an attempt.
#[derive(Debug, thiserror::Error)]
#[error("waiting: {0}")]
pub struct Waiting(pub String);

fn wait(reason: impl Into<String>) -> BoxDynError {
    DeferredError::new(Waiting(reason.into())).into()
}

/// Submit intents written for the job so far (the report's `attempts`).
fn attempts_of(rec: &JobRecord) -> u64 {
    rec.fields
        .get("attempts")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn gen_of(rec: &JobRecord) -> u64 {
    rec.fields
        .get("gen")
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

/// The limiter budget id of a campaign's budget (`campaign/<id>`): the campaign id itself, or a
/// hash when it has characters the limiter does not accept.
pub fn campaign_budget_id(c: &str) -> String {
    let ok = !c.is_empty()
        && c.len() <= 190
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "_-.:@".contains(ch));
    if ok {
        c.to_string()
    } else {
        format!("h-{}", &hex::encode(Sha256::digest(c.as_bytes()))[..32])
    }
}

/// The handler of the `submit` queue.
pub(crate) async fn handle(p: &Pipeline, msg: StageJob, d: Delivery) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("submit", campaign = %msg.campaign, job = %msg.job, attempt = d.attempt, vendor = tracing::field::Empty, key = tracing::field::Empty);
    async {
        let Some(lj) = p.lock_job(&msg.campaign, &msg.job).await? else {
            return Err(wait("another worker holds this job"));
        };
        let lease = lj.lease.clone();
        let work = async {
            let r = locked(p, &msg, lj, &d).await;
            (r, FULL_KEYS.with(|k| k.take()))
        };
        let (r, full) = p
            .keeping_job_lock(
                &msg.campaign,
                &msg.job,
                &lease,
                LEASE.scope(
                    lease.clone(),
                    FULL_KEYS.scope(std::cell::RefCell::new(Vec::new()), work),
                ),
            )
            .await;
        p.unlock_job(&msg.campaign, &msg.job, &lease.token).await;
        // A job left waiting after finding keys full is woken by the next slot released on
        // one of them (see `Pipeline::wait_for_slot`).
        if r.as_ref()
            .is_err_and(|e| e.downcast_ref::<DeferredError>().is_some())
        {
            let mut full = full;
            full.sort();
            full.dedup();
            for key in &full {
                p.wait_for_slot(key, &msg.campaign, &msg.job).await;
            }
        }
        if let Err(e) = &r {
            if e.downcast_ref::<DeferredError>().is_none() {
                tracing::warn!(error = %e, "submit attempt failed");
            }
        }
        r
    }
    .instrument(span)
    .await
}

async fn locked(
    p: &Pipeline,
    msg: &StageJob,
    lj: LockedJob,
    d: &Delivery,
) -> Result<(), BoxDynError> {
    let (c, j) = (&msg.campaign, &msg.job);
    let Some(rec) = lj.rec else {
        return Ok(());
    };
    p.touch(c, j, rec.state, None, &[("seen_at", now_ms().to_string())])
        .await?;
    match rec.state {
        JobState::Admitted => {}
        JobState::Submitting => return reconcile(p, &rec, c, d).await,
        JobState::Submitted => {
            // Crash after recording the task but before the poll push: the poll chain's gate
            // drops the extra message if a chain is alive.
            p.push_poll(c, j, Duration::ZERO).await?;
            return Ok(());
        }
        JobState::Completed => {
            p.push_collect(c, j, None).await?;
            return Ok(());
        }
        _ => return Ok(()),
    }
    let camp = p.campaign_view(c, lj.campaign_state, lj.spec_rev).await?;
    match camp.state.as_str() {
        "paused" => {
            p.transition(
                c,
                j,
                &[JobState::Admitted],
                JobState::Queued,
                "campaign paused",
                &[],
            )
            .await?;
            return Ok(());
        }
        "cancelled" => {
            p.transition(
                c,
                j,
                &[JobState::Admitted],
                JobState::Cancelled,
                "campaign cancelled",
                &[],
            )
            .await?;
            return Ok(());
        }
        _ => {}
    }
    submit_fresh(p, &rec, &camp, c, d).await
}

enum KeyOutcome {
    /// Submitted (or the job moved on).
    Done,
    /// This key cannot be used now; try the next.
    Skip(String),
    /// Stop routing: the job waits (campaign budget).
    Wait(String),
}

async fn submit_fresh(
    p: &Pipeline,
    rec: &JobRecord,
    camp: &CampaignView,
    c: &str,
    d: &Delivery,
) -> Result<(), BoxDynError> {
    let ids = JobIds::new(c, &rec.id, gen_of(rec));
    // An admitted job holds no concurrency slot; one left over from a run that died before
    // its intent (possibly on another key than the one picked now) is given back first.
    for v in &rec.vendors {
        for k in p
            .keys_by_vendor
            .get(v)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            p.limits.release_slot(k, &ids.holder).await?;
        }
    }
    let order = route(rec, camp, p);
    for round in 0..4 {
        let mut reasons: Vec<String> = Vec::new();
        let mut soonest: Option<Duration> = None;
        for &vendor in &order {
            let Some(keys) = p.keys_by_vendor.get(&vendor) else {
                reasons.push(format!("{vendor}: no configured key"));
                continue;
            };
            let secs = p.job_seconds(rec, vendor);
            let (units, usd) = p.cost(vendor, rec.spec.tier, secs);
            if camp.spec.budget_usd.is_some() && usd.is_none() {
                reasons.push(format!(
                    "{vendor}: USD price unknown, the campaign budget cannot be enforced"
                ));
                continue;
            }
            // Without a known price a key with spend caps cannot be used safely.
            let cands: Vec<KeyId> = keys
                .iter()
                .filter(|k| {
                    units.is_some()
                        || p.limits
                            .key_limits(k)
                            .map(|l| l.spend == Default::default())
                            .unwrap_or(false)
                })
                .cloned()
                .collect();
            if cands.is_empty() {
                reasons.push(format!(
                    "{vendor}: price unknown and every key has a spend cap"
                ));
                continue;
            }
            let amount = units.unwrap_or(0);
            let key = match p.limits.pick_usable(&cands, Some(amount)).await? {
                Ok(k) => k,
                Err(why) => {
                    // Keys full for concurrency: woken when one of them releases a slot.
                    for (k, u) in &why.reasons {
                        if matches!(u, motionq_limits::Unusable::Concurrency { .. }) {
                            let _ = FULL_KEYS.try_with(|f| f.borrow_mut().push(k.clone()));
                        }
                    }
                    if let Some(r) = why.retry_in(SystemTime::now()) {
                        soonest = Some(soonest.map_or(r, |s: Duration| s.min(r)));
                    }
                    reasons.push(format!("{vendor}: {why}"));
                    continue;
                }
            };
            match try_key(p, rec, camp, c, &ids, vendor, &key, amount, usd, d).await? {
                KeyOutcome::Done => return Ok(()),
                KeyOutcome::Skip(r) => reasons.push(format!("{key}: {r}")),
                KeyOutcome::Wait(r) => return record_wait(p, rec, c, r).await,
            }
        }
        // A short create-rate wait is spent here rather than re-queued.
        match soonest {
            Some(s) if s <= p.opts.max_rate_wait && round < 3 => {
                tokio::time::sleep(s.max(Duration::from_millis(20))).await;
            }
            _ => return record_wait(p, rec, c, reasons.join("; ")).await,
        }
    }
    record_wait(p, rec, c, "no usable key".into()).await
}

/// The job's vendors in the campaign's routing order, except that vendors on which a task of
/// this job already failed for the vendor's own reasons (`failed_vendors`, written by the poll
/// stage) are left out while another allowed vendor has configured keys: failover moves the
/// job to another allowed vendor, and a job with no other vendor goes back to the failed ones.
fn route(rec: &JobRecord, camp: &CampaignView, p: &Pipeline) -> Vec<Vendor> {
    let order = motionq_core::pricing::route_order(
        &rec.vendors,
        rec.spec.tier,
        camp.spec.routing,
        &p.prices,
    );
    let failed = rec
        .fields
        .get("failed_vendors")
        .cloned()
        .unwrap_or_default();
    let has_failed = |v: &Vendor| failed.split(',').any(|f| f == v.as_str());
    let (fresh, tried): (Vec<Vendor>, Vec<Vendor>) =
        order.into_iter().partition(|v| !has_failed(v));
    // While a vendor that has not failed this job has keys, the job waits for it rather than
    // going back to one that failed it because the fresh one is busy for a moment (rate,
    // slots): a failover must not turn into a second paid attempt on the failing vendor.
    if fresh.iter().any(|v| p.keys_by_vendor.contains_key(v)) {
        return fresh;
    }
    fresh.into_iter().chain(tried).collect()
}

/// Counts a job told to wait for `key`'s `kind` of limit (`motionq_limit_wait_seconds`): it is
/// deferred for the queue's defer delay before it tries again.
fn note_wait(p: &Pipeline, vendor: Vendor, key: &KeyId, kind: LimitKind) {
    p.metrics
        .limit_wait(vendor, key.alias(), kind, p.defer_delay);
}

/// Records why the job waits (field `wait_reason` plus an event when the reason changes) and
/// defers it without counting an attempt.
async fn record_wait(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    reason: String,
) -> Result<(), BoxDynError> {
    let reason = if reason.is_empty() {
        "no vendor allowed for this job".to_string()
    } else {
        reason
    };
    let short: String = reason.chars().take(500).collect();
    // Numbers (waits, amounts) change on every run; only a different kind of reason is worth
    // an event in the audit log.
    let kind = |r: &str| -> String { r.chars().filter(|c| !c.is_ascii_digit()).collect() };
    if rec.fields.get("wait_reason").map(|r| kind(r)) != Some(kind(&short)) {
        tracing::info!(reason = %short, "job waits");
        p.transition(
            c,
            &rec.id,
            &[JobState::Admitted],
            JobState::Admitted,
            &format!("waiting: {short}"),
            &[("wait_reason", short.clone())],
        )
        .await?;
    }
    Err(wait(short))
}

async fn release_all(
    p: &Pipeline,
    key: &KeyId,
    ids: &JobIds,
    campaign_res: bool,
) -> Result<(), PipelineError> {
    release_res(p, &ids.res_key).await?;
    if campaign_res {
        release_res(p, &ids.res_campaign).await?;
    }
    p.limits.release_slot(key, &ids.holder).await?;
    Ok(())
}

/// Releases a reservation; one that does not exist (never taken) is already released.
pub(crate) async fn release_res(p: &Pipeline, id: &str) -> Result<(), PipelineError> {
    match p.limits.release(id).await {
        Ok(_) | Err(motionq_limits::LimitsError::UnknownReservation(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn try_key(
    p: &Pipeline,
    rec: &JobRecord,
    camp: &CampaignView,
    c: &str,
    ids: &JobIds,
    vendor: Vendor,
    key: &KeyId,
    amount: u64,
    usd: Option<u64>,
    d: &Delivery,
) -> Result<KeyOutcome, BoxDynError> {
    let span = tracing::Span::current();
    span.record("vendor", vendor.as_str());
    span.record("key", key.alias());
    // 1. Concurrency slot, held until the vendor task is terminal.
    match p.limits.acquire_slot(key, &ids.holder, None).await? {
        SlotDecision::Acquired(_) => {
            // A job that waited may still be registered as a slot waiter of this key.
            if rec.fields.get("wait_reason").is_some_and(|w| !w.is_empty()) {
                p.stop_waiting_for_slot(key, c, &rec.id).await;
            }
        }
        SlotDecision::Full {
            in_flight, limit, ..
        } => {
            note_wait(p, vendor, key, LimitKind::Concurrency);
            // Registered as a waiter of the key once the job's lock is released (`handle`).
            let _ = FULL_KEYS.try_with(|k| k.borrow_mut().push(key.clone()));
            return Ok(KeyOutcome::Skip(format!(
                "all {limit} slots in use ({in_flight})"
            )));
        }
        SlotDecision::Parked(pk) => {
            note_wait(p, vendor, key, LimitKind::Parked);
            return Ok(KeyOutcome::Skip(format!("parked ({})", pk.reason)));
        }
    }
    // 2. Money for the worst case: the campaign budget (USD), then the key's budgets (vendor
    //    unit). Two reservations because a reservation's budgets share one unit.
    let campaign_res = camp.spec.budget_usd.is_some();
    if let Some(budget) = camp.spec.budget_usd {
        let refs = [BudgetRef::Campaign {
            id: campaign_budget_id(c),
            limit: micro(budget),
        }];
        match p
            .limits
            .reserve(&refs, &ids.res_campaign, usd.unwrap_or(0))
            .await?
        {
            ReserveOutcome::Reserved(_) => {}
            ReserveOutcome::Denied(den) => {
                p.limits.release_slot(key, &ids.holder).await?;
                let why = match &den.reason {
                    motionq_limits::DenyReason::OverLimit { used, reserved, limit, requested, .. } => format!(
                        "campaign budget: ${:.2} spent + ${:.2} reserved + ${:.2} for this job > ${:.2}",
                        *used as f64 / 1e6, *reserved as f64 / 1e6, *requested as f64 / 1e6, *limit as f64 / 1e6
                    ),
                    motionq_limits::DenyReason::KeyParked(_) => "campaign budget: denied".into(),
                };
                note_wait(p, vendor, key, LimitKind::Spend);
                return Ok(KeyOutcome::Wait(why));
            }
            ReserveOutcome::AlreadyCommitted { .. } => {
                release_res(p, &ids.res_campaign).await?;
                p.limits.release_slot(key, &ids.holder).await?;
                return Ok(KeyOutcome::Skip(
                    "stale committed campaign reservation released; retrying".into(),
                ));
            }
            ReserveOutcome::AlreadySettled { .. } => {
                p.limits.release_slot(key, &ids.holder).await?;
                return Ok(KeyOutcome::Wait(
                    "campaign reservation of this generation already settled; use `motionq retry`"
                        .into(),
                ));
            }
        }
    }
    match p
        .limits
        .reserve(&[BudgetRef::Key(key.clone())], &ids.res_key, amount)
        .await?
    {
        ReserveOutcome::AlreadyCommitted { .. } => {
            // Only reachable if a committed generation was sent back to `admitted` without
            // a new generation: never send under it again; free it and reserve afresh.
            release_res(p, &ids.res_key).await?;
            if campaign_res {
                release_res(p, &ids.res_campaign).await?;
            }
            p.limits.release_slot(key, &ids.holder).await?;
            return Ok(KeyOutcome::Skip(
                "stale committed reservation released; retrying".into(),
            ));
        }
        ReserveOutcome::Reserved(_) => {}
        ReserveOutcome::Denied(den) => {
            if campaign_res {
                release_res(p, &ids.res_campaign).await?;
            }
            p.limits.release_slot(key, &ids.holder).await?;
            note_wait(p, vendor, key, LimitKind::Spend);
            return Ok(KeyOutcome::Skip(format!("budget {} full", den.budget)));
        }
        ReserveOutcome::AlreadySettled { .. } => {
            release_all(p, key, ids, campaign_res).await?;
            return Ok(KeyOutcome::Wait(
                "key reservation of this generation already settled; use `motionq retry`".into(),
            ));
        }
    }
    // 3. Create rate, looked at only (waiting is not a failed attempt). The token itself is
    //    taken later (6), after the intent and lock: taken here, they would sit between it
    //    and the vendor and let creates bunch up there.
    loop {
        match p.limits.peek(key, Op::Create, 1).await? {
            Decision::Allowed => break,
            Decision::Wait(w) if w <= p.opts.max_rate_wait => {
                p.metrics.rate_limit_wait(vendor, key.alias(), w);
                tokio::time::sleep(w).await
            }
            Decision::Wait(w) => {
                release_all(p, key, ids, campaign_res).await?;
                return Ok(KeyOutcome::Skip(format!("create rate: next call in {w:?}")));
            }
            Decision::Parked(pk) => {
                release_all(p, key, ids, campaign_res).await?;
                return Ok(KeyOutcome::Skip(format!("parked ({})", pk.reason)));
            }
        }
    }
    let tasklist = vendor.capabilities().reconciliation == Reconciliation::TaskList;
    // 5. The intent, BEFORE the call.
    let fields = [
        ("vendor", vendor.as_str().to_string()),
        ("key_alias", key.alias().to_string()),
        ("idem_key", ids.idem.clone()),
        ("gen", gen_of(rec).to_string()),
        ("intent_at", now_ms().to_string()),
        (
            "intent_by",
            LEASE.try_with(|l| l.token.clone()).unwrap_or_default(),
        ),
        // Create attempts over the job's life (every generation); only the worker that moves
        // the job out of `admitted` writes it, so the read-increment cannot race.
        ("attempts", (attempts_of(rec) + 1).to_string()),
        ("res_key", ids.res_key.clone()),
        (
            "res_campaign",
            if campaign_res {
                ids.res_campaign.clone()
            } else {
                String::new()
            },
        ),
        ("wait_reason", String::new()),
    ];
    let detail = format!("submit intent {key} attempt {}", d.attempt);
    match p
        .transition(
            c,
            &rec.id,
            &[JobState::Admitted],
            JobState::Submitting,
            &detail,
            &fields,
        )
        .await?
    {
        Transition::Moved(_) => {}
        _ => {
            release_all(p, key, ids, campaign_res).await?;
            return Ok(KeyOutcome::Done);
        }
    }
    // Task-list vendors: at most one create per key in flight and unrecorded (see the crate
    // docs). Taken after the intent, so a worker dying here leaves a `submitting` job whose
    // reconciliation (on this same key) re-takes or frees the lock.
    if tasklist
        && !p
            .take_tasklist_lock(key, &ids.holder, Duration::from_secs(5))
            .await?
    {
        back_out(p, rec, c, key, ids, campaign_res, false, None).await?;
        return Ok(KeyOutcome::Skip(
            "create lock busy (another create on this key is being recorded)".into(),
        ));
    }
    // 6. The create-rate token. Taken after the intent and lock (so only the commit below sits
    //    between it and the vendor) and BEFORE the commit: a worker that dies while waiting
    //    for it holds only pending reservations, which the reservation lease gives back.
    let rate_deadline = tokio::time::Instant::now() + p.opts.max_rate_wait;
    let (ticket, rate_lowered) = loop {
        let adm = p
            .limits
            .acquire_held(key, Op::Create, 1, p.create_hold(vendor))
            .await?;
        match adm.decision {
            Decision::Allowed => break (adm.ticket, adm.rate_lowered),
            Decision::Wait(w) if tokio::time::Instant::now() + w <= rate_deadline => {
                p.metrics.rate_limit_wait(vendor, key.alias(), w);
                tokio::time::sleep(w).await
            }
            Decision::Wait(_) | Decision::Parked(_) => {
                // Another worker took the slot seen in step 3: nothing was sent; give
                // everything back and wait for the key again.
                back_out(
                    p,
                    rec,
                    c,
                    key,
                    ids,
                    campaign_res,
                    tasklist,
                    Some("create rate: the key's next slot went to another worker".into()),
                )
                .await?;
                return Err(wait("create rate: waiting for the key's next slot"));
            }
        }
    };
    // 6b. Still the job's owner? A worker whose lock lapsed (a stalled process) must not pay
    //     for a job another worker may be reconciling or submitting: the lock must still be
    //     ours (renewed now) and the job must still carry our intent.
    if !still_owner(p, c, &rec.id).await? {
        answered(p, ticket.as_ref()).await;
        return Err(wait(
            "the job passed to another worker before the create call; it continues there",
        ));
    }
    // 7a. Commit right before sending: from here the money stays held whatever happens, and a
    //    committed key reservation is the marker "a create call may have been sent".
    for (res, on) in [(&ids.res_campaign, campaign_res), (&ids.res_key, true)] {
        if !on {
            continue;
        }
        if let CommitOutcome::Lost(st) = p.limits.commit(res, None).await? {
            answered(p, ticket.as_ref()).await;
            back_out(
                p,
                rec,
                c,
                key,
                ids,
                campaign_res,
                tasklist,
                Some(format!("reservation lost before sending ({})", st.as_str())),
            )
            .await?;
            return Err(wait("reservation expired before the call; reserving again"));
        }
    }
    // 7. The paid call.
    let client = &p.clients[key];
    let ctx = CreateContext {
        idempotency_key: ids.idem.clone(),
        callback_url: p.callback_url(vendor, &ids.idem),
    };
    let answer = p
        .vendor_call(
            key,
            motionq_metrics::Operation::Create,
            client.create(&rec.spec, &ctx),
        )
        .await;
    p.maybe_crash_after_create();
    answered(p, ticket.as_ref()).await;
    match answer {
        Ok(created) => {
            adopt(
                p,
                rec,
                c,
                vendor,
                key,
                ids,
                &created.task_id,
                "vendor accepted the task",
                rate_lowered,
            )
            .await?;
            Ok(KeyOutcome::Done)
        }
        Err(e) => create_failed(p, rec, c, vendor, key, ids, campaign_res, tasklist, e, d).await,
    }
}

/// Whether this delivery still owns the job right before its create call
/// ([`Pipeline::owns_intent`]). Outside a submit delivery (no lock token) there is nothing to
/// check.
async fn still_owner(p: &Pipeline, c: &str, j: &str) -> Result<bool, PipelineError> {
    match LEASE.try_with(Clone::clone) {
        Ok(lease) => p.owns_intent(c, j, &lease).await,
        Err(_) => Ok(true),
    }
}

/// Starts a held create admission's second in its key's window (the call was answered or
/// will not be sent). A failure only leaves the admission counted until its hold passes:
/// capacity, never a breach.
async fn answered(p: &Pipeline, ticket: Option<&motionq_limits::HeldTicket>) {
    if let Some(t) = ticket {
        if let Err(e) = p.limits.answered(t).await {
            tracing::warn!(error = %e, "could not mark a create answered in the rate window");
        }
    }
}

/// Records an accepted (or reconciled) task: index, reservation, record, poll. `raise_rate`:
/// the key's create rate was lowered after a 429 when this create was admitted, so the
/// success is reported to the adaptive rate (at full rate that would change nothing).
#[allow(clippy::too_many_arguments)]
async fn adopt(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    vendor: Vendor,
    key: &KeyId,
    ids: &JobIds,
    task_id: &str,
    detail: &str,
    raise_rate: bool,
) -> Result<(), PipelineError> {
    p.record_task(vendor, task_id, c, &rec.id, &ids.idem)
        .await?;
    // With the task recorded (reconciliation finds it in the index before it lists anything),
    // the key's create lock has done its job: free it now, before the transition, so that a
    // worker dying in between cannot leave it held by a job that is no longer `submitting`
    // (nothing would release it before its TTL and the key's creates would stall).
    if vendor.capabilities().reconciliation == Reconciliation::TaskList {
        p.release_tasklist_lock(key, &ids.holder).await?;
    }
    match p.limits.commit(&ids.res_key, Some(task_id)).await {
        Ok(_) | Err(motionq_limits::LimitsError::UnknownReservation(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let fields = [
        ("task_id", task_id.to_string()),
        ("submitted_at", now_ms().to_string()),
        ("wait_reason", String::new()),
        ("last_running_age_ms", String::new()),
    ];
    let moved = p
        .transition(
            c,
            &rec.id,
            &[JobState::Submitting],
            JobState::Submitted,
            &format!("{detail}: {vendor} task {task_id}"),
            &fields,
        )
        .await?;
    if matches!(moved, Transition::Moved(_)) {
        if raise_rate {
            let _ = p.limits.on_success(key, Op::Create).await;
        }
        p.push_poll(c, &rec.id, p.first_poll_delay(vendor, rec.spec.tier))
            .await?;
        tracing::info!(task_id, "submitted");
    }
    Ok(())
}

/// Sends a `submitting` job whose create call provably did not take effect back to
/// `admitted`, returning its money and slot.
#[allow(clippy::too_many_arguments)]
async fn back_out(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    key: &KeyId,
    ids: &JobIds,
    campaign_res: bool,
    tasklist: bool,
    why: Option<String>,
) -> Result<(), PipelineError> {
    let mut fields: Vec<(&str, String)> =
        INTENT_FIELDS.iter().map(|f| (*f, String::new())).collect();
    if let Some(w) = &why {
        fields.push(("last_error", w.chars().take(500).collect()));
    }
    // The create provably did not take effect (or was never sent): the key's create lock is
    // freed first, so a worker dying before the transition cannot leave it held by a job
    // that went back to `admitted` (reconciling the still-`submitting` job needs no lock to
    // back it out again).
    if tasklist {
        p.release_tasklist_lock(key, &ids.holder).await?;
    }
    p.transition(
        c,
        &rec.id,
        &[JobState::Submitting],
        JobState::Admitted,
        why.as_deref().unwrap_or("create not sent"),
        &fields,
    )
    .await?;
    release_all(p, key, ids, campaign_res).await?;
    Ok(())
}

/// Whether a failed create may have created a task that must be found before anything else.
fn possibly_created(e: &VendorError, recon: Reconciliation) -> bool {
    if e.is_duplicate_submission() {
        return true;
    }
    if !e.may_have_created_task() {
        return false;
    }
    match recon {
        // Asking is exact and cheap: always ask.
        Reconciliation::ExternalTaskId | Reconciliation::TaskList => true,
        // Cannot ask. A 5xx answered with the vendor's error envelope is taken as a refusal
        // (otherwise every 503 would fail a job for review); timeouts, resets and malformed
        // 2xx bodies are possibly created.
        Reconciliation::CallbackOnly | Reconciliation::None => {
            let code = e.code.as_deref().unwrap_or("");
            let answered_5xx = matches!(e.http_status, Some(s) if (500..600).contains(&s));
            !(answered_5xx && !code.starts_with("malformed") && !code.starts_with("transport"))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn create_failed(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    vendor: Vendor,
    key: &KeyId,
    ids: &JobIds,
    campaign_res: bool,
    tasklist: bool,
    e: VendorError,
    d: &Delivery,
) -> Result<KeyOutcome, BoxDynError> {
    let recon = vendor.capabilities().reconciliation;
    if possibly_created(&e, recon) {
        tracing::warn!(error = %e, "create answer lost or ambiguous: reconciling before anything else");
        let fresh = p.store.job(c, &rec.id).await?.ok_or("job vanished")?;
        // If the vendor proves nothing was created, this create counts as a failed attempt
        // with its own error (else a vendor stuck on 5xx would be retried forever).
        reconcile_inner(p, &fresh, c, d, Some(e)).await?;
        return Ok(KeyOutcome::Done);
    }
    back_out(
        p,
        rec,
        c,
        key,
        ids,
        campaign_res,
        tasklist,
        Some(e.to_string()),
    )
    .await?;
    match e.class {
        ErrorClass::RateLimited => {
            p.limits
                .on_rate_limited(key, Op::Create, e.retry_after)
                .await?;
            Ok(KeyOutcome::Skip(format!("vendor rate limit: {e}")))
        }
        class if class.parks_key() => {
            let until = (class == ErrorClass::QuotaExhausted)
                .then(|| SystemTime::now() + e.retry_after.unwrap_or(p.opts.quota_park));
            p.limits.park_for_error(key, class, until).await?;
            if let Some(r) = metrics_park_reason(class) {
                p.metrics
                    .set_key_state(vendor, key.alias(), motionq_metrics::KeyState::Parked(r));
            }
            Ok(KeyOutcome::Skip(format!("key parked: {e}")))
        }
        ErrorClass::UpstreamTransient => {
            counted_failure(p, rec, c, e, d).await?;
            Ok(KeyOutcome::Done)
        }
        _ => {
            let fresh = p.store.job(c, &rec.id).await?.ok_or("job vanished")?;
            fail_admitted(p, &fresh, c, &e).await?;
            Ok(KeyOutcome::Done)
        }
    }
}

/// `admitted → failed` with the create's error class and message.
async fn fail_admitted(
    p: &Pipeline,
    fresh: &JobRecord,
    c: &str,
    e: &VendorError,
) -> Result<(), BoxDynError> {
    fail(
        p,
        fresh,
        c,
        JobState::Admitted,
        e.class.as_str(),
        &e.to_string(),
    )
    .await?;
    Ok(())
}

/// A failed create of a job now back in `admitted` (nothing was created) that counts as an
/// attempt: `failed` with the error's class and message when the retry policy is used up
/// (`max_attempts` runs or `max_total` since the first error), else an error for the queue to
/// retry with backoff (Retry-After a floor). Always returns `Err` unless the job was failed.
async fn counted_failure(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    e: VendorError,
    d: &Delivery,
) -> Result<(), BoxDynError> {
    let fresh = p.store.job(c, &rec.id).await?.ok_or("job vanished")?;
    if exhausted(p, &fresh, d) {
        return fail_admitted(p, &fresh, c, &e).await;
    }
    if !fresh.fields.contains_key("first_error_at") {
        p.touch(
            c,
            &rec.id,
            JobState::Admitted,
            None,
            &[("first_error_at", now_ms().to_string())],
        )
        .await?;
    }
    p.metrics.retry(
        motionq_metrics::Stage::Submit,
        e.class,
        e.retry_after.unwrap_or_else(|| p.retry.ceiling(d.attempt)),
    );
    match e.retry_after {
        Some(ra) => Err(RetryAfterError::new(e, ra).into()),
        None => Err(e.into()),
    }
}

/// The reconciliation found that the create did not take effect and backed the job out:
/// after a failed create answer (`failed_create`) that create counts as a failed attempt
/// ([`counted_failure`]); after a crash (no answer seen) the job is submitted again without
/// counting one.
async fn not_created(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    d: &Delivery,
    failed_create: Option<VendorError>,
) -> Result<(), BoxDynError> {
    match failed_create {
        Some(e) => counted_failure(p, rec, c, e, d).await,
        None => Err(wait("create did not take effect: submitting again")),
    }
}

/// `last_error` of a job backed out because the vendor has no task: what showed it, and the
/// create's own error when one was answered.
fn absent_after(what: &str, failed_create: Option<&VendorError>) -> String {
    match failed_create {
        Some(e) => format!("{what}; the create failed: {e}"),
        None => what.to_string(),
    }
}

fn metrics_park_reason(class: ErrorClass) -> Option<motionq_metrics::ParkReason> {
    use motionq_metrics::ParkReason as R;
    Some(match class {
        ErrorClass::QuotaExhausted => R::QuotaExhausted,
        ErrorClass::InsufficientFunds => R::InsufficientFunds,
        ErrorClass::Auth => R::Auth,
        ErrorClass::Forbidden => R::Forbidden,
        _ => return None,
    })
}

/// Whether this failed run is the last the retry policy allows.
fn exhausted(p: &Pipeline, rec: &JobRecord, d: &Delivery) -> bool {
    if d.attempt >= p.retry.max_attempts {
        return true;
    }
    let first = rec
        .fields
        .get("first_error_at")
        .and_then(|v| v.parse::<u64>().ok());
    matches!(first, Some(f) if now_ms().saturating_sub(f) > p.retry.max_total.as_millis() as u64)
}

/// Terminal failure with class and message.
pub(crate) async fn fail(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    from: JobState,
    class: &str,
    message: &str,
) -> Result<(), PipelineError> {
    let msg: String = message.chars().take(1000).collect();
    tracing::warn!(class, message = %msg, "job failed");
    p.transition(
        c,
        &rec.id,
        &[from],
        JobState::Failed,
        &format!("{class}: {msg}"),
        &[
            ("error_class", class.to_string()),
            ("error_message", msg.clone()),
            ("failed_at", now_ms().to_string()),
            ("wait_reason", String::new()),
        ],
    )
    .await?;
    Ok(())
}

async fn reconcile(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    d: &Delivery,
) -> Result<(), BoxDynError> {
    reconcile_inner(p, rec, c, d, None).await
}

/// A job in `submitting`: the create call may have reached the vendor. Find out before
/// anything is sent again. `failed_create`: the create's own error when this run saw the
/// create answered with a possibly-created error (see [`not_created`]).
async fn reconcile_inner(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    d: &Delivery,
    failed_create: Option<VendorError>,
) -> Result<(), BoxDynError> {
    let f = |k: &str| rec.fields.get(k).cloned().unwrap_or_default();
    let vendor: Vendor = f("vendor")
        .parse()
        .map_err(|e: String| format!("submitting job without vendor: {e}"))?;
    let key = KeyId::new(vendor, f("key_alias"))?;
    let ids = JobIds::new(c, &rec.id, gen_of(rec));
    let campaign_res = !f("res_campaign").is_empty();
    let recon = vendor.capabilities().reconciliation;
    let tasklist = recon == Reconciliation::TaskList;
    tracing::info!(%key, idem = %ids.idem, "reconciling a submit intent");
    // 1. Our own index: the dying worker, or a callback carrying our id, may have recorded it.
    if let Some(task) = p.task_for_idem(vendor, &ids.idem).await? {
        adopt(
            p,
            rec,
            c,
            vendor,
            &key,
            &ids,
            &task,
            "reconciled from the task index",
            true,
        )
        .await?;
        return Ok(());
    }
    // 2. Was the call ever sent? The key reservation is committed right before sending.
    let sent = match p.limits.reservation(&ids.res_key).await? {
        Some(r) => matches!(
            r.state,
            ReservationState::Committed | ReservationState::Settled
        ),
        None => false,
    };
    if !sent {
        back_out(
            p,
            rec,
            c,
            &key,
            &ids,
            campaign_res,
            tasklist,
            Some("create call was never sent".into()),
        )
        .await?;
        return Err(wait("intent without a sent call: submitting again"));
    }
    let Some(client) = p.clients.get(&key) else {
        return Err(format!("key {key} is no longer configured; cannot reconcile").into());
    };
    match recon {
        Reconciliation::ExternalTaskId => match p
            .vendor_call(
                &key,
                motionq_metrics::Operation::Query,
                client.find_by_idempotency_key(&ids.idem, rec.spec.tier),
            )
            .await
        {
            Ok(Some(FindOutcome::Found { task_id, .. })) => {
                adopt(
                    p,
                    rec,
                    c,
                    vendor,
                    &key,
                    &ids,
                    &task_id,
                    "reconciled by external_task_id",
                    true,
                )
                .await?;
                Ok(())
            }
            Ok(Some(FindOutcome::Absent)) => {
                back_out(
                    p,
                    rec,
                    c,
                    &key,
                    &ids,
                    campaign_res,
                    false,
                    Some(absent_after(
                        "vendor has no task with our external_task_id",
                        failed_create.as_ref(),
                    )),
                )
                .await?;
                not_created(p, rec, c, d, failed_create).await
            }
            Ok(_) => {
                unreconcilable(
                    p,
                    rec,
                    c,
                    vendor,
                    &key,
                    &ids,
                    "unexpected lookup answer",
                    &[],
                )
                .await
            }
            Err(e) => {
                if e.class == ErrorClass::RateLimited {
                    p.limits
                        .on_rate_limited(&key, Op::Query, e.retry_after)
                        .await?;
                }
                Err(e.into())
            }
        },
        Reconciliation::TaskList => {
            if !p
                .take_tasklist_lock(&key, &ids.holder, Duration::from_secs(5))
                .await?
            {
                return Err(wait("waiting for the key's create lock to reconcile"));
            }
            let listed = match p
                .vendor_call(
                    &key,
                    motionq_metrics::Operation::Query,
                    client.find_by_idempotency_key(&ids.idem, rec.spec.tier),
                )
                .await
            {
                Ok(Some(FindOutcome::Candidates(list))) => list,
                Ok(_) => {
                    return unreconcilable(
                        p,
                        rec,
                        c,
                        vendor,
                        &key,
                        &ids,
                        "unexpected task-list answer",
                        &[],
                    )
                    .await
                }
                Err(e) => return Err(e.into()),
            };
            let task_ids: Vec<String> = listed.into_iter().map(|t| t.task_id).collect();
            let known = p.known_tasks(vendor, &task_ids).await?;
            let orphans: Vec<String> = task_ids
                .into_iter()
                .zip(known)
                .filter(|(_, k)| !k)
                .map(|(t, _)| t)
                .collect();
            match orphans.len() {
                0 => {
                    back_out(
                        p,
                        rec,
                        c,
                        &key,
                        &ids,
                        campaign_res,
                        true,
                        Some(absent_after(
                            "no unrecorded task in the vendor's list",
                            failed_create.as_ref(),
                        )),
                    )
                    .await?;
                    not_created(p, rec, c, d, failed_create).await
                }
                1 => {
                    adopt(
                        p,
                        rec,
                        c,
                        vendor,
                        &key,
                        &ids,
                        &orphans[0],
                        "reconciled from the task list",
                        true,
                    )
                    .await?;
                    Ok(())
                }
                n => {
                    unreconcilable(
                        p,
                        rec,
                        c,
                        vendor,
                        &key,
                        &ids,
                        &format!("{n} unrecorded tasks on the key"),
                        &orphans,
                    )
                    .await
                }
            }
        }
        Reconciliation::CallbackOnly | Reconciliation::None => {
            unreconcilable(
                p,
                rec,
                c,
                vendor,
                &key,
                &ids,
                "the vendor offers no lookup and no callback named the task",
                &[],
            )
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn unreconcilable(
    p: &Pipeline,
    rec: &JobRecord,
    c: &str,
    vendor: Vendor,
    key: &KeyId,
    ids: &JobIds,
    why: &str,
    orphans: &[String],
) -> Result<(), BoxDynError> {
    p.mark_orphans(vendor, orphans, &format!("{c}/{}", rec.id))
        .await?;
    let tasklist = vendor.capabilities().reconciliation == Reconciliation::TaskList;
    // The committed reservation stays: the vendor may have charged it.
    p.limits.release_slot(key, &ids.holder).await?;
    if tasklist {
        p.release_tasklist_lock(key, &ids.holder).await?;
    }
    let intent = rec.fields.get("intent_at").cloned().unwrap_or_default();
    match p.unreconcilable {
        Unreconcilable::Fail => {
            let msg = format!("unreconcilable: possible charge, check vendor dashboard ({vendor} key {}, intent at {intent} ms, idempotency key {}; {why})", key.alias(), ids.idem);
            fail(p, rec, c, JobState::Submitting, "unreconcilable", &msg).await?;
            Ok(())
        }
        Unreconcilable::Resubmit => {
            let mut fields: Vec<(&str, String)> =
                INTENT_FIELDS.iter().map(|f| (*f, String::new())).collect();
            fields.push(("gen", (gen_of(rec) + 1).to_string()));
            fields.push((
                "last_error",
                format!(
                    "unreconcilable ({why}); resubmitting per worker.unreconcilable = resubmit"
                ),
            ));
            p.transition(
                c,
                &rec.id,
                &[JobState::Submitting],
                JobState::Admitted,
                "unreconcilable: resubmitting (possible second charge)",
                &fields,
            )
            .await?;
            Err(wait("resubmitting under a new idempotency key"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguity_rules() {
        let e503 = VendorError::new(ErrorClass::UpstreamTransient, "busy")
            .with_status(503)
            .with_code(Some("service_unavailable".into()));
        assert!(possibly_created(&e503, Reconciliation::ExternalTaskId));
        assert!(!possibly_created(&e503, Reconciliation::CallbackOnly));
        let timeout = VendorError::new(ErrorClass::UpstreamTransient, "t")
            .with_code(Some("transport_timeout".into()));
        assert!(possibly_created(&timeout, Reconciliation::None));
        let malformed = VendorError::new(ErrorClass::UpstreamTransient, "m")
            .with_status(200)
            .with_code(Some("malformed_response".into()));
        assert!(possibly_created(&malformed, Reconciliation::CallbackOnly));
        let refused = VendorError::new(ErrorClass::RateLimited, "slow").with_status(429);
        assert!(!possibly_created(&refused, Reconciliation::ExternalTaskId));
        let connect = VendorError::new(ErrorClass::UpstreamTransient, "c")
            .with_code(Some("transport_connect".into()));
        assert!(!possibly_created(&connect, Reconciliation::None));
    }

    #[test]
    fn campaign_ids_for_budgets() {
        assert_eq!(campaign_budget_id("spring-2026"), "spring-2026");
        let h = campaign_budget_id("a b/c");
        assert!(h.starts_with("h-") && h.len() == 34);
    }
}
