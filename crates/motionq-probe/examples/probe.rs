//! Probes media and prints the facts as JSON lines, e.g.
//! `cargo run -p motionq-probe --example probe -- video https://host/clip.mp4 image https://host/a.png`

use motionq_probe::{MediaInfo, MediaKind, ProbeOptions, Prober};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.len() % 2 != 0 {
        eprintln!("usage: probe (image|video) URL [(image|video) URL]...");
        std::process::exit(2);
    }
    let options = ProbeOptions::default();
    let prober = Prober::new(options.client()?, options);
    for pair in args.chunks(2) {
        let kind = match pair[0].as_str() {
            "image" => MediaKind::Image,
            "video" => MediaKind::Video,
            other => return Err(format!("unknown kind {other:?} (image or video)").into()),
        };
        let result = match kind {
            MediaKind::Image => prober.probe_image_str(&pair[1]).await.map(MediaInfo::Image),
            MediaKind::Video => prober.probe(kind, &url::Url::parse(&pair[1])?).await,
        };
        match result {
            Ok(info) => println!("{}", serde_json::to_string(&info)?),
            Err(err) => println!(
                "{}",
                serde_json::json!({"error": err.kind(), "message": err.to_string()})
            ),
        }
    }
    Ok(())
}
