//! The shared machinery behind every vendor: keys, limits, billing, the task store and its
//! clock-driven lifecycle, output links, faults and the ledger.
//!
//! One `std::sync::Mutex` guards all mutable state. Critical sections are short and never
//! await; slow work (generating an output file, sending callbacks) happens outside it. Task
//! state advances in two ways that agree: a background driver per task sleeps until each
//! transition, and every read advances due tasks first, so a query never shows a stale state
//! even if the driver is late.

use crate::clock::{now_ms, scaled};
use crate::config::{KeyConfig, ResolvedVendor, SimConfig};
use crate::error::ApiError;
use crate::faults::{rng_for, Decision, Faults};
use crate::ledger::{
    ChargeKind, ChargeRecord, CreateRecord, KeyLedger, Ledger, SpendWindows, TaskDownloads,
    VendorLedger,
};
use crate::media::{Checked, MediaStore, Output};
use crate::model::{Failure, ParsedCreate, TaskView};
use crate::spend::Spend;
use crate::vendor::{Endpoint, Orientation, Status, Tier, Vendor};
use crate::vendors;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

const HOUR: f64 = 3600.0;
/// Separate streams for task-level draws, so they never coincide with per-call fault draws.
const SALT_POLICY: u64 = 0x5EED_C0DE_0000_0001;
const SALT_EXPIRY: u64 = 0x5EED_C0DE_0000_0002;
const SALT_TASK_FAILURE: u64 = 0x5EED_C0DE_0000_0003;
const DAY: f64 = 86_400.0;

/// Everything the HTTP layer shares.
pub(crate) struct Engine {
    pub cfg: SimConfig,
    vendors: Vec<ResolvedVendor>,
    /// `http://host:port` used in output links.
    pub base_url: String,
    pub media: MediaStore,
    state: Mutex<State>,
    faults: Mutex<FaultState>,
    /// Client for callbacks (no proxy: receivers are local in tests).
    pub http: reqwest::Client,
    pub shutdown: watch::Receiver<bool>,
    /// Status changes with a callback URL go to the callback dispatcher through this channel,
    /// so the lock holder never awaits and every path (driver, query, ledger) emits the same way.
    event_tx: mpsc::UnboundedSender<Events>,
}

struct FaultState {
    faults: Faults,
    applied_at: Instant,
    counters: HashMap<(Vendor, Endpoint), u64>,
}

struct State {
    keys: Vec<KeyState>,
    by_secret: HashMap<(Vendor, String), usize>,
    tasks: HashMap<(Vendor, String), Task>,
    /// (key, external_task_id) → task id (KKIAI).
    external: HashMap<(usize, String), String>,
    links: HashMap<String, Link>,
    /// Ids, link tokens, content-policy and early-expiry draws. Not rewound by a reset, so ids
    /// from before a reset are never reused.
    rng: rand::rngs::StdRng,
    vendor_ledgers: Vec<VendorLedger>,
    /// Accepted tasks per vendor: the n-th task's content-policy and early-expiry draws come
    /// from `rng_for(seed, vendor, .., n)`, so they repeat with the seed whatever the timing.
    task_seq: Vec<u64>,
}

struct KeyState {
    vendor: Vendor,
    alias: String,
    limits: KeyConfig,
    create_window: VecDeque<Instant>,
    query_window: VecDeque<Instant>,
    /// Net spend windows for the caps.
    spend: Spend,
    /// Tasks not yet terminal (what an advance has to look at).
    active: Vec<String>,
    fingerprints: HashSet<String>,
    /// Task ids in creation order (lists).
    task_ids: Vec<String>,
    ledger: KeyLedger,
}

struct Task {
    id: String,
    vendor: Vendor,
    key: usize,
    tier: Tier,
    orientation: Orientation,
    model_name: String,
    external_task_id: Option<String>,
    callback_url: Option<String>,
    ref_seconds: f64,
    output_seconds: u32,
    charge: f64,
    final_charge: Option<f64>,
    /// What completion settles the pre-charge to.
    final_price: f64,
    created: Instant,
    created_ms: u64,
    updated_ms: u64,
    processing_at: Instant,
    done_at: Instant,
    processing_ms: Option<u64>,
    completed_ms: Option<u64>,
    status: Status,
    /// Why the task will fail, if it will.
    failure: Option<Failure>,
    output: Option<Arc<Output>>,
    link: Option<String>,
    watermark: bool,
    seed: u64,
    /// Index in the key ledger's `creates`.
    record: usize,
    /// Per-vendor sequence number (see `State::task_seq`).
    seq: u64,
    estimated_seconds: u64,
}

/// A download link of a finished task.
#[derive(Clone)]
pub(crate) struct Link {
    pub vendor: Vendor,
    pub key: usize,
    pub task_id: String,
    pub output: Arc<Output>,
    pub expires: Instant,
}

/// Result of looking up a link.
pub(crate) enum LinkLookup {
    Live(Link),
    Expired(Vendor),
    Unknown,
}

/// What the caller must do after an accepted create.
pub(crate) struct Accepted {
    pub view: TaskView,
    pub processing_at: Instant,
    pub done_at: Instant,
    pub output_seconds: u32,
    pub tier: Tier,
}

/// Status changes whose callbacks must be sent: (view, callback URL).
pub(crate) type Events = Vec<(TaskView, String)>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock would leave state mid-update; the simulator keeps serving
    // rather than cascading panics (each update is small and self-contained).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn prune(window: &mut VecDeque<Instant>, now: Instant, span: Duration) {
    while let Some(&front) = window.front() {
        if now.duration_since(front) >= span {
            window.pop_front();
        } else {
            break;
        }
    }
}

fn fingerprint(p: &ParsedCreate) -> String {
    let idem = p
        .external_task_id
        .as_deref()
        .or(p.callback_url.as_deref())
        .unwrap_or("");
    let mut h = Sha256::new();
    for part in [
        p.image.as_str(),
        p.video.as_str(),
        p.prompt.as_deref().unwrap_or(""),
        idem,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

impl State {
    fn new(cfg: &SimConfig, rng: rand::rngs::StdRng) -> State {
        let mut keys = Vec::new();
        let mut by_secret = HashMap::new();
        for v in Vendor::ALL {
            for (i, k) in cfg.vendor(v).keys.iter().enumerate() {
                let alias = k.alias.clone().unwrap_or_else(|| format!("key-{}", i + 1));
                by_secret.insert((v, k.secret().to_string()), keys.len());
                keys.push(KeyState {
                    vendor: v,
                    alias,
                    limits: k.clone(),
                    create_window: VecDeque::new(),
                    query_window: VecDeque::new(),
                    spend: Spend::new(scaled(HOUR, cfg.time_scale), scaled(DAY, cfg.time_scale)),
                    active: Vec::new(),
                    fingerprints: HashSet::new(),
                    task_ids: Vec::new(),
                    ledger: KeyLedger {
                        initial_balance: k.balance,
                        balance: k.balance,
                        ..KeyLedger::default()
                    },
                });
            }
        }
        State {
            keys,
            by_secret,
            tasks: HashMap::new(),
            external: HashMap::new(),
            links: HashMap::new(),
            rng,
            vendor_ledgers: vec![VendorLedger::default(); Vendor::ALL.len()],
            task_seq: vec![0; Vendor::ALL.len()],
        }
    }
}

impl Engine {
    pub(crate) fn new(
        cfg: SimConfig,
        base_url: String,
        media: MediaStore,
        shutdown: watch::Receiver<bool>,
    ) -> (Engine, mpsc::UnboundedReceiver<Events>) {
        let vendors = Vendor::ALL
            .iter()
            .map(|v| cfg.vendor(*v).resolve(*v))
            .collect();
        let state = State::new(&cfg, rand::rngs::StdRng::seed_from_u64(cfg.seed));
        let faults = FaultState {
            faults: cfg.faults.clone(),
            applied_at: Instant::now(),
            counters: HashMap::new(),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        (
            Engine {
                cfg,
                vendors,
                base_url,
                media,
                state: Mutex::new(state),
                faults: Mutex::new(faults),
                http,
                shutdown,
                event_tx,
            },
            event_rx,
        )
    }

    fn emit(&self, events: Events) {
        if !events.is_empty() {
            // The receiver lives as long as the server; after shutdown nothing needs callbacks.
            let _ = self.event_tx.send(events);
        }
    }

    pub(crate) fn vendor_cfg(&self, v: Vendor) -> &ResolvedVendor {
        &self.vendors[v.index()]
    }

    fn scaled(&self, vendor_seconds: f64) -> Duration {
        scaled(vendor_seconds, self.cfg.time_scale)
    }

    // ---------------------------------------------------------------- faults

    /// Draws the fault decision for the next call to (vendor, endpoint) and counts what fired.
    pub(crate) fn decide(&self, vendor: Vendor, endpoint: Endpoint) -> Decision {
        let d = {
            let mut fs = lock(&self.faults);
            let n = {
                let c = fs.counters.entry((vendor, endpoint)).or_insert(0);
                *c += 1;
                *c - 1
            };
            let mut rng = rng_for(self.cfg.seed, vendor, endpoint, n);
            let since = fs.applied_at.elapsed();
            let vf = fs.faults.vendor(vendor);
            match endpoint {
                Endpoint::Create => vf.create.decide(&mut rng, since),
                Endpoint::Query => vf.query.decide(&mut rng, since),
                Endpoint::Download => vf.download.decide_download(&mut rng, since),
                Endpoint::Callback => Decision::default(),
            }
        };
        for kind in d.kinds() {
            tracing::debug!(vendor = %vendor, endpoint = endpoint.as_str(), kind, "fault injected");
            self.count_fault(vendor, endpoint, kind);
        }
        d
    }

    /// Callback faults: (drop, duplicate).
    pub(crate) fn decide_callback(&self, vendor: Vendor) -> (bool, bool) {
        let (drop, dup) = {
            let mut fs = lock(&self.faults);
            let c = fs.counters.entry((vendor, Endpoint::Callback)).or_insert(0);
            *c += 1;
            let n = *c - 1;
            let mut rng = rng_for(self.cfg.seed, vendor, Endpoint::Callback, n);
            let f = &fs.faults.vendor(vendor).callback;
            let (a, b): (f64, f64) = (rng.random(), rng.random());
            (a < f.drop, b < f.duplicate)
        };
        if drop {
            self.count_fault(vendor, Endpoint::Callback, "drop");
        } else if dup {
            self.count_fault(vendor, Endpoint::Callback, "duplicate");
        }
        (drop, !drop && dup)
    }

    pub(crate) fn count_fault(&self, vendor: Vendor, endpoint: Endpoint, kind: &str) {
        let mut st = lock(&self.state);
        *st.vendor_ledgers[vendor.index()]
            .faults_injected
            .entry(format!("{}.{kind}", endpoint.as_str()))
            .or_insert(0) += 1;
    }

    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).faults.clone()
    }

    /// Replaces the faults; storms windows and per-endpoint counters restart now.
    pub(crate) fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        let mut fs = lock(&self.faults);
        fs.faults = faults;
        fs.applied_at = Instant::now();
        fs.counters.clear();
        Ok(())
    }

    // ---------------------------------------------------------------- keys and limits

    /// Finds the key; counts an auth failure when unknown.
    pub(crate) fn authenticate(&self, vendor: Vendor, secret: &str) -> Result<usize, ApiError> {
        let mut st = lock(&self.state);
        match st.by_secret.get(&(vendor, secret.to_string())) {
            Some(&k) => Ok(k),
            None => {
                st.vendor_ledgers[vendor.index()].auth_failures += 1;
                Err(ApiError::BadKey)
            }
        }
    }

    pub(crate) fn count_auth_failure(&self, vendor: Vendor) {
        lock(&self.state).vendor_ledgers[vendor.index()].auth_failures += 1;
    }

    /// Refuses every call of a key the vendor denies access (`KeyConfig::forbidden`).
    pub(crate) fn check_access(&self, key: usize) -> Result<(), ApiError> {
        if lock(&self.state).keys[key].limits.forbidden {
            return Err(ApiError::Forbidden);
        }
        Ok(())
    }

    /// Sliding 1 s window per key; only calls that pass are recorded.
    pub(crate) fn check_rate(&self, key: usize, endpoint: Endpoint) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut st = lock(&self.state);
        let k = &mut st.keys[key];
        let (limit, window) = match endpoint {
            Endpoint::Create => (k.limits.rate_per_sec, &mut k.create_window),
            _ => (k.limits.query_rate_per_sec, &mut k.query_window),
        };
        let Some(limit) = limit else {
            return Ok(());
        };
        prune(window, now, Duration::from_secs(1));
        if window.len() >= limit as usize {
            let kind = if endpoint == Endpoint::Create {
                "rate_limit"
            } else {
                "query_rate_limit"
            };
            *k.ledger.rejections.entry(kind.into()).or_insert(0) += 1;
            return Err(ApiError::RateLimited);
        }
        window.push_back(now);
        Ok(())
    }

    /// Counts a rejected call of an authenticated key.
    pub(crate) fn record_rejection(&self, key: usize, e: &ApiError) {
        if matches!(e, ApiError::RateLimited) {
            return; // counted by check_rate (or an injected fault, counted as a fault)
        }
        let mut st = lock(&self.state);
        let k = &mut st.keys[key];
        tracing::debug!(vendor = %k.vendor, key = %k.alias, kind = e.kind(), "call refused");
        *k.ledger.rejections.entry(e.kind().into()).or_insert(0) += 1;
    }

    // ---------------------------------------------------------------- create

    /// Media checks against the vendor's rules.
    pub(crate) fn check_media(
        &self,
        vendor: Vendor,
        p: &ParsedCreate,
    ) -> Result<Checked, ApiError> {
        self.media.check(
            &vendors::rules(vendor),
            &p.image,
            p.image_field,
            &p.video,
            p.video_field,
            p.orientation,
        )
    }

    /// Callback URLs must be HTTPS and public unless `allow_private_callbacks`.
    pub(crate) fn check_callback(&self, p: &ParsedCreate) -> Result<(), ApiError> {
        let Some(cb) = &p.callback_url else {
            return Ok(());
        };
        let field = p.callback_field;
        let url = url::Url::parse(cb)
            .map_err(|e| ApiError::value(field, format!("'{field}' is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ApiError::value(
                field,
                format!("'{field}' must be an HTTPS URL"),
            ));
        }
        if self.cfg.allow_private_callbacks {
            return Ok(());
        }
        if url.scheme() != "https" {
            return Err(ApiError::value(field, format!("'{field}' must use HTTPS")));
        }
        let private = match url.host() {
            Some(url::Host::Ipv4(ip)) => {
                ip.is_private()
                    || ip.is_loopback()
                    || ip.is_link_local()
                    || ip.is_unspecified()
                    || ip.is_broadcast()
                    || ip.octets()[0] == 100 && (64..128).contains(&ip.octets()[1])
            }
            Some(url::Host::Ipv6(ip)) => {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || (ip.segments()[0] & 0xfe00) == 0xfc00
                    || (ip.segments()[0] & 0xffc0) == 0xfe80
            }
            Some(url::Host::Domain(d)) => {
                let d = d.to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost") || d.ends_with(".local")
            }
            None => true,
        };
        if private {
            return Err(ApiError::value(
                field,
                format!("'{field}' must not point to a private or loopback address"),
            ));
        }
        Ok(())
    }

    /// Limits, billing and the new task. The caller spawns the driver with the result.
    pub(crate) fn create_task(
        &self,
        vendor: Vendor,
        key: usize,
        p: ParsedCreate,
        checked: Checked,
    ) -> Result<Accepted, ApiError> {
        let now = Instant::now();
        let now_ms = now_ms();
        let vc = self.vendor_cfg(vendor).clone();
        let mut st = lock(&self.state);
        let events = self.advance_key(&mut st, key, now);
        self.emit(events);
        if let Some(ext) = &p.external_task_id {
            if st.external.contains_key(&(key, ext.clone())) {
                return Err(ApiError::DuplicateExternalId);
            }
        }
        let per_second = vc.price_per_second.get(p.tier);
        // Kling and AI Video API can refuse content at create (VENDORS.md 6.4); the others only
        // fail the task later (handled below through `will_fail`).
        if matches!(vendor, Vendor::Kkiai | Vendor::Aivideoapi)
            && p.prompt
                .as_deref()
                .is_some_and(|s| s.contains("sim:content_policy_reject"))
        {
            return Err(ApiError::ContentPolicy);
        }
        let price = vendors::round6(per_second * checked.precharge_seconds as f64);
        let final_price = vendors::round6(per_second * checked.output_seconds as f64);
        {
            let k = &mut st.keys[key];
            if let Some(max) = k.limits.max_concurrent {
                if k.ledger.in_flight >= max {
                    return Err(ApiError::Concurrency);
                }
            }
            if k.ledger.balance + 1e-9 < price {
                return Err(ApiError::InsufficientBalance);
            }
            let spent = k.spend.windows(now);
            for (cap, spent, window) in [
                (k.limits.spend_cap_hourly, spent.last_hour, "hourly"),
                (k.limits.spend_cap_daily, spent.last_day, "daily"),
                (k.limits.spend_cap_total, spent.total, "total"),
            ] {
                if let Some(cap) = cap {
                    if spent + price > cap + 1e-9 {
                        return Err(ApiError::SpendCap(window));
                    }
                }
            }
        }
        let id = vendors::new_task_id(vendor, &mut st.rng, now_ms);
        let seed: u64 = st.rng.random_range(0..1_000_000_000);
        let vendor_faults = self.faults().vendor(vendor).clone();
        let content_policy_p = vendor_faults.content_policy;
        let seq = st.task_seq[vendor.index()];
        st.task_seq[vendor.index()] += 1;
        let draw: f64 =
            rng_for(self.cfg.seed ^ SALT_POLICY, vendor, Endpoint::Create, seq).random();
        // A separate stream, so adding `task_failure` leaves the content-policy draws of a
        // seed unchanged.
        let failure_draw: f64 = rng_for(
            self.cfg.seed ^ SALT_TASK_FAILURE,
            vendor,
            Endpoint::Create,
            seq,
        )
        .random();
        let failure = if p
            .prompt
            .as_deref()
            .is_some_and(|s| s.contains("sim:content_policy"))
            || draw < content_policy_p
        {
            Some(Failure::ContentPolicy)
        } else if failure_draw < vendor_faults.task_failure {
            Some(Failure::Vendor)
        } else {
            None
        };
        let queue = vc.queue_seconds;
        let gen = vc.generation_seconds.get(p.tier);
        let processing_at = now + self.scaled(queue);
        let done_at = processing_at + self.scaled(gen);
        let fp = fingerprint(&p);
        let k = &mut st.keys[key];
        let duplicate = !k.fingerprints.insert(fp.clone());
        if duplicate {
            k.ledger.duplicates += 1;
        }
        k.ledger.balance -= price;
        k.ledger.charged += price;
        k.spend.charge(now, &id, price);
        k.ledger.charges.push(ChargeRecord {
            at_ms: now_ms,
            task_id: id.clone(),
            kind: ChargeKind::PreCharge,
            amount: price,
        });
        k.ledger.in_flight += 1;
        k.ledger.accepted += 1;
        k.ledger.max_in_flight = k.ledger.max_in_flight.max(k.ledger.in_flight);
        k.ledger.creates.push(CreateRecord {
            at_ms: now_ms,
            task_id: id.clone(),
            fingerprint: fp,
            duplicate,
            external_task_id: p.external_task_id.clone(),
            tier: p.tier,
            ref_seconds: checked.ref_seconds,
            output_seconds: checked.output_seconds,
            charge: price,
            status: Status::Pending,
            output_sha256: None,
        });
        let record = k.ledger.creates.len() - 1;
        tracing::debug!(vendor = %vendor, key = %k.alias, task_id = %id, charge = price, duplicate, "task created");
        k.task_ids.push(id.clone());
        k.active.push(id.clone());
        if let Some(ext) = &p.external_task_id {
            st.external.insert((key, ext.clone()), id.clone());
        }
        let task = Task {
            id: id.clone(),
            vendor,
            key,
            tier: p.tier,
            orientation: p.orientation,
            model_name: p.model_name,
            external_task_id: p.external_task_id,
            callback_url: p.callback_url,
            ref_seconds: checked.ref_seconds,
            output_seconds: checked.output_seconds,
            charge: price,
            final_charge: None,
            final_price,
            created: now,
            created_ms: now_ms,
            updated_ms: now_ms,
            processing_at,
            done_at,
            processing_ms: None,
            completed_ms: None,
            status: Status::Pending,
            failure,
            output: None,
            link: None,
            watermark: p.watermark,
            seed,
            record,
            seq,
            estimated_seconds: (queue + gen).round() as u64,
        };
        let view = self.view(&st, &task, now);
        if let Some(url) = &task.callback_url {
            self.emit(vec![(view.clone(), url.clone())]);
        }
        st.tasks.insert((vendor, id), task);
        Ok(Accepted {
            view,
            processing_at,
            done_at,
            output_seconds: checked.output_seconds,
            tier: p.tier,
        })
    }

    // ---------------------------------------------------------------- lifecycle

    /// Attaches the generated output (the driver makes it before the task can complete).
    pub(crate) fn attach_output(&self, vendor: Vendor, id: &str, output: Arc<Output>) {
        let mut st = lock(&self.state);
        if let Some(t) = st.tasks.get_mut(&(vendor, id.to_string())) {
            t.output = Some(output);
        }
    }

    /// Advances one task to now (the driver's tick).
    pub(crate) fn advance(&self, vendor: Vendor, id: &str) {
        let now = Instant::now();
        let mut st = lock(&self.state);
        let events = self.advance_one(&mut st, &(vendor, id.to_string()), now);
        self.emit(events);
    }

    /// Whether the task is gone (reset) or terminal: its driver can stop.
    pub(crate) fn is_settled(&self, vendor: Vendor, id: &str) -> bool {
        lock(&self.state)
            .tasks
            .get(&(vendor, id.to_string()))
            .is_none_or(|t| t.status.is_terminal())
    }

    fn advance_key(&self, st: &mut State, key: usize, now: Instant) -> Events {
        let vendor = st.keys[key].vendor;
        let active = std::mem::take(&mut st.keys[key].active);
        let mut events = Vec::new();
        let mut still = Vec::with_capacity(active.len());
        for id in active {
            let tk = (vendor, id);
            events.extend(self.advance_one(st, &tk, now));
            if st.tasks.get(&tk).is_some_and(|t| !t.status.is_terminal()) {
                still.push(tk.1);
            }
        }
        // Tasks created meanwhile cannot exist (the lock is held), so this is a plain swap.
        st.keys[key].active = still;
        events
    }

    fn advance_one(&self, st: &mut State, tk: &(Vendor, String), now: Instant) -> Events {
        let mut events = Vec::new();
        loop {
            let Some(t) = st.tasks.get(tk) else {
                return events;
            };
            let next = match t.status {
                Status::Pending if now >= t.processing_at => Status::Processing,
                Status::Processing if now >= t.done_at && t.failure.is_some() => Status::Failed,
                // Completion waits for the output file (normally made long before).
                Status::Processing if now >= t.done_at && t.output.is_some() => Status::Completed,
                _ => return events,
            };
            self.transition(st, tk, next);
            if let Some(t) = st.tasks.get(tk) {
                if let Some(url) = &t.callback_url {
                    events.push((self.view(st, t, now), url.clone()));
                }
            }
        }
    }

    fn transition(&self, st: &mut State, tk: &(Vendor, String), next: Status) {
        let Some(seq) = st.tasks.get(tk).map(|t| t.seq) else {
            return;
        };
        let early_draw: f64 =
            rng_for(self.cfg.seed ^ SALT_EXPIRY, tk.0, Endpoint::Download, seq).random();
        let token: String = (0..32)
            .map(|_| {
                const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
                A[st.rng.random_range(0..A.len())] as char
            })
            .collect();
        let expire_early = {
            let fs = lock(&self.faults);
            let d = &fs.faults.vendor(tk.0).download;
            (early_draw < d.expire_early).then_some(d.expire_early_factor)
        };
        let Some(t) = st.tasks.get_mut(tk) else {
            return;
        };
        let key = t.key;
        let at = |i: Instant| t.created_ms + i.duration_since(t.created).as_millis() as u64;
        match next {
            Status::Processing => {
                let ms = at(t.processing_at);
                t.processing_ms = Some(ms);
                t.updated_ms = ms;
            }
            Status::Completed | Status::Failed => {
                let ms = at(t.done_at).max(t.updated_ms);
                t.completed_ms = Some(ms);
                t.updated_ms = ms;
            }
            Status::Pending => {}
        }
        t.status = next;
        let (id, charge, final_price, record, done_at, vendor) = (
            t.id.clone(),
            t.charge,
            t.final_price,
            t.record,
            t.done_at,
            t.vendor,
        );
        let mut new_link = None;
        match next {
            Status::Completed => {
                t.final_charge = Some(final_price);
                if let Some(output) = t.output.clone() {
                    let ttl =
                        self.vendor_cfg(vendor).output_ttl_seconds * expire_early.unwrap_or(1.0);
                    t.link = Some(token.clone());
                    new_link = Some(Link {
                        vendor,
                        key,
                        task_id: id.clone(),
                        output,
                        expires: done_at + self.scaled(ttl),
                    });
                }
            }
            Status::Failed => t.final_charge = Some(0.0),
            _ => {}
        }
        let sha = new_link.as_ref().map(|l| l.output.sha256.clone());
        if let Some(l) = new_link {
            if expire_early.is_some() {
                *st.vendor_ledgers[vendor.index()]
                    .faults_injected
                    .entry("download.expire_early".into())
                    .or_insert(0) += 1;
            }
            st.links.insert(token, l);
        }
        let now_ms = now_ms();
        let k = &mut st.keys[key];
        if let Some(r) = k.ledger.creates.get_mut(record) {
            r.status = next;
            if sha.is_some() {
                r.output_sha256 = sha;
            }
        }
        match next {
            Status::Completed => {
                k.ledger.in_flight = k.ledger.in_flight.saturating_sub(1);
                k.ledger.completed += 1;
                let back = vendors::round6(charge - final_price);
                k.spend.settle(Instant::now(), &id, back.max(0.0));
                k.ledger.charges.push(ChargeRecord {
                    at_ms: now_ms,
                    task_id: id.clone(),
                    kind: ChargeKind::Settle,
                    amount: final_price,
                });
                if back > 0.0 {
                    // The pre-charge covered the whole reference; the output was shorter.
                    k.ledger.balance += back;
                    k.ledger.refunded += back;
                    k.ledger.charges.push(ChargeRecord {
                        at_ms: now_ms,
                        task_id: id,
                        kind: ChargeKind::Refund,
                        amount: back,
                    });
                }
            }
            Status::Failed => {
                k.ledger.in_flight = k.ledger.in_flight.saturating_sub(1);
                k.ledger.failed += 1;
                k.ledger.balance += charge;
                k.ledger.refunded += charge;
                k.spend.refund(Instant::now(), &id, charge);
                k.ledger.charges.push(ChargeRecord {
                    at_ms: now_ms,
                    task_id: id,
                    kind: ChargeKind::Refund,
                    amount: charge,
                });
            }
            _ => {}
        }
    }

    fn view(&self, st: &State, t: &Task, now: Instant) -> TaskView {
        let span = t.done_at.saturating_duration_since(t.processing_at);
        let progress = match t.status {
            Status::Pending | Status::Failed => 0,
            Status::Completed => 100,
            Status::Processing => {
                let done = now.saturating_duration_since(t.processing_at);
                if span.is_zero() {
                    99
                } else {
                    ((done.as_secs_f64() / span.as_secs_f64()) * 100.0).clamp(1.0, 99.0) as u8
                }
            }
        };
        let eta = t.done_at.saturating_duration_since(now).as_secs_f64() / self.cfg.time_scale;
        let link = t
            .link
            .as_ref()
            .and_then(|tok| st.links.get(tok).map(|l| (tok, l)));
        TaskView {
            id: t.id.clone(),
            vendor: t.vendor,
            external_task_id: t.external_task_id.clone(),
            status: t.status,
            failure: t.failure,
            progress,
            eta_seconds: eta.ceil() as u64,
            estimated_seconds: t.estimated_seconds,
            created_ms: t.created_ms,
            updated_ms: t.updated_ms,
            processing_ms: t.processing_ms,
            completed_ms: t.completed_ms,
            output_url: link.map(|(tok, _)| format!("{}/files/{tok}.mp4", self.base_url)),
            output_ttl: link.map(|(_, l)| l.expires.saturating_duration_since(now)),
            output_seconds: t.output_seconds,
            charge: t.charge,
            final_charge: t.final_charge,
            watermark: t.watermark,
            seed: t.seed,
        }
    }

    // ---------------------------------------------------------------- queries

    /// Looks a task up for `key` (by id, or by KKIAI external id), advancing it first.
    pub(crate) fn query_task(
        &self,
        vendor: Vendor,
        key: usize,
        id: &str,
        tier: Option<Tier>,
    ) -> Result<TaskView, ApiError> {
        let now = Instant::now();
        let mut st = lock(&self.state);
        let mut tk = (vendor, id.to_string());
        if !st.tasks.contains_key(&tk) && vendor == Vendor::Kkiai {
            if let Some(real) = st.external.get(&(key, id.to_string())) {
                tk = (vendor, real.clone());
            }
        }
        match st.tasks.get(&tk) {
            Some(t) if t.key == key && tier.is_none_or(|tier| t.tier == tier) => {}
            _ => return Err(ApiError::TaskNotFound),
        }
        let events = self.advance_one(&mut st, &tk, now);
        self.emit(events);
        st.keys[key].ledger.queries += 1;
        let t = st.tasks.get(&tk).ok_or(ApiError::TaskNotFound)?;
        Ok(self.view(&st, t, now))
    }

    /// The key's tasks, newest first, optionally one tier only; `page` is 1-based.
    pub(crate) fn list_tasks(
        &self,
        key: usize,
        tier: Option<Tier>,
        page: usize,
        page_size: usize,
    ) -> Vec<TaskView> {
        let now = Instant::now();
        let mut st = lock(&self.state);
        let events = self.advance_key(&mut st, key, now);
        self.emit(events);
        st.keys[key].ledger.queries += 1;
        let vendor = st.keys[key].vendor;
        st.keys[key]
            .task_ids
            .iter()
            .rev()
            .filter_map(|id| st.tasks.get(&(vendor, id.clone())))
            .filter(|t| tier.is_none_or(|tier| t.tier == tier))
            .skip(page.saturating_sub(1) * page_size)
            .take(page_size)
            .map(|t| self.view(&st, t, now))
            .collect()
    }

    /// (balance, purchased, consumed) for AI Video API `/v1/credits`.
    pub(crate) fn credits(&self, key: usize) -> (f64, f64, f64) {
        let mut st = lock(&self.state);
        st.keys[key].ledger.queries += 1;
        let l = &st.keys[key].ledger;
        (l.balance, l.initial_balance, l.charged - l.refunded)
    }

    // ---------------------------------------------------------------- downloads

    pub(crate) fn link(&self, token: &str) -> LinkLookup {
        let st = lock(&self.state);
        match st.links.get(token) {
            Some(l) if Instant::now() < l.expires => LinkLookup::Live(l.clone()),
            Some(l) => LinkLookup::Expired(l.vendor),
            None => LinkLookup::Unknown,
        }
    }

    pub(crate) fn record_download(&self, link: &Link, bytes: u64, damaged: bool) {
        let mut st = lock(&self.state);
        let d = &mut st.keys[link.key].ledger.downloads;
        d.count += 1;
        d.bytes += bytes;
        let t = d
            .tasks
            .entry(link.task_id.clone())
            .or_insert_with(|| TaskDownloads {
                sha256: link.output.sha256.clone(),
                ..TaskDownloads::default()
            });
        t.count += 1;
        t.bytes += bytes;
        if damaged {
            t.damaged += 1;
        }
    }

    // ---------------------------------------------------------------- callbacks ledger

    pub(crate) fn with_callback_ledger(
        &self,
        vendor: Vendor,
        f: impl FnOnce(&mut crate::ledger::CallbackLedger),
    ) {
        let mut st = lock(&self.state);
        f(&mut st.vendor_ledgers[vendor.index()].callbacks);
    }

    // ---------------------------------------------------------------- admin

    /// The full ledger.
    pub(crate) fn ledger(&self) -> Ledger {
        self.snapshot(true)
    }

    /// The ledger; without `full`, the per-create, per-charge and per-task-download lists are
    /// left empty (what `/metrics` needs, cheap at any volume).
    pub(crate) fn snapshot(&self, full: bool) -> Ledger {
        let now = Instant::now();
        let mut st = lock(&self.state);
        // Bring every task up to date so in_flight and statuses are exact.
        let keys: Vec<usize> = (0..st.keys.len()).collect();
        let mut events = Vec::new();
        for k in keys {
            events.extend(self.advance_key(&mut st, k, now));
        }
        let mut ledger = Ledger {
            seed: self.cfg.seed,
            time_scale: self.cfg.time_scale,
            at_ms: now_ms(),
            vendors: Default::default(),
        };
        for v in Vendor::ALL {
            ledger
                .vendors
                .insert(v.as_str().into(), st.vendor_ledgers[v.index()].clone());
        }
        let vendor_ledgers = &mut ledger.vendors;
        for k in st.keys.iter_mut() {
            let mut kl = if full {
                k.ledger.clone()
            } else {
                KeyLedger {
                    creates: Vec::new(),
                    charges: Vec::new(),
                    downloads: crate::ledger::DownloadLedger {
                        tasks: Default::default(),
                        ..k.ledger.downloads.clone()
                    },
                    rejections: k.ledger.rejections.clone(),
                    spend: SpendWindows::default(),
                    ..k.ledger.clone_counters()
                }
            };
            kl.spend = k.spend.windows(now);
            kl.balance = vendors::round6(kl.balance);
            kl.charged = vendors::round6(kl.charged);
            kl.refunded = vendors::round6(kl.refunded);
            if let Some(vl) = vendor_ledgers.get_mut(k.vendor.as_str()) {
                vl.keys.insert(k.alias.clone(), kl);
            }
        }
        drop(st);
        self.emit(events);
        ledger
    }

    /// Clears tasks, links and the ledger; restores balances from the config.
    pub(crate) fn reset(&self) {
        let mut st = lock(&self.state);
        let rng = st.rng.clone();
        *st = State::new(&self.cfg, rng);
        drop(st);
        let mut fs = lock(&self.faults);
        fs.applied_at = Instant::now();
        fs.counters.clear();
    }

    /// Debug view of one task for `/_sim/tasks/{vendor}/{id}`.
    pub(crate) fn debug_task(&self, vendor: Vendor, id: &str) -> Option<serde_json::Value> {
        let now = Instant::now();
        let mut st = lock(&self.state);
        let tk = (vendor, id.to_string());
        let events = self.advance_one(&mut st, &tk, now);
        self.emit(events);
        let t = st.tasks.get(&tk)?;
        let v = self.view(&st, t, now);
        Some(serde_json::json!({
            "vendor": vendor.as_str(),
            "task_id": t.id,
            "key": st.keys[t.key].alias,
            "status": t.status,
            "tier": t.tier,
            "orientation": t.orientation,
            "model_name": t.model_name,
            "external_task_id": t.external_task_id,
            "callback_url": t.callback_url,
            "ref_seconds": t.ref_seconds,
            "output_seconds": t.output_seconds,
            "charge": t.charge,
            "final_charge": t.final_charge,
            "will_fail": t.failure.is_some(),
            "failure": t.failure.map(Failure::as_str),
            "output_url": v.output_url,
            "output_sha256": t.output.as_ref().map(|o| o.sha256.clone()),
            "link_ttl_ms": v.output_ttl.map(|d| d.as_millis() as u64),
            "created_ms": t.created_ms,
            "updated_ms": t.updated_ms,
        }))
    }
}
