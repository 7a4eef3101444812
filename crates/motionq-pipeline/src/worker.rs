//! [`run_worker`]: one queue worker per enabled stage (apalis, through
//! [`motionq_queue::runtime`]), plus the feeder loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use motionq_config::Config;
use motionq_metrics::{Stage, StageOutcome};
use motionq_queue::runtime::{
    run_stage_workers, AbortError, BoxDynError, DeferredError, Handler, StageWorker,
};

use crate::pipeline::{Pipeline, PipelineOptions, StageJob};

/// Which stages this process runs (`motionq worker --stages submit,poll,collect,feeder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    pub submit: bool,
    pub poll: bool,
    pub collect: bool,
    pub feeder: bool,
}

impl Stages {
    /// Every stage.
    pub const ALL: Stages = Stages {
        submit: true,
        poll: true,
        collect: true,
        feeder: true,
    };

    /// Parses `submit,poll,collect,feeder` (any subset; `all` for every stage). The error
    /// names the unknown stage.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut st = Stages {
            submit: false,
            poll: false,
            collect: false,
            feeder: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "submit" => st.submit = true,
                "poll" => st.poll = true,
                "collect" => st.collect = true,
                "feeder" => st.feeder = true,
                "all" => st = Stages::ALL,
                other => {
                    return Err(format!(
                        "unknown stage `{other}` (expected submit, poll, collect, feeder or all)"
                    ))
                }
            }
        }
        if st
            == (Stages {
                submit: false,
                poll: false,
                collect: false,
                feeder: false,
            })
        {
            return Err("--stages names no stage".into());
        }
        Ok(st)
    }
}

/// How [`run_worker`] runs.
#[derive(Clone)]
pub struct WorkerOptions {
    /// Where to record metrics (the catalogue the binary serves on `/metrics`); `None`: a
    /// private catalogue nobody reads.
    pub metrics: Option<motionq_metrics::Metrics>,
    /// Stages to run.
    pub stages: Stages,
    /// Concurrent jobs per stage; `None` takes `[worker]` from the config.
    pub submit_concurrency: Option<usize>,
    pub poll_concurrency: Option<usize>,
    pub collect_concurrency: Option<usize>,
    /// Stage timing (poll intervals, feeder, sweep, locks).
    pub pipeline: PipelineOptions,
    /// How long a graceful stop waits for running jobs before giving up on them (they are
    /// redelivered to another worker after the queue's claim time).
    pub shutdown_timeout: Duration,
}

impl std::fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("stages", &self.stages)
            .field("pipeline", &self.pipeline)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            metrics: None,
            stages: Stages::ALL,
            submit_concurrency: None,
            poll_concurrency: None,
            collect_concurrency: None,
            pipeline: PipelineOptions::default(),
            shutdown_timeout: Duration::from_secs(60),
        }
    }
}

/// A stage handler over the shared pipeline; every run is timed by outcome
/// (`motionq_stage_duration_seconds{stage, outcome}`).
fn handler<F, Fut>(p: &Arc<Pipeline>, stage: Stage, f: F) -> Handler<StageJob>
where
    F: Fn(Arc<Pipeline>, StageJob, motionq_queue::Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxDynError>> + Send + 'static,
{
    let p = p.clone();
    let f = Arc::new(f);
    Arc::new(move |job, d| {
        let (p, f) = (p.clone(), f.clone());
        Box::pin(async move {
            let started = std::time::Instant::now();
            let r = f(p.clone(), job, d).await;
            p.metrics
                .stage_run(stage, stage_outcome(&r), started.elapsed());
            r
        })
    })
}

/// How the queue treats a handler's result (see `motionq_queue::runtime`).
fn stage_outcome(r: &Result<(), BoxDynError>) -> StageOutcome {
    match r {
        Ok(()) => StageOutcome::Done,
        Err(e) if e.downcast_ref::<DeferredError>().is_some() => StageOutcome::Deferred,
        Err(e) if e.downcast_ref::<AbortError>().is_some() => StageOutcome::Failed,
        Err(_) => StageOutcome::Retried,
    }
}

/// Runs the feeder and sweep loop until `stop` resolves.
pub async fn run_feeder(p: Arc<Pipeline>, stop: impl Future<Output = ()>) {
    let mut stop = std::pin::pin!(stop);
    let mut rotation = 0usize;
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        let round_start = tokio::time::Instant::now();
        match p.feed_round(rotation).await {
            // The next round starts where this one's round robin stopped: advancing by the jobs
            // admitted (not by one per round) keeps the turn order fair when each round has
            // room for only a few jobs, e.g. one freed slot a round would otherwise go to the
            // same campaign whenever rounds and freed slots fall into step.
            Ok(r) if r.ran => {
                let admitted: u64 = r.admitted.values().sum();
                rotation = rotation.wrapping_add(admitted as usize);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "feeder round failed; retrying"),
        }
        if last_sweep.elapsed() >= p.opts.sweep_interval {
            last_sweep = tokio::time::Instant::now();
            if let Err(e) = p.sweep().await {
                tracing::warn!(error = %e, "sweep failed; retrying next interval");
            }
        }
        // The next round after `feeder_interval`, or sooner when a vendor task of this
        // process ended with no job waiting for its slot, but never within a tenth of the
        // interval of the last round: nudges come at the completion rate.
        let earliest = round_start + p.opts.feeder_interval / 10;
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep_until(round_start + p.opts.feeder_interval) => {}
            _ = async {
                p.feeder_nudge.notified().await;
                tokio::time::sleep_until(earliest).await;
            } => {}
        }
    }
}

/// Runs the enabled stages until `shutdown` resolves, then stops gracefully: no new jobs are
/// taken, running ones finish (up to `shutdown_timeout`), fetched but unstarted ones go back
/// to their queue.
pub async fn run_worker(
    cfg: &Config,
    opts: WorkerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut pipeline = Pipeline::connect(cfg, opts.pipeline.clone()).await?;
    if let Some(m) = &opts.metrics {
        pipeline = pipeline.with_metrics(m.clone());
    }
    if opts.stages.collect {
        if let Some(collector) = &pipeline.collector {
            // Uploads cut by a killed worker leave staging files (local stores); the
            // collector's request timeout bounds how long a live upload can take.
            let older = collector.options().request_timeout * 2;
            match collector.storage().remove_stale_staging(older).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    files = n,
                    "removed stale staging files of interrupted uploads"
                ),
                Err(e) => tracing::warn!(error = %e, "could not clean stale staging files"),
            }
        }
    }
    let p = Arc::new(pipeline);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let feeder = opts.stages.feeder.then(|| {
        let p = p.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(run_feeder(p, async move {
            let _ = rx.wait_for(|s| *s).await;
        }))
    });
    let collect_feed = opts.stages.collect.then(|| {
        let p = p.clone();
        let mut rx = stop_rx.clone();
        let n = opts
            .collect_concurrency
            .unwrap_or(cfg.worker.collect_concurrency)
            .max(1);
        tokio::spawn(run_collect_feed(p, n, async move {
            let _ = rx.wait_for(|s| *s).await;
        }))
    });
    let workers = opts.stages.submit || opts.stages.poll || opts.stages.collect;
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        Ok::<(), std::io::Error>(())
    };
    if workers {
        let wc = &cfg.worker;
        let mut stages = Vec::new();
        if opts.stages.submit {
            stages.push(StageWorker {
                name: "motionq-submit".into(),
                queue: p.submit_q.clone(),
                concurrency: opts
                    .submit_concurrency
                    .unwrap_or(wc.submit_concurrency)
                    .max(1),
                handler: handler(&p, Stage::Submit, |p, job, d| async move {
                    crate::submit::handle(&p, job, d).await
                }),
            });
        }
        if opts.stages.poll {
            stages.push(StageWorker {
                name: "motionq-poll".into(),
                queue: p.poll_q.clone(),
                concurrency: opts.poll_concurrency.unwrap_or(wc.poll_concurrency).max(1),
                handler: handler(&p, Stage::Poll, |p, job, d| async move {
                    crate::poll::handle(&p, job, d).await
                }),
            });
        }
        if opts.stages.collect {
            stages.push(StageWorker {
                name: "motionq-collect".into(),
                queue: p.collect_q.clone(),
                concurrency: opts
                    .collect_concurrency
                    .unwrap_or(wc.collect_concurrency)
                    .max(1),
                handler: handler(&p, Stage::Collect, |p, job, d| async move {
                    crate::collect::handle(&p, job, d).await
                }),
            });
        }
        run_stage_workers(stages, opts.shutdown_timeout, signal).await?;
    } else {
        let _ = signal.await;
    }
    if let Some(f) = feeder {
        let _ = f.await;
    }
    if let Some(f) = collect_feed {
        let _ = f.await;
    }
    Ok(())
}

/// Feeds this process's collectors from the collect backlog, earliest link expiry first,
/// until `stop` resolves.
pub async fn run_collect_feed(
    p: Arc<Pipeline>,
    concurrency: usize,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let moved = match p.feed_collect_round(concurrency).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "collect feed round failed; retrying");
                0
            }
        };
        // Busy: look again at once; idle: a short nap (collection latency, not correctness).
        let nap = if moved > 0 {
            Duration::from_millis(20)
        } else {
            Duration::from_millis(200)
        };
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse() {
        assert_eq!(Stages::parse("all").unwrap(), Stages::ALL);
        let s = Stages::parse("submit, poll").unwrap();
        assert!(s.submit && s.poll && !s.collect && !s.feeder);
        assert!(Stages::parse("submit,bogus").unwrap_err().contains("bogus"));
        assert!(Stages::parse("").is_err());
    }
}
