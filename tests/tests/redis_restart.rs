//! Suite 2, Redis restart: during a campaign worked by two `motionq worker` processes, the
//! private `redis-server` (AOF, `appendfsync always`) is SIGKILLed and restarted from its AOF,
//! and later shut down cleanly and restarted. The workers must ride it out (reconnect with
//! backoff, not exit), nothing acknowledged may be lost (a job reported `stored`, or a
//! campaign whose `enqueue` returned, before an outage is still there afterwards) and the
//! campaign completes with every output verified against the simulator's ledger and no job
//! paid twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tests::*;

fn vendor_of(i: usize) -> &'static str {
    [
        "kkiai",
        "freepik",
        "kkiai",
        "aivideoapi",
        "evolink",
        "highwayapi",
    ][i % 6]
}

/// Job id → state, for jobs in a terminal state, as reported now.
fn acknowledged(dep: &Deployment, campaign: &str) -> BTreeMap<String, String> {
    dep.report(campaign)
        .into_iter()
        .filter(|r| TERMINAL.contains(&r["state"].as_str()))
        .map(|r| (r["job_id"].clone(), r["state"].clone()))
        .collect()
}

async fn wait_stored_at_least(dep: &Deployment, campaign: &str, n: i64) {
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end {
        if dep
            .counts(campaign)
            .is_some_and(|c| c.get("stored").copied().unwrap_or(0) >= n)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{campaign}: fewer than {n} jobs stored after 120 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_ride_out_redis_kill_and_shutdown_and_nothing_acknowledged_is_lost() {
    let mut redis = motionq_testkit::RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let jobs = size(180, 1200);
    let dep = Deployment::start(RedisTarget::Standalone(redis.url()), sim_config(0.002), "")
        .await
        .unwrap();
    let first = dep.enqueue(&manifest("restart-a", jobs, vendor_of, |_| String::new()));
    let mut workers: Vec<_> = (0..2).map(|_| dep.spawn_worker(&[], &[])).collect();
    let started = Instant::now();
    let mut outages = Vec::new();

    // Outage 1: SIGKILL while jobs are in every stage.
    wait_stored_at_least(&dep, &first, (jobs / 5) as i64).await;
    let before_kill = acknowledged(&dep, &first);
    // A second campaign acknowledged just before the kill.
    let second = dep.enqueue(&manifest("restart-b", jobs / 3, vendor_of, |_| {
        String::new()
    }));
    redis.kill();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart().await.expect("restart redis from its AOF");
    outages.push(("SIGKILL", before_kill.len(), down.elapsed().as_secs_f64()));
    let after_kill = acknowledged(&dep, &first);
    let lost: Vec<_> = before_kill
        .iter()
        .filter(|(j, s)| after_kill.get(*j) != Some(*s))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged jobs lost by SIGKILL: {lost:?}"
    );
    assert_eq!(
        dep.report(&second).len(),
        jobs / 3,
        "the campaign acknowledged before the kill is complete after the restart"
    );

    // Outage 2: a clean SHUTDOWN (AOF fsynced) and restart.
    wait_stored_at_least(&dep, &first, (jobs / 2) as i64).await;
    let before_shutdown = acknowledged(&dep, &first);
    redis.shutdown().await.expect("redis SHUTDOWN");
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart().await.expect("restart redis");
    outages.push((
        "SHUTDOWN",
        before_shutdown.len(),
        down.elapsed().as_secs_f64(),
    ));
    let after_shutdown = acknowledged(&dep, &first);
    let lost: Vec<_> = before_shutdown
        .iter()
        .filter(|(j, s)| after_shutdown.get(*j) != Some(*s))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged jobs lost by SHUTDOWN: {lost:?}"
    );

    let done = dep
        .wait_terminal(
            &[(first.clone(), jobs), (second.clone(), jobs / 3)],
            Duration::from_secs(if long_mode() { 1800 } else { 300 }),
            || {},
        )
        .await;
    let exited: Vec<String> = workers
        .iter_mut()
        .filter_map(|(w, log)| {
            w.try_wait()
                .ok()
                .flatten()
                .map(|st| format!("{st} (log {})", log.display()))
        })
        .collect();
    for (w, _) in workers.iter_mut() {
        sigterm(w, Duration::from_secs(15)).unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let ledger = dep.sim.ledger();
    let files = dep.stored_files();
    let mut rows = dep.report(&first);
    rows.extend(dep.report(&second));
    let a = audit(&rows, &files, &ledger);
    println!(
        "redis restart suite: {} jobs in 2 campaigns, all terminal: {done} in {secs:.1} s",
        rows.len()
    );
    for (kind, acked, down) in &outages {
        println!(
            "  {kind}: {acked} jobs acknowledged before, all still there after {down:.1} s down"
        );
    }
    println!(
        "  states {:?}, failed by class {:?}, stored verified {}",
        a.states, a.failed_classes, a.stored_verified
    );
    for v in ["kkiai", "freepik", "aivideoapi", "evolink", "highwayapi"] {
        let (creates, dups) = creates_and_duplicates(&ledger, v);
        println!("  {v}: accepted creates {creates}, duplicate paid {dups}");
        assert_eq!(dups, 0, "{v}: a job was paid twice across Redis outages");
    }
    assert!(
        exited.is_empty(),
        "workers exited instead of reconnecting: {exited:?}"
    );
    assert!(
        done,
        "campaigns did not complete after the outages: {:?}",
        a.states
    );
    assert!(a.problems.is_empty(), "{:#?}", a.problems);
    assert_eq!(files.len(), a.stored_verified);
    // A create answered while Redis was down cannot be recorded: KKIAI/Freepik reconcile it,
    // the callback-only vendors fail it as `unreconcilable` (never paid twice). Nothing else.
    let unrec = a.failed_classes.get("unreconcilable").copied().unwrap_or(0);
    assert_eq!(
        a.states.get("stored").copied().unwrap_or(0) + unrec,
        rows.len(),
        "every job stored or unreconcilable: {:?} {:?}",
        a.states,
        a.failed_classes
    );
    assert!(
        unrec <= 2 * 16,
        "at most the in-flight creates of two outages are unreconcilable ({unrec})"
    );
}
