//! The operator's commands as a user runs them: `demo`, `status`, `report`, `pause`, `resume`,
//! `cancel`, `retry`, `keys` — the real binary against a private redis-server.

use std::path::PathBuf;
use std::process::Command;

use motionq_testkit::RedisServer;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_motionq"));
    c.current_dir(root());
    for (k, _) in std::env::vars() {
        if k.starts_with("MOTIONQ") {
            c.env_remove(k);
        }
    }
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let o = c.output().expect("run motionq");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// The README's main command: every job stored, outputs on disk with the sha256 the report
/// states, no duplicate paid submissions, and no API key anywhere in the output or the logs.
#[test]
fn demo_stores_every_job_and_never_prints_a_key() {
    let out_dir = tempfile::tempdir().unwrap();
    let outputs = out_dir.path().join("outputs");
    let port = motionq_testkit::free_port().unwrap();
    let (code, stdout, stderr) = run(bin()
        .args([
            "demo",
            "--log-format",
            "json",
            "-v",
            "--sim-port",
            &port.to_string(),
            "--outputs",
        ])
        .arg(&outputs));
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("all 12 jobs stored."), "{stdout}");
    assert!(stdout.contains("0 duplicate submissions"), "{stdout}");

    // Outputs and report agree byte for byte.
    let report = std::fs::read_to_string(out_dir.path().join("demo-report.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(report.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut rows = 0;
    for rec in rdr.records() {
        let rec = rec.unwrap();
        if &rec[0] == "TOTAL" {
            assert_eq!(&rec[1], "12 jobs");
            continue;
        }
        rows += 1;
        assert_eq!(&rec[col("state")], "stored", "{rec:?}");
        let url = &rec[col("object_url")];
        let path = url.strip_prefix("file://").unwrap();
        let bytes = std::fs::read(path).unwrap();
        use sha2::Digest;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            &rec[col("sha256")]
        );
        assert_eq!(&bytes[4..8], b"ftyp");
        assert!(
            std::path::Path::new(&path.replace(".mp4", ".json")).exists(),
            "sidecar for {path}"
        );
    }
    assert_eq!(rows, 12);

    // The simulator's demo keys must never appear in what motionq prints or logs.
    let sim = std::fs::read_to_string(root().join("config/sim.toml")).unwrap();
    let keys: Vec<&str> = sim
        .lines()
        .filter_map(|l| l.trim().strip_prefix("key = \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert!(keys.len() >= 10, "found the demo keys: {keys:?}");
    for k in keys {
        assert!(
            !stdout.contains(k) && !stderr.contains(k),
            "API key {k} leaked into the output"
        );
        assert!(!report.contains(k), "API key {k} leaked into the report");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_report_and_campaign_control() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let with = |c: &mut Command| {
        c.env("MOTIONQ__REDIS__URL", &url)
            .args(["--config", "config/demo.toml"]);
    };
    let mut c = bin();
    with(c.args(["enqueue", "manifests/demo.json", "--json"]));
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 0, "{err}");

    let mut c = bin();
    with(c.args(["status"]));
    let (code, out, _) = run(&mut c);
    assert_eq!(code, 0);
    assert!(out.starts_with("demo "), "{out}");
    assert!(out.contains("0/12"), "{out}");

    let mut c = bin();
    with(c.args(["pause", "demo"]));
    assert_eq!(run(&mut c).0, 0);
    let mut c = bin();
    with(c.args(["status", "demo", "--json"]));
    let (code, out, _) = run(&mut c);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "paused");
    assert_eq!(v["counts"]["queued"], 12);
    let mut c = bin();
    with(c.args(["pause", "demo"]));
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 3, "pausing twice is refused: {err}");
    let mut c = bin();
    with(c.args(["resume", "demo"]));
    assert_eq!(run(&mut c).0, 0);

    // A failed job can be retried; the report shows it.
    let store = motionq_store::Store::new(
        motionq_store::RedisConn::connect(&motionq_config::RedisConfig {
            url: url.clone(),
            ..Default::default()
        })
        .await
        .unwrap(),
        "mq",
    );
    use motionq_core::JobState;
    store
        .transition(
            "demo",
            "fp-webp-std",
            &[JobState::Queued],
            JobState::Failed,
            "test",
            &[
                ("error_class", "content_policy".into()),
                ("error_message", "flagged".into()),
            ],
        )
        .await
        .unwrap();
    let mut c = bin();
    with(c.args(["report", "demo", "--format", "json"]));
    let (code, out, err) = run(&mut c);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["jobs"].as_array().unwrap().len(), 12);
    assert_eq!(v["totals"]["by_state"]["failed"], 1);
    let failed = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_id"] == "fp-webp-std")
        .unwrap();
    assert_eq!(failed["error_class"], "content_policy");
    let mut c = bin();
    with(c.args(["status", "demo"]));
    let (_, out, _) = run(&mut c);
    assert!(
        out.contains("fp-webp-std: content_policy: flagged"),
        "{out}"
    );
    // The snapshot's bar carries the pace since enqueue and the time the rest takes at it.
    assert!(
        out.contains("1/12 done") && out.contains("jobs/min since enqueue, ETA "),
        "{out}"
    );
    let mut c = bin();
    with(c.args(["retry", "demo", "--job", "fp-webp-std"]));
    let (code, out, err) = run(&mut c);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 job(s)"), "{out}");
    let mut c = bin();
    with(c.args(["retry", "demo", "--job", "evo-square-pro"]));
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 3, "a queued job cannot be retried: {err}");

    // Cancel: every queued job is cancelled at once.
    let mut c = bin();
    with(c.args(["cancel", "demo", "--json"]));
    let (code, out, _) = run(&mut c);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["jobs_cancelled"], 12);

    // Watch: with every job terminal it draws its last frame and ends with a summary; it is a
    // terminal view, so `--json` is refused as a bad flag combination (exit 2).
    let mut c = bin();
    with(c.args(["status", "demo", "--watch"]));
    let (code, out, err) = run(&mut c);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("all 12 jobs are terminal after"), "{out}");
    let mut c = bin();
    with(c.args(["status", "demo", "--watch", "--json"]));
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--json"), "{err}");

    // CSV report: stable header, a TOTAL row.
    let mut c = bin();
    with(c.args(["report", "demo", "--format", "csv"]));
    let (code, out, _) = run(&mut c);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(
            "job_id,state,vendor,key_alias,task_id,generation,estimated_cost_usd,actual_cost_usd"
        ),
        "{out}"
    );
    assert!(
        out.lines().last().unwrap().starts_with("TOTAL,12 jobs"),
        "{out}"
    );

    // Keys: every configured key, none parked.
    let mut c = bin();
    with(c.args(["keys", "--json"]));
    let (code, out, err) = run(&mut c);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 10);
    let mut c = bin();
    with(c.args(["keys", "park", "evolink/evolink-2", "--json"]));
    let (code, out, err) = run(&mut c);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["key"].as_str(), v["state"].as_str()),
        (Some("evolink/evolink-2"), Some("parked"))
    );
    let mut c = bin();
    with(c.args(["keys"]));
    let (_, out, _) = run(&mut c);
    assert!(
        out.lines()
            .any(|l| l.starts_with("evolink/evolink-2") && l.contains("parked: operator")),
        "{out}"
    );

    // Errors: unknown campaign (2), Redis down (1).
    let mut c = bin();
    with(c.args(["status", "nope"]));
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 2);
    assert!(err.contains("unknown campaign `nope`"), "{err}");
    let port = motionq_testkit::free_port().unwrap();
    let (code, _, err) = run(bin()
        .args(["status"])
        .env("MOTIONQ__REDIS__URL", format!("redis://127.0.0.1:{port}/"))
        .env("MOTIONQ__REDIS__CONNECT_TIMEOUT_MS", "300"));
    assert_eq!(code, 1);
    assert!(err.contains("cannot connect to Redis"), "{err}");
}
