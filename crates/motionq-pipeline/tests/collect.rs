//! The collect stage: an output whose link expired before collection ends `expired` with a
//! clear reason (and nothing is stored); a later collect of live outputs stores them.

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
