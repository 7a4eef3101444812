//! # motionq-webhooks: verified webhook intake
//!
//! Vendors that support callbacks (EvoLink, KKIAI, AI Video API, Freepik; HighwayAPI has none
//! for this endpoint) POST a task's status to the callback URL the submit stage attached to the
//! create call. This crate receives those deliveries, authenticates them, drops duplicates, and
//! turns a genuine "task finished" callback into an **immediate poll** of the job. It never
//! changes a job's state: the poll stage confirms the outcome with the vendor's query API, and
//! the scheduled polls stay the fallback whenever a callback is lost, late, refused or forged.
//!
//! ## Layout
//!
//! ```text
//! src/lib.rs     this documentation, re-exports
//! src/auth.rs    PathToken (constant-time path token), SigningSecret + verify_standard_webhook
//!                (Standard-Webhooks HMAC-SHA256, timestamp tolerance)
//! src/intake.rs  the pure parse path: vendor from the path, CallbackQuery, parse_delivery
//!                (adapter parse + dedup key); property-tested on arbitrary bytes
//! src/server.rs  WebhookState, router/app, the handler, serve/serve_state, ServeArgs + run
//! src/error.rs   WebhookError (start-up), SignatureError, Rejection (per delivery)
//! lua/nudge.lua  makes a `submitted` job's next poll due now (nothing else, no state change)
//! tests/         intake.rs (HTTP + Redis), pipeline.rs (simulator + pipeline end to end),
//!                robustness.rs (proptest), logs.rs (what is and is not logged)
//! ```
//!
//! ## Endpoint
//!
//! `POST /webhooks/{vendor}/{token}[?mq=<idempotency key>]`, plus `GET /healthz` (Redis `PING`:
//! `200 ok` / `503`) and, in [`app`], `GET /metrics`. `{vendor}` is `evolink`, `kkiai`,
//! `aivideoapi` or `freepik`. The submit stage builds the URL
//! (`motionq_pipeline::Pipeline::callback_url`): `<webhooks.public_base_url>/webhooks/<vendor>/<token>?mq=<idem>`,
//! only when `webhooks.public_base_url` is set, the token variable is set and the vendor has
//! callbacks. `c=<campaign>&j=<job>` are accepted too, for URLs that name the job directly.
//!
//! | answer | when | metric `outcome` |
//! |---|---|---|
//! | `200 {"outcome":"poll_now"}` | verified, terminal status, job `submitted`: poll message pushed | `accepted` |
//! | `200 {"outcome":"accepted"}` | verified, but nothing to speed up (non-terminal status such as Kling `processing`, or the job is not yet recorded as submitted) | `accepted` |
//! | `200 {"outcome":"duplicate"}` | the same delivery was seen before, or the job has moved on (completed, stored, failed, ...) | `duplicate` |
//! | `202 {"outcome":"unknown_task"}` | verified, but no job is recorded for the task (see *Unknown tasks*) | `rejected_unknown_task` |
//! | `400` | body is not JSON or not the vendor's callback shape | `rejected_malformed` |
//! | `401` | wrong token; Freepik: missing/forged signature, stale or future timestamp, no secret configured | `rejected_signature` |
//! | `404` | unknown vendor, or a vendor without callbacks (no metric: the label would be unbounded) | – |
//! | `413` | body over the cap (default 256 KiB; `Content-Length` checked before reading, chunked bodies cut off at the cap) | `rejected_malformed` |
//! | `503` | Redis failed; the dedup mark is removed so the vendor's retry is processed | – |
//!
//! Every rejection is one `warn` log line with vendor, status and a fixed reason. Nothing
//! derived from the request is echoed or logged: not the body (adapter messages that quote it
//! are replaced by their error code), not the token (the path is never logged; axum's own path
//! rejections, which could quote it, are replaced), not the signature. Task ids appear in log
//! lines bounded to 80 printable characters. Counter: `motionq_webhooks_total{vendor,outcome}`.
//!
//! ## Authentication per vendor
//!
//! * **Every vendor: the path token.** An unguessable per-deployment token, read at start-up
//!   from the environment variable named by `webhooks.token_env`. It must be at least
//!   [`MIN_TOKEN_LEN`] (24) characters of `A-Z a-z 0-9 - _ . ~` (it stands verbatim in the URL
//!   path); `serve` refuses to start otherwise (`--dev-allow-short-token` relaxes only the
//!   length, for local tests; a missing token is always fatal). Compared as SHA-256 digests in
//!   constant time, so a wrong token of any length costs the same. EvoLink, Kling/KKIAI and AI
//!   Video API sign nothing (VENDORS.md §1.4, §2.4, §3.4): for them the token is the only
//!   authentication, which is why a callback is only a hint and the job is confirmed by a query.
//! * **Freepik, additionally: Standard-Webhooks signature** (VENDORS.md §5.4). Headers
//!   `webhook-id`, `webhook-timestamp` (Unix s), `webhook-signature` = space-separated
//!   `v1,<base64>` entries (any one may match; other versions are ignored); signature =
//!   HMAC-SHA256 over `"{id}.{timestamp}.{raw body}"` with the secret from
//!   `webhooks.freepik_secret_env` (`whsec_<base64>`: the prefix is stripped and the rest
//!   decoded). Compared in constant time. The timestamp must be within `webhooks.tolerance_s`
//!   (default 300 s) of the receiver's clock **in both directions**: stale deliveries (replays)
//!   and future ones are refused. Verified over the raw bytes before anything parses them. With
//!   no secret configured every Freepik delivery is refused (`401`, and a start-up warning when
//!   Freepik keys exist); a secret variable that is named but missing is fatal at start-up.
//!
//! ## Duplicates
//!
//! After verification and parsing, a dedup mark is set with `SET NX EX` (default 24 h, longer
//! than every vendor's retry schedule) under `<prefix>:{wh:<vendor>}:seen:<hash>`. The hash is of
//! the Freepik `webhook-id` (Standard Webhooks keeps the id across retries), else of vendor +
//! task id + the vendor's raw status, so a retry of one status change is a duplicate and the next
//! status change (Kling's `processing` → `succeed`) is not. A duplicate is answered `200` and
//! does nothing. Rejected deliveries never set the mark; a delivery that fails on Redis removes it.
//! Replays of a captured Freepik delivery are thus stopped twice: by the tolerance window and,
//! within it, by the mark. For unsigned vendors a replay within 24 h is stopped by the mark, and
//! any replay at worst causes one extra query call.
//!
//! ## What a webhook does and does not do
//!
//! It **does**: find the job, by `c`/`j` in the URL, else the pipeline's task index
//! (`Pipeline::job_for_task`), else our idempotency key (`mq` in the URL, or Kling's echoed
//! `external_task_id`) through `Pipeline::task_for_idem`; then, for a terminal status
//! (completed or failed) of a `submitted` job, set the job's `next_poll_at` to now
//! (`lua/nudge.lua`; otherwise the poll stage's gate would drop an early message) and push one
//! `StageJob` onto the `poll` queue. The poll stage then queries the vendor (within the key's
//! query rate) and completes or fails the job exactly as a scheduled poll would; the collect
//! stage follows. Duplicated poll messages are harmless: the gate and the record decide.
//!
//! It **does not**: change a job's state, trust the callback's status or output URL, spend
//! money, or poll for non-terminal statuses (a Kling `processing` callback is acknowledged
//! only). A job not yet recorded as `submitted` is left to the submit stage, which schedules its
//! own first poll.
//!
//! **Unknown tasks.** A callback whose task no job is recorded for (`202`): when it carries our
//! idempotency key and that key has no task yet (a create whose answer was lost, or a Kling
//! `submitted` callback racing the worker), the task id is written to the pipeline's
//! idempotency index (`<prefix>:{t:<vendor>}:idem`, insert-if-absent, so a worker's own
//! `record_task` is never overwritten). The submit stage's reconciliation reads that index first
//! (`task_for_idem`) and adopts the task instead of paying for it again.
//!
//! ## Configuration (`[webhooks]`, `motionq_config::WebhookConfig`)
//!
//! | key | env override | meaning |
//! |---|---|---|
//! | `listen` | `MOTIONQ__WEBHOOKS__LISTEN` | listen address of `motionq serve` (default `127.0.0.1:8088`) |
//! | `public_base_url` | `MOTIONQ__WEBHOOKS__PUBLIC_BASE_URL` | public HTTPS base vendors reach; without it workers attach no callback URL. Config loading refuses plain HTTP or a private/loopback host unless `validation.allow_private_callbacks` (simulator rehearsals) |
//! | `token_env` | `MOTIONQ__WEBHOOKS__TOKEN_ENV` | name of the env var holding the path token (required; workers need it too, to build URLs) |
//! | `freepik_secret_env` | `MOTIONQ__WEBHOOKS__FREEPIK_SECRET_ENV` | name of the env var holding Freepik's `whsec_…` secret |
//! | `tolerance_s` | `MOTIONQ__WEBHOOKS__TOLERANCE_S` | accepted clock skew of signed deliveries (default 300) |
//!
//! Not in the config file ([`IntakeOptions`], flags of [`ServeArgs`]): body cap
//! (`--max-body-bytes`, default 256 KiB), dedup TTL (24 h), `--dev-allow-short-token`.
//! The server needs Redis and connects the pipeline context, so the vendor API keys' env vars
//! must be set as for a worker. Put TLS in front (a reverse proxy or load balancer): vendors
//! require HTTPS callback URLs; the server itself speaks plain HTTP.
//!
//! ## Use
//!
//! `motionq serve` mounts [`ServeArgs`] and calls [`run`] (Ctrl-C / SIGTERM stop it gracefully).
//! Embedded (a worker that also receives webhooks, or a test):
//!
//! ```no_run
//! # async fn demo(cfg: motionq_config::Config) -> anyhow::Result<()> {
//! use motionq_webhooks::{serve_state, IntakeOptions, WebhookState};
//! let metrics = motionq_metrics::Metrics::new();
//! let state = WebhookState::connect(&cfg, metrics, IntakeOptions::default()).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8088").await?;
//! serve_state(state, listener, motionq_webhooks::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! [`WebhookState::new`] takes an existing `Arc<Pipeline>` and explicit [`WebhookSecrets`]
//! instead. [`router`] has the webhook route and `/healthz`; [`app`] adds `/metrics`.
//!
//! ## Tests
//!
//! `cargo test -p motionq-webhooks` (needs `redis-server` on PATH; the tests start their own).
//! `tests/intake.rs`: every outcome above over real HTTP and Redis. `tests/pipeline.rs`: the
//! simulator signs and sends a real Freepik webhook for a job submitted by the real pipeline,
//! whose scheduled polls are an hour away; the job completes through the webhook's poll.
//! `tests/robustness.rs`: arbitrary bytes, headers and queries through the parse and verify
//! path never panic. `tests/logs.rs`: one log line per rejection, and no token, signature,
//! secret or body content in any log line.
//!
//! Figures (2-core shared machine): `tests/pipeline.rs` stores one job per callback vendor
//! (Freepik, EvoLink, Kling, AI Video API) through webhooks in about 6 s of simulated vendor
//! time, with exactly one paid create and one query call per job at the simulator, while the
//! scheduled polls are an hour away.

pub mod auth;
pub mod error;
pub mod intake;
mod server;

pub use auth::{verify_standard_webhook, PathToken, SigningSecret, MIN_TOKEN_LEN};
pub use error::{Rejection, SignatureError, WebhookError};
pub use intake::{parse_delivery, vendor_from_path, CallbackQuery, Delivery};
pub use server::{
    app, router, run, serve, serve_state, shutdown_signal, IntakeOptions, ServeArgs,
    WebhookSecrets, WebhookState, DEFAULT_DEDUP_TTL, DEFAULT_MAX_BODY_BYTES,
};
