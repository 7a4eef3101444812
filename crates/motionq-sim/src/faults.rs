//! Scripted, seedable fault injection.
//!
//! Every decision is drawn from an RNG seeded with `(seed, vendor, endpoint, n)` where `n` counts
//! the calls to that vendor's endpoint since the faults were applied. The n-th create on a
//! vendor therefore meets the same fault on every run with the same seed, however calls to
//! other vendors interleave with it.

use crate::vendor::{Endpoint, Vendor};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Faults for all five vendors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// EvoLink.
    pub evolink: VendorFaults,
    /// KKIAI.
    pub kkiai: VendorFaults,
    /// AI Video API.
    pub aivideoapi: VendorFaults,
    /// HighwayAPI.
    pub highwayapi: VendorFaults,
    /// Freepik.
    pub freepik: VendorFaults,
}

/// One vendor's faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VendorFaults {
    /// Probability that an accepted task later fails with the vendor's content-policy failure
    /// (refunded). A prompt containing `sim:content_policy` always fails.
    pub content_policy: f64,
    /// Probability that an accepted task later fails for the vendor's own reasons (a generic
    /// server-side generation failure, refunded), rendered as each vendor's retryable failure:
    /// EvoLink `error.code = "service_error"`, AI Video API `error.code = "internal_error"`,
    /// KKIAI `task_status_msg` / HighwayAPI `reason` "internal error … please try again".
    /// Freepik documents no failure reason, so its `FAILED` looks like any other failure.
    /// A task that fails for content policy never draws this (one reason per task).
    pub task_failure: f64,
    /// Faults on task creation.
    pub create: EndpointFaults,
    /// Faults on task queries and lists.
    pub query: EndpointFaults,
    /// Faults on output downloads.
    pub download: EndpointFaults,
    /// Faults on callback delivery.
    pub callback: CallbackFaults,
}

/// Faults of an HTTP endpoint. Probabilities are in `[0, 1]`.
///
/// `rate_limited`, `error_500`, `error_503`, `hang` and `reset` are drawn together (at most one
/// fires) before the request is processed, so nothing is created or charged. `slow` is drawn
/// independently and only delays. `reset_mid_body`, `malformed_json` and `truncated_json` are
/// drawn together **after** the request was processed: a create is accepted and charged, but
/// the client cannot read the answer (the nastiest case for duplicate submissions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointFaults {
    /// Answer the vendor's rate-limit 429.
    pub rate_limited: f64,
    /// Answer the vendor's 500 body.
    pub error_500: f64,
    /// Answer the vendor's 503 body.
    pub error_503: f64,
    /// Delay the answer by `slow_ms`.
    pub slow: f64,
    /// Delay of a slow answer, real milliseconds.
    pub slow_ms: u64,
    /// Never answer within `hang_ms`, then drop the connection.
    pub hang: f64,
    /// How long a hung request is held, real milliseconds.
    pub hang_ms: u64,
    /// Drop the connection without any response.
    pub reset: f64,
    /// Send the headers and half the body, then drop the connection.
    pub reset_mid_body: f64,
    /// Answer 200 with a body that is not JSON (create/query).
    pub malformed_json: f64,
    /// Answer 200 with the first half of the JSON and a matching Content-Length (create/query).
    pub truncated_json: f64,
    /// Download: serve only the first half of the file with a matching Content-Length.
    pub truncated_download: f64,
    /// Download: flip bytes in the middle of the file (length unchanged).
    pub corrupted_download: f64,
    /// Download: the link of a finished task expires after `expire_early_factor` of its lifetime.
    pub expire_early: f64,
    /// Fraction of the lifetime an early-expiring link lives.
    pub expire_early_factor: f64,
    /// Time windows in which every call gets `status` (a 429 storm by default).
    pub storms: Vec<Storm>,
}

impl Default for EndpointFaults {
    fn default() -> Self {
        EndpointFaults {
            rate_limited: 0.0,
            error_500: 0.0,
            error_503: 0.0,
            slow: 0.0,
            slow_ms: 2_000,
            hang: 0.0,
            hang_ms: 3_600_000,
            reset: 0.0,
            reset_mid_body: 0.0,
            malformed_json: 0.0,
            truncated_json: 0.0,
            truncated_download: 0.0,
            corrupted_download: 0.0,
            expire_early: 0.0,
            expire_early_factor: 0.1,
            storms: Vec::new(),
        }
    }
}

/// A window, in real seconds since the faults were applied (server start or the last
/// `PUT /_sim/faults` / `set_faults`), in which every call answers `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storm {
    /// Start (inclusive), seconds.
    pub from_secs: f64,
    /// End (exclusive), seconds.
    pub to_secs: f64,
    /// 429 (default), 500 or 503.
    #[serde(default = "default_storm_status")]
    pub status: u16,
}

fn default_storm_status() -> u16 {
    429
}

/// Faults of callback delivery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackFaults {
    /// The callback is never sent.
    pub drop: f64,
    /// The callback is sent twice.
    pub duplicate: f64,
}

/// What happens to a request before it is processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreFault {
    /// Answer this status with the vendor's body (429, 500, 503).
    Status(u16),
    /// Hold the request, then drop it.
    Hang(Duration),
    /// Drop the connection at once.
    Reset,
}

/// What happens to a processed answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFault {
    ResetMidBody,
    Malformed,
    Truncated,
}

/// What happens to a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DownloadFault {
    ResetMidBody,
    Truncated,
    Corrupted,
}

/// All decisions for one HTTP call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Decision {
    pub pre: Option<PreFault>,
    pub slow: Option<Duration>,
    pub body: Option<BodyFault>,
    pub download: Option<DownloadFault>,
}

impl Decision {
    /// Label of the fault(s) for the ledger.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        match self.pre {
            Some(PreFault::Status(429)) => v.push("rate_limited"),
            Some(PreFault::Status(500)) => v.push("error_500"),
            Some(PreFault::Status(_)) => v.push("error_503"),
            Some(PreFault::Hang(_)) => v.push("hang"),
            Some(PreFault::Reset) => v.push("reset"),
            None => {}
        }
        if self.slow.is_some() {
            v.push("slow");
        }
        match self.body {
            Some(BodyFault::ResetMidBody) => v.push("reset_mid_body"),
            Some(BodyFault::Malformed) => v.push("malformed_json"),
            Some(BodyFault::Truncated) => v.push("truncated_json"),
            None => {}
        }
        match self.download {
            Some(DownloadFault::ResetMidBody) => v.push("reset_mid_body"),
            Some(DownloadFault::Truncated) => v.push("truncated_download"),
            Some(DownloadFault::Corrupted) => v.push("corrupted_download"),
            None => {}
        }
        v
    }
}

/// A deterministic RNG for the n-th event of (vendor, endpoint).
pub(crate) fn rng_for(seed: u64, vendor: Vendor, endpoint: Endpoint, n: u64) -> rand::rngs::StdRng {
    // SplitMix-style mixing so neighbouring counters give unrelated streams.
    let mut x = seed
        ^ (vendor.index() as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (endpoint as u64 + 1).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ n.wrapping_mul(0x1656_67B1_9E37_79F9);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    rand::rngs::StdRng::seed_from_u64(x)
}

fn pick(r: f64, options: &[(f64, usize)]) -> Option<usize> {
    let mut acc = 0.0;
    for &(p, i) in options {
        acc += p;
        if r < acc {
            return Some(i);
        }
    }
    None
}

impl EndpointFaults {
    /// Draws every decision for one call (always the same number of draws, for reproducibility).
    pub(crate) fn decide(&self, rng: &mut impl Rng, since_applied: Duration) -> Decision {
        let r_pre: f64 = rng.random();
        let r_slow: f64 = rng.random();
        let r_body: f64 = rng.random();
        let t = since_applied.as_secs_f64();
        let mut d = Decision::default();
        if let Some(storm) = self
            .storms
            .iter()
            .find(|s| t >= s.from_secs && t < s.to_secs)
        {
            d.pre = Some(PreFault::Status(storm.status));
        } else {
            d.pre = match pick(
                r_pre,
                &[
                    (self.rate_limited, 0),
                    (self.error_500, 1),
                    (self.error_503, 2),
                    (self.hang, 3),
                    (self.reset, 4),
                ],
            ) {
                Some(0) => Some(PreFault::Status(429)),
                Some(1) => Some(PreFault::Status(500)),
                Some(2) => Some(PreFault::Status(503)),
                Some(3) => Some(PreFault::Hang(Duration::from_millis(self.hang_ms))),
                Some(_) => Some(PreFault::Reset),
                None => None,
            };
        }
        if r_slow < self.slow {
            d.slow = Some(Duration::from_millis(self.slow_ms));
        }
        d.body = match pick(
            r_body,
            &[
                (self.reset_mid_body, 0),
                (self.malformed_json, 1),
                (self.truncated_json, 2),
            ],
        ) {
            Some(0) => Some(BodyFault::ResetMidBody),
            Some(1) => Some(BodyFault::Malformed),
            Some(2) => Some(BodyFault::Truncated),
            _ => None,
        };
        d
    }

    /// Download decisions: the pre-faults plus truncation/corruption/reset of the file.
    pub(crate) fn decide_download(&self, rng: &mut impl Rng, since_applied: Duration) -> Decision {
        let mut d = self.decide(rng, since_applied);
        d.body = None;
        let r: f64 = rng.random();
        d.download = match pick(
            r,
            &[
                (self.reset_mid_body, 0),
                (self.truncated_download, 1),
                (self.corrupted_download, 2),
            ],
        ) {
            Some(0) => Some(DownloadFault::ResetMidBody),
            Some(1) => Some(DownloadFault::Truncated),
            Some(2) => Some(DownloadFault::Corrupted),
            _ => None,
        };
        d
    }

    fn validate(&self, at: &str) -> Result<(), String> {
        let probs = [
            ("rate_limited", self.rate_limited),
            ("error_500", self.error_500),
            ("error_503", self.error_503),
            ("slow", self.slow),
            ("hang", self.hang),
            ("reset", self.reset),
            ("reset_mid_body", self.reset_mid_body),
            ("malformed_json", self.malformed_json),
            ("truncated_json", self.truncated_json),
            ("truncated_download", self.truncated_download),
            ("corrupted_download", self.corrupted_download),
            ("expire_early", self.expire_early),
            ("expire_early_factor", self.expire_early_factor),
        ];
        for (name, p) in probs {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("faults.{at}.{name} must be in [0, 1], got {p}"));
            }
        }
        for s in &self.storms {
            if !matches!(s.status, 429 | 500 | 503) {
                return Err(format!(
                    "faults.{at}.storms.status must be 429, 500 or 503, got {}",
                    s.status
                ));
            }
            if s.from_secs.is_nan() || s.to_secs.is_nan() || s.from_secs > s.to_secs {
                return Err(format!("faults.{at}.storms: from_secs must be <= to_secs"));
            }
        }
        Ok(())
    }
}

impl Faults {
    /// The faults of `vendor`.
    pub fn vendor(&self, vendor: Vendor) -> &VendorFaults {
        match vendor {
            Vendor::Evolink => &self.evolink,
            Vendor::Kkiai => &self.kkiai,
            Vendor::Aivideoapi => &self.aivideoapi,
            Vendor::Highwayapi => &self.highwayapi,
            Vendor::Freepik => &self.freepik,
        }
    }

    /// Mutable faults of `vendor`.
    pub fn vendor_mut(&mut self, vendor: Vendor) -> &mut VendorFaults {
        match vendor {
            Vendor::Evolink => &mut self.evolink,
            Vendor::Kkiai => &mut self.kkiai,
            Vendor::Aivideoapi => &mut self.aivideoapi,
            Vendor::Highwayapi => &mut self.highwayapi,
            Vendor::Freepik => &mut self.freepik,
        }
    }

    /// Checks every probability is in `[0, 1]`; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        for v in Vendor::ALL {
            let f = self.vendor(v);
            for (name, p) in [
                ("content_policy", f.content_policy),
                ("task_failure", f.task_failure),
                ("callback.drop", f.callback.drop),
                ("callback.duplicate", f.callback.duplicate),
            ] {
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("faults.{v}.{name} must be in [0, 1], got {p}"));
                }
            }
            f.create.validate(&format!("{v}.create"))?;
            f.query.validate(&format!("{v}.query"))?;
            f.download.validate(&format!("{v}.download"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_decisions() {
        let f = EndpointFaults {
            rate_limited: 0.3,
            error_503: 0.2,
            malformed_json: 0.3,
            ..EndpointFaults::default()
        };
        let run = |seed| {
            (0..200)
                .map(|n| {
                    let mut rng = rng_for(seed, Vendor::Kkiai, Endpoint::Create, n);
                    let d = f.decide(&mut rng, Duration::ZERO);
                    (d.pre, d.body)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7).iter().filter(|(p, _)| p.is_some()).count();
        assert!(
            (60..=140).contains(&hits),
            "about half should fault, got {hits}"
        );
    }

    #[test]
    fn storm_window_always_fires() {
        let f = EndpointFaults {
            storms: vec![Storm {
                from_secs: 1.0,
                to_secs: 2.0,
                status: 429,
            }],
            ..EndpointFaults::default()
        };
        let mut rng = rng_for(1, Vendor::Evolink, Endpoint::Create, 0);
        assert_eq!(
            f.decide(&mut rng, Duration::from_millis(1500)).pre,
            Some(PreFault::Status(429))
        );
        assert_eq!(f.decide(&mut rng, Duration::from_millis(2500)).pre, None);
    }

    #[test]
    fn probabilities_are_checked() {
        let mut f = Faults::default();
        f.freepik.query.error_503 = 1.5;
        let e = f.validate().unwrap_err();
        assert!(e.contains("freepik.query.error_503"), "{e}");
    }
}
