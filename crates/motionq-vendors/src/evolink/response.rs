//! Parsing EvoLink answers and callbacks, and classifying EvoLink errors (pure functions).
//!
//! HTTP errors (VENDORS.md §1.5), by `error.code`, then `error.type`, then status:
//!
//! | HTTP | code | class |
//! |---|---|---|
//! | 400 | `invalid_request`, `invalid_task_id` | invalid_request |
//! | 401 | `unauthorized` | auth |
//! | 402 | `insufficient_quota`, `quota_exceeded` | insufficient_funds |
//! | 403 | `model_access_denied`, `permission_denied` | forbidden |
//! | 404 | `task_not_found` | not_found |
//! | 429 | `rate_limit_exceeded` (or an int code) | rate_limited |
//! | 5xx | any | upstream_transient |
//!
//! Task failures (`status: failed`, `error.code`): see [`classify_task_failure`].

use motionq_core::{ErrorClass, Vendor};
use reqwest::header::HeaderMap;

use super::wire::{ErrorEnvelope, ErrorObject, Task};
use crate::adapter::{CallbackEvent, Created, TaskState, TaskStatus};
use crate::common::{
    class_from_status, default_lifetime, first_non_blank, http_error, is_success, malformed,
    parse_ok_body, task_failure_class_from_text,
};
use crate::error::{bound, VendorError, MAX_CODE_CHARS, MAX_MESSAGE_CHARS};

const V: Vendor = Vendor::Evolink;

/// Parses the answer to a create call.
pub fn parse_create(status: u16, headers: &HeaderMap, body: &[u8]) -> Result<Created, VendorError> {
    if !is_success(status) {
        return Err(classify_error(status, headers, body));
    }
    let task: Task = parse_ok_body(V, "create", status, headers, body)?;
    match task.id.filter(|id| !id.trim().is_empty()) {
        Some(task_id) => Ok(Created {
            task_id,
            raw_status: task.status,
        }),
        // An error envelope inside a 2xx: classify its code like any error answer.
        None if task.error.is_some() => Err(classify_error(status, headers, body)),
        None => Err(malformed(
            V,
            status,
            headers,
            "create answer has no `id`".into(),
        )),
    }
}

/// Parses the answer to a task query.
pub fn parse_query(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TaskState, VendorError> {
    if !is_success(status) {
        return Err(classify_error(status, headers, body));
    }
    let task: Task = parse_ok_body(V, "query", status, headers, body)?;
    task_state(task, status, headers)
}

/// Parses a callback: the body is the query answer (VENDORS.md §1.4). EvoLink signs nothing.
pub fn parse_callback(headers: &HeaderMap, body: &[u8]) -> Result<CallbackEvent, VendorError> {
    let task: Task = parse_ok_body(V, "callback", 200, headers, body)?;
    let task_id = task
        .id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| malformed(V, 200, headers, "callback has no `id`".into()))?;
    Ok(CallbackEvent {
        task_id,
        external_id: None,
        state: task_state(task, 200, headers)?,
    })
}

fn task_state(task: Task, status: u16, headers: &HeaderMap) -> Result<TaskState, VendorError> {
    let raw = task
        .status
        .clone()
        .ok_or_else(|| malformed(V, status, headers, "task has no `status`".into()))?;
    let status_out = match raw.as_str() {
        "pending" => TaskStatus::Pending,
        "processing" => TaskStatus::Processing,
        "completed" => {
            let from_result_data = task.result_data.as_ref().and_then(|rd| {
                rd.iter()
                    .find_map(|r| first_non_blank(&[r.video_url.as_ref(), r.url.as_ref()]))
            });
            let output_url = task
                .results
                .iter()
                .find(|u| !u.trim().is_empty())
                .cloned()
                .or(from_result_data)
                .ok_or_else(|| {
                    malformed(
                        V,
                        status,
                        headers,
                        "completed task has neither `results` nor `result_data[].video_url`".into(),
                    )
                })?;
            let billed_seconds = task
                .result_data
                .as_ref()
                .and_then(|rd| rd.iter().find_map(|r| r.duration))
                .or(task.task_info.as_ref().and_then(|i| i.video_duration));
            TaskStatus::Completed {
                output_url,
                expires_at_hint: default_lifetime(V),
                billed_seconds,
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
        status: status_out,
        progress: task.progress,
        raw_status: bound(&raw, MAX_CODE_CHARS),
    })
}

/// The class of a failed task from its `error.code` (VENDORS.md §1.3, EvoLink's error-code
/// page):
/// * `content_policy_violation` → content_policy;
/// * `invalid_parameters`, `image_processing_error`, `image_dimension_mismatch` → invalid_request
///   (the input is wrong);
/// * `request_cancelled` → invalid_request (someone cancelled it at EvoLink: terminal, not
///   resubmitted automatically);
/// * `quota_exceeded` ("rate limit or quota exceeded") → rate_limited;
/// * the server-side codes (`generation_failed_no_content`, `service_error`, `generation_timeout`,
///   `resource_exhausted`, `service_unavailable`, `resource_not_found`, `unknown_error`) →
///   upstream_transient (EvoLink calls them retryable);
/// * anything else → the free-text rule of the crate doc.
pub fn classify_task_failure(error: Option<&ErrorObject>) -> (ErrorClass, Option<String>, String) {
    let code = error.and_then(|e| e.code.clone());
    let message = error.and_then(|e| e.message.clone()).unwrap_or_default();
    let class = match code.as_deref().unwrap_or("") {
        "content_policy_violation" => ErrorClass::ContentPolicy,
        "invalid_parameters"
        | "image_processing_error"
        | "image_dimension_mismatch"
        | "request_cancelled" => ErrorClass::InvalidRequest,
        "quota_exceeded" => ErrorClass::RateLimited,
        "generation_failed_no_content"
        | "service_error"
        | "generation_timeout"
        | "resource_exhausted"
        | "service_unavailable"
        | "resource_not_found"
        | "unknown_error" => ErrorClass::UpstreamTransient,
        other => task_failure_class_from_text(&format!("{other} {message}")),
    };
    (
        class,
        code.map(|c| bound(&c, MAX_CODE_CHARS)),
        bound(&message, MAX_MESSAGE_CHARS),
    )
}

/// Classifies a non-2xx answer (table in the module doc).
pub fn classify_error(status: u16, headers: &HeaderMap, body: &[u8]) -> VendorError {
    let err = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .and_then(|e| e.error);
    let code = err.as_ref().and_then(|e| e.code.clone());
    let kind = err.as_ref().and_then(|e| e.kind.clone());
    let class = if status >= 500 {
        ErrorClass::UpstreamTransient
    } else {
        match (code.as_deref(), kind.as_deref()) {
            (Some("invalid_request" | "invalid_task_id" | "invalid_parameters"), _) => {
                ErrorClass::InvalidRequest
            }
            (Some("unauthorized" | "invalid_api_key"), _) | (_, Some("authentication_error")) => {
                ErrorClass::Auth
            }
            // 402 is the only way EvoLink reports an empty balance; `quota_exceeded` is the query
            // spec's name for the same 402.
            (Some("insufficient_quota" | "quota_exceeded"), _) if status == 402 => {
                ErrorClass::InsufficientFunds
            }
            (Some("insufficient_quota"), _) | (_, Some("insufficient_quota")) => {
                ErrorClass::InsufficientFunds
            }
            (Some("model_access_denied" | "permission_denied"), _) => ErrorClass::Forbidden,
            (Some("task_not_found" | "model_not_found"), _) => ErrorClass::NotFound,
            (Some("rate_limit_exceeded"), _) | (_, Some("rate_limit_error")) => {
                ErrorClass::RateLimited
            }
            // Older specs: an int code equal to the status, or codes we do not know.
            _ => class_from_status(status),
        }
    };
    let message = err.as_ref().map(|e| {
        let mut m = e.message.clone().unwrap_or_default();
        if let Some(s) = e.fallback_suggestion.as_deref().filter(|s| !s.is_empty()) {
            m = format!("{m} ({s})");
        }
        m
    });
    http_error(V, class, status, headers, code, message, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_support::{headers, no_headers};
    use std::time::Duration;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/evolink/", $name))
        };
    }

    #[test]
    fn create_response_example() {
        let c = parse_create(200, &no_headers(), fixture!("create_response.json")).unwrap();
        assert_eq!(c.task_id, "task-unified-1757169743-7cvnl5zw");
        assert_eq!(c.raw_status.as_deref(), Some("pending"));
    }

    #[test]
    fn status_mapping() {
        let s = parse_query(200, &no_headers(), fixture!("query_pending.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Pending);
        assert_eq!(s.progress, Some(0));
        let s = parse_query(200, &no_headers(), fixture!("query_processing.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Processing);
        assert_eq!(s.progress, Some(65));
        let s = parse_query(200, &no_headers(), fixture!("query_completed.json")).unwrap();
        assert_eq!(
            s.status,
            TaskStatus::Completed {
                output_url: "https://cdn.evolink.ai/outputs/video.mp4".into(),
                expires_at_hint: Some(Duration::from_secs(24 * 3600)),
                billed_seconds: None,
                vendor_charge: None,
            }
        );
        assert_eq!(s.raw_status, "completed");
        let s = parse_query(
            200,
            &no_headers(),
            fixture!("query_failed_content_policy.json"),
        )
        .unwrap();
        match s.status {
            TaskStatus::Failed {
                class,
                code,
                message,
            } => {
                assert_eq!(class, ErrorClass::ContentPolicy);
                assert_eq!(code.as_deref(), Some("content_policy_violation"));
                assert!(message.contains("content policy"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn result_data_is_accepted_instead_of_results() {
        let s = parse_query(
            200,
            &no_headers(),
            fixture!("query_completed_result_data.json"),
        )
        .unwrap();
        match s.status {
            TaskStatus::Completed {
                output_url,
                billed_seconds,
                ..
            } => {
                assert_eq!(output_url, "https://cdn.evolink.ai/outputs/rd.mp4");
                assert_eq!(billed_seconds, Some(8.0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn completed_without_url_or_unknown_status_is_transient() {
        let e = parse_query(200, &no_headers(), br#"{"id":"t","status":"completed"}"#).unwrap_err();
        assert_eq!(e.class, ErrorClass::UpstreamTransient);
        assert_eq!(e.code.as_deref(), Some("malformed_response"));
        let e = parse_query(200, &no_headers(), br#"{"id":"t","status":"cancelled"}"#).unwrap_err();
        assert_eq!(e.code.as_deref(), Some("unknown_status"));
    }

    #[test]
    fn task_failure_codes() {
        let f = |code: &str| {
            let body = format!(
                r#"{{"id":"t","status":"failed","error":{{"code":"{code}","message":"m","type":"task_error"}}}}"#
            );
            match parse_query(200, &no_headers(), body.as_bytes())
                .unwrap()
                .status
            {
                TaskStatus::Failed { class, .. } => class,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(f("content_policy_violation"), ErrorClass::ContentPolicy);
        assert_eq!(f("invalid_parameters"), ErrorClass::InvalidRequest);
        assert_eq!(f("image_dimension_mismatch"), ErrorClass::InvalidRequest);
        assert_eq!(f("request_cancelled"), ErrorClass::InvalidRequest);
        assert_eq!(f("quota_exceeded"), ErrorClass::RateLimited);
        for c in [
            "generation_failed_no_content",
            "service_error",
            "generation_timeout",
            "resource_exhausted",
            "service_unavailable",
            "resource_not_found",
            "unknown_error",
        ] {
            assert_eq!(f(c), ErrorClass::UpstreamTransient, "{c}");
        }
        // A failed task without an error object: terminal, content_policy (crate doc rule).
        let s = parse_query(200, &no_headers(), br#"{"id":"t","status":"failed"}"#).unwrap();
        assert!(matches!(
            s.status,
            TaskStatus::Failed {
                class: ErrorClass::ContentPolicy,
                ..
            }
        ));
    }

    #[test]
    fn every_http_error_row() {
        let cases: &[(u16, &[u8], ErrorClass, &str)] = &[
            (
                400,
                fixture!("error_400_invalid_request.json"),
                ErrorClass::InvalidRequest,
                "invalid_request",
            ),
            (
                400,
                fixture!("error_400_invalid_task_id.json"),
                ErrorClass::InvalidRequest,
                "invalid_task_id",
            ),
            (
                401,
                fixture!("error_401_unauthorized.json"),
                ErrorClass::Auth,
                "unauthorized",
            ),
            (
                402,
                fixture!("error_402_insufficient_quota.json"),
                ErrorClass::InsufficientFunds,
                "insufficient_quota",
            ),
            (
                402,
                fixture!("error_402_quota_exceeded.json"),
                ErrorClass::InsufficientFunds,
                "quota_exceeded",
            ),
            (
                403,
                fixture!("error_403_model_access_denied.json"),
                ErrorClass::Forbidden,
                "model_access_denied",
            ),
            (
                403,
                fixture!("error_403_permission_denied.json"),
                ErrorClass::Forbidden,
                "permission_denied",
            ),
            (
                404,
                fixture!("error_404_task_not_found.json"),
                ErrorClass::NotFound,
                "task_not_found",
            ),
            (
                429,
                fixture!("error_429_rate_limit_exceeded.json"),
                ErrorClass::RateLimited,
                "rate_limit_exceeded",
            ),
            (
                429,
                fixture!("error_429_legacy_int_code.json"),
                ErrorClass::RateLimited,
                "429",
            ),
            (
                500,
                fixture!("error_500_internal_error.json"),
                ErrorClass::UpstreamTransient,
                "internal_error",
            ),
            (
                502,
                fixture!("error_502_upstream_error.json"),
                ErrorClass::UpstreamTransient,
                "upstream_error",
            ),
            (
                503,
                fixture!("error_503_service_unavailable.json"),
                ErrorClass::UpstreamTransient,
                "503",
            ),
        ];
        for (status, body, class, code) in cases {
            for e in [
                parse_create(*status, &no_headers(), body).unwrap_err(),
                parse_query(*status, &no_headers(), body).unwrap_err(),
            ] {
                assert_eq!(e.class, *class, "{status} {code}");
                assert_eq!(e.code.as_deref(), Some(*code));
                assert_eq!(e.http_status, Some(*status));
                assert!(!e.message.is_empty());
            }
        }
        let e = parse_create(
            429,
            &no_headers(),
            fixture!("error_429_legacy_int_code.json"),
        )
        .unwrap_err();
        assert!(
            e.message.contains("retry after 60 seconds"),
            "{}",
            e.message
        );
    }

    #[test]
    fn retry_after_and_non_json_errors() {
        let e = parse_create(
            429,
            &headers(&[("retry-after", "30")]),
            b"<html>busy</html>",
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(30)));
        assert!(e.message.contains("<html>busy"), "{}", e.message);
        let e = parse_create(502, &no_headers(), b"").unwrap_err();
        assert_eq!(e.class, ErrorClass::UpstreamTransient);
    }

    #[test]
    fn error_envelope_in_a_2xx_is_classified() {
        let e = parse_create(
            200,
            &no_headers(),
            fixture!("error_402_insufficient_quota.json"),
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::InsufficientFunds);
        assert_eq!(e.http_status, Some(200));
    }

    #[test]
    fn malformed_2xx_is_transient() {
        for body in [&b"{\"id\":\"task-unified-1"[..], b"", b"[]", b"null", b"{}"] {
            let e = parse_create(200, &no_headers(), body).unwrap_err();
            assert_eq!(e.class, ErrorClass::UpstreamTransient);
            assert_eq!(e.code.as_deref(), Some("malformed_response"));
            assert!(e.may_have_created_task());
        }
    }

    #[test]
    fn callback_is_the_query_body() {
        let ev = parse_callback(&no_headers(), fixture!("query_completed.json")).unwrap();
        assert_eq!(ev.task_id, "task-unified-1757169743-7cvnl5zw");
        assert!(ev.state.status.is_terminal());
        assert!(parse_callback(&no_headers(), b"{\"status\":\"completed\"}").is_err());
    }
}
