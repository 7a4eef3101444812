//! The apalis runtime behind motionq's names, so that the crates composing workers (the
//! pipeline, the binary) never name apalis types: a stage is a [`StreamQueue`], a concurrency
//! and a handler `async fn(job, Delivery) -> Result<(), BoxDynError>`; [`run_stage_workers`]
//! registers one apalis worker per stage on a `Monitor` and runs it until the signal, then
//! drains gracefully (running jobs finish within the shutdown timeout, prefetched ones go back
//! to their queue).
//!
//! The error types a handler returns are apalis-core's, re-exported here because this backend's
//! ack layer gives them their meaning: [`DeferredError`] waits without counting an attempt,
//! [`RetryAfterError`] sets a minimum retry delay (a vendor's `Retry-After`), [`AbortError`]
//! dead-letters at once, and any other error is retried per [`QueueConfig::retry`].
//!
//! [`QueueConfig::retry`]: crate::QueueConfig

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis::prelude::{Data, Monitor, WorkerBuilder};
use serde::de::DeserializeOwned;

pub use apalis_core::error::{AbortError, BoxDynError, DeferredError, RetryAfterError};

use crate::{Delivery, StreamQueue};

/// What a stage handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), BoxDynError>> + Send>>;

/// A stage handler: one delivery of one job.
pub type Handler<T> = Arc<dyn Fn(T, Delivery) -> HandlerFuture + Send + Sync>;

/// One stage of a worker process: its queue, how many jobs run at once, and the handler.
pub struct StageWorker<T> {
    /// Worker name (the consumer identity adds host, pid and a random suffix per start).
    pub name: String,
    /// The stage's queue.
    pub queue: StreamQueue<T>,
    /// Jobs handled at once (keep the queue's `prefetch` at least this).
    pub concurrency: usize,
    /// The handler.
    pub handler: Handler<T>,
}

/// The error of a worker run.
#[derive(Debug, thiserror::Error)]
#[error("worker runtime: {0}")]
pub struct RuntimeError(String);

async fn dispatch<T: Send + 'static>(
    job: T,
    d: Delivery,
    h: Data<Handler<T>>,
) -> Result<(), BoxDynError> {
    (h)(job, d).await
}

/// Runs every stage until `signal` resolves, then drains them: running jobs get up to
/// `shutdown_timeout` to finish; prefetched jobs go back to their queue.
pub async fn run_stage_workers<T>(
    stages: Vec<StageWorker<T>>,
    shutdown_timeout: Duration,
    signal: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> Result<(), RuntimeError>
where
    T: DeserializeOwned + Send + Sync + Unpin + 'static,
{
    let mut monitor = Monitor::new().shutdown_timeout(shutdown_timeout);
    for s in stages {
        let StageWorker {
            name,
            queue,
            concurrency,
            handler,
        } = s;
        monitor = monitor.register(move |_restarts| {
            WorkerBuilder::new(name.clone())
                .backend(queue.clone())
                .data(handler.clone())
                .concurrency(concurrency.max(1))
                .build(dispatch::<T>)
        });
    }
    monitor
        .run_with_signal(signal)
        .await
        .map_err(|e| RuntimeError(e.to_string()))
}
