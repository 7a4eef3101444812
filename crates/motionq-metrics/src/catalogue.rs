//! [`Metrics`]: every motionq metric family, registered once in one registry, with one typed
//! recording function per event. The crate doc lists the families (the catalogue).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use motionq_core::{ErrorClass, JobState, Tier, Vendor};
use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::labels::{
    KeyState, LimitKind, Operation, QueueState, Stage, StageOutcome, StatusClass, WebhookOutcome,
    Window,
};
use crate::scrape::{ScrapeHook, ScrapeSnapshot, REFRESH_TIMEOUT};

/// What the collector measured for one stored output (see [`Metrics::collected`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Collected {
    /// Bytes written to object storage.
    pub bytes: u64,
    /// Download + upload time of this output.
    pub duration: Duration,
    /// Time from the vendor reporting the task complete to the output being stored.
    pub lag: Duration,
    /// Time left before the vendor's output link expires, measured when it was stored.
    pub headroom: Duration,
}

/// The catalogue: cheap to clone (one `Arc`), shared by every stage of a process.
///
/// Recording functions never fail and never block on I/O; the only locks are the prometheus
/// crate's own atomics plus a small map used to keep `motionq_key_state` one-hot.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Inner {
    registry: Registry,

    vendor_requests: IntCounterVec,
    vendor_request_duration: HistogramVec,
    vendor_throttled: IntCounterVec,
    vendor_errors: IntCounterVec,
    stage_duration: HistogramVec,
    retries: IntCounterVec,
    retry_delay: HistogramVec,
    limit_wait: HistogramVec,
    key_rate_effective: GaugeVec,
    key_rate_configured: GaugeVec,
    key_in_flight: IntGaugeVec,
    key_concurrency_limit: IntGaugeVec,
    key_spend_settled: GaugeVec,
    key_spend_reserved: GaugeVec,
    key_spend_limit: GaugeVec,
    key_budget_remaining: GaugeVec,
    key_state: IntGaugeVec,
    campaign_spend_settled: GaugeVec,
    campaign_spend_reserved: GaugeVec,
    campaign_budget: GaugeVec,
    campaign_budget_remaining: GaugeVec,
    generation_duration: HistogramVec,
    collected_bytes: IntCounterVec,
    collect_duration: HistogramVec,
    collect_lag: HistogramVec,
    output_headroom: HistogramVec,
    outputs_expired: IntCounterVec,
    webhooks: IntCounterVec,
    job_transitions: IntCounterVec,
    spent: CounterVec,

    // Scrape-time families, rebuilt from the hook's snapshot.
    campaign_jobs: IntGaugeVec,
    campaign_jobs_enqueued: IntGaugeVec,
    campaign_state: IntGaugeVec,
    queue_depth: IntGaugeVec,
    scrape_refresh_errors: IntCounter,

    /// Current `(state, reason)` per `(vendor, key)`, so a state change removes the old series
    /// and `motionq_key_state` stays one-hot (a dashboard `sum` must not count a key twice).
    key_states: Mutex<HashMap<(Vendor, String), KeyState>>,
    /// `(vendor, key)` pairs with a `motionq_spend_settled_usd_total` series per campaign, so
    /// [`Metrics::forget_campaign`] can remove them (the prometheus crate has no partial-match
    /// removal).
    spend_keys: Mutex<HashMap<String, std::collections::HashSet<(Vendor, String)>>>,
    /// The scrape hook. A tokio mutex: it also serialises refreshes, so two concurrent scrapes
    /// do not interleave their reset-and-fill of the scrape-time families.
    hook: tokio::sync::Mutex<Option<ScrapeHook>>,
}

// Bucket layouts, in seconds, chosen for what each histogram measures.
const REQUEST_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const DELAY_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];
const WAIT_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0];
// Kling motion control takes minutes; tails reach an hour when a vendor is congested.
const GENERATION_BUCKETS: &[f64] = &[
    15.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
];
const COLLECT_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0];
const LAG_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
// Output links live 1 h to 30 d depending on the vendor; the low buckets are the alarm zone.
const HEADROOM_BUCKETS: &[f64] = &[
    300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0, 604800.0, 2592000.0,
];

fn reg<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, m: T) -> T {
    // Every name is a distinct constant of this file, so registration cannot collide; a
    // collision would be a programming error caught by every test that builds `Metrics`.
    registry
        .register(Box::new(m.clone()))
        .expect("metric names of the catalogue are unique");
    m
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh catalogue in its own registry, with process metrics (`process_*`, Linux) and
    /// `motionq_build_info`.
    pub fn new() -> Self {
        let r = Registry::new();
        let ic = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter"),
            )
        };
        let g = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &r,
                GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"),
            )
        };
        let ig = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &r,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"),
            )
        };
        let h = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                    labels,
                )
                .expect("valid histogram"),
            )
        };
        const VK: &[&str] = &["vendor", "key"];

        let build = ig(
            "motionq_build_info",
            "Always 1; labels carry the motionq version.",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);

        let inner = Inner {
            vendor_requests: ic(
                "motionq_vendor_requests_total",
                "Vendor HTTP calls by operation and status class.",
                &["vendor", "key", "operation", "status_class"],
            ),
            vendor_request_duration: h(
                "motionq_vendor_request_duration_seconds",
                "Vendor HTTP call latency.",
                &["vendor", "key", "operation"],
                REQUEST_BUCKETS,
            ),
            vendor_throttled: ic(
                "motionq_vendor_throttled_responses_total",
                "Vendor answers with HTTP 429 or 503 (code label), whatever their class.",
                &["vendor", "key", "operation", "code"],
            ),
            vendor_errors: ic(
                "motionq_vendor_errors_total",
                "Vendor errors by error class.",
                &["vendor", "key", "error_class"],
            ),
            stage_duration: h(
                "motionq_stage_duration_seconds",
                "Handler time per stage job, by outcome (its _count is the stage's throughput).",
                &["stage", "outcome"],
                REQUEST_BUCKETS,
            ),
            retries: ic(
                "motionq_retries_total",
                "Attempts scheduled again after an error, by stage and error class.",
                &["stage", "error_class"],
            ),
            retry_delay: h(
                "motionq_retry_delay_seconds",
                "Backoff delay chosen for a retry (jitter and Retry-After included).",
                &["stage"],
                DELAY_BUCKETS,
            ),
            limit_wait: h(
                "motionq_limit_wait_seconds",
                "Time a worker was told to wait for a key's limit (not a failed attempt).",
                &["vendor", "key", "reason"],
                WAIT_BUCKETS,
            ),
            key_rate_effective: g(
                "motionq_key_rate_effective_requests_per_second",
                "Request rate in force for the key after adaptive slow-down.",
                &["vendor", "key", "operation"],
            ),
            key_rate_configured: g(
                "motionq_key_rate_configured_requests_per_second",
                "Configured request rate of the key.",
                &["vendor", "key", "operation"],
            ),
            key_in_flight: ig(
                "motionq_key_in_flight_tasks",
                "Vendor tasks holding a concurrency slot of the key.",
                VK,
            ),
            key_concurrency_limit: ig(
                "motionq_key_concurrency_limit_tasks",
                "Configured concurrent tasks of the key.",
                VK,
            ),
            key_spend_settled: g(
                "motionq_key_spend_settled_usd",
                "Settled (actual) spend of the key in the current window.",
                &["vendor", "key", "window"],
            ),
            key_spend_reserved: g(
                "motionq_key_spend_reserved_usd",
                "Worst-case cost reserved for tasks not yet settled, current window.",
                &["vendor", "key", "window"],
            ),
            key_spend_limit: g(
                "motionq_key_spend_limit_usd",
                "Configured spend limit of the key's window.",
                &["vendor", "key", "window"],
            ),
            key_budget_remaining: g(
                "motionq_key_budget_remaining_usd",
                "limit - settled - reserved for the key's window.",
                &["vendor", "key", "window"],
            ),
            key_state: ig(
                "motionq_key_state",
                "1 for the key's current state (active|parked) and park reason.",
                &["vendor", "key", "state", "reason"],
            ),
            campaign_spend_settled: g(
                "motionq_campaign_spend_settled_usd",
                "Settled spend of the campaign.",
                &["campaign"],
            ),
            campaign_spend_reserved: g(
                "motionq_campaign_spend_reserved_usd",
                "Spend reserved for the campaign's unsettled tasks.",
                &["campaign"],
            ),
            campaign_budget: g(
                "motionq_campaign_budget_usd",
                "The campaign's budget.",
                &["campaign"],
            ),
            campaign_budget_remaining: g(
                "motionq_campaign_budget_remaining_usd",
                "budget - settled - reserved for the campaign.",
                &["campaign"],
            ),
            generation_duration: h(
                "motionq_generation_duration_seconds",
                "Time from the vendor accepting a task to the vendor reporting it finished.",
                &["vendor", "tier"],
                GENERATION_BUCKETS,
            ),
            collected_bytes: ic(
                "motionq_collected_bytes_total",
                "Output bytes stored.",
                &["vendor"],
            ),
            collect_duration: h(
                "motionq_collect_duration_seconds",
                "Download + upload time per stored output.",
                &["vendor"],
                COLLECT_BUCKETS,
            ),
            collect_lag: h(
                "motionq_collect_lag_seconds",
                "Time from vendor completion to output stored.",
                &["vendor"],
                LAG_BUCKETS,
            ),
            output_headroom: h(
                "motionq_output_headroom_seconds",
                "Time left before the output link expired, when the output was stored.",
                &["vendor"],
                HEADROOM_BUCKETS,
            ),
            outputs_expired: ic(
                "motionq_outputs_expired_total",
                "Outputs lost because their link expired before they were stored.",
                &["vendor"],
            ),
            webhooks: ic(
                "motionq_webhooks_total",
                "Vendor callbacks received, by outcome.",
                &["vendor", "outcome"],
            ),
            job_transitions: ic(
                "motionq_job_transitions_total",
                "Job state transitions written by this process.",
                &["campaign", "from", "to"],
            ),
            spent: reg(
                &r,
                CounterVec::new(
                    Opts::new(
                        "motionq_spend_settled_usd_total",
                        "Actual cost settled by this process (refunds are not subtracted).",
                    ),
                    &["vendor", "key", "campaign"],
                )
                .expect("valid counter"),
            ),
            campaign_jobs: ig(
                "motionq_campaign_jobs",
                "Jobs of the campaign per state (read from Redis at scrape time).",
                &["campaign", "state"],
            ),
            campaign_jobs_enqueued: ig(
                "motionq_campaign_jobs_enqueued",
                "Jobs enqueued in the campaign (read from Redis at scrape time).",
                &["campaign"],
            ),
            campaign_state: ig(
                "motionq_campaign_state",
                "1 for the campaign's current state (read from Redis at scrape time).",
                &["campaign", "state"],
            ),
            queue_depth: ig(
                "motionq_queue_depth",
                "Entries per stage queue and entry state (read from Redis at scrape time).",
                &["stage", "state"],
            ),
            scrape_refresh_errors: reg(
                &r,
                IntCounter::new(
                    "motionq_scrape_refresh_errors_total",
                    "Scrape-time refreshes from Redis that failed or timed out \
                     (the previous values are kept).",
                )
                .expect("valid counter"),
            ),
            key_states: Mutex::new(HashMap::new()),
            spend_keys: Mutex::new(HashMap::new()),
            hook: tokio::sync::Mutex::new(None),
            registry: r,
        };
        #[cfg(target_os = "linux")]
        inner
            .registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process collector registers once per registry");
        Metrics {
            inner: Arc::new(inner),
        }
    }

    /// The registry, to add process-specific families (they must keep the `motionq_` prefix).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    // ------------------------------------------------------------------ vendor calls

    /// One vendor HTTP call: counts it by status class (`status` `None` = no HTTP answer),
    /// observes its latency, and counts a 429 or 503 in `motionq_vendor_throttled_responses_total`.
    pub fn vendor_request(
        &self,
        vendor: Vendor,
        key: &str,
        op: Operation,
        status: Option<u16>,
        duration: Duration,
    ) {
        let i = &self.inner;
        let class = StatusClass::from_status(status);
        i.vendor_requests
            .with_label_values(&[vendor.as_str(), key, op.as_str(), class.as_str()])
            .inc();
        i.vendor_request_duration
            .with_label_values(&[vendor.as_str(), key, op.as_str()])
            .observe(duration.as_secs_f64());
        let code = match status {
            Some(429) => "429",
            Some(503) => "503",
            _ => return,
        };
        i.vendor_throttled
            .with_label_values(&[vendor.as_str(), key, op.as_str(), code])
            .inc();
    }

    /// A vendor error, after the adapter classified it.
    pub fn vendor_error(&self, vendor: Vendor, key: &str, class: ErrorClass) {
        self.inner
            .vendor_errors
            .with_label_values(&[vendor.as_str(), key, class.as_str()])
            .inc();
    }

    /// One run of a stage handler ended with `outcome` after `duration`: handler latency and
    /// outcome mix per stage (not on the shipped dashboard; stage progress there is read from
    /// job transitions, which every transition records).
    pub fn stage_run(&self, stage: Stage, outcome: StageOutcome, duration: Duration) {
        self.inner
            .stage_duration
            .with_label_values(&[stage.as_str(), outcome.as_str()])
            .observe(duration.as_secs_f64());
    }

    /// An attempt scheduled again after `delay` (backoff or `Retry-After`).
    pub fn retry(&self, stage: Stage, class: ErrorClass, delay: Duration) {
        let i = &self.inner;
        i.retries
            .with_label_values(&[stage.as_str(), class.as_str()])
            .inc();
        i.retry_delay
            .with_label_values(&[stage.as_str()])
            .observe(delay.as_secs_f64());
    }

    // ------------------------------------------------------------------ limits and keys

    /// A worker was told to wait `duration` for the key's `kind` of limit.
    pub fn limit_wait(&self, vendor: Vendor, key: &str, kind: LimitKind, duration: Duration) {
        self.inner
            .limit_wait
            .with_label_values(&[vendor.as_str(), key, kind.as_str()])
            .observe(duration.as_secs_f64());
    }

    /// Shorthand for [`Metrics::limit_wait`] with [`LimitKind::Rate`].
    pub fn rate_limit_wait(&self, vendor: Vendor, key: &str, duration: Duration) {
        self.limit_wait(vendor, key, LimitKind::Rate, duration);
    }

    /// The key's request rate for `op` (requests per second): in force and configured.
    pub fn set_effective_rate(
        &self,
        vendor: Vendor,
        key: &str,
        op: Operation,
        effective: f64,
        configured: f64,
    ) {
        let l = [vendor.as_str(), key, op.as_str()];
        self.inner
            .key_rate_effective
            .with_label_values(&l)
            .set(effective);
        self.inner
            .key_rate_configured
            .with_label_values(&l)
            .set(configured);
    }

    /// Tasks holding a slot of the key, and its limit.
    pub fn set_in_flight(&self, vendor: Vendor, key: &str, in_flight: u32, limit: u32) {
        let l = [vendor.as_str(), key];
        self.inner
            .key_in_flight
            .with_label_values(&l)
            .set(i64::from(in_flight));
        self.inner
            .key_concurrency_limit
            .with_label_values(&l)
            .set(i64::from(limit));
    }

    /// The key's spend in `window`. `limit` `None` means the window has no limit: only settled
    /// and reserved are exported.
    pub fn set_spend(
        &self,
        vendor: Vendor,
        key: &str,
        window: Window,
        settled: f64,
        reserved: f64,
        limit: Option<f64>,
    ) {
        let i = &self.inner;
        let l = [vendor.as_str(), key, window.as_str()];
        i.key_spend_settled.with_label_values(&l).set(settled);
        i.key_spend_reserved.with_label_values(&l).set(reserved);
        match limit {
            Some(limit) => {
                i.key_spend_limit.with_label_values(&l).set(limit);
                i.key_budget_remaining
                    .with_label_values(&l)
                    .set(limit - settled - reserved);
            }
            None => {
                // A limit removed by a config reload must not linger as a stale series.
                let _ = i.key_spend_limit.remove_label_values(&l);
                let _ = i.key_budget_remaining.remove_label_values(&l);
            }
        }
    }

    /// The campaign's spend and budget (`budget` `None`: no campaign budget).
    pub fn set_campaign_spend(
        &self,
        campaign: &str,
        settled: f64,
        reserved: f64,
        budget: Option<f64>,
    ) {
        let i = &self.inner;
        let l = [campaign];
        i.campaign_spend_settled.with_label_values(&l).set(settled);
        i.campaign_spend_reserved
            .with_label_values(&l)
            .set(reserved);
        match budget {
            Some(b) => {
                i.campaign_budget.with_label_values(&l).set(b);
                i.campaign_budget_remaining
                    .with_label_values(&l)
                    .set(b - settled - reserved);
            }
            None => {
                let _ = i.campaign_budget.remove_label_values(&l);
                let _ = i.campaign_budget_remaining.remove_label_values(&l);
            }
        }
    }

    /// Actual cost settled for one task (adds to `motionq_spend_settled_usd_total`).
    pub fn spend_settled(&self, vendor: Vendor, key: &str, campaign: &str, usd: f64) {
        if usd > 0.0 && usd.is_finite() {
            self.inner
                .spend_keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(campaign.to_string())
                .or_default()
                .insert((vendor, key.to_string()));
            self.inner
                .spent
                .with_label_values(&[vendor.as_str(), key, campaign])
                .inc_by(usd);
        }
    }

    /// The key's state as this process last saw it. Exactly one `motionq_key_state` series
    /// per key has value 1; the previous state's series is removed.
    pub fn set_key_state(&self, vendor: Vendor, key: &str, state: KeyState) {
        let i = &self.inner;
        // Poisoning only means another thread panicked mid-update of this small map; its
        // content is still a valid map, so keep going rather than lose metrics.
        let mut states = i.key_states.lock().unwrap_or_else(|p| p.into_inner());
        let prev = states.insert((vendor, key.to_string()), state);
        if let Some(prev) = prev.filter(|p| *p != state) {
            let (s, r) = prev.labels();
            let _ = i
                .key_state
                .remove_label_values(&[vendor.as_str(), key, s, r]);
        }
        let (s, r) = state.labels();
        i.key_state
            .with_label_values(&[vendor.as_str(), key, s, r])
            .set(1);
    }

    // ------------------------------------------------------------------ tasks and outputs

    /// A vendor task finished after `duration` (vendor accepted → vendor reported finished).
    pub fn generation_time(&self, vendor: Vendor, tier: Tier, duration: Duration) {
        self.inner
            .generation_duration
            .with_label_values(&[vendor.as_str(), tier.as_str()])
            .observe(duration.as_secs_f64());
    }

    /// One output stored.
    pub fn collected(&self, vendor: Vendor, c: Collected) {
        let i = &self.inner;
        let v = [vendor.as_str()];
        i.collected_bytes.with_label_values(&v).inc_by(c.bytes);
        i.collect_duration
            .with_label_values(&v)
            .observe(c.duration.as_secs_f64());
        i.collect_lag
            .with_label_values(&v)
            .observe(c.lag.as_secs_f64());
        i.output_headroom
            .with_label_values(&v)
            .observe(c.headroom.as_secs_f64());
    }

    /// An output whose link expired before it could be stored (the money is lost).
    pub fn output_expired(&self, vendor: Vendor) {
        self.inner
            .outputs_expired
            .with_label_values(&[vendor.as_str()])
            .inc();
    }

    /// A vendor callback and what was done with it.
    pub fn webhook(&self, vendor: Vendor, outcome: WebhookOutcome) {
        self.inner
            .webhooks
            .with_label_values(&[vendor.as_str(), outcome.as_str()])
            .inc();
    }

    /// A job state transition written by this process.
    pub fn job_transition(&self, campaign: &str, from: JobState, to: JobState) {
        self.inner
            .job_transitions
            .with_label_values(&[campaign, from.as_str(), to.as_str()])
            .inc();
    }

    /// Drops every series this process recorded for `campaign` (call when a campaign is
    /// deleted, so a long-lived worker does not export it forever). The scrape-time families
    /// follow the hook's next snapshot instead.
    pub fn forget_campaign(&self, campaign: &str) {
        let i = &self.inner;
        let m: HashMap<&str, &str> = HashMap::from([("campaign", campaign)]);
        for vec in [
            &i.campaign_spend_settled,
            &i.campaign_spend_reserved,
            &i.campaign_budget,
            &i.campaign_budget_remaining,
        ] {
            let _ = vec.remove(&m);
        }
        for from in JobState::ALL {
            for to in JobState::ALL {
                let _ =
                    i.job_transitions
                        .remove_label_values(&[campaign, from.as_str(), to.as_str()]);
            }
        }
        let keys = i
            .spend_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(campaign)
            .unwrap_or_default();
        for (vendor, key) in keys {
            let _ = i
                .spent
                .remove_label_values(&[vendor.as_str(), &key, campaign]);
        }
    }

    // ------------------------------------------------------------------ scrape time

    /// Installs the hook the `/metrics` handler awaits before encoding (replacing any earlier
    /// one). See [`crate::scrape`].
    pub async fn set_scrape_hook(&self, hook: ScrapeHook) {
        *self.inner.hook.lock().await = Some(hook);
    }

    /// Replaces every scrape-time family with `snap` (series of campaigns or states absent from
    /// the snapshot disappear).
    pub fn apply_snapshot(&self, snap: &ScrapeSnapshot) {
        let i = &self.inner;
        i.campaign_jobs.reset();
        i.campaign_jobs_enqueued.reset();
        i.campaign_state.reset();
        i.queue_depth.reset();
        for c in &snap.campaigns {
            let id = c.campaign.as_str();
            i.campaign_jobs_enqueued
                .with_label_values(&[id])
                .set(saturating_i64(c.jobs_enqueued));
            // Every state gets a series, zeros included, so `rate`/`delta` and sums over states
            // see a continuous series from the first scrape.
            for s in JobState::ALL {
                let n = c
                    .jobs_by_state
                    .iter()
                    .filter(|(st, _)| *st == s)
                    .map(|(_, n)| *n)
                    .sum::<u64>();
                i.campaign_jobs
                    .with_label_values(&[id, s.as_str()])
                    .set(saturating_i64(n));
            }
            i.campaign_state
                .with_label_values(&[id, crate::scrape::campaign_state_label(&c.state)])
                .set(1);
        }
        for q in &snap.queues {
            for s in QueueState::ALL {
                i.queue_depth
                    .with_label_values(&[q.stage.as_str(), s.as_str()])
                    .set(saturating_i64(q.get(s)));
            }
        }
    }

    /// Runs the scrape hook (if any, bounded by a timeout) and applies its snapshot. A failed
    /// or slow refresh keeps the previous values and counts `motionq_scrape_refresh_errors_total`.
    pub async fn refresh(&self) {
        let hook = self.inner.hook.lock().await;
        self.refresh_with(hook.as_ref()).await;
    }

    async fn refresh_with(&self, hook: Option<&ScrapeHook>) {
        let Some(hook) = hook else {
            return;
        };
        match tokio::time::timeout(REFRESH_TIMEOUT, hook()).await {
            Ok(Ok(snap)) => self.apply_snapshot(&snap),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "metrics scrape refresh failed; keeping previous values");
                self.inner.scrape_refresh_errors.inc();
            }
            Err(_) => {
                tracing::warn!(
                    timeout_s = REFRESH_TIMEOUT.as_secs(),
                    "metrics scrape refresh timed out; keeping previous values"
                );
                self.inner.scrape_refresh_errors.inc();
            }
        }
    }

    /// The registry in the Prometheus text format, without running the scrape hook.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for I/O; it fails only for a malformed family, which
        // the catalogue never registers.
        TextEncoder::new()
            .encode(&self.inner.registry.gather(), &mut buf)
            .expect("text encoding of a valid registry");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }

    /// [`Metrics::refresh`] then [`Metrics::encode`]: what `GET /metrics` answers. The hook lock
    /// is held until the text is encoded, so a concurrent scrape's reset-and-fill can never
    /// show through as missing series.
    pub async fn render(&self) -> String {
        let hook = self.inner.hook.lock().await;
        self.refresh_with(hook.as_ref()).await;
        self.encode()
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::{CampaignSnapshot, QueueSnapshot};
    use futures::FutureExt;

    fn line_value(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
    }

    #[test]
    fn removed_limits_leave_no_stale_series() {
        let m = Metrics::new();
        m.set_spend(Vendor::Evolink, "a", Window::Daily, 1.0, 2.0, Some(10.0));
        let t = m.encode();
        assert_eq!(
            line_value(&t, "motionq_key_budget_remaining_usd{key=\"a\""),
            Some(7.0)
        );
        m.set_spend(Vendor::Evolink, "a", Window::Daily, 1.0, 2.0, None);
        let t = m.encode();
        assert!(!t.contains("motionq_key_spend_limit_usd{"), "{t}");
        assert!(!t.contains("motionq_key_budget_remaining_usd{"), "{t}");
        assert!(t.contains(
            "motionq_key_spend_settled_usd{key=\"a\",vendor=\"evolink\",window=\"daily\"} 1"
        ));

        m.set_campaign_spend("c", 5.0, 1.0, Some(8.0));
        assert_eq!(
            line_value(
                &m.encode(),
                "motionq_campaign_budget_remaining_usd{campaign=\"c\"}"
            ),
            Some(2.0)
        );
        m.set_campaign_spend("c", 5.0, 1.0, None);
        assert!(!m.encode().contains("motionq_campaign_budget_usd{"));
    }

    #[test]
    fn spend_settled_ignores_non_positive_and_non_finite() {
        let m = Metrics::new();
        m.spend_settled(Vendor::Kkiai, "k", "c", 0.5);
        m.spend_settled(Vendor::Kkiai, "k", "c", -1.0);
        m.spend_settled(Vendor::Kkiai, "k", "c", f64::NAN);
        m.spend_settled(Vendor::Kkiai, "k", "c", f64::INFINITY);
        m.spend_settled(Vendor::Kkiai, "k", "c", 0.25);
        assert_eq!(
            line_value(&m.encode(), "motionq_spend_settled_usd_total{"),
            Some(0.75)
        );
    }

    #[test]
    fn status_codes_other_than_429_503_are_not_throttles() {
        let m = Metrics::new();
        for s in [Some(200), Some(400), Some(402), Some(500), Some(502), None] {
            m.vendor_request(Vendor::Freepik, "f", Operation::Create, s, Duration::ZERO);
        }
        let t = m.encode();
        assert!(
            !t.contains("motionq_vendor_throttled_responses_total{"),
            "{t}"
        );
        m.vendor_request(
            Vendor::Freepik,
            "f",
            Operation::Create,
            Some(503),
            Duration::ZERO,
        );
        assert!(m
            .encode()
            .contains("motionq_vendor_throttled_responses_total{code=\"503\",key=\"f\",operation=\"create\",vendor=\"freepik\"} 1"));
    }

    #[test]
    fn recording_from_many_threads_loses_nothing() {
        let m = Metrics::new();
        std::thread::scope(|s| {
            for t in 0..8 {
                let m = m.clone();
                s.spawn(move || {
                    for i in 0..500 {
                        m.vendor_request(
                            Vendor::Evolink,
                            "a",
                            Operation::Query,
                            Some(200),
                            Duration::from_millis(10),
                        );
                        let state = if (t + i) % 2 == 0 {
                            KeyState::Active
                        } else {
                            KeyState::Parked(crate::ParkReason::Operator)
                        };
                        m.set_key_state(Vendor::Evolink, "a", state);
                    }
                });
            }
        });
        let t = m.encode();
        assert_eq!(
            line_value(&t, "motionq_vendor_requests_total{key=\"a\""),
            Some(4000.0)
        );
        // Still exactly one state series for the key, whatever order the threads ran in.
        assert_eq!(
            t.lines()
                .filter(|l| l.starts_with("motionq_key_state{"))
                .count(),
            1,
            "{t}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_hook_times_out_and_keeps_old_values() {
        let m = Metrics::new();
        m.apply_snapshot(&ScrapeSnapshot {
            campaigns: vec![CampaignSnapshot {
                campaign: "c".into(),
                state: "running".into(),
                jobs_enqueued: 3,
                jobs_by_state: vec![(JobState::Queued, 3)],
            }],
            queues: vec![QueueSnapshot {
                stage: Stage::Poll,
                unread: 1,
                pending: 2,
                delayed: 3,
                dead: 4,
            }],
        });
        m.set_scrape_hook(Box::new(|| {
            async {
                // Paused time: the timeout fires without a real wait.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(ScrapeSnapshot::default())
            }
            .boxed()
        }))
        .await;
        let t = m.render().await;
        assert!(t.contains("motionq_scrape_refresh_errors_total 1"), "{t}");
        assert!(t.contains("motionq_queue_depth{stage=\"poll\",state=\"dead\"} 4"));
        assert!(t.contains("motionq_campaign_jobs{campaign=\"c\",state=\"queued\"} 3"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_scrapes_each_see_a_whole_snapshot() {
        let m = Metrics::new();
        let n = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        m.set_scrape_hook(Box::new(move || {
            let k = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                tokio::task::yield_now().await;
                Ok(ScrapeSnapshot {
                    campaigns: vec![],
                    queues: vec![QueueSnapshot {
                        stage: Stage::Submit,
                        unread: k,
                        pending: k,
                        delayed: k,
                        dead: k,
                    }],
                })
            }
            .boxed()
        }))
        .await;
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move { m.render().await })
            })
            .collect();
        for t in tasks {
            let t = t.await.expect("render task");
            // All four states of one scrape come from the same snapshot.
            let vals: Vec<f64> = QueueState::ALL
                .iter()
                .map(|s| {
                    line_value(
                        &t,
                        &format!(
                            "motionq_queue_depth{{stage=\"submit\",state=\"{}\"}}",
                            s.as_str()
                        ),
                    )
                    .expect("series")
                })
                .collect();
            assert!(vals.windows(2).all(|w| w[0] == w[1]), "{vals:?}");
        }
    }
}
