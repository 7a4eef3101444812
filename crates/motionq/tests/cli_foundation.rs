//! `motionq validate` and `motionq enqueue` as a user runs them: the real binary, a private
//! redis-server, and a local HTTP server for `--probe`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use motionq_testkit::RedisServer;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_motionq"));
    // Run from the workspace root so manifests/ and config/ resolve, with no stray overrides.
    c.current_dir(root());
    for (k, _) in std::env::vars() {
        if k.starts_with("MOTIONQ") {
            c.env_remove(k);
        }
    }
    c
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(c: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("run motionq");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).to_string(),
        String::from_utf8_lossy(&stderr).to_string(),
    )
}

fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

const ONE_JOB: &str = r#"{"campaign":"t1","vendor":"evolink","budget_usd":100,"jobs":[
 {"id":"a","image":"https://cdn.example.com/a.png","video":"https://cdn.example.com/v.mp4","video_duration_s":8}]}"#;

#[test]
fn validate_accepts_the_shipped_manifests() {
    for m in [
        "manifests/demo.json",
        "manifests/spring-launch.json",
        "manifests/large-1000.json",
    ] {
        let (code, out, err) = run(bin().args(["validate", m]));
        assert_eq!(code, 0, "{m}: {out}{err}");
        assert!(out.contains("manifest is valid"), "{out}");
    }
}

#[test]
fn validate_reports_every_problem_with_pointers_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "bad.json",
        br#"{"campaign":"t1","vendor":"evolink","jobs":[
          {"image":"https://e.com/a.png","video":"https://e.com/v.mp4","promt":"x"},
          {"id":"a","image":"https://e.com/a.webp","video":"https://e.com/v.mp4","video_duration_s":40},
          {"id":"a","image":"https://e.com/b.png","video":"https://e.com/v.mp4","cfg_scale":0.5}]}"#,
    );
    let (code, _, err) = run(bin().arg("validate").arg(&p));
    assert_eq!(code, 2, "{err}");
    for needle in [
        "/jobs/0/promt: unknown field `promt` (did you mean `prompt`?)",
        "/jobs/1/video_duration_s: reference video is 40 s",
        "/jobs/1/image: EvoLink does not accept Webp images",
        "/jobs/2/id: duplicate job id `a`",
        "/jobs/2/cfg_scale: EvoLink has no cfg_scale",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    // JSON output for scripts.
    let (code, out, _) = run(bin().arg("validate").arg(&p).arg("--json"));
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert!(v["problems"].as_array().unwrap().len() >= 5);
}

#[test]
fn malformed_json_non_utf8_empty_and_oversized_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "syntax.json",
        b"{\n  \"campaign\": \"c\",\n  \"jobs\": [\n    {\"image\": }\n  ]\n}",
    );
    let (code, _, err) = run(bin().arg("validate").arg(&p));
    assert_eq!(code, 2);
    assert!(err.contains("invalid JSON at line 4, column"), "{err}");

    let p = write(
        dir.path(),
        "latin1.json",
        b"{\"campaign\": \"caf\xe9\", \"jobs\": []}",
    );
    let (code, _, err) = run(bin().arg("validate").arg(&p));
    assert_eq!(code, 2);
    assert!(
        err.contains("not valid UTF-8") && err.contains("column 18"),
        "{err}"
    );

    let p = write(
        dir.path(),
        "empty.json",
        br#"{"campaign":"c","vendor":"kkiai","jobs":[]}"#,
    );
    let (code, _, err) = run(bin().arg("validate").arg(&p));
    assert_eq!(code, 2);
    assert!(err.contains("/jobs: the campaign has no jobs"), "{err}");

    let p = write(dir.path(), "wrongtype.json", br#"{"campaign":"c","vendor":"kkiai","budget_usd":"ten","jobs":[{"image":5,"video":"https://e.com/v.mp4"}]}"#);
    let (code, _, err) = run(bin().arg("validate").arg(&p));
    assert_eq!(code, 2);
    assert!(
        err.contains("/budget_usd: invalid type: string \"ten\", expected f64"),
        "{err}"
    );
    assert!(
        err.contains("/jobs/0/image: invalid type: integer `5`, expected a string"),
        "{err}"
    );

    // 100 MB: refused by size before it is read, with the setting to change.
    let big = dir.path().join("big.json");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    let (code, _, err) = run(bin().arg("validate").arg(&big));
    assert_eq!(code, 2);
    assert!(
        err.contains("the manifest is 104.9 MB; the limit is 67.1 MB"),
        "{err}"
    );
    assert!(
        err.contains("MOTIONQ__VALIDATION__MAX_MANIFEST_BYTES"),
        "{err}"
    );

    let (code, _, err) = run(bin().args(["validate", "/nonexistent/m.json"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read manifest /nonexistent/m.json"),
        "{err}"
    );
}

#[tokio::test]
async fn enqueue_is_idempotent_durable_and_summarised_as_json() {
    let mut redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let (code, out, err) = run(bin()
        .args(["enqueue", "manifests/large-1000.json", "--json"])
        .env("MOTIONQ__REDIS__URL", &url));
    assert_eq!(code, 0, "{err}");
    let s: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(s["campaign"], "large-example");
    assert_eq!(s["jobs_total"], 1000);
    assert_eq!(s["jobs_new"], 1000);
    // 1000 jobs: one third each of 3, 8 and 10 s at $0.12/s.
    let expected = s["estimated_cost_usd"].as_f64().unwrap();
    assert!(expected > 0.0);

    // Same manifest again: nothing new.
    let (code, out, _) = run(bin()
        .args(["enqueue", "manifests/large-1000.json", "--json"])
        .env("MOTIONQ__REDIS__URL", &url));
    assert_eq!(code, 0);
    let s: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(s["jobs_new"], 0);

    // Survives a Redis SIGKILL (AOF, appendfsync always in tests).
    redis.kill();
    redis.restart().await.unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let n: u64 = redis::cmd("ZCARD")
        .arg("mq:{c:large-example}:jobs")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 1000);
}

#[tokio::test]
async fn over_budget_and_conflicts_are_refused_with_nothing_written() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url();
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "m.json",
        ONE_JOB
            .replace("\"budget_usd\":100", "\"budget_usd\":0.5")
            .as_bytes(),
    );
    let (code, _, err) = run(bin()
        .arg("enqueue")
        .arg(&p)
        .env("MOTIONQ__REDIS__URL", &url));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("worst-case cost $0.96 exceeds the campaign budget $0.50"),
        "{err}"
    );
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let n: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(n, 0, "a refused enqueue writes nothing");
    let (code, _, _) = run(bin()
        .arg("enqueue")
        .arg(&p)
        .arg("--allow-over-budget")
        .env("MOTIONQ__REDIS__URL", &url));
    assert_eq!(code, 0);

    let changed = ONE_JOB
        .replace("\"budget_usd\":100", "\"budget_usd\":0.5")
        .replace("a.png", "b.png");
    let p2 = write(dir.path(), "m2.json", changed.as_bytes());
    let (code, _, err) = run(bin()
        .arg("enqueue")
        .arg(&p2)
        .arg("--allow-over-budget")
        .env("MOTIONQ__REDIS__URL", &url));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("`a` (exists with different content; use --replace"),
        "{err}"
    );
    let (code, out, err) = run(bin()
        .arg("enqueue")
        .arg(&p2)
        .args(["--allow-over-budget", "--replace", "--json"])
        .env("MOTIONQ__REDIS__URL", &url));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"jobs_replaced\":1"), "{out}");
}

#[test]
fn redis_down_is_a_clear_error() {
    let port = motionq_testkit::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "m.json", ONE_JOB.as_bytes());
    let (code, _, err) = run(bin()
        .arg("enqueue")
        .arg(&p)
        .env(
            "MOTIONQ__REDIS__URL",
            format!("redis://:hunter2pw@127.0.0.1:{port}/"),
        )
        .env("MOTIONQ__REDIS__CONNECT_TIMEOUT_MS", "500"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "cannot connect to Redis at redis://:***@127.0.0.1:{port}/"
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2pw"), "password leaked: {err}");
}

#[test]
fn dry_run_prints_the_estimate_table() {
    let (code, out, _) = run(bin().args(["enqueue", "manifests/spring-launch.json", "--dry-run"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("evolink      pro         3         28"),
        "{out}"
    );
    assert!(out.contains("expected total: $5.08"), "{out}");
    assert!(
        out.contains("worst case: $6.35 vs budget $25.00 (within budget)"),
        "{out}"
    );
    // Unknown prices are said, never guessed, and the budget cannot be checked.
    let (code, out, err) = run(bin().args(["enqueue", "manifests/demo.json", "--dry-run"]));
    assert_eq!(code, 3);
    assert!(out.contains("HighwayAPI publishes no price"), "{out}");
    assert!(err.contains("cannot be checked"), "{err}");
}

/// A local media server: the sample files, with HTTP range support from tower-http's ServeDir
/// is not needed — the probe handles servers without Range too.
async fn media_server() -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::Path as AxPath;
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    async fn file(AxPath(name): AxPath<String>) -> axum::response::Response {
        match motionq_media::sample(&name) {
            Some(s) => ([(header::CONTENT_TYPE, s.content_type)], s.bytes.clone()).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = axum::Router::new().route("/media/{name}", axum::routing::get(file));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = tokio::spawn(async move {
        axum::serve(l, app).await.unwrap();
    });
    (format!("http://{addr}/media"), h)
}

// The binary blocks this thread: the media server needs a runtime thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_makes_the_estimate_exact_and_checks_limits() {
    let (base, _server) = media_server().await;
    let dir = tempfile::tempdir().unwrap();
    let m = format!(
        r#"{{"campaign":"p1","vendor":"evolink","jobs":[
        {{"id":"ok","image":"{base}/portrait-720x1280.png","video":"{base}/dance-8s-moov-end.mp4"}},
        {{"id":"small","image":"{base}/small-200x200.png","video":"{base}/dance-12s.mp4","orientation":"image"}},
        {{"id":"gone","image":"{base}/portrait-720x1280.png","video":"{base}/missing.mp4"}}]}}"#
    );
    let p = write(dir.path(), "m.json", m.as_bytes());
    let (code, _, err) = run(bin().arg("validate").arg(&p).arg("--probe"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("/jobs/1/image: image is 200x200 px; EvoLink needs at least 300 px"),
        "{err}"
    );
    assert!(
        err.contains("/jobs/1/video: EvoLink needs a reference of at most 10 s"),
        "{err}"
    );
    assert!(
        err.contains("/jobs/2/video: probe failed:") && err.contains("404"),
        "{err}"
    );

    let ok = format!(
        r#"{{"campaign":"p2","vendor":"evolink","jobs":[
        {{"id":"ok","image":"{base}/portrait-720x1280.png","video":"{base}/dance-8s-moov-end.mp4"}}]}}"#
    );
    let p = write(dir.path(), "ok.json", ok.as_bytes());
    // Without --probe the duration is unknown: priced at the worst case (30 s).
    let (code, out, _) = run(bin().arg("enqueue").arg(&p).args(["--dry-run"]));
    assert_eq!(code, 0);
    assert!(out.contains("expected total: $3.60"), "{out}");
    let (code, out, err) = run(bin().arg("enqueue").arg(&p).args(["--dry-run", "--probe"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("expected total: $0.96"), "{out}");

    // An unreachable probe URL.
    let port = motionq_testkit::free_port().unwrap();
    let bad = ok.replace(&base, &format!("http://127.0.0.1:{port}/media"));
    let p = write(dir.path(), "bad.json", bad.as_bytes());
    let (code, _, err) = run(bin().arg("validate").arg(&p).arg("--probe"));
    assert_eq!(code, 2);
    assert!(err.contains("/jobs/0/video: probe failed:"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}
