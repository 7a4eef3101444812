//! Injected faults fire as configured, answer with the vendor's bodies, and repeat exactly
//! with the same seed.

mod common;

use base64::Engine as _;
use common::*;
use motionq_sim::{EndpointFaults, Faults, SimConfig, Storm, Tier, Vendor};
use serde_json::Value;
use std::time::Duration;

/// What a client saw for one create: status (0 = transport error) and whether the body parsed.
async fn outcome(sim: &motionq_sim::SimHandle, v: Vendor, i: usize) -> (u16, bool) {
    let mut job = Job::new(sim, "portrait-720x1280.png", "dance-8s.mp4");
    job.prompt = Some(format!("job {i}"));
    let rb = client()
        .post(create_url(sim, v, Tier::Std))
        .json(&create_body(v, &job));
    match auth(v, rb, key(v)).send().await {
        Err(_) => (0, false),
        Ok(r) => {
            let st = r.status().as_u16();
            match r.bytes().await {
                Ok(b) => (st, serde_json::from_slice::<Value>(&b).is_ok()),
                Err(_) => (st, false),
            }
        }
    }
}

fn noisy(seed: u64) -> SimConfig {
    let mut c = config();
    c.seed = seed;
    c.faults.kkiai.create = EndpointFaults {
        rate_limited: 0.2,
        error_500: 0.1,
        error_503: 0.1,
        reset: 0.1,
        malformed_json: 0.1,
        truncated_json: 0.1,
        reset_mid_body: 0.05,
        ..EndpointFaults::default()
    };
    c.faults.kkiai.content_policy = 0.5;
    c
}

async fn run(seed: u64) -> (Vec<(u16, bool)>, Vec<motionq_sim::Status>) {
    let sim = start(noisy(seed)).await;
    let mut seen = Vec::new();
    for i in 0..40 {
        seen.push(outcome(&sim, Vendor::Kkiai, i).await);
    }
    // Let every accepted task finish, then read the fates from the ledger.
    let mut fates = Vec::new();
    for _ in 0..2000 {
        let l = sim.ledger();
        let k = l.key(Vendor::Kkiai, ALIAS).unwrap();
        if k.in_flight == 0 {
            fates = k.creates.iter().map(|c| c.status).collect();
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (seen, fates)
}

#[tokio::test]
async fn same_seed_same_faults() {
    let (a, fa) = run(11).await;
    let (b, fb) = run(11).await;
    let (c, _) = run(12).await;
    assert_eq!(a, b, "same seed, same answers");
    assert_eq!(fa, fb, "same seed, same task fates");
    assert_ne!(a, c, "another seed, other answers");
    let kinds: std::collections::BTreeSet<u16> = a.iter().map(|o| o.0).collect();
    for st in [0, 200, 429, 500, 503] {
        assert!(kinds.contains(&st), "status {st} among {a:?}");
    }
    assert!(
        a.iter().any(|o| o.0 == 200 && !o.1),
        "a 200 with an unreadable body"
    );
    assert!(
        fa.contains(&motionq_sim::Status::Failed) && fa.contains(&motionq_sim::Status::Completed)
    );
}

#[tokio::test]
async fn every_vendor_answers_injected_errors_with_its_own_body() {
    for (field, want) in [
        ("error_500", 500u16),
        ("error_503", 503),
        ("rate_limited", 429),
    ] {
        let mut c = config();
        for v in Vendor::ALL {
            let f = &mut c.faults.vendor_mut(v).create;
            match field {
                "error_500" => f.error_500 = 1.0,
                "error_503" => f.error_503 = 1.0,
                _ => f.rate_limited = 1.0,
            }
        }
        let sim = start(c).await;
        for v in Vendor::ALL {
            let job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
            let (st, e) = post(&sim, v, Tier::Std, key(v), &create_body(v, &job)).await;
            assert_eq!(st, want, "{v}: {e}");
            let ok = match (v, want) {
                (Vendor::Evolink, 500) => e["error"]["code"] == "internal_error",
                (Vendor::Evolink, 503) => e["error"]["type"] == "service_unavailable_error",
                (Vendor::Evolink, _) => e["error"]["code"] == "rate_limit_exceeded",
                (Vendor::Kkiai, 500) => e["code"] == 5000,
                (Vendor::Kkiai, 503) => e["code"] == 5001,
                (Vendor::Kkiai, _) => e["code"] == 1302,
                (Vendor::Aivideoapi, 500) => e["error"]["code"] == "internal_error",
                (Vendor::Aivideoapi, 503) => e["error"]["code"] == "upstream_error",
                (Vendor::Aivideoapi, _) => e["error"]["code"] == "rate_limit_exceeded",
                (Vendor::Highwayapi, 503) => e["reason"] == "SERVICE_NOT_AVAILABLE",
                (Vendor::Highwayapi, 429) => e["reason"] == "RATE_LIMIT_EXCEEDED",
                (Vendor::Highwayapi, _) => e["code"] == 500,
                (Vendor::Freepik, 503) => {
                    e["message"] == "Service Unavailable. Please try again later."
                }
                (Vendor::Freepik, _) => e["message"].is_string(),
            };
            assert!(ok, "{v} {want}: {e}");
            let l = sim.ledger();
            assert!(
                l.key(v, ALIAS).unwrap().creates.is_empty(),
                "nothing created"
            );
            assert_eq!(
                l.vendor(v).unwrap().faults_injected[&format!("create.{field}")],
                1
            );
        }
    }
}

#[tokio::test]
async fn storm_windows_and_runtime_changes() {
    let sim = start(config()).await;
    let v = Vendor::Aivideoapi;
    let mut f = Faults::default();
    f.aivideoapi.create.storms = vec![Storm {
        from_secs: 0.0,
        to_secs: 3600.0,
        status: 429,
    }];
    sim.set_faults(f).unwrap();
    for i in 0..5 {
        assert_eq!(outcome(&sim, v, i).await.0, 429);
    }
    // A storm that starts later has not begun.
    let mut f = Faults::default();
    f.aivideoapi.create.storms = vec![Storm {
        from_secs: 3000.0,
        to_secs: 3600.0,
        status: 503,
    }];
    sim.set_faults(f.clone()).unwrap();
    assert_eq!(outcome(&sim, v, 9).await.0, 200);
    assert_eq!(sim.faults(), f);
    // Over HTTP: PUT /_sim/faults.
    let body = serde_json::json!({"aivideoapi": {"query": {"error_503": 1.0}}});
    let r = client()
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = {
        sim.set_faults(Faults::default()).unwrap();
        create_ok(
            &sim,
            v,
            &Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4"),
        )
        .await
    };
    client()
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (st, e) = get(v, &query_url(&sim, v, &id, Tier::Std), key(v)).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (503, Some("upstream_error"))
    );
    let bad = serde_json::json!({"aivideoapi": {"query": {"error_503": 2.0}}});
    let r = client()
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // TOML works too (with a toml content type).
    let r = client()
        .put(format!("{}/_sim/faults", sim.base_url()))
        .header("content-type", "application/toml")
        .body("[freepik.create]\nerror_500 = 1.0\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sim.faults().freepik.create.error_500, 1.0);
    let got: Faults = client()
        .get(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, sim.faults());
    let typo = serde_json::json!({"aivideoapi": {"query": {"eror_503": 1.0}}});
    let r = client()
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&typo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn connection_faults() {
    let mut c = config();
    c.faults.evolink.create.reset = 1.0;
    c.faults.kkiai.create.reset_mid_body = 1.0;
    c.faults.freepik.create.hang = 1.0;
    c.faults.freepik.create.hang_ms = 600_000;
    c.faults.highwayapi.create.slow = 1.0;
    c.faults.highwayapi.create.slow_ms = 20;
    c.faults.aivideoapi.create.truncated_json = 1.0;
    let sim = start(c).await;
    // Reset before processing: no answer, nothing created.
    assert_eq!(outcome(&sim, Vendor::Evolink, 0).await, (0, false));
    // Reset mid-body after processing: the task exists and was charged.
    assert!(!outcome(&sim, Vendor::Kkiai, 0).await.1);
    // Truncated JSON with a consistent length: a 200 that does not parse.
    assert_eq!(outcome(&sim, Vendor::Aivideoapi, 0).await, (200, false));
    // Slow answers still arrive.
    assert_eq!(outcome(&sim, Vendor::Highwayapi, 0).await, (200, true));
    // A hung request never answers; the client's own timeout ends it.
    let job = Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4");
    let short = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let r = auth(
        Vendor::Freepik,
        short.post(create_url(&sim, Vendor::Freepik, Tier::Std)),
        key(Vendor::Freepik),
    )
    .json(&create_body(Vendor::Freepik, &job))
    .send()
    .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    let l = sim.ledger();
    assert_eq!(l.key(Vendor::Evolink, ALIAS).unwrap().creates.len(), 0);
    assert_eq!(l.key(Vendor::Kkiai, ALIAS).unwrap().creates.len(), 1);
    assert_eq!(l.key(Vendor::Aivideoapi, ALIAS).unwrap().creates.len(), 1);
    assert_eq!(l.key(Vendor::Freepik, ALIAS).unwrap().creates.len(), 0);
    assert_eq!(
        l.vendor(Vendor::Highwayapi).unwrap().faults_injected["create.slow"],
        1
    );
    assert_eq!(
        l.vendor(Vendor::Kkiai).unwrap().faults_injected["create.reset_mid_body"],
        1
    );
}

#[tokio::test]
async fn download_faults() {
    let mut c = config();
    c.faults.evolink.download.truncated_download = 1.0;
    c.faults.kkiai.download.corrupted_download = 1.0;
    c.faults.aivideoapi.download.reset_mid_body = 1.0;
    c.faults.freepik.download.expire_early = 1.0;
    c.faults.freepik.download.expire_early_factor = 0.000_001;
    c.faults.highwayapi.download.error_503 = 1.0;
    let sim = start(c).await;
    let mut urls = Vec::new();
    for v in Vendor::ALL {
        let id = create_ok(
            &sim,
            v,
            &Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4"),
        )
        .await;
        let done = finish(&sim, v, &id, Tier::Std).await;
        urls.push((v, id, output_url(v, &done)));
    }
    let ledger = sim.ledger();
    for (v, id, url) in urls {
        let sha = ledger
            .find_task(&id)
            .unwrap()
            .output_sha256
            .clone()
            .unwrap();
        let r = client().get(&url).send().await.unwrap();
        let st = r.status().as_u16();
        let announced = r
            .headers()
            .get("repr-digest")
            .map(|h| h.to_str().unwrap().to_owned());
        let body = r.bytes().await;
        if st == 200 {
            // Damaged or not, the answer announces the digest of the real file.
            let real = hex::decode(&sha).unwrap();
            let b64 = base64::engine::general_purpose::STANDARD.encode(real);
            assert_eq!(announced, Some(format!("sha-256=:{b64}:")), "{v:?}");
        }
        match v {
            Vendor::Evolink => {
                let b = body.unwrap();
                assert_eq!(st, 200);
                assert_ne!(sha256_hex(&b), sha);
            }
            Vendor::Kkiai => {
                let b = body.unwrap();
                assert_eq!(st, 200);
                assert_ne!(sha256_hex(&b), sha, "corrupted");
            }
            Vendor::Aivideoapi => assert!(body.is_err(), "connection dropped mid-body"),
            Vendor::Highwayapi => assert_eq!(st, 503),
            Vendor::Freepik => assert_eq!(st, 403, "expired early"),
        }
    }
    let l = sim.ledger();
    assert_eq!(
        l.key(Vendor::Kkiai, ALIAS)
            .unwrap()
            .downloads
            .tasks
            .values()
            .next()
            .unwrap()
            .damaged,
        1
    );
    assert_eq!(
        l.vendor(Vendor::Freepik).unwrap().faults_injected["download.expire_early"],
        1
    );
}
