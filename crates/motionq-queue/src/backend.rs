//! The worker side: apalis-core's `Backend` for [`StreamQueue`], and the two background tasks
//! each running worker owns.
//!
//! * the **fetcher** reads new entries with `XREADGROUP ... BLOCK` on a dedicated connection
//!   (a push wakes it at once), never holding more than `prefetch` entries;
//! * the **keeper** promotes due delayed jobs, takes over idle pending entries of dead
//!   workers (`XAUTOCLAIM`), refreshes the claims of the entries this worker holds, trims kept
//!   finished entries and forgets long-gone consumers.
//!
//! Both log Redis errors and try again with jittered backoff: a backend error never reaches
//! apalis (where it would end the worker). Entries that cannot become a task (undecodable
//! payload, too many deliveries) are dead-lettered here and never reach the handler.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use apalis_core::task::Task;
use apalis_core::worker::context::WorkerContext;
use futures::FutureExt;
use motionq_store::RedisConn;
use redis::Value;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::ack::AckLayer;
use crate::config::QueueConfig;
use crate::envelope::{now_ms, Delivery, Envelope};
use crate::error::QueueError;
use crate::queue::{jitter, pairs, with_retry, Shared, StreamQueue};
use crate::scripts::SCRIPTS;

/// Entries this worker holds (read or claimed, not yet acknowledged): what the keeper refreshes
/// and what bounds further reads to `prefetch`.
#[derive(Default)]
pub(crate) struct Held {
    ids: Mutex<HashSet<String>>,
    /// Signalled when an entry is released, so a fetcher waiting for room wakes up.
    freed: Notify,
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding this lock cannot leave the set inconsistent (single
        // insert/remove calls), so a poisoned lock is still usable.
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn insert(&self, id: &str) {
        self.lock().insert(id.to_string());
    }
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
        self.freed.notify_one();
    }
    pub fn len(&self) -> usize {
        self.lock().len()
    }
    fn snapshot(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }
}

/// One running worker's identity and held entries, shared by its background tasks and its
/// acknowledgement layer.
pub(crate) struct WorkerCtx {
    pub shared: Arc<Shared>,
    pub consumer: Arc<str>,
    pub held: Held,
}

/// Tells background tasks to stop after their current step.
#[derive(Default)]
struct Stop {
    flag: AtomicBool,
    notify: Notify,
}

impl Stop {
    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    async fn wait(&self) {
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.is_set() {
                return;
            }
            n.await;
        }
    }
}

/// The running part of a worker backend.
pub(crate) struct WorkerState<T> {
    /// Unbounded on purpose: `Held` bounds what is in flight (the fetcher and keeper only read
    /// while there is room), and a send must never wait, or a keeper blocked behind a busy
    /// worker would stop refreshing claims.
    rx: mpsc::UnboundedReceiver<Task<T>>,
    stop: Arc<Stop>,
    handles: Vec<JoinHandle<()>>,
    ctx: Arc<WorkerCtx>,
}

impl<T> Drop for WorkerState<T> {
    fn drop(&mut self) {
        // A worker dropped without a graceful close (its future was cancelled): stop reading.
        // Whatever it held stays pending and is taken over by other workers after
        // `claim_min_idle_ms`.
        self.stop.set();
    }
}

impl<T> StreamQueue<T> {
    fn closing_slot(&mut self) -> &mut Option<futures::future::BoxFuture<'static, ()>> {
        // `&mut self`: no other access exists, so this never blocks; a poisoned lock only
        // means a panic inside a previous poll, and the slot is still valid.
        self.closing.get_mut().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T: DeserializeOwned + Send + 'static> StreamQueue<T> {
    fn worker_ctx(&mut self, worker_name: &str) -> Arc<WorkerCtx> {
        self.worker
            .get_or_insert_with(|| {
                Arc::new(WorkerCtx {
                    shared: self.shared.clone(),
                    consumer: format!("{worker_name}@{}", self.identity).into(),
                    held: Held::default(),
                })
            })
            .clone()
    }

    fn ensure_started(&mut self, worker: &WorkerContext) {
        if self.state.is_some() || self.closing_slot().is_some() {
            return;
        }
        let ctx = self.worker_ctx(worker.name());
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = Arc::new(Stop::default());
        tracing::info!(queue = %ctx.shared.keys.queue, consumer = %ctx.consumer, "queue worker started");
        let handles = vec![
            tokio::spawn(fetch_loop(ctx.clone(), tx.clone(), stop.clone())),
            tokio::spawn(keeper_loop(ctx.clone(), tx, stop.clone())),
        ];
        self.state = Some(WorkerState {
            rx,
            stop,
            handles,
            ctx,
        });
    }
}

impl<T: DeserializeOwned + Send + 'static> Backend for StreamQueue<T> {
    type Task = Task<T>;
    type Error = QueueError;

    fn poll_ready(
        &mut self,
        _cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        self.ensure_started(worker);
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        self.ensure_started(worker);
        let Some(state) = self.state.as_mut() else {
            return Poll::Pending;
        };
        match state.rx.poll_recv(cx) {
            Poll::Ready(Some(task)) => Poll::Ready(Some(Ok(task))),
            Poll::Ready(None) => {
                // Both background tasks ended without being asked to (a panic): start them
                // again rather than end the worker.
                tracing::error!(queue = %state.ctx.shared.keys.queue, "queue background tasks ended; restarting them");
                self.state = None;
                self.ensure_started(worker);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        if self.closing_slot().is_none() {
            let Some(state) = self.state.take() else {
                return Poll::Ready(Ok(()));
            };
            *self.closing_slot() = Some(close(state).boxed());
        }
        let slot = self.closing_slot();
        match slot.as_mut().map(|f| f.poll_unpin(cx)) {
            Some(Poll::Pending) => Poll::Pending,
            _ => {
                *slot = None;
                Poll::Ready(Ok(()))
            }
        }
    }
}

/// Graceful close, called by apalis once no task of this worker is running: stop reading
/// (the read in flight finishes, at most `block_ms`), give back fetched but never started jobs,
/// and remove this consumer from the group if it holds nothing.
async fn close<T>(mut state: WorkerState<T>) {
    state.stop.set();
    for h in state.handles.drain(..) {
        let _ = h.await;
    }
    state.rx.close();
    let ctx = state.ctx.clone();
    let s = &ctx.shared;
    let mut released = 0usize;
    while let Ok(task) = state.rx.try_recv() {
        if let Some(d) = task.ctx().data().get::<Delivery>() {
            let r = with_retry("release", || {
                s.release(&ctx.consumer, &d.entry_id, &d.envelope)
            })
            .await;
            if let Err(e) = r {
                tracing::warn!(queue = %s.keys.queue, error = %e, "could not give back a prefetched job; it is redelivered after claim_min_idle_ms");
            } else {
                released += 1;
            }
            ctx.held.remove(&d.entry_id);
        }
    }
    let mut conn = s.conn.clone();
    let pending: redis::RedisResult<Value> = redis::cmd("XPENDING")
        .arg(&s.keys.stream)
        .arg(&s.cfg.group)
        .arg("-")
        .arg("+")
        .arg(1)
        .arg(&*ctx.consumer)
        .query_async(&mut conn)
        .await;
    if matches!(pending, Ok(Value::Array(ref a)) if a.is_empty()) {
        let _: redis::RedisResult<i64> = redis::cmd("XGROUP")
            .arg("DELCONSUMER")
            .arg(&s.keys.stream)
            .arg(&s.cfg.group)
            .arg(&*ctx.consumer)
            .query_async(&mut conn)
            .await;
    }
    tracing::info!(queue = %s.keys.queue, consumer = %ctx.consumer, released, "queue worker closed");
}

impl<T> BackendConfig for StreamQueue<T>
where
    T: DeserializeOwned + Send + 'static,
{
    type Args = T;
    type Id = String;
    // Tasks are decoded here, not by apalis's `DurableBackend`: a payload that does not decode
    // must go to the dead letter, not end the worker with a codec error.
    type Kind = Ephemeral;
    type Config = QueueConfig;
    type Layer = AckLayer;

    fn config(&self) -> &Self::Config {
        &self.shared.cfg
    }

    fn middleware(&mut self, worker: &mut WorkerContext) -> Self::Layer {
        AckLayer::new(self.worker_ctx(worker.name()))
    }
}

/// One entry as read or claimed.
struct RawEntry {
    id: String,
    fields: Option<HashMap<String, Value>>,
    deliveries: u32,
}

fn as_str(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// `[[id, [k, v, ...]], ...]` (entries of one stream).
fn parse_entries(v: &Value, deliveries: u32) -> Vec<RawEntry> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|e| {
            let Value::Array(parts) = e else { return None };
            let id = as_str(parts.first()?)?;
            let fields = match parts.get(1) {
                Some(Value::Nil) | None => None,
                Some(f) => Some(pairs(f)),
            };
            let deliveries = match parts.get(2) {
                Some(Value::Int(n)) => *n as u32,
                _ => deliveries,
            };
            Some(RawEntry {
                id,
                fields,
                deliveries,
            })
        })
        .collect()
}

/// An `XREADGROUP` reply for one stream: `[[key, entries]]` (RESP2) or `{key: entries}`.
fn parse_read(v: &Value) -> Vec<RawEntry> {
    match v {
        Value::Array(streams) => streams
            .iter()
            .flat_map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => parse_entries(&kv[1], 1),
                _ => Vec::new(),
            })
            .collect(),
        Value::Map(m) => m.iter().flat_map(|(_, e)| parse_entries(e, 1)).collect(),
        _ => Vec::new(),
    }
}

fn make_task<T: DeserializeOwned>(
    cfg: &QueueConfig,
    env: Envelope,
    entry_id: &str,
    deliveries: u32,
) -> Result<Task<T>, Box<(Envelope, String)>> {
    let args: T = match serde_json::from_str(&env.payload) {
        Ok(a) => a,
        Err(e) => {
            let why = format!(
                "payload does not decode as {}: {e}",
                std::any::type_name::<T>()
            );
            return Err(Box::new((env, why)));
        }
    };
    let failed = env.attempt();
    let d = Delivery {
        job_id: env.id.clone(),
        entry_id: entry_id.to_string(),
        attempt: failed + 1,
        deliveries,
        enqueued_ms: env.enqueued_ms.parse().ok(),
        envelope: env,
    };
    Ok(TaskBuilder::new(args)
        .task_id(TaskId::from_string(d.job_id.clone()))
        // apalis counts the run itself when it starts the task (failed + 1 in the handler).
        .attempt(failed as usize)
        .max_attempts(cfg.retry.max_attempts as usize)
        .data(d)
        .build())
}

/// Turns read/claimed entries into tasks; dead-letters those that cannot be run.
async fn hand_over<T: DeserializeOwned + Send + 'static>(
    ctx: &WorkerCtx,
    tx: &mpsc::UnboundedSender<Task<T>>,
    entries: Vec<RawEntry>,
) {
    let s = &ctx.shared;
    for e in entries {
        let Some(fields) = e.fields else {
            // Deleted while pending (Redis < 7 reports these in XAUTOCLAIM): nothing to run.
            continue;
        };
        ctx.held.insert(&e.id);
        let dead = |job_id: String, payload: String, attempts: u32, why: String| {
            let entry = e.id.clone();
            async move {
                tracing::warn!(queue = %s.keys.queue, entry = %entry, job = %job_id, error = %why, "job dead-lettered before running");
                let r = with_retry("dead-letter", || {
                    s.dead(&ctx.consumer, &entry, &job_id, &payload, attempts, &why)
                })
                .await;
                if let Err(err) = r {
                    tracing::error!(queue = %s.keys.queue, error = %err, "could not dead-letter; the entry stays pending and is retried after claim_min_idle_ms");
                }
            }
        };
        let env = match Envelope::from_fields(&fields) {
            Ok(env) => env,
            Err((why, raw)) => {
                dead(String::new(), raw, 0, why).await;
                ctx.held.remove(&e.id);
                continue;
            }
        };
        if e.deliveries > s.cfg.max_deliveries {
            let why = format!(
                "delivered {} times without finishing (queue.max_deliveries = {}); a worker \
                 probably died while running it each time",
                e.deliveries, s.cfg.max_deliveries
            );
            dead(env.id.clone(), env.payload.clone(), env.attempt(), why).await;
            ctx.held.remove(&e.id);
            continue;
        }
        match make_task::<T>(&s.cfg, env, &e.id, e.deliveries) {
            Ok(task) => {
                if tx.send(task).is_err() {
                    // The worker is gone; the entry stays pending and is taken over later.
                    ctx.held.remove(&e.id);
                    return;
                }
            }
            Err(failed) => {
                let (env, why) = *failed;
                dead(env.id.clone(), env.payload.clone(), env.attempt(), why).await;
                ctx.held.remove(&e.id);
            }
        }
    }
}

async fn sleep_or_stop(d: Duration, stop: &Stop) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.wait() => {}
    }
}

/// Reads new entries for this consumer until stopped. Never returns early on errors.
async fn fetch_loop<T: DeserializeOwned + Send + 'static>(
    ctx: Arc<WorkerCtx>,
    tx: mpsc::UnboundedSender<Task<T>>,
    stop: Arc<Stop>,
) {
    let s = ctx.shared.clone();
    let block = Duration::from_millis(s.cfg.block_ms);
    let mut conn: Option<RedisConn> = None;
    let mut group_ready = false;
    let mut failures = 0u32;
    while !stop.is_set() {
        let room = s.cfg.prefetch.saturating_sub(ctx.held.len());
        if room == 0 {
            tokio::select! {
                _ = ctx.held.freed.notified() => {}
                _ = stop.wait() => {}
            }
            continue;
        }
        if !group_ready {
            if let Err(e) = s.ensure_group().await {
                tracing::warn!(queue = %s.keys.queue, error = %e, "cannot create the consumer group; retrying");
                sleep_or_stop(jitter(failures), &stop).await;
                failures += 1;
                continue;
            }
            group_ready = true;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match RedisConn::connect_dedicated(&s.redis_cfg, block).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::warn!(queue = %s.keys.queue, error = %e, "cannot open the blocking connection; retrying");
                    sleep_or_stop(jitter(failures), &stop).await;
                    failures += 1;
                    continue;
                }
            },
        };
        // Not cancelled on stop: entries this read returns would otherwise sit unseen in our
        // pending list until reclaimed. They are handed over and given back by `close`.
        let r: redis::RedisResult<Value> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&s.cfg.group)
            .arg(&*ctx.consumer)
            .arg("COUNT")
            .arg(room)
            .arg("BLOCK")
            .arg(s.cfg.block_ms)
            .arg("STREAMS")
            .arg(&s.keys.stream)
            .arg(">")
            .query_async(c)
            .await;
        match r {
            Ok(v) => {
                failures = 0;
                let entries = parse_read(&v);
                if !entries.is_empty() {
                    hand_over(&ctx, &tx, entries).await;
                }
            }
            Err(e) => {
                if e.code() == Some("NOGROUP") {
                    // The stream or group vanished (Redis restarted without persistence, or
                    // someone deleted the key): recreate it.
                    group_ready = false;
                }
                tracing::warn!(queue = %s.keys.queue, error = %e, failures, "queue read failed; retrying with backoff");
                sleep_or_stop(jitter(failures), &stop).await;
                failures += 1;
            }
        }
    }
}

/// Periodic work of one worker; each step's errors are logged and the step tried again on its
/// next turn.
async fn keeper_loop<T: DeserializeOwned + Send + 'static>(
    ctx: Arc<WorkerCtx>,
    tx: mpsc::UnboundedSender<Task<T>>,
    stop: Arc<Stop>,
) {
    let s = ctx.shared.clone();
    let cfg = &s.cfg;
    let ms = Duration::from_millis;
    let tick = ms(cfg
        .promote_interval_ms
        .min(cfg.refresh_interval_ms)
        .min(cfg.claim_interval_ms));
    let start = Instant::now();
    // Claim on the first turn: a restarted worker picks up what its predecessor left at once
    // (once idle long enough).
    let mut last_claim: Option<Instant> = None;
    let mut last_refresh = start;
    let mut last_trim = start;
    let mut last_gc: Option<Instant> = None;
    let mut cursor = String::from("0-0");
    while !stop.is_set() {
        if let Err(e) = promote(&s).await {
            tracing::warn!(queue = %s.keys.queue, error = %e, "promoting delayed jobs failed");
        }
        if last_refresh.elapsed() >= ms(cfg.refresh_interval_ms) {
            last_refresh = Instant::now();
            if let Err(e) = refresh(&ctx).await {
                tracing::warn!(queue = %s.keys.queue, error = %e, "refreshing claims failed");
            }
        }
        if last_claim.is_none_or(|t| t.elapsed() >= ms(cfg.claim_interval_ms)) {
            last_claim = Some(Instant::now());
            match claim(&ctx, &tx, &cursor).await {
                Ok(next) => cursor = next,
                Err(e) => {
                    tracing::warn!(queue = %s.keys.queue, error = %e, "claiming idle jobs failed")
                }
            }
        }
        if cfg.keep_finished_ms > 0 && last_trim.elapsed() >= ms(cfg.trim_interval_ms) {
            last_trim = Instant::now();
            if let Err(e) = trim(&s).await {
                tracing::warn!(queue = %s.keys.queue, error = %e, "trimming finished entries failed");
            }
        }
        if last_gc.is_none_or(|t| t.elapsed() >= GC_INTERVAL) {
            last_gc = Some(Instant::now());
            if let Err(e) = forget_consumers(&ctx).await {
                tracing::debug!(queue = %s.keys.queue, error = %e, "consumer cleanup failed");
            }
        }
        sleep_or_stop(tick, &stop).await;
    }
}

/// How often stale consumers are looked for, and how long a consumer with nothing pending must
/// have been idle to be removed from the group.
const GC_INTERVAL: Duration = Duration::from_secs(300);
const GC_IDLE_MS: u64 = 3_600_000;

/// Moves due delayed jobs into the stream, `promote_chunk` per call, a bounded number of calls
/// per turn (the rest follows on the next turn).
async fn promote(s: &Shared) -> Result<(), QueueError> {
    let mut conn = s.conn.clone();
    for _ in 0..40 {
        let (moved, remaining): (u64, u64) = SCRIPTS
            .promote
            .key(&s.keys.delayed)
            .key(&s.keys.stream)
            .key(&s.keys.dead)
            .arg(s.cfg.promote_chunk)
            .arg(s.cfg.dead_max_len)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| s.err(e))?;
        if moved == 0 || remaining == 0 {
            break;
        }
    }
    Ok(())
}

async fn refresh(ctx: &WorkerCtx) -> Result<(), QueueError> {
    let s = &ctx.shared;
    let ids = ctx.held.snapshot();
    let mut conn = s.conn.clone();
    for chunk in ids.chunks(200) {
        let mut inv = SCRIPTS.refresh.key(&s.keys.stream);
        inv.arg(&s.cfg.group).arg(&*ctx.consumer);
        for id in chunk {
            inv.arg(id);
        }
        let lost: Vec<String> = inv.invoke_async(&mut conn).await.map_err(|e| s.err(e))?;
        for id in lost {
            // Either acknowledged a moment ago, or taken over after this worker could not
            // reach Redis for longer than claim_min_idle_ms; the new owner runs it.
            if ctx.held.lock().contains(&id) {
                tracing::debug!(queue = %s.keys.queue, entry = %id, "claim no longer held by this worker");
            }
        }
    }
    Ok(())
}

async fn claim<T: DeserializeOwned + Send + 'static>(
    ctx: &WorkerCtx,
    tx: &mpsc::UnboundedSender<Task<T>>,
    cursor: &str,
) -> Result<String, QueueError> {
    let s = &ctx.shared;
    let room = s.cfg.prefetch.saturating_sub(ctx.held.len());
    if room == 0 {
        return Ok(cursor.to_string());
    }
    let mut conn = s.conn.clone();
    let v: redis::RedisResult<Value> = SCRIPTS
        .claim
        .key(&s.keys.stream)
        .arg(&s.cfg.group)
        .arg(&*ctx.consumer)
        .arg(s.cfg.claim_min_idle_ms)
        .arg(cursor)
        .arg(room)
        .invoke_async(&mut conn)
        .await;
    let v = match v {
        Ok(v) => v,
        Err(e) if e.code() == Some("NOGROUP") => return Ok("0-0".into()),
        Err(e) => return Err(s.err(e)),
    };
    let Value::Array(parts) = v else {
        return Err(s.protocol("claim.lua did not return an array"));
    };
    let next = parts
        .first()
        .and_then(as_str)
        .unwrap_or_else(|| "0-0".into());
    let entries = parts
        .get(1)
        .map(|e| parse_entries(e, 2))
        .unwrap_or_default();
    if !entries.is_empty() {
        tracing::info!(queue = %s.keys.queue, count = entries.len(), "took over idle jobs of another worker");
        hand_over(ctx, tx, entries).await;
    }
    Ok(next)
}

async fn trim(s: &Shared) -> Result<(), QueueError> {
    let cutoff = now_ms().saturating_sub(s.cfg.keep_finished_ms);
    let mut conn = s.conn.clone();
    let n: i64 = SCRIPTS
        .trim
        .key(&s.keys.stream)
        .arg(&s.cfg.group)
        .arg(format!("{cutoff}-0"))
        .invoke_async(&mut conn)
        .await
        .map_err(|e| s.err(e))?;
    if n > 0 {
        tracing::debug!(queue = %s.keys.queue, trimmed = n, "trimmed finished entries");
    }
    Ok(())
}

/// Removes consumers that hold nothing and were idle for an hour (stopped or killed workers;
/// every process start has a new name, so they would otherwise accumulate).
async fn forget_consumers(ctx: &WorkerCtx) -> Result<(), QueueError> {
    let s = &ctx.shared;
    let mut conn = s.conn.clone();
    let v: Value = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(&s.keys.stream)
        .arg(&s.cfg.group)
        .query_async(&mut conn)
        .await
        .map_err(|e| s.err(e))?;
    let Value::Array(list) = v else {
        return Ok(());
    };
    for c in list.iter().map(pairs) {
        let name = c.get("name").and_then(as_str).unwrap_or_default();
        let int = |k: &str| match c.get(k) {
            Some(Value::Int(i)) => *i as u64,
            _ => 0,
        };
        if name != *ctx.consumer && int("pending") == 0 && int("idle") > GC_IDLE_MS {
            let _: i64 = redis::cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(&s.keys.stream)
                .arg(&s.cfg.group)
                .arg(&name)
                .query_async(&mut conn)
                .await
                .map_err(|e| s.err(e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_xreadgroup_replies() {
        let entry = |id: &str| {
            Value::Array(vec![
                bulk(id),
                Value::Array(vec![bulk("id"), bulk("j"), bulk("payload"), bulk("1")]),
            ])
        };
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk("mq:q:{a}:stream"),
            Value::Array(vec![entry("1-0"), entry("2-0")]),
        ])]);
        let got = parse_read(&resp2);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].id, "2-0");
        assert_eq!(got[0].deliveries, 1);
        let f = got[0].fields.as_ref().unwrap();
        assert!(matches!(f.get("payload"), Some(Value::BulkString(b)) if b == b"1"));
        let resp3 = Value::Map(vec![(
            bulk("mq:q:{a}:stream"),
            Value::Array(vec![entry("3-0")]),
        )]);
        assert_eq!(parse_read(&resp3)[0].id, "3-0");
        // Timeout of a blocking read.
        assert!(parse_read(&Value::Nil).is_empty());
    }

    #[test]
    fn parses_claim_entries_with_delivery_counts_and_deleted_ones() {
        let claimed = Value::Array(vec![
            Value::Array(vec![
                bulk("5-0"),
                Value::Array(vec![bulk("id"), bulk("j")]),
                Value::Int(3),
            ]),
            Value::Array(vec![bulk("6-0"), Value::Nil, Value::Int(2)]),
        ]);
        let got = parse_entries(&claimed, 2);
        assert_eq!(got[0].deliveries, 3);
        assert!(got[0].fields.is_some());
        assert!(got[1].fields.is_none());
    }

    #[test]
    fn decodes_tasks_with_attempt_and_delivery() {
        let mut env = Envelope::new("job-7".into(), "42".into());
        env.attempt = "2".into();
        let t: Task<u64> = make_task(&QueueConfig::default(), env.clone(), "9-0", 4).unwrap();
        assert_eq!(t.args, 42);
        assert_eq!(
            t.ctx().attempt(),
            2,
            "apalis adds the current run when it starts"
        );
        let d = t.ctx().data().get::<Delivery>().unwrap();
        assert_eq!((d.attempt, d.deliveries), (3, 4));
        assert_eq!(d.entry_id, "9-0");
        assert_eq!(t.ctx().task_id(), Some(&TaskId::from_string("job-7")));
        let bad = make_task::<u64>(
            &QueueConfig::default(),
            Envelope::new("x".into(), "\"s\"".into()),
            "1-0",
            1,
        );
        assert!(bad.unwrap_err().1.contains("does not decode as u64"));
    }
}
