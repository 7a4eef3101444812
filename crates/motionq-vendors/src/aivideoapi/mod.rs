//! AI Video API (`https://api.aivideoapi.ai`), Kling V3 Motion Control.
//!
//! Docs: <https://aivideoapi.ai/docs> (model page in `shared/vendor-docs/aivideoapi.txt`, callback
//! guide <https://aivideoapi.ai/docs/getting-started/callback>); summary in `shared/VENDORS.md` §3.
//!
//! * Create `POST /v1/videos/generations` with `model` and an `input` object (`input_urls`,
//!   `video_urls`, `character_orientation`, `mode` `720p`/`1080p`, `prompt`); answer
//!   `{"code":200,"msg":"success","data":{"taskId":…}}` (camelCase).
//! * Query `GET /v1/tasks/{taskId}` returns the bare task object; callbacks POST the same object
//!   with `X-Task-Id`/`X-Event` headers and no signature.
//! * Errors `{"error":{"code","message","type"}}`: the two 429s differ by code
//!   (`rate_limit_exceeded` vs `spend_limit_exceeded`); see [`response::classify_error`].
//! * Cannot express: base64 images, WEBP/WEBM/M4V, `keep_sound`, `negative_prompt`, `cfg_scale`;
//!   no lookup by idempotency key.

pub mod request;
pub mod response;
pub mod wire;

use motionq_core::{JobSpec, Vendor};
use reqwest::header::HeaderMap;

use crate::adapter::{CallbackEvent, CreateContext, Created, TaskRef, TaskState, VendorAdapter};
use crate::error::{AdapterError, VendorError};
use crate::http::HttpRequestSpec;

/// The AI Video API adapter (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct AivideoapiAdapter;

impl VendorAdapter for AivideoapiAdapter {
    fn vendor(&self) -> Vendor {
        Vendor::Aivideoapi
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
