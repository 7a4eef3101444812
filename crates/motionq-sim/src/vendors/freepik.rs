//! Freepik / Magnific (VENDORS.md §5): `POST /v1/ai/video/kling-v3-motion-control-{pro,std}`,
//! `GET …-{tier}/{task-id}` (own tier only), list `GET …-{tier}`. Webhooks signed
//! Standard-Webhooks style. Docs:
//! <https://docs.freepik.com/api-reference/video/kling-v3-motion-control/overview>.

use super::CallbackBody;
use crate::error::ApiError;
use crate::json::{object, Fields};
use crate::media::{ImageFormat, ImageOrientationRule, MediaRules, Rounding, VideoFormat};
use crate::model::{ParsedCreate, TaskView};
use crate::vendor::{Orientation, Status, Tier};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

/// Path segment of each tier's endpoint.
pub(crate) fn model_path(tier: Tier) -> &'static str {
    match tier {
        Tier::Pro => "kling-v3-motion-control-pro",
        Tier::Std => "kling-v3-motion-control-std",
    }
}

/// The tier of a path segment, if it is one of ours.
pub(crate) fn tier_of_path(segment: &str) -> Option<Tier> {
    match segment {
        "kling-v3-motion-control-pro" => Some(Tier::Pro),
        "kling-v3-motion-control-std" => Some(Tier::Std),
        _ => None,
    }
}

/// `x-freepik-api-key` or the Magnific rebrand's `x-magnific-api-key`.
pub(crate) fn auth(headers: &HeaderMap) -> Result<String, ApiError> {
    ["x-freepik-api-key", "x-magnific-api-key"]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok().map(str::trim))
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .ok_or(ApiError::MissingKey)
}

pub(crate) fn error(e: &ApiError) -> (StatusCode, Value) {
    let (status, message): (u16, String) = match e {
        ApiError::MissingKey => (
            401,
            "Missing API key: send the x-freepik-api-key header".into(),
        ),
        ApiError::BadKey => (401, "Invalid API key".into()),
        ApiError::Invalid { field, message, .. } => {
            return (
                StatusCode::BAD_REQUEST,
                json!({
                    "message": message,
                    "invalid_params": [{"name": field, "reason": message}],
                }),
            )
        }
        ApiError::UnknownModel(m) => (400, format!("Unknown model '{m}'")),
        ApiError::InvalidTaskId | ApiError::TaskNotFound | ApiError::RouteNotFound => {
            (404, "Not found".into())
        }
        ApiError::RateLimited | ApiError::Concurrency => {
            (429, "Rate limit exceeded. Please try again later.".into())
        }
        // One 429 for rate limits and daily caps alike [FOUND]; out of credits the same [INFERRED].
        ApiError::SpendCap(w) => (429, format!("Your {w} usage limit has been reached")),
        ApiError::InsufficientBalance => (
            429,
            "Your credit limit has been reached. Please add credits.".into(),
        ),
        // A 403 with the `{"message"}` body [FOUND]; the message [INFERRED].
        ApiError::Forbidden => (403, "Forbidden".into()),
        ApiError::DuplicateExternalId => (400, "Duplicate request".into()),
        ApiError::ContentPolicy => (400, "The input was rejected by the content policy".into()),
        ApiError::Internal => (500, "Internal Server Error".into()),
        ApiError::Unavailable => (503, "Service Unavailable. Please try again later.".into()),
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({ "message": message }),
    )
}

pub(crate) fn parse_create(body: &[u8], tier: Tier) -> Result<ParsedCreate, ApiError> {
    let map = object(body)?;
    let f = Fields::new(&map, "");
    let image = f.req_str("image_url")?;
    let video = f.req_str("video_url")?;
    let prompt = f.opt_text("prompt", 2500)?;
    let orientation = f
        .opt_enum("character_orientation", &["image", "video"])?
        .and_then(Orientation::parse)
        .unwrap_or(Orientation::Video);
    if let Some(c) = f.opt_f64("cfg_scale")? {
        if !(0.0..=1.0).contains(&c) {
            return Err(ApiError::value(
                "cfg_scale",
                format!("cfg_scale must be between 0 and 1, got {c}"),
            ));
        }
    }
    let webhook = f.opt_str("webhook_url")?.filter(|s| !s.is_empty());
    Ok(ParsedCreate {
        image: image.to_string(),
        image_field: "image_url",
        video: video.to_string(),
        video_field: "video_url",
        prompt: prompt.map(str::to_string),
        tier,
        orientation,
        callback_url: webhook.map(str::to_string),
        callback_field: "webhook_url",
        external_task_id: None,
        model_name: model_path(tier).to_string(),
        watermark: false,
    })
}

pub(crate) fn rules() -> MediaRules {
    MediaRules {
        image_formats: &[ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp],
        image_max_bytes: 10 << 20,
        image_min_px: 300,
        image_max_px: u32::MAX,
        image_aspect: false,
        image_base64: false,
        video_formats: &[VideoFormat::Mp4, VideoFormat::Mov, VideoFormat::Webm],
        video_max_bytes: 100 << 20,
        video_min_px: 0,
        video_max_px: u32::MAX,
        image_orientation: ImageOrientationRule::CapAt10,
        rounding: Rounding::Nearest,
        unprobeable_video_rejected: false,
    }
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Pending => "CREATED",
        Status::Processing => "IN_PROGRESS",
        Status::Completed => "COMPLETED",
        Status::Failed => "FAILED",
    }
}

/// The task object without the `data` wrapper (the webhook body).
pub(crate) fn task_object(t: &TaskView) -> Value {
    let generated: Vec<&String> = match t.status {
        Status::Completed => t.output_url.iter().collect(),
        _ => vec![],
    };
    json!({"task_id": t.id, "status": status_str(t.status), "generated": generated})
}

pub(crate) fn create_body(t: &TaskView) -> Value {
    json!({ "data": task_object(t) })
}

pub(crate) fn query_body(t: &TaskView) -> Value {
    json!({ "data": task_object(t) })
}

pub(crate) fn list_body(tasks: &[TaskView]) -> Value {
    let items: Vec<Value> = tasks
        .iter()
        .map(|t| json!({"task_id": t.id, "status": status_str(t.status)}))
        .collect();
    json!({ "data": items })
}

/// On every status change after creation (IN_PROGRESS, COMPLETED, FAILED); signed at delivery.
pub(crate) fn callback(t: &TaskView) -> Option<CallbackBody> {
    (t.status != Status::Pending).then(|| CallbackBody {
        body: task_object(t),
        headers: vec![],
    })
}
