//! KKIAI (`https://www.kkiai.com`), a pass-through of Kling's official API under `/kling`.
//!
//! Docs: `docs.kkiai.com/Other-Model-APIs/kling-platform-api/...` (create only, see
//! `shared/vendor-docs/kkiai.txt`); query, callbacks and error codes follow Kling's official
//! contract (<https://klingai.com/document-api>); summary in `shared/VENDORS.md` §2.
//!
//! * Create `POST /kling/v1/videos/motion-control` with `model_name: "kling-v3"`, `mode`
//!   `std`/`pro`, `keep_original_sound` `"yes"`/`"no"` (strings), and always our
//!   `external_task_id` (the idempotency key).
//! * Query `GET /kling/v1/videos/motion-control/{id}`; the same path accepts the
//!   `external_task_id`, which is how a task whose create answer was lost is found again.
//! * Answers use Kling's envelope `{"code":0,"message","request_id","data":{...}}`; a gateway may
//!   wrap queries (`data.data.data.task_status`): both are read.
//! * Errors: Kling's integer `code` decides (HTTP 429 carries both rate limits and empty
//!   wallets); see [`response::classify_error`].
//! * Cannot express: `negative_prompt`, `cfg_scale`, WEBP images, WEBM/M4V videos.

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

/// The KKIAI adapter (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct KkiaiAdapter;

impl VendorAdapter for KkiaiAdapter {
    fn vendor(&self) -> Vendor {
        Vendor::Kkiai
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
        request::build_query(&task.task_id)
    }

    fn parse_query(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<TaskState, VendorError> {
        response::parse_query(status, headers, body)
    }

    fn build_find_by_idempotency_key(
        &self,
        idempotency_key: &str,
        _tier: Tier,
    ) -> Option<HttpRequestSpec> {
        Some(request::build_query(idempotency_key))
    }

    fn parse_find(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<FindOutcome, VendorError> {
        response::parse_find(status, headers, body)
    }

    fn parse_callback(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<CallbackEvent, VendorError> {
        response::parse_callback(headers, body)
    }
}
