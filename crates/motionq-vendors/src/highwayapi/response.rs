//! Parsing HighwayAPI (Novita) answers, and classifying its errors (pure functions).
//!
//! HTTP errors (VENDORS.md §4.5), by `reason`, then words of `message`, then status:
//!
//! | HTTP | reason | class |
//! |---|---|---|
//! | 400 | `INVALID_REQUEST_BODY` | invalid_request |
//! | 401 | `FAILED_TO_AUTH` | auth |
//! | 403 | `INVALID_API_KEY` | auth |
//! | 403 | `NOT_ENOUGH_BALANCE` | insufficient_funds (403, not 402) |
//! | 403 | `ACCESS_DENY` | forbidden |
//! | 404 | `MODEL_NOT_FOUND`, `TASK_NOT_FOUND` | not_found |
//! | 429 | `RATE_LIMIT_EXCEEDED`, `TOKEN_LIMIT_EXCEEDED` | rate_limited |
//! | 5xx | `SERVICE_NOT_AVAILABLE`, any | upstream_transient |
//!
//! Without a `reason`, a message about `balance` → insufficient_funds and about an `api key` →
//! auth, before the status fallback (a bare 403 is forbidden).
//!
//! Task statuses: `TASK_STATUS_QUEUED`/`_UNKNOWN` → pending, `_PROCESSING` → processing,
//! `_SUCCEED` → completed (link lifetime `video_url_ttl`), `_FAILED` → failed (class from
//! `task.reason`, crate-doc rule).

use std::time::Duration;

use motionq_core::{ErrorClass, Vendor};
use reqwest::header::HeaderMap;

use super::wire::{CreateResponse, ErrorBody, TaskResult, WebhookEvent};
use crate::adapter::{CallbackEvent, Created, TaskState, TaskStatus};
use crate::common::{
    class_from_status, default_lifetime, http_error, is_success, malformed, parse_ok_body,
    task_failure_class_from_text,
};
use crate::error::{bound, VendorError, MAX_CODE_CHARS, MAX_MESSAGE_CHARS};

const V: Vendor = Vendor::Highwayapi;

/// Parses the answer to a create call (`{"task_id"}`).
pub fn parse_create(status: u16, headers: &HeaderMap, body: &[u8]) -> Result<Created, VendorError> {
    if !is_success(status) {
        return Err(classify_error(status, headers, body));
    }
    let r: CreateResponse = parse_ok_body(V, "create", status, headers, body)?;
    if r.task_id.is_none() && r.reason.is_some() {
        // An error body inside a 2xx: its `reason` decides, as for any error answer.
        return Err(classify_error(status, headers, body));
    }
    let task_id = r
        .task_id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| malformed(V, status, headers, "create answer has no `task_id`".into()))?;
    Ok(Created {
        task_id,
        raw_status: None,
    })
}

/// Parses the answer to `GET /v3/async/task-result`.
pub fn parse_query(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TaskState, VendorError> {
    if !is_success(status) {
        return Err(classify_error(status, headers, body));
    }
    let r: TaskResult = parse_ok_body(V, "query", status, headers, body)?;
    task_state(&r, status, headers)
}

/// This endpoint sends no callbacks; should a Novita webhook event
/// (`{"event_type":"ASYNC_TASK_RESULT","payload":<task-result>}`) or a bare task result arrive,
/// it is parsed.
pub fn parse_callback(headers: &HeaderMap, body: &[u8]) -> Result<CallbackEvent, VendorError> {
    let event: WebhookEvent = parse_ok_body(V, "callback", 200, headers, body)?;
    let result = match event.payload {
        Some(p) => p,
        None => parse_ok_body::<TaskResult>(V, "callback", 200, headers, body)?,
    };
    let task_id = result
        .task
        .as_ref()
        .and_then(|t| t.task_id.clone())
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| malformed(V, 200, headers, "callback has no `task.task_id`".into()))?;
    Ok(CallbackEvent {
        task_id,
        external_id: None,
        state: task_state(&result, 200, headers)?,
    })
}

fn task_state(r: &TaskResult, status: u16, headers: &HeaderMap) -> Result<TaskState, VendorError> {
    let task = r
        .task
        .as_ref()
        .ok_or_else(|| malformed(V, status, headers, "answer has no `task`".into()))?;
    let raw = task
        .status
        .clone()
        .ok_or_else(|| malformed(V, status, headers, "answer has no `task.status`".into()))?;
    let out = match raw.as_str() {
        "TASK_STATUS_QUEUED" | "TASK_STATUS_UNKNOWN" => TaskStatus::Pending,
        "TASK_STATUS_PROCESSING" => TaskStatus::Processing,
        "TASK_STATUS_SUCCEED" => {
            let video = r
                .videos
                .as_ref()
                .and_then(|v| {
                    v.iter()
                        .find(|v| v.video_url.as_deref().is_some_and(|u| !u.trim().is_empty()))
                })
                .ok_or_else(|| {
                    malformed(
                        V,
                        status,
                        headers,
                        "succeeded task has no `videos[].video_url`".into(),
                    )
                })?;
            let ttl = video
                .video_url_ttl
                .filter(|t| *t > 0.0 && *t < 1e9)
                .map(Duration::from_secs_f64)
                .or_else(|| default_lifetime(V));
            TaskStatus::Completed {
                output_url: video.video_url.clone().unwrap_or_default(),
                expires_at_hint: ttl,
                billed_seconds: None,
                vendor_charge: None,
            }
        }
        "TASK_STATUS_FAILED" => {
            let reason = task.reason.clone().unwrap_or_default();
            TaskStatus::Failed {
                class: task_failure_class_from_text(&reason),
                code: None,
                message: bound(&reason, MAX_MESSAGE_CHARS),
            }
        }
        other => {
            return Err(malformed(
                V,
                status,
                headers,
                format!("unknown task status `{}`", bound(other, MAX_CODE_CHARS)),
            )
            .with_code(Some("unknown_status".into())))
        }
    };
    Ok(TaskState {
        status: out,
        progress: task.progress_percent,
        raw_status: bound(&raw, MAX_CODE_CHARS),
    })
}

/// Classifies an error answer (module table).
pub fn classify_error(status: u16, headers: &HeaderMap, body: &[u8]) -> VendorError {
    let e = serde_json::from_slice::<ErrorBody>(body).ok();
    let reason = e.as_ref().and_then(|e| e.reason.clone());
    let message = e.as_ref().and_then(|e| e.message.clone());
    let class = if status >= 500 {
        ErrorClass::UpstreamTransient
    } else {
        match reason.as_deref() {
            Some("INVALID_REQUEST_BODY") => ErrorClass::InvalidRequest,
            Some("FAILED_TO_AUTH" | "INVALID_API_KEY") => ErrorClass::Auth,
            Some("NOT_ENOUGH_BALANCE") => ErrorClass::InsufficientFunds,
            Some("ACCESS_DENY") => ErrorClass::Forbidden,
            Some("MODEL_NOT_FOUND" | "TASK_NOT_FOUND") => ErrorClass::NotFound,
            Some("RATE_LIMIT_EXCEEDED" | "TOKEN_LIMIT_EXCEEDED") => ErrorClass::RateLimited,
            Some("SERVICE_NOT_AVAILABLE") => ErrorClass::UpstreamTransient,
            _ => {
                let m = message.as_deref().unwrap_or("").to_lowercase();
                if m.contains("balance") {
                    ErrorClass::InsufficientFunds
                } else if m.contains("api key") || m.contains("api_key") {
                    ErrorClass::Auth
                } else {
                    class_from_status(status)
                }
            }
        }
    };
    let code = reason.or_else(|| e.as_ref().and_then(|e| e.code.clone()));
    http_error(V, class, status, headers, code, message, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_support::no_headers;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/highwayapi/", $name))
        };
    }

    #[test]
    fn create_response_example() {
        let c = parse_create(200, &no_headers(), fixture!("create_response.json")).unwrap();
        assert_eq!(c.task_id, "830d9c90-8f7a-4a4b-9d4e-1a2b3c4d5e6f");
        assert!(parse_create(200, &no_headers(), br#"{"task_id":""}"#).is_err());
        let e = parse_create(
            200,
            &no_headers(),
            fixture!("error_403_NOT_ENOUGH_BALANCE.json"),
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::InsufficientFunds);
    }

    #[test]
    fn status_mapping() {
        let s = parse_query(200, &no_headers(), fixture!("query_queued.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Pending);
        let s = parse_query(200, &no_headers(), fixture!("query_unknown.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Pending);
        let s = parse_query(200, &no_headers(), fixture!("query_processing.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Processing);
        assert_eq!(s.progress, Some(40));
        let s = parse_query(200, &no_headers(), fixture!("query_succeed.json")).unwrap();
        assert_eq!(
            s.status,
            TaskStatus::Completed {
                output_url: "https://faas-output.example.com/830d9c90.mp4?X-Amz-Expires=3600"
                    .into(),
                expires_at_hint: Some(Duration::from_secs(3600)),
                billed_seconds: None,
                vendor_charge: None,
            }
        );
        assert_eq!(s.raw_status, "TASK_STATUS_SUCCEED");
        let s = parse_query(200, &no_headers(), fixture!("query_failed.json")).unwrap();
        assert!(matches!(
            s.status,
            TaskStatus::Failed {
                class: ErrorClass::ContentPolicy,
                ..
            }
        ));
    }

    #[test]
    fn ttl_as_number_and_missing_ttl() {
        let body = br#"{"task":{"task_id":"t","status":"TASK_STATUS_SUCCEED"},"videos":[{"video_url":"https://x/v.mp4","video_url_ttl":120}]}"#;
        match parse_query(200, &no_headers(), body).unwrap().status {
            TaskStatus::Completed {
                expires_at_hint, ..
            } => {
                assert_eq!(expires_at_hint, Some(Duration::from_secs(120)))
            }
            other => panic!("{other:?}"),
        }
        let body = br#"{"task":{"task_id":"t","status":"TASK_STATUS_SUCCEED"},"videos":[{"video_url":"https://x/v.mp4"}]}"#;
        match parse_query(200, &no_headers(), body).unwrap().status {
            TaskStatus::Completed {
                expires_at_hint, ..
            } => {
                assert_eq!(expires_at_hint, Some(Duration::from_secs(3600)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_http_error_row() {
        let cases: &[(u16, &[u8], ErrorClass, &str)] = &[
            (
                400,
                fixture!("error_400_INVALID_REQUEST_BODY.json"),
                ErrorClass::InvalidRequest,
                "INVALID_REQUEST_BODY",
            ),
            (
                401,
                fixture!("error_401_FAILED_TO_AUTH.json"),
                ErrorClass::Auth,
                "FAILED_TO_AUTH",
            ),
            (
                403,
                fixture!("error_403_INVALID_API_KEY.json"),
                ErrorClass::Auth,
                "INVALID_API_KEY",
            ),
            (
                403,
                fixture!("error_403_NOT_ENOUGH_BALANCE.json"),
                ErrorClass::InsufficientFunds,
                "NOT_ENOUGH_BALANCE",
            ),
            (
                403,
                fixture!("error_403_ACCESS_DENY.json"),
                ErrorClass::Forbidden,
                "ACCESS_DENY",
            ),
            (
                404,
                fixture!("error_404_MODEL_NOT_FOUND.json"),
                ErrorClass::NotFound,
                "MODEL_NOT_FOUND",
            ),
            (
                404,
                fixture!("error_404_TASK_NOT_FOUND.json"),
                ErrorClass::NotFound,
                "TASK_NOT_FOUND",
            ),
            (
                429,
                fixture!("error_429_RATE_LIMIT_EXCEEDED.json"),
                ErrorClass::RateLimited,
                "RATE_LIMIT_EXCEEDED",
            ),
            (
                429,
                fixture!("error_429_TOKEN_LIMIT_EXCEEDED.json"),
                ErrorClass::RateLimited,
                "TOKEN_LIMIT_EXCEEDED",
            ),
            (
                503,
                fixture!("error_503_SERVICE_NOT_AVAILABLE.json"),
                ErrorClass::UpstreamTransient,
                "SERVICE_NOT_AVAILABLE",
            ),
            (
                504,
                fixture!("error_504_SERVICE_NOT_AVAILABLE.json"),
                ErrorClass::UpstreamTransient,
                "SERVICE_NOT_AVAILABLE",
            ),
        ];
        for (status, body, class, code) in cases {
            for e in [
                parse_create(*status, &no_headers(), body).unwrap_err(),
                parse_query(*status, &no_headers(), body).unwrap_err(),
            ] {
                assert_eq!(e.class, *class, "{status} {code}");
                assert_eq!(e.code.as_deref(), Some(*code));
            }
        }
    }

    #[test]
    fn reasonless_403s_use_the_message() {
        let c = |body: &[u8]| parse_create(403, &no_headers(), body).unwrap_err().class;
        assert_eq!(
            c(br#"{"message":"Not enough balance"}"#),
            ErrorClass::InsufficientFunds
        );
        assert_eq!(c(br#"{"message":"API key is missing"}"#), ErrorClass::Auth);
        assert_eq!(c(b"forbidden"), ErrorClass::Forbidden);
    }

    #[test]
    fn webhook_event_and_bare_result() {
        let ev = parse_callback(&no_headers(), fixture!("webhook_event.json")).unwrap();
        assert_eq!(ev.task_id, "830d9c90-8f7a-4a4b-9d4e-1a2b3c4d5e6f");
        assert!(matches!(ev.state.status, TaskStatus::Completed { .. }));
        let ev = parse_callback(&no_headers(), fixture!("query_failed.json")).unwrap();
        assert!(matches!(ev.state.status, TaskStatus::Failed { .. }));
    }
}
