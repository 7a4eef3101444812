//! One shared suite, run against every backend: a local directory, an in-process
//! S3-compatible server (s3s-fs, SigV4 checked) and memory. The source is a real HTTP server
//! on loopback (see `common`).

mod common;

use std::time::{Duration, SystemTime};

use common::{generated_sha256, sha256_hex, S3Server, SourceServer};
use motionq_collect::{
    Backend, CollectError, CollectOptions, CollectRequest, Collected, Collector, ErrorClass,
    Storage, StorageConfig,
};
use object_store::path::Path;
use serde_json::{json, Value};

const MIB: u64 = 1024 * 1024;

fn options() -> CollectOptions {
    CollectOptions {
        max_bytes: 64 * MIB,
        // The S3 minimum, so the same options work on every backend.
        part_size: 5 * MIB as usize,
        max_concurrent_parts: 2,
        request_timeout: Duration::from_secs(120),
        idle_timeout: Duration::from_secs(20),
        verify_existing: false,
    }
}

fn request(campaign: &str, job: &str, url: url::Url) -> CollectRequest {
    CollectRequest {
        campaign: campaign.into(),
        job_id: job.into(),
        url,
        expires_at: None,
        sidecar: json!({"job_id": job, "vendor": "evolink", "task_id": format!("task-{job}"), "cost_usd": 0.42}),
    }
}

/// Nothing at all stored for the job: no video, no sidecar, and nothing under its campaign.
async fn assert_nothing_stored(storage: &Storage, campaign: &str, job: &str) {
    let (key, sidecar) = storage.object_key(campaign, job);
    assert!(storage.head(&key).await.unwrap().is_none(), "{key} exists");
    assert!(
        storage.head(&sidecar).await.unwrap().is_none(),
        "{sidecar} exists"
    );
    let dir = storage
        .prefix()
        .clone()
        .join(key.parts().nth_back(1).unwrap());
    let listed = storage.list(&dir).await.unwrap();
    assert!(listed.is_empty(), "objects under {dir}: {listed:?}");
}

fn expect_err(result: Result<Collected, CollectError>, what: &str) -> CollectError {
    match result {
        Ok(c) => panic!("{what}: expected an error, got {c:?}"),
        Err(e) => e,
    }
}

/// The shared suite. Every scenario uses its own campaign, so they share one storage.
async fn run_suite(storage: Storage) {
    let src = SourceServer::start().await;
    let client = common::client();
    let collector = Collector::new(storage.clone(), client.clone(), options());
    let scheme = match storage.backend() {
        Backend::Local => "file:///",
        Backend::S3 => "s3://",
        Backend::Memory => "memory:///",
        other => panic!("suite not set up for {other:?}"),
    };

    // --- happy path: a real H.264 MP4; the stored bytes hash like the source's.
    let video = motionq_media::mp4(&motionq_media::VideoSpec::new(8.0, 720, 1280));
    let url = src.put_file("happy.mp4", video.clone());
    let req = request("happy", "job-1", url.clone());
    let done = collector.collect(&req).await.expect("happy path");
    assert!(!done.skipped_existing);
    assert_eq!(done.sha256, sha256_hex(&video));
    assert_eq!(done.bytes, video.len() as u64);
    assert!(done.url.starts_with(scheme), "{}", done.url);
    assert!(done.url.ends_with("/happy/job-1.mp4"), "{}", done.url);
    let key = Path::from(done.key.as_str());
    let stored = storage.get(&key).await.unwrap().expect("video stored");
    assert_eq!(sha256_hex(&stored), sha256_hex(&video));
    let sidecar: Value = serde_json::from_slice(
        &storage
            .get(&Path::from(done.sidecar_key.as_str()))
            .await
            .unwrap()
            .expect("sidecar"),
    )
    .unwrap();
    assert_eq!(sidecar["sha256"], done.sha256.as_str());
    assert_eq!(sidecar["bytes"], done.bytes);
    assert_eq!(sidecar["object_key"], done.key.as_str());
    assert_eq!(sidecar["object_url"], done.url.as_str());
    assert_eq!(sidecar["source_url"], url.as_str());
    assert_eq!(sidecar["vendor"], "evolink", "the record is kept");
    assert_eq!(sidecar["cost_usd"], 0.42);
    assert!(sidecar["stored_at"].as_str().unwrap().ends_with('Z'));
    // The source announced no digest: stored, and the sidecar says nothing was checked.
    assert!(done.verified_digests.is_empty());
    assert_eq!(sidecar["verified_digests"], json!([]));
    let listed = storage
        .list(&storage.prefix().clone().join("happy"))
        .await
        .unwrap();
    let mut names: Vec<String> = listed.iter().map(|m| m.location.to_string()).collect();
    names.sort();
    assert_eq!(names, vec![done.sidecar_key.clone(), done.key.clone()]);

    // --- idempotent: the same job again downloads nothing.
    assert_eq!(src.hits("/v/happy.mp4"), 1);
    let again = collector.collect(&req).await.expect("re-collect");
    assert!(again.skipped_existing);
    assert_eq!(
        (again.sha256.as_str(), again.bytes),
        (done.sha256.as_str(), done.bytes)
    );
    assert_eq!(again.key, done.key);
    assert_eq!(src.hits("/v/happy.mp4"), 1, "no second download");
    // A re-signed link for the same task is the same output: still no download.
    let mut resigned = req.clone();
    resigned.url = src.url("/v/happy.mp4?sig=renewed");
    assert!(collector.collect(&resigned).await.unwrap().skipped_existing);
    assert_eq!(src.hits("/v/happy.mp4"), 1);
    // Verifying the stored hash reads storage, not the source.
    let verifying = Collector::new(
        storage.clone(),
        client.clone(),
        CollectOptions {
            verify_existing: true,
            ..options()
        },
    );
    assert!(verifying.collect(&req).await.unwrap().skipped_existing);
    assert_eq!(src.hits("/v/happy.mp4"), 1);
    // A new task (resubmitted job) with a new output replaces the old one.
    let video2 = motionq_media::mp4(&motionq_media::VideoSpec::new(3.0, 720, 1280));
    let mut resubmitted = request(
        "happy",
        "job-1",
        src.put_file("happy-2.mp4", video2.clone()),
    );
    resubmitted.sidecar["task_id"] = json!("task-job-1-retry");
    let replaced = collector.collect(&resubmitted).await.unwrap();
    assert!(!replaced.skipped_existing);
    assert_eq!(replaced.key, done.key, "same job, same key");
    assert_eq!(replaced.sha256, sha256_hex(&video2));
    let stored = storage.get(&key).await.unwrap().unwrap();
    assert_eq!(
        sha256_hex(&stored),
        sha256_hex(&video2),
        "one correct object"
    );
    // A stored video whose size disagrees with the sidecar is collected again.
    storage
        .put(&key, bytes::Bytes::from_static(b"damaged"), "video/mp4")
        .await
        .unwrap();
    let repaired = collector.collect(&resubmitted).await.unwrap();
    assert!(!repaired.skipped_existing);
    assert_eq!(src.hits("/v/happy-2.mp4"), 2);
    assert_eq!(
        sha256_hex(&storage.get(&key).await.unwrap().unwrap()),
        sha256_hex(&video2)
    );

    // --- a redirect (CDN → signed storage URL) is followed.
    src.put_file("moved.mp4", video.clone());
    let moved = collector
        .collect(&request("redirect", "j", src.url("/redirect/moved.mp4")))
        .await
        .unwrap();
    assert_eq!(moved.sha256, sha256_hex(&video));
    assert_eq!(src.hits("/v/moved.mp4"), 1);

    // --- two workers collecting one job at once still leave one correct object.
    let size = 2 * 5 * MIB + 77;
    let same = request("race", "j", src.url(&format!("/gen/{size}")));
    let (a, b) = tokio::join!(collector.collect(&same), collector.collect(&same));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.sha256.as_str(), b.sha256.as_str()),
        (generated_sha256(size).as_str(), a.sha256.as_str())
    );
    let race_dir = storage.prefix().clone().join("race");
    let mut listed: Vec<(String, u64)> = storage
        .list(&race_dir)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.location.to_string(), m.size))
        .collect();
    listed.sort();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[1].1, size, "{listed:?}");
    let (stored_sha, _) = storage
        .sha256(&Path::from(a.key.as_str()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored_sha, a.sha256);

    // --- truncated body (Content-Length larger than what arrives): transient, nothing stored.
    let e = expect_err(
        collector
            .collect(&request(
                "trunc",
                "j",
                src.url(&format!("/truncated/{}", 12 * MIB)),
            ))
            .await,
        "truncated",
    );
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    assert!(
        matches!(e, CollectError::Truncated { expected, .. } if expected == 12 * MIB),
        "{e:?}"
    );
    assert_nothing_stored(&storage, "trunc", "j").await;

    // --- corrupt bytes (HTML with 200): transient, nothing stored.
    let e = expect_err(
        collector
            .collect(&request("corrupt", "j", src.url("/corrupt")))
            .await,
        "corrupt",
    );
    assert_eq!(e.class(), ErrorClass::Transient);
    assert!(matches!(e, CollectError::Corrupt { .. }), "{e:?}");
    assert_nothing_stored(&storage, "corrupt", "j").await;

    // --- bytes flipped mid-file, length and boxes intact: only the source's announced
    // digest shows it. Transient, nothing stored; the true file under the same header is
    // stored and says what it was checked against.
    src.put_file("digest.mp4", video.clone());
    for how in ["flipped", "flipped-md5"] {
        let e = expect_err(
            collector
                .collect(&request(
                    "digest",
                    how,
                    src.url(&format!("/digest/digest.mp4/{how}")),
                ))
                .await,
            how,
        );
        assert_eq!(e.class(), ErrorClass::Transient, "{how}");
        let CollectError::DigestMismatch {
            digest,
            announced,
            received,
            ..
        } = &e
        else {
            panic!("{how}: expected a digest mismatch, got {e:?}");
        };
        assert_ne!(announced, received);
        let expect = if how == "flipped" {
            "repr-digest sha-256"
        } else {
            "content-md5 md5"
        };
        assert_eq!(digest, expect);
        assert_nothing_stored(&storage, "digest", how).await;
    }
    let good = collector
        .collect(&request(
            "digest-ok",
            "good",
            src.url("/digest/digest.mp4/good"),
        ))
        .await
        .expect("true digest");
    assert_eq!(good.sha256, sha256_hex(&video));
    assert_eq!(good.verified_digests, ["repr-digest sha-256"]);
    let sidecar: Value = serde_json::from_slice(
        &storage
            .get(&Path::from(good.sidecar_key.as_str()))
            .await
            .unwrap()
            .expect("sidecar"),
    )
    .unwrap();
    assert_eq!(sidecar["verified_digests"], json!(["repr-digest sha-256"]));
    // An unreadable header is ignored: the output is stored, marked unverified.
    let junk = collector
        .collect(&request(
            "digest-ok",
            "junk",
            src.url("/digest/digest.mp4/junk"),
        ))
        .await
        .expect("unreadable digest header is ignored");
    assert_eq!(junk.sha256, sha256_hex(&video));
    assert!(junk.verified_digests.is_empty());

    // --- expired links.
    let mut past = request("expired", "j", src.url("/v/happy.mp4"));
    past.expires_at = Some(SystemTime::now() - Duration::from_secs(5));
    let before = src.hits("/v/happy.mp4");
    let e = expect_err(collector.collect(&past).await, "expires_at passed");
    assert_eq!(e.class(), ErrorClass::Expired);
    assert_eq!(
        src.hits("/v/happy.mp4"),
        before,
        "no request for an expired link"
    );
    // The link expires while the request is under way; the CDN then answers 403.
    let mut lapsing = request("expired", "j", src.url("/late-status/2500/403"));
    lapsing.expires_at = Some(SystemTime::now() + Duration::from_secs(1));
    let e = expect_err(collector.collect(&lapsing).await, "403 after expiry");
    assert_eq!(e.class(), ErrorClass::Expired, "{e}");
    let e = expect_err(
        collector
            .collect(&request("expired", "j", src.url("/status/410")))
            .await,
        "410",
    );
    assert_eq!(e.class(), ErrorClass::Expired, "{e}");
    let mut not_yet = request("expired", "j", src.url("/status/403"));
    not_yet.expires_at = Some(SystemTime::now() + Duration::from_secs(3600));
    let e = expect_err(collector.collect(&not_yet).await, "403 before expiry");
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    let e = expect_err(
        collector
            .collect(&request("expired", "j", src.url("/status/503")))
            .await,
        "503",
    );
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    let e = expect_err(
        collector
            .collect(&request("expired", "j", src.url("/status/400")))
            .await,
        "400",
    );
    assert_eq!(e.class(), ErrorClass::Invalid, "{e}");
    assert_nothing_stored(&storage, "expired", "j").await;

    // --- connection reset mid-body (after more than one part was uploaded).
    let e = expect_err(
        collector
            .collect(&request("reset", "j", src.reset_url(20 * MIB, 11 * MIB)))
            .await,
        "reset",
    );
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    assert!(matches!(e, CollectError::Interrupted { .. }), "{e:?}");
    assert_nothing_stored(&storage, "reset", "j").await;

    // --- size cap: declared too large (refused before reading), and counted too large.
    let small = Collector::new(
        storage.clone(),
        client.clone(),
        CollectOptions {
            max_bytes: 6 * MIB,
            ..options()
        },
    );
    let e = expect_err(
        small
            .collect(&request(
                "cap",
                "declared",
                src.url(&format!("/gen/{}", 7 * MIB)),
            ))
            .await,
        "declared over cap",
    );
    assert_eq!(e.class(), ErrorClass::TooLarge);
    assert!(
        matches!(e, CollectError::TooLarge { declared: true, .. }),
        "{e:?}"
    );
    let e = expect_err(
        small
            .collect(&request(
                "cap",
                "streamed",
                src.url(&format!("/unsized/{}", 20 * MIB)),
            ))
            .await,
        "streamed over cap",
    );
    assert_eq!(e.class(), ErrorClass::TooLarge);
    match e {
        CollectError::TooLarge { declared, size, .. } => {
            assert!(!declared);
            assert!(size > 6 * MIB && size < 7 * MIB, "stopped at once: {size}");
        }
        other => panic!("{other:?}"),
    }
    assert_nothing_stored(&storage, "cap", "declared").await;
    assert_nothing_stored(&storage, "cap", "streamed").await;
    // An unsized body under the cap is fine.
    let ok = small
        .collect(&request(
            "cap",
            "unsized-ok",
            src.url(&format!("/unsized/{}", 5 * MIB + 3)),
        ))
        .await
        .unwrap();
    assert_eq!(ok.sha256, generated_sha256(5 * MIB + 3));

    // --- multipart: larger than several parts, odd size.
    let size = 3 * 5 * MIB + 1234567;
    let big = collector
        .collect(&request(
            "multipart",
            "big",
            src.url(&format!("/gen/{size}")),
        ))
        .await
        .unwrap();
    assert_eq!(big.bytes, size);
    assert_eq!(big.sha256, generated_sha256(size));
    let (stored_sha, stored_len) = storage
        .sha256(&Path::from(big.key.as_str()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored_sha.as_str(), stored_len),
        (big.sha256.as_str(), size)
    );

    // --- slow body completes; a stalled one fails fast and transiently.
    let slow = collector
        .collect(&request("slow", "j", src.url("/slow")))
        .await
        .unwrap();
    assert_eq!(slow.sha256, generated_sha256(MIB));
    let impatient = Collector::new(
        storage.clone(),
        client.clone(),
        CollectOptions {
            idle_timeout: Duration::from_millis(300),
            ..options()
        },
    );
    let e = expect_err(
        impatient
            .collect(&request("stall", "j", src.url("/stall")))
            .await,
        "stall",
    );
    assert!(matches!(e, CollectError::Stalled { .. }), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_nothing_stored(&storage, "stall", "j").await;

    // --- hostile ids stay under the prefix, and still round-trip.
    let video_url = src.put_file("v.mp4", video.clone());
    let hostile = [
        ("../../etc", "../../../passwd"),
        ("/abs", "a/b/c"),
        ("..", "."),
        ("c", "job.mp4#1"),
        ("ünï", "id with spaces"),
    ];
    let mut keys = std::collections::HashSet::new();
    for (campaign, job) in hostile {
        let c = collector
            .collect(&request(campaign, job, video_url.clone()))
            .await
            .unwrap_or_else(|e| panic!("{campaign:?}/{job:?}: {e}"));
        let key = Path::from(c.key.as_str());
        assert!(
            key.prefix_matches(storage.prefix()),
            "{key} escapes the prefix"
        );
        assert_eq!(
            key.parts().count(),
            storage.prefix().parts().count() + 2,
            "{key}"
        );
        assert!(!c.key.contains(".."), "{key}");
        assert!(keys.insert(c.key.clone()), "{key} reused");
        assert_eq!(c.sha256, sha256_hex(&video));
    }

    // --- every download asked for the file as is (no compression).
    let encodings = src.accept_encodings();
    assert!(!encodings.is_empty());
    assert!(encodings.iter().all(|e| e == "identity"), "{encodings:?}");

    // --- invalid requests are refused before any I/O.
    let e = expect_err(
        collector
            .collect(&request("", "j", video_url.clone()))
            .await,
        "empty campaign",
    );
    assert_eq!(e.class(), ErrorClass::Invalid);
    assert!(e.to_string().contains("campaign"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let storage = Storage::from_config(&StorageConfig::new(root.to_str().unwrap())).unwrap();
    run_suite(storage).await;
    // No staging file (`<key>#<n>`) was left behind by any aborted upload, and nothing was
    // written outside the storage directory.
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            assert!(
                p.starts_with(&root),
                "{} outside the storage root",
                p.display()
            );
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                assert!(!name.contains('#'), "staging file left: {}", p.display());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_s3_compatible_server() {
    let s3 = S3Server::start().await;
    let storage = s3.storage("outputs/v1");
    run_suite(storage).await;
    // The objects are where S3 clients will look for them: under the bucket directory.
    let happy = s3
        .root
        .path()
        .join(common::S3_BUCKET)
        .join("outputs/v1/happy/job-1.mp4");
    assert!(happy.is_file(), "{}", happy.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_on_memory() {
    let storage = Storage::from_config(&StorageConfig::new("memory:///mem/prefix")).unwrap();
    run_suite(storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_s3_credentials_are_a_storage_error_and_stay_secret() {
    let s3 = S3Server::start().await;
    let src = SourceServer::start().await;
    let cfg = s3
        .config("p")
        .with_option("secret_access_key", "wrong-secret-value-xyz");
    let storage = Storage::from_config(&cfg).unwrap();
    let collector = Collector::new(storage.clone(), common::client(), options());
    let video = motionq_media::mp4(&motionq_media::VideoSpec::new(3.0, 720, 1280));
    let url = src.put_file("a.mp4", video);
    let e = expect_err(
        collector.collect(&request("c", "j", url)).await,
        "bad credentials",
    );
    assert_eq!(e.class(), ErrorClass::Storage, "{e}");
    let shown = format!("{e} {e:?} {storage:?} {cfg:?}");
    assert!(!shown.contains("wrong-secret-value-xyz"), "{shown}");
}
