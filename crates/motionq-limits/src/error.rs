//! The one error type of this crate.

/// What went wrong talking to the limiter. A *limit* being reached is never an error: it is a
/// [`Decision`](crate::Decision), [`SlotDecision`](crate::SlotDecision) or
/// [`ReserveOutcome`](crate::ReserveOutcome).
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    /// Redis failed or could not be reached. Retried by the caller with backoff; every script
    /// is atomic, so a failed call changed either everything or nothing, and every call is
    /// idempotent per holder / reservation id, so a retry is safe.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The configuration is wrong. Never retried: fix the config.
    #[error("limits config: {field}: {message}")]
    InvalidConfig {
        /// The offending field, e.g. `limits.keys."evolink/main".create_burst`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A call was given a bad argument (bad id, cost above burst). Never retried.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The key has no `[limits.keys."<key>"]` entry. Never retried: configure the key.
    #[error("key `{0}` has no configured limits")]
    UnknownKey(String),
    /// settle/release/commit of a reservation that does not exist (never reserved, or its
    /// record expired after `record_ttl_s`). Never retried.
    #[error("reservation `{0}` does not exist")]
    UnknownReservation(String),
    /// A script answered something this version does not understand (scripts and code out of
    /// step). Never retried: a bug.
    #[error("unexpected reply from limits script {script}: {detail}")]
    Protocol {
        /// Script name.
        script: &'static str,
        /// What was wrong.
        detail: String,
    },
}
