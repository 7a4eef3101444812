//! `motionq-bench <queue|enqueue|scale|all>`: runs the benchmarks and prints their figures;
//! `motionq-bench worker <spec>` is the worker process the benchmarks start themselves.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use motionq_bench::env::WorkerSpec;
use motionq_bench::{enqueue, queue, scale};

#[derive(Debug, Parser)]
#[command(
    name = "motionq-bench",
    about = "motionq benchmarks (issue 11): each runs its peers in the same run"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Full job lifecycles per second vs apalis-redis and BullMQ no-op workers.
    Queue {
        #[arg(long, default_value_t = 3000)]
        jobs: usize,
        #[arg(long, default_value_t = queue::DEFAULT_CONCURRENCY)]
        concurrency: usize,
        /// Async runtime threads of the motionq worker process (`motionq worker --threads`).
        #[arg(long, default_value_t = 1)]
        worker_threads: usize,
        /// Directory for the motionq side's local object store (default: a temporary
        /// directory under $TMPDIR); the report names its filesystem.
        #[arg(long)]
        store_dir: Option<PathBuf>,
        /// Jobs of the extra campaign profiled under MONITOR (not timed).
        #[arg(long, default_value_t = 200)]
        profile_jobs: usize,
    },
    /// A large manifest through parse + validate + Store::enqueue vs redis-benchmark SET.
    Enqueue {
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        #[arg(long, default_value_t = 1_000_000)]
        set_requests: usize,
    },
    /// Worker RSS/CPU with many in-flight tasks being polled; Redis memory per job.
    Scale {
        #[arg(long, default_value_t = 10_000)]
        jobs: usize,
        #[arg(long, default_value_t = 30)]
        window_s: u64,
    },
    /// queue, enqueue and scale with their defaults.
    All,
    /// The worker process started by `queue` and `scale` (spec as JSON). Stops when stdin closes.
    #[command(hide = true)]
    Worker { spec: String },
}

fn node_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/node"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::Worker { spec } = &cli.cmd {
        // The child's runtime is built as `motionq worker --threads` builds it.
        let spec: WorkerSpec = serde_json::from_str(spec).context("worker spec")?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(spec.threads.max(1))
            .enable_all()
            .build()?;
        return rt.block_on(worker(spec));
    }
    let rt = tokio::runtime::Runtime::new()?;
    let exe = std::env::current_exe().context("own executable")?;
    match cli.cmd {
        Cmd::Worker { .. } => unreachable!("handled above"),
        Cmd::Queue {
            jobs,
            concurrency,
            worker_threads,
            store_dir,
            profile_jobs,
        } => {
            let r = rt.block_on(queue::run(&queue::QueueOptions {
                jobs,
                concurrency,
                worker_threads,
                store_dir,
                worker_exe: exe,
                node_dir: node_dir(),
                profile_jobs,
            }))?;
            println!("{r}");
            Ok(())
        }
        Cmd::Enqueue { jobs, set_requests } => {
            let r = rt.block_on(enqueue::run(&enqueue::EnqueueOptions {
                jobs,
                set_requests,
            }))?;
            println!("{r}");
            Ok(())
        }
        Cmd::Scale { jobs, window_s } => {
            let r = rt.block_on(scale::run(&scale::ScaleOptions {
                jobs,
                window: Duration::from_secs(window_s),
                worker_exe: exe,
            }))?;
            println!("{r}");
            Ok(())
        }
        Cmd::All => {
            let q = rt.block_on(queue::run(&queue::QueueOptions {
                jobs: 3000,
                concurrency: queue::DEFAULT_CONCURRENCY,
                worker_threads: 1,
                store_dir: None,
                worker_exe: exe.clone(),
                node_dir: node_dir(),
                profile_jobs: 200,
            }))?;
            println!("{q}");
            let e = rt.block_on(enqueue::run(&enqueue::EnqueueOptions {
                jobs: 100_000,
                set_requests: 1_000_000,
            }))?;
            println!("{e}");
            let s = rt.block_on(scale::run(&scale::ScaleOptions {
                jobs: 10_000,
                window: Duration::from_secs(30),
                worker_exe: exe,
            }))?;
            println!("{s}");
            Ok(())
        }
    }
}

/// The worker child: `run_worker` with every stage until stdin reaches EOF (the parent
/// closed it or died).
async fn worker(spec: WorkerSpec) -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let cfg = motionq_config::Config::load(std::slice::from_ref(&spec.config))?;
    let shutdown = async {
        use tokio::io::AsyncReadExt;
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    motionq_pipeline::run_worker(&cfg, spec.options(), shutdown).await
}
