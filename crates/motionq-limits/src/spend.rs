//! Spend: budgets per key (hourly / daily / total) and per campaign, with reservations that are
//! checked and taken in all budgets at once, then committed, settled or released.

use std::time::SystemTime;

use redis::Value;

use crate::error::LimitsError;
use crate::key::{check_id, KeyId};
use crate::limits::{Limits, Parked};
use crate::scripts::{self, Reply};
use crate::MAX_AMOUNT;

/// A budget a reservation is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetRef {
    /// Every spend window configured for the key (`spend.hourly`, `.daily`, `.total`), in the
    /// key's vendor unit. A parked key denies the reservation.
    Key(KeyId),
    /// A campaign's total budget (`campaign/<id>`), never resetting. The limit comes from the
    /// campaign (manifest): each reserve enforces the limit it is given, and the last one
    /// given is stored for reports.
    Campaign {
        /// Campaign id (1–200 characters of `A-Za-z0-9_-.:@`).
        id: String,
        /// Limit in micro-units.
        limit: u64,
    },
}

/// Which window a budget counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetWindow {
    /// `hour_window_s` windows (UTC calendar hours by default).
    Hourly,
    /// `day_window_s` windows (UTC calendar days by default).
    Daily,
    /// Never resets.
    Total,
    /// A campaign's budget; never resets.
    Campaign,
}

impl BudgetWindow {
    /// `hourly`, `daily`, `total`, `campaign`.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetWindow::Hourly => "hourly",
            BudgetWindow::Daily => "daily",
            BudgetWindow::Total => "total",
            BudgetWindow::Campaign => "campaign",
        }
    }
}

/// One concrete budget: name, limit and window length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BudgetSpec {
    pub name: String,
    pub window: BudgetWindow,
    pub limit: u64,
    /// Window length in s; 0 = never resets.
    pub len_s: u64,
}

/// State of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    /// Reserved; no create call has been sent yet. Returned to the budgets when its lease
    /// (`reservation_lease_ms`) passes.
    Pending,
    /// The create call may have reached the vendor: kept until settled or released, whatever
    /// happens to the worker.
    Committed,
    /// Charged its actual cost.
    Settled,
    /// Given back (vendor failure, or never sent).
    Released,
    /// A pending reservation whose lease passed; given back.
    Expired,
}

impl ReservationState {
    fn parse(s: &str) -> Result<Self, LimitsError> {
        Ok(match s {
            "pending" => Self::Pending,
            "committed" => Self::Committed,
            "settled" => Self::Settled,
            "released" => Self::Released,
            "expired" => Self::Expired,
            other => {
                return Err(LimitsError::Protocol {
                    script: "spend",
                    detail: format!("unknown reservation state `{other}`"),
                })
            }
        })
    }

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Committed => "committed",
            Self::Settled => "settled",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }
}

/// A pending reservation: the money is held; no create call has been sent under it yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Reservation id (the job id).
    pub id: String,
    /// Amount held, micro-units.
    pub amount: u64,
    /// When it is returned to its budgets unless committed (or renewed by reserving again).
    pub lease_until: SystemTime,
    /// `true` when this call found the same reservation already pending (a retry) and only
    /// renewed its lease.
    pub already: bool,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// The budget has no room: `used + reserved + requested > limit`.
    OverLimit {
        /// Settled in the current window.
        used: u64,
        /// Held by open reservations in the current window.
        reserved: u64,
        /// The budget's limit.
        limit: u64,
        /// The amount asked for.
        requested: u64,
        /// `requested > limit`: this amount can never fit this budget (fail, don't wait).
        never_fits: bool,
    },
    /// The key is parked.
    KeyParked(Parked),
}

/// A refused reservation: nothing was reserved in any budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The budget that refused (`evolink/main:daily`, `campaign/c1`), or the key for a park.
    pub budget: String,
    /// Its window.
    pub window: Option<BudgetWindow>,
    /// Why.
    pub reason: DenyReason,
    /// When the refusing window resets (or the park ends); `None`: only settling, releasing
    /// or an operator frees room.
    pub resets_at: Option<SystemTime>,
}

/// The answer of [`Limits::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Held in every budget (or already held: see [`Reservation::already`]).
    Reserved(Reservation),
    /// Refused by one budget; held in none.
    Denied(Denial),
    /// This reservation id was already settled: its money is spent and it is never reserved
    /// again (a job must not be charged twice under one id).
    AlreadySettled {
        /// The amount that was reserved.
        amount: u64,
    },
    /// This reservation id is committed: a create call may already have been sent under it
    /// (possibly with another key). Do NOT send again: reconcile with the vendor, then settle
    /// or release it. Its money stays held meanwhile.
    AlreadyCommitted {
        /// The amount held.
        amount: u64,
        /// The vendor task id, if it was recorded.
        task_id: Option<String>,
    },
}

/// The answer of [`Limits::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Committed: the money stays held until settle or release.
    Committed,
    /// The reservation is no longer held (its lease expired, or it was released): do NOT call
    /// the vendor; reserve again first.
    Lost(ReservationState),
    /// Already settled.
    AlreadySettled,
}

/// The answer of [`Limits::settle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    /// Charged.
    Settled {
        /// Some budget now has `used + reserved > limit` (the actual cost exceeded the
        /// reservation); further reservations there are refused until it has room.
        overrun: bool,
        /// The reservation had already been released or had expired; the actual cost was
        /// charged anyway, because the vendor did spend it.
        late: bool,
    },
    /// Was already settled (a retry); nothing changed.
    AlreadySettled {
        /// The actual amount recorded the first time.
        actual: u64,
    },
}

/// The answer of [`Limits::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Given back to every budget whose window is still current.
    Released,
    /// Was already released or expired (a retry); nothing changed.
    AlreadyClosed(ReservationState),
    /// Was settled: money spent, nothing to give back.
    AlreadySettled,
}

/// A reservation record, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationInfo {
    /// Reservation id.
    pub id: String,
    /// State.
    pub state: ReservationState,
    /// Amount reserved, micro-units.
    pub amount: u64,
    /// Actual cost once settled.
    pub actual: Option<u64>,
    /// Vendor task id recorded by commit.
    pub task_id: Option<String>,
    /// Server time of the reserve.
    pub created: Option<SystemTime>,
    /// Lease end while pending.
    pub lease_until: Option<SystemTime>,
    /// Redis keys of the budgets it was reserved in.
    pub budget_keys: Vec<String>,
}

/// A budget's state in its current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetView {
    /// `evolink/main:hourly`, `campaign/c1`, ...
    pub name: String,
    /// Its window.
    pub window: BudgetWindow,
    /// Settled in the current window, micro-units.
    pub used: u64,
    /// Held by open reservations made in the current window.
    pub reserved: u64,
    /// Limit.
    pub limit: u64,
    /// When the current window ends (`None`: never).
    pub resets_at: Option<SystemTime>,
}

fn check_amount(field: &'static str, amount: u64) -> Result<(), LimitsError> {
    if amount > MAX_AMOUNT {
        return Err(LimitsError::InvalidInput {
            field,
            message: format!("{amount} is above the maximum of {MAX_AMOUNT} micro-units"),
        });
    }
    Ok(())
}

impl Limits {
    /// The concrete budgets behind references, in order.
    pub(crate) fn budget_specs(&self, refs: &[BudgetRef]) -> Result<Vec<BudgetSpec>, LimitsError> {
        let mut out = Vec::new();
        for r in refs {
            match r {
                BudgetRef::Key(k) => {
                    let s = &self.key_limits(k)?.spend;
                    for (window, limit, len_s) in [
                        (BudgetWindow::Hourly, s.hourly, self.cfg.hour_window_s),
                        (BudgetWindow::Daily, s.daily, self.cfg.day_window_s),
                        (BudgetWindow::Total, s.total, 0),
                    ] {
                        if let Some(limit) = limit {
                            out.push(BudgetSpec {
                                name: format!("{k}:{}", window.as_str()),
                                window,
                                limit,
                                len_s,
                            });
                        }
                    }
                }
                BudgetRef::Campaign { id, limit } => {
                    check_id("campaign id", id)?;
                    check_amount("campaign budget limit", *limit)?;
                    out.push(BudgetSpec {
                        name: format!("campaign/{id}"),
                        window: BudgetWindow::Campaign,
                        limit: *limit,
                        len_s: 0,
                    });
                }
            }
        }
        let mut names: Vec<&str> = out.iter().map(|b| b.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(LimitsError::InvalidInput {
                field: "budgets",
                message: "the same budget is listed twice".into(),
            });
        }
        Ok(out)
    }

    /// Reserves `amount` (micro-units, the worst-case cost) under `reservation_id` (the job
    /// id) in every budget of `budgets` at once, or in none.
    ///
    /// Idempotent per id:
    /// * pending, same budgets, window and amount (a retry): returned with
    ///   [`Reservation::already`], its lease renewed; nothing reserved twice;
    /// * pending, but other budgets (the job was re-routed to another key), another window
    ///   (retried after the hour turned) or another amount: *moved*, checked as if the old one
    ///   were gone and replaced only if the new one fits (if denied, the old one stays);
    /// * committed: [`ReserveOutcome::AlreadyCommitted`], never moved or resized, because the
    ///   vendor may have the task;
    /// * released or expired: reserved afresh (the earlier money was given back);
    /// * settled: refused ([`ReserveOutcome::AlreadySettled`]).
    ///
    /// A parked key among the budgets denies the reservation. This park check is a separate
    /// read before the atomic script (keys and spend live in different hash slots): a park that
    /// lands in between is seen by the next rate/slot acquire instead.
    pub async fn reserve(
        &self,
        budgets: &[BudgetRef],
        reservation_id: &str,
        amount: u64,
    ) -> Result<ReserveOutcome, LimitsError> {
        check_id("reservation id", reservation_id)?;
        check_amount("amount", amount)?;
        let specs = self.budget_specs(budgets)?;
        for b in budgets {
            if let BudgetRef::Key(k) = b {
                if let Some(p) = self.parked(k).await? {
                    return Ok(ReserveOutcome::Denied(Denial {
                        budget: k.to_string(),
                        window: None,
                        resets_at: p.until,
                        reason: DenyReason::KeyParked(p),
                    }));
                }
            }
        }
        let mut inv = scripts::RESERVE.prepare_invoke();
        inv.key(self.layout.pending())
            .key(self.layout.reservation(reservation_id));
        for s in &specs {
            inv.key(self.layout.budget(&s.name));
        }
        inv.arg(reservation_id)
            .arg(amount)
            .arg(self.cfg.reservation_lease_ms)
            .arg(self.cfg.record_ttl_s * 1000)
            .arg(self.layout.reservation_prefix())
            .arg(self.cfg.reap_batch)
            .arg(WINDOW_GRACE_MS);
        for s in &specs {
            inv.arg(&s.name).arg(s.limit).arg(s.len_s);
        }
        let v: Value = inv.invoke_async(&mut self.conn.clone()).await?;
        let r = Reply::new("spend_reserve", v)?;
        Ok(match r.int(0)? {
            0 | 1 => ReserveOutcome::Reserved(Reservation {
                id: reservation_id.to_string(),
                amount: r.int(4)?.max(0) as u64,
                lease_until: r.time(2)?,
                already: r.int(0)? == 1,
            }),
            2 => {
                let idx = r.int(1)?;
                let spec = usize::try_from(idx - 1)
                    .ok()
                    .and_then(|i| specs.get(i))
                    .ok_or_else(|| LimitsError::Protocol {
                        script: "spend_reserve",
                        detail: format!("budget index {idx} out of range"),
                    })?;
                let limit = r.int(4)?.max(0) as u64;
                ReserveOutcome::Denied(Denial {
                    budget: spec.name.clone(),
                    window: Some(spec.window),
                    reason: DenyReason::OverLimit {
                        used: r.int(2)?.max(0) as u64,
                        reserved: r.int(3)?.max(0) as u64,
                        limit,
                        requested: amount,
                        never_fits: amount > limit,
                    },
                    resets_at: r.opt_time(5)?,
                })
            }
            3 => ReserveOutcome::AlreadySettled {
                amount: r.int(4)?.max(0) as u64,
            },
            4 => ReserveOutcome::AlreadyCommitted {
                amount: r.int(4)?.max(0) as u64,
                task_id: Some(r.str(5)?).filter(|t| !t.is_empty()),
            },
            c => {
                return Err(LimitsError::Protocol {
                    script: "spend_reserve",
                    detail: format!("unknown code {c}"),
                })
            }
        })
    }

    /// Marks a reservation committed: call it right before sending the create call (and again
    /// with the task id once known). From then on the money stays held until
    /// [`settle`](Self::settle) or [`release`](Self::release), even if the worker dies.
    pub async fn commit(
        &self,
        reservation_id: &str,
        task_id: Option<&str>,
    ) -> Result<CommitOutcome, LimitsError> {
        check_id("reservation id", reservation_id)?;
        let v: Value = scripts::COMMIT
            .key(self.layout.pending())
            .key(self.layout.reservation(reservation_id))
            .key(self.layout.committed())
            .arg(reservation_id)
            .arg(task_id.unwrap_or(""))
            .invoke_async(&mut self.conn.clone())
            .await?;
        let r = Reply::new("spend_commit", v)?;
        Ok(match r.int(0)? {
            0 => CommitOutcome::Committed,
            1 => CommitOutcome::Lost(ReservationState::parse(&r.str(1)?)?),
            2 => CommitOutcome::AlreadySettled,
            _ => return Err(LimitsError::UnknownReservation(reservation_id.into())),
        })
    }

    /// Charges the actual cost (micro-units; lower or higher than reserved) and closes the
    /// reservation. Idempotent.
    pub async fn settle(
        &self,
        reservation_id: &str,
        actual: u64,
    ) -> Result<SettleOutcome, LimitsError> {
        check_id("reservation id", reservation_id)?;
        check_amount("actual", actual)?;
        let v: Value = scripts::SETTLE
            .key(self.layout.pending())
            .key(self.layout.reservation(reservation_id))
            .key(self.layout.committed())
            .arg(reservation_id)
            .arg(actual)
            .arg(self.cfg.record_ttl_s * 1000)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let r = Reply::new("spend_settle", v)?;
        Ok(match r.int(0)? {
            0 => {
                let out = SettleOutcome::Settled {
                    overrun: r.int(1)? == 1,
                    late: r.int(2)? == 1,
                };
                if let SettleOutcome::Settled { overrun, late } = out {
                    if overrun || late {
                        tracing::warn!(
                            reservation = reservation_id,
                            actual,
                            overrun,
                            late,
                            "settled above what was held"
                        );
                    }
                }
                out
            }
            1 => SettleOutcome::AlreadySettled {
                actual: r.int(1)?.max(0) as u64,
            },
            _ => return Err(LimitsError::UnknownReservation(reservation_id.into())),
        })
    }

    /// Gives an open reservation back (vendor failure: vendors refund failed tasks; or the
    /// create call was never sent). Idempotent.
    pub async fn release(&self, reservation_id: &str) -> Result<ReleaseOutcome, LimitsError> {
        check_id("reservation id", reservation_id)?;
        let v: Value = scripts::RELEASE
            .key(self.layout.pending())
            .key(self.layout.reservation(reservation_id))
            .key(self.layout.committed())
            .arg(reservation_id)
            .arg(self.cfg.record_ttl_s * 1000)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let r = Reply::new("spend_release", v)?;
        Ok(match r.int(0)? {
            0 => ReleaseOutcome::Released,
            1 => ReleaseOutcome::AlreadyClosed(ReservationState::parse(&r.str(1)?)?),
            2 => ReleaseOutcome::AlreadySettled,
            _ => return Err(LimitsError::UnknownReservation(reservation_id.into())),
        })
    }

    /// Returns expired pending reservations to their budgets (every reserve does this too, for
    /// up to `reap_batch` of them). Returns how many were processed.
    pub async fn reap_expired(&self) -> Result<u64, LimitsError> {
        let mut total = 0u64;
        loop {
            let n: i64 = scripts::REAP
                .key(self.layout.pending())
                .arg(self.layout.reservation_prefix())
                .arg(self.cfg.reap_batch)
                .arg(self.cfg.record_ttl_s * 1000)
                .invoke_async(&mut self.conn.clone())
                .await?;
            total += n.max(0) as u64;
            if n < i64::from(self.cfg.reap_batch) {
                return Ok(total);
            }
        }
    }

    /// Committed reservations (a create call may have been sent) that were committed at least
    /// `older_than` ago and are still neither settled nor released, oldest first, at most
    /// `max`. Their money stays held until reconciliation settles or releases them: this is
    /// the list to reconcile after workers crashed.
    pub async fn committed_reservations(
        &self,
        older_than: std::time::Duration,
        max: usize,
    ) -> Result<Vec<ReservationInfo>, LimitsError> {
        let ids: Vec<String> = scripts::COMMITTED
            .key(self.layout.committed())
            .arg(older_than.as_micros().min(i64::MAX as u128 / 2) as i64)
            .arg(max)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(info) = self.reservation(&id).await? {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// The stored record of a reservation (`None` if unknown or its record expired).
    pub async fn reservation(
        &self,
        reservation_id: &str,
    ) -> Result<Option<ReservationInfo>, LimitsError> {
        check_id("reservation id", reservation_id)?;
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.layout.reservation(reservation_id))
            .arg(&[
                "state",
                "amount",
                "actual",
                "task",
                "created",
                "lease_until",
                "budgets",
            ])
            .query_async(&mut self.conn.clone())
            .await?;
        let get = |i: usize| fields.get(i).cloned().flatten();
        let Some(state) = get(0) else {
            return Ok(None);
        };
        let num = |i: usize| get(i).and_then(|s| s.parse::<i64>().ok());
        let budget_keys = get(6)
            .map(|s| {
                s.split('\n')
                    .step_by(2)
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(ReservationInfo {
            id: reservation_id.to_string(),
            state: ReservationState::parse(&state)?,
            amount: num(1).unwrap_or(0).max(0) as u64,
            actual: num(2).map(|a| a.max(0) as u64),
            task_id: get(3).filter(|t| !t.is_empty()),
            created: num(4).filter(|&t| t > 0).map(scripts::from_us),
            lease_until: num(5).filter(|&t| t > 0).map(scripts::from_us),
            budget_keys,
        }))
    }

    /// Current-window state of budgets (read only).
    pub async fn budgets(&self, refs: &[BudgetRef]) -> Result<Vec<BudgetView>, LimitsError> {
        let specs = self.budget_specs(refs)?;
        self.budget_views(&specs).await
    }

    pub(crate) async fn budget_views(
        &self,
        specs: &[BudgetSpec],
    ) -> Result<Vec<BudgetView>, LimitsError> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = scripts::SPEND_INSPECT.prepare_invoke();
        for s in specs {
            inv.key(self.layout.budget(&s.name));
        }
        for s in specs {
            inv.arg(s.limit).arg(s.len_s);
        }
        let v: Value = inv.invoke_async(&mut self.conn.clone()).await?;
        let r = Reply::new("spend_inspect", v)?;
        if r.len() != 1 + 3 * specs.len() {
            return Err(LimitsError::Protocol {
                script: "spend_inspect",
                detail: format!("{} items for {} budgets", r.len(), specs.len()),
            });
        }
        specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(BudgetView {
                    name: s.name.clone(),
                    window: s.window,
                    used: r.int(1 + 3 * i)?.max(0) as u64,
                    reserved: r.int(2 + 3 * i)?.max(0) as u64,
                    limit: s.limit,
                    resets_at: r.opt_time(3 + 3 * i)?,
                })
            })
            .collect()
    }
}

/// A windowed budget's hash outlives its window by this much, so a settle racing the rollover
/// still finds the window it belongs to (it then adjusts numbers nobody checks any more, which
/// is harmless) rather than a missing key.
const WINDOW_GRACE_MS: u64 = 60_000;
