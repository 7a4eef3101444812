//! Admin endpoints, metrics, sample media and output links (Range, HEAD, expiry per vendor).

mod common;

use common::*;
use motionq_sim::{Ledger, Tier, Vendor};
use std::time::Duration;

#[tokio::test]
async fn admin_endpoints_are_off_by_default() {
    let mut c = config();
    c.admin_enabled = false;
    let sim = start(c).await;
    for (m, path) in [
        ("GET", "/_sim/ledger"),
        ("GET", "/_sim/faults"),
        ("PUT", "/_sim/faults"),
        ("POST", "/_sim/reset"),
        ("GET", "/_sim/tasks/evolink/x"),
    ] {
        let r = client()
            .request(m.parse().unwrap(), format!("{}{path}", sim.base_url()))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{m} {path}");
    }
    let r = client()
        .get(format!("{}/healthz", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn ledger_over_http_task_debug_and_reset() {
    let sim = start(config()).await;
    let v = Vendor::Highwayapi;
    let id = create_ok(
        &sim,
        v,
        &Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4"),
    )
    .await;
    let done = finish(&sim, v, &id, Tier::Std).await;
    let ttl: u64 = done["videos"][0]["video_url_ttl"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ttl >= 1, "video_url_ttl is a string of seconds");
    let l: Ledger = client()
        .get(format!("{}/_sim/ledger", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(l.key(v, ALIAS).unwrap().creates[0].task_id, id);
    let text = client()
        .get(format!("{}/_sim/ledger", sim.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for vendor in Vendor::ALL {
        assert!(!text.contains(key(vendor)), "the ledger never shows a key");
    }
    let t: serde_json::Value = client()
        .get(format!("{}/_sim/tasks/highwayapi/{id}", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["status"], "completed");
    assert_eq!(t["key"], ALIAS);
    let r = client()
        .post(format!("{}/_sim/reset", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let l = sim.ledger();
    let k = l.key(v, ALIAS).unwrap();
    assert!(k.creates.is_empty());
    assert_eq!(k.balance, k.initial_balance);
    let (st, _) = get(v, &query_url(&sim, v, &id, Tier::Std), key(v)).await;
    assert_eq!(st, 404, "tasks are gone after a reset");
}

#[tokio::test]
async fn metrics_export_the_ledger_without_keys() {
    let sim = start(config()).await;
    for v in Vendor::ALL {
        let id = create_ok(
            &sim,
            v,
            &Job::new(&sim, "portrait-720x1280.png", "dance-8s.mp4"),
        )
        .await;
        finish(&sim, v, &id, Tier::Std).await;
    }
    let _ = post(
        &sim,
        Vendor::Evolink,
        Tier::Std,
        "wrong",
        &serde_json::json!({}),
    )
    .await;
    let text = client()
        .get(format!("{}/metrics", sim.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for v in Vendor::ALL {
        assert!(
            text.contains(&format!(
                "motionq_sim_creates_total{{key=\"main\",vendor=\"{v}\"}} 1"
            )),
            "{text}"
        );
        assert!(text.contains(&format!("motionq_sim_tasks_finished_total{{key=\"main\",outcome=\"completed\",vendor=\"{v}\"}} 1")));
        assert!(!text.contains(key(v)));
    }
    assert!(text.contains("motionq_sim_auth_failures_total{vendor=\"evolink\"} 1"));
    assert!(text.contains("motionq_sim_balance_units{"));
}

#[tokio::test]
async fn sample_media_with_range_and_head() {
    let sim = start(config()).await;
    let sample = motionq_media::sample("dance-8s.mp4").unwrap();
    let url = sim.media_url("dance-8s.mp4");
    let (st, bytes) = download(&url).await;
    assert_eq!(st, 200);
    assert_eq!(bytes, sample.bytes);
    let r = client()
        .get(&url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 0-99/{}", sample.bytes.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), sample.bytes[..100]);
    let r = client()
        .get(&url)
        .header("range", format!("bytes={}-", sample.bytes.len() + 5))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let r = client().head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        sample.bytes.len().to_string().as_str()
    );
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(download(&sim.media_url("nope.mp4")).await.0, 404);
    assert!(sim.media_names().contains(&"portrait-720x1280.webp"));
}

#[tokio::test]
async fn output_links_support_range_head_and_expire_like_a_cdn() {
    let mut c = config();
    for v in Vendor::ALL {
        // 1 s links (scaled).
        c.vendor_mut(v).output_ttl_seconds = Some(1000.0);
    }
    let sim = start(c).await;
    let results = futures::future::join_all(Vendor::ALL.map(|v| {
        let sim = &sim;
        async move {
            let id = create_ok(
                sim,
                v,
                &Job::new(sim, "portrait-720x1280.png", "dance-3s.mp4"),
            )
            .await;
            let url = output_url(v, &finish(sim, v, &id, Tier::Std).await);
            let mut served = 0;
            // Range and HEAD while the link lives (guards keep this free of timing assumptions).
            let r = client().head(&url).send().await.unwrap();
            if r.status() == 200 {
                let len: usize = r.headers()["content-length"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let r = client()
                    .get(&url)
                    .header("range", "bytes=4-11")
                    .send()
                    .await
                    .unwrap();
                if r.status() == 206 {
                    served += 1;
                    assert_eq!(
                        r.headers()["content-range"],
                        format!("bytes 4-11/{len}").as_str()
                    );
                    assert_eq!(&r.bytes().await.unwrap()[..4], b"ftyp");
                }
            }
            // Poll until the link has expired; the answer depends on the vendor's CDN.
            let mut expired = None;
            for _ in 0..1000 {
                let st = client().get(&url).send().await.unwrap().status().as_u16();
                if st == 200 {
                    served += 1;
                } else {
                    expired = Some(st);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (v, expired, served)
        }
    }))
    .await;
    let l = sim.ledger();
    for (v, expired, served) in results {
        let want = match v {
            Vendor::Kkiai => 404,
            Vendor::Aivideoapi => 410,
            _ => 403,
        };
        assert_eq!(expired, Some(want), "{v}");
        // Every GET that carried the file is counted; HEAD requests are not.
        assert_eq!(l.key(v, ALIAS).unwrap().downloads.count, served, "{v}");
    }
}

#[tokio::test]
async fn public_base_url_names_links_and_counts_as_own_media() {
    let mut c = config();
    c.public_base_url = Some("http://sim.internal:9999/".into());
    let sim = start(c).await;
    assert_eq!(sim.base_url(), "http://sim.internal:9999");
    assert_eq!(
        sim.vendor_base_url(Vendor::Freepik),
        "http://sim.internal:9999/freepik"
    );
    // Requests still go to the bound address.
    let local = |v: Vendor| format!("{}/{}", sim.local_url(), v.as_str());
    let body = |image: &str| {
        serde_json::json!({"image_url": format!("http://sim.internal:9999/media/{image}"),
            "video_url": "http://sim.internal:9999/media/dance-8s.mp4"})
    };
    let url = format!(
        "{}/v1/ai/video/kling-v3-motion-control-std",
        local(Vendor::Freepik)
    );
    let send = |b: serde_json::Value| {
        client()
            .post(url.clone())
            .header("x-freepik-api-key", key(Vendor::Freepik))
            .json(&b)
            .send()
    };
    // The public name is recognised as this simulator: the sample's real size is checked.
    assert_eq!(send(body("small-200x200.png")).await.unwrap().status(), 400);
    let r = send(body("square-1024x1024.png")).await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<serde_json::Value>().await.unwrap()["data"]["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let q = format!(
        "{}/v1/ai/video/kling-v3-motion-control-std/{id}",
        local(Vendor::Freepik)
    );
    for _ in 0..2000 {
        let b: serde_json::Value = client()
            .get(&q)
            .header("x-freepik-api-key", key(Vendor::Freepik))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(u) = b["data"]["generated"][0].as_str() {
            assert!(u.starts_with("http://sim.internal:9999/files/"), "{u}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("task never completed");
}
