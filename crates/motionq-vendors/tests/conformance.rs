//! One conformance suite, run against every adapter over the simulator (`motionq-sim`) on
//! loopback HTTP. Vendor differences are capability flags from `Vendor::capabilities()`, never
//! copies of the suite: each vendor's test is one line calling [`conformance`].
//!
//! Per vendor it checks: features the vendor lacks are refused before any request (the
//! simulator's ledger shows no create); a job using every feature the vendor has is accepted,
//! polled through pending/processing to completed, and its output link serves an MP4; a
//! content-policy task ends `failed` with class `content_policy`; a wrong key is `auth`; a
//! vendor-side validation error is `invalid_request` (HTTP 4xx); an unknown task id of the
//! vendor's own format is `not_found`; a 429 is
//! `rate_limited`, a 503 `upstream_transient`; a create whose answer is lost is
//! `upstream_transient` with `may_have_created_task()`, and where the vendor allows it the task
//! is found again (KKIAI by `external_task_id`, Freepik in its task list); callbacks the
//! simulator sends parse to the same task; a task failing for the vendor's own reasons
//! (`faults.<v>.task_failure`) is `upstream_transient` (Freepik, with no documented reason:
//! `content_policy`). Money and credential refusals ([`refusals`]): a key short of balance, a
//! key at its spend cap, a key the vendor denies access (simulator `KeyConfig::forbidden`: each
//! vendor's documented 403) and a request without credentials, each with the class the
//! vendor's own answer calls for (`insufficient_funds` / `quota_exhausted` / `forbidden` /
//! `auth`; KKIAI also in its gateway envelope), nothing created; the denied key's queries are
//! `forbidden` too.

mod common;

use std::time::{Duration, Instant};

use motionq_core::{Capabilities, ErrorClass, JobSpec, Orientation, Reconciliation, Tier, Vendor};
use motionq_sim::{Faults, SimConfig, SimHandle, SimServer};
use motionq_vendors::{
    adapter_for, CreateContext, FindOutcome, HttpOptions, TaskRef, TaskState, TaskStatus,
    VendorClient,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Longest a task may take in the simulator at the suite's time scale before the suite gives up
/// (a hang guard, not a timing assertion).
const POLL_GUARD: Duration = Duration::from_secs(60);

#[tokio::test]
async fn evolink() {
    conformance(Vendor::Evolink).await;
}

#[tokio::test]
async fn kkiai() {
    conformance(Vendor::Kkiai).await;
}

#[tokio::test]
async fn aivideoapi() {
    conformance(Vendor::Aivideoapi).await;
}

#[tokio::test]
async fn highwayapi() {
    conformance(Vendor::Highwayapi).await;
}

#[tokio::test]
async fn freepik() {
    conformance(Vendor::Freepik).await;
}

fn sim_vendor(v: Vendor) -> motionq_sim::Vendor {
    motionq_sim::Vendor::parse(v.as_str()).expect("the simulator serves every vendor")
}

/// The demo config without per-key limits (the suite makes several creates a second), fast
/// time, and loopback callbacks allowed.
fn config() -> SimConfig {
    let mut cfg = SimConfig {
        time_scale: 0.001,
        allow_private_callbacks: true,
        // No vendor documents Retry-After; the simulator can send one to prove it is read.
        retry_after: true,
        retry_after_seconds: 2,
        ..SimConfig::default()
    };
    for vc in [
        &mut cfg.evolink,
        &mut cfg.kkiai,
        &mut cfg.aivideoapi,
        &mut cfg.highwayapi,
        &mut cfg.freepik,
    ] {
        for k in &mut vc.keys {
            k.rate_per_sec = None;
            k.query_rate_per_sec = None;
            k.max_concurrent = None;
        }
    }
    cfg
}

fn demo_key(cfg: &SimConfig, v: Vendor) -> SecretString {
    let vc = match v {
        Vendor::Evolink => &cfg.evolink,
        Vendor::Kkiai => &cfg.kkiai,
        Vendor::Aivideoapi => &cfg.aivideoapi,
        Vendor::Highwayapi => &cfg.highwayapi,
        Vendor::Freepik => &cfg.freepik,
    };
    vc.keys[0].key.clone()
}

fn client(sim: &SimHandle, v: Vendor, key: SecretString) -> VendorClient {
    VendorClient::new(
        adapter_for(v),
        sim.vendor_base_url(sim_vendor(v)).parse().unwrap(),
        key,
        HttpOptions {
            request_timeout: Duration::from_secs(10),
            ..HttpOptions::default()
        },
    )
    .unwrap()
}

/// Accepted creates the simulator recorded for `v`.
fn creates(sim: &SimHandle, v: Vendor) -> usize {
    sim.ledger()
        .vendors
        .get(v.as_str())
        .map(|l| l.keys.values().map(|k| k.creates.len()).sum())
        .unwrap_or(0)
}

/// A job using every optional feature `caps` allows.
fn full_job(sim: &SimHandle, caps: &Capabilities, id: &str, tier: Tier) -> JobSpec {
    JobSpec {
        id: id.into(),
        image: sim.media_url("portrait-720x1280.png"),
        video_url: sim.media_url("dance-8s.mp4"),
        prompt: Some("a character dancing, smooth motion".into()),
        negative_prompt: caps.negative_prompt.then(|| "blurry, extra limbs".into()),
        orientation: Orientation::Video,
        tier,
        keep_sound: caps.keep_sound.then_some(false),
        cfg_scale: caps.cfg_scale.then_some(0.6),
        video_duration_s: Some(8.0),
    }
}

fn ctx(key: &str, callback_url: Option<String>) -> CreateContext {
    CreateContext {
        idempotency_key: key.into(),
        callback_url,
    }
}

/// Polls until terminal; returns every distinct status seen, in order, and the last state.
async fn poll_to_end(c: &VendorClient, task: &TaskRef) -> (Vec<&'static str>, TaskState) {
    let start = Instant::now();
    let mut seen: Vec<&'static str> = Vec::new();
    loop {
        let state = c
            .query(task)
            .await
            .unwrap_or_else(|e| panic!("{}: query of {} failed: {e}", c.vendor(), task.task_id));
        let s = state.status.as_str();
        if seen.last() != Some(&s) {
            seen.push(s);
        }
        if state.status.is_terminal() {
            return (seen, state);
        }
        assert!(
            start.elapsed() < POLL_GUARD,
            "{}: task {} not terminal after {POLL_GUARD:?}: {seen:?}",
            c.vendor(),
            task.task_id
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// The statuses must move forward only: pending → processing → terminal.
fn assert_monotonic(v: Vendor, seen: &[&str]) {
    let rank = |s: &str| match s {
        "pending" => 0,
        "processing" => 1,
        _ => 2,
    };
    assert!(
        seen.windows(2).all(|w| rank(w[0]) < rank(w[1])),
        "{v}: statuses went backwards: {seen:?}"
    );
}

/// A task id of the same format that the vendor never issued (last character changed).
fn unknown_id_like(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = match *last {
            '0'..='8' => ((*last as u8) + 1) as char,
            '9' => '0',
            'a'..='e' => ((*last as u8) + 1) as char,
            _ => 'a',
        };
    }
    chars.into_iter().collect()
}

/// A loopback callback receiver answering 200; every request is forwarded on the channel.
async fn callback_receiver() -> (String, mpsc::UnboundedReceiver<common::Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Some(req) = common::read_request(&mut sock).await {
                    let _ = tx.send(req);
                }
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}/hooks"), rx)
}

/// The whole suite for one vendor.
async fn conformance(v: Vendor) {
    let caps = v.capabilities();
    let cfg = config();
    let key = demo_key(&cfg, v);
    let sim = SimServer::start(cfg).await.expect("the simulator starts");
    let c = client(&sim, v, key.clone());
    let (hook_url, mut hooks) = callback_receiver().await;

    // 1. What the vendor cannot express is refused before any request.
    let before = creates(&sim, v);
    let mut rejected = Vec::new();
    let base = full_job(&sim, &caps, "job-reject", Tier::Std);
    if !caps.cfg_scale {
        rejected.push(JobSpec {
            cfg_scale: Some(0.5),
            ..base.clone()
        });
    }
    if !caps.negative_prompt {
        rejected.push(JobSpec {
            negative_prompt: Some("x".into()),
            ..base.clone()
        });
    }
    if !caps.keep_sound {
        rejected.push(JobSpec {
            keep_sound: Some(true),
            ..base.clone()
        });
    }
    if !caps.base64_image {
        rejected.push(JobSpec {
            image: "iVBORw0KGgoAAAANSUhEUgAA".into(),
            ..base.clone()
        });
    }
    if !caps
        .image_formats
        .contains(&motionq_core::ImageFormat::Webp)
    {
        rejected.push(JobSpec {
            image: sim.media_url("portrait-720x1280.webp"),
            ..base.clone()
        });
    }
    for job in &rejected {
        let e = c.create(job, &ctx("reject", None)).await.unwrap_err();
        assert_eq!(e.class, ErrorClass::InvalidRequest, "{v}: {e}");
        assert!(!e.may_have_created_task());
    }
    assert_eq!(
        creates(&sim, v),
        before,
        "{v}: a rejected job reached the vendor"
    );

    // 2. Submit → poll to completed, for both tiers, with every supported feature.
    let mut earlier_tasks: Vec<String> = Vec::new();
    for (i, tier) in [Tier::Std, Tier::Pro].into_iter().enumerate() {
        let job = full_job(&sim, &caps, &format!("job-ok-{i}"), tier);
        let callback = caps.callbacks.then(|| format!("{hook_url}/{i}"));
        let created = c
            .create(&job, &ctx(&format!("camp:job-ok-{i}:0"), callback))
            .await
            .unwrap_or_else(|e| panic!("{v}: create failed: {e}"));
        assert!(!created.task_id.is_empty());
        earlier_tasks.push(created.task_id.clone());
        let task = TaskRef {
            task_id: created.task_id.clone(),
            tier,
        };
        let (seen, state) = poll_to_end(&c, &task).await;
        assert_monotonic(v, &seen);
        let TaskStatus::Completed {
            output_url,
            expires_at_hint,
            ..
        } = state.status
        else {
            panic!("{v}: expected completed, got {:?}", state.status);
        };
        let lifetime = expires_at_hint.expect("a link lifetime is always given");
        assert!(lifetime > Duration::ZERO);
        // The output link serves a real MP4 (`ftyp` box at offset 4).
        let bytes = reqwest::get(&output_url)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[4..8], b"ftyp", "{v}: output is not an MP4");
        if let Some(p) = state.progress {
            assert_eq!(p, 100, "{v}: completed with progress {p}");
        }

        // Reconciliation where the vendor supports it.
        match (
            caps.reconciliation,
            c.find_by_idempotency_key(&format!("camp:job-ok-{i}:0"), tier)
                .await
                .unwrap(),
        ) {
            (Reconciliation::ExternalTaskId, Some(FindOutcome::Found { task_id, state })) => {
                assert_eq!(task_id, created.task_id);
                assert!(state.status.is_terminal());
            }
            (Reconciliation::TaskList, Some(FindOutcome::Candidates(list))) => {
                assert!(
                    list.iter().any(|t| t.task_id == created.task_id),
                    "{v}: task missing from the list"
                );
            }
            (Reconciliation::CallbackOnly | Reconciliation::None, None) => {}
            (r, other) => panic!("{v}: reconciliation {r:?} gave {other:?}"),
        }

        // The callback the vendor sent for this task parses to the same task, terminal.
        if caps.callbacks {
            let deadline = Instant::now() + POLL_GUARD;
            loop {
                let req = tokio::time::timeout_at(deadline.into(), hooks.recv())
                    .await
                    .unwrap_or_else(|_| panic!("{v}: no terminal callback for {}", created.task_id))
                    .expect("receiver alive");
                let ev = c
                    .adapter()
                    .parse_callback(&req.header_map(), &req.body)
                    .unwrap_or_else(|e| {
                        panic!(
                            "{v}: callback does not parse: {e}: {}",
                            String::from_utf8_lossy(&req.body)
                        )
                    });
                // Deliveries are concurrent: a late callback of an earlier task may come first.
                if ev.task_id != created.task_id {
                    assert!(
                        earlier_tasks.contains(&ev.task_id),
                        "{v}: callback for a task never created: {}",
                        ev.task_id
                    );
                    continue;
                }
                if v == Vendor::Kkiai {
                    assert_eq!(
                        ev.external_id.as_deref(),
                        Some(format!("camp:job-ok-{i}:0").as_str())
                    );
                }
                if ev.state.status.is_terminal() {
                    assert!(
                        matches!(ev.state.status, TaskStatus::Completed { .. }),
                        "{v}: {:?}",
                        ev.state
                    );
                    break;
                }
            }
        }
    }

    // 2b. Re-sending a create with a used idempotency key: where the vendor keeps the key
    //     (KKIAI) it refuses, and the refusal says the task exists.
    if caps.reconciliation == Reconciliation::ExternalTaskId {
        let before = creates(&sim, v);
        let job = full_job(&sim, &caps, "job-ok-0", Tier::Std);
        let e = c
            .create(&job, &ctx("camp:job-ok-0:0", None))
            .await
            .unwrap_err();
        assert!(e.is_duplicate_submission(), "{v}: {e}");
        assert!(e.may_have_created_task());
        assert_eq!(creates(&sim, v), before, "{v}: a duplicate was accepted");
    }

    // 3. A content-policy failure ends failed/content_policy.
    let mut job = full_job(&sim, &caps, "job-policy", Tier::Std);
    job.prompt = Some("sim:content_policy please".into());
    let created = c
        .create(&job, &ctx("camp:job-policy:0", None))
        .await
        .unwrap();
    let (seen, state) = poll_to_end(
        &c,
        &TaskRef {
            task_id: created.task_id.clone(),
            tier: Tier::Std,
        },
    )
    .await;
    assert_monotonic(v, &seen);
    match state.status {
        TaskStatus::Failed { class, .. } => assert_eq!(class, ErrorClass::ContentPolicy, "{v}"),
        other => panic!("{v}: expected failed, got {other:?}"),
    }

    // 4. Not found: an id of the right format the vendor never issued.
    let e = c
        .query(&TaskRef {
            task_id: unknown_id_like(&created.task_id),
            tier: Tier::Std,
        })
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound, "{v}: unknown task gave {e}");

    // 5. Auth: a wrong key, on create and on query.
    let bad = client(
        &sim,
        v,
        SecretString::from(format!("{}-wrong", key.expose_secret())),
    );
    let e = bad
        .create(
            &full_job(&sim, &caps, "job-auth", Tier::Std),
            &ctx("camp:job-auth:0", None),
        )
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Auth, "{v}: {e}");
    assert!(!e.message.contains(key.expose_secret()));
    let e = bad
        .query(&TaskRef {
            task_id: created.task_id.clone(),
            tier: Tier::Std,
        })
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Auth, "{v}: {e}");

    // 6. Invalid request found by the vendor (an image under 300 px, which only the vendor can
    //    see): 4xx invalid_request, nothing created.
    let before = creates(&sim, v);
    let mut job = full_job(&sim, &caps, "job-invalid", Tier::Std);
    job.image = sim.media_url("small-200x200.png");
    let e = c
        .create(&job, &ctx("camp:job-invalid:0", None))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::InvalidRequest, "{v}: {e}");
    assert!(matches!(e.http_status, Some(400..=499)), "{v}: {e}");
    assert!(!e.may_have_created_task());
    assert_eq!(creates(&sim, v), before);

    // 7. Rate limit: the vendor's own 429 body → rate_limited; 503 → upstream_transient.
    let mut faults = Faults::default();
    let vf = match v {
        Vendor::Evolink => &mut faults.evolink,
        Vendor::Kkiai => &mut faults.kkiai,
        Vendor::Aivideoapi => &mut faults.aivideoapi,
        Vendor::Highwayapi => &mut faults.highwayapi,
        Vendor::Freepik => &mut faults.freepik,
    };
    vf.create.rate_limited = 1.0;
    vf.query.error_503 = 1.0;
    sim.set_faults(faults.clone()).unwrap();
    let job = full_job(&sim, &caps, "job-429", Tier::Std);
    let e = c
        .create(&job, &ctx("camp:job-429:0", None))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::RateLimited, "{v}: {e}");
    assert_eq!(e.http_status, Some(429));
    assert_eq!(
        e.retry_after,
        Some(Duration::from_secs(2)),
        "{v}: Retry-After not read"
    );
    assert!(!e.may_have_created_task());
    let e = c
        .query(&TaskRef {
            task_id: created.task_id.clone(),
            tier: Tier::Std,
        })
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::UpstreamTransient, "{v}: {e}");

    // 8. The answer to an accepted create is lost (malformed 200): transient, may have created;
    //    where the vendor allows it, the task is found again and not submitted twice.
    let mut faults = Faults::default();
    let vf = match v {
        Vendor::Evolink => &mut faults.evolink,
        Vendor::Kkiai => &mut faults.kkiai,
        Vendor::Aivideoapi => &mut faults.aivideoapi,
        Vendor::Highwayapi => &mut faults.highwayapi,
        Vendor::Freepik => &mut faults.freepik,
    };
    vf.create.malformed_json = 1.0;
    sim.set_faults(faults).unwrap();
    let before = creates(&sim, v);
    let job = full_job(&sim, &caps, "job-lost", Tier::Pro);
    let e = c
        .create(&job, &ctx("camp:job-lost:0", None))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::UpstreamTransient, "{v}: {e}");
    assert!(e.may_have_created_task(), "{v}: {e}");
    assert_eq!(
        creates(&sim, v),
        before + 1,
        "{v}: the lost create was accepted by the vendor"
    );
    sim.set_faults(Faults::default()).unwrap();
    let lost_id = sim.ledger().vendors[v.as_str()]
        .keys
        .values()
        .flat_map(|k| k.creates.iter())
        .max_by_key(|r| r.at_ms)
        .map(|r| r.task_id.clone())
        .unwrap();
    match (
        caps.reconciliation,
        c.find_by_idempotency_key("camp:job-lost:0", Tier::Pro)
            .await
            .unwrap(),
    ) {
        (Reconciliation::ExternalTaskId, Some(FindOutcome::Found { task_id, .. })) => {
            assert_eq!(task_id, lost_id)
        }
        (Reconciliation::TaskList, Some(FindOutcome::Candidates(list))) => {
            assert!(
                list.iter().any(|t| t.task_id == lost_id),
                "{v}: lost task not listed"
            )
        }
        (Reconciliation::CallbackOnly | Reconciliation::None, None) => {}
        (r, other) => panic!("{v}: reconciliation {r:?} gave {other:?}"),
    }
    // A key never used is absent (KKIAI).
    if caps.reconciliation == Reconciliation::ExternalTaskId {
        assert_eq!(
            c.find_by_idempotency_key("camp:never-sent:0", Tier::Std)
                .await
                .unwrap(),
            Some(FindOutcome::Absent)
        );
    }

    // 9. A task that fails for the vendor's own reasons (`faults.<v>.task_failure`) is
    //    retryable (`upstream_transient`), unlike a content-policy failure; Freepik documents
    //    no failure reason, so its bare `FAILED` keeps the crate-doc default (content_policy).
    let mut faults = Faults::default();
    faults.vendor_mut(sim_vendor(v)).task_failure = 1.0;
    sim.set_faults(faults).unwrap();
    let created = c
        .create(
            &full_job(&sim, &caps, "job-vendor-failure", Tier::Std),
            &ctx("camp:job-vendor-failure:0", None),
        )
        .await
        .unwrap_or_else(|e| panic!("{v}: create failed: {e}"));
    sim.set_faults(Faults::default()).unwrap();
    let (seen, state) = poll_to_end(
        &c,
        &TaskRef {
            task_id: created.task_id.clone(),
            tier: Tier::Std,
        },
    )
    .await;
    assert_monotonic(v, &seen);
    let want = if v == Vendor::Freepik {
        ErrorClass::ContentPolicy
    } else {
        ErrorClass::UpstreamTransient
    };
    match &state.status {
        TaskStatus::Failed { class, message, .. } => {
            println!("{v}: vendor-side task failure → {class:?} ({message:?})");
            assert_eq!(*class, want, "{v}: {message}");
        }
        other => panic!("{v}: expected failed, got {other:?}"),
    }

    sim.shutdown().await;

    // 10. Money and credential refusals.
    refusals(v).await;
}

/// The money and credential refusals of the simulator's refusal table (crate doc of
/// `motionq-sim`), over real HTTP: a key whose balance cannot cover the pre-charge, a key at its
/// spend cap, and a request without credentials. Each is refused before anything is created,
/// with the vendor's own answer, and the adapter classifies it by the vendor's code (the class
/// decides whether the pipeline parks the key and for how long).
///
/// `forbidden` is not covered: the simulator renders no access-denied answer for any vendor
/// (EvoLink `permission_denied`, Kling 1100/1103/1304, AI Video API `ip_not_allowed`,
/// HighwayAPI `ACCESS_DENY`, Freepik 403); the adapters' unit tests parse those bodies.
async fn refusals(v: Vendor) {
    // What the simulator answers (status) and what the adapter must make of it.
    let (balance, cap) = match v {
        // 402 `insufficient_quota` for both: EvoLink has no separate spend-cap answer.
        Vendor::Evolink => (
            (402, ErrorClass::InsufficientFunds),
            (402, ErrorClass::InsufficientFunds),
        ),
        // 429 code 1102 ("resource pack depleted") for both: quota_exhausted by Kling's code.
        Vendor::Kkiai => (
            (429, ErrorClass::QuotaExhausted),
            (429, ErrorClass::QuotaExhausted),
        ),
        // 402 `insufficient_credits`; 429 `spend_limit_exceeded` (`billing_error`).
        Vendor::Aivideoapi => (
            (402, ErrorClass::InsufficientFunds),
            (429, ErrorClass::QuotaExhausted),
        ),
        // 403 `NOT_ENOUGH_BALANCE` for both.
        Vendor::Highwayapi => (
            (403, ErrorClass::InsufficientFunds),
            (403, ErrorClass::InsufficientFunds),
        ),
        // One 429 for everything; the message decides ("credit limit" / "usage limit").
        Vendor::Freepik => (
            (429, ErrorClass::InsufficientFunds),
            (429, ErrorClass::QuotaExhausted),
        ),
    };
    let prefix = if v == Vendor::Aivideoapi { "sk-" } else { "" };
    let poor_key = format!("{prefix}refusal-poor-{v}");
    let capped_key = format!("{prefix}refusal-capped-{v}");
    let denied_key = format!("{prefix}refusal-denied-{v}");
    // The vendor's documented access-denied answer: EvoLink 403 `model_access_denied`, Kling
    // 403 1103, AI Video API 403 `ip_not_allowed`, HighwayAPI 403 `ACCESS_DENY`, Freepik 403.
    let denied = (403, ErrorClass::Forbidden);
    let denied_code = match v {
        Vendor::Evolink => Some("model_access_denied"),
        Vendor::Kkiai => Some("1103"),
        Vendor::Aivideoapi => Some("ip_not_allowed"),
        Vendor::Highwayapi => Some("ACCESS_DENY"),
        // `{"message"}` only: the status decides.
        Vendor::Freepik => None,
    };
    let mut cfg = config();
    let good_key = demo_key(&cfg, v);
    let keys = match v {
        Vendor::Evolink => &mut cfg.evolink.keys,
        Vendor::Kkiai => &mut cfg.kkiai.keys,
        Vendor::Aivideoapi => &mut cfg.aivideoapi.keys,
        Vendor::Highwayapi => &mut cfg.highwayapi.keys,
        Vendor::Freepik => &mut cfg.freepik.keys,
    };
    let mut poor = motionq_sim::KeyConfig::new(poor_key.clone()).alias("poor");
    poor.balance = 0.01;
    let mut capped = motionq_sim::KeyConfig::new(capped_key.clone()).alias("capped");
    capped.spend_cap_total = Some(0.01);
    let mut denied_cfg = motionq_sim::KeyConfig::new(denied_key.clone()).alias("denied");
    denied_cfg.forbidden = true;
    keys.push(poor);
    keys.push(capped);
    keys.push(denied_cfg);
    let gateway = v == Vendor::Kkiai;
    let mut gateway_cfg = cfg.clone();
    gateway_cfg.kkiai.gateway_errors = true;
    let sim = SimServer::start(cfg).await.expect("the simulator starts");
    let caps = v.capabilities();
    let job = full_job(&sim, &caps, "job-refused", Tier::Std);
    let rejections = |sim: &SimHandle, alias: &str, kind: &str| -> u64 {
        sim.ledger().vendors[v.as_str()].keys[alias]
            .rejections
            .get(kind)
            .copied()
            .unwrap_or(0)
    };

    for (alias, secret, kind, (status, class)) in [
        ("poor", &poor_key, "insufficient_balance", balance),
        ("capped", &capped_key, "spend_cap", cap),
        ("denied", &denied_key, "forbidden", denied),
    ] {
        let before = creates(&sim, v);
        let e = client(&sim, v, SecretString::from(secret.clone()))
            .create(&job, &ctx(&format!("camp:job-{alias}:0"), None))
            .await
            .unwrap_err();
        println!(
            "{v}: {kind} → HTTP {:?} code {:?} → {:?}",
            e.http_status, e.code, e.class
        );
        assert_eq!(e.class, class, "{v}: {kind}: {e}");
        assert_eq!(e.http_status, Some(status), "{v}: {kind}: {e}");
        if kind == "forbidden" {
            assert_eq!(e.code.as_deref(), denied_code, "{v}: {kind}: {e}");
        }
        assert!(!e.may_have_created_task(), "{v}: {kind}: {e}");
        assert!(
            !e.message.contains(secret.as_str()),
            "{v}: the key leaked into the error"
        );
        assert_eq!(
            rejections(&sim, alias, kind),
            1,
            "{v}: the simulator refused for {kind}"
        );
        assert_eq!(
            creates(&sim, v),
            before,
            "{v}: {kind}: a create was accepted"
        );
    }

    // The denied key's queries are refused the same way, even for a task that exists (made
    // with the healthy key): the access check comes before the task lookup.
    let made = client(&sim, v, good_key.clone())
        .create(&job, &ctx("camp:job-for-denied-query:0", None))
        .await
        .unwrap_or_else(|e| panic!("{v}: create with the demo key: {e}"));
    let e = client(&sim, v, SecretString::from(denied_key.clone()))
        .query(&TaskRef {
            task_id: made.task_id.clone(),
            tier: Tier::Std,
        })
        .await
        .unwrap_err();
    println!(
        "{v}: forbidden query → HTTP {:?} code {:?} → {:?}",
        e.http_status, e.code, e.class
    );
    assert_eq!(e.class, ErrorClass::Forbidden, "{v}: forbidden query: {e}");
    assert_eq!(e.http_status, Some(403), "{v}: forbidden query: {e}");
    assert_eq!(e.code.as_deref(), denied_code, "{v}: forbidden query: {e}");
    assert_eq!(
        rejections(&sim, "denied", "forbidden"),
        2,
        "{v}: the simulator refused the denied key's create and query"
    );

    // No credentials at all (an empty key: `Bearer ` / an empty API-key header): auth, also
    // where the vendor answers 403 (HighwayAPI `INVALID_API_KEY`) rather than 401.
    let e = client(&sim, v, SecretString::from(String::new()))
        .create(&job, &ctx("camp:job-nokey:0", None))
        .await
        .unwrap_err();
    println!(
        "{v}: missing key → HTTP {:?} code {:?} → {:?}",
        e.http_status, e.code, e.class
    );
    assert_eq!(e.class, ErrorClass::Auth, "{v}: missing key: {e}");
    let want_status = if v == Vendor::Highwayapi { 403 } else { 401 };
    assert_eq!(e.http_status, Some(want_status), "{v}: missing key: {e}");
    assert!(!e.may_have_created_task());
    sim.shutdown().await;

    // KKIAI's gateway answers its own wallet refusal in the OpenAI-style envelope (403
    // `insufficient_user_quota`): insufficient_funds, unlike Kling's 1102.
    if gateway {
        let sim = SimServer::start(gateway_cfg)
            .await
            .expect("the simulator starts");
        let e = client(&sim, v, SecretString::from(poor_key.clone()))
            .create(&job_on(&sim, &job), &ctx("camp:job-gw-poor:0", None))
            .await
            .unwrap_err();
        println!(
            "{v} (gateway envelope): insufficient_balance → HTTP {:?} code {:?} → {:?}",
            e.http_status, e.code, e.class
        );
        assert_eq!(e.class, ErrorClass::InsufficientFunds, "{v} gateway: {e}");
        assert_eq!(e.http_status, Some(403), "{v} gateway: {e}");
        assert_eq!(rejections(&sim, "poor", "insufficient_balance"), 1);
        assert_eq!(creates(&sim, v), 0);
        sim.shutdown().await;
    }
}

/// `job` with its media URLs pointing at `sim` (each simulator has its own port).
fn job_on(sim: &SimHandle, job: &JobSpec) -> JobSpec {
    JobSpec {
        image: sim.media_url("portrait-720x1280.png"),
        video_url: sim.media_url("dance-8s.mp4"),
        ..job.clone()
    }
}
