//! One module per vendor: auth header, request parsing and validation, error bodies, response,
//! query and callback bodies, task id format. Everything else (limits, billing, lifecycle) is
//! shared and lives outside.

pub(crate) mod aivideoapi;
pub(crate) mod evolink;
pub(crate) mod freepik;
pub(crate) mod highwayapi;
pub(crate) mod kkiai;

use crate::error::ApiError;
use crate::media::MediaRules;
use crate::model::{ParsedCreate, TaskView};
use crate::vendor::{Tier, Vendor};
use axum::http::{HeaderMap, StatusCode};
use rand::Rng;
use serde_json::Value;
use std::time::Duration;

/// A callback to send for a status change.
#[derive(Debug, Clone)]
pub(crate) struct CallbackBody {
    pub body: Value,
    /// Extra headers besides `Content-Type: application/json` (signatures are added per attempt).
    pub headers: Vec<(String, String)>,
}

/// How a vendor delivers callbacks.
#[derive(Debug, Clone)]
pub(crate) struct CallbackPolicy {
    /// Delays (unscaled) before each retry after a failed attempt.
    pub retry_delays: Vec<Duration>,
    /// Per-attempt timeout (real time).
    pub timeout: Duration,
    /// Standard-Webhooks signing (Freepik).
    pub signed: bool,
}

/// `Authorization: Bearer <key>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = rest.trim();
    (!key.is_empty()).then(|| key.to_string())
}

/// Extracts the API key the way `vendor` expects it.
pub(crate) fn auth(vendor: Vendor, headers: &HeaderMap) -> Result<String, ApiError> {
    match vendor {
        Vendor::Evolink | Vendor::Kkiai | Vendor::Highwayapi => {
            bearer(headers).ok_or(ApiError::MissingKey)
        }
        Vendor::Aivideoapi => aivideoapi::auth(headers),
        Vendor::Freepik => freepik::auth(headers),
    }
}

/// Renders an error the vendor's way.
pub(crate) fn error(vendor: Vendor, e: &ApiError) -> (StatusCode, Value) {
    match vendor {
        Vendor::Evolink => evolink::error(e),
        Vendor::Kkiai => kkiai::error(e),
        Vendor::Aivideoapi => aivideoapi::error(e),
        Vendor::Highwayapi => highwayapi::error(e),
        Vendor::Freepik => freepik::error(e),
    }
}

/// Parses a create body. `path_tier` is Freepik's tier from the path.
pub(crate) fn parse_create(
    vendor: Vendor,
    headers: &HeaderMap,
    body: &[u8],
    path_tier: Option<Tier>,
) -> Result<ParsedCreate, ApiError> {
    match vendor {
        Vendor::Evolink => evolink::parse_create(body),
        Vendor::Kkiai => kkiai::parse_create(body),
        Vendor::Aivideoapi => aivideoapi::parse_create(body),
        Vendor::Highwayapi => highwayapi::parse_create(headers, body),
        Vendor::Freepik => freepik::parse_create(body, path_tier.unwrap_or(Tier::Std)),
    }
}

/// The vendor's media limits.
pub(crate) fn rules(vendor: Vendor) -> MediaRules {
    match vendor {
        Vendor::Evolink => evolink::rules(),
        Vendor::Kkiai => kkiai::rules(),
        Vendor::Aivideoapi => aivideoapi::rules(),
        Vendor::Highwayapi => highwayapi::rules(),
        Vendor::Freepik => freepik::rules(),
    }
}

/// The create answer (HTTP 200).
pub(crate) fn create_body(t: &TaskView) -> Value {
    match t.vendor {
        Vendor::Evolink => evolink::task_body(t),
        Vendor::Kkiai => kkiai::create_body(t),
        Vendor::Aivideoapi => aivideoapi::create_body(t),
        Vendor::Highwayapi => highwayapi::create_body(t),
        Vendor::Freepik => freepik::create_body(t),
    }
}

/// The query answer (HTTP 200).
pub(crate) fn query_body(t: &TaskView) -> Value {
    match t.vendor {
        Vendor::Evolink => evolink::task_body(t),
        Vendor::Kkiai => kkiai::query_body(t),
        Vendor::Aivideoapi => aivideoapi::task_body(t),
        Vendor::Highwayapi => highwayapi::query_body(t),
        Vendor::Freepik => freepik::query_body(t),
    }
}

/// The callback for the task's current status, if the vendor sends one for it.
pub(crate) fn callback(t: &TaskView) -> Option<CallbackBody> {
    match t.vendor {
        Vendor::Evolink => evolink::callback(t),
        Vendor::Kkiai => kkiai::callback(t),
        Vendor::Aivideoapi => aivideoapi::callback(t),
        Vendor::Highwayapi => None,
        Vendor::Freepik => freepik::callback(t),
    }
}

/// Delivery policy per vendor (VENDORS.md 6.1).
pub(crate) fn callback_policy(vendor: Vendor) -> CallbackPolicy {
    let s = Duration::from_secs;
    match vendor {
        // 10 s timeout; up to 3 retries at 1/2/4 s after a failure [SEED].
        Vendor::Evolink => CallbackPolicy {
            retry_delays: vec![s(1), s(2), s(4)],
            timeout: s(10),
            signed: false,
        },
        // Undocumented [INFERRED: best effort, ~3 tries].
        Vendor::Kkiai => CallbackPolicy {
            retry_delays: vec![s(1), s(2)],
            timeout: s(10),
            signed: false,
        },
        // 3 attempts: immediate, +3 min, +10 min; 10 s timeout [SEED+FOUND].
        Vendor::Aivideoapi => CallbackPolicy {
            retry_delays: vec![s(180), s(600)],
            timeout: s(10),
            signed: false,
        },
        Vendor::Highwayapi => CallbackPolicy {
            retry_delays: vec![],
            timeout: s(5),
            signed: false,
        },
        // Svix-style backoff [INFERRED]: 5 s, 5 min, 30 min.
        Vendor::Freepik => CallbackPolicy {
            retry_delays: vec![s(5), s(300), s(1800)],
            timeout: s(15),
            signed: true,
        },
    }
}

/// A new task id in the vendor's format.
pub(crate) fn new_task_id(vendor: Vendor, rng: &mut impl Rng, now_ms: u64) -> String {
    match vendor {
        Vendor::Evolink => {
            const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
            let tail: String = (0..8)
                .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
                .collect();
            format!("task-unified-{}-{tail}", now_ms / 1000)
        }
        // Kling ids are long numeric strings such as 860260753860210752.
        Vendor::Kkiai => format!("8{:017}", rng.random_range(0..100_000_000_000_000_000u64)),
        _ => uuid::Builder::from_random_bytes(rng.random())
            .into_uuid()
            .to_string(),
    }
}

/// Rounds money-like numbers for output so bodies do not show float noise.
pub(crate) fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
