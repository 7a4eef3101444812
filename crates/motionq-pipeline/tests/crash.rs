//! Exactly-once paid submission under SIGKILL (issue 5): worker PROCESSES run the pipeline
//! against the simulator and a private Redis; they are SIGKILLed over and over, and they abort
//! themselves right after a create call was answered but before recording it
//! (`MOTIONQ_TEST_CRASH_AFTER_CREATE`). Restarted each time. The simulator's ledger then
//! shows: zero lost jobs and zero duplicate paid submissions for KKIAI (external_task_id) and
//! Freepik (task list); for EvoLink (callback-only) the test reports what the `fail` policy
//! did.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn spawn(bin: &str, cfg: &std::path::Path, crash: Option<f64>) -> Child {
    let mut cmd = Command::new(bin);
    cmd.arg(cfg).stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(p) = crash {
        cmd.env("MOTIONQ_TEST_CRASH_AFTER_CREATE", p.to_string());
    }
    cmd.spawn().expect("spawn test worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_workers_never_pay_twice_and_lose_nothing() {
    let env = start(sim_config(0.002)).await;
    let kk = enqueue(&env, &manifest("crash-kkiai", &["kkiai"], 40, "")).await;
    let fp = enqueue(&env, &manifest("crash-freepik", &["freepik"], 30, "")).await;
    let ev = enqueue(&env, &manifest("crash-evolink", &["evolink"], 20, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("worker.toml");
    std::fs::write(
        &cfg_path,
        toml::to_string(&env.cfg).expect("config serialises"),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_motionq-pipeline-test-worker");

    let mut workers: Vec<Child> = (0..2).map(|_| spawn(bin, &cfg_path, Some(0.2))).collect();
    let (mut kills, mut restarts) = (0u32, 0u32);
    let chaos_until = Instant::now() + Duration::from_secs(35);
    // Generous: the loop ends as soon as every job is terminal; a slow CI machine needs more.
    let deadline = Instant::now() + Duration::from_secs(300);
    let terminal = |c: &BTreeMap<String, i64>| {
        n(c, "stored") + n(c, "failed") + n(c, "expired") + n(c, "cancelled")
    };
    let mut round = 0u64;
    loop {
        round += 1;
        tokio::time::sleep(Duration::from_millis(700)).await;
        let chaos = Instant::now() < chaos_until;
        // Restart every worker that died (killed, or aborted by the crash hook).
        for w in workers.iter_mut() {
            if let Ok(Some(_)) = w.try_wait() {
                restarts += 1;
                *w = spawn(bin, &cfg_path, chaos.then_some(0.2));
            }
        }
        if chaos && round % 2 == 0 {
            let i = (round as usize / 2) % workers.len();
            let _ = workers[i].kill(); // SIGKILL
            let _ = workers[i].wait();
            kills += 1;
        }
        if !chaos && round % 10 == 0 {
            // After the chaos: replace crash-hooked workers with clean ones.
            for w in workers.iter_mut() {
                let _ = w.kill();
                let _ = w.wait();
                *w = spawn(bin, &cfg_path, None);
            }
        }
        let done = [
            (terminal(&counts(&env, &kk).await), 40),
            (terminal(&counts(&env, &fp).await), 30),
            (terminal(&counts(&env, &ev).await), 20),
        ]
        .iter()
        .all(|(t, n)| t == n);
        if (done && !chaos) || Instant::now() > deadline {
            break;
        }
    }
    for w in workers.iter_mut() {
        let _ = w.kill();
        let _ = w.wait();
    }
    let ledger = env.sim.ledger();
    let mut report = Vec::new();
    for (campaign, vendor, jobs) in [
        (&kk, "kkiai", 40i64),
        (&fp, "freepik", 30),
        (&ev, "evolink", 20),
    ] {
        let c = counts(&env, campaign).await;
        let vl = &ledger.vendors[vendor];
        let creates: usize = vl.keys.values().map(|k| k.creates.len()).sum();
        let mut fps: Vec<&String> = vl
            .keys
            .values()
            .flat_map(|k| k.creates.iter().map(|c| &c.fingerprint))
            .collect();
        let all = fps.len();
        fps.sort();
        fps.dedup();
        let dup_paid = all - fps.len();
        let recs = env.store.jobs_page(campaign, 0, 100).await.unwrap();
        let unreconcilable = recs
            .iter()
            .filter(|r| r.fields.get("error_class").map(String::as_str) == Some("unreconcilable"))
            .count();
        report.push(format!(
            "{vendor}: {c:?}; accepted creates {creates}, duplicate paid submissions {dup_paid}, unreconcilable (failed for review) {unreconcilable}"
        ));
        if vendor != "evolink" {
            assert_eq!(
                n(&c, "stored"),
                jobs,
                "{vendor}: every job stored, none lost: {c:?}\n{report:#?}"
            );
            assert_eq!(dup_paid, 0, "{vendor}: no job paid twice\n{report:#?}");
            assert_eq!(
                creates as i64, jobs,
                "{vendor}: exactly one accepted create per job\n{report:#?}"
            );
        } else {
            assert_eq!(
                terminal(&c),
                jobs,
                "evolink: every job accounted for: {c:?}"
            );
            assert_eq!(n(&c, "stored") + n(&c, "failed"), jobs);
            // Under `fail`, a possibly-paid job is never resubmitted: every create is unique.
            assert_eq!(
                dup_paid, 0,
                "evolink: the fail policy never pays twice\n{report:#?}"
            );
        }
    }
    println!("crash test: {kills} SIGKILLs, {restarts} restarts (including crash-hook aborts)");
    for r in &report {
        println!("  {r}");
    }
    assert!(kills >= 10, "the test must actually kill workers ({kills})");
    assert!(
        restarts > kills,
        "the crash hook must have fired too ({restarts} restarts, {kills} kills)"
    );
}
