//! HighwayAPI (`https://api.highwayapi.ai`), a white label of Novita AI's v3 async API.
//!
//! Docs: <https://docs.jiekou.ai/en/docs/models/reference-kling-v3.0-motion-control> (= the seed
//! in `shared/vendor-docs/highwayapi.txt`), task result
//! <https://novita.ai/docs/api-reference/model-apis-task-result>, errors
//! <https://novita.ai/docs/guides/error>; summary in `shared/VENDORS.md` §4.
//!
//! * Create `POST /v3/async/kling-v3.0-motion-control` with `image` (URL or base64), `video`,
//!   `model_name` `kling-v3-0-std`/`kling-v3-0-pro`, boolean `keep_original_sound`,
//!   `negative_prompt`; answer `{"task_id"}`.
//! * Query `GET /v3/async/task-result?task_id=…`; the output link lives `video_url_ttl` seconds.
//! * No callbacks on this endpoint (a `callback_url` in the context is ignored; jobs are polled);
//!   a Novita webhook event body is still parsed if one arrives.
//! * Errors `{"code","reason","message","metadata"}`: `reason` decides (403 is used both for an
//!   empty wallet and for a missing key); see [`response::classify_error`].
//! * Cannot express: `cfg_scale`, WEBP images, WEBM/M4V videos; no lookup by idempotency key and
//!   no task list (a task whose create answer was lost cannot be found).

pub mod request;
pub mod response;
pub mod wire;

use motionq_core::{JobSpec, Vendor};
use reqwest::header::HeaderMap;

use crate::adapter::{CallbackEvent, CreateContext, Created, TaskRef, TaskState, VendorAdapter};
use crate::error::{AdapterError, VendorError};
use crate::http::HttpRequestSpec;

/// The HighwayAPI adapter (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct HighwayapiAdapter;

impl VendorAdapter for HighwayapiAdapter {
    fn vendor(&self) -> Vendor {
        Vendor::Highwayapi
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
