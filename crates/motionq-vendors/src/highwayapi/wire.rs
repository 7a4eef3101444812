//! HighwayAPI / Novita wire types (VENDORS.md §4), exactly as sent and as leniently as received.

use serde::{Deserialize, Serialize};

use crate::common::{lenient, number_or_string, progress, string_or_number};

/// `POST /v3/async/kling-v3.0-motion-control` body.
#[derive(Debug, Serialize)]
pub struct CreateRequest<'a> {
    /// URL, or raw base64.
    pub image: &'a str,
    pub video: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<&'a str>,
    /// `kling-v3-0-std` or `kling-v3-0-pro`: the tier.
    pub model_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<&'a str>,
    /// A boolean here (KKIAI uses "yes"/"no"); omitted = default `true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_original_sound: Option<bool>,
    /// `image` (output fixed 5 s) or `video`.
    pub character_orientation: &'static str,
}

/// Create answer.
#[derive(Debug, Deserialize)]
pub struct CreateResponse {
    #[serde(default, deserialize_with = "string_or_number")]
    pub task_id: Option<String>,
    /// Set when a 2xx carries an error body instead.
    #[serde(default, deserialize_with = "lenient")]
    pub reason: Option<String>,
}

/// `GET /v3/async/task-result` answer.
#[derive(Debug, Deserialize)]
pub struct TaskResult {
    #[serde(default, deserialize_with = "lenient")]
    pub task: Option<Task>,
    #[serde(default, deserialize_with = "lenient")]
    pub videos: Option<Vec<Video>>,
}

/// `task`.
#[derive(Debug, Deserialize)]
pub struct Task {
    #[serde(default, deserialize_with = "string_or_number")]
    pub task_id: Option<String>,
    /// `TASK_STATUS_QUEUED | _PROCESSING | _SUCCEED | _FAILED` (`_UNKNOWN` in SDKs).
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "progress")]
    pub progress_percent: Option<u8>,
}

/// One `videos[]` entry.
#[derive(Debug, Deserialize)]
pub struct Video {
    #[serde(default, deserialize_with = "lenient")]
    pub video_url: Option<String>,
    /// Seconds the link stays valid, as a string (`"3600"`).
    #[serde(default, deserialize_with = "number_or_string")]
    pub video_url_ttl: Option<f64>,
}

/// Novita webhook event (`extra.webhook`, not offered on this endpoint).
#[derive(Debug, Deserialize)]
pub struct WebhookEvent {
    #[serde(default, deserialize_with = "lenient")]
    pub event_type: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub payload: Option<TaskResult>,
}

/// Error body `{"code":403,"reason":"NOT_ENOUGH_BALANCE","message":…,"metadata":{}}` (INFERRED
/// go-kratos shape matching Novita's documented reason names).
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
}
