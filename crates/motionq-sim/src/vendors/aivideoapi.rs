//! AI Video API (VENDORS.md §3): `POST /v1/videos/generations`, `GET /v1/tasks/{taskId}`,
//! `GET /v1/credits`. Docs: <https://aivideoapi.ai/docs>.

use super::CallbackBody;
use crate::error::ApiError;
use crate::json::{object, Fields};
use crate::media::{ImageFormat, ImageOrientationRule, MediaRules, Rounding, VideoFormat};
use crate::model::{ParsedCreate, TaskView};
use crate::vendor::{Orientation, Status, Tier};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

pub(crate) const MODEL: &str = "kling-v3-motion-control";
const DEFAULT_PROMPT: &str =
    "No distortion, the character's movements are consistent with the video.";

/// Keys must start with `sk-` [SEED]; anything else is 401 before any lookup.
pub(crate) fn auth(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = super::bearer(headers).ok_or(ApiError::MissingKey)?;
    if !key.starts_with("sk-") {
        return Err(ApiError::BadKey);
    }
    Ok(key)
}

pub(crate) fn error(e: &ApiError) -> (StatusCode, Value) {
    let (status, code, ty, message): (u16, &str, &str, String) = match e {
        ApiError::MissingKey => (
            401,
            "invalid_api_key",
            "authentication_error",
            "Missing API key. Use 'Authorization: Bearer sk-...'".into(),
        ),
        ApiError::BadKey => (
            401,
            "invalid_api_key",
            "authentication_error",
            "API key is invalid, disabled, or deleted".into(),
        ),
        ApiError::Invalid { message, .. } => (
            400,
            "invalid_request",
            "invalid_request_error",
            message.clone(),
        ),
        ApiError::UnknownModel(m) => (
            404,
            "model_not_found",
            "invalid_request_error",
            format!("Model '{m}' does not exist or is inactive"),
        ),
        ApiError::InvalidTaskId | ApiError::TaskNotFound => (
            404,
            "task_not_found",
            "invalid_request_error",
            "Task ID does not exist".into(),
        ),
        ApiError::RouteNotFound => (
            404,
            "model_not_found",
            "invalid_request_error",
            "Not found".into(),
        ),
        ApiError::RateLimited | ApiError::Concurrency => (
            429,
            "rate_limit_exceeded",
            "rate_limit_error",
            "Too many requests, please slow down".into(),
        ),
        // The documented row, message included [SEED: vendor-docs error reference].
        ApiError::Forbidden => (
            403,
            "ip_not_allowed",
            "permission_error",
            "Request IP not in the key's allowlist".into(),
        ),
        ApiError::InsufficientBalance => (
            402,
            "insufficient_credits",
            "billing_error",
            "Your credit balance is too low. Please top up.".into(),
        ),
        ApiError::SpendCap(w) => (
            429,
            "spend_limit_exceeded",
            "billing_error",
            format!("Key spend limit reached ({w})"),
        ),
        ApiError::DuplicateExternalId => (
            400,
            "invalid_request",
            "invalid_request_error",
            "Duplicate request".into(),
        ),
        ApiError::ContentPolicy => (
            503,
            "upstream_error",
            "upstream_error",
            "Upstream AI provider returned an error: the input contains sensitive or prohibited content".into(),
        ),
        ApiError::Internal => (
            500,
            "internal_error",
            "api_error",
            "Unexpected server error".into(),
        ),
        ApiError::Unavailable => (
            503,
            "upstream_error",
            "upstream_error",
            "Upstream AI provider returned an error".into(),
        ),
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": {"code": code, "message": message, "type": ty}}),
    )
}

pub(crate) fn parse_create(body: &[u8]) -> Result<ParsedCreate, ApiError> {
    let map = object(body)?;
    let f = Fields::new(&map, "");
    let model = f.req_str("model")?;
    if model != MODEL {
        return Err(ApiError::UnknownModel(model.to_string()));
    }
    let callback_url = f.opt_str("callback_url")?.filter(|s| !s.is_empty());
    let input = f.req_obj("input")?;
    let i = Fields::new(input, "input.");
    let image = i.url_array("input_urls", 1, 1)?;
    let video = i.url_array("video_urls", 1, 1)?;
    let orientation = i
        .opt_enum("character_orientation", &["image", "video"])?
        .and_then(Orientation::parse)
        .unwrap_or(Orientation::Video);
    let tier = match i.opt_enum("mode", &["720p", "1080p"])? {
        Some("1080p") => Tier::Pro,
        _ => Tier::Std,
    };
    let prompt = i.opt_text("prompt", 2500)?.unwrap_or(DEFAULT_PROMPT);
    if input.contains_key("duration") {
        return Err(ApiError::value(
            "input.duration",
            "The duration parameter is not supported: the output length follows the reference video",
        ));
    }
    Ok(ParsedCreate {
        image: image.to_string(),
        image_field: "input.input_urls",
        video: video.to_string(),
        video_field: "input.video_urls",
        prompt: Some(prompt.to_string()),
        tier,
        orientation,
        callback_url: callback_url.map(str::to_string),
        callback_field: "callback_url",
        external_task_id: None,
        model_name: MODEL.to_string(),
        watermark: false,
    })
}

pub(crate) fn rules() -> MediaRules {
    MediaRules {
        image_formats: &[ImageFormat::Jpeg, ImageFormat::Png],
        image_max_bytes: 10 << 20,
        image_min_px: 300,
        image_max_px: u32::MAX,
        image_aspect: true,
        image_base64: false,
        video_formats: &[VideoFormat::Mp4, VideoFormat::Mov],
        video_max_bytes: 100 << 20,
        video_min_px: 0,
        video_max_px: u32::MAX,
        // Output capped at 10 s in image mode; billed on the capped length [INFERRED].
        image_orientation: ImageOrientationRule::CapAt10,
        rounding: Rounding::Ceil,
        // The server probes the reference length for billing; failure → 400 [SEED].
        unprobeable_video_rejected: true,
    }
}

pub(crate) fn create_body(t: &TaskView) -> Value {
    json!({"code": 200, "msg": "success", "data": {"taskId": t.id}})
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Pending => "pending",
        Status::Processing => "processing",
        Status::Completed => "completed",
        Status::Failed => "failed",
    }
}

/// The task object, returned unwrapped by the query and as the callback body.
pub(crate) fn task_body(t: &TaskView) -> Value {
    let mut v = json!({
        "id": t.id,
        "status": status_str(t.status),
        "model": MODEL,
        "created_at": TaskView::unix_secs(t.created_ms),
    });
    match t.status {
        Status::Pending | Status::Processing => {
            v["progress"] = Value::Null;
        }
        Status::Completed => {
            v["completed_at"] = json!(TaskView::unix_secs(t.completed_ms.unwrap_or(t.updated_ms)));
            v["output"] = json!({
                "urls": t.output_url.iter().collect::<Vec<_>>(),
                "metadata": {"model": "kling-3.0/motion-control"},
            });
        }
        Status::Failed => {
            v["error"] = match t.failure {
                Some(crate::model::Failure::Vendor) => json!({
                    "code": "internal_error",
                    "message": "Video generation failed: internal error",
                }),
                _ => json!({
                    "code": "upstream_error",
                    "message": "Video generation failed: the input contains sensitive or prohibited content",
                }),
            };
        }
    }
    v
}

/// On completed/failed, with `X-Event`, `X-Task-Id`, `X-Timestamp`.
pub(crate) fn callback(t: &TaskView) -> Option<CallbackBody> {
    let event = match t.status {
        Status::Completed => "task.completed",
        Status::Failed => "task.failed",
        _ => return None,
    };
    Some(CallbackBody {
        body: task_body(t),
        headers: vec![
            ("X-Event".into(), event.into()),
            ("X-Task-Id".into(), t.id.clone()),
            (
                "X-Timestamp".into(),
                TaskView::unix_secs(crate::clock::now_ms()).to_string(),
            ),
        ],
    })
}

pub(crate) fn credits_body(balance: f64, purchased: f64, consumed: f64) -> Value {
    json!({"code": 200, "msg": "success", "data": {
        "balance": super::round6(balance),
        "total_purchased": super::round6(purchased),
        "total_consumed": super::round6(consumed),
    }})
}
