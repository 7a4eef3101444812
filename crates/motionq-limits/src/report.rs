//! Read-only views for `motionq keys` ([`Limits::state`], [`Limits::list_keys`]) and routing
//! ([`Limits::pick_usable`]).

use std::fmt;
use std::time::{Duration, SystemTime};

use redis::Value;

use crate::error::LimitsError;
use crate::key::{KeyId, Op, ParkReason};
use crate::limits::{Limits, Parked};
use crate::scripts::{self, Reply};
use crate::spend::{BudgetRef, BudgetView};

/// One operation's rate on a key.
#[derive(Debug, Clone, PartialEq)]
pub struct RateView {
    /// Configured requests per second.
    pub configured_per_s: f64,
    /// Effective (adapted) requests per second.
    pub effective_per_s: f64,
    /// Configured burst.
    pub burst: u32,
    /// A retry hint blocks the operation until then.
    pub blocked_until: Option<SystemTime>,
    /// Time until one request would be admitted (zero: now).
    pub ready_in: Duration,
}

/// Everything about one key, for `motionq keys`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyState {
    /// The key.
    pub key: KeyId,
    /// Redis server time of the reading.
    pub server_time: SystemTime,
    /// Park state (`None`: usable).
    pub parked: Option<Parked>,
    /// Live (unexpired) concurrency leases.
    pub in_flight: u32,
    /// Configured maximum.
    pub max_concurrent: u32,
    /// Create-call rate.
    pub create: RateView,
    /// Query-call rate.
    pub query: RateView,
    /// The key's spend budgets in their current windows.
    pub budgets: Vec<BudgetView>,
}

/// Why a candidate key cannot take new work now.
#[derive(Debug, Clone, PartialEq)]
pub enum Unusable {
    /// Not in the configuration.
    NotConfigured,
    /// Parked.
    Parked(Parked),
    /// All concurrency slots are held.
    Concurrency {
        /// Leases held.
        in_flight: u32,
        /// Configured maximum.
        limit: u32,
    },
    /// The create rate allows the next call only after this time.
    Rate {
        /// Time until a create call would be admitted.
        ready_in: Duration,
    },
    /// A spend budget has no room for the amount.
    Budget {
        /// The budget (`evolink/main:daily`).
        budget: String,
        /// When its window resets (`None`: never).
        resets_at: Option<SystemTime>,
    },
}

impl Unusable {
    /// A short label (`parked`, `concurrency`, `rate`, `budget`, `not_configured`) for logs,
    /// the "waiting because" gauge and status.
    pub fn label(&self) -> &'static str {
        match self {
            Unusable::NotConfigured => "not_configured",
            Unusable::Parked(_) => "parked",
            Unusable::Concurrency { .. } => "concurrency",
            Unusable::Rate { .. } => "rate",
            Unusable::Budget { .. } => "budget",
        }
    }
}

/// No candidate key is usable now; one reason per candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct NoUsableKey {
    /// Each candidate with why it cannot be used.
    pub reasons: Vec<(KeyId, Unusable)>,
}

impl NoUsableKey {
    /// The common reason when all candidates share one (`all parked`), else `mixed`.
    pub fn summary(&self) -> String {
        let mut labels: Vec<&str> = self.reasons.iter().map(|(_, u)| u.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        match labels.as_slice() {
            [] => "no candidate keys".to_string(),
            [one] => format!("all {one}"),
            _ => "mixed".to_string(),
        }
    }

    /// The earliest time at which some candidate could become usable by itself (rate wait,
    /// window reset, timed park); `None` when only a release, settle or operator can help.
    pub fn retry_in(&self, now: SystemTime) -> Option<Duration> {
        self.reasons
            .iter()
            .filter_map(|(_, u)| match u {
                Unusable::Rate { ready_in } => Some(*ready_in),
                Unusable::Budget {
                    resets_at: Some(t), ..
                }
                | Unusable::Parked(Parked { until: Some(t), .. }) => {
                    Some(t.duration_since(now).unwrap_or_default())
                }
                _ => None,
            })
            .min()
    }
}

impl fmt::Display for NoUsableKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no usable key ({})", self.summary())?;
        for (k, u) in &self.reasons {
            write!(f, "; {k}: {}", u.label())?;
            if let Unusable::Parked(p) = u {
                write!(f, " ({})", p.reason)?;
            }
        }
        Ok(())
    }
}

/// A micro-unit amount as a decimal number of units (`12500000` → `12.5`).
pub fn format_amount(micro: u64) -> String {
    let units = micro / 1_000_000;
    let frac = micro % 1_000_000;
    if frac == 0 {
        return units.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{units}.{}", frac.trim_end_matches('0'))
}

/// A duration as `1h02m`, `5m30s`, `12s` or `250ms`, for tables.
fn short(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s >= 1 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// One line per key for `motionq keys`: state, in-flight vs limit, effective vs configured
/// rates, and each budget's used / reserved / limit with its reset (times relative to the
/// Redis server's clock).
impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let until = |t: Option<SystemTime>| match t {
            Some(t) => format!(
                "for {}",
                short(t.duration_since(self.server_time).unwrap_or_default())
            ),
            None => "until unparked".to_string(),
        };
        match &self.parked {
            Some(p) => write!(f, "{} parked ({}, {})", self.key, p.reason, until(p.until))?,
            None => write!(f, "{} usable", self.key)?,
        }
        write!(f, " | in flight {}/{}", self.in_flight, self.max_concurrent)?;
        for (name, r) in [("create", &self.create), ("query", &self.query)] {
            write!(
                f,
                " | {name} {:.2}/{:.2} per s",
                r.effective_per_s, r.configured_per_s
            )?;
            if let Some(b) = r.blocked_until {
                write!(
                    f,
                    " (blocked {})",
                    short(b.duration_since(self.server_time).unwrap_or_default())
                )?;
            }
        }
        for b in &self.budgets {
            write!(
                f,
                " | {} {} used + {} reserved of {}",
                b.window.as_str(),
                format_amount(b.used),
                format_amount(b.reserved),
                format_amount(b.limit)
            )?;
            if let Some(t) = b.resets_at {
                write!(
                    f,
                    ", resets in {}",
                    short(t.duration_since(self.server_time).unwrap_or_default())
                )?;
            }
        }
        Ok(())
    }
}

impl Limits {
    /// Park state, leases, effective rates and budgets of one key.
    pub async fn state(&self, key: &KeyId) -> Result<KeyState, LimitsError> {
        let l = self.key_limits(key)?.clone();
        let v: Value = scripts::KEY_INSPECT
            .key(self.layout.park(key))
            .key(self.layout.aimd(key))
            .key(self.layout.slots(key))
            .key(self.layout.tat(key, Op::Create))
            .key(self.layout.tat(key, Op::Query))
            .key(self.layout.window(key, Op::Create))
            .key(self.layout.window(key, Op::Query))
            .arg(l.create_max_per_s.unwrap_or(0))
            .arg(l.query_max_per_s.unwrap_or(0))
            .invoke_async(&mut self.conn.clone())
            .await?;
        let r = Reply::new("key_inspect", v)?;
        let now = r.int(0)?;
        let reason = r.str(1)?;
        let parked = (!reason.is_empty())
            .then(|| -> Result<Parked, LimitsError> {
                Ok(Parked {
                    reason: ParkReason::parse(&reason),
                    until: r.opt_time(2)?,
                    since: r.opt_time(3)?,
                })
            })
            .transpose()?;
        let view = |rate_i: usize,
                    block_i: usize,
                    tat_i: usize,
                    cap_i: usize,
                    conf: f64,
                    burst: u32|
         -> Result<RateView, LimitsError> {
            let eff = r.opt_f64(rate_i)?.unwrap_or(conf).min(conf);
            let block = r.int(block_i)?;
            let tat = r.opt_f64(tat_i)?.map(|t| t as i64);
            // Same arithmetic as gcra.lua, for a cost of 1.
            let interval = (1_000_000.0 / eff).ceil() as i64;
            let rate_wait = tat.map_or(0, |tat| {
                tat.max(now) + interval - i64::from(burst) * interval - now
            });
            let wait = rate_wait.max(block - now).max(r.int(cap_i)?).max(0);
            Ok(RateView {
                configured_per_s: conf,
                effective_per_s: eff,
                burst,
                blocked_until: (block > now).then(|| scripts::from_us(block)),
                ready_in: Duration::from_micros(wait as u64),
            })
        };
        let create = view(4, 5, 9, 11, l.create_rate_per_s, l.create_burst)?;
        let query = view(6, 7, 10, 12, l.query_rate_per_s, l.query_burst)?;
        let budgets = self
            .budget_views(&self.budget_specs(&[BudgetRef::Key(key.clone())])?)
            .await?;
        Ok(KeyState {
            key: key.clone(),
            server_time: scripts::from_us(now),
            parked,
            in_flight: r.int(8)?.max(0) as u32,
            max_concurrent: l.max_concurrent,
            create,
            query,
            budgets,
        })
    }

    /// [`state`](Self::state) of every configured key, after returning expired pending
    /// reservations (so `reserved` is current).
    pub async fn list_keys(&self) -> Result<Vec<KeyState>, LimitsError> {
        self.reap_expired().await?;
        let mut out = Vec::with_capacity(self.keys.len());
        for k in self.keys.keys() {
            out.push(self.state(k).await?);
        }
        Ok(out)
    }

    /// The first candidate that is not parked and has a free slot, create-rate room now and
    /// (with `amount`) room for `amount` in all its budgets; otherwise why none is usable.
    ///
    /// This only looks: it takes nothing. The caller then acquires the slot, rate and
    /// reservation, and on a lost race (another worker took the last slot) asks again.
    pub async fn pick_usable(
        &self,
        candidates: &[KeyId],
        amount: Option<u64>,
    ) -> Result<Result<KeyId, NoUsableKey>, LimitsError> {
        let mut reasons = Vec::new();
        for k in candidates {
            if !self.keys.contains_key(k) {
                reasons.push((k.clone(), Unusable::NotConfigured));
                continue;
            }
            let st = self.state(k).await?;
            let why = if let Some(p) = st.parked {
                Some(Unusable::Parked(p))
            } else if st.in_flight >= st.max_concurrent {
                Some(Unusable::Concurrency {
                    in_flight: st.in_flight,
                    limit: st.max_concurrent,
                })
            } else if !st.create.ready_in.is_zero() {
                Some(Unusable::Rate {
                    ready_in: st.create.ready_in,
                })
            } else {
                amount.and_then(|a| {
                    st.budgets
                        .iter()
                        .find(|b| b.used.saturating_add(b.reserved).saturating_add(a) > b.limit)
                        .map(|b| Unusable::Budget {
                            budget: b.name.clone(),
                            resets_at: b.resets_at,
                        })
                })
            };
            match why {
                None => return Ok(Ok(k.clone())),
                Some(u) => reasons.push((k.clone(), u)),
            }
        }
        Ok(Err(NoUsableKey { reasons }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spend::BudgetWindow;

    #[test]
    fn amounts_print_as_units() {
        assert_eq!(format_amount(0), "0");
        assert_eq!(format_amount(12_500_000), "12.5");
        assert_eq!(format_amount(1), "0.000001");
        assert_eq!(format_amount(3_000_000), "3");
    }

    #[test]
    fn a_key_state_prints_on_one_line() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let rate = |eff, conf| RateView {
            configured_per_s: conf,
            effective_per_s: eff,
            burst: 1,
            blocked_until: None,
            ready_in: Duration::ZERO,
        };
        let st = KeyState {
            key: "kkiai/main".parse().unwrap(),
            server_time: now,
            parked: Some(Parked {
                reason: ParkReason::QuotaExhausted,
                until: Some(now + Duration::from_secs(3720)),
                since: Some(now),
            }),
            in_flight: 3,
            max_concurrent: 20,
            create: rate(1.0, 2.0),
            query: rate(10.0, 10.0),
            budgets: vec![BudgetView {
                name: "kkiai/main:daily".into(),
                window: BudgetWindow::Daily,
                used: 12_500_000,
                reserved: 2_000_000,
                limit: 50_000_000,
                resets_at: Some(now + Duration::from_secs(330)),
            }],
        };
        assert_eq!(
            st.to_string(),
            "kkiai/main parked (quota_exhausted, for 1h02m) | in flight 3/20 \
             | create 1.00/2.00 per s | query 10.00/10.00 per s \
             | daily 12.5 used + 2 reserved of 50, resets in 5m30s"
        );
    }
}
