//! Configured limits: per key ([`KeyLimits`]) and for the limiter as a whole ([`LimitsConfig`]).
//!
//! Both are plain serde structs meant to sit in motionq's TOML config (section `[limits]`, one
//! `[limits.keys."<vendor>/<alias>"]` table per API key). Env overrides follow the config crate's
//! `MOTIONQ__LIMITS__...` convention. Money is in integer micro-units of the budget's currency
//! (micro-USD, or micro vendor credits): 1.25 USD is `1250000`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::LimitsError;
use crate::key::KeyId;

/// Limits of one vendor API key, identified by `<vendor>/<alias>` (never by the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimits {
    /// Create (submit) calls per second allowed on this key, across all workers. > 0.
    pub create_rate_per_s: f64,
    /// Create calls allowed back to back after an idle period (GCRA burst). >= 1. Default 1.
    #[serde(default = "one")]
    pub create_burst: u32,
    /// Hard cap on create calls in any sliding 1 s window (server time), on top of the rate:
    /// set it to a vendor's strict "N per second" and give `create_burst` a few calls, so
    /// that workers waking up late do not lose capacity while no second ever sees more than
    /// N. `None` (default): the GCRA alone (any window holds at most burst − 1 + rate).
    #[serde(default)]
    pub create_max_per_s: Option<u32>,
    /// Query (poll) calls per second allowed on this key. > 0.
    pub query_rate_per_s: f64,
    /// Query calls allowed back to back after an idle period. >= 1. Default 1.
    #[serde(default = "one")]
    pub query_burst: u32,
    /// Hard cap on query calls in any sliding 1 s window, like `create_max_per_s`.
    #[serde(default)]
    pub query_max_per_s: Option<u32>,
    /// Vendor tasks in flight at once on this key (from submit until terminal). 0 disables
    /// the key for new work.
    pub max_concurrent: u32,
    /// Lease of a concurrency slot, ms: a slot whose holder stops renewing is reclaimed this
    /// long after its last renewal. The poller must renew well within it. Default 600000.
    #[serde(default = "default_lease_ttl_ms")]
    pub lease_ttl_ms: u64,
    /// Spend budgets of this key (vendor unit, micro-units). Default: none.
    #[serde(default)]
    pub spend: SpendLimits,
}

impl KeyLimits {
    /// The configured lease as a duration.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }
}

/// Spend budgets of a key, in micro-units; `None` means no budget over that window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendLimits {
    /// Per calendar hour (UTC), or per `hour_window_s` window.
    pub hourly: Option<u64>,
    /// Per calendar day (UTC), or per `day_window_s` window.
    pub daily: Option<u64>,
    /// Over the key's lifetime (never resets).
    pub total: Option<u64>,
}

/// Additive-increase / multiplicative-decrease of a key's rate after vendor `rate_limited`
/// answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AimdConfig {
    /// A `rate_limited` answer multiplies the effective rate by this, in (0, 1). Default 0.5.
    pub decrease_factor: f64,
    /// The effective rate never falls below this fraction of the configured rate, in (0, 1].
    /// Default 0.05.
    pub floor_fraction: f64,
    /// Each success adds this fraction of the configured rate, in (0, 1]. Default 0.02 (from
    /// the floor back to full in under 50 successes).
    pub increase_fraction: f64,
    /// `rate_limited` answers within this many ms of the last decrease count as the same
    /// event (several workers see the same 429 storm) and lower the rate once. Default 1000.
    pub cooldown_ms: u64,
}

impl Default for AimdConfig {
    fn default() -> Self {
        Self {
            decrease_factor: 0.5,
            floor_fraction: 0.05,
            increase_fraction: 0.02,
            cooldown_ms: 1000,
        }
    }
}

/// The `[limits]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Limits per key, by `<vendor>/<alias>` (e.g. `evolink/main`).
    pub keys: BTreeMap<String, KeyLimits>,
    /// Length of the "hourly" spend window, s. Windows are aligned to the Unix epoch, so the
    /// default 3600 gives UTC calendar hours. Tests shorten it. (`MOTIONQ__LIMITS__HOUR_WINDOW_S`)
    pub hour_window_s: u64,
    /// Length of the "daily" spend window, s; default 86400 = UTC calendar days.
    /// (`MOTIONQ__LIMITS__DAY_WINDOW_S`)
    pub day_window_s: u64,
    /// Lease of a *pending* reservation, ms: a reservation neither committed, settled nor
    /// released within this time is returned to its budgets (its worker died before the
    /// create call). Keep it longer than the usual time from reserve to commit (rate waits);
    /// a worker that waits longer renews it by calling `reserve` again with the same
    /// arguments. Default 60000. (`MOTIONQ__LIMITS__RESERVATION_LEASE_MS`)
    pub reservation_lease_ms: u64,
    /// How long settled / released / expired reservation records are kept (so a late retry
    /// is recognised), s. Default 7 days. (`MOTIONQ__LIMITS__RECORD_TTL_S`)
    pub record_ttl_s: u64,
    /// Adaptive-rate state of an idle key is forgotten after this many s (the key is back at
    /// its configured rate). Default 3600. (`MOTIONQ__LIMITS__IDLE_TTL_S`)
    pub idle_ttl_s: u64,
    /// Expired pending reservations returned per reserve call (bounds script run time).
    /// Default 64.
    pub reap_batch: u32,
    /// Adaptive rate parameters.
    pub aimd: AimdConfig,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            keys: BTreeMap::new(),
            hour_window_s: 3600,
            day_window_s: 86_400,
            reservation_lease_ms: 60_000,
            record_ttl_s: 7 * 86_400,
            idle_ttl_s: 3600,
            reap_batch: 64,
            aimd: AimdConfig::default(),
        }
    }
}

fn one() -> u32 {
    1
}

fn default_lease_ttl_ms() -> u64 {
    600_000
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> LimitsError {
    LimitsError::InvalidConfig {
        field: field.into(),
        message: message.into(),
    }
}

impl LimitsConfig {
    /// Checks every field; the error names the first bad one (`limits.keys."evolink/main".…`).
    pub fn validate(&self) -> Result<(), LimitsError> {
        let positive = |v: u64, f: &str| {
            if v == 0 {
                Err(bad(format!("limits.{f}"), "must be > 0"))
            } else {
                Ok(())
            }
        };
        positive(self.hour_window_s, "hour_window_s")?;
        positive(self.day_window_s, "day_window_s")?;
        positive(self.reservation_lease_ms, "reservation_lease_ms")?;
        positive(self.record_ttl_s, "record_ttl_s")?;
        positive(self.idle_ttl_s, "idle_ttl_s")?;
        positive(u64::from(self.reap_batch), "reap_batch")?;
        // Upper bounds keep every duration's µs value far inside the scripts' exact range.
        const TEN_YEARS_S: u64 = 10 * 365 * 86_400;
        for (v, f) in [
            (self.hour_window_s, "hour_window_s"),
            (self.day_window_s, "day_window_s"),
            (self.record_ttl_s, "record_ttl_s"),
            (self.idle_ttl_s, "idle_ttl_s"),
            (self.reservation_lease_ms / 1000, "reservation_lease_ms"),
            (self.aimd.cooldown_ms / 1000, "aimd.cooldown_ms"),
        ] {
            if v > TEN_YEARS_S {
                return Err(bad(format!("limits.{f}"), "must be at most 10 years"));
            }
        }
        let a = &self.aimd;
        if !(a.decrease_factor > 0.0 && a.decrease_factor < 1.0) {
            return Err(bad("limits.aimd.decrease_factor", "must be in (0, 1)"));
        }
        if !(a.floor_fraction > 0.0 && a.floor_fraction <= 1.0) {
            return Err(bad("limits.aimd.floor_fraction", "must be in (0, 1]"));
        }
        if !(a.increase_fraction > 0.0 && a.increase_fraction <= 1.0) {
            return Err(bad("limits.aimd.increase_fraction", "must be in (0, 1]"));
        }
        for (name, k) in &self.keys {
            let f = |x: &str| format!("limits.keys.\"{name}\".{x}");
            name.parse::<KeyId>()
                .map_err(|e| bad(format!("limits.keys.\"{name}\""), e.to_string()))?;
            for (field, rate) in [
                ("create_rate_per_s", k.create_rate_per_s),
                ("query_rate_per_s", k.query_rate_per_s),
            ] {
                // The interval is 1e6 / rate µs; below 1e-6/s it would not fit the arithmetic.
                if !(rate.is_finite() && (1e-6..=1e6).contains(&rate)) {
                    return Err(bad(f(field), "must be a number in [0.000001, 1000000]"));
                }
            }
            if k.create_burst == 0 {
                return Err(bad(f("create_burst"), "must be >= 1"));
            }
            if k.query_burst == 0 {
                return Err(bad(f("query_burst"), "must be >= 1"));
            }
            for (field, cap) in [
                ("create_max_per_s", k.create_max_per_s),
                ("query_max_per_s", k.query_max_per_s),
            ] {
                if cap == Some(0) {
                    return Err(bad(f(field), "must be >= 1 (omit it for no cap)"));
                }
            }
            if k.lease_ttl_ms == 0 || k.lease_ttl_ms / 1000 > TEN_YEARS_S {
                return Err(bad(f("lease_ttl_ms"), "must be > 0 and at most 10 years"));
            }
            for (field, v) in [
                ("spend.hourly", k.spend.hourly),
                ("spend.daily", k.spend.daily),
                ("spend.total", k.spend.total),
            ] {
                if v.is_some_and(|v| v > crate::MAX_AMOUNT) {
                    return Err(bad(
                        f(field),
                        format!("must be <= {} micro-units", crate::MAX_AMOUNT),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
hour_window_s = 3600
reservation_lease_ms = 30000
[aimd]
decrease_factor = 0.5
[keys."evolink/main"]
create_rate_per_s = 2.0
query_rate_per_s = 10.0
query_burst = 5
max_concurrent = 20
[keys."evolink/main".spend]
daily = 500000000
"#;

    #[test]
    fn a_sample_section_parses_with_defaults() {
        let c: LimitsConfig = toml::from_str(SAMPLE).unwrap();
        c.validate().unwrap();
        let k = &c.keys["evolink/main"];
        assert_eq!(k.create_burst, 1);
        assert_eq!(k.lease_ttl_ms, 600_000);
        assert_eq!(k.spend.daily, Some(500_000_000));
        assert_eq!(k.spend.hourly, None);
        assert_eq!(c.day_window_s, 86_400);
        assert_eq!(c.aimd.cooldown_ms, 1000);
    }

    /// The `[limits]` sample in the crate documentation parses and validates.
    #[test]
    fn the_documented_sample_is_valid() {
        let lib = include_str!("lib.rs");
        let start = lib.find("//! ```toml\n").expect("a toml sample in lib.rs") + 12;
        let end = start + lib[start..].find("//! ```").expect("end of the sample");
        let sample: String = lib[start..end]
            .lines()
            .map(|l| l.strip_prefix("//!").unwrap_or(l).trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        #[derive(Deserialize)]
        struct Root {
            limits: LimitsConfig,
        }
        let root: Root = toml::from_str(&sample).unwrap();
        root.limits.validate().unwrap();
        let k = &root.limits.keys["evolink/main"];
        assert_eq!(k.create_max_per_s, Some(2));
        assert_eq!(k.spend.total, Some(5_000_000_000));
    }

    #[test]
    fn errors_name_the_field() {
        let mut c: LimitsConfig = toml::from_str(SAMPLE).unwrap();
        c.keys.get_mut("evolink/main").unwrap().create_rate_per_s = 0.0;
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains(r#"limits.keys."evolink/main".create_rate_per_s"#),
            "{e}"
        );

        let mut c: LimitsConfig = toml::from_str(SAMPLE).unwrap();
        let k = c.keys.remove("evolink/main").unwrap();
        c.keys.insert("evolink".into(), k);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(r#"limits.keys."evolink""#), "{e}");

        let mut c: LimitsConfig = toml::from_str(SAMPLE).unwrap();
        c.hour_window_s = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.hour_window_s"));
        c.hour_window_s = u64::MAX;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.hour_window_s"));

        let mut c: LimitsConfig = toml::from_str(SAMPLE).unwrap();
        c.aimd.decrease_factor = 1.0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.aimd.decrease_factor"));

        let mut c: LimitsConfig = toml::from_str(SAMPLE).unwrap();
        c.keys.get_mut("evolink/main").unwrap().spend.total = Some(crate::MAX_AMOUNT + 1);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("spend.total"));

        assert!(toml::from_str::<LimitsConfig>("hour_windows = 3").is_err());
    }
}
