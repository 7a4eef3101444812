//! `motionq validate <manifest> [--probe] [--json]`.

use std::path::PathBuf;

use motionq_config::Config;
use serde_json::json;

use crate::exit::Failure;
use crate::manifest_io;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The manifest (JSON), or `-` for stdin.
    pub manifest: PathBuf,
    /// Read image and video headers over HTTP (range requests) and check sizes, dimensions and
    /// durations against each vendor's limits.
    #[arg(long)]
    pub probe: bool,
    /// Print a JSON report on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &ValidateArgs, cfg: &Config) -> Result<(), Failure> {
    let m = manifest_io::read(&args.manifest, cfg)?;
    let v = manifest_io::validate(&m.bytes, cfg, args.probe).await;
    let jobs = v.campaign.as_ref().map(|(_, j)| j.len()).unwrap_or(0);
    if args.json {
        println!(
            "{}",
            json!({
                "valid": v.is_valid(),
                "jobs": jobs,
                "errors": v.errors().count(),
                "warnings": v.warnings().count(),
                "problems": v.problems,
            })
        );
    } else {
        manifest_io::print_problems(&v);
        let (e, w) = (v.errors().count(), v.warnings().count());
        if v.is_valid() {
            println!("manifest is valid: {jobs} jobs, {w} warning(s)");
        } else {
            eprintln!("manifest is invalid: {e} error(s), {w} warning(s)");
        }
    }
    if v.is_valid() {
        Ok(())
    } else {
        Err(Failure::invalid(""))
    }
}
