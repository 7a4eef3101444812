//! [`Limits`]: the facade. Rate (GCRA + AIMD), concurrency leases and key parking live here;
//! spend is in [`crate::spend`], reports and routing in [`crate::report`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use motionq_store::RedisConn;
use redis::Value;

use crate::config::{KeyLimits, LimitsConfig};
use crate::error::LimitsError;
use crate::key::{KeyId, KeyLayout, Op, ParkReason};
use crate::scripts::{self, Reply};

/// A parked key: why, and until when (`None`: until an operator un-parks it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// Why the key is parked.
    pub reason: ParkReason,
    /// When it becomes usable again by itself; `None` = only `unpark` ends it.
    pub until: Option<SystemTime>,
    /// When it was parked (server time), when known.
    pub since: Option<SystemTime>,
}

/// The answer of [`Limits::acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The call may be made now; the rate state already counts it.
    Allowed,
    /// Not before this much time has passed (server clock). Waiting is not a failed attempt.
    Wait(Duration),
    /// The key is parked; pick another key or wait.
    Parked(Parked),
}

/// A [`Decision`] with the Redis server time at which it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The decision.
    pub decision: Decision,
    /// Server time of the decision (the time the request was counted at, when allowed).
    pub server_time: SystemTime,
    /// The emission interval in force (1 / effective rate, rounded up to whole µs); zero
    /// when the key is parked.
    pub interval: Duration,
    /// For an allowed [`acquire_held`](Limits::acquire_held) on a key with a per-second cap:
    /// hand it to [`answered`](Limits::answered) once the vendor has answered the call.
    pub ticket: Option<HeldTicket>,
    /// The key's effective rate for this operation is below its configured rate (an AIMD
    /// decrease after a vendor `rate_limited` is being recovered). Only then does a successful
    /// call need [`on_success`](Limits::on_success); at full rate that call changes nothing,
    /// so callers skip it and save a round trip per call.
    pub rate_lowered: bool,
}

/// An admission that stays in the key's 1 s window until its call is answered (see
/// [`Limits::acquire_held`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTicket {
    key: KeyId,
    op: Op,
    first: String,
    cost: u32,
    interval_us: u64,
}

/// A key's adaptive rate for one operation, after an AIMD step.
#[derive(Debug, Clone, PartialEq)]
pub struct RateState {
    /// The configured rate, per second.
    pub configured_per_s: f64,
    /// The rate every worker is held to now, per second.
    pub effective_per_s: f64,
    /// No request of this operation is admitted before this time (a retry hint).
    pub blocked_until: Option<SystemTime>,
    /// Whether this call lowered the rate (false within the cooldown of an earlier decrease).
    pub decreased: bool,
}

/// A held concurrency slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The key whose slot this is.
    pub key: KeyId,
    /// The holder (job id).
    pub holder: String,
    /// Server time at which the slot is reclaimable unless renewed.
    pub expires_at: SystemTime,
    /// Leases held on the key after this call, this one included.
    pub in_flight: u32,
}

/// The answer of [`Limits::acquire_slot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotDecision {
    /// The holder has a slot (new, or its existing one renewed).
    Acquired(Lease),
    /// All slots are taken.
    Full {
        /// Leases held now.
        in_flight: u32,
        /// The configured maximum.
        limit: u32,
        /// Time until the earliest lease expires if not renewed (a slot frees earlier when a
        /// holder releases).
        retry_in: Duration,
    },
    /// The key is parked: no new slots (a holder that already has one keeps it).
    Parked(Parked),
}

/// Per-key rate, concurrency and spend limits held in Redis; see the crate documentation.
///
/// Cheap to clone (the connection is multiplexed; the config is shared).
#[derive(Clone)]
pub struct Limits {
    /// The one Redis connection type; cloned per call (a handle to a multiplexed connection).
    pub(crate) conn: RedisConn,
    pub(crate) layout: KeyLayout,
    pub(crate) cfg: Arc<LimitsConfig>,
    /// `cfg.keys` parsed once, so every call looks its key up without parsing names.
    pub(crate) keys: Arc<BTreeMap<KeyId, KeyLimits>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("layout", &self.layout)
            .field(
                "keys",
                &self.keys.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Refuses durations whose µs or ms would not fit the scripts' arithmetic.
fn ms(field: &'static str, d: Duration) -> Result<u64, LimitsError> {
    let ms = d.as_millis();
    if ms == 0 || ms > 10 * 365 * 86_400_000 {
        return Err(LimitsError::InvalidInput {
            field,
            message: format!("{d:?} must be between 1 ms and 10 years"),
        });
    }
    Ok(ms as u64)
}

impl Limits {
    /// A limiter over `conn`, with keys under `key_prefix` (`redis.key_prefix`), after
    /// validating `cfg`.
    pub fn new(conn: RedisConn, key_prefix: &str, cfg: LimitsConfig) -> Result<Self, LimitsError> {
        cfg.validate()?;
        let layout = KeyLayout::new(key_prefix)?;
        let keys = cfg
            .keys
            .iter()
            .map(|(name, l)| {
                let id = name
                    .parse::<KeyId>()
                    .map_err(|e| LimitsError::InvalidConfig {
                        field: format!("limits.keys.\"{name}\""),
                        message: e.to_string(),
                    })?;
                Ok((id, l.clone()))
            })
            .collect::<Result<BTreeMap<_, _>, LimitsError>>()?;
        Ok(Self {
            conn,
            layout,
            cfg: Arc::new(cfg),
            keys: Arc::new(keys),
        })
    }

    /// Connects with `redis` (any deployment [`RedisConn`] supports) and uses its
    /// `key_prefix`.
    pub async fn connect(
        redis: &motionq_config::RedisConfig,
        cfg: LimitsConfig,
    ) -> Result<Self, LimitsError> {
        cfg.validate()?;
        let conn = RedisConn::connect(redis).await.map_err(|e| match e {
            motionq_store::ConnectError::Config(m) => LimitsError::InvalidConfig {
                field: "redis".into(),
                message: m,
            },
            motionq_store::ConnectError::Unreachable { source, .. } => LimitsError::Redis(source),
        })?;
        Self::new(conn, &redis.key_prefix, cfg)
    }

    /// The Redis key names used.
    pub fn layout(&self) -> &KeyLayout {
        &self.layout
    }

    /// The configuration in force.
    pub fn config(&self) -> &LimitsConfig {
        &self.cfg
    }

    /// The configured keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = (&KeyId, &KeyLimits)> {
        self.keys.iter()
    }

    /// The limits of `key`, or [`LimitsError::UnknownKey`].
    pub fn key_limits(&self, key: &KeyId) -> Result<&KeyLimits, LimitsError> {
        self.keys
            .get(key)
            .ok_or_else(|| LimitsError::UnknownKey(key.to_string()))
    }

    fn rate_of(l: &KeyLimits, op: Op) -> (f64, u32) {
        match op {
            Op::Create => (l.create_rate_per_s, l.create_burst),
            Op::Query => (l.query_rate_per_s, l.query_burst),
        }
    }

    fn cap_of(l: &KeyLimits, op: Op) -> Option<u32> {
        match op {
            Op::Create => l.create_max_per_s,
            Op::Query => l.query_max_per_s,
        }
    }

    // ---- rate -------------------------------------------------------------------------------

    /// Counts one call of `op` (weight `cost`, usually 1) against `key`'s rate if it fits now.
    pub async fn acquire(&self, key: &KeyId, op: Op, cost: u32) -> Result<Decision, LimitsError> {
        Ok(self
            .gcra(key, op, cost, false, Duration::ZERO)
            .await?
            .decision)
    }

    /// [`acquire`](Self::acquire) for a call whose ARRIVAL at the vendor must respect the
    /// key's per-second cap (`create_max_per_s` / `query_max_per_s`), not only its dispatch:
    /// the admission keeps counting in the cap's sliding second until the caller reports the
    /// answer with [`answered`](Self::answered) (or `hold` has passed, for a caller that died),
    /// and only then starts its 1 s. The vendor receives the call between admission and answer,
    /// so no second of the vendor's own clock holds more than the cap however the network and
    /// the scheduler shift calls; each call costs its latency of extra capacity. `hold` must
    /// cover the call's timeout. Without a cap this is [`acquire_timed`](Self::acquire_timed)
    /// and no ticket is returned.
    pub async fn acquire_held(
        &self,
        key: &KeyId,
        op: Op,
        cost: u32,
        hold: Duration,
    ) -> Result<Admission, LimitsError> {
        if hold.is_zero() {
            return Err(LimitsError::InvalidInput {
                field: "hold",
                message: "must be longer than zero (the call's timeout)".into(),
            });
        }
        self.gcra(key, op, cost, false, hold).await
    }

    /// The call admitted with `ticket` was answered (successfully or not) or will never be
    /// sent: its second in the per-second cap's window starts now. Idempotent; returns
    /// whether the window still held the admission as in flight.
    pub async fn answered(&self, ticket: &HeldTicket) -> Result<bool, LimitsError> {
        let moved: i64 = scripts::WINDOW_DONE
            .key(self.layout.window(&ticket.key, ticket.op))
            .arg(&ticket.first)
            .arg(ticket.cost)
            .arg(ticket.interval_us)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(moved > 0)
    }

    /// [`acquire`](Self::acquire), also returning the server time of the decision.
    pub async fn acquire_timed(
        &self,
        key: &KeyId,
        op: Op,
        cost: u32,
    ) -> Result<Admission, LimitsError> {
        self.gcra(key, op, cost, false, Duration::ZERO).await
    }

    /// What [`acquire`](Self::acquire) would answer now, without counting anything.
    pub async fn peek(&self, key: &KeyId, op: Op, cost: u32) -> Result<Decision, LimitsError> {
        Ok(self
            .gcra(key, op, cost, true, Duration::ZERO)
            .await?
            .decision)
    }

    async fn gcra(
        &self,
        key: &KeyId,
        op: Op,
        cost: u32,
        peek: bool,
        hold: Duration,
    ) -> Result<Admission, LimitsError> {
        let l = self.key_limits(key)?;
        let (rate, burst) = Self::rate_of(l, op);
        let cap = Self::cap_of(l, op);
        let most = cap.map_or(burst, |c| c.min(burst));
        if cost == 0 || cost > most {
            return Err(LimitsError::InvalidInput {
                field: "cost",
                message: format!(
                    "{cost} must be between 1 and the key's {} burst / per-second cap ({most})",
                    op.as_str()
                ),
            });
        }
        let v: Value = scripts::GCRA
            .key(self.layout.tat(key, op))
            .key(self.layout.park(key))
            .key(self.layout.aimd(key))
            .key(self.layout.window(key, op))
            .arg(op.as_str())
            .arg(rate)
            .arg(burst)
            .arg(cost)
            .arg(if peek { "1" } else { "0" })
            .arg(cap.unwrap_or(0))
            .arg(if cap.is_some() {
                hold.as_micros().min(u64::MAX as u128) as u64
            } else {
                0
            })
            .invoke_async(&mut self.conn.clone())
            .await?;
        let r = Reply::new("gcra", v)?;
        let decision = match r.int(0)? {
            0 => Decision::Allowed,
            1 => Decision::Wait(r.dur(1)?),
            2 => Decision::Parked(Parked {
                reason: ParkReason::parse(&r.str(2)?),
                until: r.opt_time(3)?,
                since: None,
            }),
            c => {
                return Err(LimitsError::Protocol {
                    script: "gcra",
                    detail: format!("unknown code {c}"),
                })
            }
        };
        let interval = r.dur(5)?;
        let ticket = match r.len() > 6 {
            true => Some(r.str(6)?).filter(|t| !t.is_empty()),
            false => None,
        }
        .map(|first| HeldTicket {
            key: key.clone(),
            op,
            first,
            cost,
            interval_us: interval.as_micros() as u64,
        });
        let rate_lowered = r.len() > 7 && r.int(7)? == 1;
        Ok(Admission {
            decision,
            server_time: r.time(4)?,
            interval,
            ticket,
            rate_lowered,
        })
    }

    /// The vendor answered `rate_limited` for `op` on `key`: lowers the key's effective rate
    /// for every worker (multiplicative decrease, at most once per `aimd.cooldown_ms`, never
    /// below `aimd.floor_fraction` of the configured rate) and, with a retry hint, admits no
    /// `op` call on the key until it has passed.
    pub async fn on_rate_limited(
        &self,
        key: &KeyId,
        op: Op,
        retry_after: Option<Duration>,
    ) -> Result<RateState, LimitsError> {
        let hint = retry_after.map_or(-1, |d| d.as_micros().min(i64::MAX as u128 / 2) as i64);
        let st = self.aimd(key, op, "decrease", hint).await?;
        tracing::info!(
            key = %key,
            op = op.as_str(),
            effective_per_s = st.effective_per_s,
            configured_per_s = st.configured_per_s,
            decreased = st.decreased,
            "vendor rate limit: key slowed down for every worker"
        );
        Ok(st)
    }

    /// A call of `op` on `key` succeeded: raises a lowered effective rate by
    /// `aimd.increase_fraction` of the configured rate (additive increase, up to the
    /// configured rate).
    pub async fn on_success(&self, key: &KeyId, op: Op) -> Result<RateState, LimitsError> {
        self.aimd(key, op, "increase", -1).await
    }

    async fn aimd(
        &self,
        key: &KeyId,
        op: Op,
        mode: &str,
        hint_us: i64,
    ) -> Result<RateState, LimitsError> {
        let l = self.key_limits(key)?;
        let (rate, _) = Self::rate_of(l, op);
        let a = &self.cfg.aimd;
        let v: Value = scripts::AIMD
            .key(self.layout.aimd(key))
            .arg(mode)
            .arg(op.as_str())
            .arg(rate)
            .arg(a.decrease_factor)
            .arg(a.floor_fraction)
            .arg(a.increase_fraction)
            .arg(a.cooldown_ms * 1000)
            .arg(hint_us)
            .arg(self.cfg.idle_ttl_s * 1000)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let r = Reply::new("aimd", v)?;
        let now = r.int(3)?;
        let block = r.int(1)?;
        Ok(RateState {
            configured_per_s: rate,
            effective_per_s: r.opt_f64(0)?.unwrap_or(rate),
            blocked_until: (block > now).then(|| scripts::from_us(block)),
            decreased: r.int(2)? == 1,
        })
    }

    // ---- concurrency ------------------------------------------------------------------------

    /// Takes a concurrency slot of `key` for `holder` (the job id) with a lease of `lease_ttl`
    /// (`None`: the key's `lease_ttl_ms`). Re-acquiring by the same holder renews its lease and
    /// never takes a second slot. Expired leases are reclaimed first.
    pub async fn acquire_slot(
        &self,
        key: &KeyId,
        holder: &str,
        lease_ttl: Option<Duration>,
    ) -> Result<SlotDecision, LimitsError> {
        let l = self.key_limits(key)?;
        check_holder(holder)?;
        let ttl = ms("lease_ttl", lease_ttl.unwrap_or(l.lease_ttl()))?;
        let v: Value = scripts::SLOT_ACQUIRE
            .key(self.layout.slots(key))
            .key(self.layout.park(key))
            .arg(holder)
            .arg(l.max_concurrent)
            .arg(ttl)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let r = Reply::new("slot_acquire", v)?;
        let in_flight = r.int(2)?.max(0) as u32;
        Ok(match r.int(0)? {
            0 => SlotDecision::Acquired(Lease {
                key: key.clone(),
                holder: holder.to_string(),
                expires_at: r.time(1)?,
                in_flight,
            }),
            1 => SlotDecision::Full {
                in_flight,
                limit: l.max_concurrent,
                retry_in: r.dur(1)?,
            },
            2 => SlotDecision::Parked(Parked {
                reason: ParkReason::parse(&r.str(3)?),
                until: r.opt_time(4)?,
                since: None,
            }),
            c => {
                return Err(LimitsError::Protocol {
                    script: "slot_acquire",
                    detail: format!("unknown code {c}"),
                })
            }
        })
    }

    /// Extends `holder`'s lease on `key`. `None` when it holds no slot any more (its lease
    /// expired and was reclaimed, or it was released): the caller must acquire again.
    pub async fn renew_slot(
        &self,
        key: &KeyId,
        holder: &str,
        lease_ttl: Option<Duration>,
    ) -> Result<Option<Lease>, LimitsError> {
        let l = self.key_limits(key)?;
        check_holder(holder)?;
        let ttl = ms("lease_ttl", lease_ttl.unwrap_or(l.lease_ttl()))?;
        let v: Value = scripts::SLOT_RENEW
            .key(self.layout.slots(key))
            .arg(holder)
            .arg(ttl)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let r = Reply::new("slot_renew", v)?;
        if r.int(0)? == 0 {
            return Ok(None);
        }
        Ok(Some(Lease {
            key: key.clone(),
            holder: holder.to_string(),
            expires_at: r.time(1)?,
            in_flight: r.int(2)?.max(0) as u32,
        }))
    }

    /// Frees `holder`'s slot on `key` (the vendor task is terminal). `false` when it held none.
    pub async fn release_slot(&self, key: &KeyId, holder: &str) -> Result<bool, LimitsError> {
        check_holder(holder)?;
        let n: i64 = scripts::SLOT_RELEASE
            .key(self.layout.slots(key))
            .arg(holder)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(n > 0)
    }

    // ---- park -------------------------------------------------------------------------------

    /// Parks `key`: no new rate admissions, slots or reservations until `until` (server time)
    /// or, with `None`, until [`unpark`](Self::unpark). A park until an operator acts is never
    /// replaced by a timed one; of two timed parks the later wins. Returns the state after.
    pub async fn park(
        &self,
        key: &KeyId,
        reason: ParkReason,
        until: Option<SystemTime>,
    ) -> Result<Option<Parked>, LimitsError> {
        self.key_limits(key)?;
        let until_us = until.map_or(0, |t| scripts::to_us(t).max(1));
        let st = self
            .park_call(key, "park", reason.as_str(), until_us)
            .await?;
        if let Some(p) = &st {
            tracing::warn!(key = %key, reason = %p.reason, until = ?p.until, "key parked");
        }
        Ok(st)
    }

    /// Parks `key` for a vendor error class that calls for it (see [`ParkReason::for_error`]);
    /// `until` is the quota window's reset for `quota_exhausted`. Returns `None` (and does
    /// nothing) for classes that do not park.
    pub async fn park_for_error(
        &self,
        key: &KeyId,
        class: motionq_core::ErrorClass,
        until: Option<SystemTime>,
    ) -> Result<Option<Parked>, LimitsError> {
        match ParkReason::for_error(class) {
            Some(reason) => {
                let until = if reason == ParkReason::QuotaExhausted {
                    until
                } else {
                    None
                };
                self.park(key, reason, until).await
            }
            None => Ok(None),
        }
    }

    /// Un-parks `key`. `true` when it was parked.
    pub async fn unpark(&self, key: &KeyId) -> Result<bool, LimitsError> {
        let v: Value = scripts::PARK
            .key(self.layout.park(key))
            .arg("unpark")
            .arg("")
            .arg(0)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let r = Reply::new("park", v)?;
        let was = r.int(4)? > 0;
        if was {
            tracing::info!(key = %key, "key unparked");
        }
        Ok(was)
    }

    /// Whether `key` is parked now.
    pub async fn parked(&self, key: &KeyId) -> Result<Option<Parked>, LimitsError> {
        self.park_call(key, "get", "", 0).await
    }

    async fn park_call(
        &self,
        key: &KeyId,
        mode: &str,
        reason: &str,
        until_us: i64,
    ) -> Result<Option<Parked>, LimitsError> {
        let v: Value = scripts::PARK
            .key(self.layout.park(key))
            .arg(mode)
            .arg(reason)
            .arg(until_us)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let r = Reply::new("park", v)?;
        if r.int(0)? == 0 {
            return Ok(None);
        }
        Ok(Some(Parked {
            reason: ParkReason::parse(&r.str(1)?),
            until: r.opt_time(2)?,
            since: r.opt_time(5)?,
        }))
    }
}

fn check_holder(holder: &str) -> Result<(), LimitsError> {
    if holder.is_empty() || holder.len() > 256 {
        return Err(LimitsError::InvalidInput {
            field: "holder",
            message: "must be 1-256 bytes (the job id)".into(),
        });
    }
    Ok(())
}
