//! Per-vendor-API-key rate, concurrency and spend limits, held in Redis and enforced by Lua
//! scripts, so that any number of worker processes on any number of machines share one exact
//! limit.
//!
//! Every decision is taken inside one Lua script, atomically, on the Redis node that holds the
//! state, with that node's clock (`TIME`). Workers keep no limit state in memory: fifty workers
//! on ten machines see exactly the same limit as one.
//!
//! # Modules
//!
//! * [`Limits`] (module `limits`) — the facade. Rate ([`Limits::acquire`], GCRA), adaptive rate
//!   ([`Limits::on_rate_limited`], [`Limits::on_success`], AIMD), concurrency leases
//!   ([`Limits::acquire_slot`], [`Limits::renew_slot`], [`Limits::release_slot`]) and parking
//!   ([`Limits::park`], [`Limits::unpark`]).
//! * [`spend`] — budgets and reservations ([`Limits::reserve`], [`Limits::commit`],
//!   [`Limits::settle`], [`Limits::release`]).
//! * `report` — read-only views for `motionq keys` ([`Limits::state`], [`Limits::list_keys`]) and
//!   routing ([`Limits::pick_usable`]).
//! * [`config`] — [`LimitsConfig`] and [`KeyLimits`] (serde, documented fields).
//! * [`key`] — [`KeyId`] (`<vendor>/<alias>`), [`Op`], [`ParkReason`], [`KeyLayout`] (Redis
//!   key names).
//! * [`error`] — [`LimitsError`].
//! * `scripts` + `lua/*.lua` — the scripts, loaded once with [`redis::Script`] (`EVALSHA`, with
//!   `SCRIPT LOAD` and retry when the server does not know the script).
//!
//! # Use: the submit and poll stages
//!
//! A key is named by its vendor and configured alias (`evolink/main`), never by the API key.
//! Ids (job ids as holder and reservation ids, campaign ids) are 1–200 characters of
//! `A-Za-z0-9_-.:@`.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use motionq_limits::*;
//! # async fn submit(limits: &Limits, job: &str, campaign: &str, worst_case: u64)
//! #     -> Result<(), LimitsError> {
//! let candidates: Vec<KeyId> = vec!["evolink/main".parse()?, "evolink/spare".parse()?];
//! // 1. Route: a key that is not parked and has a slot, rate and budget room (only looks).
//! let key = match limits.pick_usable(&candidates, Some(worst_case)).await? {
//!     Ok(k) => k,
//!     // Jobs wait, they do not fail; `why` says why (all parked / rate / budget / ...).
//!     Err(why) => { tracing::info!(%why, "waiting for a usable key"); return Ok(()) }
//! };
//! // 2. A concurrency slot, held until the vendor task is terminal (idempotent per job).
//! let SlotDecision::Acquired(_lease) = limits.acquire_slot(&key, job, None).await? else {
//!     return Ok(()); // lost a race: route again later
//! };
//! // 3. Money for the worst case, in the key's budgets and the campaign's, all or nothing.
//! let budgets = [BudgetRef::Key(key.clone()),
//!                BudgetRef::Campaign { id: campaign.into(), limit: 50_000_000 }];
//! match limits.reserve(&budgets, job, worst_case).await? {
//!     ReserveOutcome::Reserved(_) => {}
//!     // Sent before a crash: reconcile with the vendor first, never send twice.
//!     ReserveOutcome::AlreadyCommitted { .. } => return Ok(()),
//!     // Denied (reason and reset time inside): give the slot back and wait.
//!     _ => { limits.release_slot(&key, job).await?; return Ok(()) }
//! }
//! // 4. Rate: wait until the key's create rate admits the call (a wait longer than
//! //    `reservation_lease_ms` must renew the reservation by reserving again).
//! loop {
//!     match limits.acquire(&key, Op::Create, 1).await? {
//!         Decision::Allowed => break,
//!         Decision::Wait(d) => tokio::time::sleep(d).await,
//!         Decision::Parked(_) => { /* release slot + reservation, route again */ return Ok(()) }
//!     }
//! }
//! // 5. Commit BEFORE sending: from here the money is held whatever happens to this worker.
//! if limits.commit(job, None).await? != CommitOutcome::Committed {
//!     return Ok(()); // the reservation's lease passed meanwhile: reserve again, don't send
//! }
//! // ... vendor create call ...; then record the task id:
//! limits.commit(job, Some("vendor-task-id")).await?;
//! limits.on_success(&key, Op::Create).await?;
//! // Poll stage: renew the slot well within the lease, `acquire(.., Op::Query, 1)` per poll;
//! // when the task is terminal: `settle(job, actual)` (or `release(job)` if the vendor
//! // failed/refunded it), then `release_slot(&key, job)`.
//! # Ok(()) }
//! ```
//!
//! Vendor errors: `rate_limited` → [`Limits::on_rate_limited`] (with the parsed `Retry-After`);
//! `quota_exhausted`, `insufficient_funds`, `auth`, `forbidden` → [`Limits::park_for_error`].
//!
//! # Algorithms
//!
//! **Rate: GCRA** (`lua/gcra.lua`), one state per key and operation (create and query are
//! limited separately). With the emission interval `T = ceil(1e6 / rate)` µs and a burst `b`,
//! a call of cost `c` is admitted at server time `now` iff `max(TAT, now) + c·T − now ≤ b·T`,
//! and then `TAT := max(TAT, now) + c·T`. Otherwise the answer is `Wait(max(TAT, now) + c·T −
//! b·T − now)`: exactly the time after which the same call is admitted (if nobody else takes
//! the room first). *Exactness:* if calls 1..k are admitted at `t1 ≤ … ≤ tk`, then `tk − t1 ≥
//! (k − b)·T`, so any interval of length `L` admits at most `b + L/T` calls; with `b = 1` no
//! second ever sees more than `rate` calls. Rounding `T` up means the rate is never exceeded.
//! Because TAT and the clock are Redis's, this holds across any number of processes.
//!
//! **Per-second cap** (optional `create_max_per_s` / `query_max_per_s`, same script). With
//! burst 1, every microsecond a worker arrives after its turn is capacity lost for good
//! (`max(TAT, now)`), so a strict "N per second" vendor limit configured as rate N, burst 1
//! reaches only ~90% of N with 8 workers on a loaded machine (`tests/processes.rs`). A cap adds
//! a sliding log of the last second's admissions (a ZSET by server time): a call is admitted
//! only if the GCRA allows it *and* fewer than `N − cost + 1` admissions lie in the last
//! second. Configured as rate N, burst of a few, cap N, no second ever holds more than N and
//! late wake-ups are absorbed by the burst (measured ~99.7% of N in the same test).
//!
//! **Adaptive rate: AIMD** (`lua/aimd.lua`). A vendor `rate_limited` answer multiplies the
//! key's *effective* rate for that operation by `aimd.decrease_factor` (not below
//! `aimd.floor_fraction` × configured); answers within `aimd.cooldown_ms` of the last decrease
//! are the same storm seen by several workers and lower it only once. A retry hint
//! (`Retry-After`) blocks the operation on the key, for every worker, until it has passed.
//! Each success adds `aimd.increase_fraction` × configured, up to the configured rate. The
//! effective rate lives in Redis and the GCRA script reads it on every call, so all workers
//! slow down and recover together. It is never above the configured rate.
//!
//! **Concurrency: leased semaphore** (`lua/slot_*.lua`). A ZSET per key, holder (job id) →
//! lease expiry in server µs. Acquire first removes expired leases, then: the holder already
//! present → lease renewed (idempotent: a redelivered job never takes a second slot); fewer
//! than `max_concurrent` members → added; else `Full` with the time until the earliest lease
//! expires. Renew extends a present member (a lease that expired but was not yet reclaimed
//! still counts in the ZSET, so nobody else holds its slot and renewing it is safe); renew of a
//! reclaimed lease returns `None`. The slot is held from submit until the vendor task is
//! terminal; the poller renews it.
//!
//! **Spend: reservations across budgets** (`lua/spend_*.lua`). A budget is a limit over a
//! window: a key's `hourly`, `daily` and `total` budgets (key's vendor unit) and a campaign's
//! budget (`campaign/<id>`, never resetting). Windows are *calendar windows by server time*,
//! numbered `floor(now / length)` from the Unix epoch, so with the default lengths they are
//! the UTC hours and days (chosen over rolling windows because vendor caps and invoices reset
//! on calendar boundaries, and a calendar window needs O(1) state per budget). Each budget
//! stores `used` (settled) and `reserved` (held by open reservations) for its current window;
//! the first touch in a new window starts it at zero. [`Limits::reserve`] checks
//! `used + reserved + amount ≤ limit` in every budget and, only if all pass, adds `amount` to
//! every `reserved`, in one script. A reservation moves through:
//!
//! ```text
//!   reserve ──▶ pending ──commit──▶ committed ──settle──▶ settled (actual charged)
//!                  │  └──release──▶ released ◀──release──┘
//!                  └─lease passes─▶ expired (money returned)
//! ```
//!
//! *pending*: reserved, no create call sent yet; it has a lease (`reservation_lease_ms`) and is
//! returned to its budgets when the lease passes (inside every reserve, up to `reap_batch` at a
//! time, and by [`Limits::reap_expired`]). *committed*: the create call may have reached the
//! vendor, so the money is kept with no lease until `settle` or `release` — a worker dying
//! after the vendor accepted a task must never give back money the vendor spent.
//! **The submit stage commits right before sending the create call** (and again with the task
//! id), so a reservation can only expire while no request has left the worker. `settle(actual)`
//! replaces the reserved amount by the actual cost in each budget whose window is still the one
//! the reservation was made in (money counts in the window it was reserved in; the windows that
//! have ended are over). A `settle` after a release or expiry (reconciliation found the task
//! after all) still charges the actual cost ("late"). Reserve, commit, settle and release are
//! idempotent per reservation id: an open reservation is returned (and a pending lease renewed)
//! instead of reserved twice; a pending one asked for with other budgets or amount (the job was
//! re-routed) is moved atomically if the new one fits; a committed one is never moved and a
//! retry is told so (`AlreadyCommitted`: reconcile, do not send); a settled id is never
//! reserved again; a released or expired id reserves afresh.
//!
//! **Parking** (`lua/park.lua`). A parked key admits no new creates, slots or reservations
//! and each path reports the reason; queries are still admitted (at the key's query rate):
//! a park stops spending, and the tasks already running on the key are paid for and must be
//! polled to the end (an empty wallet must not strand finished outputs). `quota_exhausted` parks until a given time (the vendor window's
//! reset): its hash carries a `PEXPIREAT` at that time, so the key comes back by itself.
//! `insufficient_funds`, `auth`, `forbidden`, `operator` park until [`Limits::unpark`]. A park
//! until an operator acts is never replaced by a timed one; between timed parks the later wins.
//! Holders that already have a slot keep it (their tasks are running).
//!
//! # Redis key layout
//!
//! `P` is `redis.key_prefix`, `K` the key id (`evolink/main`). All keys of one API key share
//! the hash tag `{P:k:K}`; all spend keys share `{P:spend}`. Every script touches keys of one
//! tag only, so everything works on Redis Cluster (tested on a three-node cluster). The spend
//! scripts also reach keys named in stored records rather than passed in `KEYS` (returning
//! expired reservations: their hashes and budgets); these carry the same `{P:spend}` tag, so
//! they are in the slot the script runs on, which Redis Cluster allows.
//!
//! | key | type | content | TTL |
//! |---|---|---|---|
//! | `{P:k:K}:tat:create`, `…:tat:query` | string | GCRA TAT, µs | until TAT (then ≡ absent) |
//! | `{P:k:K}:win:create`, `…:win:query` | zset | admissions of the last second (with a cap) | 1 s |
//! | `{P:k:K}:aimd` | hash | `rate:<op>`, `decreased:<op>`, `block:<op>` | `idle_ttl_s`, ≥ block |
//! | `{P:k:K}:slots` | zset | holder → lease expiry µs | longest lease + 1 s |
//! | `{P:k:K}:park` | hash | `reason`, `until` (µs, 0 = operator), `since` | until `until`; none if 0 |
//! | `{P:spend}:b:<budget>` | hash | `win`, `used`, `reserved`, `limit`, `len`, `name` | window end + 60 s; none for total/campaign |
//! | `{P:spend}:r:<id>` | hash | `state`, `amount`, `actual`, `budgets`, `task`, `created`, `lease_until`, `ended` | none while open; `record_ttl_s` once closed |
//! | `{P:spend}:pending` | zset | pending reservation id → lease expiry µs | none (emptied as leases pass) |
//! | `{P:spend}:committed` | zset | committed reservation id → first commit time µs | none (emptied by settle/release) |
//!
//! Budget names: `K:hourly`, `K:daily`, `K:total`, `campaign/<id>`. Idle rate, slot and park
//! state disappears by itself; total and campaign budgets and open reservations never expire
//! (forgetting them would re-open spending).
//!
//! All spend state lives in one hash slot because one reservation must check and change a
//! key's budgets and a campaign's budget atomically, and campaigns span keys. Its load is
//! bounded by the vendors' create rates (a few calls per second per key), far below what one
//! Redis node serves (see the benchmark).
//!
//! # Invariants and why they hold
//!
//! * *Rate*: see GCRA above; the only state is TAT (and the cap's log) and the only clock the
//!   node's. With a cap N, the log holds every admission of the last second and a call is
//!   added only when the log has room for it, so no sliding second holds more than N.
//! * *Concurrency*: at most `max_concurrent` unexpired-or-unreclaimed leases, because a holder
//!   is added only when `ZCARD < max` in the same script that removed the expired ones.
//! * *Spend*: for every budget and window, `settled + reserved ≤ limit` as long as settled
//!   costs do not exceed what was reserved: reserve adds only after checking every budget in
//!   the same script; commit moves nothing; settle replaces `amount` by `actual ≤ amount`;
//!   release and expiry subtract exactly what was added, once (state changes are
//!   `pending|committed → settled|released|expired` only, inside the scripts). If a vendor
//!   charges more than the worst case (a bug in the estimate), settle records the truth, flags
//!   `overrun`, and further reservations in that budget are refused until it has room.
//! * *All or none*: a denied reserve returns before it writes any budget or the reservation
//!   (it may have returned other, expired reservations first); a Redis script is atomic
//!   and, with AOF, replicated and persisted as one transaction (effects replication), so a
//!   Redis crash keeps either all of a script's writes or none.
//!
//! # Crashes
//!
//! * A worker SIGKILLed while holding slots: they are reclaimed by the next acquire after
//!   `lease_ttl_ms` from its last renewal (its job, redelivered, re-acquires by the same holder
//!   id and gets its own slot back if still held).
//! * Killed with a *pending* reservation: returned after `reservation_lease_ms` (the create call
//!   was never sent, because the stage commits before sending). With a *committed* one: kept;
//!   reconciliation (by idempotency key, task list or policy) finds it with
//!   [`Limits::committed_reservations`] and settles or releases it.
//! * Between a script's call and its answer: the caller sees an error and retries; every call
//!   is idempotent per holder / reservation id.
//!
//! # Time and units
//!
//! All times are the Redis node's clock in µs (`TIME`, allowed in scripts with effects
//! replication, the only mode of Redis 7; the scripts also enable it on Redis 5/6). Worker
//! clocks never matter. On a Cluster each key's state lives on one node and uses that node's
//! clock; after a failover the new primary's clock takes over (keep nodes NTP-synced: a clock
//! step shifts rate waits and window boundaries by the step). Money is integer micro-units
//! (1.25 USD = `1_250_000`) of the budget's currency; all budgets of one reservation are in one
//! unit. Amounts are capped at [`MAX_AMOUNT`] (2^50) so Lua's doubles stay exact.
//!
//! # Configuration
//!
//! ```toml
//! [limits]
//! hour_window_s = 3600          # "hourly" window length (UTC hours)
//! day_window_s = 86400          # "daily" window length (UTC days)
//! reservation_lease_ms = 60000  # pending reservation returned after this
//! record_ttl_s = 604800         # closed reservation records kept this long
//! idle_ttl_s = 3600             # adaptive-rate state of an idle key forgotten after this
//! reap_batch = 64               # expired reservations returned per reserve call
//! [limits.aimd]
//! decrease_factor = 0.5
//! floor_fraction = 0.05
//! increase_fraction = 0.02
//! cooldown_ms = 1000
//! [limits.keys."evolink/main"]
//! create_rate_per_s = 2.0       # create calls per second (all workers together)
//! create_burst = 3              # back-to-back creates after idle
//! create_max_per_s = 2          # optional: never more than 2 creates in any sliding second
//! query_rate_per_s = 10.0
//! query_burst = 5
//! max_concurrent = 20           # vendor tasks in flight
//! lease_ttl_ms = 600000         # slot reclaimed this long after the last renewal
//! [limits.keys."evolink/main".spend]   # micro-units of the vendor's unit; omit = no budget
//! hourly = 50000000
//! daily = 500000000
//! total = 5000000000
//! ```
//!
//! Every field is documented on [`LimitsConfig`], [`AimdConfig`], [`KeyLimits`] and
//! [`SpendLimits`]; [`LimitsConfig::validate`] names the bad field.
//!
//! # Tests and benchmark
//!
//! `cargo test -p motionq-limits` runs, against real `redis-server` processes started by
//! `motionq-testkit` (install `redis-server` and `redis-tools`; a missing binary fails the
//! run with the install command):
//!
//! * `tests/suite/` — one suite (GCRA hammer with 8 connections and sliding 1 s windows by server
//!   time, GCRA edge cases, semaphore race and leases, spend race / lifecycle / crash / window
//!   rollover / randomized stress with an invariant checker, AIMD, parking and routing, key
//!   TTLs), run by `tests/standalone.rs` (one server per case, plus a Redis SIGKILL + AOF
//!   restart case) and by `tests/cluster.rs` (every case on one three-node Redis Cluster).
//! * `tests/sigkill.rs` — a real worker process holding slots and reservations is SIGKILLed;
//!   slots and pending money come back within the lease, committed money stays.
//! * `tests/processes.rs` — 8 worker processes hammer a key limited to R/s (burst 1, and burst
//!   4 + cap R): no sliding second above R; prints the achieved fraction of R.
//!
//! `cargo bench -p motionq-limits` prints ops/s of acquire, slot acquire+release, reserve and
//! reserve+commit+settle for 1 and 8 callers (`benches/limits.rs`).
//!
//! # Errors
//!
//! Reaching a limit is never an error: it is a [`Decision`], [`SlotDecision`] or
//! [`ReserveOutcome`] carrying the reason and when to retry. [`LimitsError`] is for Redis
//! failures (retry with backoff), bad config or input (never retried) and protocol bugs.

pub mod config;
pub mod error;
pub mod key;
mod limits;
mod report;
mod scripts;
pub mod spend;

pub use config::{AimdConfig, KeyLimits, LimitsConfig, SpendLimits};
pub use error::LimitsError;
pub use key::{KeyId, KeyLayout, Op, ParkReason};
pub use limits::{Admission, Decision, HeldTicket, Lease, Limits, Parked, RateState, SlotDecision};
pub use report::{format_amount, KeyState, NoUsableKey, RateView, Unusable};
pub use spend::{
    BudgetRef, BudgetView, BudgetWindow, CommitOutcome, Denial, DenyReason, ReleaseOutcome,
    Reservation, ReservationInfo, ReservationState, ReserveOutcome, SettleOutcome,
};

/// Largest amount (micro-units) accepted anywhere: sums of a few of these stay below 2^53, the
/// range in which Lua's doubles count exactly. 2^50 µ-units is about 1.1 billion units.
pub const MAX_AMOUNT: u64 = 1 << 50;
