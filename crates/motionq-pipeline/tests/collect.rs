//! The collect stage: an output whose link expired before collection ends `expired` with a
//! clear reason (and nothing is stored); a later collect of live outputs stores them; a
//! backlog is collected earliest link expiry first.

mod common;

use std::time::Duration;

use common::*;
use motionq_core::JobState;
use motionq_pipeline::Stages;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_collected_after_its_link_expired_is_marked_expired() {
    // HighwayAPI links live 3600 s × time_scale = ~1.8 s here.
    let env = start(sim_config(0.0005)).await;
    let campaign = enqueue(&env, &manifest("expiry", &["highwayapi"], 3, "")).await;
    let mut opts = fast_options();
    opts.stages = Stages::parse("feeder,submit,poll").unwrap();
    let (stop, worker) = spawn_worker(&env, opts);
    let c = wait_for(&env, &campaign, Duration::from_secs(60), |c| {
        n(c, "completed") == 3
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    assert_eq!(n(&c, "completed"), 3, "{c:?}");
    // Let the links expire, then run the collector alone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut opts = fast_options();
    opts.stages = Stages::parse("collect").unwrap();
    let (stop, worker) = spawn_worker(&env, opts);
    let c = wait_for(&env, &campaign, Duration::from_secs(60), |c| {
        n(c, "expired") + n(c, "stored") + n(c, "failed") == 3
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    assert_eq!(n(&c, "expired"), 3, "{c:?}");
    assert_eq!(videos(env.out.path()), 0, "nothing stored");
    for rec in env.store.jobs_page(&campaign, 0, 10).await.unwrap() {
        assert_eq!(rec.state, JobState::Expired);
        assert_eq!(rec.fields["error_class"], "expired");
        assert!(
            rec.fields["error_message"].contains("expired"),
            "{:?}",
            rec.fields
        );
    }
}

/// A backlog of completed outputs is collected earliest link expiry first, not in completion
/// order: EvoLink's jobs complete first (links live 24 h), HighwayAPI's later (links live
/// `video_url_ttl`, 1 h scaled down here); one collector then stores every HighwayAPI output
/// before any EvoLink one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_collected_earliest_link_expiry_first() {
    let env = start(sim_config(0.01)).await;
    let late = enqueue(&env, &manifest("late-expiry", &["evolink"], 4, "")).await;
    let mut opts = fast_options();
    opts.stages = Stages::parse("feeder,submit,poll").unwrap();
    let (stop, worker) = spawn_worker(&env, opts);
    wait_for(&env, &late, Duration::from_secs(60), |c| {
        n(c, "completed") == 4
    })
    .await;
    let soon = enqueue(&env, &manifest("soon-expiry", &["highwayapi"], 4, "")).await;
    wait_for(&env, &soon, Duration::from_secs(60), |c| {
        n(c, "completed") == 4
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let expiry = |recs: &[motionq_store::JobRecord]| -> Vec<u64> {
        recs.iter()
            .map(|r| r.fields["output_expires_at"].parse().unwrap())
            .collect()
    };
    let (l, s) = (
        env.store.jobs_page(&late, 0, 10).await.unwrap(),
        env.store.jobs_page(&soon, 0, 10).await.unwrap(),
    );
    assert!(
        expiry(&s).iter().max() < expiry(&l).iter().min(),
        "the scenario needs HighwayAPI links to expire first: {:?} vs {:?}",
        expiry(&s),
        expiry(&l)
    );
    // Every completed output waits on the backlog (also what `motionq_queue_depth` reports
    // as the collect stage's unread work) until a collector has room.
    let p = motionq_pipeline::Pipeline::connect(&env.cfg, Default::default())
        .await
        .unwrap();
    assert_eq!(p.collect_backlog().await.unwrap(), 8);
    let mut opts = fast_options();
    opts.stages = Stages::parse("collect").unwrap();
    opts.collect_concurrency = Some(1);
    let (stop, worker) = spawn_worker(&env, opts);
    for c in [&late, &soon] {
        let got = wait_for(&env, c, Duration::from_secs(60), |c| n(c, "stored") == 4).await;
        assert_eq!(n(&got, "stored"), 4, "{c}: {got:?}");
    }
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    assert_eq!(p.collect_backlog().await.unwrap(), 0, "the backlog drained");
    let stored_at = |c: &str| {
        let env = &env;
        let c = c.to_string();
        async move {
            env.store
                .jobs_page(&c, 0, 10)
                .await
                .unwrap()
                .iter()
                .map(|r| r.fields["stored_at"].parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        }
    };
    let (l, s) = (stored_at(&late).await, stored_at(&soon).await);
    assert!(
        s.iter().max() <= l.iter().min(),
        "HighwayAPI outputs (earlier expiry) stored at {s:?}, EvoLink ones at {l:?}"
    );
}

/// `.mp4` files anywhere under `dir`.
fn videos(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        videos(&p)
                    } else {
                        usize::from(p.extension().is_some_and(|x| x == "mp4"))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
