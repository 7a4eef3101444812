//! Names: which API key ([`KeyId`]), which operation ([`Op`]), why a key is parked
//! ([`ParkReason`]), and where everything lives in Redis ([`KeyLayout`]).

use std::fmt;
use std::str::FromStr;

use motionq_core::{ErrorClass, Vendor};

use crate::error::LimitsError;

/// One vendor API key as configured: vendor plus alias, written `<vendor>/<alias>`
/// (e.g. `evolink/main`). The secret itself is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId {
    vendor: Vendor,
    alias: String,
}

/// Characters allowed in a key alias, campaign id and reservation id: they end up in Redis key
/// names, and `{`/`}` would break the hash tag, a newline the reservation records.
fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'))
}

impl KeyId {
    /// A key id from its parts; the alias is 1–64 characters of `A-Za-z0-9_-.:@`.
    pub fn new(vendor: Vendor, alias: impl Into<String>) -> Result<Self, LimitsError> {
        let alias = alias.into();
        if !valid_name(&alias, 64) {
            return Err(LimitsError::InvalidInput {
                field: "key alias",
                message: format!("`{alias}` must be 1-64 characters of A-Z a-z 0-9 _ - . : @"),
            });
        }
        Ok(Self { vendor, alias })
    }

    /// The vendor.
    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    /// The configured alias.
    pub fn alias(&self) -> &str {
        &self.alias
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.vendor, self.alias)
    }
}

impl FromStr for KeyId {
    type Err = LimitsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |message: String| LimitsError::InvalidInput {
            field: "key",
            message,
        };
        let (v, a) = s
            .split_once('/')
            .ok_or_else(|| bad(format!("`{s}` must be written <vendor>/<alias>")))?;
        let vendor: Vendor = v.parse().map_err(bad)?;
        KeyId::new(vendor, a)
    }
}

/// Checks a campaign or reservation id (1–200 characters of `A-Za-z0-9_-.:@`).
pub(crate) fn check_id(field: &'static str, id: &str) -> Result<(), LimitsError> {
    if valid_name(id, 200) {
        Ok(())
    } else {
        Err(LimitsError::InvalidInput {
            field,
            message: format!("`{id}` must be 1-200 characters of A-Z a-z 0-9 _ - . : @"),
        })
    }
}

/// Which vendor call a rate applies to; creates and queries are limited separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Submitting a task.
    Create,
    /// Polling a task's status.
    Query,
}

impl Op {
    /// `create` / `query` (Redis key part and metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Query => "query",
        }
    }
}

/// Why a key is parked (not used for new work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParkReason {
    /// The key's vendor-side spend/daily cap is used up: parked until its window resets.
    QuotaExhausted,
    /// The account's balance is too low: parked until an operator un-parks it.
    InsufficientFunds,
    /// The vendor rejects the key: parked until an operator un-parks it.
    Auth,
    /// The key may not use this model: parked until an operator un-parks it.
    Forbidden,
    /// Parked by an operator (`motionq keys park`).
    Operator,
    /// A reason written by something else (kept verbatim for display).
    Other(String),
}

impl ParkReason {
    /// The stored and displayed form (`quota_exhausted`, `insufficient_funds`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            ParkReason::QuotaExhausted => "quota_exhausted",
            ParkReason::InsufficientFunds => "insufficient_funds",
            ParkReason::Auth => "auth",
            ParkReason::Forbidden => "forbidden",
            ParkReason::Operator => "operator",
            ParkReason::Other(s) => s,
        }
    }

    /// Parses the stored form; unknown strings become [`ParkReason::Other`].
    pub fn parse(s: &str) -> Self {
        match s {
            "quota_exhausted" => ParkReason::QuotaExhausted,
            "insufficient_funds" => ParkReason::InsufficientFunds,
            "auth" => ParkReason::Auth,
            "forbidden" => ParkReason::Forbidden,
            "operator" => ParkReason::Operator,
            other => ParkReason::Other(other.to_string()),
        }
    }

    /// The park reason for a vendor error class, if that class parks the key.
    pub fn for_error(class: ErrorClass) -> Option<Self> {
        match class {
            ErrorClass::QuotaExhausted => Some(ParkReason::QuotaExhausted),
            ErrorClass::InsufficientFunds => Some(ParkReason::InsufficientFunds),
            ErrorClass::Auth => Some(ParkReason::Auth),
            ErrorClass::Forbidden => Some(ParkReason::Forbidden),
            _ => None,
        }
    }
}

impl fmt::Display for ParkReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Redis key names. Public so operators and tests can find (and inspect) the state; see the
/// crate doc for the full layout.
#[derive(Debug, Clone)]
pub struct KeyLayout {
    prefix: String,
}

impl KeyLayout {
    /// Layout under `prefix` (the configured `redis.key_prefix`; no `{`, `}` or whitespace).
    pub fn new(prefix: &str) -> Result<Self, LimitsError> {
        if prefix.is_empty()
            || prefix
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control())
        {
            return Err(LimitsError::InvalidInput {
                field: "redis.key_prefix",
                message: format!("`{prefix}` must be non-empty, without braces or whitespace"),
            });
        }
        Ok(Self {
            prefix: prefix.to_string(),
        })
    }

    fn tag(&self, key: &KeyId) -> String {
        format!("{{{}:k:{}}}", self.prefix, key)
    }

    /// GCRA theoretical arrival time of `key`'s `op` (string, µs).
    pub fn tat(&self, key: &KeyId, op: Op) -> String {
        format!("{}:tat:{}", self.tag(key), op.as_str())
    }

    /// Sliding 1 s log of admissions of `key`'s `op` (ZSET), used when a per-second cap is set.
    pub fn window(&self, key: &KeyId, op: Op) -> String {
        format!("{}:win:{}", self.tag(key), op.as_str())
    }

    /// Park state (hash: reason, until, since).
    pub fn park(&self, key: &KeyId) -> String {
        format!("{}:park", self.tag(key))
    }

    /// Adaptive-rate state (hash: `rate:<op>`, `decreased:<op>`, `block:<op>`).
    pub fn aimd(&self, key: &KeyId) -> String {
        format!("{}:aimd", self.tag(key))
    }

    /// Concurrency leases (ZSET holder → expiry µs).
    pub fn slots(&self, key: &KeyId) -> String {
        format!("{}:slots", self.tag(key))
    }

    fn spend_tag(&self) -> String {
        format!("{{{}:spend}}", self.prefix)
    }

    /// Pending reservations (ZSET reservation id → lease expiry µs).
    pub fn pending(&self) -> String {
        format!("{}:pending", self.spend_tag())
    }

    /// Committed reservations (ZSET reservation id → first commit time µs), for reconciliation.
    pub fn committed(&self) -> String {
        format!("{}:committed", self.spend_tag())
    }

    /// Prefix of reservation hashes.
    pub fn reservation_prefix(&self) -> String {
        format!("{}:r:", self.spend_tag())
    }

    /// One reservation (hash).
    pub fn reservation(&self, id: &str) -> String {
        format!("{}{id}", self.reservation_prefix())
    }

    /// One budget (hash: win, used, reserved, limit, len, name).
    pub fn budget(&self, name: &str) -> String {
        format!("{}:b:{name}", self.spend_tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_round_trip_and_reject_bad_aliases() {
        let k: KeyId = "evolink/main".parse().unwrap();
        assert_eq!(k.vendor(), Vendor::Evolink);
        assert_eq!(k.to_string(), "evolink/main");
        assert!("evolink".parse::<KeyId>().is_err());
        assert!("nobody/main".parse::<KeyId>().is_err());
        assert!("kkiai/a}b".parse::<KeyId>().is_err());
        assert!("kkiai/".parse::<KeyId>().is_err());
        assert!("kkiai/a b".parse::<KeyId>().is_err());
    }

    #[test]
    fn every_key_of_one_api_key_shares_one_hash_tag() {
        let l = KeyLayout::new("mq").unwrap();
        let k: KeyId = "freepik/k1".parse().unwrap();
        for name in [
            l.tat(&k, Op::Create),
            l.window(&k, Op::Query),
            l.park(&k),
            l.aimd(&k),
            l.slots(&k),
        ] {
            assert!(name.starts_with("{mq:k:freepik/k1}:"), "{name}");
        }
        for name in [
            l.pending(),
            l.committed(),
            l.reservation("job-1"),
            l.budget("campaign/c1"),
        ] {
            assert!(name.starts_with("{mq:spend}:"), "{name}");
        }
        assert!(KeyLayout::new("a{b").is_err());
    }

    #[test]
    fn park_reasons_follow_error_classes() {
        assert_eq!(
            ParkReason::for_error(ErrorClass::QuotaExhausted),
            Some(ParkReason::QuotaExhausted)
        );
        assert_eq!(ParkReason::for_error(ErrorClass::RateLimited), None);
        for r in ["auth", "operator", "insufficient_funds", "weird"] {
            assert_eq!(ParkReason::parse(r).as_str(), r);
        }
    }
}
