//! Throughput and memory of one collect: a generated MP4-looking output (default 500 MB,
//! `MOTIONQ_BENCH_MB` to change) streamed from a loopback HTTP source into a local directory
//! and into an in-process S3-compatible server (s3s-fs), next to `curl -o /dev/null` of the
//! same URL when curl is installed.
//!
//! Run: `cargo bench -p motionq-collect --bench collect`
//!
//! The source and S3 servers run in a child process (this binary with `--serve`), so the peak
//! RSS growth printed is the collector's alone: VmHWM from /proc/self/status, reset before
//! each run by writing `5` to /proc/self/clear_refs. Prints figures; asserts only that the
//! stored bytes hash like the source's.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use motionq_collect::{CollectOptions, CollectRequest, Collector, Storage, StorageConfig};

const MB: u64 = 1_000_000;

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        serve();
        return;
    }
    let size_mb: u64 = std::env::var("MOTIONQ_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let size = size_mb * MB;

    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("piped stdout"))
        .read_line(&mut line)
        .expect("server address line");
    let mut source = String::new();
    let mut s3_endpoint = String::new();
    for part in line.split_whitespace() {
        if let Some(v) = part.strip_prefix("source=") {
            source = v.to_owned();
        } else if let Some(v) = part.strip_prefix("s3=") {
            s3_endpoint = v.to_owned();
        }
    }
    assert!(
        !source.is_empty() && !s3_endpoint.is_empty(),
        "bad line {line:?}"
    );
    let url = format!("{source}/gen/{size}");
    let expected = common::generated_sha256(size);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("temp dir");
    let local = Storage::from_config(&StorageConfig::new(tmp.path().to_str().expect("utf-8")))
        .expect("local storage");
    let s3 = Storage::from_config(
        &StorageConfig::new(format!("s3://{}/bench", common::S3_BUCKET))
            .with_option("endpoint", &s3_endpoint)
            .with_option("region", "us-east-1")
            .with_option("allow_http", "true")
            .with_option("virtual_hosted_style_request", "false")
            .with_option("access_key_id", common::S3_ACCESS_KEY)
            .with_option("secret_access_key", common::S3_SECRET_KEY),
    )
    .expect("s3 storage");

    let options = CollectOptions::default();
    println!(
        "collect bench: {size_mb} MB output, part_size {} MiB, {} parts in flight",
        options.part_size >> 20,
        options.max_concurrent_parts
    );
    // Other processes share the cores: say how busy the machine was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "cores {}, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:<28} {:>10} {:>10} {:>22}",
        "target", "seconds", "MB/s", "peak RSS growth (MB)"
    );

    let mut rates = Vec::new();
    for (name, storage) in [("local directory", local), ("s3 (s3s-fs, in-process)", s3)] {
        let collector = Collector::new(storage, common::client(), options.clone());
        // Warm up the client, runtime and allocator with a small output first.
        rt.block_on(collector.collect(&request("warmup", &format!("{source}/gen/{}", 2 * MB))))
            .expect("warm-up collect");
        reset_peak_rss();
        let before = vm_kb("VmHWM");
        let started = Instant::now();
        let done = rt
            .block_on(collector.collect(&request("bench", &url)))
            .expect("collect");
        let secs = started.elapsed().as_secs_f64();
        let growth_mb = vm_kb("VmHWM").saturating_sub(before) as f64 / 1024.0;
        assert_eq!(done.sha256, expected, "stored bytes differ from the source");
        assert_eq!(done.bytes, size);
        let rate = size as f64 / MB as f64 / secs;
        rates.push(rate);
        println!("{name:<28} {secs:>10.2} {rate:>10.1} {growth_mb:>22.1}");
        // Free the disk space before the next run.
        rt.block_on(
            collector
                .storage()
                .delete(&object_store::path::Path::from(done.key.as_str())),
        )
        .expect("delete");
    }

    // curl as the reference: discarding the bytes (what the brief of this benchmark asks),
    // and writing them to a file on the disk the local store uses (the fair comparison for
    // the local directory: same network path, same disk, but no hashing or checks).
    let file = tmp.path().join("curl.out");
    let targets = [
        ("curl -o /dev/null", "/dev/null".to_owned()),
        ("curl -o <file>", file.display().to_string()),
    ];
    for (label, out) in targets {
        match curl_rate(&url, size, &out) {
            Some((secs, rate)) => {
                println!("{label:<28} {secs:>10.2} {rate:>10.1} {:>22}", "-");
                for (name, r) in ["local directory", "s3"].iter().zip(&rates) {
                    println!("  ratio {name} / {label}: {:.2}", r / rate);
                }
            }
            None => {
                println!("curl not found: install it (apt-get install curl) for the ratio");
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&file);

    drop(child.stdin.take()); // the server process exits when its stdin closes
    let _ = child.wait();
}

fn request(campaign: &str, url: &str) -> CollectRequest {
    CollectRequest {
        campaign: campaign.into(),
        job_id: "out".into(),
        url: url.parse().expect("url"),
        expires_at: None,
        sidecar: serde_json::Value::Null,
    }
}

/// Seconds and MB/s of `curl -o <out>`, `None` without curl.
fn curl_rate(url: &str, size: u64, out_path: &str) -> Option<(f64, f64)> {
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-sS", "-o", out_path, "-w", "%{size_download}", url])
        .output()
        .ok()?;
    let secs = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "curl failed: {out:?}");
    let got: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    assert_eq!(got, size, "curl downloaded {got} bytes");
    Some((secs, size as f64 / MB as f64 / secs))
}

/// A field of /proc/self/status in kB (0 where it is not available).
fn vm_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0), so each run measures its own peak.
fn reset_peak_rss() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("cannot reset VmHWM; growth figures include earlier runs");
    }
}

/// The server process: source + S3 on loopback, one line with their addresses on stdout,
/// until stdin closes.
fn serve() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let source = common::SourceServer::start().await;
        let s3 = common::S3Server::start().await;
        println!("source=http://{} s3={}", source.addr, s3.endpoint);
        // Wait for the parent to close our stdin (or to die).
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .expect("stdin watcher");
        drop(s3);
        drop(source);
    });
    // Let the runtime drop the servers before the temp dir goes.
    std::thread::sleep(Duration::from_millis(10));
}
