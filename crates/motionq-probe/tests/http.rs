//! Probes every motionq-media sample over real HTTP on loopback (see `common/mod.rs` for the
//! server: Range honoured, ignored, or a chunked body without length), plus error cases.

use std::time::Duration;

use base64::Engine;
use motionq_media::{mp4, Layout, SampleKind, VideoSpec};
use motionq_probe::{
    image_info_from_base64, Container, ImageFormat, MediaInfo, MediaKind, ProbeError, ProbeOptions,
    Prober,
};
use url::Url;

mod common;

use common::TestServer;

fn prober(options: ProbeOptions) -> Prober {
    Prober::new(options.client().unwrap(), options)
}

/// Probes every sample under `prefix` and compares with the facts the sample states.
async fn check_every_sample(server: &TestServer, prefix: &str, size_known: bool) {
    let prober = prober(ProbeOptions::default());
    let samples = motionq_media::samples();
    assert!(samples.len() >= 30);
    for s in &samples {
        let url = server.url(&format!("{prefix}/{}", s.name));
        let expected_bytes = Some(s.bytes.len() as u64);
        match (s.kind, s.defect) {
            (SampleKind::Image, _) => {
                let info = prober
                    .probe_image(&url)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let format = match s.content_type {
                    "image/png" => ImageFormat::Png,
                    "image/jpeg" => ImageFormat::Jpeg,
                    _ => ImageFormat::Webp,
                };
                assert_eq!(info.format, format, "{}", s.name);
                assert_eq!((info.width, info.height), (s.width, s.height), "{}", s.name);
                if size_known {
                    assert_eq!(info.bytes, expected_bytes, "{}", s.name);
                }
                // Headers only: the 10.8 MB PNG costs at most the first request's worth.
                assert!(
                    info.bytes_read <= 64 * 1024,
                    "{}: {}",
                    s.name,
                    info.bytes_read
                );
            }
            (SampleKind::Video, None) => {
                let info = prober
                    .probe_video(&url)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let (container, brand) = match s.content_type {
                    "video/quicktime" => (Container::Mov, "qt  "),
                    _ if s.name.contains("fragmented") => (Container::Mp4, "iso5"),
                    _ => (Container::Mp4, "isom"),
                };
                assert_eq!(info.container, container, "{}", s.name);
                assert_eq!(info.brand.as_deref(), Some(brand), "{}", s.name);
                assert_eq!(info.codec.as_deref(), Some("avc1"), "{}", s.name);
                assert_eq!(info.duration_s, s.seconds, "{}", s.name);
                assert_eq!((info.width, info.height), (s.width, s.height), "{}", s.name);
                assert_eq!(info.fragmented, s.name.contains("fragmented"), "{}", s.name);
                if size_known {
                    assert_eq!(info.bytes, expected_bytes, "{}", s.name);
                }
            }
            (SampleKind::Video, Some(_)) if !size_known && !s.name.contains("moov-end") => {
                // Without a stated size, a faststart file cut inside mdat is detected only if
                // the body's end arrived with the header (small files); the prober does not
                // read all of mdat to find out (documented limit).
                match prober.probe_video(&url).await {
                    Ok(info) => assert_eq!(info.duration_s, s.seconds),
                    Err(ProbeError::Truncated { .. }) => {}
                    Err(other) => panic!("{}: {other}", s.name),
                }
            }
            (SampleKind::Video, Some(_)) => {
                let err = prober.probe_video(&url).await.unwrap_err();
                assert!(
                    matches!(err, ProbeError::Truncated { .. }),
                    "{}: expected truncated, got {err}",
                    s.name
                );
                assert!(err.to_string().contains(s.name), "{err}");
            }
        }
    }
}

#[tokio::test]
async fn every_sample_over_range_requests() {
    let server = TestServer::start(vec![]).await;
    check_every_sample(&server, "media", true).await;
}

#[tokio::test]
async fn every_sample_from_a_server_that_ignores_range() {
    let server = TestServer::start(vec![]).await;
    check_every_sample(&server, "norange", true).await;
}

#[tokio::test]
async fn every_sample_from_a_chunked_body_without_length() {
    let server = TestServer::start(vec![]).await;
    check_every_sample(&server, "chunked", false).await;
}

#[tokio::test]
async fn moov_at_end_costs_two_small_ranged_reads() {
    let big = mp4(&VideoSpec::new(30.0, 3840, 2160).layout(Layout::MoovAtEnd));
    let server = TestServer::start(vec![("big-moov-end.mp4".into(), big.clone())]).await;
    let info = prober(ProbeOptions::default())
        .probe_video(&server.url("media/big-moov-end.mp4"))
        .await
        .unwrap();
    assert_eq!(info.duration_s, Some(30.0));
    assert_eq!((info.width, info.height), (3840, 2160));
    assert_eq!(info.bytes, Some(big.len() as u64));
    assert_eq!(info.requests, 2, "first 64 KiB, then the moov at the end");
    assert_eq!(server.files.requests(), 2);
    let served = server.files.served();
    assert_eq!(served, info.bytes_read);
    assert!(
        served < 64 * 1024 + 16 * 1024 && served * 4 < big.len() as u64,
        "served {served} of {} bytes",
        big.len()
    );
    println!(
        "moov-at-end: {served} of {} bytes served in 2 requests",
        big.len()
    );

    // With a 4 KiB first read, the small sample also needs only part of the file.
    server.files.reset();
    let options = ProbeOptions {
        initial_bytes: 4096,
        ..ProbeOptions::default()
    };
    let sample = motionq_media::sample("dance-8s-moov-end.mp4").unwrap();
    let info = prober(options)
        .probe_video(&server.url("media/dance-8s-moov-end.mp4"))
        .await
        .unwrap();
    assert_eq!(info.duration_s, Some(8.0));
    assert!(
        server.files.served() < sample.bytes.len() as u64 / 2,
        "served {} of {}",
        server.files.served(),
        sample.bytes.len()
    );
}

#[tokio::test]
async fn a_server_ignoring_range_is_read_only_as_far_as_needed() {
    let big = mp4(&VideoSpec::new(30.0, 3840, 2160));
    let big_end = mp4(&VideoSpec::new(30.0, 3840, 2160).layout(Layout::MoovAtEnd));
    let server = TestServer::start(vec![
        ("big.mp4".into(), big.clone()),
        ("big-moov-end.mp4".into(), big_end.clone()),
    ])
    .await;
    // Faststart: the header is at the front, the rest of the body is never pulled.
    let info = prober(ProbeOptions::default())
        .probe_video(&server.url("norange/big.mp4"))
        .await
        .unwrap();
    assert_eq!(info.duration_s, Some(30.0));
    // At most the header plus whatever arrived in the same socket reads.
    assert!(
        info.bytes_read * 2 < big.len() as u64,
        "read {} of {}",
        info.bytes_read,
        big.len()
    );
    println!(
        "ignored Range, faststart: read {} of {} bytes",
        info.bytes_read,
        big.len()
    );
    // Moov at the end: the whole body must stream past, which the byte limit forbids.
    let options = ProbeOptions {
        max_bytes: 128 * 1024,
        ..ProbeOptions::default()
    };
    let err = prober(options)
        .probe_video(&server.url("norange/big-moov-end.mp4"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("ignores Range"), "{err}");
    assert!(err.to_string().contains("big-moov-end.mp4"), "{err}");
}

#[tokio::test]
async fn unreachable_url_is_named_in_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = Url::parse(&format!("http://127.0.0.1:{port}/dance.mp4")).unwrap();
    let err = prober(ProbeOptions::default())
        .probe_video(&url)
        .await
        .unwrap_err();
    match &err {
        ProbeError::Unreachable { url, reason } => {
            assert_eq!(url, &format!("http://127.0.0.1:{port}/dance.mp4"));
            assert!(reason.contains("connection"), "{reason}");
        }
        other => panic!("expected unreachable, got {other}"),
    }
    assert!(err.is_transient());
    assert_eq!(err.kind(), "unreachable");
    println!("{err}");
}

#[tokio::test]
async fn http_status_is_named_and_query_strings_stay_secret() {
    let server = TestServer::start(vec![]).await;
    let prober = prober(ProbeOptions::default());
    let url = server.url("media/missing.mp4?X-Amz-Signature=topsecret");
    let err = prober.probe_video(&url).await.unwrap_err();
    assert_eq!(
        err,
        ProbeError::HttpStatus {
            url: format!("{}media/missing.mp4?…", server.base),
            status: 404
        }
    );
    assert!(err.to_string().contains("404"));
    assert!(!err.to_string().contains("topsecret"));
    assert!(!err.is_transient());

    let err = prober
        .probe_image(&server.url("status/503"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::HttpStatus { status: 503, .. }),
        "{err}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn wrong_kinds_of_content_are_rejected_with_what_they_look_like() {
    let server = TestServer::start(vec![
        (
            "page.html".into(),
            b"<!DOCTYPE html><html>nope</html>".to_vec(),
        ),
        (
            "clip.webm".into(),
            vec![0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 1, 0, 0, 0],
        ),
        ("empty.mp4".into(), Vec::new()),
    ])
    .await;
    let prober = prober(ProbeOptions::default());
    let err = prober
        .probe_video(&server.url("media/page.html"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::NotVideo { .. }) && err.to_string().contains("HTML"),
        "{err}"
    );
    let err = prober
        .probe_video(&server.url("media/portrait-720x1280.png"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a PNG image"), "{err}");
    let err = prober
        .probe_image(&server.url("media/dance-8s.mp4"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::NotImage { .. }) && err.to_string().contains("MP4/MOV"),
        "{err}"
    );
    let err = prober
        .probe_video(&server.url("media/clip.webm"))
        .await
        .unwrap_err();
    // An EBML header that declares 31 bytes but stops after 8.
    assert!(matches!(err, ProbeError::Truncated { .. }), "{err}");
    let err = prober
        .probe_video(&server.url("media/empty.mp4"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::NotVideo { .. }) && err.to_string().contains("empty"),
        "{err}"
    );
    let err = prober
        .probe_image(&server.url("media/empty.mp4"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::NotImage { .. }), "{err}");
    let err = prober
        .probe_video(&server.url("wrongrange/dance-8s.mp4"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProbeError::Corrupt { .. }) && err.to_string().contains("bytes from 100"),
        "{err}"
    );
    let ftp = Url::parse("ftp://127.0.0.1/x.mp4").unwrap();
    assert!(matches!(
        prober.probe_video(&ftp).await,
        Err(ProbeError::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit_and_timeouts_are_errors() {
    let server = TestServer::start(vec![]).await;
    let info = prober(ProbeOptions::default())
        .probe_video(&server.url("redirect/3/dance-12s.mov"))
        .await
        .unwrap();
    assert_eq!(info.duration_s, Some(12.0));
    assert_eq!(info.container, Container::Mov);

    let limited = prober(ProbeOptions {
        max_redirects: 2,
        ..ProbeOptions::default()
    });
    let err = limited
        .probe_video(&server.url("redirect/3/dance-12s.mov"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProbeError::Unreachable { reason, .. } if reason.contains("redirect")),
        "{err}"
    );
    let err = limited.probe_video(&server.url("loop")).await.unwrap_err();
    assert!(err.to_string().contains("redirect"), "{err}");

    let impatient = prober(ProbeOptions {
        timeout: Duration::from_millis(300),
        ..ProbeOptions::default()
    });
    let err = impatient
        .probe_image(&server.url("slow"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProbeError::Unreachable { reason, .. } if reason.contains("timed out")),
        "{err}"
    );
}

/// Variants of a sample built by editing box headers: the prober reads only headers, so
/// sample offsets inside need not stay valid.
fn rewrite_top_level(file: &[u8], edit: impl Fn(&[u8; 4], &[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < file.len() {
        let size = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = file[at + 4..at + 8].try_into().unwrap();
        out.extend(edit(&kind, &file[at..at + size]));
        at += size;
    }
    out
}

#[tokio::test]
async fn large_size_zero_size_and_fragmented_without_mehd() {
    let moov_end = motionq_media::sample("dance-8s-moov-end.mp4")
        .unwrap()
        .bytes
        .clone();
    // mdat with a 64-bit largesize before the moov.
    let largesize = rewrite_top_level(&moov_end, |kind, whole| {
        if kind != b"mdat" {
            return whole.to_vec();
        }
        let mut b = vec![0, 0, 0, 1];
        b.extend_from_slice(b"mdat");
        b.extend_from_slice(&(whole.len() as u64 + 8).to_be_bytes());
        b.extend_from_slice(&whole[8..]);
        b
    });
    // Faststart with a final mdat of size 0 ("to the end of the file").
    let faststart = motionq_media::sample("dance-8s.mp4").unwrap().bytes.clone();
    let size_zero = rewrite_top_level(&faststart, |kind, whole| {
        let mut b = whole.to_vec();
        if kind == b"mdat" {
            b[..4].copy_from_slice(&[0; 4]);
        }
        b
    });
    // Fragmented, with mehd renamed to free: only the fragments know the total.
    let no_mehd = without_mehd(
        &motionq_media::sample("dance-8s-fragmented.mp4")
            .unwrap()
            .bytes,
    );

    let server = TestServer::start(vec![
        ("largesize.mp4".into(), largesize.clone()),
        ("size-zero.mp4".into(), size_zero),
        ("no-mehd.mp4".into(), no_mehd),
    ])
    .await;
    let prober = prober(ProbeOptions {
        initial_bytes: 1024,
        ..ProbeOptions::default()
    });
    for prefix in ["media", "norange"] {
        let info = prober
            .probe_video(&server.url(&format!("{prefix}/largesize.mp4")))
            .await
            .unwrap();
        assert_eq!(
            (info.duration_s, info.width, info.height),
            (Some(8.0), 720, 1280)
        );
        assert_eq!(info.bytes, Some(largesize.len() as u64));
        let info = prober
            .probe_video(&server.url(&format!("{prefix}/size-zero.mp4")))
            .await
            .unwrap();
        assert_eq!(info.duration_s, Some(8.0));
        let info = prober
            .probe_video(&server.url(&format!("{prefix}/no-mehd.mp4")))
            .await
            .unwrap();
        assert!(info.fragmented);
        assert_eq!(info.duration_s, Some(8.0), "summed over the moof boxes");
        assert_eq!((info.width, info.height), (720, 1280));
    }
}

/// The fragmented sample with its `mehd` renamed to `free`, so only the fragments know the
/// duration.
fn without_mehd(file: &[u8]) -> Vec<u8> {
    let at = file.windows(4).position(|w| w == b"mehd").unwrap();
    let mut out = file.to_vec();
    out[at..at + 4].copy_from_slice(b"free");
    out
}

#[tokio::test]
async fn summing_fragments_stays_within_its_request_budget() {
    // 60 s of 4K: 30 fragments of about 32 KB each, no mehd.
    let long = without_mehd(&mp4(
        &VideoSpec::new(60.0, 3840, 2160).layout(Layout::Fragmented)
    ));
    let cut = long[..long.len() * 2 / 3].to_vec();
    let server = TestServer::with_files(vec![
        ("long.mp4".into(), long.clone()),
        ("cut.mp4".into(), cut),
    ])
    .await;
    let url = server.url("media/long.mp4");

    let info = prober(ProbeOptions::default())
        .probe_video(&url)
        .await
        .unwrap();
    assert_eq!(info.duration_s, Some(60.0));
    assert!(info.requests <= 1 + 64, "{}", info.requests);
    // One small read per fragment: the media data is skipped.
    assert!(
        info.bytes_read * 4 < long.len() as u64,
        "{}",
        info.bytes_read
    );
    println!(
        "fragments summed: {} requests, {} of {} bytes",
        info.requests,
        info.bytes_read,
        long.len()
    );

    // The walk finds a cut that the header alone cannot show.
    let err = prober(ProbeOptions::default())
        .probe_video(&server.url("media/cut.mp4"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProbeError::Truncated { .. }), "{err}");

    for budget in [0, 3] {
        server.files.reset();
        let options = ProbeOptions {
            max_fragment_requests: budget,
            ..ProbeOptions::default()
        };
        let info = prober(options).probe_video(&url).await.unwrap();
        assert_eq!(
            info.duration_s, None,
            "budget {budget}: duration unknown (fragmented)"
        );
        assert!(info.fragmented);
        assert!(
            u64::from(info.requests) <= 1 + u64::from(budget) + 1,
            "{}",
            info.requests
        );
        assert_eq!(server.files.requests(), u64::from(info.requests));
    }
}

#[tokio::test]
async fn base64_and_data_urls_are_read_without_network() {
    let options = ProbeOptions::default();
    let prober = prober(options.clone());
    let engine = base64::engine::general_purpose::STANDARD;
    for name in [
        "portrait-720x1280.png",
        "square-1024x1024.jpg",
        "landscape-1280x720.webp",
    ] {
        let s = motionq_media::sample(name).unwrap();
        let encoded = engine.encode(&s.bytes);
        let data_url = format!("data:{};base64,{encoded}", s.content_type);
        for input in [encoded.as_str(), data_url.as_str()] {
            let info = prober
                .probe_image_str(input)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((info.width, info.height), (s.width, s.height), "{name}");
            assert_eq!(info.bytes, Some(s.bytes.len() as u64), "{name}");
            assert!(info.bytes_read < s.bytes.len() as u64 || s.bytes.len() < 32 * 1024);
        }
        let info = prober
            .probe_image(&Url::parse(&data_url).unwrap())
            .await
            .unwrap();
        assert_eq!(info.width, s.width);
    }
    // URL-safe alphabet without padding, wrapped over lines.
    let png = motionq_media::png(301, 299);
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&png);
    let wrapped: String = url_safe
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let info = image_info_from_base64(&wrapped, &options).unwrap();
    assert_eq!(
        (info.format, info.width, info.height),
        (ImageFormat::Png, 301, 299)
    );
    assert_eq!(info.bytes, Some(png.len() as u64));

    let err = image_info_from_base64("data:image/png,rawbytes", &options).unwrap_err();
    assert!(matches!(err, ProbeError::InvalidInput { .. }), "{err}");
    let err = image_info_from_base64("not*base64!", &options).unwrap_err();
    assert!(matches!(err, ProbeError::InvalidInput { .. }), "{err}");
    let text = engine.encode("<html>this is not an image at all, but long enough</html>");
    let err =
        image_info_from_base64(&format!("data:image/png;base64,{text}"), &options).unwrap_err();
    assert!(matches!(err, ProbeError::NotImage { .. }), "{err}");
    assert!(
        err.url().starts_with("data:image/png;base64,…"),
        "{}",
        err.url()
    );
}

#[tokio::test]
async fn probe_many_probes_each_distinct_url_once() {
    let server = TestServer::start(vec![]).await;
    let prober = prober(ProbeOptions {
        concurrency: 4,
        ..ProbeOptions::default()
    });
    let image = server.url("media/portrait-720x1280.jpg");
    let video = server.url("media/dance-8s-moov-end.mp4");
    let missing = server.url("media/gone.mp4");
    // A 30,000-job manifest that reuses three URLs.
    let targets = (0..10_000).flat_map(|_| {
        [
            (MediaKind::Image, image.clone()),
            (MediaKind::Video, video.clone()),
            (MediaKind::Video, missing.clone()),
        ]
    });
    let results = prober.probe_many(targets).await;
    assert_eq!(results.len(), 3);
    match &results[&(MediaKind::Image, image)] {
        Ok(MediaInfo::Image(info)) => assert_eq!((info.width, info.height), (720, 1280)),
        other => panic!("{other:?}"),
    }
    match &results[&(MediaKind::Video, video)] {
        Ok(MediaInfo::Video(info)) => assert_eq!(info.duration_s, Some(8.0)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        results[&(MediaKind::Video, missing)],
        Err(ProbeError::HttpStatus { status: 404, .. })
    ));
    // One request each: both samples fit in the first 16/64 KiB window.
    assert_eq!(server.files.requests(), 3);
}

#[tokio::test]
async fn jpeg_with_a_large_exif_block_needs_a_longer_prefix() {
    // SOI, then a 60 KB APP1 (EXIF) segment, then the rest of a normal JPEG: the size marker
    // (SOF) lies beyond the first 16 KiB read.
    let jpeg = motionq_media::jpeg(640, 480);
    let payload = 60_000usize;
    let mut exif = jpeg[..2].to_vec();
    exif.extend_from_slice(&[0xff, 0xe1]);
    exif.extend_from_slice(&(payload as u16 + 2).to_be_bytes());
    exif.extend_from_slice(b"Exif\0\0");
    exif.resize(exif.len() + payload - 6, 0);
    exif.extend_from_slice(&jpeg[2..]);
    let server = TestServer::with_files(vec![("exif.jpg".into(), exif.clone())]).await;

    let info = prober(ProbeOptions::default())
        .probe_image(&server.url("media/exif.jpg"))
        .await
        .unwrap();
    assert_eq!(
        (info.format, info.width, info.height),
        (ImageFormat::Jpeg, 640, 480)
    );
    assert_eq!(info.bytes, Some(exif.len() as u64));
    assert!(info.bytes_read > 60_000, "{}", info.bytes_read);
    // The prefix grew (16 KiB, then 64 KiB): two requests.
    assert_eq!(server.files.requests(), 2);

    let err = prober(ProbeOptions {
        max_bytes: 32 * 1024,
        ..ProbeOptions::default()
    })
    .probe_image(&server.url("media/exif.jpg"))
    .await
    .unwrap_err();
    assert!(matches!(err, ProbeError::TooLarge { .. }), "{err}");
}

#[test]
fn video_info_serialises_for_reports() {
    let info = motionq_probe::VideoInfo {
        container: Container::Mov,
        brand: Some("qt  ".into()),
        codec: Some("avc1".into()),
        duration_s: None,
        width: 720,
        height: 1280,
        bytes: Some(10),
        fragmented: true,
        bytes_read: 10,
        requests: 1,
    };
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["container"], "mov");
    assert_eq!(json["duration_s"], serde_json::Value::Null);
}
