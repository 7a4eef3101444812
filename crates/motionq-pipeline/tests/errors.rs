//! Error classes end to end over the simulator: content policy fails without retry; an auth
//! failure parks the key and the job moves to another key; a key the vendor throttles (429)
//! does not hold back jobs another key can take; a campaign budget that fits exactly K jobs
//! charges K and makes the rest wait with a reason.

mod common;

use std::time::Duration;

use common::*;
use motionq_core::{JobState, Vendor};
use motionq_limits::{KeyId, Limits, ParkReason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_policy_fails_once_and_is_not_retried() {
    let env = start(sim_config(0.002)).await;
    let m = manifest("policy", &["kkiai"], 3, "")
        .replace("\"job 1 of policy\"", "\"job 1 sim:content_policy\"");
    let campaign = enqueue(&env, &m).await;
    let (stop, worker) = spawn_worker(&env, fast_options());
    let c = wait_for(&env, &campaign, Duration::from_secs(60), |c| {
        n(c, "stored") + n(c, "failed") == 3
    })
    .await;
    // Give a wrongly retried job the time to show up in the ledger.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    assert_eq!((n(&c, "stored"), n(&c, "failed")), (2, 1), "{c:?}");
    let rec = env.store.job(&campaign, "j00001").await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Failed);
    assert_eq!(
        rec.fields["error_class"], "content_policy",
        "{:?}",
        rec.fields
    );
    let creates: usize = env.sim.ledger().vendors["kkiai"]
        .keys
        .values()
        .map(|k| k.creates.len())
        .sum();
    assert_eq!(creates, 3, "the failed job was sent once and never again");

    // `motionq retry`: the failed job goes back under a new generation (new idempotency key),
    // is paid for again, and fails again for its content.
    let filter = motionq_pipeline::RetryFilter {
        states: vec![JobState::Failed],
        error_classes: vec!["content_policy".into()],
        job: Some("j00001".into()),
    };
    assert_eq!(
        motionq_pipeline::retry_jobs(&env.store, &campaign, &filter)
            .await
            .unwrap(),
        1
    );
    let rec = env.store.job(&campaign, "j00001").await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Queued);
    assert!(
        !rec.fields.contains_key("error_class"),
        "error cleared: {:?}",
        rec.fields
    );
    let (stop, worker) = spawn_worker(&env, fast_options());
    let c = wait_for(&env, &campaign, Duration::from_secs(60), |c| {
        n(c, "failed") == 1
            && n(c, "queued") == 0
            && n(c, "admitted") == 0
            && n(c, "submitting") == 0
            && n(c, "submitted") == 0
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    assert_eq!((n(&c, "stored"), n(&c, "failed")), (2, 1), "{c:?}");
    let rec = env.store.job(&campaign, "j00001").await.unwrap().unwrap();
    assert_eq!(rec.fields["gen"], "1");
    let ledger = env.sim.ledger();
    let creates: Vec<_> = ledger.vendors["kkiai"]
        .keys
        .values()
        .flat_map(|k| k.creates.iter())
        .collect();
    assert_eq!(creates.len(), 4, "the retried job was sent once more");
    let mut ext: Vec<_> = creates
        .iter()
        .filter_map(|c| c.external_task_id.clone())
        .collect();
    ext.sort();
    ext.dedup();
    assert_eq!(
        ext.len(),
        4,
        "each submission generation has its own external_task_id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failure_parks_the_key_and_jobs_use_the_other_key() {
    let mut env = start(sim_config(0.002)).await;
    std::env::set_var("MQT_BAD_EVOLINK_KEY", "not-a-key-the-vendor-knows");
    let ev = env.cfg.vendors.get_mut(&Vendor::Evolink).unwrap();
    ev.keys[0].api_key_env = "MQT_BAD_EVOLINK_KEY".into();
    let bad = KeyId::new(Vendor::Evolink, ev.keys[0].alias.clone()).unwrap();
    let good = ev.keys[1].alias.clone();
    let campaign = enqueue(&env, &manifest("auth", &["evolink"], 6, "")).await;
    let (stop, worker) = spawn_worker(&env, fast_options());
    let c = wait_for(&env, &campaign, Duration::from_secs(60), |c| {
        n(c, "stored") == 6
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    assert_eq!(n(&c, "stored"), 6, "{c:?}");
    for rec in env.store.jobs_page(&campaign, 0, 10).await.unwrap() {
        assert_eq!(
            rec.fields["key_alias"], good,
            "job {} used the good key",
            rec.id
        );
    }
    let conn = motionq_store::RedisConn::connect(&env.cfg.redis)
        .await
        .unwrap();
    let limits = Limits::new(conn, "t", motionq_pipeline::limits_config(&env.cfg)).unwrap();
    let parked = limits.parked(&bad).await.unwrap().expect("bad key parked");
    assert_eq!(parked.reason, ParkReason::Auth);
    assert_eq!(parked.until, None, "auth parks until an operator acts");
    let ledger = env.sim.ledger();
    assert!(ledger.vendors["evolink"].auth_failures >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_key_does_not_stall_jobs_another_key_can_take() {
    // kkiai-1 answers every create with Kling's 429 (code 1302): the simulator allows it zero
    // creates per second, while motionq believes it may send 20/s. kkiai-2 is healthy.
    let mut sim = sim_config(0.002);
    sim.kkiai.keys[0].rate_per_sec = Some(0);
    let mut env = start(sim).await;
    let kk = env.cfg.vendors.get_mut(&Vendor::Kkiai).unwrap();
    kk.keys[0].create_rate_per_s = 20.0;
    kk.keys[0].create_burst = 20;
    kk.keys[0].create_max_per_s = None;
    let (throttled, healthy) = (kk.keys[0].alias.clone(), kk.keys[1].alias.clone());
    let jobs = 12;
    let campaign = enqueue(&env, &manifest("throttled", &["kkiai"], jobs, "")).await;
    let (stop, worker) = spawn_worker(&env, fast_options());
    // A job that stayed with the throttled key after its 429 would never finish: the deadline
    // is what fails then, not a timing expectation.
    let c = wait_for(&env, &campaign, Duration::from_secs(120), |c| {
        n(c, "stored") == jobs as i64
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let ledger = env.sim.ledger();
    let k1 = &ledger.vendors["kkiai"].keys[throttled.as_str()];
    let k2 = &ledger.vendors["kkiai"].keys[healthy.as_str()];
    let refused = k1.rejections.get("rate_limit").copied().unwrap_or(0);
    println!(
        "throttled key: {refused} create 429s; healthy key: {} creates; {c:?}",
        k2.creates.len()
    );
    assert_eq!(n(&c, "stored"), jobs as i64, "{c:?}");
    assert!(refused >= 1, "the throttled key was tried and refused");
    assert!(k1.creates.is_empty(), "the vendor accepted nothing there");
    assert_eq!(k2.creates.len(), jobs, "every job went to the healthy key");
    for rec in env.store.jobs_page(&campaign, 0, 100).await.unwrap() {
        assert_eq!(rec.fields["key_alias"], healthy, "job {}", rec.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_budget_that_fits_k_jobs_charges_k_and_the_rest_wait() {
    let env = start(sim_config(0.002)).await;
    // HighwayAPI std at $0.10/s (config/demo.toml), 8 s references: $0.80 a job; $2.40 fits 3.
    let campaign = enqueue(
        &env,
        &manifest("budget", &["highwayapi"], 5, r#","budget_usd":2.4"#),
    )
    .await;
    let metrics = motionq_metrics::Metrics::new();
    let (stop, worker) = spawn_worker(
        &env,
        motionq_pipeline::WorkerOptions {
            metrics: Some(metrics.clone()),
            ..fast_options()
        },
    );
    let c = wait_for(&env, &campaign, Duration::from_secs(60), |c| {
        n(c, "stored") >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c2 = counts(&env, &campaign).await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    assert_eq!(n(&c, "stored"), 3, "{c:?}");
    assert_eq!(
        n(&c2, "stored"),
        3,
        "no fourth job is ever paid for: {c2:?}"
    );
    let creates: usize = env.sim.ledger().vendors["highwayapi"]
        .keys
        .values()
        .map(|k| k.creates.len())
        .sum();
    assert_eq!(creates, 3, "exactly K paid creates");
    let waiting: Vec<_> = env
        .store
        .jobs_page(&campaign, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.state != JobState::Stored)
        .collect();
    assert_eq!(waiting.len(), 2);
    // The wait is visible in metrics too: spend-limit waits on the key, deferred submit runs.
    let text = metrics.encode();
    let sample = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let spend_waits: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("motionq_limit_wait_seconds_count{")
                && l.contains("reason=\"spend\"")
                && l.contains("vendor=\"highwayapi\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(spend_waits >= 1.0, "spend waits counted:\n{text}");
    assert!(
        sample("motionq_stage_duration_seconds_count{outcome=\"deferred\",stage=\"submit\"}")
            >= 1.0,
        "deferred submit runs counted:\n{text}"
    );
    assert!(
        sample("motionq_stage_duration_seconds_count{outcome=\"done\",stage=\"collect\"}") >= 3.0,
        "collect runs counted:\n{text}"
    );
    for r in waiting {
        assert!(
            matches!(r.state, JobState::Admitted | JobState::Queued),
            "{:?}",
            r.state
        );
        if r.state == JobState::Admitted {
            let why = r.fields.get("wait_reason").cloned().unwrap_or_default();
            assert!(why.contains("campaign budget"), "reason recorded: {why:?}");
        }
    }
}

/// Injected create faults on one vendor, everything else healthy.
fn create_faults(
    vendor: motionq_sim::Vendor,
    f: impl FnOnce(&mut motionq_sim::EndpointFaults),
) -> motionq_sim::Faults {
    let mut faults = motionq_sim::Faults::default();
    f(&mut faults.vendor_mut(vendor).create);
    faults
}

/// Runs of the submit stage that reached the vendor and met an injected create fault.
fn injected(env: &Env, vendor: &str, kind: &str) -> u64 {
    env.sim.ledger().vendors[vendor]
        .faults_injected
        .get(&format!("create.{kind}"))
        .copied()
        .unwrap_or(0)
}

/// `motionq retry` of the campaign's jobs that failed `upstream_transient`: how many went back.
async fn retry_transient_failures(env: &Env, campaign: &str) -> u64 {
    let filter = motionq_pipeline::RetryFilter {
        states: vec![JobState::Failed],
        error_classes: vec!["upstream_transient".into()],
        job: None,
    };
    motionq_pipeline::retry_jobs(&env.store, campaign, &filter)
        .await
        .unwrap()
}

/// The job failed after exactly `max` counted creates (`calls` reached the vendor), with the
/// vendor's own 503 as its error.
fn assert_exhausted_by_503(
    rec: &motionq_store::JobRecord,
    calls: u64,
    max: u64,
    vendor_message: &str,
) {
    assert_eq!(rec.state, JobState::Failed, "{:?}", rec.fields);
    assert_eq!(calls, max, "one create per counted run, max_attempts runs");
    assert_eq!(rec.fields["attempts"], max.to_string());
    assert_eq!(rec.fields["error_class"], "upstream_transient");
    let msg = &rec.fields["error_message"];
    assert!(
        msg.contains("503") && msg.contains(vendor_message),
        "the vendor's own 503 recorded: {msg}"
    );
}

/// A create that keeps failing transiently (EvoLink answers every create with its 503, an
/// answered refusal) is retried by the queue up to `max_attempts` runs, then `failed` with the
/// last error's class and message; `retry_jobs` (`motionq retry`) puts it back. The second
/// round fails on a 500 instead, so the recorded error is shown to be the last one, not a
/// stale one; the third round (faults off) stores the job with exactly one paid create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_create_retries_fail_with_the_last_error_and_stay_retryable() {
    const MAX_ATTEMPTS: u64 = 3;
    let mut env = start(sim_config(0.002)).await;
    env.cfg.queue = toml::from_str(&format!(
        "claim_min_idle_ms = 4000\nclaim_interval_ms = 1000\nrefresh_interval_ms = 1000\npromote_interval_ms = 50\ndefer_delay_ms = 300\n[retry]\nbase = 100\ncap = 500\nmax_attempts = {MAX_ATTEMPTS}\nmax_total = 600000\n"
    ))
    .unwrap();
    let ev = motionq_sim::Vendor::Evolink;
    env.sim
        .set_faults(create_faults(ev, |f| f.error_503 = 1.0))
        .unwrap();
    let campaign = enqueue(&env, &manifest("exhausted", &["evolink"], 1, "")).await;
    let (stop, worker) = spawn_worker(&env, fast_options());
    let failed_once = |c: &std::collections::BTreeMap<String, i64>| n(c, "failed") == 1;

    // Round 1: 503 on every create.
    let c = wait_for(&env, &campaign, Duration::from_secs(90), failed_once).await;
    // A wrongly continued retry would reach the simulator within this pause.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rec = env.store.job(&campaign, "j00000").await.unwrap().unwrap();
    let calls = injected(&env, "evolink", "error_503");
    println!(
        "round 1 (503s): {c:?}; {calls} create calls answered 503; attempts {:?}; error {:?}: {:?}",
        rec.fields.get("attempts"),
        rec.fields.get("error_class"),
        rec.fields.get("error_message")
    );
    assert_exhausted_by_503(&rec, calls, MAX_ATTEMPTS, "Service temporarily unavailable");

    // Round 2: `motionq retry`, now every create answers 500.
    env.sim
        .set_faults(create_faults(ev, |f| f.error_500 = 1.0))
        .unwrap();
    assert_eq!(
        retry_transient_failures(&env, &campaign).await,
        1,
        "the exhausted job is retryable by command"
    );
    let rec = env.store.job(&campaign, "j00000").await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Queued);
    assert!(
        rec.fields.get("error_class").is_none_or(|e| e.is_empty()),
        "error cleared: {:?}",
        rec.fields
    );
    let c = wait_for(&env, &campaign, Duration::from_secs(90), failed_once).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rec = env.store.job(&campaign, "j00000").await.unwrap().unwrap();
    let calls = injected(&env, "evolink", "error_500");
    println!(
        "round 2 (500s): {c:?}; {calls} create calls answered 500; gen {:?}; error {:?}: {:?}",
        rec.fields.get("gen"),
        rec.fields.get("error_class"),
        rec.fields.get("error_message")
    );
    assert_eq!(rec.state, JobState::Failed, "{:?}", rec.fields);
    assert_eq!(rec.fields["gen"], "1");
    assert_eq!(rec.fields["error_class"], "upstream_transient");
    let msg = &rec.fields["error_message"];
    assert!(
        msg.contains("500") && msg.contains("Internal server error") && !msg.contains("503"),
        "the last error (500), not the earlier 503: {msg}"
    );
    assert_eq!(calls, MAX_ATTEMPTS);

    // Round 3: healthy vendor.
    env.sim.set_faults(motionq_sim::Faults::default()).unwrap();
    assert_eq!(retry_transient_failures(&env, &campaign).await, 1);
    let c = wait_for(&env, &campaign, Duration::from_secs(90), |c| {
        n(c, "stored") == 1
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let creates: usize = env.sim.ledger().vendors["evolink"]
        .keys
        .values()
        .map(|k| k.creates.len())
        .sum();
    println!("round 3 (healthy): {c:?}; accepted creates {creates}");
    assert_eq!(n(&c, "stored"), 1, "{c:?}");
    assert_eq!(creates, 1, "only the healthy round was accepted (and paid)");
}

/// Failover after a vendor task failure: the campaign allows EvoLink then KKIAI (`in_order`);
/// every EvoLink task fails for EvoLink's own reasons (simulator `faults.evolink.task_failure`,
/// `service_error`: retryable). Each job is submitted again under a new generation **on KKIAI**
/// and stored. Ledger: one failed (refunded) task per job on EvoLink, one completed on KKIAI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_task_failure_reroutes_the_job_to_the_other_vendor() {
    let env = start(sim_config(0.002)).await;
    let mut faults = motionq_sim::Faults::default();
    faults.evolink.task_failure = 1.0;
    env.sim.set_faults(faults).unwrap();
    let jobs = 3;
    let campaign = enqueue(&env, &manifest("reroute", &["evolink", "kkiai"], jobs, "")).await;
    let (stop, worker) = spawn_worker(&env, fast_options());
    let c = wait_for(&env, &campaign, Duration::from_secs(120), |c| {
        n(c, "stored") + n(c, "failed") == jobs as i64
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let ledger = env.sim.ledger();
    let on = |v: &str| -> Vec<motionq_sim::CreateRecord> {
        ledger.vendors[v]
            .keys
            .values()
            .flat_map(|k| k.creates.iter().cloned())
            .collect()
    };
    let (ev, kk) = (on("evolink"), on("kkiai"));
    let ev_failed: u64 = ledger.vendors["evolink"]
        .keys
        .values()
        .map(|k| k.failed)
        .sum();
    let ev_refunded: f64 = ledger.vendors["evolink"]
        .keys
        .values()
        .map(|k| k.refunded)
        .sum();
    println!(
        "reroute: {c:?}; evolink creates {} (statuses {:?}, failed {ev_failed}, refunded {ev_refunded:.2}); kkiai creates {} (statuses {:?})",
        ev.len(),
        ev.iter().map(|r| r.status).collect::<Vec<_>>(),
        kk.len(),
        kk.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(n(&c, "stored"), jobs as i64, "{c:?}");
    assert_eq!(
        ev.len(),
        jobs,
        "one EvoLink task per job, none retried there"
    );
    assert!(ev.iter().all(|r| r.status == motionq_sim::Status::Failed));
    assert_eq!(ev_failed, jobs as u64);
    assert_eq!(kk.len(), jobs, "one KKIAI task per job");
    assert!(kk
        .iter()
        .all(|r| r.status == motionq_sim::Status::Completed));
    for rec in env.store.jobs_page(&campaign, 0, 10).await.unwrap() {
        println!(
            "  {}: vendor {:?} gen {:?} vendor_failures {:?} failed_vendors {:?} last_error {:?}",
            rec.id,
            rec.fields.get("vendor"),
            rec.fields.get("gen"),
            rec.fields.get("vendor_failures"),
            rec.fields.get("failed_vendors"),
            rec.fields.get("last_error")
        );
        assert_eq!(rec.state, JobState::Stored, "{}", rec.id);
        assert_eq!(rec.fields["vendor"], "kkiai", "{} re-routed", rec.id);
        assert_eq!(rec.fields["gen"], "1", "{}: one new generation", rec.id);
        assert_eq!(rec.fields["vendor_failures"], "1");
        assert_eq!(rec.fields["failed_vendors"], "evolink");
        assert!(
            rec.fields["last_error"].contains("service_error"),
            "the vendor's reason kept: {:?}",
            rec.fields["last_error"]
        );
    }
}

/// KKIAI and Freepik: a 5xx answer to a create is "possibly created", so it is reconciled
/// (KKIAI by `external_task_id`, Freepik by its task list) before anything else. When the
/// reconciliation proves nothing was created, that create still counts as a failed attempt
/// with its own error: a vendor stuck on 503 fails the job after `max_attempts` creates with
/// the 503 (class `upstream_transient`), never an endless loop of deferred waits; `retry_jobs`
/// puts it back, and with the vendor healthy it is stored with exactly one accepted create.
async fn reconciled_503s_exhaust_the_retries(vendor: motionq_sim::Vendor, vendor_message: &str) {
    const MAX_ATTEMPTS: u64 = 3;
    let name = vendor.as_str();
    let mut env = start(sim_config(0.002)).await;
    env.cfg.queue = toml::from_str(&format!(
        "claim_min_idle_ms = 4000\nclaim_interval_ms = 1000\nrefresh_interval_ms = 1000\npromote_interval_ms = 50\ndefer_delay_ms = 300\n[retry]\nbase = 100\ncap = 500\nmax_attempts = {MAX_ATTEMPTS}\nmax_total = 600000\n"
    ))
    .unwrap();
    env.sim
        .set_faults(create_faults(vendor, |f| f.error_503 = 1.0))
        .unwrap();
    let campaign = enqueue(&env, &manifest(&format!("recon-{name}"), &[name], 1, "")).await;
    let (stop, worker) = spawn_worker(&env, fast_options());

    // Round 1: 503 on every create. Stops at the failure, or as soon as more creates than the
    // policy allows reached the vendor (the endless retry this test guards against); the
    // deadline only ends a stuck run.
    let start_at = std::time::Instant::now();
    let c = loop {
        let c = counts(&env, &campaign).await;
        if n(&c, "failed") == 1
            || injected(&env, name, "error_503") > MAX_ATTEMPTS + 2
            || start_at.elapsed() > Duration::from_secs(90)
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A wrongly continued retry would reach the simulator within this pause.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rec = env.store.job(&campaign, "j00000").await.unwrap().unwrap();
    let calls = injected(&env, name, "error_503");
    let accepted = |env: &Env| -> usize {
        env.sim.ledger().vendors[name]
            .keys
            .values()
            .map(|k| k.creates.len())
            .sum()
    };
    println!(
        "{name} round 1 (503s): {c:?}; {calls} create calls answered 503; accepted creates {}; attempts {:?}; error {:?}: {:?}; last_error {:?}",
        accepted(&env),
        rec.fields.get("attempts"),
        rec.fields.get("error_class"),
        rec.fields.get("error_message"),
        rec.fields.get("last_error"),
    );
    assert_exhausted_by_503(&rec, calls, MAX_ATTEMPTS, vendor_message);
    assert_eq!(
        accepted(&env),
        0,
        "the vendor accepted (and charged) nothing"
    );

    // Round 2: healthy vendor, `motionq retry`.
    env.sim.set_faults(motionq_sim::Faults::default()).unwrap();
    assert_eq!(
        retry_transient_failures(&env, &campaign).await,
        1,
        "the exhausted job is retryable by command"
    );
    let c = wait_for(&env, &campaign, Duration::from_secs(90), |c| {
        n(c, "stored") == 1
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let rec = env.store.job(&campaign, "j00000").await.unwrap().unwrap();
    println!(
        "{name} round 2 (healthy): {c:?}; accepted creates {}; 503s in all {}; gen {:?}",
        accepted(&env),
        injected(&env, name, "error_503"),
        rec.fields.get("gen")
    );
    assert_eq!(n(&c, "stored"), 1, "{c:?}");
    assert_eq!(rec.fields["gen"], "1");
    assert_eq!(accepted(&env), 1, "exactly one accepted (paid) create");
    assert_eq!(injected(&env, name, "error_503"), MAX_ATTEMPTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kkiai_reconciled_503s_fail_after_max_attempts_and_stay_retryable() {
    reconciled_503s_exhaust_the_retries(
        motionq_sim::Vendor::Kkiai,
        "service unavailable, under maintenance",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freepik_reconciled_503s_fail_after_max_attempts_and_stay_retryable() {
    reconciled_503s_exhaust_the_retries(
        motionq_sim::Vendor::Freepik,
        "Service Unavailable. Please try again later.",
    )
    .await;
}
