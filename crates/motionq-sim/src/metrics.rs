//! `GET /metrics`: the ledger as Prometheus metrics (`motionq_sim_` prefix). Labels are bounded:
//! `vendor` (5 values), `key` (the configured alias, never the key), `kind`/`endpoint`/`outcome`
//! (fixed small sets).

use crate::ledger::Ledger;
use prometheus::{CounterVec, Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

fn family<T: prometheus::core::Collector + Clone + 'static>(reg: &Registry, m: T) -> T {
    // Names are unique constants below, so registration cannot collide.
    let _ = reg.register(Box::new(m.clone()));
    m
}

/// Renders the ledger in the Prometheus text format. A fresh registry per scrape keeps the
/// ledger the only source of truth; the `expect`s below cannot fire because every metric name
/// and label set is a valid constant.
pub(crate) fn render(ledger: &Ledger) -> String {
    let reg = Registry::new();
    let kv = ["vendor", "key"];
    let int_counter = |name: &str, help: &str, labels: &[&str]| {
        family(
            &reg,
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
        )
    };
    let creates = int_counter("motionq_sim_creates_total", "Accepted task creations.", &kv);
    let duplicates = int_counter(
        "motionq_sim_duplicate_creates_total",
        "Accepted creations whose image+video+prompt+idempotency key was seen before on the key.",
        &kv,
    );
    let rejections = int_counter(
        "motionq_sim_rejections_total",
        "Rejected calls by kind (rate_limit, concurrency, spend_cap, insufficient_balance, ...).",
        &["vendor", "key", "kind"],
    );
    let queries = int_counter("motionq_sim_queries_total", "Task queries answered.", &kv);
    let finished = int_counter(
        "motionq_sim_tasks_finished_total",
        "Tasks that reached a terminal status.",
        &["vendor", "key", "outcome"],
    );
    let downloads = int_counter(
        "motionq_sim_downloads_total",
        "Output downloads served.",
        &kv,
    );
    let download_bytes = int_counter(
        "motionq_sim_download_bytes_total",
        "Output bytes served.",
        &kv,
    );
    let auth_failures = int_counter(
        "motionq_sim_auth_failures_total",
        "Calls with a missing or unknown key.",
        &["vendor"],
    );
    let faults = int_counter(
        "motionq_sim_faults_injected_total",
        "Injected faults.",
        &["vendor", "endpoint", "kind"],
    );
    let callbacks = int_counter(
        "motionq_sim_callback_attempts_total",
        "Callback HTTP attempts by outcome (delivered, failed).",
        &["vendor", "outcome"],
    );
    let charged = family(
        &reg,
        CounterVec::new(
            Opts::new(
                "motionq_sim_charged_units_total",
                "Pre-charges in the vendor's unit.",
            ),
            &kv,
        )
        .expect("valid metric"),
    );
    let refunded = family(
        &reg,
        CounterVec::new(
            Opts::new(
                "motionq_sim_refunded_units_total",
                "Refunds in the vendor's unit.",
            ),
            &kv,
        )
        .expect("valid metric"),
    );
    let balance = family(
        &reg,
        GaugeVec::new(
            Opts::new(
                "motionq_sim_balance_units",
                "Key balance in the vendor's unit.",
            ),
            &kv,
        )
        .expect("valid metric"),
    );
    let in_flight = family(
        &reg,
        IntGaugeVec::new(
            Opts::new(
                "motionq_sim_in_flight_tasks",
                "Tasks pending or processing.",
            ),
            &kv,
        )
        .expect("valid metric"),
    );
    let max_in_flight = family(
        &reg,
        IntGaugeVec::new(
            Opts::new(
                "motionq_sim_max_in_flight_tasks",
                "Highest number of tasks in flight at once.",
            ),
            &kv,
        )
        .expect("valid metric"),
    );
    for (vendor, vl) in &ledger.vendors {
        auth_failures
            .with_label_values(&[vendor.as_str()])
            .inc_by(vl.auth_failures);
        for (kind, n) in &vl.faults_injected {
            let (endpoint, kind) = kind.split_once('.').unwrap_or(("other", kind));
            faults
                .with_label_values(&[vendor, endpoint, kind])
                .inc_by(*n);
        }
        callbacks
            .with_label_values(&[vendor, "delivered"])
            .inc_by(vl.callbacks.delivered);
        callbacks
            .with_label_values(&[vendor, "failed"])
            .inc_by(vl.callbacks.failed_attempts);
        for (alias, k) in &vl.keys {
            let l = [vendor.as_str(), alias.as_str()];
            creates.with_label_values(&l).inc_by(k.accepted);
            duplicates.with_label_values(&l).inc_by(k.duplicates);
            queries.with_label_values(&l).inc_by(k.queries);
            for (kind, n) in &k.rejections {
                rejections
                    .with_label_values(&[vendor, alias, kind])
                    .inc_by(*n);
            }
            finished
                .with_label_values(&[vendor, alias, "completed"])
                .inc_by(k.completed);
            finished
                .with_label_values(&[vendor, alias, "failed"])
                .inc_by(k.failed);
            downloads.with_label_values(&l).inc_by(k.downloads.count);
            download_bytes
                .with_label_values(&l)
                .inc_by(k.downloads.bytes);
            charged.with_label_values(&l).inc_by(k.charged.max(0.0));
            refunded.with_label_values(&l).inc_by(k.refunded.max(0.0));
            balance.with_label_values(&l).set(k.balance);
            in_flight.with_label_values(&l).set(k.in_flight as i64);
            max_in_flight
                .with_label_values(&l)
                .set(k.max_in_flight as i64);
        }
    }
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = prometheus::TextEncoder::new().encode(&reg.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}
