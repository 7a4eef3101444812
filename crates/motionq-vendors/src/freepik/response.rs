//! Parsing Freepik answers, webhooks and task lists, and classifying its errors (pure functions).
//!
//! Freepik errors are `{"message": …}` with no code (VENDORS.md §5.5), so the HTTP status decides,
//! except for 429, which Freepik uses for its per-second limit, its daily caps and (inferred) an
//! empty credit balance alike. The 429 heuristic, on the lower-cased message:
//!
//! 1. `credit`, `balance`, `insufficient`, `top up` → insufficient_funds;
//! 2. `daily`, `per day`, `today`, `quota`, `exhausted`, `usage` → quota_exhausted;
//! 3. `limit` not preceded by "rate" (`rate limit`, `rate-limit`, `ratelimit`) → quota_exhausted
//!    (e.g. "Your total usage limit has been reached");
//! 4. anything else (including "Rate limit exceeded", "Too many requests", no message) →
//!    rate_limited.
//!
//! A quota misread as a rate limit costs a few backed-off retries before the key is parked by the
//! next 429; a rate limit misread as a quota parks the key until its window resets, so rule 3
//! deliberately needs a limit that is *not* a rate limit.
//!
//! Other statuses: 400/422 → invalid_request, 401 → auth, 402 → insufficient_funds, 403 →
//! forbidden, 404 → not_found, 5xx → upstream_transient.
//!
//! Task statuses: `CREATED` → pending, `IN_PROGRESS` → processing, `COMPLETED` → completed
//! (`generated[0]`), `FAILED` → failed (no reason is documented: content_policy unless an
//! `error`/`message` field says otherwise, crate-doc rule).

use motionq_core::{ErrorClass, Vendor};
use reqwest::header::HeaderMap;

use super::wire::{Envelope, ErrorBody, ListEnvelope, Task};
use crate::adapter::{CallbackEvent, Created, FindOutcome, ListedTask, TaskState, TaskStatus};
use crate::common::{
    class_from_status, default_lifetime, http_error, is_success, malformed, parse_ok_body,
    task_failure_class_from_text,
};
use crate::error::{bound, VendorError, MAX_CODE_CHARS, MAX_MESSAGE_CHARS};

const V: Vendor = Vendor::Freepik;

/// Parses the answer to a create call (`{"data":{"task_id","status":"CREATED"}}`).
pub fn parse_create(status: u16, headers: &HeaderMap, body: &[u8]) -> Result<Created, VendorError> {
    if !is_success(status) {
        return Err(classify_error(status, headers, body));
    }
    let env: Envelope = parse_ok_body(V, "create", status, headers, body)?;
    let task = env
        .data
        .ok_or_else(|| malformed(V, status, headers, "create answer has no `data`".into()))?;
    let task_id = task
        .task_id
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| {
            malformed(
                V,
                status,
                headers,
                "create answer has no `data.task_id`".into(),
            )
        })?;
    Ok(Created {
        task_id,
        raw_status: task.status,
    })
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
    let env: Envelope = parse_ok_body(V, "query", status, headers, body)?;
    let task = env
        .data
        .ok_or_else(|| malformed(V, status, headers, "query answer has no `data`".into()))?;
    task_state(&task, status, headers)
}

/// Parses a webhook: the query body without the `data` wrapper (a wrapped body is accepted too).
pub fn parse_callback(headers: &HeaderMap, body: &[u8]) -> Result<CallbackEvent, VendorError> {
    let bare: Task = parse_ok_body(V, "webhook", 200, headers, body)?;
    let task = if bare.status.is_some() {
        bare
    } else {
        parse_ok_body::<Envelope>(V, "webhook", 200, headers, body)?
            .data
            .ok_or_else(|| malformed(V, 200, headers, "webhook has no `status`".into()))?
    };
    let task_id = task
        .task_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| malformed(V, 200, headers, "webhook has no `task_id`".into()))?;
    Ok(CallbackEvent {
        task_id,
        external_id: None,
        state: task_state(&task, 200, headers)?,
    })
}

/// Parses the tier's task list into reconciliation candidates.
pub fn parse_list(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<FindOutcome, VendorError> {
    if !is_success(status) {
        return Err(classify_error(status, headers, body));
    }
    let env: ListEnvelope = parse_ok_body(V, "list", status, headers, body)?;
    let items = env
        .data
        .ok_or_else(|| malformed(V, status, headers, "list answer has no `data` array".into()))?;
    Ok(FindOutcome::Candidates(
        items
            .into_iter()
            .filter_map(|t| {
                Some(ListedTask {
                    task_id: t.task_id.filter(|id| !id.trim().is_empty())?,
                    raw_status: bound(&t.status.unwrap_or_default(), MAX_CODE_CHARS),
                })
            })
            .collect(),
    ))
}

fn task_state(task: &Task, status: u16, headers: &HeaderMap) -> Result<TaskState, VendorError> {
    let raw = task
        .status
        .clone()
        .ok_or_else(|| malformed(V, status, headers, "task has no `status`".into()))?;
    let out = match raw.as_str() {
        "CREATED" => TaskStatus::Pending,
        "IN_PROGRESS" => TaskStatus::Processing,
        "COMPLETED" => TaskStatus::Completed {
            output_url: task
                .generated
                .iter()
                .find(|u| !u.trim().is_empty())
                .cloned()
                .ok_or_else(|| {
                    malformed(
                        V,
                        status,
                        headers,
                        "COMPLETED task has no `generated[0]`".into(),
                    )
                })?,
            expires_at_hint: default_lifetime(V),
            billed_seconds: None,
            vendor_charge: None,
        },
        "FAILED" => {
            let reason = task
                .error
                .clone()
                .or_else(|| task.message.clone())
                .unwrap_or_default();
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
        progress: None,
        raw_status: bound(&raw, MAX_CODE_CHARS),
    })
}

/// The class of a Freepik 429 from its message (module doc).
pub fn classify_429_message(message: &str) -> ErrorClass {
    let m = message.to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if any(&["credit", "balance", "insufficient", "top up"]) {
        ErrorClass::InsufficientFunds
    } else if any(&["daily", "per day", "today", "quota", "exhausted", "usage"])
        || (m.contains("limit") && !any(&["rate limit", "rate-limit", "ratelimit"]))
    {
        ErrorClass::QuotaExhausted
    } else {
        ErrorClass::RateLimited
    }
}

/// Classifies an error answer (module doc).
pub fn classify_error(status: u16, headers: &HeaderMap, body: &[u8]) -> VendorError {
    let e = serde_json::from_slice::<ErrorBody>(body).ok();
    let mut message = e.as_ref().and_then(|e| e.message.clone());
    if let Some(params) = e.as_ref().and_then(|e| e.invalid_params.as_ref()) {
        let detail: Vec<String> = params
            .iter()
            .map(|p| {
                format!(
                    "{}: {}",
                    p.name.as_deref().unwrap_or("?"),
                    p.reason.as_deref().unwrap_or("invalid")
                )
            })
            .collect();
        if !detail.is_empty() {
            message = Some(format!(
                "{} ({})",
                message.unwrap_or_default(),
                detail.join("; ")
            ));
        }
    }
    let class = match status {
        429 => classify_429_message(message.as_deref().unwrap_or("")),
        _ => class_from_status(status),
    };
    // Freepik has no codes; the class name is the most useful bounded label.
    http_error(V, class, status, headers, None, message, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_support::no_headers;
    use std::time::Duration;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/freepik/", $name))
        };
    }

    #[test]
    fn create_response_example() {
        let c = parse_create(200, &no_headers(), fixture!("create_response.json")).unwrap();
        assert_eq!(c.task_id, "046b6c7f-0b8a-43b9-b35d-6489e6daee91");
        assert_eq!(c.raw_status.as_deref(), Some("CREATED"));
    }

    #[test]
    fn status_mapping() {
        let s = parse_query(200, &no_headers(), fixture!("query_created.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Pending);
        let s = parse_query(200, &no_headers(), fixture!("query_in_progress.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Processing);
        let s = parse_query(200, &no_headers(), fixture!("query_completed.json")).unwrap();
        assert_eq!(
            s.status,
            TaskStatus::Completed {
                output_url: "https://cdn.freepik.com/outputs/video.mp4".into(),
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
                code: None,
                message: String::new(),
            }
        );
        let s = parse_query(
            200,
            &no_headers(),
            br#"{"data":{"task_id":"t","status":"FAILED","error":{"message":"service overloaded"}}}"#,
        )
        .unwrap();
        assert!(matches!(
            s.status,
            TaskStatus::Failed {
                class: ErrorClass::UpstreamTransient,
                ..
            }
        ));
    }

    #[test]
    fn webhook_without_wrapper() {
        let ev = parse_callback(&no_headers(), fixture!("webhook_completed.json")).unwrap();
        assert_eq!(ev.task_id, "046b6c7f-0b8a-43b9-b35d-6489e6daee91");
        assert!(matches!(ev.state.status, TaskStatus::Completed { .. }));
        let ev = parse_callback(&no_headers(), fixture!("query_in_progress.json")).unwrap();
        assert_eq!(ev.state.status, TaskStatus::Processing);
        assert!(parse_callback(&no_headers(), b"{}").is_err());
    }

    #[test]
    fn list_gives_candidates() {
        match parse_list(200, &no_headers(), fixture!("list.json")).unwrap() {
            FindOutcome::Candidates(c) => {
                assert_eq!(c.len(), 2);
                assert_eq!(c[0].task_id, "046b6c7f-0b8a-43b9-b35d-6489e6daee91");
                assert_eq!(c[1].raw_status, "IN_PROGRESS");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_list(200, &no_headers(), br#"{"data":[]}"#).unwrap(),
            FindOutcome::Candidates(vec![])
        );
        assert!(parse_list(200, &no_headers(), br#"{"data":{}}"#).is_err());
    }

    #[test]
    fn every_error_status() {
        let cases: &[(u16, &[u8], ErrorClass)] = &[
            (400, fixture!("error_400.json"), ErrorClass::InvalidRequest),
            (401, fixture!("error_401.json"), ErrorClass::Auth),
            (403, fixture!("error_403.json"), ErrorClass::Forbidden),
            (404, fixture!("error_404.json"), ErrorClass::NotFound),
            (
                429,
                fixture!("error_429_rate.json"),
                ErrorClass::RateLimited,
            ),
            (
                429,
                fixture!("error_429_daily.json"),
                ErrorClass::QuotaExhausted,
            ),
            (
                429,
                fixture!("error_429_credits.json"),
                ErrorClass::InsufficientFunds,
            ),
            (
                500,
                fixture!("error_500.json"),
                ErrorClass::UpstreamTransient,
            ),
            (
                503,
                fixture!("error_503.json"),
                ErrorClass::UpstreamTransient,
            ),
            (
                402,
                br#"{"message":"Payment required"}"#,
                ErrorClass::InsufficientFunds,
            ),
        ];
        for (status, body, class) in cases {
            let e = parse_create(*status, &no_headers(), body).unwrap_err();
            assert_eq!(
                e.class,
                *class,
                "{status} {}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(e.http_status, Some(*status));
        }
        let e = parse_create(400, &no_headers(), fixture!("error_400.json")).unwrap_err();
        assert!(
            e.message.contains("cfg_scale: must be between 0 and 1"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_429_heuristic() {
        use ErrorClass::*;
        for (m, c) in [
            ("Rate limit exceeded. Please try again later.", RateLimited),
            ("Too many requests", RateLimited),
            ("", RateLimited),
            ("rate-limit hit: 10 requests per second", RateLimited),
            ("Your daily usage limit has been reached", QuotaExhausted),
            ("Daily quota exceeded for this endpoint", QuotaExhausted),
            ("Limit reached", QuotaExhausted),
            ("Your total usage limit has been reached", QuotaExhausted),
            (
                "Your credit limit has been reached. Please add credits.",
                InsufficientFunds,
            ),
            ("Insufficient balance", InsufficientFunds),
        ] {
            assert_eq!(classify_429_message(m), c, "{m}");
        }
    }
}
