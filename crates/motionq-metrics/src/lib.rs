//! The one catalogue of motionq's Prometheus metrics, and the `/metrics` + `/healthz` endpoints
//! every motionq process serves.
//!
//! Modules:
//! * [`catalogue`]: [`Metrics`], the registry with every family and one typed recording function
//!   per event (`vendor_request`, `retry`, `set_spend`, `collected`, ...).
//! * [`labels`]: enums for every label with a fixed value set (operation, status class, stage,
//!   window, key state, webhook outcome, queue state). Vendors, error classes, tiers and job
//!   states come from `motionq_core`.
//! * [`scrape`]: gauges read from Redis when Prometheus scrapes (jobs per state, queue depth),
//!   through a hook the binary installs.
//! * [`server`]: the axum router and server for `GET /metrics` and `GET /healthz`.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use motionq_core::{ErrorClass, Vendor};
//! use motionq_metrics::{Metrics, Operation, Stage};
//!
//! let metrics = Metrics::new(); // clone it into every stage
//! metrics.vendor_request(Vendor::Kkiai, "main", Operation::Create, Some(429), Duration::from_millis(180));
//! metrics.vendor_error(Vendor::Kkiai, "main", ErrorClass::RateLimited);
//! metrics.retry(Stage::Submit, ErrorClass::RateLimited, Duration::from_secs(4));
//!
//! let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
//! let addr = "127.0.0.1:9100".parse().unwrap();
//! let server = tokio::spawn(motionq_metrics::serve(addr, metrics.clone(), || true, async {
//!     let _ = stop_rx.await;
//! }));
//! // ... run the worker, then:
//! let _ = stop_tx.send(());
//! server.await.expect("server task")?;
//! # Ok(()) }
//! ```
//!
//! Scrape-time gauges: install a hook that reads Redis and returns a [`ScrapeSnapshot`]:
//!
//! ```no_run
//! # async fn demo(metrics: motionq_metrics::Metrics) {
//! use futures::FutureExt;
//! use motionq_metrics::{QueueSnapshot, ScrapeSnapshot, Stage};
//! metrics
//!     .set_scrape_hook(Box::new(|| {
//!         async {
//!             // read Store::campaign(..) and Queue::stats() here
//!             Ok(ScrapeSnapshot {
//!                 campaigns: vec![],
//!                 queues: vec![QueueSnapshot { stage: Stage::Submit, unread: 3, pending: 1, delayed: 0, dead: 0 }],
//!             })
//!         }
//!         .boxed()
//!     }))
//!     .await;
//! # }
//! ```
//!
//! # Endpoints
//!
//! * `GET /metrics`: runs the scrape hook (at most [`scrape::REFRESH_TIMEOUT`]; on error or
//!   timeout the previous values stay and `motionq_scrape_refresh_errors_total` grows), then
//!   answers the Prometheus text format 0.0.4. Process metrics (`process_cpu_seconds_total`,
//!   `process_resident_memory_bytes`, `process_open_fds`, ...) are included on Linux.
//! * `GET /healthz`: `200 ok` when the process's health function returns true, else
//!   `503 unhealthy`. Workers report unhealthy while they cannot reach Redis.
//!
//! `motionq worker` serves both on its `--metrics-addr`; `motionq serve` merges [`router`] into
//! its webhook server; `motionq sim` serves its own `/metrics` (`motionq_sim_*`, the simulator's
//! ledger) and `/healthz`.
//!
//! # Catalogue
//!
//! Labels: `vendor` (5 values), `key` (the configured key alias, never the key), `campaign`
//! (campaign id), `operation` (`create|query|download|callback`), `status_class`
//! (`2xx|4xx|5xx|error`; `error` = no HTTP answer), `code` (`429|503`), `error_class` (the 9
//! classes of `motionq_core::ErrorClass`), `stage` (`admit|submit|poll|collect`), `reason`,
//! `window` (`hourly|daily|total`), `tier` (`std|pro`), `state`, `outcome`, `from`/`to` (job
//! states). No label ever carries an API key, a job or task id, or raw error text.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `motionq_build_info` | gauge | `version` | Always 1; the `up`-independent "this process runs motionq" series. |
//! | `motionq_vendor_requests_total` | counter | `vendor, key, operation, status_class` | Vendor HTTP calls. |
//! | `motionq_vendor_request_duration_seconds` | histogram | `vendor, key, operation` | Vendor HTTP call latency. |
//! | `motionq_vendor_throttled_responses_total` | counter | `vendor, key, operation, code` | Answers with HTTP 429 or 503, whatever the vendor meant by them. |
//! | `motionq_vendor_errors_total` | counter | `vendor, key, error_class` | Vendor errors after classification. |
//! | `motionq_stage_duration_seconds` | histogram | `stage, outcome` | Handler time per stage job; `outcome` = `done|retried|deferred|failed`. |
//! | `motionq_retries_total` | counter | `stage, error_class` | Attempts scheduled again. |
//! | `motionq_retry_delay_seconds` | histogram | `stage` | Backoff delay chosen (jitter, `Retry-After`). |
//! | `motionq_limit_wait_seconds` | histogram | `vendor, key, reason` | Waits imposed by a key's limit; `reason` = `rate|concurrency|spend|parked`. Not failed attempts. |
//! | `motionq_key_rate_effective_requests_per_second` | gauge | `vendor, key, operation` | Rate in force after adaptive slow-down. |
//! | `motionq_key_rate_configured_requests_per_second` | gauge | `vendor, key, operation` | Configured rate. |
//! | `motionq_key_in_flight_tasks` | gauge | `vendor, key` | Tasks holding a concurrency slot. |
//! | `motionq_key_concurrency_limit_tasks` | gauge | `vendor, key` | Configured concurrent tasks. |
//! | `motionq_key_spend_settled_usd` | gauge | `vendor, key, window` | Settled spend in the current window. |
//! | `motionq_key_spend_reserved_usd` | gauge | `vendor, key, window` | Reserved worst-case cost of unsettled tasks. |
//! | `motionq_key_spend_limit_usd` | gauge | `vendor, key, window` | The window's limit (absent when unlimited). |
//! | `motionq_key_budget_remaining_usd` | gauge | `vendor, key, window` | limit − settled − reserved. |
//! | `motionq_key_state` | gauge | `vendor, key, state, reason` | 1 on the current state: `active` (reason `none`) or `parked` (reason `quota_exhausted|insufficient_funds|auth|forbidden|budget|operator|other`). |
//! | `motionq_campaign_spend_settled_usd` | gauge | `campaign` | Settled spend of the campaign. |
//! | `motionq_campaign_spend_reserved_usd` | gauge | `campaign` | Reserved spend of the campaign. |
//! | `motionq_campaign_budget_usd` | gauge | `campaign` | The campaign's budget (absent when none). |
//! | `motionq_campaign_budget_remaining_usd` | gauge | `campaign` | budget − settled − reserved. |
//! | `motionq_spend_settled_usd_total` | counter | `vendor, key, campaign` | Actual cost settled by this process. |
//! | `motionq_generation_duration_seconds` | histogram | `vendor, tier` | Vendor accepted → vendor finished. |
//! | `motionq_collected_bytes_total` | counter | `vendor` | Output bytes stored (throughput = its rate). |
//! | `motionq_collect_duration_seconds` | histogram | `vendor` | Download + upload time per output. |
//! | `motionq_collect_lag_seconds` | histogram | `vendor` | Vendor finished → output stored (collector lag). |
//! | `motionq_output_headroom_seconds` | histogram | `vendor` | Time left on the output link when stored. |
//! | `motionq_outputs_expired_total` | counter | `vendor` | Outputs lost because their link expired first. |
//! | `motionq_webhooks_total` | counter | `vendor, outcome` | Callbacks: `accepted|duplicate|rejected_signature|rejected_malformed|rejected_unknown_task`. |
//! | `motionq_job_transitions_total` | counter | `campaign, from, to` | Job state transitions written by this process. |
//! | `motionq_campaign_jobs` | gauge (scrape time) | `campaign, state` | Jobs per state, read from Redis; every state present (0 included). |
//! | `motionq_campaign_jobs_enqueued` | gauge (scrape time) | `campaign` | Jobs in the campaign. |
//! | `motionq_campaign_state` | gauge (scrape time) | `campaign, state` | 1 on the campaign's state. |
//! | `motionq_queue_depth` | gauge (scrape time) | `stage, state` | Queue entries: `unread|pending|delayed|dead`; the collect stage's `unread` includes completed jobs waiting on the collect backlog (earliest link expiry first). |
//! | `motionq_scrape_refresh_errors_total` | counter | | Scrape-time refreshes that failed or timed out. |
//! | `process_*` | (process) | | CPU, memory, fds, start time (Linux). |
//!
//! Several workers export the same scrape-time gauges and the same key gauges (each process
//! sets what it last observed): aggregate them with `max by (...)`, never `sum`, across
//! instances. Counters and histograms are per process: `sum` them.
//!
//! Key gauges (`set_key_state`, `set_in_flight`, `set_spend`, `set_effective_rate`) describe
//! state that lives in Redis. A process that stops touching a key (because it is parked) would
//! keep exporting what it saw last, so the scrape hook should also refresh them for every
//! configured key from the limits crate's Redis report (the hook closure may capture a clone of
//! [`Metrics`] and call the setters before returning its snapshot).
//!
//! Cardinality: per key alias about 250 series (most from histogram buckets), per campaign
//! about 100 (transitions, job states); call [`Metrics::forget_campaign`] when a campaign is
//! deleted.
//!
//! # Where each stage records
//!
//! | event | call |
//! |---|---|
//! | any vendor HTTP call (adapter result, in the shared layer around adapters) | [`Metrics::vendor_request`]; on a classified error also [`Metrics::vendor_error`] |
//! | a stage handler returns | [`Metrics::stage_run`] (`done`, `retried`, `deferred`, `failed`) |
//! | backoff scheduled | [`Metrics::retry`] |
//! | limits say wait / key parked | [`Metrics::limit_wait`], [`Metrics::set_key_state`] |
//! | after each admission / lease / spend script | [`Metrics::set_effective_rate`], [`Metrics::set_in_flight`], [`Metrics::set_spend`], [`Metrics::set_campaign_spend`] |
//! | cost settled | [`Metrics::spend_settled`] |
//! | vendor reports the task finished | [`Metrics::generation_time`] |
//! | output stored / lost to expiry | [`Metrics::collected`] / [`Metrics::output_expired`] |
//! | callback handled | [`Metrics::webhook`] |
//! | job record transition written | [`Metrics::job_transition`] |
//! | scrape | the hook returns campaign counts (`Store::campaign`) and queue stats (`Queue::stats`) |
//!
//! # Prometheus, alerts and Grafana (files in `config/`)
//!
//! * `config/prometheus/prometheus.yml`: scrape jobs `motionq-worker` (every replica of the
//!   compose `worker` service through Docker DNS, port 9464), `motionq-serve` (`serve:8088`)
//!   and `motionq-sim` (`sim:8089`); loads `alerts.yml`. Outside Docker, replace the targets with
//!   your hosts and keep the job names: the alert rules select on them.
//! * `config/prometheus/alerts.yml`: `MotionqKeyBudgetNearlyExhausted` and
//!   `MotionqCampaignBudgetNearlyExhausted` (settled + reserved > 90% of the limit, 5 min),
//!   `MotionqKeyParkedNeedsOperator` (funds, auth, forbidden; critical) and `MotionqKeyParked`
//!   (other reasons, 15 min), `MotionqVendorRateLimitedHigh` (> 20% of a key's calls answered
//!   429 for 10 min), `MotionqOutputsCloseToExpiry` (an output stored with < 15 min left) and
//!   `MotionqOutputsExpired`, `MotionqQueueNotDraining` (unread entries and no job left the
//!   states the stage handles, per `motionq_job_transitions_total`, for 15 + 10 min), `MotionqWorkerDown`, `MotionqWebhookServerDown`. Unit tests in
//!   `config/prometheus/alerts_test.yml` (`promtool test rules`). Route them with your
//!   Alertmanager (not part of the stack).
//! * `config/grafana/provisioning/datasources/prometheus.yml`: the Prometheus datasource with the
//!   fixed uid `prometheus` the dashboard refers to; `provisioning/dashboards/motionq.yml` loads
//!   every JSON in `/var/lib/grafana/dashboards` (mounted from `config/grafana/dashboards`).
//! * `config/grafana/dashboards/motionq.json` (uid `motionq-overview`): campaign progress, ETA,
//!   throughput, jobs by state, queue depth; vendor calls by status class, 429/503, outputs
//!   stored vs errors by class, retries, latency, limit waits, job transitions by target state; in-flight vs
//!   concurrency, rate in force vs configured, key and campaign spend vs budget, key states;
//!   generation p50/p95, collector lag, expiry headroom, collector throughput, outputs lost,
//!   webhooks; simulator creates/duplicates/in-flight; process up/memory/CPU. Variables
//!   `$campaign` and `$vendor`. To use it in another Grafana, import the JSON and map the
//!   datasource uid `prometheus`.
//! * `docker-compose.yml` at the repository root wires all of it: Prometheus on
//!   `localhost:9090`, Grafana on `localhost:3000` with the dashboard as home page.
//!
//! The crate's tests prove these files: `promtool check metrics` on a real scrape,
//! `promtool check config|rules` and `promtool test rules`, the dashboard type-checked against
//! `@grafana/schema` with `tsc --strict`, and every PromQL expression of the dashboard and the
//! rules evaluated by a real Prometheus scraping this crate's server and `motionq-sim`
//! (each must return series; each alert must go pending in the driven bad-day state), and a
//! short real campaign (`tests/campaign_live.rs`: `motionq_pipeline::run_worker`, a private
//! Redis, the simulator with injected 429/503/policy faults) after which the dashboard is full,
//! the damage alerts are quiet, and motionq's counters equal Redis and the simulator's ledger.
//! That test's `RedisView` is the reference scrape hook for the worker binary (campaign counts,
//! queue stats, and key state, slots, rates and budgets from `motionq_limits`). They need
//! `prometheus` (Debian package, gives `promtool` too) and `npm` on the machine, and fail with
//! install instructions otherwise.

pub mod catalogue;
pub mod labels;
pub mod scrape;
pub mod server;

pub use catalogue::{Collected, Metrics};
pub use labels::{
    KeyState, LimitKind, Operation, ParkReason, QueueState, Stage, StageOutcome, StatusClass,
    WebhookOutcome, Window,
};
pub use scrape::{CampaignSnapshot, HookError, QueueSnapshot, ScrapeHook, ScrapeSnapshot};
pub use server::{router, serve, serve_listener};
