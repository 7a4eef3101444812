//! Issue 5 acceptance: with the simulator injecting ~30% 503s (create and query) and 429
//! storms, a 500-job campaign completes with every job accounted for, and the ledger shows no
//! duplicate submissions.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_jobs_through_503s_and_429_storms() {
    let mut text = std::fs::read_to_string(format!("{ROOT}/config/sim.toml")).unwrap();
    for v in ["evolink", "kkiai", "aivideoapi"] {
        text.push_str(&format!(
            "\n[faults.{v}.create]\nerror_503 = 0.3\nstorms = [{{ from_secs = 3, to_secs = 6, status = 429 }}, {{ from_secs = 12, to_secs = 14, status = 429 }}]\n[faults.{v}.query]\nerror_503 = 0.3\n"
        ));
    }
    let mut sim = motionq_sim::SimConfig::from_toml_str(&text).expect("sim config with faults");
    sim.time_scale = 0.001;
    sim.seed = 11;
    let env = start(sim).await;
    let campaign = enqueue(
        &env,
        &manifest("faults", &["evolink", "kkiai", "aivideoapi"], 500, ""),
    )
    .await;
    let mut opts = fast_options();
    opts.submit_concurrency = Some(24);
    opts.poll_concurrency = Some(48);
    let (stop, worker) = spawn_worker(&env, opts);
    let terminal = |c: &std::collections::BTreeMap<String, i64>| {
        n(c, "stored") + n(c, "failed") + n(c, "expired")
    };
    // Ends as soon as every job is terminal; the bound only stops a stuck run.
    let c = wait_for(&env, &campaign, Duration::from_secs(300), |c| {
        terminal(c) == 500
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let ledger = env.sim.ledger();
    let mut accepted = 0usize;
    let mut injected = 0u64;
    for v in ["evolink", "kkiai", "aivideoapi"] {
        let vl = &ledger.vendors[v];
        injected += vl.faults_injected.values().sum::<u64>();
        let mut fps: Vec<&String> = vl
            .keys
            .values()
            .flat_map(|k| k.creates.iter().map(|c| &c.fingerprint))
            .collect();
        accepted += fps.len();
        let all = fps.len();
        fps.sort();
        fps.dedup();
        assert_eq!(fps.len(), all, "{v}: a job was submitted twice");
        assert_eq!(
            vl.keys.values().map(|k| k.duplicates).sum::<u64>(),
            0,
            "{v}: ledger duplicates"
        );
        println!(
            "{v}: {} accepted creates, faults {:?}",
            all, vl.faults_injected
        );
    }
    println!("final counts {c:?}; {injected} injected faults; {accepted} paid creates");
    if terminal(&c) != 500 {
        // What a stuck job looks like, for the failure report.
        for page in 0..5 {
            for r in env
                .store
                .jobs_page(&campaign, page * 100, 100)
                .await
                .unwrap()
            {
                if !matches!(r.state.as_str(), "stored" | "failed" | "expired") {
                    println!("not terminal: {} {:?} {:?}", r.id, r.state, r.fields);
                }
            }
        }
        // And the limiter's view of every key (rates, parks, slots).
        let conn = motionq_store::RedisConn::connect(&env.cfg.redis)
            .await
            .unwrap();
        let limits = motionq_limits::Limits::new(
            conn,
            &env.cfg.redis.key_prefix,
            motionq_pipeline::limits_config(&env.cfg),
        )
        .unwrap();
        for st in limits.list_keys().await.unwrap() {
            println!("key state: {st:?}");
        }
    }
    assert_eq!(terminal(&c), 500, "every job accounted for: {c:?}");
    assert_eq!(
        n(&c, "stored"),
        500,
        "every job stored despite the faults: {c:?}"
    );
    assert_eq!(accepted, 500, "one paid create per job");
    assert!(injected > 100, "faults were actually injected ({injected})");
}
