//! How many creates, queries and downloads per second the simulator serves over loopback HTTP,
//! so benchmarks of motionq know the simulator is not their bottleneck. Prints figures only.
//!
//! `cargo bench -p motionq-sim --bench throughput` (set `SIM_BENCH_N` for more requests).

use futures::StreamExt;
use motionq_sim::{KeyConfig, SimConfig, SimServer, Vendor, VendorConfig};
use serde_json::json;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;

fn report(what: &str, mut latencies: Vec<Duration>, wall: Duration) {
    latencies.sort();
    let n = latencies.len();
    let pct = |p: f64| latencies[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "{what:<28} {n:>6} req  {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        n as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

async fn timed<F, Fut>(n: usize, f: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let lat: Vec<Duration> = futures::stream::iter(0..n)
        .map(|i| {
            let fut = f(i);
            async move {
                let t = Instant::now();
                fut.await;
                t.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    (lat, start.elapsed())
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("SIM_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut c = SimConfig::empty();
    c.time_scale = 0.0001;
    c.evolink = VendorConfig::with_keys(vec![KeyConfig::new("bench-ev")]);
    c.freepik = VendorConfig::with_keys(vec![KeyConfig::new("bench-fp")]);
    let sim = SimServer::start(c).await.expect("sim starts");
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let image = sim.media_url("portrait-720x1280.png");
    let video = sim.media_url("dance-8s.mp4");

    let ev = sim.vendor_base_url(Vendor::Evolink);
    let (lat, wall) = timed(n, |i| {
        let (http, ev, image, video) = (&http, &ev, &image, &video);
        async move {
            let body = json!({"model": "kling-v3-motion-control", "prompt": format!("job {i}"),
                "image_urls": [image], "video_urls": [video],
                "model_params": {"character_orientation": "video"}});
            let r = http
                .post(format!("{ev}/v1/videos/generations"))
                .bearer_auth("bench-ev")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }
    })
    .await;
    report("evolink create", lat, wall);

    let ledger = sim.ledger();
    let ids: Vec<String> = ledger
        .key(Vendor::Evolink, "key-1")
        .unwrap()
        .creates
        .iter()
        .map(|c| c.task_id.clone())
        .collect();
    let (lat, wall) = timed(n, |i| {
        let (http, ev, id) = (&http, &ev, &ids[i % ids.len()]);
        async move {
            let r = http
                .get(format!("{ev}/v1/tasks/{id}"))
                .bearer_auth("bench-ev")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }
    })
    .await;
    report("evolink query", lat, wall);

    let fp = sim.vendor_base_url(Vendor::Freepik);
    let (lat, wall) = timed(n, |i| {
        let (http, fp, image, video) = (&http, &fp, &image, &video);
        async move {
            let body =
                json!({"image_url": image, "video_url": video, "prompt": format!("job {i}")});
            let r = http
                .post(format!("{fp}/v1/ai/video/kling-v3-motion-control-std"))
                .header("x-freepik-api-key", "bench-fp")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        }
    })
    .await;
    report("freepik create", lat, wall);

    // Wait for the EvoLink tasks to finish, then download outputs.
    let mut url = None;
    for _ in 0..1000 {
        let r: serde_json::Value = http
            .get(format!("{ev}/v1/tasks/{}", ids[0]))
            .bearer_auth("bench-ev")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(u) = r["results"][0].as_str() {
            url = Some(u.to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let url = url.expect("task completes");
    let size = http
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    let (lat, wall) = timed(n / 4, |_| {
        let (http, url) = (&http, &url);
        async move {
            let b = http
                .get(url.as_str())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(b.len(), size);
        }
    })
    .await;
    report(&format!("download ({size} bytes)"), lat, wall);

    let (lat, wall) = timed(200, |_| {
        let (http, base) = (&http, sim.base_url());
        async move {
            http.get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
    })
    .await;
    report("metrics scrape", lat, wall);
    sim.shutdown().await;
}
