//! Graceful shutdown (issue 5): `motionq worker` processes are sent SIGTERM again and again in
//! the middle of a campaign, while creates, polls and downloads are in flight. Each must stop by
//! itself (exit 0, no SIGKILL) and leave every job either finished or back in Redis for the next
//! worker: the campaign completes with replacement workers, every output is stored once with the simulator's sha256, every job was
//! created exactly once (the ledger), and no pending reservation or live lease is left.

use std::time::{Duration, Instant};

use tests::*;

fn vendor_of(i: usize) -> &'static str {
    VENDORS[i % 5]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_campaign_loses_nothing_and_pays_once() {
    let redis = motionq_testkit::RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let jobs = size(120, 800);
    let stops = size(6, 40);
    let dep = Deployment::start(
        RedisTarget::Standalone(redis.url()),
        sim_config(0.01),
        "[worker]\nsubmit_concurrency = 6\npoll_concurrency = 16\ncollect_concurrency = 4\n",
    )
    .await
    .unwrap();
    let campaign = dep.enqueue(&manifest("graceful", jobs, vendor_of, |_| String::new()));

    let mut workers: Vec<_> = (0..2).map(|_| dep.spawn_worker(&[], &[]).0).collect();
    let mut drains = Vec::new();
    // Jobs between the vendor and the store (submitting, submitted, completed) at each stop.
    let mut busy_at_stop = Vec::new();
    let mut i = 0;
    while drains.len() < stops {
        // Let work get in flight, then stop one worker gracefully while the other runs on.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let counts = dep.counts(&campaign).unwrap_or_default();
        busy_at_stop.push(
            ["submitting", "submitted", "completed"]
                .iter()
                .map(|s| counts.get(*s).copied().unwrap_or(0))
                .sum::<i64>(),
        );
        let w = &mut workers[i % 2];
        let took = sigterm_graceful(w, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("stop {}: {e}; counts {counts:?}", drains.len() + 1));
        drains.push(took);
        *w = dep.spawn_worker(&[], &[]).0;
        i += 1;
        if terminal_count(&dep.counts(&campaign).unwrap_or_default()) == jobs as i64 {
            break;
        }
    }
    let progress = dep.counts(&campaign).unwrap_or_default();
    let started = Instant::now();
    let done = dep
        .wait_terminal(
            &[(campaign.clone(), jobs)],
            Duration::from_secs(if long_mode() { 1800 } else { 300 }),
            || {},
        )
        .await;
    // The last stop of every worker is graceful too.
    for w in workers.iter_mut() {
        drains.push(sigterm_graceful(w, Duration::from_secs(60)).expect("final stop"));
    }
    let ledger = dep.sim.ledger();
    let files = dep.stored_files();
    let rows = dep.report(&campaign);
    let a = audit(&rows, &files, &ledger);
    let (left_leases, pending, committed) = limits_leftovers(&dep.config, &dep.redis, &dep.prefix)
        .await
        .unwrap();
    let slowest = drains.iter().max().copied().unwrap_or_default();
    println!(
        "graceful: {jobs} jobs, {} SIGTERMs (all exited 0), slowest drain {slowest:.1?}; progress \
         at the last mid-run stop {progress:?}; then all terminal: {done} after {:.1} s; states \
         {:?}; verified {}; jobs at the vendor or collecting at each stop {busy_at_stop:?}; leftover leases {left_leases:?}, pending reservations {pending}, \
         committed unsettled {committed}",
        drains.len(),
        started.elapsed().as_secs_f64(),
        a.states,
        a.stored_verified,
    );
    assert!(
        busy_at_stop.iter().filter(|n| **n > 0).count() >= stops / 2,
        "most stops must hit a worker with jobs in flight: {busy_at_stop:?}"
    );
    assert!(done, "not all terminal: {:?}", a.states);
    assert!(a.problems.is_empty(), "{:#?}", a.problems);
    assert_eq!(a.stored_verified, jobs, "every job stored and verified");
    for v in VENDORS {
        let (creates, dups) = creates_and_duplicates(&ledger, v);
        let on_v = (0..jobs).filter(|i| vendor_of(*i) == v).count();
        assert_eq!(dups, 0, "{v}: paid twice");
        assert_eq!(creates, on_v, "{v}: exactly one accepted create per job");
    }
    assert!(
        left_leases.values().all(|n| *n == 0),
        "leases left: {left_leases:?}"
    );
    assert_eq!(pending, 0, "pending reservations left");
    assert_eq!(committed, 0, "committed reservations never settled");
}
