//! Simulator configuration: TOML file format, defaults per vendor, and the key table.

use crate::faults::Faults;
use crate::vendor::{Tier, Vendor};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Errors loading a configuration. Never retried: the file must be fixed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read sim config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown/mistyped fields (the message names the field).
    #[error("invalid sim config: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range (the message names the field).
    #[error("invalid sim config: {0}")]
    Invalid(String),
}

/// Whole-simulator configuration. `Default` is a ready-to-use demo config (two keys per vendor).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every random choice (ids, link tokens, faults, content-policy failures).
    pub seed: u64,
    /// Real seconds per simulated second: 0.001 turns a 5-minute generation into 300 ms. Scales
    /// generation times, link lifetimes, callback retry delays and the spend-cap windows
    /// (hour/day). Rate limits (per real second) and timestamps in bodies are not scaled.
    pub time_scale: f64,
    /// Enables `/_sim/*` admin endpoints (otherwise they answer 404).
    pub admin_enabled: bool,
    /// Allows callback URLs that are plain HTTP or point at private/loopback addresses.
    pub allow_private_callbacks: bool,
    /// Adds `Retry-After` to 429 and 503 answers (no vendor documents one; default off).
    pub retry_after: bool,
    /// Seconds sent in `Retry-After` when `retry_after` is on.
    pub retry_after_seconds: u64,
    /// Adds `Repr-Digest: sha-256=:<base64>:` (RFC 9530) of the whole file to output
    /// downloads, as object stores and CDNs that keep a checksum do (no vendor documents one;
    /// default on). The `corrupted_download` fault keeps the header of the real file, so a
    /// client that checks it sees the damage; with this off, the damage is undetectable.
    pub download_digest: bool,
    /// Reference-video length assumed for URLs that are not this simulator's `/media/...`.
    pub assumed_reference_seconds: f64,
    /// Base URL written into output links and media URLs (default `http://<bound address>`);
    /// set it when clients reach the sim by another name (e.g. `http://sim:8089` in compose).
    pub public_base_url: Option<String>,
    /// EvoLink section.
    pub evolink: VendorConfig,
    /// KKIAI section.
    pub kkiai: VendorConfig,
    /// AI Video API section.
    pub aivideoapi: VendorConfig,
    /// HighwayAPI section.
    pub highwayapi: VendorConfig,
    /// Freepik section.
    pub freepik: VendorConfig,
    /// Injected faults (also changeable at runtime).
    pub faults: Faults,
}

/// One vendor's section. Unset `Option`s take the vendor's documented default (see
/// [`VendorDefaults`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VendorConfig {
    /// Seconds a task stays pending (queued) before processing, unscaled. Default 15.
    pub queue_seconds: Option<f64>,
    /// Seconds of processing per tier, unscaled. Default std 240, pro 300.
    pub generation_seconds: Option<Tiered>,
    /// Output link lifetime in seconds, unscaled (EvoLink/AI Video API/Freepik 86400,
    /// HighwayAPI 3600, KKIAI 30 days).
    pub output_ttl_seconds: Option<f64>,
    /// Price per output second per tier, in the vendor's unit (EvoLink credits, Kling units,
    /// AI Video API credits, HighwayAPI USD, Freepik credits).
    pub price_per_second: Option<Tiered>,
    /// Freepik only: Standard-Webhooks secret, `whsec_<base64>` (or raw text).
    pub webhook_secret: Option<String>,
    /// KKIAI only: answer single-task queries in the new-api gateway wrapping
    /// (`{"code":"success","data":{"status":"SUCCESS",…,"data":<Kling answer>}}`), the
    /// alternative shape VENDORS.md 2.3 asks adapters to accept. Default false.
    pub wrapped_queries: bool,
    /// KKIAI only: answer the gateway's own refusals (bad token, wallet empty, gateway rate
    /// limit) in the OpenAI-style envelope `{"error":{"message","type","code"}}` instead of
    /// Kling's `{"code":<int>,…}` (VENDORS.md 2.5 asks adapters to parse both). Default false.
    pub gateway_errors: bool,
    /// The accepted API keys.
    pub keys: Vec<KeyConfig>,
}

/// A value per tier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tiered {
    /// std / 720p.
    pub std: f64,
    /// pro / 1080p.
    pub pro: f64,
}

impl Tiered {
    /// The value for `tier`.
    pub fn get(&self, tier: Tier) -> f64 {
        match tier {
            Tier::Std => self.std,
            Tier::Pro => self.pro,
        }
    }
}

/// One API key and its limits. `Debug` never shows the key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The secret the client sends.
    pub key: SecretString,
    /// Name used in the ledger and metrics (default `key-<n>`, 1-based). Never the key itself.
    #[serde(default)]
    pub alias: Option<String>,
    /// Starting balance in the vendor's unit (default 1e9: practically unlimited).
    #[serde(default = "default_balance")]
    pub balance: f64,
    /// Accepted creates per sliding 1 s window (real time); `None` = unlimited.
    #[serde(default)]
    pub rate_per_sec: Option<u32>,
    /// Queries per sliding 1 s window (real time); `None` = unlimited.
    #[serde(default)]
    pub query_rate_per_sec: Option<u32>,
    /// Tasks in flight (pending or processing) at once; `None` = unlimited.
    #[serde(default)]
    pub max_concurrent: Option<u32>,
    /// Cap on net spend in the last (scaled) hour.
    #[serde(default)]
    pub spend_cap_hourly: Option<f64>,
    /// Cap on net spend in the last (scaled) day.
    #[serde(default)]
    pub spend_cap_daily: Option<f64>,
    /// Cap on net spend ever.
    #[serde(default)]
    pub spend_cap_total: Option<f64>,
    /// The vendor denies this key access (an account not allowed the model or API, or a
    /// request from outside the key's IP allowlist): every authenticated call with it (create,
    /// query, list) is answered with the vendor's documented access-denied refusal (HTTP 403;
    /// see the crate docs for each body) and counted as rejection `forbidden`. Default `false`.
    #[serde(default)]
    pub forbidden: bool,
}

fn default_balance() -> f64 {
    1e9
}

impl KeyConfig {
    /// A key with no limits and the default balance.
    pub fn new(key: impl Into<String>) -> KeyConfig {
        KeyConfig {
            key: SecretString::from(key.into()),
            alias: None,
            balance: default_balance(),
            rate_per_sec: None,
            query_rate_per_sec: None,
            max_concurrent: None,
            spend_cap_hourly: None,
            spend_cap_daily: None,
            spend_cap_total: None,
            forbidden: false,
        }
    }

    /// Sets the alias.
    pub fn alias(mut self, alias: impl Into<String>) -> KeyConfig {
        self.alias = Some(alias.into());
        self
    }

    pub(crate) fn secret(&self) -> &str {
        self.key.expose_secret()
    }
}

/// The documented defaults per vendor (all `[INFERRED]` where VENDORS.md has no number).
#[derive(Debug, Clone, Copy)]
pub struct VendorDefaults {
    /// Seconds pending.
    pub queue_seconds: f64,
    /// Seconds processing per tier.
    pub generation_seconds: Tiered,
    /// Output link lifetime.
    pub output_ttl_seconds: f64,
    /// Price per output second.
    pub price_per_second: Tiered,
}

impl VendorDefaults {
    /// Defaults for `vendor`.
    pub fn of(vendor: Vendor) -> VendorDefaults {
        let generation_seconds = Tiered {
            std: 240.0,
            pro: 300.0,
        };
        let (ttl, price) = match vendor {
            // 24 h links [SEED]; $0.120/0.160 per s = 8.1648/10.88368 credits [FOUND].
            Vendor::Evolink => (
                86_400.0,
                Tiered {
                    std: 8.1648,
                    pro: 10.88368,
                },
            ),
            // Kling keeps outputs 30 days; 0.9/1.2 units per s (≈$0.126/$0.168 at $0.14/unit).
            Vendor::Kkiai => (30.0 * 86_400.0, Tiered { std: 0.9, pro: 1.2 }),
            // 30/40 credits per s [SEED]; links 24 h [FOUND].
            Vendor::Aivideoapi => (
                86_400.0,
                Tiered {
                    std: 30.0,
                    pro: 40.0,
                },
            ),
            // video_url_ttl 3600 [INFERRED]; USD per s [INFERRED].
            Vendor::Highwayapi => (
                3_600.0,
                Tiered {
                    std: 0.10,
                    pro: 0.13,
                },
            ),
            // ≈24 h signed links; credits per s [INFERRED].
            Vendor::Freepik => (
                86_400.0,
                Tiered {
                    std: 25.0,
                    pro: 40.0,
                },
            ),
        };
        VendorDefaults {
            queue_seconds: 15.0,
            generation_seconds,
            output_ttl_seconds: ttl,
            price_per_second: price,
        }
    }
}

/// A vendor section with every default applied.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedVendor {
    pub queue_seconds: f64,
    pub generation_seconds: Tiered,
    pub output_ttl_seconds: f64,
    pub price_per_second: Tiered,
    /// HMAC key bytes (Freepik).
    pub webhook_key: Vec<u8>,
    /// KKIAI new-api wrapping of queries.
    pub wrapped_queries: bool,
    /// KKIAI gateway-style refusals.
    pub gateway_errors: bool,
}

/// Default Freepik webhook secret (`whsec_` + base64 of `motionq-sim-webhook-secret`).
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_bW90aW9ucS1zaW0td2ViaG9vay1zZWNyZXQ=";

/// Decodes a Standard-Webhooks secret: strip `whsec_` and base64-decode; anything that does
/// not decode is used as raw bytes.
pub fn webhook_key_bytes(secret: &str) -> Vec<u8> {
    use base64::Engine;
    let body = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_else(|_| body.as_bytes().to_vec())
}

impl VendorConfig {
    /// A section with the given keys and vendor defaults.
    pub fn with_keys(keys: Vec<KeyConfig>) -> VendorConfig {
        VendorConfig {
            keys,
            ..VendorConfig::default()
        }
    }

    pub(crate) fn resolve(&self, vendor: Vendor) -> ResolvedVendor {
        let d = VendorDefaults::of(vendor);
        ResolvedVendor {
            queue_seconds: self.queue_seconds.unwrap_or(d.queue_seconds),
            generation_seconds: self.generation_seconds.unwrap_or(d.generation_seconds),
            output_ttl_seconds: self.output_ttl_seconds.unwrap_or(d.output_ttl_seconds),
            price_per_second: self.price_per_second.unwrap_or(d.price_per_second),
            wrapped_queries: self.wrapped_queries,
            gateway_errors: self.gateway_errors,
            webhook_key: webhook_key_bytes(
                self.webhook_secret
                    .as_deref()
                    .unwrap_or(DEFAULT_WEBHOOK_SECRET),
            ),
        }
    }
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        let demo = |vendor: Vendor, prefix: &str, concurrent: u32| {
            VendorConfig::with_keys(
                (1..=2)
                    .map(|i| {
                        let mut k = KeyConfig::new(format!("{prefix}demo-{vendor}-{i}"))
                            .alias(format!("{vendor}-{i}"));
                        k.rate_per_sec = Some(5);
                        k.query_rate_per_sec = Some(50);
                        k.max_concurrent = Some(concurrent);
                        k
                    })
                    .collect(),
            )
        };
        SimConfig {
            seed: 42,
            time_scale: 0.01,
            admin_enabled: false,
            allow_private_callbacks: false,
            retry_after: false,
            retry_after_seconds: 1,
            download_digest: true,
            assumed_reference_seconds: 8.0,
            public_base_url: None,
            evolink: demo(Vendor::Evolink, "", 10),
            kkiai: demo(Vendor::Kkiai, "", 10),
            aivideoapi: demo(Vendor::Aivideoapi, "sk-", 10),
            highwayapi: demo(Vendor::Highwayapi, "", 10),
            // Freepik: "up to 3 concurrent requests per user" on older Kling endpoints.
            freepik: demo(Vendor::Freepik, "", 3),
            faults: Faults::default(),
        }
    }
}

impl SimConfig {
    /// Parses a TOML document (see the crate doc for the format).
    pub fn from_toml_str(s: &str) -> Result<SimConfig, ConfigError> {
        let cfg: SimConfig = toml::from_str(s)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses a TOML file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<SimConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        SimConfig::from_toml_str(&text)
    }

    /// A config with no keys anywhere (tests add their own), admin on, private callbacks on.
    pub fn empty() -> SimConfig {
        SimConfig {
            admin_enabled: true,
            allow_private_callbacks: true,
            evolink: VendorConfig::default(),
            kkiai: VendorConfig::default(),
            aivideoapi: VendorConfig::default(),
            highwayapi: VendorConfig::default(),
            freepik: VendorConfig::default(),
            ..SimConfig::default()
        }
    }

    /// The section of `vendor`.
    pub fn vendor(&self, vendor: Vendor) -> &VendorConfig {
        match vendor {
            Vendor::Evolink => &self.evolink,
            Vendor::Kkiai => &self.kkiai,
            Vendor::Aivideoapi => &self.aivideoapi,
            Vendor::Highwayapi => &self.highwayapi,
            Vendor::Freepik => &self.freepik,
        }
    }

    /// Mutable section of `vendor`.
    pub fn vendor_mut(&mut self, vendor: Vendor) -> &mut VendorConfig {
        match vendor {
            Vendor::Evolink => &mut self.evolink,
            Vendor::Kkiai => &mut self.kkiai,
            Vendor::Aivideoapi => &mut self.aivideoapi,
            Vendor::Highwayapi => &mut self.highwayapi,
            Vendor::Freepik => &mut self.freepik,
        }
    }

    /// Checks ranges; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return bad(format!("time_scale must be > 0, got {}", self.time_scale));
        }
        if !self.assumed_reference_seconds.is_finite() || self.assumed_reference_seconds <= 0.0 {
            return bad("assumed_reference_seconds must be > 0".into());
        }
        for v in Vendor::ALL {
            let section = self.vendor(v);
            let mut seen = std::collections::HashSet::new();
            let mut aliases = std::collections::HashSet::new();
            for (i, k) in section.keys.iter().enumerate() {
                if k.secret().is_empty() {
                    return bad(format!("{v}.keys[{i}].key is empty"));
                }
                if !seen.insert(k.secret().to_string()) {
                    return bad(format!("{v}.keys[{i}].key is listed twice"));
                }
                let alias = k.alias.clone().unwrap_or_else(|| format!("key-{}", i + 1));
                if alias == k.secret() {
                    return bad(format!("{v}.keys[{i}].alias must not be the key itself"));
                }
                if !aliases.insert(alias) {
                    return bad(format!("{v}.keys[{i}].alias is not unique"));
                }
                if !(k.balance.is_finite()) {
                    return bad(format!("{v}.keys[{i}].balance must be a number"));
                }
            }
            if let Some(t) = &section.price_per_second {
                if t.std < 0.0 || t.pro < 0.0 {
                    return bad(format!("{v}.price_per_second must be >= 0"));
                }
            }
        }
        self.faults.validate().map_err(ConfigError::Invalid)
    }
}
