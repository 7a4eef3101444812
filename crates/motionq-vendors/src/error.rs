//! The two error types of this crate: [`AdapterError`] (a job the vendor cannot express, found
//! before any request is sent) and [`VendorError`] (anything that went wrong talking to the vendor,
//! already classified into an [`ErrorClass`]).

use std::time::Duration;

use motionq_core::{ErrorClass, Vendor};

/// Longest vendor error code kept (vendor codes are short identifiers; anything longer is noise
/// that must not become an unbounded log field).
pub const MAX_CODE_CHARS: usize = 64;
/// [`VendorError::code`] of a create refused because its idempotency key was already used.
pub const DUPLICATE_SUBMISSION: &str = "duplicate_submission";

/// Longest error message kept.
pub const MAX_MESSAGE_CHARS: usize = 512;

/// A job that this vendor cannot run as asked, detected while building the create request: no
/// request is sent and nothing is spent. Its class is always [`ErrorClass::InvalidRequest`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdapterError {
    /// The vendor's API has no way to express this field (e.g. `cfg_scale` on EvoLink, a base64
    /// image on Freepik). Never retried on this vendor; another vendor may accept the job.
    #[error("{vendor} cannot express `{field}`: {reason}")]
    Unsupported {
        /// The vendor whose API lacks the feature.
        vendor: Vendor,
        /// The [`motionq_core::JobSpec`] field at fault.
        field: &'static str,
        /// Why, in words an operator can act on.
        reason: String,
    },
    /// The field is expressible but its value is outside what the vendor accepts (prompt too
    /// long, `cfg_scale` out of 0..=1, reference video too long for the orientation). Never
    /// retried.
    #[error("{vendor} rejects `{field}`: {reason}")]
    Invalid {
        /// The vendor whose limit is broken.
        vendor: Vendor,
        /// The [`motionq_core::JobSpec`] field at fault.
        field: &'static str,
        /// The limit and the value that broke it.
        reason: String,
    },
}

impl AdapterError {
    /// The job field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            AdapterError::Unsupported { field, .. } | AdapterError::Invalid { field, .. } => field,
        }
    }

    /// Always [`ErrorClass::InvalidRequest`]: the job must change before any vendor call.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::InvalidRequest
    }
}

impl From<AdapterError> for VendorError {
    fn from(e: AdapterError) -> Self {
        VendorError::new(ErrorClass::InvalidRequest, e.to_string())
            .with_code(Some(format!("unsupported_{}", e.field())))
    }
}

/// A classified failure of one vendor call. What the caller does depends only on
/// [`VendorError::class`] (see [`ErrorClass`] for which classes are retried); the other fields are
/// for logs, reports and backoff.
///
/// `message` never contains an API key: the vendor's text is bounded to [`MAX_MESSAGE_CHARS`] and
/// [`crate::VendorClient`] scrubs its own key out of it before returning.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{class}{}{}: {message}", .http_status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(), .code.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default())]
pub struct VendorError {
    /// What the caller must do (retry, park the key, fail the job).
    pub class: ErrorClass,
    /// The HTTP status, when an answer arrived.
    pub http_status: Option<u16>,
    /// The vendor's own error code (`insufficient_quota`, `1102`, `NOT_ENOUGH_BALANCE`, ...), or
    /// one of ours prefixed `transport_` / `malformed_` / `unsupported_`; at most
    /// [`MAX_CODE_CHARS`] characters.
    pub code: Option<String>,
    /// Human-readable reason, at most [`MAX_MESSAGE_CHARS`] characters.
    pub message: String,
    /// The vendor's `Retry-After` hint, when it sent one (none of the five documents one).
    pub retry_after: Option<Duration>,
}

impl VendorError {
    /// A new error of `class` with `message` (bounded).
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        VendorError {
            class,
            http_status: None,
            code: None,
            message: bound(&message.into(), MAX_MESSAGE_CHARS),
            retry_after: None,
        }
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Sets the vendor code (bounded).
    pub fn with_code(mut self, code: Option<String>) -> Self {
        self.code = code
            .filter(|c| !c.trim().is_empty())
            .map(|c| bound(c.trim(), MAX_CODE_CHARS));
        self
    }

    /// Sets the retry hint.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Whether the vendor may have created (and will charge for) a task although this create
    /// call failed, so the submit stage must reconcile before sending it again.
    ///
    /// `false` only when the request provably did not create anything: it was never sent
    /// (`transport_connect`, `unsupported_*`) or the vendor answered with a 4xx (a refusal).
    /// Timeouts, resets, 5xx answers and malformed 2xx bodies are `true`: the vendor may have
    /// accepted the task before the failure. A [duplicate submission](Self::is_duplicate_submission)
    /// is `true` as well: the earlier task exists.
    pub fn may_have_created_task(&self) -> bool {
        let code = self.code.as_deref().unwrap_or("");
        if code == DUPLICATE_SUBMISSION {
            return true;
        }
        if code == "transport_connect" || code.starts_with("unsupported_") {
            return false;
        }
        !matches!(self.http_status, Some(s) if (400..500).contains(&s))
    }

    /// Whether the vendor refused the create call because a task with the same idempotency key
    /// already exists (KKIAI/Kling: `external_task_id` already used; code
    /// [`DUPLICATE_SUBMISSION`]). The class stays `invalid_request` (sending it again cannot
    /// succeed), but the task exists and will be charged: look it up with
    /// `find_by_idempotency_key` and adopt it instead of failing the job.
    pub fn is_duplicate_submission(&self) -> bool {
        self.code.as_deref() == Some(DUPLICATE_SUBMISSION)
    }

    /// Replaces every occurrence of `secret` in the message and code with `[REDACTED]`.
    pub(crate) fn scrub(mut self, secret: &str) -> Self {
        if secret.len() >= 4 {
            if self.message.contains(secret) {
                self.message = self.message.replace(secret, "[REDACTED]");
            }
            if let Some(c) = &self.code {
                if c.contains(secret) {
                    self.code = Some(c.replace(secret, "[REDACTED]"));
                }
            }
        }
        self
    }
}

/// Truncates to `max` characters (not bytes, so UTF-8 stays valid) and replaces control
/// characters, so a vendor's text can go into logs as one line.
pub(crate) fn bound(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_class_status_and_code() {
        let e = VendorError::new(ErrorClass::RateLimited, "slow down")
            .with_status(429)
            .with_code(Some("1302".into()));
        assert_eq!(e.to_string(), "rate_limited (HTTP 429) [1302]: slow down");
    }

    #[test]
    fn bounds_code_and_message() {
        let e = VendorError::new(ErrorClass::UpstreamTransient, "x".repeat(10_000))
            .with_code(Some("c".repeat(1000)));
        assert_eq!(e.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(e.code.unwrap().chars().count(), MAX_CODE_CHARS + 1);
        assert_eq!(bound("a\nb", 10), "a b");
    }

    #[test]
    fn scrub_removes_the_key() {
        let e = VendorError::new(ErrorClass::Auth, "key sk-secret-123 is invalid")
            .with_code(Some("sk-secret-123".into()))
            .scrub("sk-secret-123");
        assert!(!e.message.contains("sk-secret-123"));
        assert!(!e.code.unwrap().contains("sk-secret-123"));
    }

    #[test]
    fn which_failures_may_have_created_a_task() {
        let base = VendorError::new(ErrorClass::UpstreamTransient, "x");
        assert!(base.clone().with_status(503).may_have_created_task());
        assert!(base
            .clone()
            .with_code(Some("transport_timeout".into()))
            .may_have_created_task());
        assert!(!base
            .clone()
            .with_code(Some("transport_connect".into()))
            .may_have_created_task());
        assert!(!VendorError::new(ErrorClass::RateLimited, "x")
            .with_status(429)
            .may_have_created_task());
        let dup = VendorError::new(ErrorClass::InvalidRequest, "x")
            .with_status(400)
            .with_code(Some(DUPLICATE_SUBMISSION.into()));
        assert!(dup.is_duplicate_submission());
        assert!(dup.may_have_created_task());
        let adapter: VendorError = AdapterError::Unsupported {
            vendor: Vendor::Freepik,
            field: "image",
            reason: "base64".into(),
        }
        .into();
        assert_eq!(adapter.class, ErrorClass::InvalidRequest);
        assert!(!adapter.may_have_created_task());
    }
}
