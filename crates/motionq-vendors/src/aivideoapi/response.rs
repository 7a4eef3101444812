//! Parsing AI Video API answers and callbacks, and classifying its errors (pure functions).
//!
//! HTTP errors (VENDORS.md §3.5), by `error.code`, then `error.type`, then status:
//!
//! | HTTP | code | class |
//! |---|---|---|
//! | 400 | `invalid_request` (also a failed duration probe) | invalid_request |
//! | 401 | `invalid_api_key` | auth |
//! | 402 | `insufficient_credits` | insufficient_funds |
//! | 403 | `ip_not_allowed` | forbidden |
//! | 404 | `model_not_found`, `task_not_found` | not_found |
//! | 429 | `rate_limit_exceeded` (`rate_limit_error`) | rate_limited |
//! | 429 | `spend_limit_exceeded` (`billing_error`) | quota_exhausted (the key's hourly/daily/total cap) |
//! | 500 | `internal_error` | upstream_transient |
//! | 503 | `upstream_error` | upstream_transient; content_policy when the message names the content (`sensitive`, `prohibited`, `policy`, …: the docs list content among its causes). Nothing is charged at create time, so an unexplained 503 is retried |
//!
//! Task failures (`status: failed`): `invalid_request` → invalid_request, `internal_error` →
//! upstream_transient, anything else (typically `upstream_error` "Video generation failed") by
//! the free-text rule of the crate doc (default content_policy).

use motionq_core::{ErrorClass, Vendor};
use reqwest::header::HeaderMap;

use super::wire::{CreateResponse, ErrorEnvelope, ErrorObject, Task};
use crate::adapter::{CallbackEvent, Created, TaskState, TaskStatus};
use crate::common::{
    class_from_status, default_lifetime, http_error, is_success, malformed,
    mentions_content_policy, parse_ok_body, task_failure_class_from_text,
};
use crate::error::{bound, VendorError, MAX_CODE_CHARS, MAX_MESSAGE_CHARS};

const V: Vendor = Vendor::Aivideoapi;

/// Parses the answer to a create call.
pub fn parse_create(status: u16, headers: &HeaderMap, body: &[u8]) -> Result<Created, VendorError> {
    if !is_success(status) {
        return Err(classify_error(status, headers, body));
    }
    let r: CreateResponse = parse_ok_body(V, "create", status, headers, body)?;
    // `code` mirrors an HTTP status; anything but 200 in a 2xx answer is an error report.
    let body_code = r.code.as_deref().and_then(|c| c.parse::<u16>().ok());
    if r.error.is_some() || body_code.is_some_and(|c| c != 200) {
        let effective = body_code
            .filter(|c| (400..600).contains(c))
            .unwrap_or(status);
        return Err(classify_error(effective, headers, body).with_status(status));
    }
    let task_id = r
        .data
        .and_then(|d| d.task_id_camel.or(d.task_id_snake))
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| {
            malformed(
                V,
                status,
                headers,
                "create answer has no `data.taskId`".into(),
            )
        })?;
    Ok(Created {
        task_id,
        raw_status: None,
    })
}

/// Parses the answer to a task query (the bare task object).
pub fn parse_query(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TaskState, VendorError> {
    if !is_success(status) {
        return Err(classify_error(status, headers, body));
    }
    let task: Task = parse_ok_body(V, "query", status, headers, body)?;
    task_state(&task, status, headers)
}

/// Parses a callback: the task object; the task id falls back to the `X-Task-Id` header.
pub fn parse_callback(headers: &HeaderMap, body: &[u8]) -> Result<CallbackEvent, VendorError> {
    let task: Task = parse_ok_body(V, "callback", 200, headers, body)?;
    let header_id = headers
        .get("x-task-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let task_id = task
        .id
        .clone()
        .or(header_id)
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| {
            malformed(
                V,
                200,
                headers,
                "callback has neither `id` nor X-Task-Id".into(),
            )
        })?;
    Ok(CallbackEvent {
        task_id,
        external_id: None,
        state: task_state(&task, 200, headers)?,
    })
}

fn task_state(task: &Task, status: u16, headers: &HeaderMap) -> Result<TaskState, VendorError> {
    let raw = task
        .status
        .clone()
        .ok_or_else(|| malformed(V, status, headers, "task has no `status`".into()))?;
    let out = match raw.as_str() {
        "pending" => TaskStatus::Pending,
        "processing" => TaskStatus::Processing,
        "completed" => {
            let url = task
                .output
                .as_ref()
                .and_then(|o| o.urls.iter().find(|u| !u.trim().is_empty()).cloned())
                .ok_or_else(|| {
                    malformed(
                        V,
                        status,
                        headers,
                        "completed task has no `output.urls[0]`".into(),
                    )
                })?;
            TaskStatus::Completed {
                output_url: url,
                expires_at_hint: default_lifetime(V),
                billed_seconds: None,
                vendor_charge: None,
            }
        }
        "failed" => {
            let (class, code, message) = classify_task_failure(task.error.as_ref());
            TaskStatus::Failed {
                class,
                code,
                message,
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
        progress: task.progress,
        raw_status: bound(&raw, MAX_CODE_CHARS),
    })
}

/// The class of a failed task (module doc).
pub fn classify_task_failure(error: Option<&ErrorObject>) -> (ErrorClass, Option<String>, String) {
    let code = error.and_then(|e| e.code.clone());
    let message = error.and_then(|e| e.message.clone()).unwrap_or_default();
    let class = match code.as_deref().unwrap_or("") {
        "invalid_request" => ErrorClass::InvalidRequest,
        "internal_error" => ErrorClass::UpstreamTransient,
        "content_policy_violation" => ErrorClass::ContentPolicy,
        _ => task_failure_class_from_text(&message),
    };
    (
        class,
        code.map(|c| bound(&c, MAX_CODE_CHARS)),
        bound(&message, MAX_MESSAGE_CHARS),
    )
}

/// Classifies an error answer (module table).
pub fn classify_error(status: u16, headers: &HeaderMap, body: &[u8]) -> VendorError {
    let env = serde_json::from_slice::<ErrorEnvelope>(body).ok();
    let err = env.as_ref().and_then(|e| e.error.as_ref());
    let code = err.and_then(|e| e.code.clone());
    let kind = err.and_then(|e| e.kind.clone());
    let message_text = err.and_then(|e| e.message.as_deref()).unwrap_or("");
    let class = if code.as_deref() == Some("upstream_error")
        && mentions_content_policy(message_text)
    {
        // 503 `upstream_error` also covers "the input contains sensitive or prohibited content"
        // (VENDORS.md §6.4): only when the message says so, the job's content is at fault.
        ErrorClass::ContentPolicy
    } else if status >= 500 {
        ErrorClass::UpstreamTransient
    } else {
        match (code.as_deref(), kind.as_deref()) {
            (Some("invalid_request"), _) => ErrorClass::InvalidRequest,
            (Some("invalid_api_key"), _) | (_, Some("authentication_error")) => ErrorClass::Auth,
            (Some("insufficient_credits"), _) => ErrorClass::InsufficientFunds,
            (Some("ip_not_allowed"), _) | (_, Some("permission_error")) => ErrorClass::Forbidden,
            (Some("model_not_found" | "task_not_found"), _) => ErrorClass::NotFound,
            (Some("rate_limit_exceeded"), _) | (_, Some("rate_limit_error")) => {
                ErrorClass::RateLimited
            }
            (Some("spend_limit_exceeded"), _) => ErrorClass::QuotaExhausted,
            // A billing error we do not know: a 429 is a cap, anything else an empty balance.
            (_, Some("billing_error")) if status == 429 => ErrorClass::QuotaExhausted,
            (_, Some("billing_error")) => ErrorClass::InsufficientFunds,
            (Some("internal_error" | "upstream_error"), _) => ErrorClass::UpstreamTransient,
            _ => class_from_status(status),
        }
    };
    let message = err
        .and_then(|e| e.message.clone())
        .or_else(|| env.as_ref().and_then(|e| e.msg.clone()));
    http_error(V, class, status, headers, code, message, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_support::{headers, no_headers};
    use std::time::Duration;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/aivideoapi/", $name))
        };
    }

    #[test]
    fn create_response_example() {
        let c = parse_create(200, &no_headers(), fixture!("create_response.json")).unwrap();
        assert_eq!(c.task_id, "8b6a5162-5c91-4a42-8e80-4c8ef5486f24");
        let e = parse_create(
            200,
            &no_headers(),
            br#"{"code":200,"msg":"success","data":{}}"#,
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::UpstreamTransient);
        // An error code inside a 200.
        let e = parse_create(
            200,
            &no_headers(),
            br#"{"code":402,"msg":"Insufficient credits"}"#,
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::InsufficientFunds);
        assert_eq!(e.http_status, Some(200));
    }

    #[test]
    fn status_mapping() {
        let s = parse_query(200, &no_headers(), fixture!("query_pending.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Pending);
        assert_eq!(s.progress, None, "null progress");
        let s = parse_query(200, &no_headers(), fixture!("query_processing.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Processing);
        let s = parse_query(200, &no_headers(), fixture!("query_completed.json")).unwrap();
        assert_eq!(
            s.status,
            TaskStatus::Completed {
                output_url: "https://file.aivideoapi.ai/videos/2026/06/15/abc.mp4".into(),
                expires_at_hint: Some(Duration::from_secs(86_400)),
                billed_seconds: None,
                vendor_charge: None,
            }
        );
        let s = parse_query(200, &no_headers(), fixture!("query_failed.json")).unwrap();
        assert_eq!(
            s.status,
            TaskStatus::Failed {
                class: ErrorClass::ContentPolicy,
                code: Some("upstream_error".into()),
                message: "Video generation failed".into(),
            }
        );
        let s = parse_query(
            200,
            &no_headers(),
            br#"{"id":"x","status":"processing","progress":42}"#,
        )
        .unwrap();
        assert_eq!(s.progress, Some(42));
    }

    #[test]
    fn every_http_error_row() {
        let cases: &[(u16, &[u8], ErrorClass)] = &[
            (
                400,
                fixture!("error_400_invalid_request.json"),
                ErrorClass::InvalidRequest,
            ),
            (
                401,
                fixture!("error_401_invalid_api_key.json"),
                ErrorClass::Auth,
            ),
            (
                402,
                fixture!("error_402_insufficient_credits.json"),
                ErrorClass::InsufficientFunds,
            ),
            (
                403,
                fixture!("error_403_ip_not_allowed.json"),
                ErrorClass::Forbidden,
            ),
            (
                404,
                fixture!("error_404_model_not_found.json"),
                ErrorClass::NotFound,
            ),
            (
                404,
                fixture!("error_404_task_not_found.json"),
                ErrorClass::NotFound,
            ),
            (
                429,
                fixture!("error_429_rate_limit_exceeded.json"),
                ErrorClass::RateLimited,
            ),
            (
                429,
                fixture!("error_429_spend_limit_exceeded.json"),
                ErrorClass::QuotaExhausted,
            ),
            (
                500,
                fixture!("error_500_internal_error.json"),
                ErrorClass::UpstreamTransient,
            ),
            (
                503,
                fixture!("error_503_upstream_error.json"),
                ErrorClass::UpstreamTransient,
            ),
        ];
        for (status, body, class) in cases {
            for e in [
                parse_create(*status, &no_headers(), body).unwrap_err(),
                parse_query(*status, &no_headers(), body).unwrap_err(),
            ] {
                assert_eq!(
                    e.class,
                    *class,
                    "{status} {}",
                    String::from_utf8_lossy(body)
                );
                assert_eq!(e.http_status, Some(*status));
                assert!(e.code.is_some());
            }
        }
    }

    #[test]
    fn upstream_error_naming_the_content_is_content_policy() {
        let e = parse_create(
            503,
            &no_headers(),
            br#"{"error":{"code":"upstream_error","message":"The input contains sensitive or prohibited content","type":"upstream_error"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::ContentPolicy);
        assert_eq!(e.http_status, Some(503));
    }

    #[test]
    fn unknown_billing_429_is_a_cap() {
        let e = parse_create(
            429,
            &no_headers(),
            br#"{"error":{"code":"daily_budget","message":"m","type":"billing_error"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::QuotaExhausted);
    }

    #[test]
    fn callback_uses_the_task_or_the_header() {
        let ev = parse_callback(
            &headers(&[
                ("x-event", "task.completed"),
                ("x-task-id", "8b6a5162-5c91-4a42-8e80-4c8ef5486f24"),
            ]),
            fixture!("query_completed.json"),
        )
        .unwrap();
        assert_eq!(ev.task_id, "8b6a5162-5c91-4a42-8e80-4c8ef5486f24");
        assert!(matches!(ev.state.status, TaskStatus::Completed { .. }));
        let ev = parse_callback(
            &headers(&[("x-task-id", "from-header")]),
            br#"{"status":"failed","error":{"code":"upstream_error","message":"Video generation failed"}}"#,
        )
        .unwrap();
        assert_eq!(ev.task_id, "from-header");
        assert!(parse_callback(&no_headers(), br#"{"status":"failed"}"#).is_err());
    }
}
