//! The shared context of every stage ([`Pipeline`]), its tuning ([`PipelineOptions`]), the
//! per-job identifiers (slot holder, reservation ids, idempotency key) and small Redis helpers
//! (job lock, bookkeeping writes, the vendor task index).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use motionq_collect::Collector;
use motionq_config::Config;
use motionq_core::{Backoff, JobState, PriceTable, Tier, Vendor};
use motionq_limits::{KeyId, KeyLimits, Limits, LimitsConfig, SlotDecision, SpendLimits};
use motionq_queue::{QueueConfig, StreamQueue};
use motionq_store::{JobRecord, RedisConn, Store};
use motionq_vendors::VendorClient;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::PipelineError;

pub(crate) static ADMIT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../lua/admit.lua")));
pub(crate) static TOUCH: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../lua/touch.lua")));
pub(crate) static POLL_GATE: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../lua/poll_gate.lua")));
pub(crate) static LOCK: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../lua/lock.lua")));
pub(crate) static CAMPAIGN_STATE: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../lua/campaign_state.lua")));

/// The message of every stage queue: which job to work on. The job's record is the truth;
/// the message only says "look at this job".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageJob {
    /// Campaign id.
    pub campaign: String,
    /// Job id within the campaign.
    pub job: String,
}

impl StageJob {
    /// The JSON form of a job's message, as stored in the ZSETs that hold jobs (collect
    /// backlog, slot waiters): one member per job whatever the stage.
    pub(crate) fn member(campaign: &str, job: &str) -> String {
        serde_json::to_string(&StageJob {
            campaign: campaign.into(),
            job: job.into(),
        })
        .expect("StageJob serialises")
    }
}

/// Lifetime of a key's slot-waiter set after its last registration (see
/// [`Pipeline::wait_for_slot`]).
const SLOT_WAITERS_TTL_MS: u64 = 3_600_000;

/// What to do with a job whose create call may have reached a vendor that cannot be asked
/// (`worker.unreconcilable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreconcilable {
    /// Mark the job failed for review: never pay twice (default).
    Fail,
    /// Submit again under a new idempotency key, accepting a possible second charge.
    Resubmit,
}

/// Timing and sizing of the stages. `Default` gives production values; tests shorten them.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// First poll of a new task after this delay.
    pub first_poll_delay: Duration,
    /// Shortest interval between two polls of one task.
    pub poll_min: Duration,
    /// Longest interval between two polls of one task.
    pub poll_max: Duration,
    /// The interval grows with the task's age: `clamp(age × factor, poll_min, poll_max)`.
    pub poll_age_factor: f64,
    /// Learn the typical generation time per (vendor, tier) and poll just after it
    /// ([`crate::poll::learned_poll_interval`]).
    pub poll_learn: bool,
    /// How often the feeder runs a round.
    pub feeder_interval: Duration,
    /// Jobs admitted per key beyond its free concurrency slots (keeps submit workers busy while
    /// slots are being released).
    pub feeder_floor: u32,
    /// Most jobs one campaign gets admitted per round.
    pub feeder_batch: usize,
    /// How often the sweep looks for in-flight jobs whose queue message was lost.
    pub sweep_interval: Duration,
    /// A job whose record has not been touched by any stage for this long gets its stage's
    /// message pushed again (duplicates are harmless).
    pub sweep_stale: Duration,
    /// Lease of the per-job processing lock (a killed worker's lock frees after this).
    pub job_lock_ttl: Duration,
    /// Lease of the per-key create lock of vendors reconciled through their task list
    /// (Freepik): held from the intent until the task id is recorded or reconciled.
    pub tasklist_lock_ttl: Duration,
    /// A vendor task that failed for the vendor's own reasons (`upstream_transient`) is
    /// submitted again at most this many times.
    pub vendor_retry_limit: u32,
    /// How long a `quota_exhausted` key is parked when the vendor gives no reset time.
    pub quota_park: Duration,
    /// Longest in-handler wait for a create-rate slot before the job is deferred.
    pub max_rate_wait: Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            first_poll_delay: Duration::from_secs(2),
            poll_min: Duration::from_secs(2),
            poll_max: Duration::from_secs(30),
            poll_age_factor: 0.2,
            poll_learn: true,
            feeder_interval: Duration::from_millis(500),
            feeder_floor: 2,
            feeder_batch: 500,
            sweep_interval: Duration::from_secs(15),
            sweep_stale: Duration::from_secs(120),
            job_lock_ttl: Duration::from_secs(60),
            tasklist_lock_ttl: Duration::from_secs(600),
            vendor_retry_limit: 3,
            quota_park: Duration::from_secs(3600),
            max_rate_wait: Duration::from_secs(3),
        }
    }
}

impl PipelineOptions {
    /// Production values with the poll schedule of `[worker]` (`poll_first_ms`,
    /// `poll_min_ms`, `poll_max_ms`, `poll_age_factor`, `poll_learn`).
    pub fn from_worker_config(w: &motionq_config::WorkerConfig) -> Self {
        Self {
            first_poll_delay: Duration::from_millis(w.poll_first_ms),
            poll_min: Duration::from_millis(w.poll_min_ms),
            poll_max: Duration::from_millis(w.poll_max_ms),
            poll_age_factor: w.poll_age_factor,
            poll_learn: w.poll_learn,
            ..Self::default()
        }
    }
}

/// Stable identifiers of one job (and one submission generation) in the limiter and at the
/// vendor. Hashes keep them within the limiter's id rules whatever the job id looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobIds {
    /// Concurrency-slot holder: one per job, whatever the generation.
    pub holder: String,
    /// Reservation in the key's budgets (vendor unit). Always taken, even with no budget:
    /// its `committed` state is the marker "a create call may have been sent".
    pub res_key: String,
    /// Reservation in the campaign budget (micro-USD), when the campaign has a budget.
    pub res_campaign: String,
    /// Sent to the vendor (KKIAI `external_task_id`): stable per job and generation.
    pub idem: String,
}

impl JobIds {
    pub fn new(campaign: &str, job: &str, gen: u64) -> Self {
        let mut h = Sha256::new();
        h.update(campaign.as_bytes());
        h.update([0]);
        h.update(job.as_bytes());
        let hex = hex::encode(h.finalize());
        let short = &hex[..32];
        Self {
            holder: format!("job-{short}"),
            res_key: format!("job-{short}-g{gen}-k"),
            res_campaign: format!("job-{short}-g{gen}-c"),
            idem: format!("mq-{short}-g{gen}"),
        }
    }
}

/// Everything a stage needs; shared by all handlers of a process (`Arc`).
pub struct Pipeline {
    pub(crate) cfg: Config,
    pub(crate) store: Store,
    pub(crate) limits: Limits,
    pub(crate) conn: RedisConn,
    pub(crate) prefix: String,
    pub(crate) clients: BTreeMap<KeyId, VendorClient>,
    pub(crate) keys_by_vendor: BTreeMap<Vendor, Vec<KeyId>>,
    pub(crate) prices: PriceTable,
    pub(crate) submit_q: StreamQueue<StageJob>,
    pub(crate) poll_q: StreamQueue<StageJob>,
    pub(crate) collect_q: StreamQueue<StageJob>,
    pub(crate) collector: Option<Collector>,
    pub(crate) opts: PipelineOptions,
    /// Generation times this process has seen, for the learned poll schedule.
    pub(crate) completion: crate::poll::CompletionModel,
    /// Wakes this process's feeder early: a vendor task ended on a starved key and no job was
    /// waiting for its slot (see [`release_slot_and_wake`](Self::release_slot_and_wake)).
    pub(crate) feeder_nudge: tokio::sync::Notify,
    pub(crate) retry: Backoff,
    /// How long a deferred message waits before it is tried again (`[queue] defer_delay_ms`).
    pub(crate) defer_delay: Duration,
    pub(crate) unreconcilable: Unreconcilable,
    /// Test-only fault hook (`MOTIONQ_TEST_CRASH_AFTER_CREATE`): probability of aborting the
    /// process right after a create call was answered, before anything is recorded.
    pub(crate) crash_after_create: Option<f64>,
    pub(crate) callback_token: Option<String>,
    pub(crate) metrics: motionq_metrics::Metrics,
    /// Parsed campaign specs by campaign, with the `spec_rev` they were read at.
    pub(crate) specs: std::sync::Mutex<
        std::collections::HashMap<
            String,
            (String, std::sync::Arc<motionq_core::validate::CampaignSpec>),
        >,
    >,
}

/// The `take_read` reply of `lock.lua`: taken (0/1), the job's hash, (campaign state, spec_rev).
type TakeRead = (
    i64,
    std::collections::BTreeMap<String, String>,
    (Option<String>, Option<String>),
);

/// A job whose processing lock this worker holds, with what was read under the lock.
pub(crate) struct LockedJob {
    /// The lock's token (releases it: [`Pipeline::unlock_job`]) and how long it is surely
    /// still held.
    pub lease: Arc<JobLease>,
    /// The job's record; `None` when the job does not exist (any more).
    pub rec: Option<motionq_store::JobRecord>,
    /// The campaign's `state` (`None`: no such campaign) and `spec_rev`, for
    /// [`Pipeline::campaign_view`].
    pub campaign_state: Option<String>,
    pub spec_rev: Option<String>,
}

/// A held job lock: its token, and until when it is surely still held, measured on this
/// process's clock from before the take or renewal was sent (less a tenth of the lease for
/// clock drift). Within that time no other worker can have taken the job, so the submit stage
/// skips the owner check of [`Pipeline::owns_intent`] (no round trip on the fast path).
#[derive(Debug)]
pub(crate) struct JobLease {
    pub token: String,
    valid_until: std::sync::Mutex<tokio::time::Instant>,
}

impl JobLease {
    fn new(token: String, sent: tokio::time::Instant, ttl: Duration) -> Self {
        Self {
            token,
            valid_until: std::sync::Mutex::new(sent + ttl - ttl / 10),
        }
    }

    /// The lock was taken or renewed by a call sent at `sent`.
    fn renewed(&self, sent: tokio::time::Instant, ttl: Duration) {
        let mut v = self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        *v = (*v).max(sent + ttl - ttl / 10);
    }

    /// Whether the lock cannot have expired yet.
    pub fn surely_held(&self) -> bool {
        tokio::time::Instant::now() < *self.valid_until.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the submit and collect stages read of a campaign per job.
pub(crate) struct CampaignView {
    /// `enqueuing`, `active`, `paused`, `cancelled`, ...
    pub state: String,
    pub spec: std::sync::Arc<motionq_core::validate::CampaignSpec>,
}

impl Pipeline {
    /// How long a create's admission may stay in its key's per-second window without an
    /// answer (a dead worker's): longer than the call can take, connect and request timeouts.
    pub(crate) fn create_hold(&self, vendor: Vendor) -> Duration {
        self.cfg
            .vendors
            .get(&vendor)
            .map_or(Duration::from_secs(60), |vc| {
                Duration::from_millis(vc.connect_timeout_ms + vc.request_timeout_ms + 1_000)
            })
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("prefix", &self.prefix)
            .field("keys", &self.clients.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The Redis key of a deployment's collect backlog (completed jobs by link expiry, see the
/// crate docs), for readers outside a [`Pipeline`] such as the metrics scrape.
pub fn collect_backlog_key(prefix: &str) -> String {
    format!("{prefix}:collect:due")
}

/// Micro-units of an amount (limits count money in integer micro-units).
pub(crate) fn micro(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        (x * 1e6).round() as u64
    } else {
        0
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The `[limits]` view of motionq's config: one entry per configured vendor key, spend caps
/// converted from the vendor's unit to micro-units.
pub fn limits_config(cfg: &Config) -> LimitsConfig {
    let mut lc = LimitsConfig::default();
    for (v, vc) in &cfg.vendors {
        for k in &vc.keys {
            let cap = |x: Option<f64>| x.map(micro);
            // Built through serde so fields the limiter adds later take their defaults.
            let limits: KeyLimits = serde_json::from_value(serde_json::json!({
                "create_rate_per_s": k.create_rate_per_s,
                "create_burst": k.create_burst.max(1),
                "create_max_per_s": k.create_max_per_s,
                "query_rate_per_s": k.query_rate_per_s,
                "query_burst": k.query_burst.max(1),
                "query_max_per_s": k.query_max_per_s,
                "max_concurrent": k.max_concurrent,
                "lease_ttl_ms": k.lease_ttl_s.max(1) * 1000,
                "spend": SpendLimits {
                    hourly: cap(k.spend_hourly),
                    daily: cap(k.spend_daily),
                    total: cap(k.spend_total),
                },
            }))
            .expect("KeyLimits from a complete JSON object");
            lc.keys.insert(format!("{v}/{}", k.alias), limits);
        }
    }
    lc
}

/// The queue settings of `[queue]`.
pub fn queue_config(cfg: &Config) -> Result<QueueConfig, PipelineError> {
    cfg.queue
        .clone()
        .try_into::<QueueConfig>()
        .map_err(|e| PipelineError::Config(format!("[queue]: {e}")))
}

impl Pipeline {
    /// Connects everything a stage needs. API keys are read from their env vars now: a missing
    /// one is an error naming the variable.
    pub async fn connect(cfg: &Config, opts: PipelineOptions) -> Result<Self, PipelineError> {
        let conn = RedisConn::connect(&cfg.redis).await?;
        let prefix = cfg.redis.key_prefix.clone();
        let store = Store::new(conn.clone(), &prefix);
        let limits = Limits::new(conn.clone(), &prefix, limits_config(cfg))?;
        let qcfg = queue_config(cfg)?;
        let submit_q = StreamQueue::with_conn(conn.clone(), &cfg.redis, "submit", qcfg.clone())?;
        let poll_q = StreamQueue::with_conn(conn.clone(), &cfg.redis, "poll", qcfg.clone())?;
        let collect_q = StreamQueue::with_conn(conn.clone(), &cfg.redis, "collect", qcfg.clone())?;
        let http = motionq_vendors::HttpOptions::default()
            .build_client()
            .map_err(|e| PipelineError::Config(format!("HTTP client: {e}")))?;
        let mut clients = BTreeMap::new();
        let mut keys_by_vendor: BTreeMap<Vendor, Vec<KeyId>> = BTreeMap::new();
        for (v, vc) in &cfg.vendors {
            if vc.keys.is_empty() {
                continue;
            }
            let base: url::Url = vc.base_url.parse().map_err(|e| {
                PipelineError::Config(format!("vendors.{v}.base_url `{}`: {e}", vc.base_url))
            })?;
            let vhttp = motionq_vendors::HttpOptions {
                connect_timeout: Duration::from_millis(vc.connect_timeout_ms),
                request_timeout: Duration::from_millis(vc.request_timeout_ms),
                ..Default::default()
            }
            .build_client()
            .unwrap_or_else(|_| http.clone());
            for k in &vc.keys {
                let secret = k
                    .api_key(*v)
                    .map_err(|e| PipelineError::Config(e.to_string()))?;
                let id = KeyId::new(*v, k.alias.clone())?;
                clients.insert(
                    id.clone(),
                    VendorClient::with_http_client(
                        Arc::from(motionq_vendors::adapter_for(*v)),
                        base.clone(),
                        secret,
                        vhttp.clone(),
                    ),
                );
                keys_by_vendor.entry(*v).or_default().push(id);
            }
        }
        let collector = if cfg.storage.url.is_empty() {
            None
        } else {
            let sc = motionq_collect::StorageConfig {
                url: cfg.storage.url.clone(),
                options: cfg.storage.options.clone(),
            };
            let storage = motionq_collect::Storage::from_config(&sc)
                .map_err(|e| PipelineError::Config(format!("[storage]: {e}")))?;
            let co = motionq_collect::CollectOptions {
                max_bytes: cfg.storage.max_object_bytes,
                ..Default::default()
            };
            // reqwest has no connect timeout by default; a dead CDN must not hang a collect.
            let http = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| PipelineError::Config(format!("HTTP client: {e}")))?;
            Some(Collector::new(storage, http, co))
        };
        let unreconcilable = match cfg.worker.unreconcilable.as_str() {
            "resubmit" => Unreconcilable::Resubmit,
            _ => Unreconcilable::Fail,
        };
        let crash_after_create = std::env::var("MOTIONQ_TEST_CRASH_AFTER_CREATE")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|p| *p > 0.0);
        let callback_token = cfg
            .webhooks
            .token_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|t| !t.is_empty());
        Ok(Self {
            prices: cfg.prices(),
            cfg: cfg.clone(),
            store,
            limits,
            conn,
            prefix,
            clients,
            keys_by_vendor,
            submit_q,
            poll_q,
            collect_q,
            collector,
            opts,
            completion: crate::poll::CompletionModel::default(),
            feeder_nudge: tokio::sync::Notify::new(),
            defer_delay: Duration::from_millis(qcfg.defer_delay_ms),
            retry: qcfg.retry,
            unreconcilable,
            crash_after_create,
            callback_token,
            metrics: motionq_metrics::Metrics::new(),
            specs: Default::default(),
        })
    }

    /// Records into `metrics` (the catalogue the process serves on `/metrics`) instead of a
    /// private one.
    pub fn with_metrics(mut self, metrics: motionq_metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The metrics this pipeline records into.
    pub fn metrics(&self) -> &motionq_metrics::Metrics {
        &self.metrics
    }

    /// `Store::transition`, counted in `motionq_job_transitions_total` when it moved the job.
    pub(crate) async fn transition(
        &self,
        campaign: &str,
        job: &str,
        from: &[JobState],
        to: JobState,
        detail: &str,
        fields: &[(&str, String)],
    ) -> Result<motionq_store::Transition, PipelineError> {
        let t = self
            .store
            .transition(campaign, job, from, to, detail, fields)
            .await?;
        if let motionq_store::Transition::Moved(prev) = t {
            if prev != to {
                self.metrics.job_transition(campaign, prev, to);
            }
        }
        Ok(t)
    }

    /// Times one vendor call and records it (request, status class, classified error).
    pub(crate) async fn vendor_call<T>(
        &self,
        key: &KeyId,
        op: motionq_metrics::Operation,
        fut: impl std::future::Future<Output = Result<T, motionq_vendors::VendorError>>,
    ) -> Result<T, motionq_vendors::VendorError> {
        let start = std::time::Instant::now();
        let r = fut.await;
        let status = match &r {
            Ok(_) => Some(200),
            Err(e) => e.http_status,
        };
        self.metrics
            .vendor_request(key.vendor(), key.alias(), op, status, start.elapsed());
        if let Err(e) = &r {
            self.metrics
                .vendor_error(key.vendor(), key.alias(), e.class);
        }
        r
    }

    /// The record store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The limiter.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The submit queue (the feeder's output).
    pub fn submit_queue(&self) -> &StreamQueue<StageJob> {
        &self.submit_q
    }

    pub(crate) fn campaign_key(&self, campaign: &str, what: &str) -> String {
        format!("{}:{{c:{campaign}}}:{what}", self.prefix)
    }

    pub(crate) fn inflight_key(&self, campaign: &str) -> String {
        self.campaign_key(campaign, "inflight")
    }

    fn index_key(&self, vendor: Vendor, what: &str) -> String {
        format!("{}:{{t:{vendor}}}:{what}", self.prefix)
    }

    // ---- locks ---------------------------------------------------------------------------

    async fn lock(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
        mode: &str,
    ) -> Result<bool, PipelineError> {
        let n: i64 = LOCK
            .key(key)
            .arg(holder)
            .arg(ttl.as_millis().max(1) as u64)
            .arg(mode)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(n == 1)
    }

    /// The campaign's current state and its spec, for every job the submit and collect stages
    /// handle, from the `state` and `spec_rev` that [`lock_job`](Self::lock_job) read with the
    /// job (`None` state: no such campaign). The state is read for every job (pause and cancel
    /// act at once); the spec, which changes only when a manifest is enqueued again with
    /// `replace`, is parsed once per `spec_rev` and cached.
    pub(crate) async fn campaign_view(
        &self,
        c: &str,
        state: Option<String>,
        rev: Option<String>,
    ) -> Result<CampaignView, PipelineError> {
        let Some(state) = state else {
            return Err(motionq_store::StoreError::UnknownCampaign(c.to_string()).into());
        };
        let rev = rev.unwrap_or_default();
        let cached = self
            .specs
            .lock()
            .expect("spec cache lock")
            .get(c)
            .filter(|(r, _)| *r == rev)
            .map(|(_, s)| s.clone());
        let spec = match cached {
            Some(spec) => spec,
            None => {
                let (spec, rev) = self.store.campaign_spec(c).await?;
                let spec = std::sync::Arc::new(spec);
                let mut specs = self.specs.lock().expect("spec cache lock");
                // Campaigns come and go; a worker handles few at a time.
                if specs.len() > 1024 {
                    specs.clear();
                }
                specs.insert(c.to_owned(), (rev, spec.clone()));
                spec
            }
        };
        Ok(CampaignView { state, spec })
    }

    /// Takes the per-job processing lock: two deliveries of one job never run a stage
    /// concurrently (the queue is at-least-once). `None` when another worker holds it. With the
    /// lock come, in the same round trip, the job's record and its campaign's state and spec
    /// revision (see [`LockedJob`]), read under the lock.
    pub(crate) async fn lock_job(
        &self,
        campaign: &str,
        job: &str,
    ) -> Result<Option<LockedJob>, PipelineError> {
        let token = format!("{}-{}", std::process::id(), rand::random::<u64>());
        let keys = self.store.keys();
        let sent = tokio::time::Instant::now();
        let (taken, fields, (state, rev)): TakeRead = LOCK
            .key(self.campaign_key(campaign, &format!("lock:{job}")))
            .key(keys.job(campaign, job))
            .key(keys.meta(campaign))
            .arg(&token)
            .arg(self.opts.job_lock_ttl.as_millis().max(1) as u64)
            .arg("take_read")
            .invoke_async(&mut self.conn.clone())
            .await?;
        if taken != 1 {
            return Ok(None);
        }
        Ok(Some(LockedJob {
            rec: self.store.job_from_fields(campaign, job, fields)?,
            campaign_state: state,
            spec_rev: rev,
            lease: Arc::new(JobLease::new(token, sent, self.opts.job_lock_ttl)),
        }))
    }

    /// Runs `work` while renewing this worker's lock on the job every third of its lease, so
    /// a long handler (create-rate waits, a slow vendor, a large download) does not outlive
    /// its lock while its process is alive. A renewal that finds the lock held by another
    /// worker stops renewing: that worker owns the job now (the submit stage checks
    /// [`owns_intent`](Self::owns_intent) before it pays).
    pub(crate) async fn keeping_job_lock<F: std::future::Future>(
        &self,
        campaign: &str,
        job: &str,
        lease: &JobLease,
        work: F,
    ) -> F::Output {
        let key = self.campaign_key(campaign, &format!("lock:{job}"));
        let ttl = self.opts.job_lock_ttl;
        let keep = async {
            loop {
                tokio::time::sleep((ttl / 3).max(Duration::from_millis(10))).await;
                let sent = tokio::time::Instant::now();
                match self.lock(&key, &lease.token, ttl, "take").await {
                    Ok(true) => lease.renewed(sent, ttl),
                    Ok(false) => {
                        tracing::warn!("the job's lock passed to another worker");
                        std::future::pending::<()>().await;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew the job's lock"),
                }
            }
        };
        tokio::select! {
            biased;
            out = work => out,
            () = keep => unreachable!("the renewal loop never ends"),
        }
    }

    /// Whether this worker still owns the job right before paying for it: it holds the job's
    /// lock and the job is `submitting` under the intent written with this lock's token
    /// (`intent_by`). Free while the lease is surely held (nobody else can have taken the
    /// job); after that one round trip (`lock.lua`, `take_intent`) that also renews the lock.
    pub(crate) async fn owns_intent(
        &self,
        campaign: &str,
        job: &str,
        lease: &JobLease,
    ) -> Result<bool, PipelineError> {
        if lease.surely_held() {
            return Ok(true);
        }
        let ttl = self.opts.job_lock_ttl;
        let sent = tokio::time::Instant::now();
        let (taken, (state, by)): (i64, (Option<String>, Option<String>)) = LOCK
            .key(self.campaign_key(campaign, &format!("lock:{job}")))
            .key(self.store.keys().job(campaign, job))
            .arg(&lease.token)
            .arg(ttl.as_millis().max(1) as u64)
            .arg("take_intent")
            .invoke_async(&mut self.conn.clone())
            .await?;
        let owns = taken == 1
            && state.as_deref() == Some(JobState::Submitting.as_str())
            && by.as_deref() == Some(lease.token.as_str());
        if owns {
            lease.renewed(sent, ttl);
        }
        Ok(owns)
    }

    pub(crate) async fn unlock_job(&self, campaign: &str, job: &str, token: &str) {
        let key = self.campaign_key(campaign, &format!("lock:{job}"));
        if let Err(e) = self
            .lock(&key, token, Duration::from_millis(1), "release")
            .await
        {
            tracing::warn!(error = %e, "could not release a job lock; it expires by itself");
        }
    }

    fn tasklist_lock_key(&self, key: &KeyId) -> String {
        self.index_key(key.vendor(), &format!("createlock:{}", key.alias()))
    }

    /// The per-key create lock of task-list vendors, held by the job's slot holder id, waiting
    /// up to `wait` for it.
    pub(crate) async fn take_tasklist_lock(
        &self,
        key: &KeyId,
        holder: &str,
        wait: Duration,
    ) -> Result<bool, PipelineError> {
        let deadline = tokio::time::Instant::now() + wait;
        let lk = self.tasklist_lock_key(key);
        loop {
            if self
                .lock(&lk, holder, self.opts.tasklist_lock_ttl, "take")
                .await?
            {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn release_tasklist_lock(
        &self,
        key: &KeyId,
        holder: &str,
    ) -> Result<(), PipelineError> {
        self.lock(
            &self.tasklist_lock_key(key),
            holder,
            Duration::from_millis(1),
            "release",
        )
        .await?;
        Ok(())
    }

    // ---- task index ------------------------------------------------------------------------

    /// Records `task_id → (campaign, job)` and `idempotency key → task_id` for `vendor` in one
    /// transaction. Webhook intake reads the first; reconciliation reads the second (a callback
    /// that carries our id may fill it for a task whose create answer was lost).
    pub async fn record_task(
        &self,
        vendor: Vendor,
        task_id: &str,
        campaign: &str,
        job: &str,
        idem: &str,
    ) -> Result<(), PipelineError> {
        let entry = serde_json::json!({"campaign": campaign, "job": job, "idem": idem}).to_string();
        let _: () = redis::pipe()
            .atomic()
            .hset(self.index_key(vendor, "tasks"), task_id, entry)
            .ignore()
            .hset(self.index_key(vendor, "idem"), idem, task_id)
            .ignore()
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// The task recorded for an idempotency key, if any.
    pub async fn task_for_idem(
        &self,
        vendor: Vendor,
        idem: &str,
    ) -> Result<Option<String>, PipelineError> {
        Ok(self
            .conn
            .clone()
            .hget(self.index_key(vendor, "idem"), idem)
            .await?)
    }

    /// `(campaign, job)` of a vendor task, for webhook intake.
    pub async fn job_for_task(
        &self,
        vendor: Vendor,
        task_id: &str,
    ) -> Result<Option<(String, String)>, PipelineError> {
        let v: Option<String> = self
            .conn
            .clone()
            .hget(self.index_key(vendor, "tasks"), task_id)
            .await?;
        Ok(
            v.and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .and_then(|j| {
                    Some((
                        j.get("campaign")?.as_str()?.to_string(),
                        j.get("job")?.as_str()?.to_string(),
                    ))
                }),
        )
    }

    /// Which of `task_ids` are in the index.
    pub(crate) async fn known_tasks(
        &self,
        vendor: Vendor,
        task_ids: &[String],
    ) -> Result<Vec<bool>, PipelineError> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for t in task_ids {
            pipe.hexists(self.index_key(vendor, "tasks"), t);
        }
        Ok(pipe.query_async(&mut self.conn.clone()).await?)
    }

    /// Marks unrecorded vendor tasks as seen (claimed by nobody), so a later reconciliation on
    /// the same key does not mistake them for its own.
    pub(crate) async fn mark_orphans(
        &self,
        vendor: Vendor,
        task_ids: &[String],
        note: &str,
    ) -> Result<(), PipelineError> {
        if task_ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for t in task_ids {
            let entry = serde_json::json!({"orphan": note}).to_string();
            pipe.hset_nx(self.index_key(vendor, "tasks"), t, entry)
                .ignore();
        }
        let _: () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    // ---- records ---------------------------------------------------------------------------

    /// Sets bookkeeping fields on a job if it is still in `state` (no event). With
    /// `next_poll_in`, also sets `next_poll_at` from Redis time.
    pub(crate) async fn touch(
        &self,
        campaign: &str,
        job: &str,
        state: JobState,
        next_poll_in: Option<Duration>,
        fields: &[(&str, String)],
    ) -> Result<bool, PipelineError> {
        let mut inv = TOUCH.prepare_invoke();
        inv.key(self.store.keys().job(campaign, job))
            .arg(state.as_str())
            .arg(next_poll_in.map_or(-1, |d| d.as_millis() as i64));
        for (k, v) in fields {
            inv.arg(*k).arg(v);
        }
        let (ok, _now): (i64, u64) = inv.invoke_async(&mut self.conn.clone()).await?;
        Ok(ok == 1)
    }

    pub(crate) async fn push_submit(&self, campaign: &str, job: &str) -> Result<(), PipelineError> {
        let m = StageJob {
            campaign: campaign.into(),
            job: job.into(),
        };
        self.submit_q
            .push_with_id(&format!("{campaign}/{job}"), &m)
            .await?;
        Ok(())
    }

    /// The jobs told "all slots in use" on `key`: a ZSET of [`StageJob`] JSON scored by when
    /// each began to wait. A released slot wakes the longest waiter at once
    /// ([`release_slot_and_wake`](Self::release_slot_and_wake)) instead of leaving the slot
    /// idle until some waiter's deferred message comes back (`queue.defer_delay_ms`).
    fn slot_waiters_key(&self, key: &KeyId) -> String {
        format!("{}:slotwait:{key}", self.prefix)
    }

    /// Set by a feeder round (a few feeder intervals long) when `key`'s room ran out while
    /// jobs that could use it were still queued.
    pub(crate) fn starved_key(&self, key: &KeyId) -> String {
        format!("{}:feeder:starved:{key}", self.prefix)
    }

    /// Registers a job that found every slot of `key` in use (called after the job's lock
    /// is released, so a wake-up never finds it locked). A slot released between the job's
    /// look and this registration woke nobody, so the slot is looked at again: if one is free
    /// now, it is handed to the longest waiter at once. Best effort: on an error the job only
    /// waits out its defer delay, as it would without waking.
    pub(crate) async fn wait_for_slot(&self, key: &KeyId, campaign: &str, job: &str) {
        let k = self.slot_waiters_key(key);
        let member = StageJob::member(campaign, job);
        let mut pipe = redis::pipe();
        // NX: the score stays the time the job began to wait (first come, first woken). The
        // TTL drops the set of a key nobody releases any more (entries are only wake-ups).
        pipe.cmd("ZADD")
            .arg(&k)
            .arg("NX")
            .arg(now_ms())
            .arg(member)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&k)
            .arg(SLOT_WAITERS_TTL_MS)
            .ignore();
        if let Err(e) = pipe.query_async::<()>(&mut self.conn.clone()).await {
            tracing::warn!(error = %e, %key, "could not register a slot waiter");
            return;
        }
        let holder = JobIds::new(campaign, job, 0).holder;
        let again = async {
            if let SlotDecision::Acquired(_) = self.limits.acquire_slot(key, &holder, None).await? {
                self.release_slot_and_wake(key, &holder).await?;
            }
            Ok::<(), PipelineError>(())
        };
        if let Err(e) = again.await {
            tracing::warn!(error = %e, %key, "could not look at the slots again");
        }
    }

    /// Removes a job from `key`'s waiters once it got a slot (so the next release wakes a
    /// job that still waits). Best effort, like [`wait_for_slot`](Self::wait_for_slot).
    pub(crate) async fn stop_waiting_for_slot(&self, key: &KeyId, campaign: &str, job: &str) {
        let member = StageJob::member(campaign, job);
        let r: redis::RedisResult<i64> = redis::cmd("ZREM")
            .arg(self.slot_waiters_key(key))
            .arg(member)
            .query_async(&mut self.conn.clone())
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, %key, "could not remove a slot waiter");
        }
    }

    /// Releases `holder`'s slot of `key`, then pushes the longest-waiting job of that key (if
    /// any) to the submit queue at once; with no job waiting while the feeder's last round
    /// left queued jobs without room on this key ([`starved_key`](Self::starved_key)), nudges
    /// this process's feeder to run its next round early. Release strictly before the
    /// pop: together with the look-again of [`wait_for_slot`](Self::wait_for_slot) no wake-up is lost. A woken job
    /// whose deferred message also comes back later is harmless: the job's lock and state make
    /// the second delivery a no-op.
    pub(crate) async fn release_slot_and_wake(
        &self,
        key: &KeyId,
        holder: &str,
    ) -> Result<(), PipelineError> {
        self.limits.release_slot(key, holder).await?;
        let mut pipe = redis::pipe();
        pipe.cmd("ZPOPMIN")
            .arg(self.slot_waiters_key(key))
            .arg(1)
            .cmd("EXISTS")
            .arg(self.starved_key(key));
        let (popped, starved): (Vec<(String, f64)>, bool) =
            match pipe.query_async(&mut self.conn.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, %key, "could not read the slot waiters");
                    return Ok(());
                }
            };
        if popped.is_empty() && starved {
            // Nobody waits for the slot but queued jobs want the key: let the feeder admit
            // the next one now rather than at its next round.
            self.feeder_nudge.notify_one();
        }
        for (member, _) in popped {
            match serde_json::from_str::<StageJob>(&member) {
                Ok(m) => self.push_submit(&m.campaign, &m.job).await?,
                Err(e) => {
                    tracing::error!(member = %member, error = %e, "unreadable slot waiter dropped")
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn push_poll(
        &self,
        campaign: &str,
        job: &str,
        delay: Duration,
    ) -> Result<(), PipelineError> {
        let m = StageJob {
            campaign: campaign.into(),
            job: job.into(),
        };
        if delay.is_zero() {
            self.poll_q.push(&m).await?;
        } else {
            self.poll_q.push_after(&m, delay).await?;
        }
        Ok(())
    }

    /// The deployment's collect backlog: completed jobs by output link expiry (ms), earliest
    /// first. [`feed_collect`](Self::feed_collect) moves them into the collect queue.
    pub(crate) fn collect_due_key(&self) -> String {
        collect_backlog_key(&self.prefix)
    }

    /// Puts a completed job on the collect backlog, scored by its output link's expiry:
    /// `expires_ms` when the caller has just recorded it (saves a round trip per job), else
    /// `output_expires_at` of its record; unknown = now, i.e. as urgent as it gets.
    /// Idempotent: a job is on the backlog once.
    pub(crate) async fn push_collect(
        &self,
        campaign: &str,
        job: &str,
        expires_ms: Option<u64>,
    ) -> Result<(), PipelineError> {
        let mut conn = self.conn.clone();
        let expires = match expires_ms {
            Some(ms) => Some(ms),
            None => redis::cmd("HGET")
                .arg(self.store.keys().job(campaign, job))
                .arg("output_expires_at")
                .query_async::<Option<String>>(&mut conn)
                .await?
                .and_then(|v| v.parse().ok()),
        };
        let member = StageJob::member(campaign, job);
        let _: i64 = redis::cmd("ZADD")
            .arg(self.collect_due_key())
            .arg(expires.unwrap_or_else(now_ms))
            .arg(member)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Moves up to `n` jobs from the collect backlog into the collect queue, earliest link
    /// expiry first. `ZPOPMIN` hands each job to one caller only, however many processes
    /// feed; a process dying between the pop and the push leaves a `completed` job that the
    /// sweep puts back. Returns how many were moved.
    pub async fn feed_collect(&self, n: usize) -> Result<usize, PipelineError> {
        if n == 0 {
            return Ok(0);
        }
        let popped: Vec<(String, f64)> = redis::cmd("ZPOPMIN")
            .arg(self.collect_due_key())
            .arg(n)
            .query_async(&mut self.conn.clone())
            .await?;
        for (i, (member, _)) in popped.iter().enumerate() {
            let m: StageJob = match serde_json::from_str(member) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(member = %member, error = %e, "unreadable collect backlog entry dropped");
                    continue;
                }
            };
            if let Err(e) = self
                .collect_q
                .push_with_id(&format!("{}/{}", m.campaign, m.job), &m)
                .await
            {
                // Put back what was not pushed (best effort; the sweep covers the rest).
                let mut back = redis::cmd("ZADD");
                back.arg(self.collect_due_key());
                for (member, score) in &popped[i..] {
                    back.arg(*score as u64).arg(member);
                }
                let _: redis::RedisResult<i64> = back.query_async(&mut self.conn.clone()).await;
                return Err(e.into());
            }
        }
        Ok(popped.len())
    }

    /// Jobs on the collect backlog (completed, not yet handed to the collect queue).
    pub async fn collect_backlog(&self) -> Result<u64, PipelineError> {
        Ok(redis::cmd("ZCARD")
            .arg(self.collect_due_key())
            .query_async(&mut self.conn.clone())
            .await?)
    }

    /// Whether a job is on the collect backlog.
    pub(crate) async fn on_collect_backlog(
        &self,
        campaign: &str,
        job: &str,
    ) -> Result<bool, PipelineError> {
        let member = StageJob::member(campaign, job);
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(self.collect_due_key())
            .arg(member)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(score.is_some())
    }

    /// One round of collect admission for a process running `concurrency` collectors: tops
    /// the collect queue's unread jobs up to `concurrency` from the backlog, so the queue
    /// stays short and the earliest-expiring outputs are always the next ones taken.
    pub async fn feed_collect_round(&self, concurrency: usize) -> Result<usize, PipelineError> {
        let unread = self.collect_q.stats().await?.unread as usize;
        self.feed_collect(concurrency.saturating_sub(unread)).await
    }

    /// Worst-case billed seconds of a job on `vendor`: its known reference length, else the
    /// orientation's longest output.
    pub(crate) fn job_seconds(&self, rec: &JobRecord, vendor: Vendor) -> f64 {
        match rec.spec.video_duration_s {
            Some(d) => vendor.billed_seconds(rec.spec.orientation, d),
            None => vendor.worst_case_seconds(rec.spec.orientation),
        }
    }

    /// Cost in the vendor's unit and in USD (micro-units), when the prices are known.
    pub(crate) fn cost(
        &self,
        vendor: Vendor,
        tier: Tier,
        seconds: f64,
    ) -> (Option<u64>, Option<u64>) {
        let p = self.prices.get(&vendor);
        (
            p.and_then(|p| p.per_second(tier))
                .map(|r| micro(r * seconds)),
            p.and_then(|p| p.usd_per_second(tier))
                .map(|r| micro(r * seconds)),
        )
    }

    /// Callback URL for a create call, when this deployment receives webhooks: it carries the
    /// job's idempotency key, so a callback can name the job even if the create answer was lost.
    pub fn callback_url(&self, vendor: Vendor, idem: &str) -> Option<String> {
        let base = self.cfg.webhooks.public_base_url.as_ref()?;
        let token = self.callback_token.as_ref()?;
        if !vendor.capabilities().callbacks {
            return None;
        }
        Some(format!(
            "{}/webhooks/{vendor}/{token}?mq={idem}",
            base.trim_end_matches('/')
        ))
    }

    /// The test-only crash hook (see the crate docs).
    pub(crate) fn maybe_crash_after_create(&self) {
        if let Some(p) = self.crash_after_create {
            if rand::random::<f64>() < p {
                eprintln!("MOTIONQ_TEST_CRASH_AFTER_CREATE: aborting after a create answer");
                std::process::abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_valid_and_distinct_per_generation() {
        let a = JobIds::new("camp", "job/../1", 0);
        assert_eq!(a, JobIds::new("camp", "job/../1", 0));
        let b = JobIds::new("camp", "job/../1", 1);
        assert_eq!(a.holder, b.holder, "one slot holder per job");
        assert_ne!(a.res_key, b.res_key);
        assert_ne!(a.idem, b.idem);
        for s in [&a.holder, &a.res_key, &a.res_campaign, &a.idem] {
            assert!(s.len() <= 200);
            assert!(
                s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{s}"
            );
        }
        assert_ne!(
            JobIds::new("c", "ab", 0).holder,
            JobIds::new("ca", "b", 0).holder
        );
    }

    /// `lock.lua` `take_read` against a real redis-server: the reply parses as [`TakeRead`] in
    /// every case (taken with a job and campaign, held by another holder, no job or campaign),
    /// and release never frees another holder's lock.
    #[tokio::test]
    async fn lock_take_read_returns_the_job_and_campaign_under_the_lock() {
        let redis = motionq_testkit::RedisServer::start().await.unwrap();
        let client = redis::Client::open(redis.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let (lock, job, meta) = ("p:{c:x}:lock:j1", "p:{c:x}:job:j1", "p:{c:x}:meta");
        let _: () = redis::cmd("HSET")
            .arg(job)
            .arg("state")
            .arg("admitted")
            .arg("attempts")
            .arg("2")
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(meta)
            .arg("state")
            .arg("active")
            .arg("spec_rev")
            .arg("17-3")
            .query_async(&mut conn)
            .await
            .unwrap();
        let take = |holder: &'static str, keys: [&'static str; 3]| {
            let mut conn = conn.clone();
            async move {
                let r: TakeRead = LOCK
                    .key(keys[0])
                    .key(keys[1])
                    .key(keys[2])
                    .arg(holder)
                    .arg(60_000)
                    .arg("take_read")
                    .invoke_async(&mut conn)
                    .await
                    .unwrap();
                r
            }
        };
        let (taken, fields, camp) = take("a", [lock, job, meta]).await;
        assert_eq!(taken, 1);
        assert_eq!(fields.get("state").map(String::as_str), Some("admitted"));
        assert_eq!(fields.get("attempts").map(String::as_str), Some("2"));
        assert_eq!(camp, (Some("active".into()), Some("17-3".into())));

        // Another holder gets nothing, and the reply still parses.
        let (taken, fields, camp) = take("b", [lock, job, meta]).await;
        assert_eq!(taken, 0);
        assert!(fields.is_empty());
        assert_eq!(camp, (None, None));
        // The holder itself renews.
        assert_eq!(take("a", [lock, job, meta]).await.0, 1);

        // Release by a stranger keeps the lock; by its holder frees it for the next one.
        let release = |holder: &'static str| {
            let mut conn = conn.clone();
            async move {
                let n: i64 = LOCK
                    .key(lock)
                    .arg(holder)
                    .arg(1)
                    .arg("release")
                    .invoke_async(&mut conn)
                    .await
                    .unwrap();
                n
            }
        };
        assert_eq!(release("b").await, 0);
        assert_eq!(take("b", [lock, job, meta]).await.0, 0);
        assert_eq!(release("a").await, 1);
        assert_eq!(take("b", [lock, job, meta]).await.0, 1);

        // No such job or campaign: taken, empty record, no campaign state.
        let (taken, fields, camp) =
            take("c", ["p:{c:y}:lock:j9", "p:{c:y}:job:j9", "p:{c:y}:meta"]).await;
        assert_eq!(taken, 1);
        assert!(fields.is_empty());
        assert_eq!(camp, (None, None));

        // take_intent: renews the holder's lock and returns the job's state and intent owner;
        // another holder gets nothing.
        let _: () = redis::cmd("HSET")
            .arg(job)
            .arg("state")
            .arg("submitting")
            .arg("intent_by")
            .arg("b")
            .query_async(&mut conn.clone())
            .await
            .unwrap();
        let intent = |holder: &'static str| {
            let mut conn = conn.clone();
            async move {
                let r: (i64, (Option<String>, Option<String>)) = LOCK
                    .key(lock)
                    .key(job)
                    .arg(holder)
                    .arg(60_000)
                    .arg("take_intent")
                    .invoke_async(&mut conn)
                    .await
                    .unwrap();
                r
            }
        };
        assert_eq!(
            intent("b").await,
            (1, (Some("submitting".into()), Some("b".into())))
        );
        assert_eq!(intent("a").await, (0, (None, None)));
        let ttl: i64 = redis::cmd("PTTL")
            .arg(lock)
            .query_async(&mut conn.clone())
            .await
            .unwrap();
        assert!(ttl > 1_000, "take_intent renews the lease: {ttl}");
    }

    /// `poll_gate.lua` against a real redis-server: a due `submitted` job is polled and its
    /// record comes with the answer; an early duplicate is dropped with nothing; a job in
    /// another state (or none) answers -1 with its record (empty when absent).
    #[tokio::test]
    async fn poll_gate_returns_the_record_with_the_decision() {
        let redis = motionq_testkit::RedisServer::start().await.unwrap();
        let client = redis::Client::open(redis.url()).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        let job = "p:{c:x}:job:j1";
        let set = |state: &'static str, next_poll_at: u64| {
            let mut conn = conn.clone();
            async move {
                let _: () = redis::cmd("HSET")
                    .arg(job)
                    .arg("state")
                    .arg(state)
                    .arg("next_poll_at")
                    .arg(next_poll_at)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        };
        let gate = |key: &'static str| {
            let mut conn = conn.clone();
            async move {
                let r: (i64, std::collections::BTreeMap<String, String>) = POLL_GATE
                    .key(key)
                    .arg(500)
                    .invoke_async(&mut conn)
                    .await
                    .unwrap();
                r
            }
        };
        set("submitted", 0).await;
        let (code, fields) = gate(job).await;
        assert_eq!(code, 1);
        assert_eq!(fields.get("state").map(String::as_str), Some("submitted"));
        // Due an hour from now: a duplicate message, dropped.
        set("submitted", now_ms() + 3_600_000).await;
        let (code, fields) = gate(job).await;
        assert_eq!(code, 0);
        assert!(fields.is_empty());
        set("completed", 0).await;
        let (code, fields) = gate(job).await;
        assert_eq!(code, -1);
        assert_eq!(fields.get("state").map(String::as_str), Some("completed"));
        let (code, fields) = gate("p:{c:x}:job:none").await;
        assert_eq!(code, -1);
        assert!(fields.is_empty());
    }

    #[test]
    fn micro_units() {
        assert_eq!(micro(1.25), 1_250_000);
        assert_eq!(micro(-1.0), 0);
        assert_eq!(micro(f64::NAN), 0);
    }

    #[test]
    fn limits_from_config_converts_caps() {
        let mut cfg = Config::default();
        cfg.vendors
            .get_mut(&Vendor::Evolink)
            .unwrap()
            .keys
            .push(motionq_config::KeyConfig {
                alias: "main".into(),
                api_key_env: "X".into(),
                create_rate_per_s: 3.0,
                create_burst: 1,
                create_max_per_s: Some(3),
                query_rate_per_s: 9.0,
                query_burst: 2,
                query_max_per_s: None,
                max_concurrent: 4,
                lease_ttl_s: 30,
                spend_hourly: Some(2.5),
                spend_daily: None,
                spend_total: None,
            });
        let lc = limits_config(&cfg);
        let k = &lc.keys["evolink/main"];
        assert_eq!(k.spend.hourly, Some(2_500_000));
        assert_eq!(k.lease_ttl_ms, 30_000);
        assert_eq!(k.max_concurrent, 4);
        assert_eq!(k.create_max_per_s, Some(3));
        assert_eq!(k.query_max_per_s, None);
        lc.validate().unwrap();
    }
}
