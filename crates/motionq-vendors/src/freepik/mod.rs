//! Freepik API, now "Magnific" (`https://api.freepik.com`), Kling 3 Motion Control.
//!
//! Docs: <https://docs.freepik.com/api-reference/video/kling-v3-motion-control/overview> (seed in
//! `shared/vendor-docs/freepik.txt`), auth <https://docs.freepik.com/authentication>, rate limits
//! <https://docs.freepik.com/ratelimits>; summary in `shared/VENDORS.md` §5.
//!
//! * The tier is the path: `POST /v1/ai/video/kling-v3-motion-control-{pro|std}` with
//!   `image_url`, `video_url`, `prompt`, `character_orientation`, `cfg_scale`, `webhook_url`.
//! * Query `GET …-{tier}/{task-id}` (a task only exists on its own tier's endpoint, hence
//!   [`crate::TaskRef::tier`]); list `GET …-{tier}` is the reconciliation tool.
//!   Only the list's first page is read (pagination is not documented): reconcile soon after a
//!   crash, while the lost task is among the most recent.
//! * Auth header `x-freepik-api-key` (not Bearer).
//! * Webhooks POST the query body without the `data` wrapper; their Standard-Webhooks signature is
//!   verified elsewhere.
//! * Errors are `{"message"}` only: one 429 for per-second limits, daily caps and (inferred) empty
//!   credits, told apart by the message ([`response::classify_error`]).
//! * Cannot express: base64 images, `keep_sound`, `negative_prompt`.

pub mod request;
pub mod response;
pub mod wire;

use motionq_core::{JobSpec, Tier, Vendor};
use reqwest::header::HeaderMap;

use crate::adapter::{
    CallbackEvent, CreateContext, Created, FindOutcome, TaskRef, TaskState, VendorAdapter,
};
use crate::error::{AdapterError, VendorError};
use crate::http::HttpRequestSpec;

/// The Freepik adapter (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct FreepikAdapter;

impl VendorAdapter for FreepikAdapter {
    fn vendor(&self) -> Vendor {
        Vendor::Freepik
    }

    fn build_create(
        &self,
        job: &JobSpec,
        ctx: &CreateContext,
    ) -> Result<HttpRequestSpec, AdapterError> {
        request::build_create(job, ctx)
    }

    fn parse_create(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Created, VendorError> {
        response::parse_create(status, headers, body)
    }

    fn build_query(&self, task: &TaskRef) -> HttpRequestSpec {
        request::build_query(task)
    }

    fn parse_query(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<TaskState, VendorError> {
        response::parse_query(status, headers, body)
    }

    /// Freepik keeps no key of ours: the lookup is the tier's task list.
    fn build_find_by_idempotency_key(
        &self,
        _idempotency_key: &str,
        tier: Tier,
    ) -> Option<HttpRequestSpec> {
        Some(request::build_list(tier))
    }

    fn parse_find(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<FindOutcome, VendorError> {
        response::parse_list(status, headers, body)
    }

    fn parse_callback(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<CallbackEvent, VendorError> {
        response::parse_callback(headers, body)
    }
}
