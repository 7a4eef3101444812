//! Robustness: headers with random bytes changed must give an answer or an error, never a
//! panic or a hang. Deterministic (a fixed-seed generator), so a failure reproduces.

use motionq_probe::{ProbeError, ProbeOptions, Prober};

mod common;

use common::TestServer;

/// xorshift64*: small, deterministic, good enough to pick positions and values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Offset and length of the `moov` box.
fn moov_span(file: &[u8]) -> (usize, usize) {
    let mut at = 0;
    loop {
        let size = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        if &file[at + 4..at + 8] == b"moov" {
            return (at, size);
        }
        at += size;
    }
}

#[tokio::test]
async fn mutated_headers_never_panic() {
    let names = [
        "dance-8s.mp4",
        "dance-8s-moov-end.mp4",
        "dance-12s.mov",
        "dance-8s-fragmented.mp4",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut files = Vec::new();
    for name in names {
        let original = motionq_media::sample(name).unwrap().bytes.clone();
        let (moov_at, moov_len) = moov_span(&original);
        for i in 0..150 {
            let mut file = original.clone();
            for _ in 0..1 + rng.below(4) {
                // Mostly inside ftyp/moov, sometimes in the first box header after it.
                let span = moov_at + moov_len + 16;
                let pos = if rng.below(4) == 0 {
                    rng.below(span.min(file.len()))
                } else {
                    moov_at + rng.below(moov_len)
                };
                file[pos] = match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    2 => file[pos] ^ (1 << rng.below(8)),
                    _ => rng.next() as u8,
                };
            }
            files.push((format!("{i}-{name}"), file));
        }
    }
    // WebM/Matroska from ffmpeg: mutate the EBML header, Info and Tracks (the first 400 bytes).
    for name in ["vp9.webm", "h264.mkv", "live.webm"] {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let original = std::fs::read(&path).unwrap();
        for i in 0..150 {
            let mut file = original.clone();
            for _ in 0..1 + rng.below(4) {
                let pos = rng.below(original.len().min(400));
                file[pos] = match rng.below(3) {
                    0 => 0xff,
                    1 => file[pos] ^ (1 << rng.below(8)),
                    _ => rng.next() as u8,
                };
            }
            files.push((format!("{i}-{name}"), file));
        }
    }
    let server = TestServer::with_files(files.clone()).await;
    let options = ProbeOptions {
        initial_bytes: 2048,
        ..ProbeOptions::default()
    };
    let prober = Prober::new(options.client().unwrap(), options);
    let (mut ok, mut errors) = (0, 0);
    for (name, _) in &files {
        for prefix in ["media", "norange"] {
            match prober
                .probe_video(&server.url(&format!("{prefix}/{name}")))
                .await
            {
                Ok(info) => {
                    ok += 1;
                    assert!(info.bytes_read <= 8 * 1024 * 1024);
                }
                Err(err) => {
                    errors += 1;
                    assert!(
                        !matches!(
                            err,
                            ProbeError::Unreachable { .. } | ProbeError::HttpStatus { .. }
                        ),
                        "{name}: the file, not the transport, is at fault: {err}"
                    );
                    assert!(err.to_string().contains(name.as_str()), "{err}");
                }
            }
        }
    }
    println!("mutated headers: {ok} read, {errors} rejected");
    assert!(ok > 0 && errors > 0, "{ok} read, {errors} rejected");
}
