//! EvoLink unified API (VENDORS.md §1): `POST /v1/videos/generations`, `GET /v1/tasks/{id}`.
//! Docs: <https://docs.evolink.ai/en/api-manual/video-series/kling/kling-v3-motion-control>.

use super::{round6, CallbackBody};
use crate::error::ApiError;
use crate::json::{object, Fields};
use crate::media::{ImageFormat, ImageOrientationRule, MediaRules, Rounding, VideoFormat};
use crate::model::{ParsedCreate, TaskView};
use crate::vendor::{Orientation, Status, Tier};
use axum::http::StatusCode;
use serde_json::{json, Value};

pub(crate) const MODEL: &str = "kling-v3-motion-control";
/// Prefix every EvoLink task id carries; the query endpoint rejects others with 400.
pub(crate) const ID_PREFIX: &str = "task-unified-";

pub(crate) fn error(e: &ApiError) -> (StatusCode, Value) {
    let (status, code, ty, message, param): (u16, &str, &str, String, Option<&str>) = match e {
        ApiError::MissingKey => (
            401,
            "unauthorized",
            "authentication_error",
            "Missing API key. Use 'Authorization: Bearer YOUR_API_KEY'".into(),
            None,
        ),
        ApiError::BadKey => (
            401,
            "unauthorized",
            "authentication_error",
            "Invalid API key".into(),
            None,
        ),
        ApiError::Invalid { field, message, .. } => (
            400,
            "invalid_request",
            "invalid_request_error",
            message.clone(),
            Some(field.as_str()),
        ),
        ApiError::UnknownModel(m) => (
            400,
            "invalid_request",
            "invalid_request_error",
            format!("Unsupported model '{m}'"),
            Some("model"),
        ),
        ApiError::InvalidTaskId => (
            400,
            "invalid_task_id",
            "invalid_request_error",
            "Invalid task ID: must start with 'task-unified-'".into(),
            Some("task_id"),
        ),
        ApiError::TaskNotFound | ApiError::RouteNotFound => (
            404,
            "task_not_found",
            "invalid_request_error",
            "Task not found".into(),
            None,
        ),
        ApiError::RateLimited => (
            429,
            "rate_limit_exceeded",
            "rate_limit_error",
            "Rate limit exceeded, please retry later".into(),
            None,
        ),
        ApiError::Concurrency => (
            429,
            "rate_limit_exceeded",
            "rate_limit_error",
            "Too many concurrent tasks for this API key".into(),
            None,
        ),
        // Code and type [FOUND: OpenAPI]; the message [INFERRED].
        ApiError::Forbidden => (
            403,
            "model_access_denied",
            "invalid_request_error",
            "Your API key does not have access to this model".into(),
            None,
        ),
        // EvoLink has no separate spend-cap answer: running out is 402 [FOUND].
        ApiError::InsufficientBalance => (
            402,
            "insufficient_quota",
            "insufficient_quota",
            "Insufficient quota, please top up your balance".into(),
            None,
        ),
        ApiError::SpendCap(w) => (
            402,
            "insufficient_quota",
            "insufficient_quota",
            format!("Insufficient quota: {w} spending limit reached"),
            None,
        ),
        ApiError::DuplicateExternalId => (
            400,
            "invalid_request",
            "invalid_request_error",
            "Duplicate request".into(),
            None,
        ),
        ApiError::ContentPolicy => (
            400,
            "invalid_request",
            "invalid_request_error",
            "The input content violates the content policy".into(),
            None,
        ),
        ApiError::Internal => (
            500,
            "internal_error",
            "api_error",
            "Internal server error".into(),
            None,
        ),
        ApiError::Unavailable => (
            503,
            "service_unavailable",
            "service_unavailable_error",
            "Service temporarily unavailable".into(),
            None,
        ),
    };
    let mut err = json!({"code": code, "message": message, "type": ty});
    if let Some(p) = param {
        err["param"] = json!(p);
    }
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({ "error": err }),
    )
}

pub(crate) fn parse_create(body: &[u8]) -> Result<ParsedCreate, ApiError> {
    let map = object(body)?;
    let f = Fields::new(&map, "");
    let model = f.req_str("model")?;
    if model != MODEL {
        return Err(ApiError::UnknownModel(model.to_string()));
    }
    let image = f.url_array("image_urls", 1, 1)?;
    let video = f.url_array("video_urls", 1, 1)?;
    let prompt = f.opt_text("prompt", 2500)?;
    let tier = match f.opt_enum("quality", &["720p", "1080p"])? {
        Some("1080p") => Tier::Pro,
        _ => Tier::Std,
    };
    let mp = f.req_obj("model_params")?;
    let p = Fields::new(mp, "model_params.");
    let orientation = Orientation::parse(p.req_enum("character_orientation", &["image", "video"])?)
        .unwrap_or(Orientation::Video);
    p.opt_bool("keep_sound")?;
    if p.element_list("element_list")? && orientation != Orientation::Video {
        return Err(ApiError::value(
            "model_params.character_orientation",
            "'model_params.character_orientation' must be 'video' when 'element_list' is used",
        ));
    }
    let watermark = match p.opt_obj("watermark_info")? {
        Some(w) => Fields::new(w, "model_params.watermark_info.")
            .opt_bool("enabled")?
            .unwrap_or(false),
        None => false,
    };
    let callback_url = f.opt_str("callback_url")?;
    if let Some(cb) = callback_url {
        if cb.chars().count() > 2048 {
            return Err(ApiError::value(
                "callback_url",
                "'callback_url' must not exceed 2048 characters",
            ));
        }
    }
    Ok(ParsedCreate {
        image: image.to_string(),
        image_field: "image_urls",
        video: video.to_string(),
        video_field: "video_urls",
        prompt: prompt.map(str::to_string),
        tier,
        orientation,
        callback_url: callback_url.map(str::to_string),
        callback_field: "callback_url",
        external_task_id: None,
        model_name: MODEL.to_string(),
        watermark,
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
        video_min_px: 340,
        video_max_px: 3850,
        image_orientation: ImageOrientationRule::RejectOver10,
        rounding: Rounding::Nearest,
        unprobeable_video_rejected: false,
    }
}

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Pending => "pending",
        Status::Processing => "processing",
        Status::Completed => "completed",
        Status::Failed => "failed",
    }
}

/// Create, query and callback share one object (`TaskDetailResponse`).
pub(crate) fn task_body(t: &TaskView) -> Value {
    let mut v = json!({
        "created": TaskView::unix_secs(t.created_ms),
        "id": t.id,
        "model": MODEL,
        "object": "video.generation.task",
        "progress": if t.status == Status::Failed { 0 } else { t.progress },
        "status": status_str(t.status),
        "type": "video",
        "usage": {
            "billing_rule": "per_second",
            "credits_reserved": round6(t.charge),
            "user_group": "default",
        },
    });
    v["task_info"] = match t.status {
        Status::Pending => json!({
            "can_cancel": true,
            "estimated_time": t.estimated_seconds,
            "video_duration": t.output_seconds,
        }),
        Status::Processing => json!({"can_cancel": true, "estimated_time": t.eta_seconds}),
        Status::Completed | Status::Failed => {
            json!({"can_cancel": false, "video_duration": t.output_seconds})
        }
    };
    if let (Status::Completed, Some(url)) = (t.status, &t.output_url) {
        v["results"] = json!([url]);
    }
    if t.status == Status::Failed {
        v["error"] = match t.failure {
            Some(crate::model::Failure::Vendor) => json!({
                "code": "service_error",
                "message": "Video generation failed: internal service error, please retry",
                "type": "task_error",
            }),
            _ => json!({
                "code": "content_policy_violation",
                "message": "The input content violates the content policy",
                "type": "task_error",
            }),
        };
    }
    v
}

/// Sent once on completed/failed, after billing.
pub(crate) fn callback(t: &TaskView) -> Option<CallbackBody> {
    t.status.is_terminal().then(|| CallbackBody {
        body: task_body(t),
        headers: vec![],
    })
}
