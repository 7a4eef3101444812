//! [`StreamQueue`]: connect, push, inspect, dead letters; and the Redis operations shared by the
//! worker side (`backend.rs`, `ack.rs`).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use motionq_config::RedisConfig;
use motionq_store::RedisConn;
use rand::Rng;
use redis::Value;
use serde::Serialize;

use crate::backend::{WorkerCtx, WorkerState};
use crate::config::QueueConfig;
use crate::envelope::{now_ms, truncate, DeadLetter, Envelope};
use crate::error::QueueError;
use crate::keys::QueueKeys;
use crate::scripts::SCRIPTS;

/// Jobs per pipeline in `push_bulk` (large enough to amortise round trips, small enough not to
/// hold Redis for long).
const PUSH_CHUNK: usize = 1_000;

/// State shared by every clone of a queue and by its worker tasks.
pub(crate) struct Shared {
    pub keys: QueueKeys,
    pub cfg: QueueConfig,
    pub redis_cfg: RedisConfig,
    /// Multiplexed connection for everything except blocking reads (pushes, acks, scripts);
    /// it reconnects by itself.
    pub conn: RedisConn,
    /// `"1"` when finished entries are deleted at ack (`keep_finished_ms == 0`), else `"0"`.
    pub delete_flag: &'static str,
}

impl Shared {
    pub fn err(&self, source: redis::RedisError) -> QueueError {
        QueueError::Redis {
            queue: self.keys.queue.clone(),
            source,
        }
    }

    pub fn protocol(&self, what: impl Into<String>) -> QueueError {
        QueueError::Protocol {
            queue: self.keys.queue.clone(),
            what: what.into(),
        }
    }

    /// XACK (+ XDEL) of finished entries.
    pub async fn ack(&self, entry_ids: &[&str]) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let mut inv = SCRIPTS.ack.key(&self.keys.stream);
        inv.arg(&self.cfg.group).arg(self.delete_flag);
        for id in entry_ids {
            inv.arg(*id);
        }
        let _: i64 = inv.invoke_async(&mut conn).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Moves an owned entry to the delayed ZSET. `Ok(false)`: this consumer no longer owns it.
    pub async fn retry(
        &self,
        consumer: &str,
        entry_id: &str,
        delay: Duration,
        env: &Envelope,
    ) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let n: i64 = SCRIPTS
            .retry
            .key(&self.keys.stream)
            .key(&self.keys.delayed)
            .arg(&self.cfg.group)
            .arg(consumer)
            .arg(entry_id)
            .arg(delay.as_millis() as u64)
            .arg(env.member())
            .arg(self.delete_flag)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Moves an owned entry to the dead letter. `Ok(false)`: this consumer no longer owns it.
    pub async fn dead(
        &self,
        consumer: &str,
        entry_id: &str,
        job_id: &str,
        payload: &str,
        attempts: u32,
        error: &str,
    ) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let n: i64 = SCRIPTS
            .dead
            .key(&self.keys.stream)
            .key(&self.keys.dead)
            .arg(&self.cfg.group)
            .arg(consumer)
            .arg(entry_id)
            .arg(self.cfg.dead_max_len)
            .arg(self.delete_flag)
            .arg(job_id)
            .arg(payload)
            .arg(attempts)
            .arg(truncate(error))
            .arg(now_ms())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Gives an owned, never started entry back to the stream (graceful shutdown).
    pub async fn release(
        &self,
        consumer: &str,
        entry_id: &str,
        env: &Envelope,
    ) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let mut inv = SCRIPTS.release.key(&self.keys.stream);
        inv.arg(&self.cfg.group)
            .arg(consumer)
            .arg(entry_id)
            .arg(self.delete_flag);
        for (_, v) in env.fields() {
            inv.arg(v);
        }
        let n: i64 = inv.invoke_async(&mut conn).await.map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Creates the consumer group (reading from the start, so jobs pushed before any worker
    /// existed are delivered). An existing group is fine.
    pub async fn ensure_group(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.keys.stream)
            .arg(&self.cfg.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }
}

/// Retries a Redis operation a few times with jittered exponential backoff (50 ms doubling,
/// capped at 2 s, 8 tries ≈ 10 s). Used for acknowledgements: if Redis stays away longer, the
/// entry stays pending and is redelivered (at-least-once), nothing is lost.
pub(crate) async fn with_retry<F, Fut, R>(what: &str, mut f: F) -> Result<R, QueueError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<R, QueueError>>,
{
    let mut attempt = 0u32;
    loop {
        match f().await {
            Ok(r) => return Ok(r),
            Err(e) if attempt >= 7 || matches!(e, QueueError::Protocol { .. }) => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, attempt, "{what} failed, retrying");
                tokio::time::sleep(jitter(attempt)).await;
                attempt += 1;
            }
        }
    }
}

/// Full-jitter delay for reconnect/retry loops: uniform in [0, min(2 s, 50 ms · 2^attempt)],
/// at least 10 ms.
pub(crate) fn jitter(attempt: u32) -> Duration {
    let ceil = (50u64 << attempt.min(6)).min(2_000);
    Duration::from_millis(rand::rng().random_range(10..=ceil.max(10)))
}

/// A durable job queue on Redis Streams, and an apalis [`Backend`](apalis_core::backend::Backend).
///
/// Cheap to clone: clones share the connection. Each clone used as a worker backend gets its
/// own consumer identity (see [`StreamQueue::identity`]). See the crate docs for the layout and
/// semantics.
pub struct StreamQueue<T> {
    pub(crate) shared: Arc<Shared>,
    /// `hostname-pid-random`: unique per instance, so two process starts (or two restarts of
    /// a worker in one process) never share a consumer name.
    pub(crate) identity: String,
    /// The worker side (consumer name, held entries), made by `middleware()` from the apalis
    /// worker name: consumer `<worker>@<identity>`.
    pub(crate) worker: Option<Arc<WorkerCtx>>,
    pub(crate) state: Option<WorkerState<T>>,
    /// The graceful close in progress. In a `Mutex` only so the queue stays `Sync` (producers
    /// share it across tasks); it is only touched through `&mut self`, never locked.
    pub(crate) closing: std::sync::Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
    pub(crate) _job: PhantomData<fn() -> T>,
}

impl<T> Clone for StreamQueue<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            identity: new_identity(),
            worker: None,
            state: None,
            closing: std::sync::Mutex::new(None),
            _job: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for StreamQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamQueue")
            .field("queue", &self.shared.keys.queue)
            .field("identity", &self.identity)
            .field("consumer", &self.consumer_name())
            .finish()
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

pub(crate) fn new_identity() -> String {
    format!(
        "{}-{}-{:08x}",
        hostname(),
        std::process::id(),
        rand::rng().random::<u32>()
    )
}

/// Sizes of one queue, for `motionq status` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct QueueStats {
    /// Entries in the stream (unread + pending, plus kept finished ones when
    /// `keep_finished_ms > 0`).
    pub stream_len: u64,
    /// Delivered to a worker and not yet acknowledged (running, prefetched, or held by a dead
    /// worker until reclaimed).
    pub pending: u64,
    /// Not yet delivered to any worker.
    pub unread: u64,
    /// Waiting in the delayed ZSET (retries with backoff, `push_after`).
    pub delayed: u64,
    /// Dead letters kept.
    pub dead: u64,
    /// Consumers registered in the group (live and recently stopped workers).
    pub consumers: u64,
}

impl QueueStats {
    /// Jobs waiting or running now: unread + pending (delayed ones are counted apart).
    pub fn depth(&self) -> u64 {
        self.unread + self.pending
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A flat `[k1, v1, k2, v2, ...]` reply (XINFO, stream entry fields) or a RESP3 map.
pub(crate) fn pairs(v: &Value) -> HashMap<String, Value> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|c| match c {
                [k, v] => Some((as_string(k)?, v.clone())),
                _ => None,
            })
            .collect(),
        Value::Map(m) => m
            .iter()
            .filter_map(|(k, v)| Some((as_string(k)?, v.clone())))
            .collect(),
        _ => HashMap::new(),
    }
}

impl<T> StreamQueue<T> {
    /// Connects to Redis (standalone, Sentinel or Cluster, per `redis`) for queue `queue`.
    /// Validates `cfg`. Workers open their own dedicated connection for blocking reads.
    pub async fn connect(
        redis: &RedisConfig,
        queue: &str,
        cfg: QueueConfig,
    ) -> Result<Self, QueueError> {
        cfg.validate()?;
        let keys = QueueKeys::new(&redis.key_prefix, queue)?;
        let conn = RedisConn::connect(redis).await?;
        Ok(Self::from_parts(keys, cfg, redis.clone(), conn))
    }

    /// Like [`connect`](Self::connect) with an existing connection (shared with other
    /// queues); `redis` is still needed for the workers' dedicated blocking connections.
    pub fn with_conn(
        conn: RedisConn,
        redis: &RedisConfig,
        queue: &str,
        cfg: QueueConfig,
    ) -> Result<Self, QueueError> {
        cfg.validate()?;
        let keys = QueueKeys::new(&redis.key_prefix, queue)?;
        Ok(Self::from_parts(keys, cfg, redis.clone(), conn))
    }

    fn from_parts(
        keys: QueueKeys,
        cfg: QueueConfig,
        redis_cfg: RedisConfig,
        conn: RedisConn,
    ) -> Self {
        let delete_flag = if cfg.keep_finished_ms == 0 { "1" } else { "0" };
        Self {
            shared: Arc::new(Shared {
                keys,
                cfg,
                redis_cfg,
                conn,
                delete_flag,
            }),
            identity: new_identity(),
            worker: None,
            state: None,
            closing: std::sync::Mutex::new(None),
            _job: PhantomData,
        }
    }

    /// This instance's identity (`hostname-pid-random`); the consumer name is
    /// `<apalis worker name>@<identity>`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The consumer name once a worker has started on this instance.
    pub fn consumer_name(&self) -> Option<&str> {
        self.worker.as_ref().map(|w| &*w.consumer)
    }

    /// The queue's Redis keys.
    pub fn keys(&self) -> &QueueKeys {
        &self.shared.keys
    }

    /// The queue's configuration.
    pub fn queue_config(&self) -> &QueueConfig {
        &self.shared.cfg
    }

    /// Sizes of the queue. Not one atomic snapshot (several commands), fine for status/metrics.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let s = &self.shared;
        let mut conn = s.conn.clone();
        let mut out = QueueStats::default();
        let (stream_len, delayed, dead): (u64, u64, u64) = redis::pipe()
            .cmd("XLEN")
            .arg(&s.keys.stream)
            .cmd("ZCARD")
            .arg(&s.keys.delayed)
            .cmd("XLEN")
            .arg(&s.keys.dead)
            .query_async(&mut conn)
            .await
            .map_err(|e| s.err(e))?;
        out.stream_len = stream_len;
        out.delayed = delayed;
        out.dead = dead;
        let groups: redis::RedisResult<Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&s.keys.stream)
            .query_async(&mut conn)
            .await;
        let mut lag = None;
        match groups {
            Ok(Value::Array(gs)) => {
                for g in gs.iter().map(pairs) {
                    if g.get("name").and_then(as_string).as_deref() == Some(&s.cfg.group) {
                        out.pending = g.get("pending").and_then(as_u64).unwrap_or(0);
                        out.consumers = g.get("consumers").and_then(as_u64).unwrap_or(0);
                        lag = g.get("lag").and_then(as_u64);
                    }
                }
            }
            Ok(other) => return Err(s.protocol(format!("XINFO GROUPS replied {other:?}"))),
            // No stream yet: everything is zero.
            Err(e) if e.to_string().contains("no such key") => {}
            Err(e) => return Err(s.err(e)),
        }
        out.unread = match lag {
            Some(l) => l,
            // Redis reports no lag after deletions; with delete-at-ack every entry in the
            // stream is unread or pending, so the difference is exact.
            None => stream_len.saturating_sub(out.pending),
        };
        Ok(out)
    }

    /// The oldest `count` dead letters.
    pub async fn dead_letters(&self, count: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let s = &self.shared;
        let mut conn = s.conn.clone();
        let v: Value = redis::cmd("XRANGE")
            .arg(&s.keys.dead)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await
            .map_err(|e| s.err(e))?;
        let Value::Array(entries) = v else {
            return Err(s.protocol("XRANGE on the dead letter did not return an array"));
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let Value::Array(parts) = e else { continue };
            let [id, fields] = parts.as_slice() else {
                continue;
            };
            let f = pairs(fields);
            let get = |k: &str| f.get(k).and_then(as_string).unwrap_or_default();
            out.push(DeadLetter {
                dead_id: as_string(id).unwrap_or_default(),
                job_id: get("id"),
                payload: get("payload"),
                attempts: get("attempt").parse().unwrap_or(0),
                error: get("error"),
                failed_ms: get("failed_ms").parse().unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Moves the given dead letters back into the queue as fresh jobs (attempt counter reset).
    /// Returns how many were moved (ids no longer in the dead letter are skipped).
    pub async fn requeue_dead(&self, dead_ids: &[String]) -> Result<u64, QueueError> {
        let s = &self.shared;
        let mut conn = s.conn.clone();
        let mut moved = 0u64;
        for chunk in dead_ids.chunks(100) {
            let mut inv = SCRIPTS.requeue_dead.key(&s.keys.dead);
            inv.key(&s.keys.stream).arg(now_ms());
            for id in chunk {
                inv.arg(id);
            }
            let n: u64 = inv.invoke_async(&mut conn).await.map_err(|e| s.err(e))?;
            moved += n;
        }
        Ok(moved)
    }

    /// Requeues every dead letter present when called (the `retry` command).
    pub async fn requeue_all_dead(&self) -> Result<u64, QueueError> {
        let mut moved = 0;
        let total = self.stats().await?.dead;
        // Bounded by the count at the start, so jobs that die again meanwhile are not
        // requeued in a loop.
        while moved < total {
            let batch = self.dead_letters(500).await?;
            if batch.is_empty() {
                break;
            }
            let ids: Vec<String> = batch.into_iter().map(|d| d.dead_id).collect();
            moved += self.requeue_dead(&ids).await?;
        }
        Ok(moved)
    }
}

impl<T: Serialize> StreamQueue<T> {
    fn encode(&self, job: &T) -> Result<String, QueueError> {
        serde_json::to_string(job).map_err(|source| QueueError::Encode {
            queue: self.shared.keys.queue.clone(),
            source,
        })
    }

    fn xadd(&self, env: &Envelope) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.shared.keys.stream).arg("*");
        for (k, v) in env.fields() {
            cmd.arg(k).arg(v);
        }
        cmd
    }

    /// Enqueues one job with a new random id (returned). When this returns `Ok`, the job is in
    /// Redis (and in the AOF per its fsync policy).
    pub async fn push(&self, job: &T) -> Result<String, QueueError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.push_with_id(&id, job).await?;
        Ok(id)
    }

    /// Enqueues one job under a caller-chosen id (e.g. motionq's job record id), which handlers
    /// get back as the apalis `TaskId` and in [`Delivery`](crate::Delivery).
    pub async fn push_with_id(&self, id: &str, job: &T) -> Result<(), QueueError> {
        let env = Envelope::new(id.to_string(), self.encode(job)?);
        let mut conn = self.shared.conn.clone();
        let _: String = self
            .xadd(&env)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.shared.err(e))?;
        Ok(())
    }

    /// Enqueues many jobs, pipelined in chunks of 1,000 `XADD`s. Returns their ids in order.
    /// On error, an unknown prefix of the jobs may have been enqueued.
    pub async fn push_bulk(&self, jobs: &[T]) -> Result<Vec<String>, QueueError> {
        let mut ids = Vec::with_capacity(jobs.len());
        let mut conn = self.shared.conn.clone();
        for chunk in jobs.chunks(PUSH_CHUNK) {
            let mut pipe = redis::pipe();
            for job in chunk {
                let id = uuid::Uuid::new_v4().to_string();
                let env = Envelope::new(id.clone(), self.encode(job)?);
                pipe.add_command(self.xadd(&env)).ignore();
                ids.push(id);
            }
            let _: () = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| self.shared.err(e))?;
        }
        Ok(ids)
    }

    /// Enqueues one job to run after `delay` (Redis server time). Returns its id.
    pub async fn push_after(&self, job: &T, delay: Duration) -> Result<String, QueueError> {
        let id = uuid::Uuid::new_v4().to_string();
        let env = Envelope::new(id.clone(), self.encode(job)?);
        let mut conn = self.shared.conn.clone();
        let _: i64 = SCRIPTS
            .schedule
            .key(&self.shared.keys.delayed)
            .arg(delay.as_millis() as u64)
            .arg(env.member())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.shared.err(e))?;
        Ok(id)
    }

    /// Enqueues many jobs to run after `delay`, pipelined (due time from one Redis `TIME`).
    pub async fn push_bulk_after(
        &self,
        jobs: &[T],
        delay: Duration,
    ) -> Result<Vec<String>, QueueError> {
        let mut conn = self.shared.conn.clone();
        let (secs, micros): (u64, u64) = redis::cmd("TIME")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.shared.err(e))?;
        let due = secs * 1_000 + micros / 1_000 + delay.as_millis() as u64;
        let mut ids = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(PUSH_CHUNK) {
            let mut pipe = redis::pipe();
            for job in chunk {
                let id = uuid::Uuid::new_v4().to_string();
                let env = Envelope::new(id.clone(), self.encode(job)?);
                pipe.cmd("ZADD")
                    .arg(&self.shared.keys.delayed)
                    .arg(due)
                    .arg(env.member())
                    .ignore();
                ids.push(id);
            }
            let _: () = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| self.shared.err(e))?;
        }
        Ok(ids)
    }
}
