//! Collect errors and their retry classes.
//!
//! One collect call makes one attempt; the collect stage decides whether to try again from
//! [`CollectError::class`]. That mapping lives here, and only here.

use std::time::{Duration, SystemTime};

use crate::storage::StorageError;

/// What the collect stage does with a failed attempt. Also the `error_class` metric label
/// ([`ErrorClass::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The download failed in a way that may not happen again (network, 5xx, truncated or
    /// corrupt body). Retried with backoff while the link is valid.
    Transient,
    /// The output link has expired. Terminal: the job is marked `expired`; only a
    /// resubmission (which costs money again) can produce a new output.
    Expired,
    /// The output exceeds the configured size cap. Terminal.
    TooLarge,
    /// Object storage failed. Retried with backoff (the download is repeated).
    Storage,
    /// The request or the vendor's answer can never succeed (bad id or URL, unexpected
    /// 4xx). Terminal.
    Invalid,
}

impl ErrorClass {
    /// Whether the collect stage should retry (with backoff) after this class.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Transient | ErrorClass::Storage)
    }

    /// Stable lower-case name for metrics and job records.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Expired => "expired",
            ErrorClass::TooLarge => "too_large",
            ErrorClass::Storage => "storage",
            ErrorClass::Invalid => "invalid",
        }
    }
}

/// Why one collect attempt failed. Whatever the variant, nothing was left at the object key
/// by this attempt (see the crate docs). Source URLs in messages are shown without their
/// query string, which for signed links holds the signature.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A request field is unusable (`field` names it). Class `Invalid`: never retried.
    #[error("invalid collect request: {field}: {reason}")]
    InvalidRequest {
        /// `campaign`, `job_id`, `url` or `sidecar`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The link expired: `expires_at` had passed before the attempt started, or the source
    /// answered 410, or 403/404 after `expires_at`. Class `Expired`: never retried.
    #[error("output link {url} expired{}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Expired {
        /// Redacted source URL.
        url: String,
        /// The HTTP status, `None` when the attempt was not made because `expires_at` passed.
        status: Option<u16>,
        /// The expiry the pipeline recorded, if any.
        expires_at: Option<SystemTime>,
    },
    /// The source answered a status other than 200 that is not an expiry. Class `Transient`
    /// for 408, 425, 429, 5xx and 403/404 before the link's expiry (CDNs can lag behind the
    /// vendor's "done"); class `Invalid` (never retried) for any other status.
    #[error("source {url} answered HTTP {status}")]
    Status {
        /// Redacted source URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Whether it is retried (decided when the status was seen).
        retryable: bool,
    },
    /// The request could not be made or the response headers did not arrive (connection
    /// refused or reset, DNS, TLS, request timeout). Class `Transient`: retried.
    #[error("request to {url} failed: {source}")]
    Request {
        /// Redacted source URL.
        url: String,
        /// The HTTP client's error (URL stripped).
        #[source]
        source: reqwest::Error,
    },
    /// The body ended before `Content-Length` bytes arrived. Class `Transient`: retried.
    #[error("body of {url} truncated: {received} of {expected} bytes")]
    Truncated {
        /// Redacted source URL.
        url: String,
        /// `Content-Length`.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The connection failed while the body was streaming (reset, HTTP/2 stream error,
    /// the overall `request_timeout`). Class `Transient`: retried.
    #[error("body of {url} interrupted after {received} bytes: {source}")]
    Interrupted {
        /// Redacted source URL.
        url: String,
        /// Bytes received before the failure.
        received: u64,
        /// The HTTP client's error (URL stripped).
        #[source]
        source: reqwest::Error,
    },
    /// No body bytes arrived for `idle` (a stalled server). Class `Transient`: retried.
    #[error("body of {url} stalled: no data for {idle:?} after {received} bytes")]
    Stalled {
        /// Redacted source URL.
        url: String,
        /// The configured idle timeout.
        idle: Duration,
        /// Bytes received before the stall.
        received: u64,
    },
    /// The body is not an MP4 (no `ftyp` box at offset 4), e.g. an HTML error page served
    /// with 200. Class `Transient`: retried (vendors do serve such pages transiently); the
    /// stage's attempt cap ends a permanently broken output.
    #[error("body of {url} is not an MP4: {reason}")]
    Corrupt {
        /// Redacted source URL.
        url: String,
        /// What was found instead.
        reason: String,
    },
    /// The bytes received do not match a digest the source announced (`Repr-Digest`,
    /// `Content-MD5`, ...): altered in transit. Class `Transient`: retried.
    #[error("bytes received from {url} do not match its {digest} digest (announced {announced}, received {received})")]
    DigestMismatch {
        /// Redacted source URL.
        url: String,
        /// `<header> <algorithm>`, e.g. `repr-digest sha-256`.
        digest: String,
        /// The announced digest, hex.
        announced: String,
        /// The digest of the bytes received, hex.
        received: String,
    },
    /// The output is larger than `max_bytes` (by `Content-Length`, or counted while
    /// streaming, when the download is stopped at once). Class `TooLarge`: never retried.
    #[error("output {url} exceeds the {limit}-byte cap ({size} bytes{})", if *.declared { " declared" } else { " received so far" })]
    TooLarge {
        /// Redacted source URL.
        url: String,
        /// The configured cap.
        limit: u64,
        /// The declared size or the bytes received when the cap was passed.
        size: u64,
        /// Whether `size` is the declared `Content-Length`.
        declared: bool,
    },
    /// Object storage failed (starting, writing, completing the upload, the sidecar, or the
    /// existence check). Class `Storage`: retried.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl CollectError {
    /// The retry class of this error (see [`ErrorClass`]).
    pub fn class(&self) -> ErrorClass {
        match self {
            CollectError::InvalidRequest { .. } => ErrorClass::Invalid,
            CollectError::Expired { .. } => ErrorClass::Expired,
            CollectError::Status { retryable, .. } => {
                if *retryable {
                    ErrorClass::Transient
                } else {
                    ErrorClass::Invalid
                }
            }
            CollectError::Request { .. }
            | CollectError::Truncated { .. }
            | CollectError::Interrupted { .. }
            | CollectError::Stalled { .. }
            | CollectError::Corrupt { .. }
            | CollectError::DigestMismatch { .. } => ErrorClass::Transient,
            CollectError::TooLarge { .. } => ErrorClass::TooLarge,
            CollectError::Storage(_) => ErrorClass::Storage,
        }
    }

    /// Shorthand for `self.class().is_retryable()`.
    pub fn is_retryable(&self) -> bool {
        self.class().is_retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_labels() {
        let e = CollectError::Status {
            url: "u".into(),
            status: 503,
            retryable: true,
        };
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.is_retryable());
        let e = CollectError::TooLarge {
            url: "u".into(),
            limit: 1,
            size: 2,
            declared: true,
        };
        assert_eq!(e.class(), ErrorClass::TooLarge);
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("2 bytes declared"), "{e}");
        let e = CollectError::Expired {
            url: "u".into(),
            status: Some(410),
            expires_at: None,
        };
        assert_eq!(e.class().as_str(), "expired");
        assert!(e.to_string().contains("HTTP 410"));
        assert!(!ErrorClass::Invalid.is_retryable());
        assert!(ErrorClass::Storage.is_retryable());
    }
}
