//! `motionq`: bulk motion-transfer video campaigns.
//!
//! One binary, one subcommand per task. Exit codes (stable, for scripts):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | operational error: Redis unreachable, I/O, bad config |
//! | 2 | invalid input: manifest problems, bad flags |
//! | 3 | refused: over budget, conflicts with stored jobs, campaign settings differ |

mod cmd;
mod exit;
mod logging;
mod manifest_io;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::Failure;

/// Run bulk Kling V3 Motion Control campaigns across vendors with exact limits and budgets.
#[derive(Debug, Parser)]
#[command(name = "motionq", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Config file (default: config/default.toml when present, then MOTIONQ__* env vars).
    #[arg(long, global = true, env = "MOTIONQ_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "pretty")]
    pub log_format: logging::LogFormat,
    /// More logs (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The demo campaign on this machine: simulator, worker and webhooks in one process.
    #[command(
        after_help = "Example:\n  motionq demo\n  MOTIONQ__REDIS__URL=redis://127.0.0.1:6379/ motionq demo"
    )]
    Demo(cmd::demo::DemoArgs),
    /// Check a manifest and print every problem with its JSON pointer (exit 2 when invalid).
    #[command(
        after_help = "Examples:\n  motionq validate manifests/demo.json\n  motionq validate campaign.json --probe --json"
    )]
    Validate(cmd::validate::ValidateArgs),
    /// Store a campaign's jobs in Redis (state `queued`), or estimate it with --dry-run.
    #[command(
        after_help = "Examples:\n  motionq enqueue campaign.json --dry-run\n  motionq enqueue campaign.json --probe --json\n  motionq enqueue campaign.json --replace"
    )]
    Enqueue(cmd::enqueue::EnqueueArgs),
    /// Run pipeline stages: feeder, submit, poll, collect (all by default). Stateless; run many.
    #[command(
        after_help = "Examples:\n  motionq worker\n  motionq worker --stages submit,poll --submit-concurrency 32\n  MOTIONQ__REDIS__URL=rediss://redis.internal:6380 motionq worker"
    )]
    Worker(cmd::worker::WorkerArgs),
    /// Campaign progress: jobs by state, spend vs budget, keys, recent failures.
    #[command(
        after_help = "Examples:\n  motionq status\n  motionq status spring-launch --watch\n  motionq status spring-launch --json"
    )]
    Status(cmd::status::StatusArgs),
    /// One row per job (CSV or JSON) with costs, timings, outputs and failures.
    #[command(
        after_help = "Examples:\n  motionq report spring-launch --format csv --out report.csv\n  motionq report spring-launch --format json"
    )]
    Report(cmd::report::ReportArgs),
    /// Stop admitting a campaign's jobs (submitted ones finish).
    #[command(
        after_help = "Examples:\n  motionq pause spring-launch\n  motionq pause spring-launch --json"
    )]
    Pause(cmd::control::CampaignArg),
    /// Admit a paused campaign's jobs again.
    #[command(
        after_help = "Examples:\n  motionq resume spring-launch\n  motionq resume spring-launch --json"
    )]
    Resume(cmd::control::CampaignArg),
    /// Cancel a campaign: queued jobs are never submitted; submitted ones finish and are collected.
    #[command(
        after_help = "Examples:\n  motionq cancel spring-launch\n  motionq cancel spring-launch --json   # {\"jobs_cancelled\": N, ...}"
    )]
    Cancel(cmd::control::CampaignArg),
    /// Send failed (default), expired or cancelled jobs back to the queue.
    #[command(
        after_help = "Examples:\n  motionq retry spring-launch --failed\n  motionq retry spring-launch --failed --class upstream_transient\n  motionq retry spring-launch --expired   # spends money again\n  motionq retry spring-launch --job jacket-red"
    )]
    Retry(cmd::control::RetryArgs),
    /// Vendor keys: state, in-flight, rates, budgets; park or unpark one.
    #[command(
        after_help = "Examples:\n  motionq keys\n  motionq keys park evolink/main\n  motionq keys unpark evolink/main"
    )]
    Keys(cmd::status::KeysArgs),
    /// Receive vendor callbacks (webhooks): verified, deduplicated, they make a job's next poll due now.
    #[command(
        after_help = "Example:\n  MOTIONQ_WEBHOOK_TOKEN=$(openssl rand -hex 24) MOTIONQ__WEBHOOKS__TOKEN_ENV=MOTIONQ_WEBHOOK_TOKEN motionq serve"
    )]
    Serve(motionq_webhooks::ServeArgs),
    /// Serve all five vendor APIs from one process: the simulator (never a real vendor).
    #[command(
        after_help = "Examples:\n  motionq sim --listen 127.0.0.1:8089 --config config/sim.toml\n  motionq sim --admin   # enable /_sim/ledger, /_sim/faults"
    )]
    Sim(motionq_sim::SimArgs),
    /// Print the manifest's JSON Schema (the source of manifests/schema.json).
    #[command(after_help = "Example:\n  motionq schema > manifests/schema.json")]
    Schema,
    /// Write a synthetic manifest of N jobs (load tests and benchmarks).
    #[command(
        after_help = "Example:\n  motionq example-manifest --jobs 100000 --out /tmp/100k.json"
    )]
    ExampleManifest(cmd::example::ExampleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(
        cli.log_format,
        cli.verbose,
        matches!(cli.command, Command::Demo(_) | Command::Status(_)),
    );
    if matches!(cli.command, Command::Demo(_)) {
        // Before any thread starts: setting the environment is only sound single-threaded.
        if let Err(f) = cmd::demo::export_demo_keys() {
            return f.report();
        }
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Worker(a) = &cli.command {
        builder.worker_threads(usize::from(a.threads));
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let config = || {
        motionq_config::Config::load_default(cli.config.as_deref()).map_err(Failure::operational)
    };
    match &cli.command {
        Command::Demo(a) => cmd::demo::run(a, cli.config.as_deref()).await,
        Command::Validate(a) => cmd::validate::run(a, &config()?).await,
        Command::Worker(a) => cmd::worker::run(a, &config()?).await,
        Command::Status(a) => cmd::status::run(a, &config()?).await,
        Command::Report(a) => cmd::report::run(a, &config()?).await,
        Command::Pause(a) => cmd::control::run(cmd::control::Action::Pause, a, &config()?).await,
        Command::Resume(a) => cmd::control::run(cmd::control::Action::Resume, a, &config()?).await,
        Command::Cancel(a) => cmd::control::run(cmd::control::Action::Cancel, a, &config()?).await,
        Command::Retry(a) => cmd::control::retry(a, &config()?).await,
        Command::Keys(a) => cmd::status::keys(a, &config()?).await,
        Command::Enqueue(a) => cmd::enqueue::run(a, &config()?).await,
        Command::ExampleManifest(a) => cmd::example::run(a),
        Command::Serve(a) => motionq_webhooks::run(a, &config()?)
            .await
            .map_err(|e| Failure::operational(format!("{e:#}"))),
        Command::Sim(a) => motionq_sim::run(a.clone())
            .await
            .map_err(Failure::operational),
        Command::Schema => {
            print!("{}", motionq_core::manifest::json_schema());
            Ok(())
        }
    }
}
