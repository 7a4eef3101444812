//! Writes every named sample into a directory, e.g. to inspect them with ffprobe, and prints
//! how long each took to generate:
//! `cargo run -p motionq-media --example write-samples -- /tmp/motionq-samples`

use std::path::PathBuf;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "motionq-samples".into()),
    );
    std::fs::create_dir_all(&dir)?;
    for name in motionq_media::sample_names() {
        let started = Instant::now();
        let sample = motionq_media::sample(name).expect("listed names exist");
        let took = started.elapsed();
        std::fs::write(dir.join(sample.name), &sample.bytes)?;
        println!(
            "{:>9} bytes {:>8.1} ms  {}",
            sample.bytes.len(),
            took.as_secs_f64() * 1000.0,
            sample.name
        );
    }
    Ok(())
}
