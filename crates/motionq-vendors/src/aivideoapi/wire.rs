//! AI Video API wire types (VENDORS.md §3), exactly as sent and as leniently as received.

use serde::{Deserialize, Serialize};

use crate::common::{lenient, progress, string_or_number, strings};

/// The model id.
pub const MODEL: &str = "kling-v3-motion-control";

/// `POST /v1/videos/generations` body.
#[derive(Debug, Serialize)]
pub struct CreateRequest<'a> {
    pub model: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<&'a str>,
    pub input: Input<'a>,
}

/// `input`.
#[derive(Debug, Serialize)]
pub struct Input<'a> {
    /// One image URL.
    pub input_urls: [&'a str; 1],
    /// One video URL.
    pub video_urls: [&'a str; 1],
    /// Always sent (the vendor's default is `video`).
    pub character_orientation: &'static str,
    /// `720p` or `1080p`; always sent.
    pub mode: &'static str,
    /// Omitted = the vendor's default prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<&'a str>,
}

/// Create answer `{"code":200,"msg":"success","data":{"taskId":…}}`.
#[derive(Debug, Deserialize)]
pub struct CreateResponse {
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub msg: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub data: Option<CreateData>,
    #[serde(default, deserialize_with = "lenient")]
    pub error: Option<ErrorObject>,
}

/// `data` of the create answer.
#[derive(Debug, Deserialize)]
pub struct CreateData {
    #[serde(default, rename = "taskId", deserialize_with = "string_or_number")]
    pub task_id_camel: Option<String>,
    /// Accepted in case the API ever answers snake_case.
    #[serde(default, rename = "task_id", deserialize_with = "string_or_number")]
    pub task_id_snake: Option<String>,
}

/// The task object (query answer and callback body), not wrapped.
#[derive(Debug, Deserialize)]
pub struct Task {
    #[serde(default, deserialize_with = "string_or_number")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    /// Often `null`.
    #[serde(default, deserialize_with = "progress")]
    pub progress: Option<u8>,
    #[serde(default, deserialize_with = "lenient")]
    pub output: Option<Output>,
    #[serde(default, deserialize_with = "lenient")]
    pub error: Option<ErrorObject>,
}

/// `output`.
#[derive(Debug, Deserialize)]
pub struct Output {
    #[serde(default, deserialize_with = "strings")]
    pub urls: Vec<String>,
}

/// `error` (task failure or HTTP error).
#[derive(Debug, Deserialize)]
pub struct ErrorObject {
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient")]
    pub kind: Option<String>,
}

/// HTTP error envelope.
#[derive(Debug, Deserialize)]
pub struct ErrorEnvelope {
    #[serde(default, deserialize_with = "lenient")]
    pub error: Option<ErrorObject>,
    /// Some gateways answer `{"code":4xx,"msg":…}` instead.
    #[serde(default, deserialize_with = "lenient")]
    pub msg: Option<String>,
}
