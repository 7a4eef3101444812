//! EvoLink wire types (VENDORS.md §1), exactly as sent and as leniently as received.

use serde::{Deserialize, Serialize};

use crate::common::{lenient, number_or_string, progress, string_or_number, strings};

/// The model id EvoLink expects.
pub const MODEL: &str = "kling-v3-motion-control";

/// `POST /v1/videos/generations` body.
#[derive(Debug, Serialize)]
pub struct CreateRequest<'a> {
    pub model: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<&'a str>,
    /// Exactly one image URL.
    pub image_urls: [&'a str; 1],
    /// Exactly one video URL.
    pub video_urls: [&'a str; 1],
    /// `720p` (std) or `1080p` (pro); always sent, so the tier never rests on a default.
    pub quality: &'static str,
    pub model_params: ModelParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<&'a str>,
}

/// `model_params` (required object).
#[derive(Debug, Serialize)]
pub struct ModelParams {
    /// `image` or `video`.
    pub character_orientation: &'static str,
    /// Keep the reference audio; omitted = EvoLink's default (`true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_sound: Option<bool>,
}

/// The task object: create answer, query answer and callback body.
#[derive(Debug, Deserialize)]
pub struct Task {
    #[serde(default, deserialize_with = "string_or_number")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "progress")]
    pub progress: Option<u8>,
    /// Canonical output list for video.
    #[serde(default, deserialize_with = "strings")]
    pub results: Vec<String>,
    /// Read by some clients instead of `results` (INFERRED for this model).
    #[serde(default, deserialize_with = "lenient")]
    pub result_data: Option<Vec<ResultData>>,
    #[serde(default, deserialize_with = "lenient")]
    pub error: Option<ErrorObject>,
    #[serde(default, deserialize_with = "lenient")]
    pub task_info: Option<TaskInfo>,
}

/// One `result_data[]` entry.
#[derive(Debug, Deserialize)]
pub struct ResultData {
    #[serde(default, deserialize_with = "lenient")]
    pub video_url: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    pub duration: Option<f64>,
}

/// `task_info`.
#[derive(Debug, Deserialize)]
pub struct TaskInfo {
    /// Reference-video length in seconds (what EvoLink bills, rounded).
    #[serde(default, deserialize_with = "number_or_string")]
    pub video_duration: Option<f64>,
}

/// `error` of a failed task or of an HTTP error answer.
#[derive(Debug, Deserialize)]
pub struct ErrorObject {
    /// A string business code; an int (= HTTP status) in older specs.
    #[serde(default, deserialize_with = "string_or_number")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient")]
    pub kind: Option<String>,
    /// Older specs: e.g. `"retry after 60 seconds"`.
    #[serde(default, deserialize_with = "lenient")]
    pub fallback_suggestion: Option<String>,
}

/// HTTP error envelope `{"error":{...}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorEnvelope {
    #[serde(default, deserialize_with = "lenient")]
    pub error: Option<ErrorObject>,
}
