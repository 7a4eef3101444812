//! Probes files written by ffmpeg (see `fixtures/README.md`) over HTTP, with and without
//! Range support, and checks what ffprobe reports for them.

use motionq_probe::{Container, ProbeOptions, Prober, VideoInfo};

mod common;

use common::TestServer;

fn fixture(name: &str) -> Vec<u8> {
    if name == "rotated-90.mp4" {
        return rotated(fixture("ffmpeg-moov-end.mp4"));
    }
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The file with its video `tkhd` matrix turned by 90° (a = d = 0, b = 1, c = -1), as phones
/// write portrait clips.
fn rotated(mut file: Vec<u8>) -> Vec<u8> {
    let at = file.windows(4).position(|w| w == b"tkhd").expect("tkhd") + 4;
    assert_eq!(file[at], 0, "version 0 tkhd");
    let matrix = at + 40;
    let height = u32::from_be_bytes(file[at + 80..at + 84].try_into().unwrap());
    let values: [i32; 9] = [
        0,
        0x1_0000,
        0,
        -0x1_0000,
        0,
        0,
        (height >> 16) as i32 * 0x1_0000,
        0,
        0x4000_0000,
    ];
    for (i, v) in values.iter().enumerate() {
        file[matrix + 4 * i..matrix + 4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    file
}

const FIXTURES: &[&str] = &[
    "audio-first-faststart.mp4",
    "ffmpeg-moov-end.mp4",
    "rotated-90.mp4",
    "ffmpeg-moov-end.mov",
    "ffmpeg-fragmented.mp4",
    "hevc.mp4",
    "vp9.webm",
    "h264.mkv",
    "live.webm",
];

async fn probe_all(prefix: &str) -> Vec<(String, VideoInfo)> {
    let files = FIXTURES
        .iter()
        .map(|n| (n.to_string(), fixture(n)))
        .collect();
    let server = TestServer::with_files(files).await;
    let options = ProbeOptions {
        // Small first reads, so moov at the end needs a real second request.
        initial_bytes: 512,
        ..ProbeOptions::default()
    };
    let prober = Prober::new(options.client().unwrap(), options);
    let mut out = Vec::new();
    for name in FIXTURES {
        let info = prober
            .probe_video(&server.url(&format!("{prefix}/{name}")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.bytes, Some(fixture(name).len() as u64), "{name}");
        out.push((name.to_string(), info));
    }
    out
}

fn check(results: &[(String, VideoInfo)]) {
    for (name, info) in results {
        let duration = info.duration_s;
        match name.as_str() {
            "audio-first-faststart.mp4" => {
                // The first trak is audio: the prober must pick the video one.
                assert_eq!((info.width, info.height), (360, 640), "{name}");
                assert_eq!(info.codec.as_deref(), Some("avc1"));
                assert_eq!(info.container, Container::Mp4);
                let d = duration.expect("known");
                assert!((d - 2.0).abs() < 0.05, "{name}: {d}");
            }
            "ffmpeg-moov-end.mp4" => {
                assert_eq!((info.width, info.height), (360, 640), "{name}");
                assert_eq!(info.brand.as_deref(), Some("isom"));
                assert_eq!(duration, Some(2.0));
            }
            "rotated-90.mp4" => {
                // Stored 360x640, shown turned by 90°.
                assert_eq!((info.width, info.height), (640, 360), "{name}");
                assert_eq!(duration, Some(2.0));
            }
            "ffmpeg-moov-end.mov" => {
                assert_eq!(info.container, Container::Mov);
                assert_eq!(info.brand.as_deref(), Some("qt  "));
                assert_eq!((info.width, info.height), (360, 640));
                assert_eq!(duration, Some(2.5));
                assert!(!info.fragmented);
            }
            "ffmpeg-fragmented.mp4" => {
                // No mehd: the duration is the sum over the four moof/trun boxes.
                assert!(info.fragmented);
                assert_eq!(duration, Some(2.0), "{name}");
                assert_eq!((info.width, info.height), (360, 640));
                assert_eq!(info.container, Container::Mp4);
            }
            "hevc.mp4" => {
                assert_eq!(info.codec.as_deref(), Some("hvc1"));
                assert_eq!((info.width, info.height), (360, 640));
                assert_eq!(duration, Some(2.0));
            }
            "vp9.webm" => {
                assert_eq!(info.container, Container::Other("webm".into()));
                assert_eq!(info.codec.as_deref(), Some("V_VP9"));
                assert_eq!((info.width, info.height), (360, 640));
                assert_eq!(duration, Some(2.0));
            }
            "h264.mkv" => {
                assert_eq!(info.container, Container::Other("matroska".into()));
                assert_eq!(info.codec.as_deref(), Some("V_MPEG4/ISO/AVC"));
                assert_eq!((info.width, info.height), (360, 640));
                assert_eq!(duration, Some(2.5));
            }
            "live.webm" => {
                // Unknown Segment/Cluster sizes and no Duration, as a browser recording.
                assert_eq!(info.brand.as_deref(), Some("webm"));
                assert_eq!((info.width, info.height), (360, 640));
                assert_eq!(duration, None);
            }
            other => panic!("unexpected fixture {other}"),
        }
    }
}

#[tokio::test]
async fn ffmpeg_files_over_range_requests() {
    let results = probe_all("media").await;
    check(&results);
    let (_, moov_end) = &results[3];
    assert_eq!(
        moov_end.requests, 2,
        "first 512 bytes, then the moov at the end"
    );
}

#[tokio::test]
async fn ffmpeg_files_from_a_server_that_ignores_range() {
    check(&probe_all("norange").await);
}
