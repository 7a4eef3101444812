//! HighwayAPI = Novita v3 async API (VENDORS.md §4): `POST /v3/async/kling-v3.0-motion-control`,
//! `GET /v3/async/task-result?task_id=`. No callbacks. Docs:
//! <https://novita.ai/docs/api-reference/model-apis-kling-v3.0-motion-control>.

use crate::error::ApiError;
use crate::json::{object, Fields};
use crate::media::{ImageFormat, ImageOrientationRule, MediaRules, Rounding, VideoFormat};
use crate::model::{ParsedCreate, TaskView};
use crate::vendor::{Orientation, Status, Tier};
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::{json, Value};

pub(crate) fn error(e: &ApiError) -> (StatusCode, Value) {
    let (status, reason, message): (u16, &str, String) = match e {
        ApiError::MissingKey => (403, "INVALID_API_KEY", "API key is missing".into()),
        ApiError::BadKey => (401, "FAILED_TO_AUTH", "failed to authenticate".into()),
        ApiError::Invalid { message, .. } => (400, "INVALID_REQUEST_BODY", message.clone()),
        ApiError::UnknownModel(m) => (
            400,
            "INVALID_REQUEST_BODY",
            format!("model_name '{m}' is not supported"),
        ),
        ApiError::InvalidTaskId | ApiError::TaskNotFound => {
            (404, "TASK_NOT_FOUND", "task not found".into())
        }
        ApiError::RouteNotFound => (404, "MODEL_NOT_FOUND", "model not found".into()),
        ApiError::RateLimited | ApiError::Concurrency => {
            (429, "RATE_LIMIT_EXCEEDED", "rate limit exceeded".into())
        }
        // `ACCESS_DENY` [FOUND]; the body shape (as every error here) and message [INFERRED].
        ApiError::Forbidden => (
            403,
            "ACCESS_DENY",
            "access denied: account not verified for this model".into(),
        ),
        // 403, not 402 [FOUND].
        ApiError::InsufficientBalance | ApiError::SpendCap(_) => {
            (403, "NOT_ENOUGH_BALANCE", "not enough balance".into())
        }
        ApiError::DuplicateExternalId => (400, "INVALID_REQUEST_BODY", "duplicate request".into()),
        ApiError::ContentPolicy => (
            400,
            "INVALID_REQUEST_BODY",
            "the input was rejected by the safety system".into(),
        ),
        ApiError::Internal => (500, "INTERNAL_SERVER_ERROR", "internal server error".into()),
        ApiError::Unavailable => (503, "SERVICE_NOT_AVAILABLE", "service not available".into()),
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"code": status, "reason": reason, "message": message, "metadata": {}}),
    )
}

pub(crate) fn parse_create(headers: &HeaderMap, body: &[u8]) -> Result<ParsedCreate, ApiError> {
    // Content-Type: application/json is required [SEED].
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::param(
            "Content-Type",
            "Content-Type must be application/json",
        ));
    }
    let map = object(body)?;
    let f = Fields::new(&map, "");
    let image = f.req_str("image")?;
    let video = f.req_str("video")?;
    let prompt = f.opt_text("prompt", 2500)?;
    f.opt_text("negative_prompt", 2500)?;
    let model = f
        .opt_enum("model_name", &["kling-v3-0-std", "kling-v3-0-pro"])?
        .unwrap_or("kling-v3-0-std");
    let tier = if model == "kling-v3-0-pro" {
        Tier::Pro
    } else {
        Tier::Std
    };
    // A boolean here, unlike KKIAI's "yes"/"no".
    f.opt_bool("keep_original_sound")?;
    let orientation = Orientation::parse(f.req_enum("character_orientation", &["image", "video"])?)
        .unwrap_or(Orientation::Video);
    Ok(ParsedCreate {
        image: image.to_string(),
        image_field: "image",
        video: video.to_string(),
        video_field: "video",
        prompt: prompt.map(str::to_string),
        tier,
        orientation,
        callback_url: None,
        callback_field: "callback_url",
        external_task_id: None,
        model_name: model.to_string(),
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
        image_base64: true,
        video_formats: &[VideoFormat::Mp4, VideoFormat::Mov],
        // 10 MB, stricter than the others (probably a doc error, followed on purpose).
        video_max_bytes: 10 << 20,
        video_min_px: 300,
        video_max_px: u32::MAX,
        // image mode: any 3–30 s reference, output fixed at 5 s.
        image_orientation: ImageOrientationRule::Fixed5,
        rounding: Rounding::Nearest,
        unprobeable_video_rejected: false,
    }
}

pub(crate) fn create_body(t: &TaskView) -> Value {
    json!({ "task_id": t.id })
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Pending => "TASK_STATUS_QUEUED",
        Status::Processing => "TASK_STATUS_PROCESSING",
        Status::Completed => "TASK_STATUS_SUCCEED",
        Status::Failed => "TASK_STATUS_FAILED",
    }
}

pub(crate) fn query_body(t: &TaskView) -> Value {
    let reason = match (t.status, t.failure) {
        (Status::Failed, Some(crate::model::Failure::Vendor)) => {
            "internal error: generation service unavailable, please try again"
        }
        (Status::Failed, _) => {
            "content policy violation: the input was rejected by the safety system"
        }
        _ => "",
    };
    let progress = match t.status {
        Status::Completed => 100,
        Status::Failed => 0,
        _ => t.progress,
    };
    let videos = match (t.status, &t.output_url) {
        (Status::Completed, Some(url)) => json!([{
            "video_url": url,
            // Seconds left on the link, in real seconds so it matches the scaled expiry; the
            // link is signed once, at completion, so this reaches 0 and stays there.
            "video_url_ttl": t.output_ttl.map(|d| d.as_secs_f64().ceil() as u64).unwrap_or(0).to_string(),
            "video_type": "mp4",
        }]),
        _ => json!([]),
    };
    let ms = |o: Option<u64>| o.map(|v| v.to_string()).unwrap_or_default();
    json!({
        "task": {
            "task_id": t.id,
            "task_type": "KLING_V3_MOTION_CONTROL",
            "status": status_str(t.status),
            "reason": reason,
            "eta": if t.status.is_terminal() { 0 } else { t.eta_seconds },
            "progress_percent": progress,
        },
        "extra": {
            "seed": t.seed.to_string(),
            "debug_info": {
                "request_info": "",
                "submit_time_ms": t.created_ms.to_string(),
                "execute_time_ms": ms(t.processing_ms),
                "complete_time_ms": ms(t.completed_ms),
            }
        },
        "videos": videos,
        "images": [],
        "audios": [],
    })
}
