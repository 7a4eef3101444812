//! motionq's durable job queue: an [apalis](https://docs.rs/apalis) 1.0 backend on Redis
//! Streams, owned by motionq. This is the only crate in the workspace that names apalis types.
//!
//! One queue per stage (`submit`, `poll`, `collect`). Producers push JSON jobs
//! ([`StreamQueue::push`], [`push_bulk`](StreamQueue::push_bulk),
//! [`push_after`](StreamQueue::push_after)); workers are ordinary apalis workers
//! (`WorkerBuilder`, tower layers, `Monitor`, graceful drain) whose backend is a
//! [`StreamQueue`]. The pipeline composes its stages through [`runtime`]
//! ([`run_stage_workers`] with motionq's handler type), so no other crate depends on apalis.
//! Retries with backoff, the dead letter, takeover of a dead worker's jobs and
//! retention are done here, in Redis, so they survive process crashes and Redis restarts.
//!
//! # Usage
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use apalis::prelude::*;
//! use motionq_queue::{Delivery, QueueConfig, StreamQueue};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Submit {
//!     job: String,
//! }
//!
//! // `Delivery` (job id, 1-based attempt, delivery count) and apalis's own extractors
//! // (`TaskId`, `Attempt`, `Data<_>`, `WorkerContext`) can be handler arguments.
//! async fn submit(job: Submit, d: Delivery) -> Result<(), BoxDynError> {
//!     if job.job.is_empty() {
//!         // Permanent: straight to the dead letter, no retry.
//!         return Err(AbortError::new("empty job id").into());
//!     }
//!     // Any other error is retried per `QueueConfig::retry`; a `RetryAfterError` sets a
//!     // minimum delay (vendor `Retry-After`); a `DeferredError` waits without counting.
//!     let _ = d.attempt;
//!     Ok(())
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = motionq_config::RedisConfig::default();
//! let queue = StreamQueue::<Submit>::connect(&redis, "submit", QueueConfig::default()).await?;
//! queue.push(&Submit { job: "c1/j1".into() }).await?;
//!
//! Monitor::new()
//!     // The factory runs again when apalis restarts a worker: each clone of the queue is a
//!     // new consumer identity, so a restart never collides with its predecessor.
//!     .register(move |_restarts| {
//!         WorkerBuilder::new("submit")
//!             .backend(queue.clone())
//!             .concurrency(8) // keep QueueConfig::prefetch >= this
//!             .build(submit)
//!     })
//!     .shutdown_timeout(Duration::from_secs(60))
//!     .run_with_signal(tokio::signal::ctrl_c())
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Do not add apalis's `.retry(..)` layer: its retries are in memory (lost on a crash) and
//! bypass motionq's delays. Retries belong to this backend. `.timeout(..)`, `.catch_panic()`
//! and `.concurrency(..)` are fine (a timeout or panic is a failed attempt).
//!
//! # Why a Streams backend (the spike decision)
//!
//! APALIS.md lists eleven defects of apalis-redis 1.0.0 reproduced on this kind of machine
//! (R1–R11) and the option of using it with strict rules. Those rules still leave it failing
//! Q8 (no Redis Cluster: CROSSSLOT), needing admission control to stay under ~8,000 due jobs
//! (R1), a supervisor for workers that die on any backend error (R3, R4) and a home-made
//! retention and retry scheduler (R2, R8). apalis-core 1.0's backend traits are small (a
//! `Backend` with `poll_ready`/`poll_next`/`poll_close` plus a middleware layer), so owning the
//! backend costs less than the workarounds and meets Q1–Q8 directly. Decision: **option 1, an
//! apalis backend on Redis Streams owned by motionq.** How each defect is avoided:
//!
//! | APALIS.md | here |
//! |---|---|
//! | R1 `unpack()` of every due id; >8,000 due wedges the queue | pushes go straight to the stream; delayed jobs are promoted by `promote.lua` in chunks of `promote_chunk` (Q1 test: 100,000 due + 100,000 direct) |
//! | R2 hard-coded 25 linear retries | [`QueueConfig::retry`] (`motionq_core::Backoff`, full jitter, `max_attempts`, `max_total`, `RetryAfterError` floor) (Q7 test) |
//! | R3 any backend error ends the worker | `poll_ready`/`poll_next` never return errors; Redis errors are logged and retried with jittered backoff on self-reconnecting connections (Q3 test: kill -9 and clean restart) |
//! | R4 an undecodable payload kills the worker | decoded here, not by apalis's codec; failures go to the dead letter with the error (Q4 test) |
//! | R5 worker names cannot be reused | consumer = `<worker>@<hostname>-<pid>-<random>`, new per backend instance (Q5 test) |
//! | R6 orphans recovered after 300 s | `XAUTOCLAIM` with `claim_min_idle_ms` = 15 s every `claim_interval_ms` = 5 s; running jobs' claims refreshed (Q2 test: SIGKILLed child process) |
//! | R7 O(backlog) `LREM` per task | per-entry `XACK`/`XDEL`, O(1)-ish |
//! | R8 nothing is ever deleted | finished entries deleted at ack (or kept `keep_finished_ms` then `XTRIM MINID`); dead letter capped at `dead_max_len` (Q8 tests) |
//! | R9 idle pickup only on heartbeat | `XREADGROUP BLOCK` on a dedicated connection: a push wakes the reader (Q6 test) |
//! | R10 CROSSSLOT on Cluster | all keys of a queue share the hash tag `{<queue>}` (Q8 test on a three-node cluster) |
//! | R11 broken task-tracking / metrics | [`StreamQueue::stats`] from `XLEN`/`XINFO`/`ZCARD` |
//!
//! Measured (release build, `benches/queue.rs`, private redis-server 7.0.15 with
//! `appendfsync everysec`, one worker, no-op handler, 2-core machine shared with other builds;
//! apalis-redis figures from APALIS.md on the same kind of machine):
//!
//! | operation | motionq-queue (this crate) | apalis-redis 1.0.0 (APALIS.md) |
//! |---|---|---|
//! | `push_bulk` (pipelined `XADD`, 1,000 per pipeline) | 87k–112k jobs/s | 40k–70k jobs/s |
//! | `push` one at a time (one round trip each) | 7.5k–8.4k jobs/s | not measured |
//! | `push_bulk_after` (`ZADD`, due later) | 56k–65k jobs/s | (every push goes through its ZSET) |
//! | consume = read + no-op handler + ack, `prefetch` 16 (default) | 9.7k–15k jobs/s | 23k–36k jobs/s with `lock_tasks(false)`, 5.5k/s default |
//! | consume, `prefetch` 256 | 23.5k–25.7k jobs/s | |
//! | 100,000 *due* delayed jobs: promote + consume, `prefetch` 256 | 13.6k–22.3k jobs/s | fails above ~8,000 due (R1) |
//! | orphan takeover (`XAUTOCLAIM`), bound by config: `prefetch` per `claim_interval_ms` | 2.3k jobs/s at 256 per 100 ms | after 300 s (R6) |
//! | idle pickup latency (push → handler) | p50 0.35 ms, p90 0.42 ms, max 0.54 ms | up to 30 s without `.poll_with_interval` (R9) |
//!
//! Ranges are two runs while the machine's load average was 14–16 (other engineers' builds),
//! so they understate an idle machine. The debug-build Q1 test drains its 200,000 jobs in
//! 28–68 s (3k–7.3k jobs/s, `prefetch` 256) under that load; Q6 (debug) measured 1.6–13 ms
//! idle pickup; Q2 measured
//! redelivery 15.2 s after SIGKILL with the default `claim_min_idle_ms`.
//!
//! # Redis layout
//!
//! Every key of a queue carries the hash tag `{<queue>}` (`<prefix>` is `redis.key_prefix`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>:q:{<queue>}:stream` | stream + consumer group `queue.group` | jobs to run: unread, and pending (delivered, not yet acknowledged) |
//! | `<prefix>:q:{<queue>}:delayed` | ZSET, score = due time in ms (Redis `TIME`) | retries waiting for their backoff, `push_after` jobs |
//! | `<prefix>:q:{<queue>}:dead` | stream, capped at `dead_max_len` | dead letters: `id`, `payload`, `attempt`, `error`, `failed_ms`, `source` |
//!
//! A stream entry has the fields `id` (job id, the apalis `TaskId`), `payload` (the job as
//! JSON, kept verbatim), `attempt` (failed runs so far), `first_failed_ms`, `last_error`,
//! `enqueued_ms`. A delayed member is the same six fields as a JSON object.
//! Scripts (`lua/`, all keys of one queue only): `promote`, `schedule`, `ack`, `retry`,
//! `dead`, `claim`, `refresh`, `release`, `trim`, `requeue_dead`.
//!
//! # Delivery semantics
//!
//! **At least once.** A job is removed from the stream only after its handler returned and the
//! outcome was written (ack, retry or dead letter, each one atomic script). A job can run more
//! than once when: its worker dies (SIGKILL, OOM, machine loss) after the handler's side
//! effect but before the ack; the worker cannot reach Redis for longer than
//! `claim_min_idle_ms` while running it (another worker takes it over); the ack itself fails
//! for ~10 s of retries; or Redis loses the ack (`appendfsync everysec`, failover). Handlers
//! must therefore be idempotent. For paid vendor calls, exactly-once comes from motionq's job
//! records (motionq-store: an atomic transition before the create call), not from the queue.
//!
//! Pushes: when `push*` returns `Ok`, the job is in Redis (and on disk per the AOF policy). A
//! push that returns an error may or may not have been stored; retrying it can enqueue the job
//! twice (use [`push_with_id`](StreamQueue::push_with_id) with motionq's job id so handlers
//! can recognise it).
//!
//! A job that keeps killing its worker is dead-lettered once its entry was delivered more than
//! `max_deliveries` times. Graceful stop (apalis `Monitor` shutdown, `WorkerContext::stop`):
//! the worker stops reading, running jobs finish and are settled, fetched but unstarted jobs
//! are given back to the stream at once, and a consumer holding nothing leaves the group.
//! Consumers of killed workers that hold nothing are removed after an hour idle.
//!
//! # Retries and the dead letter
//!
//! See [`AckLayer`] for the table. In short: `Ok` → acknowledged; `AbortError` → dead letter
//! at once; `DeferredError` → re-offered after `defer_delay_ms`, attempt not counted (waiting
//! for a limit is not a failure); any other error → `retry.decide(attempt, time since first
//! failure, RetryAfter hint)`: back into the delayed ZSET after the jittered delay, or, when
//! `max_attempts` runs or `max_total` are used up, dead letter with the last error.
//! [`StreamQueue::dead_letters`] lists them, [`StreamQueue::requeue_dead`] /
//! [`requeue_all_dead`](StreamQueue::requeue_all_dead) move them back with the attempt counter
//! reset (the `retry` command). Delays use Redis server time, so machines with skewed clocks
//! agree on due times.
//!
//! # Configuration
//!
//! [`QueueConfig`] (`[queue]` in motionq's config; every field has a default, see its docs):
//! `group`, `block_ms`, `prefetch`, `claim_min_idle_ms`, `claim_interval_ms`,
//! `refresh_interval_ms`, `promote_interval_ms`, `promote_chunk`, `max_deliveries`,
//! `defer_delay_ms`, `retry` (`base`, `cap`, `max_attempts`, `max_total`, ms),
//! `keep_finished_ms`, `trim_interval_ms`, `dead_max_len`. [`QueueConfig::validate`] names the
//! bad field.
//!
//! # Known limits
//!
//! * Each successful job is acknowledged by its own `ack.lua` call (concurrent calls are
//!   pipelined on the multiplexed connection). A group-commit variant (one call per batch from
//!   a single acknowledging task) was tried and halved Q1's drain rate, so it was not kept.
//! * Every worker promotes due delayed jobs every `promote_interval_ms` (a cheap script when
//!   nothing is due); with hundreds of workers per queue, raise the interval.
//! * `keep_finished_ms` is measured from the entry id, i.e. from when the entry was added to the
//!   stream, not from when the job finished.
//! * `retry.max_total` is measured with the workers' clocks (`first_failed_ms`); due times use
//!   Redis server time.
//! * [`StreamQueue::stats`] is several commands, not one snapshot; when Redis cannot report the
//!   group's lag (after deletions), `unread` is `stream_len - pending`, exact with
//!   delete-at-ack, an over-estimate with `keep_finished_ms > 0`.
//! * Sentinel deployments go through `motionq_store::RedisConn` like the others but are not
//!   exercised by these tests (standalone and Cluster are).
//!
//! # Modules
//!
//! * `queue`: [`StreamQueue`] (connect, push, stats, dead letters) and the Redis operations;
//! * `backend`: apalis `Backend` + `BackendConfig`, the fetcher and keeper tasks;
//! * `ack`: [`AckLayer`], settling each finished job;
//! * `config`, `keys`, `envelope` ([`Delivery`], [`DeadLetter`]), `error`, `scripts`.
//!
//! The tests (`tests/q1_backlog.rs` … `tests/q8_cluster.rs`) each prove one of APALIS.md's
//! Q1–Q8 against a private redis-server (or three-node cluster) from motionq-testkit; the
//! `motionq-queue-test-worker` binary exists only for the Q2 SIGKILL test.

mod ack;
mod backend;
mod config;
mod envelope;
mod error;
mod keys;
mod queue;
pub mod runtime;
mod scripts;

pub use ack::{AckLayer, AckService};
pub use config::QueueConfig;
pub use envelope::{DeadLetter, Delivery, MissingDelivery};
pub use error::QueueError;
pub use keys::QueueKeys;
pub use queue::{QueueStats, StreamQueue};
pub use runtime::{run_stage_workers, StageWorker};
