//! The feeder (issue 3, Admission): campaigns sharing one key progress at equal rates, pause
//! stops admission at once, cancel cancels queued jobs, and a feeder restart duplicates
//! nothing. A test consumer plays the submit stage at a fixed rate (it finishes the oldest
//! admitted jobs directly in the records), so the measurement is about admission alone; then
//! the same fairness with the real worker (submit, poll, collect against the simulator).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use motionq_core::{JobState, Vendor};
use motionq_pipeline::{Pipeline, PipelineOptions};
use redis::AsyncCommands;

/// One shared key: only `evolink-1` stays configured.
async fn one_key_env() -> Env {
    let mut env = start(sim_config(0.01)).await;
    for v in Vendor::ALL {
        let vc = env.cfg.vendors.get_mut(&v).unwrap();
        if v == Vendor::Evolink {
            vc.keys.truncate(1);
        } else {
            vc.keys.clear();
        }
    }
    env
}

fn opts() -> PipelineOptions {
    PipelineOptions {
        feeder_interval: Duration::from_millis(50),
        sweep_interval: Duration::from_secs(3600),
        sweep_stale: Duration::from_secs(3600),
        ..Default::default()
    }
}

/// Finishes up to `per_tick` of the oldest admitted jobs (across `campaigns`) every 50 ms.
fn drain(env: &Env, campaigns: Vec<String>, per_tick: usize) -> tokio::task::JoinHandle<()> {
    let store = env.store.clone();
    tokio::spawn(async move {
        let mut conn = store.conn();
        loop {
            let mut oldest: Vec<(u64, String, String)> = Vec::new();
            for c in &campaigns {
                let ids: Vec<(String, u64)> = conn
                    .zrange_withscores(format!("t:{{c:{c}}}:inflight"), 0, 200)
                    .await
                    .unwrap_or_default();
                oldest.extend(ids.into_iter().map(|(j, s)| (s, c.clone(), j)));
            }
            oldest.sort();
            let mut done = 0;
            for (_, c, j) in oldest {
                if done == per_tick {
                    break;
                }
                let t = store
                    .transition(
                        &c,
                        &j,
                        &[JobState::Admitted],
                        JobState::Stored,
                        "test consumer",
                        &[],
                    )
                    .await
                    .unwrap();
                let _: () = conn
                    .zrem(format!("t:{{c:{c}}}:inflight"), &j)
                    .await
                    .unwrap();
                if matches!(t, motionq_store::Transition::Moved(_)) {
                    done += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// Jobs ever admitted (everything not queued).
async fn progressed(env: &Env, c: &str) -> i64 {
    let rec = env.store.campaign(c).await.unwrap();
    rec.jobs_total as i64 - n(&rec.counts, "queued")
}

fn feeder(
    p: Arc<Pipeline>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(motionq_pipeline::run_feeder(p, async move {
        let _ = rx.await;
    }));
    (tx, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_sharing_a_key_progress_equally_and_a_restart_duplicates_nothing() {
    let env = one_key_env().await;
    let a = enqueue(&env, &manifest("fair-a", &["evolink"], 5000, "")).await;
    let b = enqueue(&env, &manifest("fair-b", &["evolink"], 5000, "")).await;
    let consumer = drain(&env, vec![a.clone(), b.clone()], 4);
    let p = Arc::new(Pipeline::connect(&env.cfg, opts()).await.unwrap());
    let (mut stop, mut h) = feeder(p.clone());
    let mut samples = Vec::new();
    for i in 0..12 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if i == 5 {
            // Restart the feeder (a new process would do the same): nothing is admitted twice.
            let _ = stop.send(());
            h.await.unwrap();
            let p2 = Arc::new(Pipeline::connect(&env.cfg, opts()).await.unwrap());
            (stop, h) = feeder(p2);
        }
        samples.push((progressed(&env, &a).await, progressed(&env, &b).await));
    }
    let _ = stop.send(());
    h.await.unwrap();
    consumer.abort();
    println!("admitted over time (a, b): {samples:?}");
    let (ea, eb) = *samples.last().unwrap();
    assert!(ea > 100 && eb > 100, "both progressed: {samples:?}");
    assert!(
        ea < 5000 && eb < 5000,
        "measured while both still had queued jobs"
    );
    for &(x, y) in samples.iter().filter(|(x, y)| x + y >= 40) {
        let (x, y) = (x as f64, y as f64);
        assert!(
            (x - y).abs() / x.max(y) <= 0.10,
            "rates differ by more than 10%: {samples:?}"
        );
    }
    // The submit queue stays short: about free slots + floor of the one key.
    let backlog = env
        .store
        .campaign(&a)
        .await
        .unwrap()
        .counts
        .get("admitted")
        .copied()
        .unwrap_or(0)
        + env
            .store
            .campaign(&b)
            .await
            .unwrap()
            .counts
            .get("admitted")
            .copied()
            .unwrap_or(0);
    assert!(
        backlog <= 12 + 4,
        "admitted-not-submitted stays bounded by the key's capacity: {backlog}"
    );
    // Nothing admitted twice: one `admitted` event and one submit message per admitted job.
    let mut conn = env.store.conn();
    let mut admitted_events = 0usize;
    for c in [&a, &b] {
        let entries: redis::streams::StreamRangeReply = conn
            .xrange_all(format!("t:{{c:{c}}}:events"))
            .await
            .unwrap();
        let mut per_job: BTreeMap<String, usize> = BTreeMap::new();
        for e in entries.ids {
            let to: Option<String> = e.get("to");
            if to.as_deref() == Some("admitted") {
                *per_job.entry(e.get::<String>("job").unwrap()).or_default() += 1;
            }
        }
        assert!(
            per_job.values().all(|&k| k == 1),
            "a job of {c} was admitted twice"
        );
        admitted_events += per_job.len();
    }
    let stats = p.submit_queue().stats().await.unwrap();
    assert_eq!(
        stats.depth() as usize,
        admitted_events,
        "one submit message per admission: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_sharing_a_key_progress_equally_through_the_real_worker() {
    let env = one_key_env().await;
    let jobs = 150;
    let a = enqueue(&env, &manifest("real-a", &["evolink"], jobs, "")).await;
    let b = enqueue(&env, &manifest("real-b", &["evolink"], jobs, "")).await;
    let (stop, worker) = spawn_worker(&env, fast_options());
    // Sample jobs admitted (everything past `queued`) and stored while both campaigns still
    // have queued jobs.
    let mut samples = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (pa, pb) = (progressed(&env, &a).await, progressed(&env, &b).await);
        let (sa, sb) = (
            n(&counts(&env, &a).await, "stored"),
            n(&counts(&env, &b).await, "stored"),
        );
        if pa >= jobs as i64 || pb >= jobs as i64 {
            break;
        }
        samples.push(((pa, pb), (sa, sb)));
        assert!(
            std::time::Instant::now() < deadline,
            "no campaign got through its jobs: {samples:?}"
        );
    }
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    println!("real worker, (admitted a, b), (stored a, b) over time: {samples:?}");
    let measured: Vec<_> = samples
        .iter()
        .filter(|((pa, pb), _)| pa + pb >= 60)
        .collect();
    assert!(measured.len() >= 3, "enough samples: {samples:?}");
    for ((pa, pb), _) in &measured {
        let (x, y) = (*pa as f64, *pb as f64);
        assert!(
            (x - y).abs() / x.max(y) <= 0.10,
            "admission differs by more than 10%: {samples:?}"
        );
    }
    let ((_, _), (sa, sb)) = **measured.last().unwrap();
    assert!(
        sa > 0 && sb > 0,
        "both campaigns store outputs: {samples:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_admission_at_once_and_cancel_cancels_queued_jobs() {
    let env = one_key_env().await;
    let a = enqueue(&env, &manifest("pause-a", &["evolink"], 300, "")).await;
    let b = enqueue(&env, &manifest("pause-b", &["evolink"], 300, "")).await;
    let consumer = drain(&env, vec![a.clone(), b.clone()], 4);
    let p = Arc::new(Pipeline::connect(&env.cfg, opts()).await.unwrap());
    let (_stop, _h) = feeder(p.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        motionq_pipeline::pause(&env.store, &a).await.unwrap(),
        motionq_pipeline::CampaignChange::Changed("active".into())
    );
    // At most the round in progress when pausing can still admit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paused_at = progressed(&env, &a).await;
    let b_at = progressed(&env, &b).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        progressed(&env, &a).await,
        paused_at,
        "a paused campaign admits nothing"
    );
    assert!(
        progressed(&env, &b).await > b_at + 20,
        "the other campaign takes the capacity"
    );
    // Resume, then cancel: every queued job of the campaign becomes cancelled.
    motionq_pipeline::resume(&env.store, &a).await.unwrap();
    // Bounded wait, not a timing expectation: a loaded machine may need more than one round.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while progressed(&env, &a).await <= paused_at {
        assert!(
            std::time::Instant::now() < deadline,
            "resume admits again (still {paused_at} after 30 s)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let queued = n(&counts(&env, &a).await, "queued");
    let (ch, cancelled) = motionq_pipeline::cancel_campaign(&env.store, &a)
        .await
        .unwrap();
    assert!(matches!(ch, motionq_pipeline::CampaignChange::Changed(_)));
    assert!(cancelled > 0 && cancelled as i64 <= queued);
    tokio::time::sleep(Duration::from_millis(500)).await;
    consumer.abort();
    let c = counts(&env, &a).await;
    assert_eq!(n(&c, "queued"), 0, "{c:?}");
    assert_eq!(
        n(&c, "cancelled") + n(&c, "stored") + n(&c, "admitted"),
        300,
        "{c:?}"
    );
}
