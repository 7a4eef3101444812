//! The backend's middleware: after the handler (and every user layer) has finished with a job,
//! settle it in Redis: acknowledge, schedule a retry with backoff, or dead-letter.
//!
//! apalis places a backend's layer outside the user's layers, so this sees the final outcome
//! (after `.timeout()`, `.catch_panic()`, ...). Outcomes:
//!
//! | handler result | action |
//! |---|---|
//! | `Ok(_)` | `XACK` (+ `XDEL` unless finished entries are kept) |
//! | `Err(AbortError)` | dead letter at once, no retry |
//! | `Err(DeferredError)` | back to the delayed set after `defer_delay_ms`, attempt not counted |
//! | any other `Err` (a `RetryAfterError` duration is a floor for the delay) | `retry.decide(..)`: delayed retry, or dead letter with the error when attempts or total time are used up |

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis_core::error::{AbortError, BoxDynError, DeferredError, RetryAfterError};
use apalis_core::layers::{Layer, Service};
use apalis_core::task::Task;
use futures::future::BoxFuture;
use motionq_core::RetryDecision;

use crate::backend::WorkerCtx;
use crate::envelope::{now_ms, truncate, Delivery};
use crate::queue::with_retry;

/// Settles each job in Redis after it ran. Created by the backend for its worker.
#[derive(Clone)]
pub struct AckLayer {
    ctx: Arc<WorkerCtx>,
}

impl std::fmt::Debug for AckLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckLayer")
            .field("consumer", &self.ctx.consumer)
            .finish()
    }
}

impl AckLayer {
    pub(crate) fn new(ctx: Arc<WorkerCtx>) -> Self {
        Self { ctx }
    }
}

impl<S> Layer<S> for AckLayer {
    type Service = AckService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AckService {
            inner,
            ctx: self.ctx.clone(),
        }
    }
}

/// The service made by [`AckLayer`].
#[derive(Clone)]
pub struct AckService<S> {
    inner: S,
    ctx: Arc<WorkerCtx>,
}

impl<S> std::fmt::Debug for AckService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckService")
            .field("consumer", &self.ctx.consumer)
            .finish()
    }
}

impl<S, Args> Service<Task<Args>> for AckService<S>
where
    S: Service<Task<Args>>,
    S::Error: Into<BoxDynError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<S::Response, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<Args>) -> Self::Future {
        let delivery = task.ctx().data().get::<Delivery>().cloned();
        let fut = self.inner.call(task);
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let res = fut.await.map_err(Into::into);
            if let Some(d) = delivery {
                // Decide synchronously: the response need not be Sync across the await.
                let now = now_ms();
                let outcome = classify(&ctx.shared.cfg, &d, res.as_ref().map(|_| ()), now);
                let error = res.as_ref().err().map(|e| e.to_string());
                settle(&ctx, &d, outcome, error, now).await;
                ctx.held.remove(&d.entry_id);
            }
            res
        })
    }
}

/// What to do with a finished run (pure, unit-tested).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ack,
    /// Retry after the delay; `counts` says whether the run counts as a failed attempt.
    Retry {
        delay: Duration,
        counts: bool,
    },
    Dead,
}

pub(crate) fn classify(
    cfg: &crate::QueueConfig,
    d: &Delivery,
    res: Result<(), &BoxDynError>,
    now: u64,
) -> Outcome {
    let Err(e) = res else {
        return Outcome::Ack;
    };
    if e.downcast_ref::<AbortError>().is_some() {
        return Outcome::Dead;
    }
    if e.downcast_ref::<DeferredError>().is_some() {
        return Outcome::Retry {
            delay: Duration::from_millis(cfg.defer_delay_ms),
            counts: false,
        };
    }
    let hint = e
        .downcast_ref::<RetryAfterError>()
        .map(RetryAfterError::get_duration);
    let failed_before = d.envelope.attempt();
    let first_failed = d.envelope.first_failed_ms.parse::<u64>().unwrap_or(now);
    let elapsed = Duration::from_millis(now.saturating_sub(first_failed));
    match cfg
        .retry
        .decide(failed_before, elapsed, hint, &mut rand::rng())
    {
        RetryDecision::RetryAfter(delay) => Outcome::Retry {
            delay,
            counts: true,
        },
        RetryDecision::GiveUp => Outcome::Dead,
    }
}

async fn settle(ctx: &WorkerCtx, d: &Delivery, outcome: Outcome, error: Option<String>, now: u64) {
    let s = &ctx.shared;
    let error = error.unwrap_or_default();
    let e = &error;
    let result = match outcome {
        Outcome::Ack => {
            let ids = [d.entry_id.as_str()];
            with_retry("ack", || s.ack(&ids)).await.map(|_| true)
        }
        Outcome::Retry { delay, counts } => {
            let mut env = d.envelope.clone();
            if counts {
                env.attempt = (env.attempt() + 1).to_string();
                if env.first_failed_ms.is_empty() {
                    env.first_failed_ms = now.to_string();
                }
                env.last_error = truncate(e);
            }
            tracing::info!(queue = %s.keys.queue, job = %d.job_id, attempt = d.attempt, delay_ms = delay.as_millis() as u64, error = %e, "job failed; retry scheduled");
            with_retry("retry", || s.retry(&ctx.consumer, &d.entry_id, delay, &env)).await
        }
        Outcome::Dead => {
            tracing::warn!(queue = %s.keys.queue, job = %d.job_id, attempt = d.attempt, error = %e, "job dead-lettered");
            let err = e.clone();
            with_retry("dead-letter", || {
                s.dead(
                    &ctx.consumer,
                    &d.entry_id,
                    &d.job_id,
                    &d.envelope.payload,
                    d.attempt,
                    &err,
                )
            })
            .await
        }
    };
    match result {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(queue = %s.keys.queue, job = %d.job_id, entry = %d.entry_id, "job was taken over by another worker before it finished here; leaving it to that worker")
        }
        Err(e) => {
            tracing::error!(queue = %s.keys.queue, job = %d.job_id, error = %e, "could not settle the job in Redis; it stays pending and runs again after claim_min_idle_ms")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use crate::QueueConfig;
    use motionq_core::Backoff;

    fn delivery(attempt: u32, first_failed: &str) -> Delivery {
        let mut env = Envelope::new("j".into(), "{}".into());
        env.attempt = attempt.to_string();
        env.first_failed_ms = first_failed.into();
        Delivery {
            job_id: "j".into(),
            entry_id: "1-0".into(),
            attempt: attempt + 1,
            deliveries: 1,
            enqueued_ms: None,
            envelope: env,
        }
    }

    fn cfg() -> QueueConfig {
        QueueConfig {
            retry: Backoff {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(1),
                max_attempts: 3,
                max_total: Duration::from_secs(60),
            },
            ..Default::default()
        }
    }

    #[test]
    fn classifies_outcomes() {
        let c = cfg();
        let d = delivery(0, "");
        assert_eq!(classify(&c, &d, Ok(()), 0), Outcome::Ack);
        let abort: BoxDynError = Box::new(AbortError::new("bad input"));
        assert_eq!(classify(&c, &d, Err(&abort), 0), Outcome::Dead);
        let deferred: BoxDynError = Box::new(DeferredError::new("no capacity"));
        assert_eq!(
            classify(&c, &d, Err(&deferred), 0),
            Outcome::Retry {
                delay: Duration::from_millis(1000),
                counts: false
            }
        );
        let hint: BoxDynError = Box::new(RetryAfterError::new("429", Duration::from_secs(7)));
        assert_eq!(
            classify(&c, &d, Err(&hint), 0),
            Outcome::Retry {
                delay: Duration::from_secs(7),
                counts: true
            }
        );
        let plain: BoxDynError = "boom".into();
        assert!(matches!(
            classify(&c, &delivery(1, "0"), Err(&plain), 10),
            Outcome::Retry { counts: true, .. }
        ));
        // Third run failed: max_attempts = 3 reached.
        assert_eq!(
            classify(&c, &delivery(2, "0"), Err(&plain), 10),
            Outcome::Dead
        );
        // Out of total time.
        assert_eq!(
            classify(&c, &delivery(0, "0"), Err(&plain), 61_000),
            Outcome::Dead
        );
    }
}
