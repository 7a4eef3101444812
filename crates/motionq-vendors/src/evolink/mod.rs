//! EvoLink unified API (`https://api.evolink.ai`), Kling V3 Motion Control.
//!
//! Docs: <https://docs.evolink.ai/en/api-manual/video-series/kling/kling-v3-motion-control>
//! (task query: <https://docs.evolink.ai/en/api-manual/task-management/get-task-detail>, task error
//! codes: <https://docs.evolink.ai/en/api-manual/task-management/error-codes>); contract summary in
//! `shared/VENDORS.md` §1 and `shared/vendor-docs/evolink.txt`.
//!
//! * Create `POST /v1/videos/generations` with `image_urls`/`video_urls` (one each), `quality`
//!   `720p`/`1080p`, `model_params.character_orientation` and `model_params.keep_sound`.
//! * Query `GET /v1/tasks/{id}`; callbacks POST the same body.
//! * Errors: `{"error":{"code","message","type"}}`, `code` a string (older specs: an int equal
//!   to the HTTP status); classified in [`response::classify_error`], task failures in
//!   [`response::classify_task_failure`].
//! * `callback_url` must be HTTPS, public and ≤ 2048 characters at EvoLink; only the length is
//!   checked here (a test simulator may accept plain-HTTP loopback URLs), the vendor answers 400
//!   for the rest, which costs nothing.
//! * Cannot express: base64 images, WEBP/WEBM/M4V, `negative_prompt`, `cfg_scale`; no lookup by
//!   idempotency key (reconcile via callbacks).

pub mod request;
pub mod response;
pub mod wire;

use motionq_core::{JobSpec, Vendor};
use reqwest::header::HeaderMap;

use crate::adapter::{CallbackEvent, CreateContext, Created, TaskRef, TaskState, VendorAdapter};
use crate::error::{AdapterError, VendorError};
use crate::http::HttpRequestSpec;

/// The EvoLink adapter (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct EvolinkAdapter;

impl VendorAdapter for EvolinkAdapter {
    fn vendor(&self) -> Vendor {
        Vendor::Evolink
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

    fn parse_callback(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<CallbackEvent, VendorError> {
        response::parse_callback(headers, body)
    }
}
