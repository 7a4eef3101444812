//! A worker killed (SIGKILL) in the middle of an upload leaves nothing at the object key,
//! and a re-run simply collects again. The collecting worker is a child process: this test
//! binary re-run with only the ignored `crash_child` test selected.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{generated_sha256, S3Server, SourceServer};
use motionq_collect::{CollectOptions, CollectRequest, Collector, Storage, StorageConfig};
use serde_json::json;

const MIB: u64 = 1024 * 1024;
const CHILD_ENV: &str = "MOTIONQ_COLLECT_CRASH_CHILD";
const TOTAL: u64 = 24 * MIB;
/// Sent before the source stalls: more than two 5 MiB parts.
const SENT: u64 = 12 * MIB;

fn options() -> CollectOptions {
    CollectOptions {
        part_size: 5 * MIB as usize,
        idle_timeout: Duration::from_secs(600),
        ..CollectOptions::default()
    }
}

fn request(url: url::Url) -> CollectRequest {
    CollectRequest {
        campaign: "crash".into(),
        job_id: "job-7".into(),
        url,
        expires_at: None,
        sidecar: json!({"task_id": "t-7"}),
    }
}

/// The collecting worker. Does nothing unless started by a `crash_mid_upload_*` test, which
/// passes the storage config and source URL in `MOTIONQ_COLLECT_CRASH_CHILD` and kills this
/// process while the source stalls mid-body.
#[test]
#[ignore = "child process of the crash_mid_upload_* tests, which run it"]
fn crash_child() {
    // Selected by hand (`--include-ignored`) without a parent: nothing to do.
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let config: StorageConfig = serde_json::from_value(spec["storage"].clone()).unwrap();
    let url: url::Url = spec["url"].as_str().unwrap().parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let storage = Storage::from_config(&config).unwrap();
        Collector::new(storage, common::client(), options())
            .collect(&request(url))
            .await
    });
    panic!("the parent should have killed this process first; collect returned {result:?}");
}

fn spawn_child(config: &StorageConfig, url: &url::Url) -> Child {
    let spec = json!({"storage": config, "url": url.as_str()});
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child worker")
}

/// Waits until `ready()` (the child is mid-upload); fails if the child exits or it takes
/// unreasonably long (a hang guard, not a timing assertion).
async fn wait_mid_upload(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child worker exited ({status}) before {what}");
        }
        assert!(Instant::now() < deadline, "no {what} after 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Files under `dir` (recursively) whose name satisfies `pred`, with their sizes.
fn files_matching(dir: &std::path::Path, pred: &dyn Fn(&str) -> bool) -> Vec<(String, u64)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if pred(&e.file_name().to_string_lossy()) {
                found.push((
                    p.display().to_string(),
                    e.metadata().map(|m| m.len()).unwrap_or(0),
                ));
            }
        }
    }
    found
}

/// After the kill: nothing at the key; then a re-run from a working link stores the output.
async fn assert_recovers(storage: &Storage, src: &SourceServer) {
    let (key, sidecar) = storage.object_key("crash", "job-7");
    assert!(
        storage.head(&key).await.unwrap().is_none(),
        "partial object at {key}"
    );
    assert!(storage.head(&sidecar).await.unwrap().is_none());
    assert!(storage.list(storage.prefix()).await.unwrap().is_empty());

    let done = Collector::new(storage.clone(), common::client(), options())
        .collect(&request(src.url(&format!("/gen/{TOTAL}"))))
        .await
        .expect("re-run collects");
    assert!(!done.skipped_existing);
    assert_eq!(done.bytes, TOTAL);
    assert_eq!(done.sha256, generated_sha256(TOTAL));
    let (sha, len) = storage.sha256(&key).await.unwrap().unwrap();
    assert_eq!((sha, len), (done.sha256, TOTAL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_upload_local_directory() {
    let src = SourceServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::new(dir.path().to_str().unwrap());
    let mut child = spawn_child(&config, &src.url(&format!("/stall-after/{TOTAL}/{SENT}")));
    let staging = |n: &str| n.starts_with("job-7.mp4#");
    // Two full parts written into the staging file means the upload is well under way.
    wait_mid_upload(&mut child, "a 10 MiB staging file", || {
        files_matching(dir.path(), &staging)
            .iter()
            .any(|(_, len)| *len >= 10 * MIB)
    })
    .await;
    // `Child::kill` is SIGKILL on Unix: no destructor runs, the upload is not aborted.
    child.kill().unwrap();
    child.wait().unwrap();
    let left = files_matching(dir.path(), &staging);
    assert_eq!(left.len(), 1, "the killed upload's staging file: {left:?}");

    let storage = Storage::from_config(&config).unwrap();
    assert_recovers(&storage, &src).await;

    // The leftover is invisible to readers; cleanup removes it and only it.
    assert_eq!(
        storage
            .remove_stale_staging(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        storage.remove_stale_staging(Duration::ZERO).await.unwrap(),
        1
    );
    assert!(files_matching(dir.path(), &staging).is_empty());
    let (key, _) = storage.object_key("crash", "job-7");
    assert_eq!(storage.head(&key).await.unwrap().unwrap().size, TOTAL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_upload_s3_compatible_server() {
    let src = SourceServer::start().await;
    let s3 = S3Server::start().await;
    let config = s3.config("crashes");
    let mut child = spawn_child(&config, &src.url(&format!("/stall-after/{TOTAL}/{SENT}")));
    // s3s-fs keeps uploaded parts as `.upload_id-<id>.part-<n>` under its root.
    wait_mid_upload(&mut child, "an uploaded 5 MiB part", || {
        files_matching(s3.root.path(), &|n| {
            n.starts_with(".upload_id-") && n.ends_with(".part-2")
        })
        .iter()
        .any(|(_, len)| *len == 5 * MIB)
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();

    let storage = Storage::from_config(&config).unwrap();
    assert_recovers(&storage, &src).await;
    // Nothing but the completed object in the bucket.
    let listed = storage.list(storage.prefix()).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}"); // video + sidecar
}
