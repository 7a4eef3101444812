//! The error classes every vendor error is mapped into (DESIGN.md), and what motionq does with each.
//!
//! The class is decided by the vendor adapter from the vendor's own code, never from the HTTP status
//! alone (Kling answers 429 for an empty wallet, Novita 403). Everything downstream (retries, key
//! parking, metrics labels, reports) reads only the class.

use serde::{Deserialize, Serialize};

/// What went wrong, in terms of what the caller must do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The request itself is wrong (bad field, unsupported input). Never retried.
    InvalidRequest,
    /// The API key is missing, malformed, disabled or unknown. Never retried; the key is parked
    /// until an operator un-parks it.
    Auth,
    /// The key may not use this model/endpoint (or its IP is not allowed). Never retried on this key.
    Forbidden,
    /// The task or model does not exist. Never retried.
    NotFound,
    /// The account's balance is too low. The key is parked until an operator acts; the job waits.
    InsufficientFunds,
    /// A spend cap, daily cap or resource pack is used up. The key is parked until its window
    /// resets; the job waits.
    QuotaExhausted,
    /// Too many requests. Retried later; the key's rate is lowered for every worker.
    RateLimited,
    /// 5xx, timeouts, resets, malformed bodies. Retried with exponential backoff.
    UpstreamTransient,
    /// The task failed because of its content. Terminal; vendors refund the charge.
    ContentPolicy,
}

impl ErrorClass {
    /// All classes, in a stable order (metrics pre-register one series per class).
    pub const ALL: [ErrorClass; 9] = [
        ErrorClass::InvalidRequest,
        ErrorClass::Auth,
        ErrorClass::Forbidden,
        ErrorClass::NotFound,
        ErrorClass::InsufficientFunds,
        ErrorClass::QuotaExhausted,
        ErrorClass::RateLimited,
        ErrorClass::UpstreamTransient,
        ErrorClass::ContentPolicy,
    ];

    /// The label value used in metrics, logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::InvalidRequest => "invalid_request",
            ErrorClass::Auth => "auth",
            ErrorClass::Forbidden => "forbidden",
            ErrorClass::NotFound => "not_found",
            ErrorClass::InsufficientFunds => "insufficient_funds",
            ErrorClass::QuotaExhausted => "quota_exhausted",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::UpstreamTransient => "upstream_transient",
            ErrorClass::ContentPolicy => "content_policy",
        }
    }

    /// Whether the same request may be sent again (possibly after waiting or on another key).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::RateLimited
                | ErrorClass::UpstreamTransient
                | ErrorClass::QuotaExhausted
                | ErrorClass::InsufficientFunds
        )
    }

    /// Whether the key that produced this error must stop being used (parked).
    pub fn parks_key(self) -> bool {
        matches!(
            self,
            ErrorClass::Auth
                | ErrorClass::Forbidden
                | ErrorClass::InsufficientFunds
                | ErrorClass::QuotaExhausted
        )
    }

    /// Whether waiting for this error counts as a failed attempt. Waiting for capacity (rate
    /// limits, parked keys) does not: only real failures consume the attempt budget.
    pub fn counts_as_attempt(self) -> bool {
        matches!(self, ErrorClass::UpstreamTransient)
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown error class `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for c in ErrorClass::ALL {
            assert_eq!(c.as_str().parse::<ErrorClass>().unwrap(), c);
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert!("rate-limited".parse::<ErrorClass>().is_err());
    }

    #[test]
    fn never_retried_classes() {
        for c in [
            ErrorClass::InvalidRequest,
            ErrorClass::Auth,
            ErrorClass::Forbidden,
            ErrorClass::NotFound,
            ErrorClass::ContentPolicy,
        ] {
            assert!(!c.is_retryable(), "{c}");
        }
        assert!(ErrorClass::RateLimited.is_retryable());
        assert!(!ErrorClass::RateLimited.counts_as_attempt());
    }
}
