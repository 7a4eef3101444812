//! KKIAI, Kling-official pass-through (VENDORS.md §2): `POST /kling/v1/videos/motion-control`,
//! `GET /kling/v1/videos/motion-control/{task_id | external_task_id}`, list
//! `GET /kling/v1/videos/motion-control?pageNum=&pageSize=`.
//! Docs: `docs.kkiai.com/Other-Model-APIs/kling-platform-api/...`, Kling error codes.

use super::{round6, CallbackBody};
use crate::error::{ApiError, InvalidKind};
use crate::json::{object, Fields};
use crate::media::{ImageFormat, ImageOrientationRule, MediaRules, Rounding, VideoFormat};
use crate::model::{ParsedCreate, TaskView};
use crate::vendor::{Orientation, Status, Tier};
use axum::http::StatusCode;
use serde_json::{json, Value};

/// Models the motion-control endpoint accepts; `kling-v2-6` is the documented default.
const MODELS: &[&str] = &["kling-v3", "kling-v2-6"];

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn error(e: &ApiError) -> (StatusCode, Value) {
    let (status, code, message): (u16, u32, String) = match e {
        ApiError::MissingKey => (401, 1001, "Authorization is empty".into()),
        ApiError::BadKey => (401, 1002, "Authorization is invalid".into()),
        ApiError::Invalid {
            kind: InvalidKind::Param,
            message,
            ..
        } => (400, 1200, format!("Invalid request parameters: {message}")),
        ApiError::Invalid { message, .. } => {
            (400, 1201, format!("Invalid request parameters: {message}"))
        }
        ApiError::UnknownModel(m) => (400, 1201, format!("model_name '{m}' is invalid")),
        ApiError::InvalidTaskId | ApiError::TaskNotFound => (404, 1203, "task not found".into()),
        ApiError::RouteNotFound => (404, 1202, "resource not found".into()),
        ApiError::RateLimited => (429, 1302, "request too fast, please slow down".into()),
        ApiError::Concurrency => (429, 1303, "parallel task over resource pack limit".into()),
        // Kling 1103 "no access to this API/model" [FOUND]; the message [INFERRED].
        ApiError::Forbidden => (403, 1103, "no access to this API or model".into()),
        ApiError::InsufficientBalance => (
            429,
            1102,
            "account balance not enough: resource pack depleted or expired".into(),
        ),
        ApiError::SpendCap(w) => (
            429,
            1102,
            format!("resource pack depleted or expired ({w} limit)"),
        ),
        ApiError::DuplicateExternalId => (
            400,
            1201,
            "Invalid request parameters: external_task_id already exists".into(),
        ),
        ApiError::ContentPolicy => (
            400,
            1301,
            "content security check failed: the input violates the platform policy".into(),
        ),
        ApiError::Internal => (500, 5000, "internal server error".into()),
        ApiError::Unavailable => (503, 5001, "service unavailable, under maintenance".into()),
    };
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"code": code, "message": message, "request_id": request_id()}),
    )
}

/// The kkiai gateway's own refusals in the OpenAI-style envelope, for the errors a gateway
/// answers itself (auth, wallet, gateway rate limit); `None` for the rest (Kling answers those).
pub(crate) fn gateway_error(e: &ApiError) -> Option<(StatusCode, Value)> {
    let (status, code, message) = match e {
        ApiError::MissingKey | ApiError::BadKey => (401, "invalid_token", "invalid token"),
        ApiError::InsufficientBalance | ApiError::SpendCap(_) => {
            (403, "insufficient_user_quota", "user quota is not enough")
        }
        ApiError::RateLimited => (429, "rate_limit_exceeded", "rate limit exceeded"),
        _ => return None,
    };
    Some((
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": {"message": message, "type": "new_api_error", "code": code}}),
    ))
}

pub(crate) fn parse_create(body: &[u8]) -> Result<ParsedCreate, ApiError> {
    let map = object(body)?;
    let f = Fields::new(&map, "");
    let model = f.opt_str("model_name")?.unwrap_or("kling-v2-6");
    if !MODELS.contains(&model) {
        return Err(ApiError::UnknownModel(model.to_string()));
    }
    let prompt = f.opt_text("prompt", 2500)?;
    let image = f.req_str("image_url")?;
    let video = f.req_str("video_url")?;
    let has_element = f.element_list("element_list")?;
    // Strings "yes"/"no", not booleans [SEED].
    f.opt_enum("keep_original_sound", &["yes", "no"])?;
    let orientation = Orientation::parse(f.req_enum("character_orientation", &["image", "video"])?)
        .unwrap_or(Orientation::Video);
    if has_element && orientation != Orientation::Video {
        return Err(ApiError::value(
            "character_orientation",
            "character_orientation must be 'video' when element_list is used",
        ));
    }
    let tier = match f.req_enum("mode", &["std", "pro"])? {
        "pro" => Tier::Pro,
        _ => Tier::Std,
    };
    let callback_url = f.opt_str("callback_url")?.filter(|s| !s.is_empty());
    let external = f.opt_str("external_task_id")?.filter(|s| !s.is_empty());
    // Kling's object form {"enabled": bool}; the seed's array form is accepted too.
    let watermark = match map.get("watermark_info") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => Fields::new(o, "watermark_info.")
            .opt_bool("enabled")?
            .unwrap_or(false),
        Some(Value::Array(items)) => items.iter().any(|i| {
            i.get("watermark_info").and_then(Value::as_bool) == Some(true)
                || i.get("enabled").and_then(Value::as_bool) == Some(true)
        }),
        Some(_) => {
            return Err(ApiError::param(
                "watermark_info",
                "watermark_info must be an object {\"enabled\": bool}",
            ))
        }
    };
    Ok(ParsedCreate {
        image: image.to_string(),
        image_field: "image_url",
        video: video.to_string(),
        video_field: "video_url",
        prompt: prompt.map(str::to_string),
        tier,
        orientation,
        callback_url: callback_url.map(str::to_string),
        callback_field: "callback_url",
        external_task_id: external.map(str::to_string),
        model_name: model.to_string(),
        watermark,
    })
}

pub(crate) fn rules() -> MediaRules {
    MediaRules {
        image_formats: &[ImageFormat::Jpeg, ImageFormat::Png],
        image_max_bytes: 10 << 20,
        image_min_px: 300,
        image_max_px: 65_536,
        image_aspect: true,
        image_base64: true,
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
        Status::Pending => "submitted",
        Status::Processing => "processing",
        Status::Completed => "succeed",
        Status::Failed => "failed",
    }
}

fn task_info(t: &TaskView) -> Value {
    match &t.external_task_id {
        Some(e) => json!({"external_task_id": e}),
        None => json!({}),
    }
}

fn final_units(t: &TaskView) -> String {
    // Kling reports the units actually deducted: the pre-charge until settled, 0 after a refund.
    format!("{}", round6(t.final_charge.unwrap_or(t.charge)))
}

fn status_msg(t: &TaskView) -> &'static str {
    match (t.status, t.failure) {
        (Status::Failed, Some(crate::model::Failure::Vendor)) => {
            "Internal error during generation, please try again later"
        }
        (Status::Failed, _) => "Failure to pass the risk control system",
        _ => "",
    }
}

fn videos(t: &TaskView, with_watermark: bool) -> Option<Value> {
    let url = t.output_url.as_ref()?;
    let mut v = json!({
        "id": format!("{}-0", t.id),
        "url": url,
        "duration": format!("{:.3}", t.output_seconds as f64),
    });
    if with_watermark && t.watermark {
        v["watermark_url"] = json!(format!("{url}?watermark=1"));
    }
    Some(json!({ "videos": [v] }))
}

/// The `data` object of a query answer (also a list item).
pub(crate) fn task_data(t: &TaskView) -> Value {
    let mut d = json!({
        "task_id": t.id,
        "task_status": status_str(t.status),
        "task_status_msg": status_msg(t),
        "task_info": task_info(t),
        "watermark_info": {"enabled": t.watermark},
        "final_unit_deduction": final_units(t),
        "created_at": t.created_ms,
        "updated_at": t.updated_ms,
    });
    if t.status == Status::Completed {
        if let Some(r) = videos(t, true) {
            d["task_result"] = r;
        }
    }
    d
}

pub(crate) fn create_body(t: &TaskView) -> Value {
    json!({
        "code": 0,
        "message": "SUCCEED",
        "request_id": request_id(),
        "data": {
            "task_id": t.id,
            "task_info": task_info(t),
            "task_status": status_str(t.status),
            "created_at": t.created_ms,
            "updated_at": t.updated_ms,
        }
    })
}

pub(crate) fn query_body(t: &TaskView) -> Value {
    json!({"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": task_data(t)})
}

/// The new-api gateway form of a query answer (`data.data` is the Kling answer).
pub(crate) fn wrapped_query_body(t: &TaskView) -> Value {
    let (status, progress) = match t.status {
        Status::Pending => ("SUBMITTED", "0%".to_string()),
        Status::Processing => ("IN_PROGRESS", format!("{}%", t.progress)),
        Status::Completed => ("SUCCESS", "100%".to_string()),
        Status::Failed => ("FAILURE", "100%".to_string()),
    };
    json!({
        "code": "success",
        "message": "",
        "data": {
            "task_id": t.id,
            "action": "generate",
            "status": status,
            "fail_reason": status_msg(t),
            "submit_time": t.created_ms / 1000,
            "finish_time": t.completed_ms.map(|ms| ms / 1000).unwrap_or(0),
            "progress": progress,
            "data": query_body(t),
        }
    })
}

pub(crate) fn list_body(tasks: &[TaskView]) -> Value {
    let items: Vec<Value> = tasks.iter().map(task_data).collect();
    json!({"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": items})
}

/// Sent on every status change (submitted, processing, succeed/failed); no `watermark_url`.
pub(crate) fn callback(t: &TaskView) -> Option<CallbackBody> {
    let mut b = json!({
        "task_id": t.id,
        "task_status": status_str(t.status),
        "task_status_msg": status_msg(t),
        "created_at": t.created_ms,
        "updated_at": t.updated_ms,
        "final_unit_deduction": final_units(t),
        "task_info": task_info(t),
    });
    if t.status == Status::Completed {
        if let Some(r) = videos(t, false) {
            b["task_result"] = r;
        }
    }
    Some(CallbackBody {
        body: b,
        headers: vec![],
    })
}
