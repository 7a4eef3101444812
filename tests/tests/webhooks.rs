//! Suite 4 (vendor faults), webhook part: `motionq serve` receives the vendors' callbacks while
//! the simulator drops 30% of them and sends another 30% twice, on the four vendors that call
//! back (EvoLink, KKIAI, AI Video API, Freepik signed with its Standard-Webhooks secret). Two
//! worker processes attach the callback URL to every create. Every job must end stored and
//! verified against the ledger with one accepted create per job; the receiver must have used
//! callbacks (`poll_now`), deduplicated the doubled ones, and polling must have completed the
//! jobs whose callback never came.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use motionq_sim::{CallbackFaults, Faults};
use tests::*;

const CALLBACK_VENDORS: [&str; 4] = ["evolink", "kkiai", "aivideoapi", "freepik"];

fn vendor_of(i: usize) -> &'static str {
    CALLBACK_VENDORS[i % CALLBACK_VENDORS.len()]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Sum of `motionq_webhooks_total` samples with `outcome="<outcome>"` in a scrape.
fn webhooks_total(scrape: &str, outcome: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| {
            l.starts_with("motionq_webhooks_total{")
                && l.contains(&format!("outcome=\"{outcome}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_duplicated_webhooks_change_nothing() {
    let redis = motionq_testkit::RedisServer::start()
        .await
        .expect(motionq_testkit::INSTALL_HINT);
    let sim = sim_config(0.01);
    let secret = sim
        .freepik
        .webhook_secret
        .clone()
        .expect("config/sim.toml sets freepik.webhook_secret");
    let mut dep = Deployment::start(RedisTarget::Standalone(redis.url()), sim, "")
        .await
        .unwrap();
    let port = free_port();
    let token: String = format!(
        "wh-suite-token-{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    dep.extra_env.extend([
        (
            "MOTIONQ__WEBHOOKS__PUBLIC_BASE_URL".to_string(),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            "MOTIONQ__WEBHOOKS__LISTEN".to_string(),
            format!("127.0.0.1:{port}"),
        ),
        ("MOTIONQ_DEMO_WEBHOOK_TOKEN".to_string(), token),
        ("MOTIONQ_DEMO_FREEPIK_WEBHOOK_SECRET".to_string(), secret),
    ]);
    let mut faults = Faults::default();
    for v in [
        &mut faults.evolink,
        &mut faults.kkiai,
        &mut faults.aivideoapi,
        &mut faults.freepik,
    ] {
        v.callback = CallbackFaults {
            drop: 0.3,
            duplicate: 0.3,
        };
    }
    dep.sim.set_faults(faults).expect("faults accepted");

    let log = dep.dir.path().join("serve.log");
    let mut serve: Child = dep
        .command(&["serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn motionq serve");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let up = Instant::now();
    loop {
        let ok = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        assert!(
            serve.try_wait().unwrap().is_none() && up.elapsed() < Duration::from_secs(30),
            "motionq serve did not come up: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let jobs = size(60, 600);
    let campaign = dep.enqueue(&manifest("webhooks", jobs, vendor_of, |_| String::new()));
    let started = Instant::now();
    let mut workers: Vec<_> = (0..2).map(|_| dep.spawn_worker(&[], &[])).collect();
    let done = dep
        .wait_terminal(
            &[(campaign.clone(), jobs)],
            Duration::from_secs(if long_mode() { 1800 } else { 240 }),
            || {},
        )
        .await;
    let secs = started.elapsed().as_secs_f64();
    let scrape = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape motionq serve")
        .text()
        .await
        .unwrap();
    for (w, _) in workers.iter_mut() {
        sigterm(w, Duration::from_secs(15)).unwrap();
    }
    sigterm(&mut serve, Duration::from_secs(15)).unwrap();

    let ledger = dep.sim.ledger();
    let rows = dep.report(&campaign);
    let a = audit(&rows, &dep.stored_files(), &ledger);
    let (mut planned, mut dropped, mut duplicated, mut delivered) = (0, 0, 0, 0);
    for v in CALLBACK_VENDORS {
        let cb = &ledger.vendors[v].callbacks;
        println!(
            "  {v}: callbacks planned {}, dropped {}, sent twice {}, delivered {}, failed attempts {}",
            cb.planned, cb.dropped, cb.duplicated, cb.delivered, cb.failed_attempts
        );
        planned += cb.planned;
        dropped += cb.dropped;
        duplicated += cb.duplicated;
        delivered += cb.delivered;
        let (creates, dups) = creates_and_duplicates(&ledger, v);
        let on_v = rows
            .iter()
            .filter(|r| r.get("vendor").map(String::as_str) == Some(v))
            .count();
        assert_eq!(dups, 0, "{v}: a job was paid twice");
        assert_eq!(creates, on_v, "{v}: one accepted create per job");
    }
    let (poll_now, dup_seen, rejected) = (
        webhooks_total(&scrape, "accepted"),
        webhooks_total(&scrape, "duplicate"),
        webhooks_total(&scrape, "rejected_signature")
            + webhooks_total(&scrape, "rejected_malformed"),
    );
    println!(
        "webhooks: {jobs} jobs on 4 vendors, all terminal: {done} in {secs:.1} s; states {:?}; \
         callbacks planned {planned}, dropped {dropped}, sent twice {duplicated}, delivered \
         {delivered}; receiver: accepted {poll_now}, duplicate {dup_seen}, rejected {rejected}",
        a.states
    );
    assert!(done, "not all terminal: {:?}", a.states);
    assert!(a.problems.is_empty(), "{:#?}", a.problems);
    assert_eq!(
        a.stored_verified, jobs,
        "every job stored and verified: {:?} {:?}",
        a.states, a.failed_classes
    );
    assert!(dropped > 0, "the simulator must have dropped callbacks");
    assert!(duplicated > 0, "the simulator must have doubled callbacks");
    assert!(poll_now > 0.0, "the receiver must have accepted callbacks");
    assert!(
        dup_seen > 0.0,
        "the doubled callbacks must have been recognised as duplicates"
    );
    assert_eq!(
        rejected, 0.0,
        "genuine callbacks (Freepik's signed) must not be rejected"
    );
}
