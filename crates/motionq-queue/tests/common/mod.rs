//! Helpers shared by the queue tests: config for a private Redis, a recording handler, and a
//! worker that can be stopped gracefully.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apalis::prelude::*;
use motionq_config::RedisConfig;
use motionq_queue::{Delivery, QueueConfig, StreamQueue};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The test job: `fail_first` runs fail before it succeeds; `abort` fails permanently.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub n: u64,
    #[serde(default)]
    pub fail_first: u32,
    #[serde(default)]
    pub abort: bool,
    #[serde(default)]
    pub retry_after_ms: u64,
    #[serde(default)]
    pub sleep_ms: u64,
    /// The first `defer_first` runs return `DeferredError` (waiting for a limit).
    #[serde(default)]
    pub defer_first: u32,
}

impl Job {
    pub fn new(n: u64) -> Self {
        Self {
            n,
            fail_first: 0,
            abort: false,
            retry_after_ms: 0,
            sleep_ms: 0,
            defer_first: 0,
        }
    }
}

/// One handler run.
#[derive(Debug, Clone)]
pub struct Run {
    pub n: u64,
    pub job_id: String,
    pub attempt: u32,
    pub apalis_attempt: usize,
    pub at: Instant,
    pub ok: bool,
}

/// Everything the handler saw, shared with the test.
#[derive(Clone, Default)]
pub struct Recorder {
    pub runs: Arc<Mutex<Vec<Run>>>,
}

impl Recorder {
    pub fn runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap().clone()
    }
    pub fn succeeded(&self) -> usize {
        self.runs.lock().unwrap().iter().filter(|r| r.ok).count()
    }
    /// Successful runs per job number.
    pub fn ok_counts(&self) -> HashMap<u64, usize> {
        let mut m = HashMap::new();
        for r in self.runs.lock().unwrap().iter().filter(|r| r.ok) {
            *m.entry(r.n).or_insert(0) += 1;
        }
        m
    }
    /// Waits until `pred` holds, up to `limit` (then returns false).
    pub async fn wait_until(&self, limit: Duration, pred: impl Fn(&Recorder) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if pred(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pred(self)
    }
}

pub async fn handler(
    job: Job,
    d: Delivery,
    attempt: Attempt,
    rec: Data<Recorder>,
) -> Result<(), BoxDynError> {
    if job.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(job.sleep_ms)).await;
    }
    // Only counted when asked for: scanning every run per job would make the 100,000-job
    // test quadratic.
    let defer = job.defer_first > 0 && {
        let earlier = rec
            .runs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.n == job.n)
            .count();
        (earlier as u32) < job.defer_first
    };
    let fail = defer || job.abort || d.attempt <= job.fail_first;
    rec.runs.lock().unwrap().push(Run {
        n: job.n,
        job_id: d.job_id.clone(),
        attempt: d.attempt,
        apalis_attempt: attempt.current(),
        at: Instant::now(),
        ok: !fail,
    });
    if defer {
        return Err(DeferredError::new(format!("job {} waits for capacity", job.n)).into());
    }
    if job.abort {
        return Err(AbortError::new(format!("job {} is invalid", job.n)).into());
    }
    if fail {
        let msg = format!("job {} failed on attempt {}", job.n, d.attempt);
        if job.retry_after_ms > 0 {
            return Err(
                RetryAfterError::new(msg, Duration::from_millis(job.retry_after_ms)).into(),
            );
        }
        return Err(msg.into());
    }
    Ok(())
}

pub fn redis_cfg(url: &str) -> RedisConfig {
    RedisConfig {
        url: url.to_string(),
        key_prefix: "t".into(),
        response_timeout_ms: 2_000,
        connect_timeout_ms: 1_000,
        ..Default::default()
    }
}

/// Short intervals so tests run fast; semantics are the same as the defaults.
pub fn fast_cfg() -> QueueConfig {
    QueueConfig {
        block_ms: 500,
        claim_min_idle_ms: 2_000,
        claim_interval_ms: 500,
        refresh_interval_ms: 500,
        promote_interval_ms: 50,
        retry: motionq_core::Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
            max_attempts: 3,
            max_total: Duration::from_secs(60),
        },
        ..Default::default()
    }
}

/// A running worker; `stop()` stops it gracefully and returns its result.
pub struct RunningWorker {
    stop: Option<oneshot::Sender<()>>,
    pub handle: JoinHandle<Result<(), WorkerError>>,
}

impl RunningWorker {
    pub async fn stop(mut self) -> Result<(), WorkerError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.handle.await.expect("worker task panicked")
    }
    pub fn is_running(&self) -> bool {
        !self.handle.is_finished()
    }
}

pub fn start_worker(name: &str, queue: StreamQueue<Job>, rec: &Recorder) -> RunningWorker {
    let (tx, rx) = oneshot::channel::<()>();
    let worker = WorkerBuilder::new(name)
        .backend(queue)
        .data(rec.clone())
        .build(handler);
    let handle = tokio::spawn(worker.run_until(async move {
        let _ = rx.await;
        Ok::<(), std::io::Error>(())
    }));
    RunningWorker {
        stop: Some(tx),
        handle,
    }
}

pub async fn raw_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
