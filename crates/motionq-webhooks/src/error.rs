//! Errors of the intake: start-up refusals ([`WebhookError`]) and per-delivery rejections
//! ([`Rejection`]). Neither ever carries a token, a secret or a request body.

use std::fmt;

use axum::http::StatusCode;

/// Why the intake cannot start (or be built). Never retried: the operator must fix the
/// configuration or the environment. Messages name the config key or env var, never its value.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// `webhooks.token_env` is not set, or the variable it names is missing or empty.
    #[error("webhook path token: {0}")]
    MissingToken(String),
    /// The token is too short or has characters that do not fit a URL path segment.
    #[error("webhook path token: {0}")]
    WeakToken(String),
    /// `webhooks.freepik_secret_env` names a variable that is missing, or its value is not a
    /// usable Standard-Webhooks secret.
    #[error("Freepik webhook secret: {0}")]
    BadSecret(String),
    /// Any other unusable setting (listen address, queue settings); the message names it.
    #[error("webhooks config: {0}")]
    Config(String),
    /// The pipeline's Redis context could not be set up. Not retried here; `motionq serve`
    /// exits and its supervisor restarts it.
    #[error(transparent)]
    Pipeline(#[from] motionq_pipeline::PipelineError),
}

/// Why a Standard-Webhooks signature was refused (Freepik). Answered `401`; the vendor retries
/// with backoff, which is harmless (and useless for a forged delivery).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A required header (`webhook-id`, `webhook-timestamp`, `webhook-signature`) is missing,
    /// empty, not ASCII or absurdly long.
    #[error("header `{0}` is missing or unusable")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a Unix time in seconds.
    #[error("`webhook-timestamp` is not an integer Unix time")]
    BadTimestamp,
    /// The timestamp is older than the tolerance (a replay of a captured delivery, or a
    /// receiver clock far ahead).
    #[error("`webhook-timestamp` is {age_s} s old; the tolerance is {tolerance_s} s")]
    Stale { age_s: u64, tolerance_s: u64 },
    /// The timestamp lies further in the future than the tolerance.
    #[error("`webhook-timestamp` is {ahead_s} s in the future; the tolerance is {tolerance_s} s")]
    Future { ahead_s: u64, tolerance_s: u64 },
    /// No `v1,<base64>` entry of `webhook-signature` matches the body.
    #[error("no `v1` signature matches")]
    NoMatch,
    /// No secret is configured for this vendor, so nothing can be verified.
    #[error("no signing secret is configured (webhooks.freepik_secret_env)")]
    NoSecret,
}

/// Why a delivery was refused: the HTTP status it gets and a short reason for the log line
/// and the response body. Built only from fixed texts and our own error types, never from
/// the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The answer's status (`400`, `401`, `404`, `413`, `503`).
    pub status: StatusCode,
    /// Fixed, bounded reason.
    pub reason: String,
}

impl Rejection {
    pub(crate) fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        let mut reason: String = reason.into();
        if reason.len() > 300 {
            let mut cut = 300;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        Self { status, reason }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.reason)
    }
}
