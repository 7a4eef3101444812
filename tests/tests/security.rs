//! Suite 7, security, through the real binary:
//!
//! * API keys never appear in worker logs (`--log-format json -vv`, including a vendor's 401 for
//!   a wrong key), in `status`, `report`, `keys` output or error messages, nor in the
//!   simulator's `/metrics`;
//! * hostile job ids (`../../etc/passwd`, `..`, `a/../../b`, percent-encoded dots, ...) go
//!   through the whole pipeline and their objects stay under the object store root and the
//!   campaign's prefix: nothing is written anywhere else;
//! * callback URLs to private or loopback hosts are refused by `motionq validate` (exit 2);
//!   media on private hosts get a warning (vendors, not motionq, fetch media);
//! * the simulator's admin endpoints answer 404 unless `--admin` is given.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tests::*;

const HOSTILE_IDS: &[&str] = &[
    "../../etc/passwd",
    "..",
    "a/../../b",
    "....//x",
    "%2e%2e%2fescape",
    "..\\\\windows",
    ".hidden",
    "/abs/path",
    "x\u{0}y",
    "ünï-cødé",
];

fn all_files(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(d: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    walk(root, root, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_secret_and_object_keys_stay_in_their_prefix() {
    let redis = motionq_testkit::RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let mut dep = Deployment::start(RedisTarget::Standalone(redis.url()), sim_config(0.002), "")
        .await
        .unwrap();
    // A wrong KKIAI key (401 at the simulator; the key gets parked, jobs move to kkiai-2):
    // its value must not leak either.
    let wrong_key = "WRONG-kkiai-secret-4f1c9d";
    dep.extra_env
        .push(("MOTIONQ_DEMO_KKIAI_KEY_1".into(), wrong_key.into()));
    let mut secrets: Vec<String> = demo_keys().into_iter().map(|(_, v)| v).collect();
    secrets.retain(|s| s != "demo-kkiai-1");
    secrets.push(wrong_key.into());

    // Hostile ids, accepted by validation (they are just strings), through the pipeline.
    let jobs: Vec<serde_json::Value> = HOSTILE_IDS
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let vendor = ["kkiai", "freepik", "evolink"][i % 3];
            serde_json::json!({
                "id": id,
                "vendor": vendor,
                "image": "http://127.0.0.1:8089/media/portrait-720x1280.png",
                "video": "http://127.0.0.1:8089/media/dance-8s.mp4",
                "video_duration_s": 8,
                "prompt": format!("hostile {i}"),
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "campaign": "hostile",
        "output_prefix": "campaigns",
        "vendors": VENDORS,
        "defaults": {"orientation": "video", "tier": "std"},
        "jobs": jobs,
    })
    .to_string();
    let path = dep.dir.path().join("hostile-check.json");
    std::fs::write(&path, &manifest).unwrap();
    let v = dep.run(&["validate", path.to_str().unwrap(), "--json"]);
    let accepted: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    let refused_ids: Vec<String> = accepted["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["severity"] == "error")
        .map(|p| format!("{} {}", p["pointer"], p["message"]))
        .collect();
    println!("security: hostile ids refused by validation: {refused_ids:?}");
    // Keep the ids validation accepts: those are the ones that reach the object store.
    let keep: Vec<serde_json::Value> = jobs
        .into_iter()
        .enumerate()
        .filter(|(i, _)| {
            !refused_ids.iter().any(|p| {
                p.starts_with(&format!("\"/jobs/{i}/")) || p.starts_with(&format!("\"/jobs/{i}\""))
            })
        })
        .map(|(_, j)| j)
        .collect();
    let n = keep.len();
    assert!(
        n >= 5,
        "most hostile ids are plain strings and must be accepted: {refused_ids:?}"
    );
    let mut m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    m["jobs"] = serde_json::Value::Array(keep);
    let campaign = dep.enqueue(&m.to_string());

    let (mut w, log) = dep.spawn_worker(&[], &[]);
    // Logs in JSON at trace level: the most a deployment can print.
    let mut wj = dep
        .command(&["--log-format", "json", "-vv", "worker"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dep.dir.path().join("worker-json.log")).unwrap())
        .spawn()
        .unwrap();
    let done = dep
        .wait_terminal(&[(campaign.clone(), n)], Duration::from_secs(180), || {})
        .await;
    sigterm(&mut w, Duration::from_secs(10)).unwrap();
    sigterm(&mut wj, Duration::from_secs(10)).unwrap();
    let rows = dep.report(&campaign);
    assert!(done, "hostile campaign finished: {rows:?}");

    // Object keys: every file under the store root, inside the campaign prefix.
    let files = all_files(&dep.out);
    println!(
        "security: {} hostile-id jobs stored as {files:?}",
        rows.len()
    );
    for r in &rows {
        assert_eq!(r["state"], "stored", "{r:?}");
    }
    for f in &files {
        // `<campaign>/<name>`: the documented `<output_prefix>/` in front is missing (see
        // `output_prefix_is_applied`), but nothing escapes the campaign's directory.
        let segs: Vec<&str> = f.split('/').collect();
        assert!(
            (segs.len() == 2 && segs[0] == "hostile")
                || (segs.len() == 3 && segs[0] == "campaigns" && segs[1] == "hostile"),
            "object outside its prefix: {f}"
        );
        assert!(
            segs.iter()
                .all(|s| *s != ".." && *s != "." && !s.is_empty()),
            "object key with a dot segment: {f}"
        );
    }
    assert_eq!(
        files.iter().filter(|f| f.ends_with(".mp4")).count(),
        n,
        "one object per hostile id (distinct ids never collide): {files:?}"
    );
    // Nothing written next to the store root: only what the harness put in the temp dir.
    for e in std::fs::read_dir(dep.dir.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            name == "objects"
                || name.ends_with(".log")
                || name.ends_with(".json")
                || name == "worker.toml",
            "unexpected file next to the object store: {name}"
        );
    }

    // Secrets: logs, outputs, errors, metrics.
    let mut haystacks = vec![
        ("worker log", std::fs::read_to_string(&log).unwrap()),
        (
            "json -vv worker log",
            std::fs::read_to_string(dep.dir.path().join("worker-json.log")).unwrap(),
        ),
        ("status", dep.run_ok(&["status", &campaign, "--json"])),
        (
            "report csv",
            dep.run_ok(&["report", &campaign, "--format", "csv"]),
        ),
        (
            "report json",
            dep.run_ok(&["report", &campaign, "--format", "json"]),
        ),
        ("keys", dep.run_ok(&["keys", "--json"])),
    ];
    let bad = dep.run(&["enqueue", "/nonexistent/manifest.json"]);
    haystacks.push(("error output", format!("{bad:?}")));
    let metrics = reqwest::get(format!(
        "{}/metrics",
        dep.sim.base_url().trim_end_matches('/')
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    haystacks.push(("simulator /metrics", metrics));
    let trace_lines = haystacks[1].1.lines().count();
    let auth_failures = dep.sim.ledger().vendors["kkiai"].auth_failures;
    for (what, text) in &haystacks {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "API key {s:?} found in {what}");
        }
    }
    println!(
        "security: {} secrets searched in {} outputs ({trace_lines} JSON trace log lines, {auth_failures} KKIAI 401s for the wrong key): none found",
        secrets.len(),
        haystacks.len()
    );
    assert!(trace_lines > 100, "the -vv worker logged");
    assert!(auth_failures > 0, "the wrong key was actually used");
}

#[test]
fn private_callbacks_are_refused_and_private_media_warned() {
    let bin = motionq_bin();
    let dir = tempfile::tempdir().unwrap();
    let media =
        "\"image\":\"https://cdn.example.com/a.png\",\"video\":\"https://cdn.example.com/v.mp4\"";
    for host in [
        "127.0.0.1",
        "10.0.0.8",
        "192.168.1.1",
        "169.254.169.254",
        "[::1]",
        "localhost",
    ] {
        let p = dir.path().join("m.json");
        std::fs::write(&p, format!("{{\"campaign\":\"c\",\"vendor\":\"kkiai\",\"callback_base_url\":\"https://{host}/cb\",\"jobs\":[{{\"id\":\"a\",{media}}}]}}")).unwrap();
        let o = Command::new(&bin)
            .current_dir(dir.path())
            .args(["validate", p.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "callback to {host} must be refused: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.contains("/callback_base_url"), "{host}: {s}");
        std::fs::write(&p, format!("{{\"campaign\":\"c\",\"vendor\":\"kkiai\",\"jobs\":[{{\"id\":\"a\",\"image\":\"http://{host}/a.png\",\"video\":\"https://cdn.example.com/v.mp4\"}}]}}")).unwrap();
        let o = Command::new(&bin)
            .current_dir(dir.path())
            .args(["validate", p.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let warned = v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pointer"] == "/jobs/0/image");
        assert!(warned, "media on {host}: a problem at /jobs/0/image: {v}");
    }
}

#[test]
fn simulator_admin_endpoints_are_off_unless_enabled() {
    let bin = motionq_bin();
    let mut results = Vec::new();
    for admin in [false, true] {
        let port = motionq_testkit::free_port().unwrap();
        let mut args = vec![
            "sim".to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ];
        if admin {
            args.push("--admin".into());
        }
        let mut child = Command::new(&bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut statuses = Vec::new();
        for path in ["/_sim/ledger", "/_sim/faults", "/_sim/reset"] {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let st = rt.block_on(async {
                let c = reqwest::Client::new();
                for _ in 0..100 {
                    if c.get(format!("{base}/healthz")).send().await.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let req = if path == "/_sim/reset" {
                    c.post(format!("{base}{path}"))
                } else {
                    c.get(format!("{base}{path}"))
                };
                req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
            });
            statuses.push((path, st));
        }
        sigkill(&mut child);
        results.push((admin, statuses));
    }
    println!("security: simulator admin endpoints {results:?}");
    for (admin, statuses) in results {
        for (path, st) in statuses {
            if admin {
                assert_ne!(st, 404, "{path} with --admin");
                assert!(st > 0, "{path}: the simulator answered");
            } else {
                assert_eq!(st, 404, "{path} without --admin must be 404");
            }
        }
    }
}

/// `output_prefix` (manifests/README.md): outputs land at
/// `<storage>/<output_prefix>/<campaign>/<job id>.mp4`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_prefix_is_applied() {
    let redis = motionq_testkit::RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let dep = Deployment::start(RedisTarget::Standalone(redis.url()), sim_config(0.002), "")
        .await
        .unwrap();
    let mut m: serde_json::Value =
        serde_json::from_str(&manifest("prefixed", 2, |_| "kkiai", |_| String::new())).unwrap();
    m["output_prefix"] = "marketing/2026".into();
    let campaign = dep.enqueue(&m.to_string());
    let (mut w, _) = dep.spawn_worker(&[], &[]);
    let done = dep
        .wait_terminal(&[(campaign.clone(), 2)], Duration::from_secs(120), || {})
        .await;
    sigterm(&mut w, Duration::from_secs(10)).unwrap();
    assert!(done);
    let files = all_files(&dep.out);
    println!("output_prefix: objects {files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("marketing/2026/prefixed/")),
        "{files:?}"
    );
}
