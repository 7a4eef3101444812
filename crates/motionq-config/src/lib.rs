//! Typed motionq configuration: `config/default.toml` (or `--config FILE`) layered with
//! `MOTIONQ__SECTION__KEY` environment variables, e.g. `MOTIONQ__REDIS__URL`,
//! `MOTIONQ__VENDORS__EVOLINK__BASE_URL`, `MOTIONQ__STORAGE__URL`.
//!
//! Every field has a default, so an empty file (or none) is a valid config; the defaults equal
//! `config/default.toml` (a test keeps them in step). Unknown keys are errors that name the key.
//!
//! API keys are never written in config: each key names the *environment variable* that holds
//! it (`api_key_env`), read at start-up into a [`secrecy::SecretString`] that is never printed.
//!
//! Sections: [`RedisConfig`] (`[redis]`), [`ValidationConfig`] (`[validation]`),
//! [`VendorConfig`] (`[vendors.<vendor>]`, with prices and keys), [`StorageSection`]
//! (`[storage]`), [`WebhookConfig`] (`[webhooks]`), [`WorkerConfig`] (`[worker]`),
//! [`MetricsConfig`] (`[metrics]`), and `[queue]`, kept as a table that the queue crate reads
//! into its own typed config.

pub mod redis;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use motionq_core::{Price, PriceTable, Vendor};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use crate::redis::{redact_url, RedisConfig, RedisMode};

/// Why the configuration could not be loaded. Messages name the file, key or env var; never a
/// secret's value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("config: {0}")]
    Invalid(String),
    #[error("API key for {vendor} key `{alias}`: environment variable `{var}` is not set")]
    MissingSecret {
        vendor: Vendor,
        alias: String,
        var: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub redis: RedisConfig,
    pub validation: ValidationConfig,
    pub vendors: BTreeMap<Vendor, VendorConfig>,
    pub storage: StorageSection,
    pub webhooks: WebhookConfig,
    pub worker: WorkerConfig,
    pub metrics: MetricsConfig,
    /// Queue settings, read by the queue crate (`motionq_queue::QueueConfig`).
    pub queue: toml::Table,
}

impl Default for Config {
    fn default() -> Self {
        let prices = motionq_core::pricing::published_prices();
        let vendors = Vendor::ALL
            .into_iter()
            .map(|v| {
                (
                    v,
                    VendorConfig {
                        base_url: default_base_url(v).into(),
                        price: prices.get(&v).cloned().unwrap_or_default(),
                        ..VendorConfig::default()
                    },
                )
            })
            .collect();
        Self {
            redis: RedisConfig::default(),
            validation: ValidationConfig::default(),
            vendors,
            storage: StorageSection::default(),
            webhooks: WebhookConfig::default(),
            worker: WorkerConfig::default(),
            metrics: MetricsConfig::default(),
            queue: toml::Table::new(),
        }
    }
}

/// The vendors' production base URLs (VENDORS.md 6.1).
pub fn default_base_url(v: Vendor) -> &'static str {
    match v {
        Vendor::Evolink => "https://api.evolink.ai",
        Vendor::Kkiai => "https://www.kkiai.com",
        Vendor::Aivideoapi => "https://api.aivideoapi.ai",
        Vendor::Highwayapi => "https://api.highwayapi.ai",
        Vendor::Freepik => "https://api.freepik.com",
    }
}

/// `[validation]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Largest manifest accepted, bytes (`MOTIONQ__VALIDATION__MAX_MANIFEST_BYTES`).
    pub max_manifest_bytes: u64,
    /// Accept private/loopback and plain-http callback URLs: local rehearsals only
    /// (`MOTIONQ__VALIDATION__ALLOW_PRIVATE_CALLBACKS`).
    pub allow_private_callbacks: bool,
    /// Do not warn about media URLs on private/loopback hosts (rehearsals against the simulator)
    /// (`MOTIONQ__VALIDATION__ALLOW_PRIVATE_MEDIA`).
    pub allow_private_media: bool,
    /// Per-request timeout of `--probe`, ms (`MOTIONQ__VALIDATION__PROBE_TIMEOUT_MS`).
    pub probe_timeout_ms: u64,
    /// Parallel probes (`MOTIONQ__VALIDATION__PROBE_CONCURRENCY`).
    pub probe_concurrency: usize,
    /// Jobs written per Redis script call during enqueue (`MOTIONQ__VALIDATION__ENQUEUE_CHUNK`).
    pub enqueue_chunk: usize,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            max_manifest_bytes: 64 * 1024 * 1024,
            allow_private_callbacks: false,
            allow_private_media: false,
            probe_timeout_ms: 10_000,
            probe_concurrency: 16,
            enqueue_chunk: 500,
        }
    }
}

/// `[vendors.<vendor>]`: where a vendor is, what it costs, and the keys to use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VendorConfig {
    /// Base URL (`MOTIONQ__VENDORS__<VENDOR>__BASE_URL`); point it at `motionq sim` to rehearse.
    pub base_url: String,
    /// TCP connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// Whole-request timeout, ms.
    pub request_timeout_ms: u64,
    /// Price list (`[vendors.<vendor>.price]`).
    pub price: Price,
    /// The vendor's API keys (`[[vendors.<vendor>.keys]]`).
    pub keys: Vec<KeyConfig>,
}

impl Default for VendorConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            connect_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            price: Price::default(),
            keys: Vec::new(),
        }
    }
}

/// One API key of a vendor, with its limits. Amounts are in the vendor's price unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Name used in metrics, logs and `motionq keys` (never the key itself).
    pub alias: String,
    /// Environment variable holding the API key.
    pub api_key_env: String,
    /// Create calls per second (GCRA), shared by every worker.
    #[serde(default = "d_create_rate")]
    pub create_rate_per_s: f64,
    #[serde(default = "d_burst")]
    pub create_burst: u32,
    /// Hard cap on create calls in any sliding second AS THE VENDOR COUNTS THEM (arrivals):
    /// set it to a vendor's strict "N per second". Each create then counts from its token
    /// until one second after its answer, so network and scheduling jitter can never bunch
    /// more than N into one of the vendor's seconds; the cost is each call's latency of
    /// capacity. Give `create_burst` a few calls with it. `None` (default): GCRA spacing only.
    #[serde(default)]
    pub create_max_per_s: Option<u32>,
    /// Query calls per second.
    #[serde(default = "d_query_rate")]
    pub query_rate_per_s: f64,
    #[serde(default = "d_burst")]
    pub query_burst: u32,
    /// Hard cap on query calls in any sliding second of Redis time (see `create_max_per_s`).
    #[serde(default)]
    pub query_max_per_s: Option<u32>,
    /// In-flight vendor tasks at once.
    #[serde(default = "d_concurrent")]
    pub max_concurrent: u32,
    /// Seconds a concurrency lease lives without renewal (a dead worker's slots come back).
    #[serde(default = "d_lease")]
    pub lease_ttl_s: u64,
    /// Spend caps in the vendor's unit; `None` = no cap.
    #[serde(default)]
    pub spend_hourly: Option<f64>,
    #[serde(default)]
    pub spend_daily: Option<f64>,
    #[serde(default)]
    pub spend_total: Option<f64>,
}

fn d_create_rate() -> f64 {
    2.0
}
fn d_query_rate() -> f64 {
    10.0
}
fn d_burst() -> u32 {
    1
}
fn d_concurrent() -> u32 {
    5
}
fn d_lease() -> u64 {
    120
}

impl KeyConfig {
    /// Reads the API key from its environment variable.
    pub fn api_key(&self, vendor: Vendor) -> Result<SecretString, ConfigError> {
        match std::env::var(&self.api_key_env) {
            Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
            _ => Err(ConfigError::MissingSecret {
                vendor,
                alias: self.alias.clone(),
                var: self.api_key_env.clone(),
            }),
        }
    }
}

/// `[storage]`: where outputs go. `Debug` prints option names only (values may be secrets such
/// as `secret_access_key`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// `file:///abs/dir`, a relative path, `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix` (`MOTIONQ__STORAGE__URL`).
    pub url: String,
    /// Backend options (endpoint, region, allow_http, virtual_hosted_style_request, ...).
    pub options: BTreeMap<String, String>,
    /// Largest output accepted, bytes.
    pub max_object_bytes: u64,
}

impl std::fmt::Debug for StorageSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSection")
            .field("url", &self.url)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .field("max_object_bytes", &self.max_object_bytes)
            .finish()
    }
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            url: ".motionq/outputs".into(),
            options: BTreeMap::new(),
            max_object_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// `[webhooks]`: the intake server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Listen address of `motionq serve`.
    pub listen: String,
    /// Public HTTPS base URL vendors reach (overrides the manifest's `callback_base_url`).
    pub public_base_url: Option<String>,
    /// Env var holding the unguessable path token.
    pub token_env: Option<String>,
    /// Env var holding Freepik's webhook secret (`whsec_...`).
    pub freepik_secret_env: Option<String>,
    /// Accepted clock skew of signed webhooks, seconds.
    pub tolerance_s: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8088".into(),
            public_base_url: None,
            token_env: None,
            freepik_secret_env: None,
            tolerance_s: 300,
        }
    }
}

/// `[worker]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Concurrent jobs per stage per process.
    pub submit_concurrency: usize,
    pub poll_concurrency: usize,
    pub collect_concurrency: usize,
    /// What to do with a job whose create call may have reached a vendor that cannot be asked
    /// (no idempotency key, no task list): `fail` (default: mark failed for review, never pay
    /// twice) or `resubmit` (accept the risk of a second charge).
    pub unreconcilable: String,
    /// First poll of a new vendor task, milliseconds after it was accepted.
    pub poll_first_ms: u64,
    /// Shortest interval between two polls of one task, milliseconds.
    pub poll_min_ms: u64,
    /// Longest interval between two polls of one task, milliseconds.
    pub poll_max_ms: u64,
    /// Polls of a task space out with its age: `clamp(age × factor, poll_min, poll_max)`.
    pub poll_age_factor: f64,
    /// Learn each (vendor, tier)'s typical generation time from the tasks this process has
    /// seen finish, and poll just after it instead of waiting out a long interval.
    pub poll_learn: bool,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            submit_concurrency: 16,
            poll_concurrency: 32,
            collect_concurrency: 4,
            unreconcilable: "fail".into(),
            poll_first_ms: 2_000,
            poll_min_ms: 2_000,
            poll_max_ms: 30_000,
            poll_age_factor: 0.2,
            poll_learn: true,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Listen address of `/metrics` and `/healthz` for workers.
    pub listen: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

impl Config {
    /// Loads `files` in order (later wins), then `MOTIONQ__*` environment variables.
    pub fn load(files: &[PathBuf]) -> Result<Self, ConfigError> {
        Self::load_with_env(files, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment (tests).
    pub fn load_with_env(
        files: &[PathBuf],
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        for f in files {
            if !f.exists() {
                return Err(ConfigError::File {
                    path: f.clone(),
                    message: "not found".into(),
                });
            }
            builder = builder
                .add_source(config::File::from(f.as_path()).format(config::FileFormat::Toml));
        }
        let env_map: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("MOTIONQ__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("MOTIONQ")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("redis.nodes")
                .source(Some(env_map)),
        );
        let layered = builder
            .build()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        // Start from the built-in defaults so a partial `[vendors.x]` keeps the others.
        let value: serde_json::Value = layered
            .try_deserialize()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut base = serde_json::to_value(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        merge(&mut base, value);
        // Storage options are strings for the object-store builders, but an env value such as
        // `MOTIONQ__STORAGE__OPTIONS__ALLOW_HTTP=true` arrives parsed as a boolean.
        if let Some(opts) = base
            .get_mut("storage")
            .and_then(|s| s.get_mut("options"))
            .and_then(|o| o.as_object_mut())
        {
            for v in opts.values_mut() {
                if !v.is_string() && !v.is_null() {
                    *v = serde_json::Value::String(v.to_string());
                }
            }
        }
        let cfg: Config = serde_path_to_error::deserialize(&base)
            .map_err(|e| ConfigError::Invalid(format!("`{}`: {}", e.path(), e.inner())))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Loads `path` if given, else `config/default.toml` when it exists, else built-in defaults;
    /// always layered with the environment.
    pub fn load_default(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => Self::load(&[p.to_path_buf()]),
            None => {
                let d = PathBuf::from("config/default.toml");
                if d.exists() {
                    Self::load(&[d])
                } else {
                    Self::load(&[])
                }
            }
        }
    }

    /// Cross-field checks.
    fn check(&self) -> Result<(), ConfigError> {
        for (v, vc) in &self.vendors {
            let mut seen = std::collections::HashSet::new();
            for k in &vc.keys {
                if !seen.insert(&k.alias) {
                    return Err(ConfigError::Invalid(format!(
                        "vendors.{v}.keys: alias `{}` is used twice",
                        k.alias
                    )));
                }
                if k.alias.is_empty()
                    || !k
                        .alias
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(ConfigError::Invalid(format!(
                        "vendors.{v}.keys: alias `{}` must be letters, digits, `-`, `_`",
                        k.alias
                    )));
                }
                let positive = |r: f64| r.is_finite() && r > 0.0;
                if !positive(k.create_rate_per_s)
                    || !positive(k.query_rate_per_s)
                    || k.max_concurrent == 0
                {
                    return Err(ConfigError::Invalid(format!(
                        "vendors.{v}.keys.{}: rates and max_concurrent must be positive",
                        k.alias
                    )));
                }
            }
            if !vc.base_url.is_empty() && url::Url::parse(&vc.base_url).is_err() {
                return Err(ConfigError::Invalid(format!(
                    "vendors.{v}.base_url `{}` is not a URL",
                    vc.base_url
                )));
            }
        }
        if let Some(base) = &self.webhooks.public_base_url {
            self.check_public_base_url(base)?;
        }
        if self.worker.unreconcilable != "fail" && self.worker.unreconcilable != "resubmit" {
            return Err(ConfigError::Invalid(format!(
                "worker.unreconcilable must be `fail` or `resubmit`, got `{}`",
                self.worker.unreconcilable
            )));
        }
        let w = &self.worker;
        if w.poll_first_ms == 0 || w.poll_min_ms == 0 {
            return Err(ConfigError::Invalid(
                "worker.poll_first_ms and worker.poll_min_ms must be positive".into(),
            ));
        }
        if w.poll_max_ms < w.poll_min_ms {
            return Err(ConfigError::Invalid(format!(
                "worker.poll_max_ms ({}) must be at least worker.poll_min_ms ({})",
                w.poll_max_ms, w.poll_min_ms
            )));
        }
        if !w.poll_age_factor.is_finite() || w.poll_age_factor < 0.0 {
            return Err(ConfigError::Invalid(format!(
                "worker.poll_age_factor must be a finite number >= 0, got {}",
                w.poll_age_factor
            )));
        }
        Ok(())
    }

    /// `webhooks.public_base_url` goes into every create call as the callback base: real
    /// vendors only call HTTPS URLs on public hosts, and a private one would point a vendor at
    /// an internal address. Plain HTTP and private hosts pass only with
    /// `validation.allow_private_callbacks` (rehearsals against the simulator).
    fn check_public_base_url(&self, base: &str) -> Result<(), ConfigError> {
        let bad = |why: &str| {
            ConfigError::Invalid(format!(
                "webhooks.public_base_url `{base}` {why} (set validation.allow_private_callbacks \
                 = true only for rehearsals against the simulator)"
            ))
        };
        let url = url::Url::parse(base).map_err(|e| {
            ConfigError::Invalid(format!(
                "webhooks.public_base_url `{base}` is not a URL: {e}"
            ))
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ConfigError::Invalid(format!(
                "webhooks.public_base_url `{base}` must be an http(s) URL"
            )));
        }
        if self.validation.allow_private_callbacks {
            return Ok(());
        }
        if url.scheme() != "https" {
            return Err(bad("is not HTTPS: vendors call back over HTTPS only"));
        }
        match url.host() {
            Some(h) if !motionq_core::validate::is_private_host(&h) => Ok(()),
            _ => Err(bad(
                "is not on a public host: vendors cannot reach it, and it must never point them at an internal address",
            )),
        }
    }

    /// Prices of every vendor.
    pub fn prices(&self) -> PriceTable {
        self.vendors
            .iter()
            .map(|(v, c)| (*v, c.price.clone()))
            .collect()
    }

    /// The validation options for manifests.
    pub fn validate_options(&self) -> motionq_core::ValidateOptions {
        motionq_core::ValidateOptions {
            allow_private_callbacks: self.validation.allow_private_callbacks,
            allow_private_media: self.validation.allow_private_media,
        }
    }
}

/// Deep-merges `over` into `base` (objects merge; anything else replaces). Env values arrive as
/// strings or parsed scalars; the typed deserialize afterwards reports type errors by path.
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn public_base_url_must_be_https_and_public_unless_rehearsing() {
        let load = |base: &str, allow: bool| {
            let env = vec![
                (
                    "MOTIONQ__WEBHOOKS__PUBLIC_BASE_URL".to_string(),
                    base.to_string(),
                ),
                (
                    "MOTIONQ__VALIDATION__ALLOW_PRIVATE_CALLBACKS".to_string(),
                    allow.to_string(),
                ),
            ];
            Config::load_with_env(&[], env)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert!(load("https://hooks.example.com/motionq", false).is_ok());
        for (base, why) in [
            ("http://hooks.example.com/motionq", "not HTTPS"),
            ("https://127.0.0.1:8088", "public host"),
            ("https://10.1.2.3/hooks", "public host"),
            ("https://serve:8088", "public host"),
            ("https://[::1]/", "public host"),
            ("ftp://hooks.example.com/", "http(s) URL"),
            ("not a url", "not a URL"),
        ] {
            let e = load(base, false).unwrap_err();
            assert!(
                e.contains("webhooks.public_base_url") && e.contains(why),
                "{base}: {e}"
            );
        }
        // Rehearsals against the simulator (demo, docker-compose) reach serve over HTTP.
        assert!(load("http://127.0.0.1:8088", true).is_ok());
        assert!(load("http://serve:8088", true).is_ok());
        assert!(load("not a url", true).is_err());
    }

    #[test]
    fn defaults_without_files() {
        let c = Config::load_with_env(&[], Vec::new()).unwrap();
        assert_eq!(c.redis.url, "redis://127.0.0.1:6379/");
        assert_eq!(
            c.vendors[&Vendor::Evolink].base_url,
            "https://api.evolink.ai"
        );
        assert_eq!(
            c.vendors[&Vendor::Aivideoapi].price.std_per_second,
            Some(30.0)
        );
        assert_eq!(c.vendors[&Vendor::Freepik].price.std_per_second, None);
    }

    #[test]
    fn poll_schedule_from_env_and_bad_values_name_the_field() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let c = Config::load_with_env(
            &[],
            env(&[
                ("MOTIONQ__WORKER__POLL_MIN_MS", "100"),
                ("MOTIONQ__WORKER__POLL_FIRST_MS", "250"),
                ("MOTIONQ__WORKER__POLL_LEARN", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(c.worker.poll_min_ms, 100);
        assert_eq!(c.worker.poll_first_ms, 250);
        assert_eq!(c.worker.poll_max_ms, 30_000);
        assert!(!c.worker.poll_learn);
        for (pairs, field) in [
            (
                &[("MOTIONQ__WORKER__POLL_MIN_MS", "0")][..],
                "worker.poll_min_ms",
            ),
            (
                &[("MOTIONQ__WORKER__POLL_FIRST_MS", "0")][..],
                "poll_first_ms",
            ),
            (
                &[
                    ("MOTIONQ__WORKER__POLL_MIN_MS", "5000"),
                    ("MOTIONQ__WORKER__POLL_MAX_MS", "1000"),
                ][..],
                "worker.poll_max_ms (1000) must be at least worker.poll_min_ms (5000)",
            ),
            (
                &[("MOTIONQ__WORKER__POLL_AGE_FACTOR", "-1")][..],
                "worker.poll_age_factor",
            ),
            (
                &[("MOTIONQ__WORKER__POLL_MAX_MS", "soon")][..],
                "worker.poll_max_ms",
            ),
        ] {
            let e = Config::load_with_env(&[], env(pairs))
                .unwrap_err()
                .to_string();
            assert!(e.contains(field), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn env_overrides_file() {
        let f = file("[redis]\nurl = \"redis://10.0.0.1:6379/\"\n[vendors.evolink]\nbase_url = \"http://127.0.0.1:1/evolink\"\n");
        let env = vec![
            (
                "MOTIONQ__REDIS__URL".to_string(),
                "redis://127.0.0.9:7000/".to_string(),
            ),
            (
                "MOTIONQ__VENDORS__KKIAI__BASE_URL".to_string(),
                "http://127.0.0.1:2/kkiai".to_string(),
            ),
            (
                "MOTIONQ__VALIDATION__PROBE_CONCURRENCY".to_string(),
                "3".to_string(),
            ),
            (
                "MOTIONQ__REDIS__NODES".to_string(),
                "redis://a:1,redis://b:2".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let c = Config::load_with_env(&[f.path().to_path_buf()], env).unwrap();
        assert_eq!(c.redis.url, "redis://127.0.0.9:7000/");
        assert_eq!(c.redis.nodes, vec!["redis://a:1", "redis://b:2"]);
        assert_eq!(
            c.vendors[&Vendor::Evolink].base_url,
            "http://127.0.0.1:1/evolink"
        );
        assert_eq!(
            c.vendors[&Vendor::Kkiai].base_url,
            "http://127.0.0.1:2/kkiai"
        );
        // Untouched vendors keep their defaults.
        assert_eq!(
            c.vendors[&Vendor::Freepik].base_url,
            "https://api.freepik.com"
        );
        assert_eq!(c.validation.probe_concurrency, 3);
    }

    #[test]
    fn unknown_keys_and_bad_types_name_the_key() {
        let f = file("[redis]\nurll = \"x\"\n");
        let e = Config::load_with_env(&[f.path().to_path_buf()], Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("urll"), "{e}");
        let f = file("[validation]\nprobe_concurrency = \"many\"\n");
        let e = Config::load_with_env(&[f.path().to_path_buf()], Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("probe_concurrency"), "{e}");
        let e = Config::load_with_env(&[PathBuf::from("/nonexistent/motionq.toml")], Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not found"), "{e}");
    }

    #[test]
    fn api_keys_come_from_env_and_errors_name_the_variable_only() {
        let f = file(
            "[[vendors.evolink.keys]]\nalias = \"main\"\napi_key_env = \"MQ_TEST_EVOLINK_KEY_X\"\n",
        );
        let c = Config::load_with_env(&[f.path().to_path_buf()], Vec::new()).unwrap();
        let k = &c.vendors[&Vendor::Evolink].keys[0];
        let e = k.api_key(Vendor::Evolink).unwrap_err().to_string();
        assert!(e.contains("MQ_TEST_EVOLINK_KEY_X"));
        std::env::set_var("MQ_TEST_EVOLINK_KEY_X", "sk-very-secret");
        let s = k.api_key(Vendor::Evolink).unwrap();
        assert!(!format!("{s:?}").contains("very-secret"));
    }

    #[test]
    fn storage_options_from_env_stay_strings() {
        let env = vec![
            (
                "MOTIONQ__STORAGE__OPTIONS__ALLOW_HTTP".to_string(),
                "true".to_string(),
            ),
            (
                "MOTIONQ__STORAGE__OPTIONS__ENDPOINT".to_string(),
                "http://minio:9000".to_string(),
            ),
        ];
        let c = Config::load_with_env(&[], env).unwrap();
        assert_eq!(c.storage.options["allow_http"], "true");
        assert_eq!(c.storage.options["endpoint"], "http://minio:9000");
    }

    #[test]
    fn storage_options_are_not_printed() {
        let f = file("[storage]\nurl = \"s3://b/p\"\n[storage.options]\nsecret_access_key = \"topsecret123\"\n");
        let c = Config::load_with_env(&[f.path().to_path_buf()], Vec::new()).unwrap();
        let dbg = format!("{:?}", c);
        assert!(
            !dbg.contains("topsecret123") && dbg.contains("secret_access_key"),
            "{dbg}"
        );
    }

    #[test]
    fn duplicate_aliases_are_rejected() {
        let f = file("[[vendors.evolink.keys]]\nalias = \"a\"\napi_key_env = \"X\"\n[[vendors.evolink.keys]]\nalias = \"a\"\napi_key_env = \"Y\"\n");
        let e = Config::load_with_env(&[f.path().to_path_buf()], Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("used twice"), "{e}");
    }
}
