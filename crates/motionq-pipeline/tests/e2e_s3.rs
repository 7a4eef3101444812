//! End to end into an S3-compatible server (s3s-fs, in process, SigV4 checked): the demo
//! manifest through every stage; each object in the bucket hashes like the vendor's output.

mod common;

use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_manifest_is_stored_in_an_s3_bucket() {
    let s3 = motionq_testkit::S3Server::start()
        .await
        .expect("start the S3 server");
    let mut env = start(sim_config(0.002)).await;
    env.cfg.storage.url = format!("s3://{}/outputs", motionq_testkit::S3_BUCKET);
    env.cfg.storage.options = s3.options().into_iter().collect();
    let manifest = std::fs::read_to_string(format!("{ROOT}/manifests/demo.json")).unwrap();
    let campaign = enqueue(&env, &manifest).await;
    let total = env.store.campaign(&campaign).await.unwrap().jobs_total as i64;
    let (stop, worker) = spawn_worker(&env, fast_options());
    let c = wait_for(&env, &campaign, Duration::from_secs(90), |c| {
        n(c, "stored") + n(c, "failed") + n(c, "expired") == total
    })
    .await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    assert_eq!(n(&c, "stored"), total, "{c:?}");

    let ledger = env.sim.ledger();
    for j in env.store.jobs_page(&campaign, 0, 100).await.unwrap() {
        let key = &j.fields["object_key"];
        // Under the storage prefix and the manifest's output_prefix ("campaigns").
        assert!(key.starts_with("outputs/campaigns/demo/"), "{key}");
        assert!(
            j.fields["object_url"].starts_with("s3://motionq-test/outputs/"),
            "{:?}",
            j.fields
        );
        let path = s3.root.path().join(motionq_testkit::S3_BUCKET).join(key);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let sha = hex::encode(Sha256::digest(&bytes));
        let task = &j.fields["task_id"];
        let create = ledger.vendors[j.fields["vendor"].as_str()].keys
            [j.fields["key_alias"].as_str()]
        .creates
        .iter()
        .find(|cr| &cr.task_id == task)
        .expect("task in the ledger");
        assert_eq!(Some(&sha), create.output_sha256.as_ref(), "job {}", j.id);
        assert!(
            s3.root
                .path()
                .join(motionq_testkit::S3_BUCKET)
                .join(key.replace(".mp4", ".json"))
                .exists(),
            "sidecar next to {key}"
        );
    }
}
