//! Suite 3, scale-out: the demo campaign (`manifests/demo.json`) plus a larger mixed campaign,
//! worked by several `motionq worker` processes (one of them split into stages), against
//! (a) a local three-node Redis Cluster (`MOTIONQ__REDIS__MODE=cluster`,
//! `MOTIONQ__REDIS__NODES`) and (b) a password-protected Redis whose password only travels in
//! the env var named by `MOTIONQ__REDIS__PASSWORD_ENV`. Every job stored, verified against the
//! ledger, no job paid twice, no in-flight maximum above a key's limit, no concurrency or
//! spend-cap refusal by the simulator. The simulator runs at the demo's time scale (0.01): at
//! 0.002 a HighwayAPI link lives 7 s, shorter than a poll interval of an old task.

use std::time::{Duration, Instant};

use tests::*;

fn vendor_of(i: usize) -> &'static str {
    VENDORS[i % 5]
}

async fn run_campaigns(dep: &Deployment, label: &str) {
    let jobs = size(60, 600);
    let demo = std::fs::read_to_string(format!("{ROOT}/manifests/demo.json")).unwrap();
    let demo_id = dep.enqueue(&demo);
    let demo_jobs = dep.report(&demo_id).len();
    let mixed = dep.enqueue(&manifest(
        &format!("scale-{label}"),
        jobs,
        vendor_of,
        |_| String::new(),
    ));
    let started = Instant::now();
    // Three full workers and one split into two processes by stage.
    let mut workers: Vec<_> = (0..3).map(|_| dep.spawn_worker(&[], &[])).collect();
    workers.push(dep.spawn_worker(&["--stages", "submit,feeder"], &[]));
    workers.push(dep.spawn_worker(&["--stages", "poll,collect"], &[]));
    let done = dep
        .wait_terminal(
            &[(demo_id.clone(), demo_jobs), (mixed.clone(), jobs)],
            Duration::from_secs(if long_mode() { 1800 } else { 240 }),
            || {},
        )
        .await;
    let secs = started.elapsed().as_secs_f64();
    let exited: Vec<String> = workers
        .iter_mut()
        .filter_map(|(w, log)| {
            w.try_wait().ok().flatten().map(|st| {
                format!(
                    "{st}: {}",
                    std::fs::read_to_string(log)
                        .unwrap_or_default()
                        .lines()
                        .rev()
                        .take(5)
                        .collect::<Vec<_>>()
                        .join(" | ")
                )
            })
        })
        .collect();
    for (w, _) in workers.iter_mut() {
        sigterm(w, Duration::from_secs(15)).unwrap();
    }
    let ledger = dep.sim.ledger();
    let files = dep.stored_files();
    let mut rows = dep.report(&demo_id);
    rows.extend(dep.report(&mixed));
    let a = audit(&rows, &files, &ledger);
    println!(
        "scale-out ({label}): 5 worker processes, {} jobs ({demo_jobs} demo + {jobs}), all terminal: {done} in {secs:.1} s; states {:?}, failed {:?}, verified {}",
        rows.len(),
        a.states,
        a.failed_classes,
        a.stored_verified
    );
    assert!(exited.is_empty(), "{label}: workers exited: {exited:?}");
    assert!(done, "{label}: not all terminal: {:?}", a.states);
    assert!(a.problems.is_empty(), "{label}: {:#?}", a.problems);
    assert_eq!(
        a.stored_verified,
        rows.len(),
        "{label}: every job stored and verified: {:?} {:?}",
        a.states,
        a.failed_classes
    );
    for v in VENDORS {
        let (creates, dups) = creates_and_duplicates(&ledger, v);
        let max: Vec<u32> = ledger.vendors[v]
            .keys
            .values()
            .map(|k| k.max_in_flight)
            .collect();
        println!(
            "  {v}: accepted creates {creates}, duplicates {dups}, max in flight per key {max:?}"
        );
        assert_eq!(dups, 0, "{label}/{v}: paid twice");
        for (alias, k) in &ledger.vendors[v].keys {
            for kind in ["rate_limit", "concurrency", "spend_cap", "query_rate_limit"] {
                assert_eq!(
                    k.rejections.get(kind).copied().unwrap_or(0),
                    0,
                    "{label}: {v}/{alias} {kind} rejections: several workers must share one limit"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_on_a_three_node_redis_cluster() {
    let cluster = motionq_testkit::RedisCluster::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let nodes: Vec<String> = cluster.urls();
    let dep = Deployment::start(RedisTarget::Cluster(nodes), sim_config(0.01), "")
        .await
        .unwrap();
    run_campaigns(&dep, "cluster").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_on_a_password_protected_redis() {
    let password = "s3cret-Redis-pass";
    let redis = motionq_testkit::RedisServer::start_with(motionq_testkit::RedisOptions {
        password: Some(password.into()),
        ..Default::default()
    })
    .await
    .expect(motionq_testkit::INSTALL_HINT);
    let url = format!("redis://127.0.0.1:{}/", redis.port());
    let dep = Deployment::start(
        RedisTarget::Password {
            url: url.clone(),
            password: password.into(),
        },
        sim_config(0.01),
        "",
    )
    .await
    .unwrap();
    // Without the password the binary must refuse with an operational error, not hang.
    let mut no_pass = Deployment::start(RedisTarget::Standalone(url), sim_config(0.01), "")
        .await
        .unwrap();
    no_pass.prefix = "nopass".into();
    let o = no_pass.run(&["status", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "status without the Redis password: {o:?}"
    );
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains(password),
        "the password never appears in errors"
    );
    run_campaigns(&dep, "password").await;
}
