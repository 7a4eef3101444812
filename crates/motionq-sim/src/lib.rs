//! # motionq-sim: the five Kling V3 Motion Control vendors in one process
//!
//! A vendor simulator that serves EvoLink, KKIAI, AI Video API, HighwayAPI and Freepik exactly
//! as `shared/VENDORS.md` documents them: auth, request validation with each vendor's own error
//! bodies, task ids, status progressions, timestamps, real MP4 outputs behind expiring links,
//! callbacks with each vendor's headers, signing and retry schedule, per-key rate /
//! concurrency / spend limits and balances, and scripted, seedable faults. Its **ledger** is
//! the ground truth that motionq's tests, the demo and the benchmarks read instead of
//! trusting motionq's own counters.
//!
//! ## Use
//!
//! Library (tests, benchmarks): start it on a free loopback port and point adapters at
//! [`SimHandle::vendor_base_url`].
//!
//! ```
//! use motionq_sim::{KeyConfig, SimConfig, SimServer, Vendor, VendorConfig};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let mut config = SimConfig::empty(); // no keys; admin and private callbacks on
//! config.time_scale = 0.001; // a 5-minute generation takes 300 ms
//! config.evolink = VendorConfig::with_keys(vec![KeyConfig::new("ev-key").alias("main")]);
//! let sim = SimServer::start(config).await?;
//! assert!(sim.vendor_base_url(Vendor::Evolink).ends_with("/evolink"));
//! let image = sim.media_url("portrait-720x1280.png"); // served by the simulator itself
//! // ... run motionq against it, then read the truth:
//! let ledger = sim.ledger();
//! assert_eq!(ledger.key(Vendor::Evolink, "main").unwrap().creates.len(), 0);
//! # let _ = image;
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Standalone: the `motionq` binary mounts [`SimArgs`] / [`run`] as
//! `motionq sim --listen 127.0.0.1:8089 [--config config/sim.toml] [--admin]`; it serves until
//! Ctrl-C or SIGTERM. Without `--config` it uses [`SimConfig::default`], a ready demo config
//! (two keys per vendor: `demo-evolink-1`, `demo-evolink-2`, `demo-kkiai-1`, ...,
//! `sk-demo-aivideoapi-1`, ...; aliases `evolink-1`, ...). `config/sim.toml` is the demo's file.
//!
//! ## Endpoints
//!
//! Each vendor lives under its own prefix, so an adapter's base URL is `<base>/<vendor>` and
//! colliding vendor paths (EvoLink and AI Video API both have `/v1/videos/generations`) work.
//!
//! | vendor | auth | create | query | other |
//! |---|---|---|---|---|
//! | EvoLink | `Authorization: Bearer` | `POST /evolink/v1/videos/generations` | `GET /evolink/v1/tasks/{id}` (id must start `task-unified-`, else 400 `invalid_task_id`) | |
//! | KKIAI | `Authorization: Bearer` | `POST /kkiai/kling/v1/videos/motion-control` | `GET /kkiai/kling/v1/videos/motion-control/{task_id or external_task_id}` | list `GET /kkiai/kling/v1/videos/motion-control?pageNum=1..1000&pageSize=1..500` |
//! | AI Video API | `Authorization: Bearer sk-…` (other prefixes: 401 `invalid_api_key`) | `POST /aivideoapi/v1/videos/generations` | `GET /aivideoapi/v1/tasks/{id}` | `GET /aivideoapi/v1/credits` |
//! | HighwayAPI | `Authorization: Bearer` (missing: 403 `INVALID_API_KEY`) | `POST /highwayapi/v3/async/kling-v3.0-motion-control` (needs `Content-Type: application/json`) | `GET /highwayapi/v3/async/task-result?task_id=` | |
//! | Freepik | `x-freepik-api-key` or `x-magnific-api-key` | `POST /freepik/v1/ai/video/kling-v3-motion-control-{pro,std}` | `GET /freepik/v1/ai/video/kling-v3-motion-control-{tier}/{id}` (own tier only, else 404) | list `GET /freepik/v1/ai/video/kling-v3-motion-control-{tier}` |
//!
//! Shared endpoints: `GET /media/<name>` (sample inputs, Range/HEAD), `GET /files/<token>.mp4`
//! (outputs, Range/HEAD), `GET /healthz`, `GET /metrics`, and the admin endpoints below.
//! Unknown paths under a vendor prefix get that vendor's 404 body.
//!
//! Wire details per vendor (field names, types, enums, bodies per status, error envelopes) are
//! in the `vendors::*` modules, one per vendor, each citing VENDORS.md. Highlights: KKIAI
//! `keep_original_sound` is `"yes"|"no"` and HighwayAPI's is a boolean; EvoLink's is
//! `model_params.keep_sound`; prompts are limited to 2500 Unicode characters; Kling timestamps
//! are milliseconds, all others seconds; task ids are `task-unified-<secs>-<8 alnum>`
//! (EvoLink), 18-digit numeric strings (KKIAI) and UUIDs (others). A task is visible only to
//! the key that created it.
//!
//! ## Media validation and outputs
//!
//! Inputs are checked against each vendor's documented limits (formats: WEBP only at Freepik;
//! size ≤10 MB image, ≤100 MB video (HighwayAPI 10 MB); image ≥300 px and aspect
//! 1:2.5–2.5:1; video 340–3850 px (EvoLink, KKIAI), 3–30 s). The simulator never fetches
//! other hosts: a URL on its own port with path `/media/<name>` is looked up in
//! `motionq_media`'s sample set (whose recorded width, height, seconds and defects are the
//! truth); base64 images (KKIAI, HighwayAPI) are decoded and measured; any other URL is
//! accepted with `assumed_reference_seconds` (default 8). An unreadable video (e.g.
//! `dance-8s-truncated.mp4`) is a 400 at AI Video API (it probes for billing) and is accepted
//! elsewhere.
//!
//! Sample inputs (`GET /media/<name>`, names from [`SimHandle::media_names`], facts in the
//! `motionq_media` crate doc): `portrait-720x1280.{png,jpg,webp}`, `square-1024x1024.*`,
//! `landscape-1280x720.*` (valid); `small-200x200.*`, `wide-3000x500.*`, `huge-1900x1900.png`
//! (out of limits); `dance-{3,8,10,12}s.mp4`, `dance-{3,8,12}s.mov` (valid), `dance-2s.mp4`,
//! `dance-31s.{mp4,mov}` (too short/long), `dance-8s-moov-end.mp4`,
//! `dance-8s-fragmented.mp4`, `dance-8s-truncated.mp4`, `tiny-320x240-8s.mp4`,
//! `huge-4000x2250-8s.mp4`, and more.
//!
//! Output length (also the billed seconds) follows each vendor's rule: EvoLink/KKIAI reject a
//! reference over 10 s in `image` orientation; AI Video API and Freepik cap the output at 10 s;
//! HighwayAPI outputs exactly 5 s in `image` orientation; `video` orientation outputs the
//! reference length (AI Video API rounds up, the others to nearest). Outputs are real H.264
//! MP4s (`motionq_media::mp4`; std 1280x720, pro 1920x1080), generated once per (seconds,
//! tier) and cached. Their sha256 is in the ledger.
//!
//! A link is made once, when the task completes (queries repeat it, never re-sign it), and
//! lives for the vendor's lifetime × `time_scale` (EvoLink, AI Video API, Freepik 24 h;
//! HighwayAPI 3600 s, reported as `video_url_ttl` in **real** seconds left; KKIAI 30 days).
//! After expiry they answer like the vendor's CDN: 403 XML `AccessDenied` (EvoLink,
//! HighwayAPI, Freepik: presigned object-store URLs), 404 (KKIAI), 410 (AI Video API).
//!
//! ## Lifecycle, time and billing
//!
//! A task is pending for `queue_seconds`, processing for `generation_seconds[tier]`, then
//! completed (or failed), all × `time_scale` (Kling `submitted → processing → succeed`, Novita
//! `TASK_STATUS_*` with `progress_percent`/`eta`, Freepik `CREATED → IN_PROGRESS →
//! COMPLETED`, EvoLink `progress` 0→100). Timestamps in bodies are real Unix time. A prompt
//! containing `sim:content_policy` always fails with the vendor's content-policy failure
//! (`sim:content_policy_reject` makes KKIAI answer 400 code 1301 and AI Video API 503
//! `upstream_error` at create, as those vendors can; the others fail the task);
//! `faults.<vendor>.content_policy` fails a random (seeded) fraction.
//! `faults.<vendor>.task_failure` fails a random (seeded) fraction of the other tasks for the
//! vendor's own reasons (refunded), with each vendor's retryable failure: EvoLink
//! `error.code = "service_error"`, AI Video API `error.code = "internal_error"`, KKIAI
//! `task_status_msg` and HighwayAPI `reason` saying "internal error … please try again";
//! Freepik documents no failure reason, so its `FAILED` body is the same for both kinds.
//!
//! Billing (VENDORS.md 6.5): prices are per second of the tier, in the vendor's unit. At
//! create the worst case, the reference length, is pre-charged (this is what balance and caps
//! are checked against); on completion the charge settles to the output length (the difference
//! goes back, e.g. HighwayAPI `image` mode bills 5 s, AI Video API / Freepik cap at 10 s); on
//! failure everything is refunded. Kling's `final_unit_deduction` shows the settled charge. Before a create is accepted, in this order: key access
//! (`forbidden`, below), create rate
//! (accepted calls per sliding 1 s window, real time), request validation, media, callback URL,
//! KKIAI duplicate `external_task_id`, in-flight limit, balance, spend caps (net spend in the
//! last scaled hour / day / ever). Each refusal uses the vendor's own answer:
//!
//! | refusal | EvoLink | KKIAI | AI Video API | HighwayAPI | Freepik |
//! |---|---|---|---|---|---|
//! | rate | 429 `rate_limit_exceeded` | 429 code 1302 | 429 `rate_limit_exceeded` | 429 `RATE_LIMIT_EXCEEDED` | 429 `{message}` |
//! | in flight | 429 `rate_limit_exceeded` | 429 code 1303 | 429 `rate_limit_exceeded` | 429 `RATE_LIMIT_EXCEEDED` | 429 `{message}` |
//! | balance | 402 `insufficient_quota` | 429 code 1102 | 402 `insufficient_credits` | 403 `NOT_ENOUGH_BALANCE` | 429 `{message}` |
//! | spend cap | 402 `insufficient_quota` | 429 code 1102 | 429 `spend_limit_exceeded` (`billing_error`) | 403 `NOT_ENOUGH_BALANCE` | 429 `{message}` ("… limit …") |
//! | access denied (`forbidden`) | 403 `model_access_denied` (`invalid_request_error`) | 403 code 1103 | 403 `ip_not_allowed` (`permission_error`) | 403 `ACCESS_DENY` | 403 `{"message":"Forbidden"}` |
//!
//! **Access denied**: a key with `forbidden = true` ([`KeyConfig::forbidden`]) stands for an
//! account the vendor does not allow the model or API (or a call from outside the key's IP
//! allowlist). Every authenticated call with it, create, query and list alike, is answered with
//! the vendor's documented access-denied refusal above, before any other check, and counted as
//! rejection `forbidden`; nothing is created or charged. Codes and statuses are VENDORS.md's
//! (EvoLink and AI Video API `{"error":{code,message,type}}`, Kling `{code,message,request_id}`,
//! Novita `{code,reason,message,metadata}`, Freepik `{message}`); only AI Video API documents
//! the message too. **INFERRED**: the message texts of EvoLink, KKIAI, HighwayAPI and Freepik,
//! HighwayAPI's body shape (as for all its errors), and which one of a vendor's several
//! access refusals a denied key gets (EvoLink also has `permission_denied`, Kling also 1100
//! and 1304 with HTTP 429). With `gateway_errors` KKIAI still answers Kling's 1103 (the
//! gateway's own envelope covers auth, wallet and rate only).
//!
//! `Retry-After` is added to 429/503 answers only with `retry_after = true`.
//!
//! ## Callbacks
//!
//! Sent to the create's callback URL (`callback_url`, Freepik `webhook_url`; HighwayAPI has
//! none): EvoLink once on the terminal status after billing (retries 1/2/4 s, 10 s timeout);
//! KKIAI on every status change including `submitted` (Kling callback body, no
//! `watermark_url`; retries 1/2 s); AI Video API on the terminal status with `X-Event`
//! (`task.completed|task.failed`), `X-Task-Id`, `X-Timestamp` (attempts at 0, +3 min, +10 min);
//! Freepik on `IN_PROGRESS` and the terminal status, body without the `data` wrapper, signed
//! Standard-Webhooks style (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
//! HMAC-SHA256(key, "{id}.{ts}.{body}")>`, key = the base64-decoded `whsec_` secret, default
//! [`DEFAULT_WEBHOOK_SECRET`]; retries 5 s, 5 min, 30 min). Retry delays are scaled; any 2xx
//! is success. Callback URLs must be HTTPS and not private/loopback (else the vendor's 400)
//! unless `allow_private_callbacks = true` (hostnames are not resolved).
//!
//! ## Configuration (TOML)
//!
//! Every field is optional; [`SimConfig`] documents each. Unknown fields are errors that name
//! the field. Vendor sections take `queue_seconds`, `generation_seconds = { std, pro }`,
//! `output_ttl_seconds`, `price_per_second = { std, pro }` (defaults in [`VendorDefaults`]),
//! `webhook_secret` (Freepik), `wrapped_queries` (KKIAI: answer queries in the new-api gateway
//! wrapping that VENDORS.md 2.3 names as an alternative), `gateway_errors` (KKIAI: auth,
//! wallet and gateway rate-limit refusals in the OpenAI-style `{"error":{…}}` envelope of
//! VENDORS.md 2.5 instead of Kling's codes) and `[[<vendor>.keys]]` with `key`, `alias`, `balance`,
//! `rate_per_sec`, `query_rate_per_sec`, `max_concurrent`, `spend_cap_hourly`,
//! `spend_cap_daily`, `spend_cap_total`, `forbidden` (access denied, above).
//!
//! ```
//! let config = motionq_sim::SimConfig::from_toml_str(r#"
//! seed = 7
//! time_scale = 0.001
//! admin_enabled = true
//! allow_private_callbacks = true
//!
//! [aivideoapi]
//! generation_seconds = { std = 120, pro = 180 }
//! [[aivideoapi.keys]]
//! key = "sk-test-1"
//! alias = "main"
//! balance = 10000
//! rate_per_sec = 5
//! max_concurrent = 3
//! spend_cap_hourly = 2000
//! [[aivideoapi.keys]]
//! key = "sk-test-denied"
//! alias = "denied"
//! forbidden = true
//!
//! [faults.aivideoapi]
//! content_policy = 0.1
//! [faults.aivideoapi.create]
//! rate_limited = 0.05
//! error_503 = 0.02
//! storms = [{ from_secs = 30, to_secs = 40, status = 429 }]
//! [faults.aivideoapi.download]
//! truncated_download = 0.01
//! [faults.aivideoapi.callback]
//! duplicate = 0.2
//! "#).unwrap();
//! assert_eq!(config.aivideoapi.keys.len(), 2);
//! assert!(config.aivideoapi.keys[1].forbidden);
//! ```
//!
//! ## Faults
//!
//! `[faults.<vendor>]` has `content_policy`, `task_failure` and sections `create`, `query`,
//! `download` ([`EndpointFaults`]) and `callback` ([`CallbackFaults`]). Per call: `rate_limited`,
//! `error_500`, `error_503` (the vendor's bodies; CDN-style plain answers for downloads),
//! `hang` (held `hang_ms`, then dropped), `reset` (connection closed without a response) are
//! drawn before processing, so nothing is created; `slow` delays by `slow_ms`;
//! `reset_mid_body`, `malformed_json`, `truncated_json` damage the answer **after** processing
//! (the create was accepted and charged). Downloads also have `truncated_download`,
//! `corrupted_download` (64 bytes flipped mid-file, length intact; the `Repr-Digest` header
//! still describes the real file), `expire_early` (+ `expire_early_factor`). Output downloads
//! announce `Repr-Digest: sha-256=:…:` of the file unless `download_digest = false` (no vendor
//! documents a digest; object stores and CDNs often send one). `storms` are windows in real
//! seconds since the faults were applied in which every call gets `status`. Callbacks have
//! `drop` and `duplicate`. The n-th call to a vendor's endpoint draws from an RNG seeded with
//! `(seed, vendor, endpoint, n)`, and the n-th task's content-policy and early-expiry draws
//! likewise, so a run repeats exactly with the same seed and the same call sequence.
//! Change faults at runtime with `PUT /_sim/faults` (JSON, or TOML with a `toml` content type)
//! or [`SimHandle::set_faults`]; this restarts storm windows and call counters.
//!
//! ## Admin endpoints (only with `admin_enabled` / `--admin`; 404 otherwise)
//!
//! - `GET /_sim/ledger`: the [`Ledger`] as JSON (deserializes into [`Ledger`]).
//! - `GET /_sim/faults`, `PUT /_sim/faults`: read / replace the faults (400 names a bad field).
//! - `POST /_sim/reset`: clear tasks, links and the ledger, restore balances (the RNG is not
//!   rewound, so ids are never reused).
//! - `GET /_sim/tasks/{vendor}/{id}`: internal view of one task (key alias, fate, charge,
//!   output sha256, link lifetime left).
//!
//! ## Ledger
//!
//! Per vendor: `auth_failures`, `faults_injected` (`<endpoint>.<kind>`), callback counts
//! (`planned`, `attempts`, `delivered`, `failed_attempts`, `given_up`, `dropped`,
//! `duplicated`). Per key alias ([`KeyLedger`]): `initial_balance`, `balance`, `charged`,
//! `refunded`, `spend` (last hour / day / total, net of refunds), `creates` (every accepted
//! create: Unix ms, task id, fingerprint = sha256 of image, video, prompt and idempotency key
//! (KKIAI `external_task_id`, else the callback URL), duplicate flag, tier, reference and
//! output seconds, charge, status, output sha256), `duplicates`, `rejections` by kind
//! (`rate_limit`, `query_rate_limit`, `concurrency`, `insufficient_balance`, `spend_cap`,
//! `invalid_request`, `not_found`, `duplicate_external_task_id`, `forbidden`), `queries`, `in_flight`,
//! `max_in_flight`, `completed`, `failed`, `charges` (pre-charge / settle / refund) and
//! `downloads` (count, bytes, per task: count, bytes, sha256 of the correct file, damaged).
//! [`KeyLedger::max_creates_in_window`] gives the most creates in any sliding window.
//! `GET /metrics` exports the same as Prometheus metrics prefixed `motionq_sim_` with labels
//! `vendor`, `key` (alias), and small fixed sets (`kind`, `endpoint`, `outcome`). Keys never
//! appear in the ledger, metrics, logs or `Debug` output.
//!
//! ## Module layout
//!
//! - `vendors/`: one module per vendor (wire shapes, validation, error bodies, callback
//!   bodies, id format); `vendors/mod.rs` dispatches and holds the callback policies.
//! - `engine`: keys, limits, billing, the task store and lifecycle, links, the ledger.
//! - `routes`: the axum router and the shared create/query/download flows.
//! - `server`: [`SimServer`], [`SimHandle`], the accept loop (own loop so a fault can drop a
//!   connection without answering).
//! - `media`: sample lookup, per-vendor media rules, output cache. `http`: Range, HEAD,
//!   damaged bodies. `faults`, `callbacks`, `ledger`, `metrics`, `config`, `clock`, `json`
//!   (typed body fields with vendor-neutral errors), `error`, `model`, `vendor`.
//!
//! ## Known simplifications
//!
//! Everything marked `[INFERRED]` in VENDORS.md is implemented as described there and may differ
//! from the real vendor. Generation time does not depend on output length. Callback retries of
//! KKIAI and Freepik are guesses. Hostnames in callback URLs are not resolved for the
//! private-address check. One process holds all state in memory (no persistence).

#![warn(missing_docs)]

mod callbacks;
mod clock;
mod config;
mod engine;
mod error;
mod faults;
mod http;
mod json;
mod ledger;
mod media;
mod metrics;
mod model;
mod routes;
mod server;
mod spend;
mod vendor;
mod vendors;

pub use callbacks::standard_webhook_signature;
pub use clock::now_ms;
pub use config::{
    webhook_key_bytes, ConfigError, KeyConfig, SimConfig, Tiered, VendorConfig, VendorDefaults,
    DEFAULT_WEBHOOK_SECRET,
};
pub use faults::{CallbackFaults, EndpointFaults, Faults, Storm, VendorFaults};
pub use ledger::{
    CallbackLedger, ChargeKind, ChargeRecord, CreateRecord, DownloadLedger, KeyLedger, Ledger,
    SpendWindows, TaskDownloads, VendorLedger,
};
pub use server::{SimError, SimHandle, SimServer};
pub use vendor::{Endpoint, Orientation, Status, Tier, Vendor};

use std::net::SocketAddr;
use std::path::PathBuf;

/// Command-line arguments of `motionq sim` (mount with `#[command(subcommand)]` /
/// `Sim(SimArgs)`).
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub listen: SocketAddr,
    /// TOML config file (default: the built-in demo config).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Enable the `/_sim/*` admin endpoints (ledger, faults, reset).
    #[arg(long)]
    pub admin: bool,
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => SimConfig::from_toml_file(path)?,
        None => SimConfig::default(),
    };
    if args.admin {
        config.admin_enabled = true;
    }
    let handle = SimServer::start_on(args.listen, config).await?;
    println!("motionq-sim listening on {}", handle.base_url());
    for v in Vendor::ALL {
        println!("  {:<11} {}", v.as_str(), handle.vendor_base_url(v));
    }
    wait_for_signal().await;
    handle.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
