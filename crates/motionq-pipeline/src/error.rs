//! The pipeline's error type.

/// What went wrong outside a vendor's answer (vendor errors are decided by class inside the
/// stages and never surface as this type).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Redis failed. Inside a stage: the job's message is retried by the queue with backoff
    /// (every step is idempotent against the job record).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis could not be reached or configured at start. Not retried: `run_worker` returns it.
    #[error(transparent)]
    Connect(#[from] motionq_store::ConnectError),
    /// The record store failed (Redis, or a corrupt record). Retried like `Redis`.
    #[error(transparent)]
    Store(#[from] motionq_store::StoreError),
    /// The limiter failed (Redis) or was given bad input. Retried like `Redis`.
    #[error(transparent)]
    Limits(#[from] motionq_limits::LimitsError),
    /// A queue operation failed. Retried like `Redis`.
    #[error(transparent)]
    Queue(#[from] motionq_queue::QueueError),
    /// The configuration is unusable; the message names the section or key. Never retried.
    #[error("config: {0}")]
    Config(String),
}
