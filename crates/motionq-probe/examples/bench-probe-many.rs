//! Throughput of `Prober::probe_many` against a local Range-capable server, printing figures:
//! `cargo run --release -p motionq-probe --example bench-probe-many -- 2000 16`
//! (distinct URLs, concurrency). Half the URLs are moov-at-end videos, half JPEG images.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use motionq_probe::{MediaKind, ProbeOptions, Prober};

#[derive(Clone)]
struct Files {
    video: Arc<Vec<u8>>,
    image: Arc<Vec<u8>>,
    served: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

async fn serve(State(f): State<Files>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    f.requests.fetch_add(1, Ordering::Relaxed);
    let file = if name.ends_with(".mp4") {
        &f.video
    } else {
        &f.image
    };
    let len = file.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
    match range {
        Some((start, end)) if start < len => {
            let end = end.min(len - 1);
            f.served
                .fetch_add((end + 1 - start) as u64, Ordering::Relaxed);
            Response::builder()
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
                .body(Body::from(file[start..=end].to_vec()))
                .unwrap()
        }
        _ => {
            f.served.fetch_add(len as u64, Ordering::Relaxed);
            Response::new(Body::from(file.to_vec()))
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let urls = args.first().copied().unwrap_or(2000);
    let concurrency = args.get(1).copied().unwrap_or(16);

    let video = motionq_media::mp4(
        &motionq_media::VideoSpec::new(30.0, 1080, 1920).layout(motionq_media::Layout::MoovAtEnd),
    );
    let image = motionq_media::jpeg(1080, 1920);
    let files = Files {
        video: Arc::new(video.clone()),
        image: Arc::new(image.clone()),
        served: Arc::default(),
        requests: Arc::default(),
    };
    let app = Router::new()
        .route("/{name}", get(serve))
        .with_state(files.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let options = ProbeOptions {
        concurrency,
        ..ProbeOptions::default()
    };
    let prober = Prober::new(options.client().unwrap(), options);
    let targets = (0..urls).map(|i| {
        if i % 2 == 0 {
            (
                MediaKind::Video,
                format!("{base}/v{i}.mp4").parse().unwrap(),
            )
        } else {
            (
                MediaKind::Image,
                format!("{base}/i{i}.jpg").parse().unwrap(),
            )
        }
    });
    let started = Instant::now();
    let results = prober.probe_many(targets).await;
    let took = started.elapsed();
    let failed = results.values().filter(|r| r.is_err()).count();
    let served = files.served.load(Ordering::Relaxed);
    let requests = files.requests.load(Ordering::Relaxed);
    println!(
        "{urls} distinct URLs, concurrency {concurrency}: {:.2} s, {:.0} probes/s, {failed} failed",
        took.as_secs_f64(),
        urls as f64 / took.as_secs_f64()
    );
    println!(
        "{:.2} requests and {:.1} KiB per probe (video file {} KiB moov-at-end, image {} KiB)",
        requests as f64 / urls as f64,
        served as f64 / urls as f64 / 1024.0,
        video.len() / 1024,
        image.len() / 1024
    );
}
