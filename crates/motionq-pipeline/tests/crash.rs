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

// ---- Lost creates, one at a time ---------------------------------------------------------------
//
// The window the crash hook targets, hit deterministically: a worker process runs with
// `MOTIONQ_TEST_CRASH_AFTER_CREATE=1` and `submit_concurrency = 1`, so it aborts right after
// its first create was answered, before the task id is recorded: the vendor accepted (and
// charged) the task, and the job is left in `submitting` with its key reservation committed,
// exactly as a worker SIGKILLed in that window leaves it.

/// Writes the env's config (after `edit`) where a worker process can read it.
fn worker_config(
    env: &Env,
    dir: &std::path::Path,
    edit: impl FnOnce(&mut motionq_config::Config),
) -> std::path::PathBuf {
    let mut cfg = env.cfg.clone();
    edit(&mut cfg);
    let path = dir.join("worker.toml");
    std::fs::write(&path, toml::to_string(&cfg).expect("config serialises")).unwrap();
    path
}

/// Runs one crash-hooked worker process until it aborts after its first create answer.
/// Returns its exit status and stderr.
async fn crash_after_one_create(
    cfg: &std::path::Path,
    dir: &std::path::Path,
) -> (std::process::ExitStatus, String) {
    let bin = env!("CARGO_BIN_EXE_motionq-pipeline-test-worker");
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = dir.join(format!("crash-{run}.log"));
    let mut child = Command::new(bin)
        .arg(cfg)
        .env("MOTIONQ_TEST_CRASH_AFTER_CREATE", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn test worker");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the crash-hooked worker never sent a create: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    (status, std::fs::read_to_string(&log).unwrap_or_default())
}

/// Accepted creates the simulator recorded for `vendor`, and how many it flagged as the same
/// request paid again.
fn ledger_creates(env: &Env, vendor: &str) -> (Vec<motionq_sim::CreateRecord>, u64) {
    let ledger = env.sim.ledger();
    let vl = &ledger.vendors[vendor];
    (
        vl.keys
            .values()
            .flat_map(|k| k.creates.iter().cloned())
            .collect(),
        vl.keys.values().map(|k| k.duplicates).sum(),
    )
}

/// The job's transitions from the campaign's event stream, as `from → to: detail`.
async fn transitions(env: &Env, campaign: &str, job: &str) -> Vec<String> {
    let mut conn = env.store.conn();
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(env.store.keys().events(campaign))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    entries
        .into_iter()
        .filter_map(|(_, kv)| {
            let f: BTreeMap<String, String> = kv
                .chunks(2)
                .filter_map(|p| Some((p.first()?.clone(), p.get(1)?.clone())))
                .collect();
            (f.get("type").map(String::as_str) == Some("transition")
                && f.get("job").map(String::as_str) == Some(job))
            .then(|| {
                format!(
                    "{} → {}: {}",
                    f.get("from").cloned().unwrap_or_default(),
                    f.get("to").cloned().unwrap_or_default(),
                    f.get("detail").cloned().unwrap_or_default()
                )
            })
        })
        .collect()
}

const HOOK_TOKEN_VAR: &str = "MQT_CRASH_WEBHOOK_TOKEN";

/// EvoLink and AI Video API cannot be asked about a task after the fact; their callback URL
/// carries our idempotency key. A worker dies right after each vendor accepted a create (the
/// task id never recorded); the vendor's callback reaches the real webhook intake
/// (`motionq-webhooks`, in this process), which files the task under that key; the restarted
/// submit stage then adopts the task (reconciliation step 1) instead of failing the job as
/// unreconcilable or paying again. Ledger: exactly one accepted create per job; both stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_reconciles_a_lost_create_of_a_callback_only_vendor() {
    use motionq_core::{JobState, Vendor};
    use motionq_webhooks::{IntakeOptions, WebhookSecrets, WebhookState};

    let mut env = start(sim_config(0.002)).await;
    // The intake listens first, so its address can go into the workers' config.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    std::env::set_var(HOOK_TOKEN_VAR, "crash-test-webhook-token-0123456789");
    env.cfg.webhooks.public_base_url = Some(format!("http://{addr}"));
    env.cfg.webhooks.token_env = Some(HOOK_TOKEN_VAR.into());
    env.cfg.webhooks.freepik_secret_env = None;
    let metrics = motionq_metrics::Metrics::new();
    let intake_pipeline = std::sync::Arc::new(
        motionq_pipeline::Pipeline::connect(&env.cfg, Default::default())
            .await
            .unwrap(),
    );
    let state = WebhookState::new(
        &env.cfg,
        intake_pipeline.clone(),
        metrics.clone(),
        WebhookSecrets::from_env(&env.cfg.webhooks).unwrap(),
        IntakeOptions::default(),
    )
    .unwrap();
    let (stop_hooks, hooks_rx) = tokio::sync::oneshot::channel::<()>();
    let intake = tokio::spawn(motionq_webhooks::serve_state(state, listener, async move {
        let _ = hooks_rx.await;
    }));

    let vendors = [
        ("evolink", Vendor::Evolink),
        ("aivideoapi", Vendor::Aivideoapi),
    ];
    let mut campaigns = Vec::new();
    for (name, _) in vendors {
        campaigns.push(enqueue(&env, &manifest(&format!("lost-{name}"), &[name], 1, "")).await);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = worker_config(&env, dir.path(), |c| c.worker.submit_concurrency = 1);

    // Crash once per job: each round's worker aborts after one create answer. Between rounds
    // the test waits (bounded) for that job's callback to have filled the index, so the next
    // worker's reconciliation has something to find.
    let mut lost: BTreeMap<String, (String, String)> = BTreeMap::new(); // campaign → (idem, task)
    for round in 1..=4 {
        if lost.len() == campaigns.len() {
            break;
        }
        let (status, log) = crash_after_one_create(&cfg, dir.path()).await;
        assert!(
            !status.success(),
            "round {round}: the worker must have aborted: {log}"
        );
        for (i, c) in campaigns.iter().enumerate() {
            let rec = env.store.job(c, "j00000").await.unwrap().unwrap();
            if rec.state != JobState::Submitting || lost.contains_key(c) {
                continue;
            }
            let vendor = vendors[i].1;
            let idem = rec.fields["idem_key"].clone();
            let (creates, _) = ledger_creates(&env, vendors[i].0);
            assert_eq!(creates.len(), 1, "{c}: the vendor accepted the lost create");
            assert!(
                rec.fields.get("task_id").is_none_or(|t| t.is_empty()),
                "{c}: no task id was recorded before the crash: {:?}",
                rec.fields
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            let task = loop {
                if let Some(t) = intake_pipeline.task_for_idem(vendor, &idem).await.unwrap() {
                    break t;
                }
                assert!(
                    Instant::now() < deadline,
                    "{c}: no callback filled the index for {idem}; ledger callbacks: {:?}",
                    env.sim.ledger().vendors[vendors[i].0].callbacks
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(
                task, creates[0].task_id,
                "{c}: the callback named the task the vendor accepted"
            );
            println!("round {round}: {c} lost its create answer (worker exit {status}); callback filed {idem} → {task}");
            lost.insert(c.clone(), (idem, task));
        }
    }
    assert_eq!(
        lost.len(),
        campaigns.len(),
        "every job must have lost a create answer: {lost:?}"
    );

    // A clean worker reconciles and finishes both.
    let (stop, worker) = spawn_worker(&env, fast_options());
    for c in &campaigns {
        let n_ = wait_for(&env, c, Duration::from_secs(120), |c| {
            n(c, "stored") + n(c, "failed") == 1
        })
        .await;
        println!("{c}: {n_:?}");
    }
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let _ = stop_hooks.send(());
    intake.await.unwrap().unwrap();

    let scrape = metrics.encode();
    for (i, c) in campaigns.iter().enumerate() {
        let name = vendors[i].0;
        let rec = env.store.job(c, "j00000").await.unwrap().unwrap();
        let (creates, dups) = ledger_creates(&env, name);
        let history = transitions(&env, c, "j00000").await;
        let (_, task) = &lost[c];
        let unknown = scrape
            .lines()
            .find(|l| {
                l.starts_with("motionq_webhooks_total{")
                    && l.contains("outcome=\"rejected_unknown_task\"")
                    && l.contains(&format!("vendor=\"{name}\""))
            })
            .unwrap_or("(none)")
            .to_string();
        println!(
            "{name}: state {:?}, task {}, accepted creates {}, duplicates {dups}; intake: {unknown}\n  history: {history:#?}",
            rec.state,
            rec.fields.get("task_id").cloned().unwrap_or_default(),
            creates.len()
        );
        assert_eq!(rec.state, JobState::Stored, "{name}: {:?}", rec.fields);
        assert_eq!(
            creates.len(),
            1,
            "{name}: exactly one accepted (paid) create"
        );
        assert_eq!(dups, 0, "{name}: nothing paid twice");
        assert_eq!(
            &rec.fields["task_id"], task,
            "{name}: the lost task was adopted"
        );
        assert_eq!(rec.fields["gen"], "0", "{name}: never resubmitted");
        assert!(
            history
                .iter()
                .any(|h| h.starts_with("submitting → submitted: reconciled from the task index")),
            "{name}: adopted by reconciliation from the index: {history:#?}"
        );
    }
}

/// HighwayAPI: no lookup, no callbacks. A create whose answer was lost in a crash is
/// unreconcilable; `worker.unreconcilable` decides: `fail` (default) fails the job for review
/// without a second create; `resubmit` creates again under a new generation (the ledger then
/// shows the second create, flagged as the same request paid twice: the accepted risk).
async fn highwayapi_lost_create(policy: Option<&str>) {
    use motionq_core::JobState;
    let mut env = start(sim_config(0.002)).await;
    let label = policy.unwrap_or("default");
    let campaign = enqueue(
        &env,
        &manifest(&format!("unrec-{label}"), &["highwayapi"], 1, ""),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = worker_config(&env, dir.path(), |c| c.worker.submit_concurrency = 1);
    let (status, log) = crash_after_one_create(&cfg, dir.path()).await;
    assert!(!status.success(), "the worker must have aborted: {log}");
    let rec = env.store.job(&campaign, "j00000").await.unwrap().unwrap();
    assert_eq!(
        rec.state,
        JobState::Submitting,
        "crashed intent left: {:?}",
        rec.fields
    );
    let (creates, _) = ledger_creates(&env, "highwayapi");
    assert_eq!(creates.len(), 1, "the vendor accepted the lost create");
    let lost_task = creates[0].task_id.clone();
    println!("{label}: worker exit {status}; job left in submitting with {lost_task} accepted but unrecorded");

    match policy {
        Some(p) => env.cfg.worker.unreconcilable = p.to_string(),
        None => assert_eq!(env.cfg.worker.unreconcilable, "fail", "the default policy"),
    }
    let (stop, worker) = spawn_worker(&env, fast_options());
    let c = wait_for(&env, &campaign, Duration::from_secs(120), |c| {
        n(c, "stored") + n(c, "failed") == 1
    })
    .await;
    // A wrongly resubmitted job would show up in the ledger within this pause.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let rec = env.store.job(&campaign, "j00000").await.unwrap().unwrap();
    let (creates, dups) = ledger_creates(&env, "highwayapi");
    let history = transitions(&env, &campaign, "j00000").await;
    println!(
        "{label}: {c:?}; record {:?} gen {} class {:?} message {:?}; accepted creates {} ({:?}), flagged duplicates {dups}\n  history: {history:#?}",
        rec.state,
        rec.fields.get("gen").cloned().unwrap_or_default(),
        rec.fields.get("error_class"),
        rec.fields.get("error_message"),
        creates.len(),
        creates.iter().map(|c| (&c.task_id, c.status)).collect::<Vec<_>>()
    );
    if policy == Some("resubmit") {
        assert_eq!(rec.state, JobState::Stored, "{:?}", rec.fields);
        assert_eq!(
            rec.fields["gen"], "1",
            "submitted again under a new generation"
        );
        assert_eq!(creates.len(), 2, "the ledger shows the second create");
        assert_eq!(
            dups, 1,
            "the same request was paid twice (the policy's accepted risk)"
        );
        assert_ne!(
            rec.fields["task_id"], lost_task,
            "the job runs on the second task"
        );
        assert_eq!(rec.fields["task_id"], creates[1].task_id);
        assert!(
            rec.fields
                .get("last_error")
                .is_some_and(|e| e.contains("unreconcilable") && e.contains("resubmit")),
            "{:?}",
            rec.fields
        );
    } else {
        assert_eq!(rec.state, JobState::Failed, "{:?}", rec.fields);
        assert_eq!(rec.fields["error_class"], "unreconcilable");
        let msg = &rec.fields["error_message"];
        assert!(
            msg.starts_with("unreconcilable: possible charge, check vendor dashboard")
                && msg.contains(&rec.fields["idem_key"]),
            "{msg}"
        );
        assert_eq!(creates.len(), 1, "never sent twice");
        assert_eq!(dups, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn highwayapi_lost_create_fails_as_unreconcilable_by_default() {
    highwayapi_lost_create(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn highwayapi_lost_create_is_submitted_again_under_resubmit() {
    highwayapi_lost_create(Some("resubmit")).await;
}
