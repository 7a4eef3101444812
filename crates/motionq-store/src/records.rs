//! Campaign and job records: the state store that status, reports, the feeder and every stage
//! read and write.
//!
//! # Key layout (prefix `P` = `redis.key_prefix`, default `mq`)
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:campaigns` | ZSET | campaign ids, scored by creation time (ms) |
//! | `P:{c:ID}:meta` | HASH | `spec` (campaign JSON), `state` (`enqueuing`, `active`, `paused`, `cancelled`), `priority`, `manifest_sha256`, `jobs_total`, `est_expected_usd`, `est_worst_usd`, `created_at`, `updated_at` |
//! | `P:{c:ID}:job:<job id>` | HASH | one job: `id`, `idx`, `hash`, `spec` (JSON), `vendors` (JSON), `est_usd`, `labels`, `state`, `state_at`, `created_at`, `attempts`, and what the stages add (`vendor`, `key_alias`, `task_id`, `output_url`, `object_url`, `sha256`, `bytes`, `error_class`, `error_message`, ...) |
//! | `P:{c:ID}:jobs` | ZSET | every job id, scored by manifest position |
//! | `P:{c:ID}:queued` | ZSET | ids in state `queued`, the feeder's source |
//! | `P:{c:ID}:counts` | HASH | jobs per state |
//! | `P:{c:ID}:events` | STREAM | the audit log: one entry per job creation and transition |
//!
//! Every key of a campaign shares the hash tag `{c:ID}`, so each script touches one slot and
//! the layout works on Redis Cluster. Timestamps are Redis server time (`TIME`), in ms.
//!
//! # Enqueue guarantees
//! * Idempotent: a job whose id exists with the same content hash is left alone
//!   (`jobs_new: 0` on a re-run); with different content it is a conflict, refused before
//!   anything is written, unless `replace` is asked and the job has not been submitted.
//! * All or nothing per chunk, and nothing admitted before the end: the campaign stays in state
//!   `enqueuing` until the last chunk is written, and the feeder ignores such campaigns. An
//!   interrupted enqueue (Redis down, Ctrl-C) is completed by running it again.
//! * Fast: jobs are written by a Lua script in chunks (`validation.enqueue_chunk`, default 500)
//!   with several chunks in flight on the multiplexed connection.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt, TryStreamExt};
use motionq_core::validate::{CampaignSpec, ValidatedJob};
use motionq_core::{JobSpec, JobState, Vendor};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::conn::RedisConn;

static CREATE_CAMPAIGN: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../lua/create_campaign.lua")));
static ENQUEUE_JOBS: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../lua/enqueue_jobs.lua")));
static FINISH_ENQUEUE: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../lua/finish_enqueue.lua")));
static TRANSITION: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../lua/transition.lua")));

/// Errors of the record store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis failed or is unreachable. Retried by the caller (enqueue: re-run it).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A job id already exists with different content. Never retried: fix the manifest or use
    /// `--replace`.
    #[error("{} job id(s) already exist with different content or cannot be replaced: {}", .0.len(), summarize(.0))]
    Conflict(Vec<(String, String)>),
    /// The campaign exists with different settings. Never retried.
    #[error("campaign `{campaign}` already exists with different settings ({fields}); use --replace to update them")]
    CampaignDiffers { campaign: String, fields: String },
    /// The campaign was cancelled. Never retried.
    #[error("campaign `{0}` was cancelled; use a new campaign id")]
    CampaignCancelled(String),
    /// No such campaign.
    #[error("unknown campaign `{0}`")]
    UnknownCampaign(String),

    /// A stored record could not be read (written by a newer version, or corrupted).
    #[error("corrupt record {key}: {message}")]
    Corrupt { key: String, message: String },
}

fn summarize(c: &[(String, String)]) -> String {
    let mut s: Vec<String> = c
        .iter()
        .take(10)
        .map(|(id, why)| format!("`{id}` ({why})"))
        .collect();
    if c.len() > 10 {
        s.push(format!("and {} more", c.len() - 10));
    }
    s.join(", ")
}

/// Key names for one deployment (prefix) and campaign.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }
    pub fn campaigns(&self) -> String {
        format!("{}:campaigns", self.prefix)
    }
    fn c(&self, campaign: &str, what: &str) -> String {
        format!("{}:{{c:{campaign}}}:{what}", self.prefix)
    }
    pub fn meta(&self, campaign: &str) -> String {
        self.c(campaign, "meta")
    }
    pub fn job(&self, campaign: &str, job: &str) -> String {
        format!("{}:{{c:{campaign}}}:job:{job}", self.prefix)
    }
    pub fn jobs(&self, campaign: &str) -> String {
        self.c(campaign, "jobs")
    }
    pub fn queued(&self, campaign: &str) -> String {
        self.c(campaign, "queued")
    }
    pub fn counts(&self, campaign: &str) -> String {
        self.c(campaign, "counts")
    }
    pub fn events(&self, campaign: &str) -> String {
        self.c(campaign, "events")
    }
}

/// Whether re-enqueuing may replace jobs whose content changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueMode {
    /// A changed job is a conflict; nothing is written.
    Strict,
    /// A changed job that has not been submitted is replaced; campaign settings are updated.
    Replace,
}

/// What an enqueue did. Serialised as the `--json` summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnqueueSummary {
    pub campaign: String,
    pub jobs_total: u64,
    pub jobs_new: u64,
    pub jobs_existing: u64,
    pub jobs_replaced: u64,
    pub estimated_cost_usd: Option<f64>,
    pub worst_case_cost_usd: Option<f64>,
    pub state: String,
}

/// Input of [`Store::enqueue`].
pub struct EnqueueRequest<'a> {
    pub campaign: &'a CampaignSpec,
    pub jobs: &'a [ValidatedJob],
    /// Per-job expected USD (same order as `jobs`), when known.
    pub job_costs: &'a [Option<f64>],
    pub manifest_sha256: &'a str,
    pub expected_usd: Option<f64>,
    pub worst_case_usd: Option<f64>,
    pub mode: EnqueueMode,
    pub chunk: usize,
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub spec: CampaignSpec,
    pub state: String,
    pub jobs_total: u64,
    pub counts: BTreeMap<String, i64>,
    pub created_at_ms: u64,
    pub est_expected_usd: Option<f64>,
    pub est_worst_usd: Option<f64>,
}

/// A job as stored: its spec plus every field the stages wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub index: u64,
    pub state: JobState,
    pub spec: JobSpec,
    pub vendors: Vec<Vendor>,
    /// Every other field, as stored (timestamps in ms, ids, errors).
    pub fields: BTreeMap<String, String>,
}

/// Outcome of [`Store::transition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Done; holds the previous state.
    Moved(JobState),
    /// The job was not in an allowed state; holds its current state. Nothing changed.
    WrongState(JobState),
    /// No such job.
    Missing,
}

/// Campaign and job records in Redis.
#[derive(Clone)]
pub struct Store {
    conn: RedisConn,
    keys: Keys,
    /// Approximate cap of each campaign's event stream.
    events_maxlen: u64,
}

impl Store {
    pub fn new(conn: RedisConn, key_prefix: &str) -> Self {
        Self {
            conn,
            keys: Keys::new(key_prefix),
            events_maxlen: 1_000_000,
        }
    }

    /// The key names in use.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The underlying connection.
    pub fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    /// Stores a validated campaign and its jobs in state `queued`. See the module docs for the
    /// guarantees.
    pub async fn enqueue(&self, req: EnqueueRequest<'_>) -> Result<EnqueueSummary, StoreError> {
        let c = &req.campaign.id;
        let mut conn = self.conn.clone();
        let spec_json = serde_json::to_string(req.campaign).expect("CampaignSpec serialises");
        let mode = match req.mode {
            EnqueueMode::Strict => "strict",
            EnqueueMode::Replace => "replace",
        };
        // 1. Conflicts first, across the whole manifest, before writing anything.
        let conflicts = self.find_conflicts(req.jobs, c, req.mode).await?;
        if !conflicts.is_empty() {
            return Err(StoreError::Conflict(conflicts));
        }
        // 2. The campaign record.
        let (status, existing, state): (String, String, String) = CREATE_CAMPAIGN
            .key(self.keys.meta(c))
            .arg(&spec_json)
            .arg(req.manifest_sha256)
            .arg(req.campaign.priority)
            .arg(mode)
            .invoke_async(&mut conn)
            .await?;
        if state == "cancelled" {
            return Err(StoreError::CampaignCancelled(c.clone()));
        }
        if status == "differs" {
            return Err(StoreError::CampaignDiffers {
                campaign: c.clone(),
                fields: differing_fields(&existing, &spec_json),
            });
        }
        let _: () = conn.zadd_nx_ms(&self.keys.campaigns(), c).await?;
        // 3. Jobs, chunk by chunk, several chunks in flight.
        let chunk = req.chunk.max(1);
        let chunks: Vec<(usize, &[ValidatedJob])> = req
            .jobs
            .chunks(chunk)
            .enumerate()
            .map(|(i, ch)| (i * chunk, ch))
            .collect();
        let results: Vec<(u64, u64, u64)> = stream::iter(chunks)
            .map(|(offset, jobs)| {
                let mut conn = self.conn.clone();
                let costs = &req.job_costs[offset..offset + jobs.len()];
                async move { self.enqueue_chunk(&mut conn, c, jobs, costs, mode).await }
            })
            .buffered(4)
            .try_collect()
            .await?;
        let (new, same, replaced) = results
            .iter()
            .fold((0, 0, 0), |a, r| (a.0 + r.0, a.1 + r.1, a.2 + r.2));
        // 4. Open the campaign to the feeder.
        let (state, total): (String, u64) = FINISH_ENQUEUE
            .key(self.keys.meta(c))
            .key(self.keys.jobs(c))
            .key(self.keys.events(c))
            .arg(opt_num(req.expected_usd))
            .arg(opt_num(req.worst_case_usd))
            .arg(self.events_maxlen)
            .invoke_async(&mut conn)
            .await?;
        Ok(EnqueueSummary {
            campaign: c.clone(),
            jobs_total: total,
            jobs_new: new,
            jobs_existing: same,
            jobs_replaced: replaced,
            estimated_cost_usd: req.expected_usd,
            worst_case_cost_usd: req.worst_case_usd,
            state,
        })
    }

    async fn find_conflicts(
        &self,
        jobs: &[ValidatedJob],
        campaign: &str,
        mode: EnqueueMode,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for chunk in jobs.chunks(2000) {
            let mut pipe = redis::pipe();
            for j in chunk {
                pipe.cmd("HMGET")
                    .arg(self.keys.job(campaign, &j.spec.id))
                    .arg("hash")
                    .arg("state");
            }
            let mut conn = self.conn.clone();
            let rows: Vec<(Option<String>, Option<String>)> = pipe.query_async(&mut conn).await?;
            for (j, (hash, state)) in chunk.iter().zip(rows) {
                let Some(hash) = hash else { continue };
                if hash == j.content_hash {
                    continue;
                }
                let state = state.unwrap_or_default();
                let replaceable = matches!(
                    state.as_str(),
                    "queued" | "failed" | "cancelled" | "expired"
                );
                match mode {
                    EnqueueMode::Strict => out.push((
                        j.spec.id.clone(),
                        "exists with different content; use --replace to replace it".into(),
                    )),
                    EnqueueMode::Replace if !replaceable => out.push((
                        j.spec.id.clone(),
                        format!("is `{state}`; only jobs not yet submitted can be replaced"),
                    )),
                    EnqueueMode::Replace => {}
                }
            }
        }
        Ok(out)
    }

    async fn enqueue_chunk(
        &self,
        conn: &mut RedisConn,
        campaign: &str,
        jobs: &[ValidatedJob],
        costs: &[Option<f64>],
        mode: &str,
    ) -> Result<(u64, u64, u64), StoreError> {
        let mut inv = ENQUEUE_JOBS.prepare_invoke();
        inv.key(self.keys.jobs(campaign))
            .key(self.keys.queued(campaign))
            .key(self.keys.counts(campaign))
            .key(self.keys.events(campaign));
        for j in jobs {
            inv.key(self.keys.job(campaign, &j.spec.id));
        }
        inv.arg(mode).arg(self.events_maxlen);
        for (j, cost) in jobs.iter().zip(costs) {
            inv.arg(&j.spec.id)
                .arg(j.index)
                .arg(&j.content_hash)
                .arg(serde_json::to_string(&j.spec).expect("JobSpec serialises"))
                .arg(serde_json::to_string(&j.vendors).expect("vendors serialise"))
                .arg(opt_num(*cost))
                .arg(serde_json::to_string(&j.labels).expect("labels serialise"));
        }
        let reply: Vec<redis::Value> = inv.invoke_async(conn).await?;
        let status = match reply.first() {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).to_string(),
            Some(redis::Value::SimpleString(s)) => s.clone(),
            _ => String::new(),
        };
        if status == "conflict" {
            // Another enqueue changed a job between the pre-check and this chunk.
            let items: Vec<String> = reply[1..]
                .iter()
                .map(|v| {
                    <String as redis::FromRedisValue>::from_redis_value_ref(v).unwrap_or_default()
                })
                .collect();
            return Err(StoreError::Conflict(
                items
                    .chunks(2)
                    .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
                    .collect(),
            ));
        }
        let n = |i: usize| -> u64 {
            reply
                .get(i)
                .and_then(|v| <u64 as redis::FromRedisValue>::from_redis_value_ref(v).ok())
                .unwrap_or(0)
        };
        Ok((n(1), n(2), n(3)))
    }

    /// Moves a job from one of `from` (empty = any) to `to`, setting `fields` (an empty value
    /// deletes a field), atomically with the counters and the event stream.
    pub async fn transition(
        &self,
        campaign: &str,
        job: &str,
        from: &[JobState],
        to: JobState,
        detail: &str,
        fields: &[(&str, String)],
    ) -> Result<Transition, StoreError> {
        let allowed = if from.is_empty() {
            "*".to_string()
        } else {
            from.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut inv = TRANSITION.prepare_invoke();
        inv.key(self.keys.job(campaign, job))
            .key(self.keys.counts(campaign))
            .key(self.keys.queued(campaign))
            .key(self.keys.events(campaign))
            .arg(allowed)
            .arg(to.as_str())
            .arg(self.events_maxlen)
            .arg(detail);
        for (k, v) in fields {
            inv.arg(*k).arg(v);
        }
        let mut conn = self.conn.clone();
        let (status, state): (String, String) = inv.invoke_async(&mut conn).await?;
        let parse = |s: &str| {
            s.parse::<JobState>().map_err(|e| StoreError::Corrupt {
                key: self.keys.job(campaign, job),
                message: e,
            })
        };
        Ok(match status.as_str() {
            "ok" => Transition::Moved(parse(&state)?),
            "wrong_state" => Transition::WrongState(parse(&state)?),
            _ => Transition::Missing,
        })
    }

    /// One job's record.
    pub async fn job(&self, campaign: &str, job: &str) -> Result<Option<JobRecord>, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.keys.job(campaign, job);
        let map: BTreeMap<String, String> = conn.hgetall(&key).await?;
        if map.is_empty() {
            return Ok(None);
        }
        parse_job(&key, map).map(Some)
    }

    /// A job's record from its hash's fields read elsewhere (e.g. by a script that reads the
    /// record together with other keys of its campaign); `None` for an empty hash (no job).
    pub fn job_from_fields(
        &self,
        campaign: &str,
        job: &str,
        fields: BTreeMap<String, String>,
    ) -> Result<Option<JobRecord>, StoreError> {
        if fields.is_empty() {
            return Ok(None);
        }
        parse_job(&self.keys.job(campaign, job), fields).map(Some)
    }

    /// Jobs of a campaign in manifest order, `start..start+count` (for reports, paged).
    pub async fn jobs_page(
        &self,
        campaign: &str,
        start: isize,
        count: isize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn
            .zrange(self.keys.jobs(campaign), start, start + count - 1)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.keys.job(campaign, id));
        }
        let maps: Vec<BTreeMap<String, String>> = pipe.query_async(&mut conn).await?;
        ids.iter()
            .zip(maps)
            .filter(|(_, m)| !m.is_empty())
            .map(|(id, m)| parse_job(&self.keys.job(campaign, id), m))
            .collect()
    }

    /// A campaign's state and spec revision (`spec_rev`, bumped by every write of its spec;
    /// empty for campaigns written before revisions existed): one `HMGET`, for hot paths that
    /// cache the parsed spec by revision (see [`Store::campaign_spec`]).
    pub async fn campaign_state(&self, campaign: &str) -> Result<(String, String), StoreError> {
        let mut conn = self.conn.clone();
        let (state, rev): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.meta(campaign))
            .arg("state")
            .arg("spec_rev")
            .query_async(&mut conn)
            .await?;
        match state {
            Some(state) => Ok((state, rev.unwrap_or_default())),
            None => Err(StoreError::UnknownCampaign(campaign.to_string())),
        }
    }

    /// A campaign's spec with the revision it was read at (`HMGET spec spec_rev`).
    pub async fn campaign_spec(
        &self,
        campaign: &str,
    ) -> Result<(CampaignSpec, String), StoreError> {
        let mut conn = self.conn.clone();
        let key = self.keys.meta(campaign);
        let (spec, rev): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(&key)
            .arg("spec")
            .arg("spec_rev")
            .query_async(&mut conn)
            .await?;
        let Some(spec) = spec else {
            return Err(StoreError::UnknownCampaign(campaign.to_string()));
        };
        let spec = serde_json::from_str(&spec).map_err(|e| StoreError::Corrupt {
            key,
            message: format!("spec: {e}"),
        })?;
        Ok((spec, rev.unwrap_or_default()))
    }

    /// A campaign with its counts.
    pub async fn campaign(&self, campaign: &str) -> Result<CampaignRecord, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.keys.meta(campaign);
        let (meta, counts): (BTreeMap<String, String>, BTreeMap<String, i64>) = redis::pipe()
            .hgetall(&key)
            .hgetall(self.keys.counts(campaign))
            .query_async(&mut conn)
            .await?;
        if meta.is_empty() {
            return Err(StoreError::UnknownCampaign(campaign.to_string()));
        }
        let spec: CampaignSpec = serde_json::from_str(
            meta.get("spec").map(String::as_str).unwrap_or(""),
        )
        .map_err(|e| StoreError::Corrupt {
            key: key.clone(),
            message: format!("spec: {e}"),
        })?;
        let num = |f: &str| meta.get(f).and_then(|v| v.parse::<f64>().ok());
        Ok(CampaignRecord {
            spec,
            state: meta.get("state").cloned().unwrap_or_default(),
            jobs_total: num("jobs_total").unwrap_or(0.0) as u64,
            counts: counts.into_iter().filter(|(_, n)| *n != 0).collect(),
            created_at_ms: num("created_at").unwrap_or(0.0) as u64,
            est_expected_usd: num("est_expected_usd"),
            est_worst_usd: num("est_worst_usd"),
        })
    }

    /// Every campaign id, oldest first.
    pub async fn campaign_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(conn.zrange(self.keys.campaigns(), 0, -1).await?)
    }
}

fn parse_job(key: &str, mut m: BTreeMap<String, String>) -> Result<JobRecord, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        key: key.to_string(),
        message,
    };
    let spec: JobSpec = serde_json::from_str(&m.remove("spec").unwrap_or_default())
        .map_err(|e| corrupt(format!("spec: {e}")))?;
    let vendors: Vec<Vendor> =
        serde_json::from_str(&m.remove("vendors").unwrap_or_else(|| "[]".into()))
            .map_err(|e| corrupt(format!("vendors: {e}")))?;
    let state: JobState = m
        .remove("state")
        .unwrap_or_default()
        .parse()
        .map_err(corrupt)?;
    let index = m.get("idx").and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(JobRecord {
        id: m.get("id").cloned().unwrap_or_else(|| spec.id.clone()),
        index,
        state,
        spec,
        vendors,
        fields: m,
    })
}

fn opt_num(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

/// Names the top-level fields that differ between two campaign spec JSON documents.
fn differing_fields(a: &str, b: &str) -> String {
    let a: serde_json::Map<String, serde_json::Value> = serde_json::from_str(a).unwrap_or_default();
    let b: serde_json::Map<String, serde_json::Value> = serde_json::from_str(b).unwrap_or_default();
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let diff: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {} -> {}",
                a.get(k)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "unset".into()),
                b.get(k)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "unset".into())
            )
        })
        .collect();
    diff.join("; ")
}

/// `ZADD NX` with the current time in ms as score (campaign index).
trait ZaddNxMs {
    async fn zadd_nx_ms(&mut self, key: &str, member: &str) -> redis::RedisResult<()>;
}

impl ZaddNxMs for RedisConn {
    async fn zadd_nx_ms(&mut self, key: &str, member: &str) -> redis::RedisResult<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        redis::cmd("ZADD")
            .arg(key)
            .arg("NX")
            .arg(now)
            .arg(member)
            .query_async(self)
            .await
    }
}
