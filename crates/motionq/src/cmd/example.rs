//! `motionq example-manifest`: writes a synthetic manifest of N jobs (load tests, benchmarks,
//! and `manifests/large-1000.json`).

use std::io::Write;
use std::path::PathBuf;

use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct ExampleArgs {
    /// Number of jobs.
    #[arg(long, default_value_t = 1000)]
    pub jobs: usize,
    /// Campaign id.
    #[arg(long, default_value = "large-example")]
    pub campaign: String,
    /// Vendor of every job.
    #[arg(long, default_value = "evolink")]
    pub vendor: String,
    /// Base URL of the sample media (the simulator serves `/media/<name>`).
    #[arg(long, default_value = "http://127.0.0.1:8089/media")]
    pub media_base: String,
    /// Campaign budget in USD (omit for none).
    #[arg(long)]
    pub budget_usd: Option<f64>,
    /// Output file (default: stdout).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

const IMAGES: [&str; 3] = [
    "portrait-720x1280.png",
    "square-1024x1024.jpg",
    "landscape-1280x720.png",
];
const VIDEOS: [(&str, u32); 3] = [
    ("dance-3s.mp4", 3),
    ("dance-8s.mp4", 8),
    ("dance-10s.mp4", 10),
];

pub fn run(a: &ExampleArgs) -> Result<(), Failure> {
    let vendor: motionq_core::Vendor = a.vendor.parse().map_err(Failure::invalid)?;
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p)
                .map_err(|e| Failure::operational(format!("{}: {e}", p.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let budget = a
        .budget_usd
        .map(|b| format!("\n  \"budget_usd\": {b},"))
        .unwrap_or_default();
    let io = |e: std::io::Error| Failure::operational(e);
    write!(
        out,
        "{{\n  \"$schema\": \"./schema.json\",\n  \"campaign\": \"{}\",\n  \"vendor\": \"{}\",{budget}\n  \"defaults\": {{ \"prompt\": \"The character follows the reference motion.\", \"orientation\": \"video\", \"tier\": \"std\" }},\n  \"jobs\": [\n",
        a.campaign,
        vendor.as_str()
    )
    .map_err(io)?;
    for i in 0..a.jobs {
        let img = IMAGES[i % IMAGES.len()];
        let (vid, secs) = VIDEOS[(i / IMAGES.len()) % VIDEOS.len()];
        let sep = if i + 1 == a.jobs { "" } else { "," };
        writeln!(
            out,
            "    {{ \"id\": \"sku-{i:06}\", \"image\": \"{}/{img}\", \"video\": \"{}/{vid}\", \"video_duration_s\": {secs}, \"labels\": {{ \"sku\": \"{i:06}\" }} }}{sep}",
            a.media_base, a.media_base
        )
        .map_err(io)?;
    }
    writeln!(out, "  ]\n}}").map_err(io)?;
    out.flush().map_err(io)
}
