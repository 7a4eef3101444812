//! KKIAI / Kling wire types (VENDORS.md §2), exactly as sent and as leniently as received.

use serde::{Deserialize, Serialize};

use crate::common::{lenient, number_or_string, progress, string_or_number};

/// Kling's model name for V3 (KKIAI's default would be `kling-v2-6`).
pub const MODEL_NAME: &str = "kling-v3";

/// `POST /kling/v1/videos/motion-control` body.
#[derive(Debug, Serialize)]
pub struct CreateRequest<'a> {
    pub model_name: &'static str,
    /// URL, or raw base64 without a `data:` prefix.
    pub image_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<&'a str>,
    pub video_url: &'a str,
    /// `"yes"` / `"no"` (strings, not booleans); omitted = Kling's default (`yes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_original_sound: Option<&'static str>,
    /// `image` or `video` (required).
    pub character_orientation: &'static str,
    /// `std` or `pro` (required).
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<&'a str>,
    /// Always sent: our idempotency key, unique per user.
    pub external_task_id: &'a str,
}

/// Kling's answer envelope. `code` is an int (0 = success) from Kling, or a string
/// (`"success"`) from a wrapping gateway.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub data: Option<Data>,
    /// A gateway's own OpenAI-style error (`{"error":{"message","type","code"}}`).
    #[serde(default, deserialize_with = "lenient")]
    pub error: Option<GatewayError>,
}

/// `data`: the Kling task, or (wrapped form) the gateway's task whose `data` is a whole Kling
/// answer.
#[derive(Debug, Deserialize)]
pub struct Data {
    #[serde(default, deserialize_with = "string_or_number")]
    pub task_id: Option<String>,
    /// `submitted | processing | succeed | failed`.
    #[serde(default, deserialize_with = "lenient")]
    pub task_status: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub task_status_msg: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub task_info: Option<TaskInfo>,
    #[serde(default, deserialize_with = "lenient")]
    pub task_result: Option<TaskResult>,
    /// Kling units charged, a string like `"7.2"`.
    #[serde(default, deserialize_with = "string_or_number")]
    pub final_unit_deduction: Option<String>,
    /// Wrapped form: the gateway's status (`SUBMITTED`, `IN_PROGRESS`, `SUCCESS`, `FAILURE`).
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    /// Wrapped form: the gateway's failure reason.
    #[serde(default, deserialize_with = "lenient")]
    pub fail_reason: Option<String>,
    /// Wrapped form: `"100%"`.
    #[serde(default, deserialize_with = "progress")]
    pub progress: Option<u8>,
    /// Wrapped form: the raw Kling answer.
    #[serde(default, deserialize_with = "lenient")]
    pub data: Option<Box<Envelope>>,
}

/// `task_info`.
#[derive(Debug, Deserialize)]
pub struct TaskInfo {
    #[serde(default, deserialize_with = "string_or_number")]
    pub external_task_id: Option<String>,
}

/// `task_result`.
#[derive(Debug, Deserialize)]
pub struct TaskResult {
    #[serde(default, deserialize_with = "lenient")]
    pub videos: Option<Vec<Video>>,
}

/// One `task_result.videos[]` entry.
#[derive(Debug, Deserialize)]
pub struct Video {
    #[serde(default, deserialize_with = "lenient")]
    pub url: Option<String>,
    /// Seconds, as a string (`"8.041"`).
    #[serde(default, deserialize_with = "number_or_string")]
    pub duration: Option<f64>,
}

/// A gateway error object.
#[derive(Debug, Deserialize)]
pub struct GatewayError {
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient")]
    pub kind: Option<String>,
}

/// A callback body: the bare Kling task (no envelope).
pub type CallbackBody = Data;
