//! The HTTP side: [`WebhookState`], [`router`], [`serve`], and the `motionq serve` command
//! ([`ServeArgs`], [`run`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::StreamExt;
use motionq_config::Config;
use motionq_core::{JobState, Vendor};
use motionq_metrics::{Metrics, WebhookOutcome};
use motionq_pipeline::{queue_config, Pipeline, PipelineError, PipelineOptions, StageJob};
use motionq_queue::StreamQueue;
use motionq_store::RedisConn;
use secrecy::SecretString;
use serde_json::json;

use crate::auth::{verify_standard_webhook, PathToken, SigningSecret};
use crate::error::{Rejection, SignatureError, WebhookError};
use crate::intake::{loggable, parse_delivery, vendor_from_path, CallbackQuery, Delivery};

static NUDGE: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("../lua/nudge.lua")));

/// Largest body accepted by default (vendor callbacks are a few KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// How long a delivery's dedup key is kept by default: longer than every vendor's retry
/// schedule (Freepik's last retry comes ~35 min after the first attempt).
pub const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(24 * 3600);

/// Tuning of the intake that is not in `[webhooks]`.
#[derive(Debug, Clone)]
pub struct IntakeOptions {
    /// Accept a path token shorter than [`crate::MIN_TOKEN_LEN`] (local development only).
    pub allow_short_token: bool,
    /// Bodies larger than this get `413`.
    pub max_body_bytes: usize,
    /// Lifetime of dedup keys.
    pub dedup_ttl: Duration,
}

impl Default for IntakeOptions {
    fn default() -> Self {
        Self {
            allow_short_token: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            dedup_ttl: DEFAULT_DEDUP_TTL,
        }
    }
}

/// The secrets of the intake, read from the environment variables `[webhooks]` names.
pub struct WebhookSecrets {
    /// The path token (`webhooks.token_env`).
    pub token: SecretString,
    /// Freepik's Standard-Webhooks secret (`webhooks.freepik_secret_env`), if configured.
    pub freepik: Option<SecretString>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("token", &"<redacted>")
            .field("freepik", &self.freepik.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl WebhookSecrets {
    /// Reads both secrets. A missing token is an error (nothing could be authenticated, and
    /// the pipeline attaches no callback URL without it); a named but missing Freepik secret
    /// is an error too (the operator meant to verify Freepik); an unnamed one leaves Freepik
    /// deliveries refused with `401`.
    pub fn from_env(cfg: &motionq_config::WebhookConfig) -> Result<Self, WebhookError> {
        let var = cfg.token_env.as_deref().ok_or_else(|| {
            WebhookError::MissingToken(
                "webhooks.token_env is not set (env MOTIONQ__WEBHOOKS__TOKEN_ENV); name an \
                 environment variable holding a random token of at least 24 characters"
                    .into(),
            )
        })?;
        let token = read_env(var).ok_or_else(|| {
            WebhookError::MissingToken(format!(
                "environment variable `{var}` (webhooks.token_env) is not set or empty"
            ))
        })?;
        let freepik = match cfg.freepik_secret_env.as_deref() {
            None => None,
            Some(v) => Some(SecretString::from(read_env(v).ok_or_else(|| {
                WebhookError::BadSecret(format!(
                    "environment variable `{v}` (webhooks.freepik_secret_env) is not set or empty"
                ))
            })?)),
        };
        Ok(Self {
            token: SecretString::from(token),
            freepik,
        })
    }
}

fn read_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// Everything a request needs; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct WebhookState {
    inner: Arc<Inner>,
}

struct Inner {
    /// Task index lookups (`job_for_task`, `task_for_idem`) and the record store.
    pipeline: Arc<Pipeline>,
    conn: RedisConn,
    /// The pipeline's `poll` stage queue; a webhook pushes one message per nudged job.
    poll_q: StreamQueue<StageJob>,
    token: PathToken,
    freepik: Option<SigningSecret>,
    tolerance: Duration,
    prefix: String,
    opts: IntakeOptions,
    metrics: Metrics,
}

impl std::fmt::Debug for WebhookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookState")
            .field("prefix", &self.inner.prefix)
            .field("freepik_secret", &self.inner.freepik.is_some())
            .field("opts", &self.inner.opts)
            .finish()
    }
}

impl WebhookState {
    /// Builds the state around an existing pipeline context (a worker that also serves
    /// webhooks shares its own). Checks the token and the Freepik secret.
    pub fn new(
        cfg: &Config,
        pipeline: Arc<Pipeline>,
        metrics: Metrics,
        secrets: WebhookSecrets,
        opts: IntakeOptions,
    ) -> Result<Self, WebhookError> {
        let token = PathToken::new(&secrets.token, opts.allow_short_token)?;
        let freepik = secrets
            .freepik
            .as_ref()
            .map(SigningSecret::parse)
            .transpose()?;
        let conn = pipeline.store().conn();
        let qcfg = queue_config(cfg)?;
        let poll_q = StreamQueue::with_conn(conn.clone(), &cfg.redis, "poll", qcfg)
            .map_err(|e| WebhookError::Config(format!("poll queue: {e}")))?;
        if opts.max_body_bytes == 0 {
            return Err(WebhookError::Config("max_body_bytes must be > 0".into()));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                pipeline,
                conn,
                poll_q,
                token,
                freepik,
                tolerance: Duration::from_secs(cfg.webhooks.tolerance_s),
                prefix: cfg.redis.key_prefix.clone(),
                opts,
                metrics,
            }),
        })
    }

    /// Reads the secrets from the environment, connects the pipeline context (Redis; the
    /// vendor API keys' env vars must be set, as for a worker) and builds the state.
    pub async fn connect(
        cfg: &Config,
        metrics: Metrics,
        opts: IntakeOptions,
    ) -> Result<Self, WebhookError> {
        let secrets = WebhookSecrets::from_env(&cfg.webhooks)?;
        // Check the secrets before connecting anything: configuration mistakes fail fast.
        PathToken::new(&secrets.token, opts.allow_short_token)?;
        if let Some(s) = &secrets.freepik {
            SigningSecret::parse(s)?;
        }
        // One registry per process: the pipeline context records into the same metrics.
        let pipeline = Arc::new(
            Pipeline::connect(cfg, PipelineOptions::from_worker_config(&cfg.worker))
                .await?
                .with_metrics(metrics.clone()),
        );
        let state = Self::new(cfg, pipeline, metrics, secrets, opts)?;
        state.warn_about_config(cfg);
        Ok(state)
    }

    /// The metrics this state records into.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    fn warn_about_config(&self, cfg: &Config) {
        match cfg.webhooks.public_base_url.as_deref() {
            None => tracing::warn!(
                "webhooks.public_base_url is not set: workers attach no callback URL, so no vendor will call this server (polling still works)"
            ),
            Some(u) if !u.starts_with("https://") => tracing::warn!(
                "webhooks.public_base_url is not HTTPS: real vendors refuse such callback URLs (fine against the simulator)"
            ),
            Some(_) => {}
        }
        let freepik_keys = cfg
            .vendors
            .get(&Vendor::Freepik)
            .is_some_and(|v| !v.keys.is_empty());
        if freepik_keys && self.inner.freepik.is_none() {
            tracing::warn!(
                "Freepik keys are configured but webhooks.freepik_secret_env is not: Freepik webhooks will be refused (401); its jobs complete by polling"
            );
        }
    }

    fn dedup_key(&self, d: &Delivery) -> String {
        format!(
            "{}:{{wh:{}}}:seen:{}",
            self.inner.prefix, d.vendor, d.dedup_key
        )
    }

    /// The pipeline's idempotency-key index of `vendor` (`Pipeline::record_task` writes it,
    /// reconciliation reads it through `task_for_idem`). Mirrored here because the pipeline
    /// offers no insert-if-absent; `tests/intake.rs` checks that `task_for_idem` reads it.
    fn idem_index_key(&self, vendor: Vendor) -> String {
        format!("{}:{{t:{vendor}}}:idem", self.inner.prefix)
    }
}

/// What was done with a verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// The job was `submitted`: its next poll is due now and a poll message was pushed.
    PollNow { campaign: String, job: String },
    /// Nothing to speed up: a non-terminal status, or a job not yet recorded as submitted
    /// (its own first poll follows), or a job that has moved on.
    Nothing { why: &'static str, moved_on: bool },
    /// No job is known for the task (possibly recorded in the idempotency index for
    /// reconciliation).
    UnknownTask { recorded_idem: bool },
}

/// The webhook routes (`POST /webhooks/{vendor}/{token}`) plus `GET /healthz` (Redis `PING`).
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/webhooks/{vendor}/{token}", post(deliver))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// [`router`] plus `GET /metrics` (the process's [`Metrics`]): what `motionq serve` serves.
pub fn app(state: WebhookState) -> Router {
    let metrics = state.inner.metrics.clone();
    router(state).route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    m.render().await,
                )
            }
        }),
    )
}

async fn healthz(State(s): State<WebhookState>) -> Response {
    let ping: Result<String, _> = redis::cmd("PING")
        .query_async(&mut s.inner.conn.clone())
        .await;
    match ping {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "unhealthy: redis\n").into_response(),
    }
}

fn reject(
    s: &WebhookState,
    vendor: Option<Vendor>,
    outcome: Option<WebhookOutcome>,
    r: Rejection,
) -> Response {
    if let (Some(v), Some(o)) = (vendor, outcome) {
        s.inner.metrics.webhook(v, o);
    }
    tracing::warn!(
        vendor = vendor.map(|v| v.as_str()).unwrap_or("-"),
        status = r.status.as_u16(),
        reason = %r.reason,
        "webhook rejected"
    );
    (r.status, axum::Json(json!({ "error": r.reason }))).into_response()
}

fn answer(status: StatusCode, outcome: &str) -> Response {
    (status, axum::Json(json!({ "outcome": outcome }))).into_response()
}

/// Reads at most `max` bytes. `Err(413)` beyond, `Err(400)` when the client breaks off.
async fn read_body(headers: &HeaderMap, body: Body, max: usize) -> Result<Vec<u8>, Rejection> {
    let too_big = || {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body exceeds {max} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    let mut out = Vec::with_capacity(declared.map_or(4096, |n| n as usize).min(max));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|_| Rejection::new(StatusCode::BAD_REQUEST, "body could not be read"))?;
        if out.len() + chunk.len() > max {
            return Err(too_big());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn deliver(
    State(s): State<WebhookState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // axum's own rejection text may quote the path, which holds the token: answer our own.
    let Ok(Path((vendor_seg, token))) = path else {
        return reject(
            &s,
            None,
            None,
            Rejection::new(StatusCode::NOT_FOUND, "no such endpoint"),
        );
    };
    let vendor = match vendor_from_path(&vendor_seg) {
        Ok(v) => v,
        Err(r) => return reject(&s, None, None, r),
    };
    if !s.inner.token.matches(&token) {
        return reject(
            &s,
            Some(vendor),
            Some(WebhookOutcome::RejectedSignature),
            Rejection::new(StatusCode::UNAUTHORIZED, "unauthorized"),
        );
    }
    let bytes = match read_body(&headers, body, s.inner.opts.max_body_bytes).await {
        Ok(b) => b,
        Err(r) => return reject(&s, Some(vendor), Some(WebhookOutcome::RejectedMalformed), r),
    };
    // Signed vendors: the signature is checked over the raw bytes before anything parses them.
    let msg_id = if vendor == Vendor::Freepik {
        let verified = match &s.inner.freepik {
            Some(secret) => {
                verify_standard_webhook(secret, &headers, &bytes, now_unix(), s.inner.tolerance)
            }
            None => Err(SignatureError::NoSecret),
        };
        match verified {
            Ok(id) => Some(id),
            Err(e) => {
                return reject(
                    &s,
                    Some(vendor),
                    Some(WebhookOutcome::RejectedSignature),
                    Rejection::new(StatusCode::UNAUTHORIZED, format!("signature: {e}")),
                );
            }
        }
    } else {
        None
    };
    let delivery = match parse_delivery(vendor, &headers, &bytes, msg_id.as_deref()) {
        Ok(d) => d,
        Err(r) => return reject(&s, Some(vendor), Some(WebhookOutcome::RejectedMalformed), r),
    };
    let q = CallbackQuery::parse(query.as_deref());
    match handle_verified(&s, &delivery, &q).await {
        Ok(resp) => resp,
        Err(e) => {
            // Redis trouble: the vendor retries (every vendor retries non-2xx), polling covers
            // the rest. The error text is ours (Redis), never the request's.
            tracing::error!(vendor = %vendor, error = %e, "webhook could not be processed; answering 503 so the vendor retries");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "error": "temporarily unavailable" })),
            )
                .into_response()
        }
    }
}

async fn handle_verified(
    s: &WebhookState,
    d: &Delivery,
    q: &CallbackQuery,
) -> Result<Response, PipelineError> {
    let vendor = d.vendor;
    let task = loggable(&d.event.task_id);
    let status = d.event.state.status.as_str();
    let key = s.dedup_key(d);
    let mut conn = s.inner.conn.clone();
    let claimed: Option<String> = redis::cmd("SET")
        .arg(&key)
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(s.inner.opts.dedup_ttl.as_secs().max(1))
        .query_async(&mut conn)
        .await?;
    if claimed.is_none() {
        s.inner.metrics.webhook(vendor, WebhookOutcome::Duplicate);
        tracing::info!(vendor = %vendor, task = %task, status, "duplicate webhook delivery ignored");
        return Ok(answer(StatusCode::OK, "duplicate"));
    }
    let action = match act(s, d, q).await {
        Ok(a) => a,
        Err(e) => {
            // Not processed: forget the delivery so the vendor's retry is not taken for a
            // duplicate.
            let _: Result<i64, _> = redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
            return Err(e);
        }
    };
    Ok(match action {
        Action::PollNow { campaign, job } => {
            s.inner.metrics.webhook(vendor, WebhookOutcome::Accepted);
            tracing::info!(vendor = %vendor, task = %task, status, campaign = %campaign, job = %job, "webhook: job polled now");
            answer(StatusCode::OK, "poll_now")
        }
        Action::Nothing { why, moved_on } => {
            let o = if moved_on {
                WebhookOutcome::Duplicate
            } else {
                WebhookOutcome::Accepted
            };
            s.inner.metrics.webhook(vendor, o);
            tracing::info!(vendor = %vendor, task = %task, status, why, "webhook: nothing to speed up");
            answer(StatusCode::OK, o.as_str())
        }
        Action::UnknownTask { recorded_idem } => {
            s.inner
                .metrics
                .webhook(vendor, WebhookOutcome::RejectedUnknownTask);
            tracing::warn!(vendor = %vendor, task = %task, status, recorded_idem, "webhook for a task no job is recorded for");
            answer(StatusCode::ACCEPTED, "unknown_task")
        }
    })
}

/// Finds the job and, when it is `submitted` and the callback reports a terminal status,
/// makes its next poll due now and pushes a poll message. Never changes a job's state.
async fn act(s: &WebhookState, d: &Delivery, q: &CallbackQuery) -> Result<Action, PipelineError> {
    let p = &s.inner.pipeline;
    let vendor = d.vendor;
    let mut conn = s.inner.conn.clone();
    let mut found: Option<(String, String)> = None;
    if let Some((c, j)) = q.job() {
        let exists: bool = redis::cmd("EXISTS")
            .arg(p.store().keys().job(c, j))
            .query_async(&mut conn)
            .await?;
        if exists {
            found = Some((c.to_string(), j.to_string()));
        }
    }
    if found.is_none() {
        found = p
            .job_for_task(vendor, &d.event.task_id)
            .await?
            .filter(|(c, j)| !c.is_empty() && !j.is_empty());
    }
    if found.is_none() {
        let idem = q.idem.as_deref().or(d.event.external_id.as_deref());
        if let Some(idem) = idem {
            match p.task_for_idem(vendor, idem).await? {
                Some(t) => {
                    if t != d.event.task_id {
                        tracing::warn!(vendor = %vendor, task = %loggable(&d.event.task_id), recorded = %loggable(&t), "callback's task differs from the task recorded for its idempotency key");
                    }
                    found = p
                        .job_for_task(vendor, &t)
                        .await?
                        .filter(|(c, j)| !c.is_empty() && !j.is_empty());
                }
                None => {
                    // A task whose create answer was lost (or not yet recorded): leave its id
                    // where reconciliation looks first. Insert-if-absent, so a racing
                    // `record_task` of the worker is never overwritten.
                    let added: i64 = redis::cmd("HSETNX")
                        .arg(s.idem_index_key(vendor))
                        .arg(idem)
                        .arg(&d.event.task_id)
                        .query_async(&mut conn)
                        .await?;
                    return Ok(Action::UnknownTask {
                        recorded_idem: added == 1,
                    });
                }
            }
        }
    }
    let Some((campaign, job)) = found else {
        return Ok(Action::UnknownTask {
            recorded_idem: false,
        });
    };
    if !d.event.state.status.is_terminal() {
        return Ok(Action::Nothing {
            why: "non-terminal status (the scheduled poll follows)",
            moved_on: false,
        });
    }
    let state: String = NUDGE
        .key(p.store().keys().job(&campaign, &job))
        .invoke_async(&mut conn)
        .await?;
    match state.parse::<JobState>() {
        Ok(JobState::Submitted) => {
            s.inner
                .poll_q
                .push(&StageJob {
                    campaign: campaign.clone(),
                    job: job.clone(),
                })
                .await?;
            Ok(Action::PollNow { campaign, job })
        }
        Ok(JobState::Queued | JobState::Admitted | JobState::Submitting) => Ok(Action::Nothing {
            why: "job not yet recorded as submitted (its first poll follows)",
            moved_on: false,
        }),
        Ok(_) => Ok(Action::Nothing {
            why: "job has moved on",
            moved_on: true,
        }),
        Err(_) => Ok(Action::UnknownTask {
            recorded_idem: false,
        }),
    }
}

/// Serves [`app`] on `listener` until `shutdown` resolves; requests in flight finish.
pub async fn serve_state(
    state: WebhookState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `motionq serve`: connects (see [`WebhookState::connect`]), binds `addr` and serves until
/// `shutdown` resolves. Refuses to start without a usable token.
pub async fn serve(
    cfg: &Config,
    addr: SocketAddr,
    opts: IntakeOptions,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = WebhookState::connect(cfg, metrics, opts).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("webhooks: cannot listen on {addr}: {e}"))?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "webhook intake listening");
    serve_state(state, listener, shutdown).await?;
    Ok(())
}

/// Arguments of `motionq serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Listen address; default `webhooks.listen` (env MOTIONQ__WEBHOOKS__LISTEN).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Accept a path token shorter than 24 characters. Local development only.
    #[arg(long)]
    pub dev_allow_short_token: bool,
    /// Largest accepted body, bytes (larger: 413).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
}

/// Runs `motionq serve` until Ctrl-C or SIGTERM.
pub async fn run(args: &ServeArgs, cfg: &Config) -> anyhow::Result<()> {
    let addr = match args.listen {
        Some(a) => a,
        None => cfg.webhooks.listen.parse().map_err(|e| {
            anyhow::anyhow!(
                "webhooks.listen `{}` is not an address: {e}",
                cfg.webhooks.listen
            )
        })?,
    };
    let opts = IntakeOptions {
        allow_short_token: args.dev_allow_short_token,
        max_body_bytes: args.max_body_bytes,
        ..IntakeOptions::default()
    };
    serve(cfg, addr, opts, Metrics::new(), shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
