//! Retry timing shared by every stage: exponential backoff with full jitter, capped by attempts
//! and by total time, honouring a vendor's `Retry-After`.
//!
//! `sleep = rand(0, min(cap, base * 2^attempt))` (full jitter spreads a burst of failures over the
//! whole window instead of synchronising them). A `Retry-After` hint is a floor: we never retry
//! sooner than the vendor asked.

use std::time::{Duration, SystemTime};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A retry policy. Durations are in milliseconds in config files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// First delay ceiling (attempt 0).
    #[serde(with = "millis")]
    pub base: Duration,
    /// Largest delay ceiling.
    #[serde(with = "millis")]
    pub cap: Duration,
    /// Attempts after which the job fails (counting only real failures).
    pub max_attempts: u32,
    /// Total time after the first failure after which the job fails.
    #[serde(with = "millis")]
    pub max_total: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            max_attempts: 8,
            max_total: Duration::from_secs(30 * 60),
        }
    }
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Out of attempts or time: fail the job with its last error.
    GiveUp,
}

impl Backoff {
    /// The jitter ceiling for `attempt` (0-based): `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u64.checked_shl(attempt.min(63)).unwrap_or(u64::MAX);
        let ms = (self.base.as_millis() as u64).saturating_mul(factor);
        Duration::from_millis(ms).min(self.cap)
    }

    /// A full-jitter delay for `attempt`: uniform in `[0, ceiling(attempt)]`.
    pub fn jittered<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceil = self.ceiling(attempt).as_millis() as u64;
        Duration::from_millis(rng.random_range(0..=ceil))
    }

    /// Decides after failed attempt number `attempt` (0-based), `elapsed` since the first
    /// failure, with an optional vendor hint.
    pub fn decide<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> RetryDecision {
        if attempt + 1 >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        let mut delay = self.jittered(attempt, rng);
        if let Some(hint) = retry_after {
            delay = delay.max(hint);
        }
        if elapsed + delay > self.max_total {
            return RetryDecision::GiveUp;
        }
        RetryDecision::RetryAfter(delay)
    }
}

/// Parses a `Retry-After` header value: delta-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`). A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // Some servers send fractional seconds; accept them rather than ignore the hint.
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(1e9)));
        }
        return None;
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn policy() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
            max_attempts: 10,
            max_total: Duration::from_secs(60),
        }
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = policy();
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(5), Duration::from_millis(3200));
        assert_eq!(b.ceiling(6), Duration::from_secs(5));
        assert_eq!(b.ceiling(200), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_in_bounds_and_spreads() {
        let b = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let samples: Vec<u64> = (0..10_000)
            .map(|_| b.jittered(4, &mut rng).as_millis() as u64)
            .collect();
        assert!(samples.iter().all(|&s| s <= 1600));
        let mean = samples.iter().sum::<u64>() as f64 / samples.len() as f64;
        // Uniform on [0, 1600]: mean 800; each quarter holds about a quarter of the samples.
        assert!((mean - 800.0).abs() < 40.0, "mean {mean}");
        for q in 0..4 {
            let n = samples
                .iter()
                .filter(|&&s| s >= q * 400 && s < (q + 1) * 400)
                .count();
            assert!((2200..2800).contains(&n), "quarter {q}: {n}");
        }
    }

    #[test]
    fn gives_up_on_attempts_and_total_time() {
        let b = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(
            b.decide(9, Duration::ZERO, None, &mut rng),
            RetryDecision::GiveUp
        );
        assert_eq!(
            b.decide(
                0,
                Duration::from_secs(60),
                Some(Duration::from_secs(1)),
                &mut rng
            ),
            RetryDecision::GiveUp
        );
        assert!(matches!(
            b.decide(0, Duration::ZERO, None, &mut rng),
            RetryDecision::RetryAfter(_)
        ));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let b = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..100 {
            match b.decide(0, Duration::ZERO, Some(Duration::from_secs(7)), &mut rng) {
                RetryDecision::RetryAfter(d) => assert_eq!(d, Duration::from_secs(7)),
                RetryDecision::GiveUp => panic!("should retry"),
            }
        }
    }

    #[test]
    fn parses_both_retry_after_forms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
