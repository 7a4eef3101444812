//! Runs every benchmark at a tiny size against real components (private redis-server, the
//! simulator over loopback HTTP, the worker as a child process, redis-benchmark, Node/BullMQ)
//! and checks that the figures are produced and make sense. No timing assertions: speed is
//! what the benchmarks print, not what tests check.

use std::path::PathBuf;
use std::time::Duration;

use motionq_bench::{enqueue, queue, scale};

fn worker_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_motionq-bench"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_benchmark_completes_every_job_on_every_side() {
    let jobs = 40;
    let r = queue::run(&queue::QueueOptions {
        jobs,
        concurrency: 8,
        worker_threads: 1,
        store_dir: None,
        worker_exe: worker_exe(),
        node_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/node")),
        profile_jobs: 10,
    })
    .await
    .expect("queue benchmark");
    println!("{r}");
    let bullmq = r.bullmq.clone().unwrap_or_else(|why| {
        panic!(
            "{why}: the BullMQ side needs Node 20 with npm (e.g. `apt-get install -y nodejs npm`)"
        )
    });
    for side in [&r.motionq, &r.apalis, &bullmq] {
        assert_eq!(side.jobs, jobs, "{}", side.name);
        assert!(side.seconds > 0.0, "{}", side.name);
        assert!(
            side.commands_per_job() >= 1.0,
            "{}: {} commands",
            side.name,
            side.commands
        );
    }
    // The full lifecycle (records, limits, three stages, events) necessarily costs more Redis
    // commands per job than a no-op queue.
    assert!(r.motionq.commands_per_job() > r.apalis.commands_per_job());
    assert!(r.motionq.cpu_ms > 0.0);
    assert!(r.motionq_peak_rss_kib > 0);
    // The round-trip profile saw the extra campaign's commands, scripts included.
    assert!(r.motionq_round_trips.client_per_job() >= 1.0);
    assert!(r.motionq_round_trips.in_scripts_per_job() >= 1.0);
    assert!(!r.motionq_commandstats.is_empty());
    let text = r.to_string();
    assert!(text.contains("ratio motionq / apalis-redis"), "{text}");
    assert!(text.contains("ratio motionq / BullMQ"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_benchmark_queues_every_job_and_reads_redis_benchmark() {
    let r = enqueue::run(&enqueue::EnqueueOptions {
        jobs: 500,
        set_requests: 20_000,
    })
    .await
    .expect("enqueue benchmark (needs redis-server and redis-benchmark)");
    println!("{r}");
    assert_eq!(r.jobs, 500);
    assert!(r.commands > 0);
    assert!(r.redis_set_per_s > 0.0);
    // A queued job is a record of a few hundred bytes at least, and far below a megabyte.
    assert!(
        r.memory_per_job > 50.0 && r.memory_per_job < 1e6,
        "{}",
        r.memory_per_job
    );
    assert!(r.redis_benchmark_cmd.contains("-P 16 -t set -n 20000 -q"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_benchmark_keeps_every_task_in_flight() {
    let r = scale::run(&scale::ScaleOptions {
        jobs: 100,
        window: Duration::from_secs(3),
        worker_exe: worker_exe(),
    })
    .await
    .expect("scale benchmark");
    println!("{r}");
    assert_eq!(
        r.inflight_at_end, 100,
        "nothing may finish or fail during the window"
    );
    assert!(r.worker_rss_kib > 0 && r.worker_peak_rss_kib >= r.worker_rss_kib);
    assert!(r.memory_per_queued > 0.0);
    assert!(r.memory_per_inflight > 0.0);
    assert!(r.redis_commands_per_s > 0.0, "the tasks are being polled");
}
