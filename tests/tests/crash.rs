//! Suite 1, worker crashes: a mixed-vendor campaign while `motionq worker` processes are
//! SIGKILLed at random moments (so also mid-download and mid-upload) and abort themselves right
//! after a create answer (`MOTIONQ_TEST_CRASH_AFTER_CREATE`, the window between the vendor's
//! answer and recording it), always restarted. Then, against the simulator's ledger and the
//! object store: every job terminal; every stored output exactly once with the right sha256;
//! zero duplicate paid submissions on every vendor (KKIAI/Freepik reconcile exactly, the
//! others fail the job as `unreconcilable` under the default `fail` policy: at most one per
//! crash); zero pending reservations, committed ones only for unreconcilable jobs, and no
//! concurrency lease left once orphaned ones (taken by a worker killed before recording them)
//! expired; and no call refused by the simulator for a rate, concurrency or spend limit. A job
//! whose output link expired while its collector was dead ends `expired`.
//! Staging files of uploads cut by a SIGKILL (`<key>#<n>`) are counted and reported.
//!
//! CI: 300 jobs, ≥ 50 kills. `MOTIONQ_LONG=1`: 2000 jobs, ≥ 400 kills.

use std::process::Child;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tests::*;

fn vendor_of(i: usize) -> &'static str {
    // 1/3 KKIAI, 1/4 Freepik, the rest spread over the three callback-only vendors.
    match i % 12 {
        0..=3 => "kkiai",
        4..=6 => "freepik",
        7 | 8 => "aivideoapi",
        9 | 10 => "evolink",
        _ => "highwayapi",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_processes_lose_nothing_and_pay_once() {
    let redis = motionq_testkit::RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let jobs = size(300, 2000);
    let min_kills = size(50, 400);
    let dep = Deployment::start(
        RedisTarget::Standalone(redis.url()),
        sim_config(0.002),
        "[worker]\nsubmit_concurrency = 8\npoll_concurrency = 16\ncollect_concurrency = 4\n",
    )
    .await
    .unwrap();
    // Leases of a SIGKILLed worker come back after the key's `lease_ttl_s`; 30 s instead of the
    // default 120 s keeps the suite short (tasks finish in about a second at this time scale,
    // so live leases are renewed well within it).
    let cfg = std::fs::read_to_string(&dep.config).unwrap();
    std::fs::write(
        &dep.config,
        cfg.replace("max_concurrent = ", "lease_ttl_s = 30\nmax_concurrent = "),
    )
    .unwrap();
    let campaign = dep.enqueue(&manifest("crash", jobs, vendor_of, |_| String::new()));

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let crash_hook = [("MOTIONQ_TEST_CRASH_AFTER_CREATE", "0.1")];
    let spawn = |hooked: bool| -> Child {
        dep.spawn_worker(&[], if hooked { &crash_hook[..] } else { &[] })
            .0
    };
    let mut workers: Vec<Child> = (0..3).map(|_| spawn(true)).collect();
    let (mut kills, mut deaths) = (0usize, 0usize);
    let started = Instant::now();
    // Chaos: a random worker SIGKILLed every 0.4–2 s until enough kills happened and at least
    // half the campaign went through the chaos (so kills hit every stage).
    let stored_now = |dep: &Deployment| {
        dep.counts(&campaign)
            .and_then(|c| c.get("stored").copied())
            .unwrap_or(0) as usize
    };
    while kills < min_kills || (stored_now(&dep) < jobs / 2 && kills < 3 * min_kills) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(400..2000))).await;
        let i = rng.random_range(0..workers.len());
        sigkill(&mut workers[i]);
        kills += 1;
        workers[i] = spawn(true);
        for w in workers.iter_mut() {
            if let Ok(Some(_)) = w.try_wait() {
                deaths += 1; // the crash hook fired
                *w = spawn(true);
            }
        }
    }
    let chaos_secs = started.elapsed().as_secs_f64();
    let progress_at_end_of_chaos = dep.counts(&campaign).unwrap_or_default();
    // Calm: clean workers finish the campaign (a dead worker's job locks expire after 60 s).
    for w in workers.iter_mut() {
        sigkill(w);
        *w = spawn(false);
    }
    let done = dep
        .wait_terminal(
            &[(campaign.clone(), jobs)],
            Duration::from_secs(if long_mode() { 1800 } else { 420 }),
            || {},
        )
        .await;
    for w in workers.iter_mut() {
        sigterm(w, Duration::from_secs(15)).unwrap();
    }
    let total_secs = started.elapsed().as_secs_f64();

    let rows = dep.report(&campaign);
    let files = dep.stored_files();
    let ledger = dep.sim.ledger();
    let a = audit(&rows, &files, &ledger);
    let (leases_at_end, _, _) = limits_leftovers(&dep.config, &dep.redis, &dep.prefix)
        .await
        .unwrap();
    // Slots taken by a worker that was killed before it recorded them (the job then ran on
    // another key) are orphans until their lease expires: wait for that, then nothing may be
    // left.
    let orphaned: u32 = leases_at_end.values().sum();
    let drain = Instant::now();
    let (leases, pending, committed) = loop {
        let l = limits_leftovers(&dep.config, &dep.redis, &dep.prefix)
            .await
            .unwrap();
        if l.0.values().all(|n| *n == 0) || drain.elapsed() > Duration::from_secs(45) {
            break l;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let drain_secs = drain.elapsed().as_secs_f64();
    // Objects: the stored ones, and staging files (`<key>#<n>`) of uploads cut by a SIGKILL.
    let staging: Vec<&String> = files.keys().filter(|k| k.contains('#')).collect();
    let objects = files.len() - staging.len();
    println!("crash suite: {jobs} jobs, {kills} SIGKILLs + {deaths} crash-hook aborts in {chaos_secs:.1} s of chaos; all terminal: {done} after {total_secs:.1} s");
    println!("  progress when chaos ended: {progress_at_end_of_chaos:?}");
    println!(
        "  final states: {:?}; failed by class: {:?}",
        a.states, a.failed_classes
    );
    println!(
        "  stored and verified (file sha256 = record = ledger): {}; objects in store: {}",
        a.stored_verified,
        files.len()
    );
    let mut unreconcilable_total = 0;
    for v in VENDORS {
        let on_v: Vec<_> = rows
            .iter()
            .filter(|r| vendor_of(r["job_id"][1..].parse().unwrap()) == v)
            .collect();
        let stored = on_v.iter().filter(|r| r["state"] == "stored").count();
        let unrec = on_v
            .iter()
            .filter(|r| r.get("error_class").map(String::as_str) == Some("unreconcilable"))
            .count();
        unreconcilable_total += unrec;
        let (creates, dups) = creates_and_duplicates(&ledger, v);
        let max_in_flight: Vec<u32> = ledger.vendors[v]
            .keys
            .values()
            .map(|k| k.max_in_flight)
            .collect();
        println!("  {v}: {} jobs, stored {stored}, unreconcilable {unrec}, accepted creates {creates}, duplicate paid {dups}, max in flight per key {max_in_flight:?}", on_v.len());
        assert_eq!(dups, 0, "{v}: a job was paid twice");
        // Limits under chaos: the simulator never had to refuse a call for a limit (its
        // limits in config/sim.toml are at least motionq's in config/demo.toml).
        for (alias, k) in &ledger.vendors[v].keys {
            for kind in ["rate_limit", "query_rate_limit", "concurrency", "spend_cap"] {
                assert_eq!(
                    k.rejections.get(kind).copied().unwrap_or(0),
                    0,
                    "{v}/{alias}: {kind} refusals under SIGKILL chaos"
                );
            }
        }
        if v == "kkiai" || v == "freepik" {
            assert_eq!(
                stored,
                on_v.len(),
                "{v}: every job stored (exact reconciliation)"
            );
            assert_eq!(
                creates,
                on_v.len(),
                "{v}: exactly one accepted create per job"
            );
        } else {
            // Callback-only vendors under `unreconcilable = "fail"`: never paid twice, at most one
            // possibly-lost task per crash, each accounted for as failed `unreconcilable`.
            assert!(
                creates <= on_v.len(),
                "{v}: more accepted creates than jobs"
            );
        }
    }
    println!("  limits after the run: {orphaned} orphaned leases when the last job finished, all expired after {drain_secs:.1} s: {leases:?}; pending reservations {pending}, committed unsettled {committed} (unreconcilable jobs {unreconcilable_total})");
    println!(
        "  staging files left by uploads cut by SIGKILL: {} {:?}",
        staging.len(),
        staging
    );

    assert!(done, "not every job is terminal: {:?}", a.states);
    assert!(kills >= min_kills);
    assert!(
        a.problems.is_empty(),
        "stored outputs disagree: {:#?}",
        a.problems
    );
    let stored = a.states.get("stored").copied().unwrap_or(0);
    assert_eq!(a.stored_verified, stored, "every stored job verified");
    assert_eq!(
        objects,
        stored,
        "exactly one object per stored job, no strays: {:?}",
        files.keys().take(20).collect::<Vec<_>>()
    );
    assert!(
        unreconcilable_total <= kills + deaths,
        "at most one unreconcilable job per crash ({unreconcilable_total} > {})",
        kills + deaths
    );
    assert!(
        leases.values().all(|n| *n == 0),
        "leaked concurrency leases: {leases:?}"
    );
    assert_eq!(pending, 0, "leaked pending reservations");
    assert!(
        committed <= unreconcilable_total,
        "committed reservations left ({committed}) beyond the unreconcilable jobs whose money may be spent ({unreconcilable_total})"
    );
}
