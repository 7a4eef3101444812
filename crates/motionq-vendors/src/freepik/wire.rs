//! Freepik wire types (VENDORS.md §5), exactly as sent and as leniently as received.

use serde::{Deserialize, Serialize};

use crate::common::{lenient, string_or_number, strings};

/// The API key header (`x-magnific-api-key` after the rebrand accepts the same key).
pub const API_KEY_HEADER: &str = "x-freepik-api-key";

/// `POST /v1/ai/video/kling-v3-motion-control-{pro|std}` body (the tier is in the path).
#[derive(Debug, Serialize)]
pub struct CreateRequest<'a> {
    pub image_url: &'a str,
    pub video_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<&'a str>,
    /// Always sent (the vendor's default is `video`).
    pub character_orientation: &'static str,
    /// 0..=1; omitted = the vendor's default 0.5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cfg_scale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<&'a str>,
}

/// `{"data": Task}`: create and query answers.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(default, deserialize_with = "lenient")]
    pub data: Option<Task>,
}

/// The task (also the webhook body, without the wrapper).
#[derive(Debug, Deserialize)]
pub struct Task {
    #[serde(default, deserialize_with = "string_or_number")]
    pub task_id: Option<String>,
    /// `CREATED | IN_PROGRESS | COMPLETED | FAILED`.
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    /// Output URLs, filled when COMPLETED.
    #[serde(default, deserialize_with = "strings")]
    pub generated: Vec<String>,
    /// No failure reason is documented; these are read if present (INFERRED).
    #[serde(default, deserialize_with = "string_or_error")]
    pub error: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
}

/// `{"data":[{"task_id","status"}, …]}`: the list answer.
#[derive(Debug, Deserialize)]
pub struct ListEnvelope {
    #[serde(default, deserialize_with = "lenient")]
    pub data: Option<Vec<Task>>,
}

/// Error body `{"message": …}` (400 may add `invalid_params`).
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub invalid_params: Option<Vec<InvalidParam>>,
}

/// One `invalid_params[]` entry.
#[derive(Debug, Deserialize)]
pub struct InvalidParam {
    #[serde(default, deserialize_with = "lenient")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub reason: Option<String>,
}

/// A failure reason given as a string or as `{"message": …}`.
fn string_or_error<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Object(o) => o
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string),
        _ => None,
    })
}
