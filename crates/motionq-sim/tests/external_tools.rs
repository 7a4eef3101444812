//! Checks by the reference tools: `promtool` lints `/metrics`, `ffprobe`/`ffmpeg` decode a served
//! output. Both are required (Debian: `apt-get install -y prometheus ffmpeg`); a missing tool
//! fails the test with that hint instead of skipping it.

mod common;

use common::*;
use motionq_sim::{Tier, Vendor};
use std::io::Write;
use std::process::{Command, Stdio};

fn require(tool: &str, package: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{tool}` is required by this test: install it with `apt-get install -y --no-install-recommends {package}`"
    );
}

#[tokio::test]
async fn promtool_accepts_the_metrics() {
    require("promtool", "prometheus");
    let sim = start(config()).await;
    for v in Vendor::ALL {
        let id = create_ok(
            &sim,
            v,
            &Job::new(&sim, "portrait-720x1280.png", "dance-3s.mp4"),
        )
        .await;
        finish(&sim, v, &id, Tier::Std).await;
    }
    let text = client()
        .get(format!("{}/metrics", sim.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn ffmpeg_decodes_a_served_output() {
    require("ffprobe", "ffmpeg");
    let sim = start(config()).await;
    let v = Vendor::Highwayapi;
    let mut job = Job::new(&sim, "portrait-720x1280.png", "dance-12s.mp4");
    job.orientation = "image";
    job.tier = Tier::Pro;
    let id = create_ok(&sim, v, &job).await;
    let url = output_url(v, &finish(&sim, v, &id, Tier::Pro).await);
    let (_, bytes) = download(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.mp4");
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=width,height,codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("h264,1920,1080"), "{text}");
    let duration: f64 = text.lines().last().unwrap().trim().parse().unwrap();
    assert!(
        (duration - 5.0).abs() < 0.05,
        "HighwayAPI image mode outputs 5 s, got {duration}"
    );
    // Every frame decodes without errors.
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
