//! End to end: the demo manifest (all five vendors) through feeder, submit, poll and collect
//! against the simulator over HTTP, into a temp-dir object store.

mod common;

use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_manifest_is_stored_and_matches_the_ledger() {
    let env = start(sim_config(0.002)).await;
    let manifest = std::fs::read_to_string(format!("{ROOT}/manifests/demo.json")).unwrap();
    let campaign = enqueue(&env, &manifest).await;
    let total = env.store.campaign(&campaign).await.unwrap().jobs_total as i64;
    let metrics = motionq_metrics::Metrics::new();
    let mut opts = fast_options();
    opts.metrics = Some(metrics.clone());
    let (stop, worker) = spawn_worker(&env, opts);
    let c = wait_for(&env, &campaign, Duration::from_secs(90), |c| {
        n(c, "stored") + n(c, "failed") + n(c, "expired") == total
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    let jobs = env.store.jobs_page(&campaign, 0, 100).await.unwrap();
    for j in &jobs {
        assert_eq!(
            j.state,
            motionq_core::JobState::Stored,
            "job {} ended {:?}: {:?}",
            j.id,
            j.state,
            j.fields
        );
    }
    assert_eq!(n(&c, "stored"), total);
    let ledger = env.sim.ledger();
    let mut accepted = 0;
    for j in &jobs {
        let vendor = &j.fields["vendor"];
        let alias = &j.fields["key_alias"];
        let task = &j.fields["task_id"];
        let key = &ledger.vendors[vendor.as_str()].keys[alias.as_str()];
        let create = key
            .creates
            .iter()
            .find(|cr| &cr.task_id == task)
            .expect("task in ledger");
        // The stored bytes are the vendor's bytes.
        let path = env.out.path().join(&j.fields["object_key"]);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let sha = hex::encode(Sha256::digest(&bytes));
        assert_eq!(Some(&sha), create.output_sha256.as_ref(), "job {}", j.id);
        assert_eq!(j.fields["sha256"], sha);
        assert!(
            path.with_extension("json").exists(),
            "sidecar next to the video"
        );
    }
    for (v, vl) in &ledger.vendors {
        for (alias, k) in &vl.keys {
            assert_eq!(k.duplicates, 0, "{v}/{alias} duplicates");
            accepted += k.creates.len();
            let mut fps: Vec<&String> = k.creates.iter().map(|c| &c.fingerprint).collect();
            fps.sort();
            fps.dedup();
            assert_eq!(
                fps.len(),
                k.creates.len(),
                "{v}/{alias}: a job was submitted twice"
            );
        }
    }
    assert_eq!(accepted as i64, total, "one paid create per job");
    // The stages recorded into the catalogue the binary serves.
    let text = metrics.encode();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let requests = value("motionq_vendor_requests_total{");
    assert!(
        requests >= 2.0 * total as f64,
        "creates and queries counted: {requests}\n{}",
        text.lines()
            .filter(|l| l.contains("requests_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(value("motionq_collected_bytes_total{") > 0.0);
    assert!(value("motionq_job_transitions_total{") >= 5.0 * total as f64);
    assert!(value("motionq_generation_duration_seconds_count{") >= total as f64);
    assert!(value("motionq_spend_settled_usd_total{") > 0.0);
}
