//! Writes one generated video, e.g. to check it with ffprobe:
//! `cargo run -p motionq-media --example write-video -- 8.5 720 1280 moov-end mov out.mov`
//! (layout: faststart | moov-end | fragmented; container: mp4 | mov).

use motionq_media::{mp4, Container, Layout, VideoSpec};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [seconds, width, height, layout, container, out] = args.as_slice() else {
        eprintln!(
            "usage: write-video SECONDS WIDTH HEIGHT faststart|moov-end|fragmented mp4|mov OUT"
        );
        std::process::exit(2);
    };
    let layout = match layout.as_str() {
        "faststart" => Layout::Faststart,
        "moov-end" => Layout::MoovAtEnd,
        "fragmented" => Layout::Fragmented,
        other => panic!("unknown layout {other}"),
    };
    let container = match container.as_str() {
        "mp4" => Container::Mp4,
        "mov" => Container::Mov,
        other => panic!("unknown container {other}"),
    };
    let spec = VideoSpec::new(
        seconds.parse().expect("SECONDS is a number"),
        width.parse().expect("WIDTH is an integer"),
        height.parse().expect("HEIGHT is an integer"),
    )
    .layout(layout)
    .container(container);
    let bytes = mp4(&spec);
    std::fs::write(out, &bytes).expect("write OUT");
    println!(
        "{} bytes, {} ms, {}x{}",
        bytes.len(),
        spec.duration_ms(),
        spec.coded_width(),
        spec.coded_height()
    );
}
