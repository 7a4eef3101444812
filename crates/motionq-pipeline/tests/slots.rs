//! Concurrency slots and parks at the pipeline level: a released slot goes to a waiting job
//! at once (the poll stage wakes the longest waiter of the key instead of leaving the slot
//! idle until a waiter's deferred message comes back), and a parked key's running tasks are
//! still polled to the end (a park stops spending, not the collection of what was paid).

mod common;

use std::time::Duration;

use common::*;
use motionq_core::Vendor;
use redis::AsyncCommands;

/// Leaves one configured key, `aivideoapi/aivideoapi-1`, optionally with `max_concurrent`.
fn only_key_aivideoapi_1(env: &mut Env, max_concurrent: Option<u32>) {
    for (v, vc) in env.cfg.vendors.iter_mut() {
        if *v == Vendor::Aivideoapi {
            vc.keys.truncate(1);
            if let Some(c) = max_concurrent {
                vc.keys[0].max_concurrent = c;
            }
        } else {
            vc.keys.clear();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_slot_wakes_a_waiting_job_without_its_defer_delay() {
    let mut env = start(sim_config(0.002)).await;
    // One AI Video API key with one slot, and a defer delay of an hour: a job told "all slots
    // in use" comes back on its own only after an hour, so every job after the first can only
    // finish within this test by being woken when the slot before it is released. The sweep
    // (which re-pushes idle jobs) is pushed out of the way for the same reason.
    only_key_aivideoapi_1(&mut env, Some(1));
    env.cfg.queue = toml::from_str(
        "claim_min_idle_ms = 4000\nclaim_interval_ms = 1000\nrefresh_interval_ms = 1000\n\
         promote_interval_ms = 50\ndefer_delay_ms = 3600000\n[retry]\nbase = 100\ncap = 2000\n\
         max_attempts = 30\nmax_total = 600000\n",
    )
    .unwrap();
    let jobs = 6;
    let campaign = enqueue(&env, &manifest("slots", &["aivideoapi"], jobs, "")).await;
    let mut opts = fast_options();
    opts.pipeline.sweep_interval = Duration::from_secs(3600);
    opts.pipeline.sweep_stale = Duration::from_secs(3600);
    let (stop, worker) = spawn_worker(&env, opts);
    let c = wait_for(&env, &campaign, Duration::from_secs(120), |c| {
        n(c, "stored") + n(c, "failed") == jobs as i64
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let records = env.store.jobs_page(&campaign, 0, 100).await.unwrap();
    let stuck: Vec<_> = records
        .iter()
        .filter(|j| j.state != motionq_core::JobState::Stored)
        .map(|j| (&j.id, j.state, j.fields.get("wait_reason")))
        .collect();
    assert_eq!(
        n(&c, "stored"),
        jobs as i64,
        "every job stored: {c:?} {stuck:?}"
    );

    let ledger = env.sim.ledger();
    let key = &ledger.vendors["aivideoapi"].keys["aivideoapi-1"];
    assert_eq!(key.creates.len(), jobs, "one paid create per job");
    assert_eq!(key.duplicates, 0);
    assert_eq!(key.max_in_flight, 1, "the one slot was never exceeded");
    // Jobs did wait for the slot (so the wake-ups were exercised), and each waiter was woken
    // or removed itself: nothing is left registered.
    let mut conn = redis::Client::open(env.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let events: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(env.store.keys().events(&campaign))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let waited: std::collections::BTreeSet<&String> = events
        .iter()
        .filter(|(_, f)| f.values().any(|v| v.contains("slots in use")))
        .filter_map(|(_, f)| f.get("job"))
        .collect();
    assert!(
        waited.len() >= 2,
        "jobs should have waited for the one slot: {waited:?}"
    );
    let left: u64 = conn
        .zcard("t:slotwait:aivideoapi/aivideoapi-1")
        .await
        .unwrap();
    assert_eq!(left, 0, "slot waiters left registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_key_still_polls_its_running_tasks_to_the_end() {
    // Tasks of ~5 s, so the key can be parked while they run.
    let mut env = start(sim_config(0.02)).await;
    only_key_aivideoapi_1(&mut env, None);
    let campaign = enqueue(&env, &manifest("parked", &["aivideoapi"], 2, "")).await;
    let (stop, worker) = spawn_worker(&env, fast_options());
    let c = wait_for(&env, &campaign, Duration::from_secs(60), |c| {
        n(c, "submitted") == 2
    })
    .await;
    assert_eq!(n(&c, "submitted"), 2, "both tasks running: {c:?}");
    // The wallet runs dry (as a vendor's insufficient-funds answer would park it).
    let limits = limits(&env).await;
    let key: motionq_limits::KeyId = "aivideoapi/aivideoapi-1".parse().unwrap();
    limits
        .park(&key, motionq_limits::ParkReason::InsufficientFunds, None)
        .await
        .unwrap();
    let c = wait_for(&env, &campaign, Duration::from_secs(120), |c| {
        n(c, "stored") + n(c, "failed") == 2
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    assert_eq!(n(&c, "stored"), 2, "the paid tasks were collected: {c:?}");
    assert!(limits.parked(&key).await.unwrap().is_some(), "still parked");
    let ledger = env.sim.ledger();
    assert_eq!(
        ledger.vendors["aivideoapi"].keys["aivideoapi-1"]
            .creates
            .len(),
        2
    );
}
