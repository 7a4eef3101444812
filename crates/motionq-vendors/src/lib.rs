//! Vendor adapters: one trait, [`VendorAdapter`], and one folder per vendor selling Kling V3
//! Motion Control (EvoLink, KKIAI, AI Video API, HighwayAPI, Freepik). An adapter *translates*:
//! it builds the vendor's HTTP request from motionq's vendor-neutral [`motionq_core::JobSpec`],
//! parses the vendor's answers and callbacks, and classifies every error into an
//! [`motionq_core::ErrorClass`] from the vendor's own codes. It never retries, sleeps, limits,
//! accounts spend or counts metrics: shared layers do that, identically for every vendor.
//! [`VendorClient`] is the thin async executor (one HTTP call per method).
//!
//! # Layout
//!
//! ```text
//! src/lib.rs            this documentation, re-exports
//! src/adapter.rs        the trait (with its # Contract), CreateContext, TaskRef, Created,
//!                       TaskState/TaskStatus, CallbackEvent, FindOutcome, adapter_for()
//! src/http.rs           HttpRequestSpec (a request as data) and AuthScheme (Bearer / API-key header)
//! src/error.rs          AdapterError (job rejected before sending) and VendorError (classified)
//! src/client.rs         VendorClient + HttpOptions: reqwest/rustls, pooled, env proxies
//! src/common.rs         shared: capability checks, lenient JSON decoding, status fallback,
//!                       Retry-After, the task-failure text rule
//! src/<vendor>/mod.rs      module doc with the vendor's docs links; the adapter struct
//! src/<vendor>/wire.rs     serde types exactly as on the wire
//! src/<vendor>/request.rs  build_create / build_query (pure)
//! src/<vendor>/response.rs parse_* and classify_error (pure), with the vendor's error table
//! tests/fixtures/<vendor>/ JSON examples from VENDORS.md and vendor-docs (facts from the docs)
//! tests/conformance.rs     ONE suite over motionq-sim, run for each vendor (capability flags)
//! tests/client.rs          VendorClient over loopback: wire format, timeouts, resets, truncation
//! tests/robustness.rs      property tests (any bytes, vendor-shaped JSON) + every fixture sweep
//! ```
//!
//! Run: `cargo test -p motionq-vendors` (unit tests per vendor module, then the three suites
//! above; the conformance suite starts the simulator in-process on port 0, no external service).
//!
//! # Use
//!
//! ```no_run
//! # async fn demo(job: motionq_core::JobSpec) -> Result<(), Box<dyn std::error::Error>> {
//! use motionq_core::Vendor;
//! use motionq_vendors::{adapter_for, CreateContext, HttpOptions, TaskRef, VendorClient};
//! use secrecy::SecretString;
//!
//! // One pool for the whole process; one client per (vendor, key).
//! let pool = HttpOptions::default().build_client()?;
//! let client = VendorClient::with_http_client(
//!     adapter_for(Vendor::Kkiai).into(),
//!     "https://www.kkiai.com".parse()?,
//!     SecretString::from(std::env::var("KKIAI_KEY")?),
//!     pool,
//! );
//! let ctx = CreateContext { idempotency_key: "campaign-1:job-7:0".into(), callback_url: None };
//! match client.create(&job, &ctx).await {
//!     Ok(created) => {
//!         let state = client.query(&TaskRef { task_id: created.task_id, tier: job.tier }).await?;
//!         println!("{}", state.status.as_str());
//!     }
//!     // Decide by class; reconcile first when the vendor may have created the task anyway
//!     // (timeouts, 5xx, lost answers, and `is_duplicate_submission()`).
//!     Err(e) if e.may_have_created_task() => { /* find_by_idempotency_key, then decide */ }
//!     Err(e) => println!("{} {}", e.class, e.message),
//! }
//! # Ok(()) }
//! ```
//!
//! Webhook receivers call [`VendorAdapter::parse_callback`] (after verifying any signature,
//! which is not done here) and should treat the result as a hint to query the task.
//!
//! # Contract
//!
//! Every adapter obeys the contract written on [`VendorAdapter`]: pure functions; rejection
//! before spending of anything the vendor cannot express ([`AdapterError`], class
//! `invalid_request`, naming the job field); classification on the vendor's own code before the
//! HTTP status; `Retry-After` read on every error; never a panic on any bytes (a bad 2xx body is
//! `upstream_transient`, code `malformed_response`); lenient parsing of every shape VENDORS.md
//! marks INFERRED; adapters never see the API key. The crate's tests enforce it per vendor
//! (unit tests on the docs' examples, property tests on arbitrary bytes, and one conformance
//! suite over the simulator parameterised by capability flags).
//!
//! # Where each vendor's errors are classified
//!
//! | vendor | HTTP errors | task failures | discriminator |
//! |---|---|---|---|
//! | EvoLink | [`evolink::response::classify_error`] | [`evolink::response::classify_task_failure`] | `error.code` (string or int), `error.type` |
//! | KKIAI | [`kkiai::response::classify_error`] ([`kkiai::response::kling_code_class`]) | `task_status_msg` text rule | Kling integer `code` (also inside HTTP 200), gateway `error.code` |
//! | AI Video API | [`aivideoapi::response::classify_error`] | [`aivideoapi::response::classify_task_failure`] | `error.code`, `error.type` |
//! | HighwayAPI | [`highwayapi::response::classify_error`] | `task.reason` text rule | Novita `reason`, then message words |
//! | Freepik | [`freepik::response::classify_error`] ([`freepik::response::classify_429_message`]) | text rule on an optional `error`/`message` | HTTP status; 429 by message words |
//!
//! Shared fallbacks: any 5xx → `upstream_transient` (one exception: AI Video API's 503
//! `upstream_error` whose message names the content → `content_policy`); unknown codes fall back to the status
//! (400 invalid_request, 401 auth, 402 insufficient_funds, 403 forbidden, 404 not_found, 429
//! rate_limited, other 4xx invalid_request, 3xx/1xx upstream_transient). Transport failures in
//! [`VendorClient`] are `upstream_transient` with code `transport_connect` (nothing sent),
//! `transport_timeout`, `transport_body` or `transport_error`.
//!
//! The ambiguous cases, decided on the vendor's own code:
//!
//! | vendor | answer | class |
//! |---|---|---|
//! | KKIAI | 429 `1302` / `1303` | rate_limited |
//! | KKIAI | 429 `1101` | insufficient_funds |
//! | KKIAI | 429 `1102` (resource pack depleted/expired) | quota_exhausted |
//! | KKIAI | 429 `1100`, `1304` | forbidden |
//! | HighwayAPI | 403 `NOT_ENOUGH_BALANCE` / `ACCESS_DENY` / `INVALID_API_KEY` | insufficient_funds / forbidden / auth |
//! | AI Video API | 429 `spend_limit_exceeded` / `rate_limit_exceeded` | quota_exhausted / rate_limited |
//! | EvoLink | 402 | insufficient_funds |
//! | AI Video API | 503 `upstream_error` (message about the content · otherwise) | content_policy · upstream_transient |
//! | Freepik | 429 "credit…"/"balance…" · "daily…"/"quota…"/"usage…"/a non-rate "limit" · else | insufficient_funds · quota_exhausted · rate_limited |
//!
//! **Task failures without a known code** (the "text rule", `common::task_failure_class_from_text`):
//! moderation words (`content`, `policy`, `sensitive`, `risk`, …) → `content_policy`; words of a
//! vendor-side problem (`timeout`, `internal`, `service`, `unavailable`, `busy`, `try again`, …)
//! → `upstream_transient`; anything else, including no reason at all → `content_policy`
//! (VENDORS.md §6.4 maps a plain failed task to content_policy; terminal, so an unexplained
//! failure is not paid for again automatically).
//!
//! # Status mapping (VENDORS.md §6.2) and outputs (§6.3)
//!
//! | vendor | pending | processing | completed | failed | output URL | link lifetime |
//! |---|---|---|---|---|---|---|
//! | EvoLink | `pending` | `processing` | `completed` | `failed` | `results[0]`, else `result_data[].video_url` | 24 h |
//! | KKIAI | `submitted` | `processing` | `succeed` | `failed` | `data.task_result.videos[0].url` | 30 days |
//! | AI Video API | `pending` | `processing` | `completed` | `failed` | `output.urls[0]` | 24 h |
//! | HighwayAPI | `TASK_STATUS_QUEUED`, `_UNKNOWN` | `_PROCESSING` | `_SUCCEED` | `_FAILED` | `videos[0].video_url` | `video_url_ttl` s (default 3600) |
//! | Freepik | `CREATED` | `IN_PROGRESS` | `COMPLETED` | `FAILED` | `data.generated[0]` | 24 h (inferred) |
//!
//! Progress is reported by EvoLink (`progress`), AI Video API (`progress`, often null) and
//! HighwayAPI (`progress_percent`). Charges: KKIAI `final_unit_deduction` →
//! `vendor_charge`, Kling `duration` / EvoLink `result_data[].duration` or
//! `task_info.video_duration` → `billed_seconds`. An unknown status string is an
//! `upstream_transient` error (code `unknown_status`), never guessed.
//!
//! # What each vendor cannot express (rejected by `build_create`, nothing sent)
//!
//! | vendor | base64 image | `negative_prompt` | `keep_sound` | `cfg_scale` | WEBP image | WEBM/M4V video | callbacks | lookup after a lost answer |
//! |---|---|---|---|---|---|---|---|---|
//! | EvoLink | ✗ | ✗ | ✓ `model_params.keep_sound` | ✗ | ✗ | ✗ | ✓ | none (callback only) |
//! | KKIAI | ✓ (raw) | ✗ | ✓ `"yes"`/`"no"` | ✗ | ✗ | ✗ | ✓ | `external_task_id` (exact) |
//! | AI Video API | ✗ | ✗ | ✗ | ✗ | ✗ | ✗ | ✓ | none (callback only) |
//! | HighwayAPI | ✓ (raw) | ✓ | ✓ boolean | ✗ | ✗ | ✗ | ✗ (polled; `callback_url` ignored) | none |
//! | Freepik | ✗ | ✗ | ✗ | ✓ 0..=1 | ✓ | ✓ | ✓ `webhook_url` | tier task list (candidates) |
//!
//! Also rejected for every vendor: a prompt or negative prompt over 2,500 characters, a video
//! that is not an http(s) URL, image/video extensions no vendor takes (`.gif`, `.mkv`, …), and a
//! known reference length under 3 s, over 30 s, or over 10 s in `image` orientation where the
//! vendor rejects it (EvoLink, KKIAI, Freepik; AI Video API and HighwayAPI cap the output
//! instead). `keep_sound: Some(_)` is refused where the API has no sound flag, because whether
//! the audio is kept there is undocumented. Blank prompts count as absent. Media are not
//! downloaded here (size, pixels and duration probing belong to `motionq-probe`).
//!
//! # Operator notes
//!
//! * Keys are [`secrecy::SecretString`]; auth headers are marked sensitive; `Debug` of every type
//!   here omits the key, and [`VendorClient`] scrubs the key from any vendor message that echoes
//!   it.
//! * Proxies: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` from the environment are honoured.
//! * Redirects are not followed (a 3xx is `upstream_transient`); answers over
//!   [`MAX_RESPONSE_BYTES`] are refused.
//! * Base URLs may carry a path prefix (`http://sim:8089/kkiai`); request paths are appended.

pub mod adapter;
mod client;
mod common;
pub mod error;
pub mod http;

pub mod aivideoapi;
pub mod evolink;
pub mod freepik;
pub mod highwayapi;
pub mod kkiai;

pub use adapter::{
    adapter_for, CallbackEvent, CreateContext, Created, FindOutcome, ListedTask, TaskRef,
    TaskState, TaskStatus, VendorAdapter,
};
pub use client::{ClientBuildError, HttpOptions, RawResponse, VendorClient, MAX_RESPONSE_BYTES};
pub use error::{AdapterError, VendorError, DUPLICATE_SUBMISSION};
pub use http::{AuthScheme, HttpRequestSpec};
