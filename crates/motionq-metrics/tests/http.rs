//! `/metrics` and `/healthz` over real HTTP on loopback, the catalogue's names and labels, the
//! scrape hook, and `promtool check metrics` on what a populated process really serves.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use common::*;
use futures::FutureExt;
use motionq_core::Vendor;
use motionq_metrics::{KeyState, Metrics, ParkReason};

/// Families in the scraped text (`# TYPE name type`).
fn families(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let mut it = l.split_whitespace();
            (
                it.next().unwrap_or_default().to_string(),
                it.next().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn has_sample(text: &str, name: &str, labels: &[(&str, &str)]) -> bool {
    text.lines().any(|l| {
        l.starts_with(&format!("{name}{{"))
            && labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
    })
}

#[tokio::test]
async fn scrape_exports_the_whole_catalogue_with_bounded_labels() {
    let metrics = Metrics::new();
    install_hook(&metrics).await;
    for i in 0..3 {
        tick(&metrics, i);
    }
    let server = TestServer::start(metrics.clone()).await;
    let text = server.scrape().await;
    let fams = families(&text);

    // Every family named in the crate doc's catalogue table is served with the documented
    // type, and nothing is served that the table does not document.
    let doc = include_str!("../src/lib.rs");
    let documented: BTreeSet<(String, String)> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("//! | `motionq_"))
        .map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = format!("motionq_{}", cols[0].trim_end_matches('`'));
            let ty = cols[1]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            (name, ty)
        })
        .collect();
    assert!(
        documented.len() >= 30,
        "catalogue table parsed: {documented:?}"
    );
    let served: BTreeSet<(String, String)> = fams
        .iter()
        .filter(|(n, _)| n.starts_with("motionq_"))
        .cloned()
        .collect();
    assert_eq!(
        served, documented,
        "served families != documented catalogue"
    );
    assert!(
        fams.iter().any(|(n, _)| n == "process_cpu_seconds_total"),
        "process metrics missing"
    );

    // Naming rules: prefix, `_total` exactly on counters, unit suffix on histograms.
    for (name, ty) in &served {
        assert_eq!(
            ty == "counter",
            name.ends_with("_total"),
            "{name}: `_total` suffix iff counter"
        );
        if ty == "histogram" {
            assert!(name.ends_with("_seconds"), "{name}: histogram unit");
        }
    }

    // Labels come only from the bounded set.
    let allowed = [
        "vendor",
        "key",
        "campaign",
        "operation",
        "status_class",
        "code",
        "error_class",
        "stage",
        "reason",
        "window",
        "tier",
        "state",
        "outcome",
        "from",
        "to",
        "version",
        "le",
    ];
    for line in text.lines().filter(|l| l.starts_with("motionq_")) {
        let Some(body) = line.split_once('{').map(|(_, b)| b) else {
            continue;
        };
        let body = body.rsplit_once('}').expect("closing brace").0;
        for pair in body.split("\",") {
            let k = pair.split('=').next().unwrap_or_default();
            assert!(
                allowed.contains(&k),
                "label `{k}` not in the bounded set: {line}"
            );
        }
    }

    // Spot checks of values the populator set.
    assert!(has_sample(
        &text,
        "motionq_vendor_requests_total",
        &[
            ("vendor", "kkiai"),
            ("key", "burst"),
            ("operation", "create"),
            ("status_class", "4xx")
        ]
    ));
    assert!(text.contains(
        "motionq_vendor_throttled_responses_total{code=\"429\",key=\"burst\",operation=\"create\",vendor=\"kkiai\"} 6"
    ));
    assert!(text.contains(
        "motionq_vendor_requests_total{key=\"main\",operation=\"callback\",status_class=\"error\",vendor=\"freepik\"} 3"
    ));
    assert!(text.contains(
        "motionq_key_state{key=\"burst\",reason=\"quota_exhausted\",state=\"parked\",vendor=\"kkiai\"} 1"
    ));
    assert!(text.contains(
        "motionq_key_budget_remaining_usd{key=\"burst\",vendor=\"kkiai\",window=\"hourly\"} 1"
    ));
    // An unlimited window exports no limit.
    assert!(!has_sample(
        &text,
        "motionq_key_spend_limit_usd",
        &[("window", "total")]
    ));
    assert!(has_sample(
        &text,
        "motionq_key_spend_settled_usd",
        &[("window", "total")]
    ));
    // Scrape-time families came from the hook, zero states included.
    assert!(text.contains("motionq_campaign_jobs{campaign=\"spring-launch\",state=\"stored\"} 250"));
    assert!(text.contains("motionq_campaign_jobs{campaign=\"spring-launch\",state=\"expired\"} 0"));
    assert!(text.contains("motionq_queue_depth{stage=\"submit\",state=\"unread\"} 40"));
    assert!(text.contains("motionq_campaign_state{campaign=\"spring-launch\",state=\"running\"} 1"));
    // The hook runs on every scrape.
    let again = server.scrape().await;
    assert!(
        again.contains("motionq_campaign_jobs{campaign=\"spring-launch\",state=\"stored\"} 255")
    );

    server.stop().await;
}

#[tokio::test]
async fn key_state_stays_one_hot() {
    let m = Metrics::new();
    m.set_key_state(Vendor::Evolink, "a", KeyState::Active);
    m.set_key_state(
        Vendor::Evolink,
        "a",
        KeyState::Parked(ParkReason::InsufficientFunds),
    );
    m.set_key_state(Vendor::Evolink, "a", KeyState::Parked(ParkReason::Operator));
    let text = m.encode();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("motionq_key_state{"))
        .collect();
    assert_eq!(
        lines,
        vec!["motionq_key_state{key=\"a\",reason=\"operator\",state=\"parked\",vendor=\"evolink\"} 1"]
    );
    m.set_key_state(Vendor::Evolink, "a", KeyState::Active);
    assert!(m.encode().contains(
        "motionq_key_state{key=\"a\",reason=\"none\",state=\"active\",vendor=\"evolink\"} 1"
    ));
    assert!(!m.encode().contains("reason=\"operator\""));
}

#[tokio::test]
async fn forget_campaign_drops_its_series() {
    let m = Metrics::new();
    tick(&m, 1);
    m.spend_settled(Vendor::Evolink, "x", "other", 1.0);
    assert!(m.encode().contains("campaign=\"spring-launch\""));
    m.forget_campaign(CAMPAIGN);
    let text = m.encode();
    assert!(!text.contains("campaign=\"spring-launch\""), "{text}");
    assert!(text.contains("campaign=\"other\""));
}

#[tokio::test]
async fn failing_hook_keeps_previous_values_and_counts() {
    let m = Metrics::new();
    m.apply_snapshot(&snapshot(0));
    m.set_scrape_hook(Box::new(|| async { Err("redis down".into()) }.boxed()))
        .await;
    let server = TestServer::start(m.clone()).await;
    let text = server.scrape().await;
    assert!(
        text.contains("motionq_scrape_refresh_errors_total 1"),
        "{text}"
    );
    assert!(text.contains("motionq_queue_depth{stage=\"submit\",state=\"unread\"} 40"));
    // Raw error text never reaches the output.
    assert!(!text.contains("redis down"));
    server.stop().await;
}

#[tokio::test]
async fn snapshot_replaces_vanished_campaigns() {
    let m = Metrics::new();
    m.apply_snapshot(&snapshot(0));
    assert!(m
        .encode()
        .contains("motionq_campaign_jobs{campaign=\"spring-launch\""));
    m.apply_snapshot(&motionq_metrics::ScrapeSnapshot::default());
    assert!(!m.encode().contains("spring-launch"));
}

#[tokio::test]
async fn healthz_follows_the_health_function() {
    let server = TestServer::start(Metrics::new()).await;
    let r = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    server.healthy.store(false, Ordering::SeqCst);
    let r = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 503);
    let r = reqwest::get(server.url("/nope")).await.unwrap();
    assert_eq!(r.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn promtool_check_metrics_accepts_the_scrape() {
    let promtool = require_binary("promtool", PROMETHEUS_INSTALL);
    let metrics = Metrics::new();
    install_hook(&metrics).await;
    for i in 0..4 {
        tick(&metrics, i);
    }
    let server = TestServer::start(metrics).await;
    let text = server.scrape().await;
    server.stop().await;

    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
