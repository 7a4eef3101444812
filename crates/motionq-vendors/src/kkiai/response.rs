//! Parsing KKIAI (Kling) answers and callbacks, and classifying Kling errors (pure functions).
//!
//! Kling service codes (VENDORS.md §2.5), read from the body's integer `code` at any HTTP status
//! (also at 200: a non-zero `code` is an error):
//!
//! | code | class |
//! |---|---|
//! | 1000–1004 | auth |
//! | 1100 (account exception), 1103 (no access), 1304 (IP whitelist) | forbidden |
//! | 1101 (arrears) | insufficient_funds |
//! | 1102 (resource pack depleted or expired) | quota_exhausted: a used-up pack is what VENDORS.md's vocabulary calls a quota; both classes park the key |
//! | 1200, 1201, 1202 | invalid_request |
//! | 1203 | not_found |
//! | 1300, 1301 | content_policy |
//! | 1302 (too fast), 1303 (concurrency over the pack limit) | rate_limited |
//! | 5000–5002, or any 5xx | upstream_transient |
//!
//! A create refused because `external_task_id` is already used (1201 with a message naming
//! the field) gets code [`crate::error::DUPLICATE_SUBMISSION`]: see
//! [`crate::VendorError::is_duplicate_submission`].
//!
//! A gateway error (`{"error":{"code","message","type"}}`, KKIAI's own token/wallet/rate checks,
//! INFERRED) is classified by its code words: `quota`/`balance`/`insufficient` → insufficient_funds,
//! `rate_limit` → rate_limited, `invalid_api_key`/`token`/`unauthorized` → auth; otherwise by
//! HTTP status.
//!
//! Task statuses: `submitted` → pending, `processing` → processing, `succeed` → completed,
//! `failed` → failed (class from `task_status_msg`, see the crate doc). Wrapped gateway bodies
//! (`data.data.data.task_status`) are unwrapped; a wrapper without the inner Kling task is mapped
//! from its own `status` (`SUBMITTED`/`QUEUED`/`NOT_START` → pending, `IN_PROGRESS` →
//! processing, `FAILURE` → failed).

use motionq_core::{ErrorClass, Vendor};
use reqwest::header::HeaderMap;

use super::wire::{CallbackBody, Data, Envelope};
use crate::adapter::{CallbackEvent, Created, FindOutcome, TaskState, TaskStatus};
use crate::common::{
    class_from_status, default_lifetime, http_error, is_success, malformed, parse_ok_body,
    task_failure_class_from_text,
};
use crate::error::{bound, VendorError, DUPLICATE_SUBMISSION, MAX_CODE_CHARS, MAX_MESSAGE_CHARS};

const V: Vendor = Vendor::Kkiai;

/// Kling's code for "resource does not exist" (an unknown task or external id).
const NOT_FOUND_CODE: i64 = 1203;

/// Parses the answer to a create call.
pub fn parse_create(status: u16, headers: &HeaderMap, body: &[u8]) -> Result<Created, VendorError> {
    if !is_success(status) {
        return Err(classify_error(status, headers, body));
    }
    let env: Envelope = parse_ok_body(V, "create", status, headers, body)?;
    if envelope_is_error(&env) {
        return Err(classify_error(status, headers, body));
    }
    let task = resolve(&env);
    match task
        .and_then(|t| t.task_id.clone())
        .filter(|id| !id.trim().is_empty())
    {
        Some(task_id) => Ok(Created {
            task_id,
            raw_status: task.and_then(|t| t.task_status.clone().or(t.status.clone())),
        }),
        // The seed documents `{}` as the success body; without an id the task may exist, so
        // this is transient and the submit stage reconciles by external_task_id.
        None => Err(malformed(
            V,
            status,
            headers,
            "create answer has no `data.task_id`".into(),
        )),
    }
}

/// Parses the answer to a task query (bare or gateway-wrapped).
pub fn parse_query(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TaskState, VendorError> {
    if !is_success(status) {
        return Err(classify_error(status, headers, body));
    }
    let env: Envelope = parse_ok_body(V, "query", status, headers, body)?;
    if envelope_is_error(&env) {
        return Err(classify_error(status, headers, body));
    }
    let outer = env
        .data
        .as_ref()
        .ok_or_else(|| malformed(V, status, headers, "query answer has no `data`".into()))?;
    match resolve(&env) {
        Some(task) => {
            let mut state = task_state(task, status, headers)?;
            if state.progress.is_none() {
                state.progress = outer.progress;
            }
            Ok(state)
        }
        None => wrapper_state(outer, status, headers),
    }
}

/// Parses the answer to a lookup by `external_task_id`: the task, or [`FindOutcome::Absent`]
/// on Kling's "does not exist" (code 1203, or a 404 that is not a routing error 1202).
pub fn parse_find(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<FindOutcome, VendorError> {
    let env = serde_json::from_slice::<Envelope>(body).ok();
    let code = env.as_ref().and_then(kling_code);
    if code == Some(NOT_FOUND_CODE) || (status == 404 && code != Some(1202)) {
        return Ok(FindOutcome::Absent);
    }
    let state = parse_query(status, headers, body)?;
    let env =
        env.ok_or_else(|| malformed(V, status, headers, "lookup answer is not JSON".into()))?;
    let task_id = resolve(&env)
        .and_then(|t| t.task_id.clone())
        .or_else(|| env.data.as_ref().and_then(|d| d.task_id.clone()))
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| malformed(V, status, headers, "lookup answer has no task id".into()))?;
    Ok(FindOutcome::Found { task_id, state })
}

/// Parses a callback: the bare Kling task object (VENDORS.md §2.4); an enveloped body is
/// accepted too.
pub fn parse_callback(headers: &HeaderMap, body: &[u8]) -> Result<CallbackEvent, VendorError> {
    let bare: CallbackBody = parse_ok_body(V, "callback", 200, headers, body)?;
    let env_holder;
    let task: &Data = if bare.task_status.is_some() {
        &bare
    } else {
        env_holder = parse_ok_body::<Envelope>(V, "callback", 200, headers, body)?;
        resolve(&env_holder)
            .ok_or_else(|| malformed(V, 200, headers, "callback has no `task_status`".into()))?
    };
    let task_id = task
        .task_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| malformed(V, 200, headers, "callback has no `task_id`".into()))?;
    Ok(CallbackEvent {
        task_id,
        external_id: task
            .task_info
            .as_ref()
            .and_then(|i| i.external_task_id.clone())
            .filter(|e| !e.is_empty()),
        state: task_state(task, 200, headers)?,
    })
}

/// The Kling task inside an envelope: `data` itself, or `data.data.data` in the wrapped form.
fn resolve(env: &Envelope) -> Option<&Data> {
    let data = env.data.as_ref()?;
    if data.task_status.is_some() {
        return Some(data);
    }
    let inner = data.data.as_ref()?.data.as_ref()?;
    inner.task_status.is_some().then_some(inner)
}

/// The Kling code as an integer (`0` = success); gateways' `"success"` is not a number.
fn kling_code(env: &Envelope) -> Option<i64> {
    env.code
        .as_deref()
        .and_then(|c| c.trim().parse::<i64>().ok())
}

/// A 2xx body that reports an error: a non-zero Kling code, or a gateway error without data.
fn envelope_is_error(env: &Envelope) -> bool {
    matches!(kling_code(env), Some(c) if c != 0) || (env.error.is_some() && env.data.is_none())
}

fn task_state(task: &Data, status: u16, headers: &HeaderMap) -> Result<TaskState, VendorError> {
    let raw = task
        .task_status
        .clone()
        .ok_or_else(|| malformed(V, status, headers, "task has no `task_status`".into()))?;
    let out = match raw.as_str() {
        "submitted" => TaskStatus::Pending,
        "processing" => TaskStatus::Processing,
        // `succeed` is Kling's spelling; `succeeded` is accepted in case a gateway "fixes" it.
        "succeed" | "succeeded" => {
            let video = task
                .task_result
                .as_ref()
                .and_then(|r| r.videos.as_ref())
                .and_then(|v| {
                    v.iter()
                        .find(|v| v.url.as_deref().is_some_and(|u| !u.trim().is_empty()))
                });
            let video = video.ok_or_else(|| {
                malformed(
                    V,
                    status,
                    headers,
                    "succeeded task has no `task_result.videos[].url`".into(),
                )
            })?;
            TaskStatus::Completed {
                output_url: video.url.clone().unwrap_or_default(),
                expires_at_hint: default_lifetime(V),
                billed_seconds: video.duration,
                vendor_charge: task
                    .final_unit_deduction
                    .as_ref()
                    .map(|c| bound(c, MAX_CODE_CHARS)),
            }
        }
        "failed" => {
            let msg = task.task_status_msg.clone().unwrap_or_default();
            TaskStatus::Failed {
                class: task_failure_class_from_text(&msg),
                code: None,
                message: bound(&msg, MAX_MESSAGE_CHARS),
            }
        }
        other => {
            return Err(malformed(
                V,
                status,
                headers,
                format!("unknown task_status `{}`", bound(other, MAX_CODE_CHARS)),
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

/// A gateway wrapper whose inner Kling answer is missing: map the gateway's own status.
fn wrapper_state(outer: &Data, status: u16, headers: &HeaderMap) -> Result<TaskState, VendorError> {
    let raw = outer.status.clone().ok_or_else(|| {
        malformed(
            V,
            status,
            headers,
            "query answer has no `data.task_status`".into(),
        )
    })?;
    let out = match raw.to_ascii_uppercase().as_str() {
        "NOT_START" | "SUBMITTED" | "QUEUED" => TaskStatus::Pending,
        "IN_PROGRESS" | "PROCESSING" => TaskStatus::Processing,
        "FAILURE" | "FAILED" => {
            let msg = outer.fail_reason.clone().unwrap_or_default();
            TaskStatus::Failed {
                class: task_failure_class_from_text(&msg),
                code: None,
                message: bound(&msg, MAX_MESSAGE_CHARS),
            }
        }
        "SUCCESS" => {
            return Err(malformed(
                V,
                status,
                headers,
                "wrapped answer says SUCCESS without the Kling task result".into(),
            ))
        }
        _ => {
            return Err(malformed(
                V,
                status,
                headers,
                format!("unknown status `{}`", bound(&raw, MAX_CODE_CHARS)),
            )
            .with_code(Some("unknown_status".into())))
        }
    };
    Ok(TaskState {
        status: out,
        progress: outer.progress,
        raw_status: bound(&raw, MAX_CODE_CHARS),
    })
}

/// The class of a Kling service code (module table); `None` for codes Kling does not document.
pub fn kling_code_class(code: i64) -> Option<ErrorClass> {
    Some(match code {
        1000..=1004 => ErrorClass::Auth,
        1100 | 1103 | 1304 => ErrorClass::Forbidden,
        1101 => ErrorClass::InsufficientFunds,
        1102 => ErrorClass::QuotaExhausted,
        1200..=1202 => ErrorClass::InvalidRequest,
        1203 => ErrorClass::NotFound,
        1300 | 1301 => ErrorClass::ContentPolicy,
        1302 | 1303 => ErrorClass::RateLimited,
        5000..=5002 => ErrorClass::UpstreamTransient,
        _ => return None,
    })
}

/// Classifies an error answer: a non-2xx, or a 2xx whose envelope reports an error.
pub fn classify_error(status: u16, headers: &HeaderMap, body: &[u8]) -> VendorError {
    let env = serde_json::from_slice::<Envelope>(body).ok();
    let kling = env.as_ref().and_then(kling_code).filter(|c| *c != 0);
    let gateway = env.as_ref().and_then(|e| e.error.as_ref());
    let fallback = || class_from_status(status);
    let class = if status >= 500 {
        ErrorClass::UpstreamTransient
    } else if let Some(c) = kling {
        kling_code_class(c).unwrap_or_else(fallback)
    } else if let Some(g) = gateway {
        let words = format!(
            "{} {}",
            g.code.as_deref().unwrap_or(""),
            g.kind.as_deref().unwrap_or("")
        )
        .to_lowercase();
        if words.contains("quota") || words.contains("balance") || words.contains("insufficient") {
            ErrorClass::InsufficientFunds
        } else if words.contains("rate_limit") {
            ErrorClass::RateLimited
        } else if words.contains("invalid_api_key")
            || words.contains("token")
            || words.contains("unauthorized")
            || words.contains("authentication")
        {
            ErrorClass::Auth
        } else {
            fallback()
        }
    } else {
        fallback()
    };
    let mut code = kling
        .map(|c| c.to_string())
        .or_else(|| gateway.and_then(|g| g.code.clone()));
    let mut message = env
        .as_ref()
        .and_then(|e| e.message.clone())
        .filter(|m| !m.is_empty())
        .or_else(|| gateway.and_then(|g| g.message.clone()));
    // Kling answers a reused external_task_id with a parameter error (1201) naming the field:
    // the earlier task exists, which the submit stage must know (reconcile, do not fail).
    if class == ErrorClass::InvalidRequest {
        if let Some(m) = &message {
            let l = m.to_lowercase();
            if l.contains("external_task_id") && (l.contains("exist") || l.contains("duplicat")) {
                message = Some(format!("[{}] {m}", code.as_deref().unwrap_or("")));
                code = Some(DUPLICATE_SUBMISSION.to_string());
            }
        }
    }
    http_error(V, class, status, headers, code, message, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_support::no_headers;
    use std::time::Duration;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/kkiai/", $name))
        };
    }

    #[test]
    fn create_response_example() {
        let c = parse_create(200, &no_headers(), fixture!("create_response.json")).unwrap();
        assert_eq!(c.task_id, "860260753860210752");
        assert_eq!(c.raw_status.as_deref(), Some("submitted"));
        // The seed's `{}`: no id, so transient (and reconcile by external_task_id).
        let e =
            parse_create(200, &no_headers(), fixture!("create_response_empty.json")).unwrap_err();
        assert_eq!(e.class, ErrorClass::UpstreamTransient);
        assert!(e.may_have_created_task());
    }

    #[test]
    fn status_mapping() {
        let s = parse_query(200, &no_headers(), fixture!("query_submitted.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Pending);
        assert_eq!(s.raw_status, "submitted");
        let s = parse_query(200, &no_headers(), fixture!("query_processing.json")).unwrap();
        assert_eq!(s.status, TaskStatus::Processing);
        let s = parse_query(200, &no_headers(), fixture!("query_succeed.json")).unwrap();
        assert_eq!(
            s.status,
            TaskStatus::Completed {
                output_url: "https://cdn.klingai.com/outputs/v-1.mp4".into(),
                expires_at_hint: Some(Duration::from_secs(30 * 24 * 3600)),
                billed_seconds: Some(8.041),
                vendor_charge: Some("7.2".into()),
            }
        );
        let s = parse_query(200, &no_headers(), fixture!("query_failed.json")).unwrap();
        match s.status {
            TaskStatus::Failed { class, message, .. } => {
                assert_eq!(class, ErrorClass::ContentPolicy);
                assert!(message.contains("risk control"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrapped_gateway_bodies() {
        let s = parse_query(200, &no_headers(), fixture!("query_wrapped_succeed.json")).unwrap();
        match s.status {
            TaskStatus::Completed {
                output_url,
                billed_seconds,
                vendor_charge,
                ..
            } => {
                assert_eq!(output_url, "https://cdn.klingai.com/outputs/v-1.mp4");
                assert_eq!(billed_seconds, Some(8.041));
                assert_eq!(vendor_charge.as_deref(), Some("7.2"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.progress, Some(100), "the wrapper's progress is kept");
        let s = parse_query(
            200,
            &no_headers(),
            fixture!("query_wrapped_in_progress.json"),
        )
        .unwrap();
        assert_eq!(s.status, TaskStatus::Processing);
        assert_eq!(s.progress, Some(30));
        let e = parse_query(
            200,
            &no_headers(),
            br#"{"code":"success","data":{"task_id":"1","status":"SUCCESS"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::UpstreamTransient);
    }

    #[test]
    fn duration_as_number_is_accepted() {
        let body = br#"{"code":0,"data":{"task_id":"1","task_status":"succeed","task_result":{"videos":[{"url":"https://x/v.mp4","duration":5}]}}}"#;
        match parse_query(200, &no_headers(), body).unwrap().status {
            TaskStatus::Completed { billed_seconds, .. } => assert_eq!(billed_seconds, Some(5.0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_kling_code() {
        let cases: &[(u16, &[u8], ErrorClass)] = &[
            (401, fixture!("error_401_1000.json"), ErrorClass::Auth),
            (401, fixture!("error_401_1001.json"), ErrorClass::Auth),
            (401, fixture!("error_401_1002.json"), ErrorClass::Auth),
            (401, fixture!("error_401_1003.json"), ErrorClass::Auth),
            (401, fixture!("error_401_1004.json"), ErrorClass::Auth),
            (429, fixture!("error_429_1100.json"), ErrorClass::Forbidden),
            (
                429,
                fixture!("error_429_1101.json"),
                ErrorClass::InsufficientFunds,
            ),
            (
                429,
                fixture!("error_429_1102.json"),
                ErrorClass::QuotaExhausted,
            ),
            (403, fixture!("error_403_1103.json"), ErrorClass::Forbidden),
            (
                400,
                fixture!("error_400_1200.json"),
                ErrorClass::InvalidRequest,
            ),
            (
                400,
                fixture!("error_400_1201.json"),
                ErrorClass::InvalidRequest,
            ),
            (
                404,
                fixture!("error_404_1202.json"),
                ErrorClass::InvalidRequest,
            ),
            (404, fixture!("error_404_1203.json"), ErrorClass::NotFound),
            (
                400,
                fixture!("error_400_1300.json"),
                ErrorClass::ContentPolicy,
            ),
            (
                400,
                fixture!("error_400_1301.json"),
                ErrorClass::ContentPolicy,
            ),
            (
                429,
                fixture!("error_429_1302.json"),
                ErrorClass::RateLimited,
            ),
            (
                429,
                fixture!("error_429_1303.json"),
                ErrorClass::RateLimited,
            ),
            (429, fixture!("error_429_1304.json"), ErrorClass::Forbidden),
            (
                500,
                fixture!("error_500_5000.json"),
                ErrorClass::UpstreamTransient,
            ),
            (
                503,
                fixture!("error_503_5001.json"),
                ErrorClass::UpstreamTransient,
            ),
            (
                504,
                fixture!("error_504_5002.json"),
                ErrorClass::UpstreamTransient,
            ),
            (
                402,
                fixture!("error_402_gateway_quota.json"),
                ErrorClass::InsufficientFunds,
            ),
            (
                401,
                fixture!("error_401_gateway_token.json"),
                ErrorClass::Auth,
            ),
            (
                429,
                fixture!("error_429_gateway_rate.json"),
                ErrorClass::RateLimited,
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
            assert!(e.code.is_some());
            let q = parse_query(*status, &no_headers(), body).unwrap_err();
            assert_eq!(q.class, *class);
        }
    }

    #[test]
    fn the_same_429_means_different_things() {
        let class = |code: i64| {
            let body = format!(r#"{{"code":{code},"message":"m","request_id":"r"}}"#);
            parse_create(429, &no_headers(), body.as_bytes())
                .unwrap_err()
                .class
        };
        assert_eq!(class(1302), ErrorClass::RateLimited);
        assert_eq!(class(1303), ErrorClass::RateLimited);
        assert_eq!(class(1102), ErrorClass::QuotaExhausted);
        assert_eq!(class(1101), ErrorClass::InsufficientFunds);
        // An undocumented code on a 429 falls back to the status.
        assert_eq!(class(1999), ErrorClass::RateLimited);
    }

    #[test]
    fn reused_external_task_id_is_a_duplicate_submission() {
        let e = parse_create(
            400,
            &no_headers(),
            br#"{"code":1201,"message":"Invalid request parameters: external_task_id already exists","request_id":"r"}"#,
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert!(e.is_duplicate_submission());
        assert!(e.may_have_created_task());
        assert!(e.message.contains("[1201]"), "{}", e.message);
        let e = parse_create(400, &no_headers(), fixture!("error_400_1201.json")).unwrap_err();
        assert!(!e.is_duplicate_submission());
    }

    #[test]
    fn nonzero_code_on_http_200_is_an_error() {
        let e = parse_create(200, &no_headers(), fixture!("error_429_1302.json")).unwrap_err();
        assert_eq!(e.class, ErrorClass::RateLimited);
        assert_eq!(e.code.as_deref(), Some("1302"));
        let e = parse_query(200, &no_headers(), br#"{"code":1201,"message":"bad"}"#).unwrap_err();
        assert_eq!(e.class, ErrorClass::InvalidRequest);
    }

    #[test]
    fn find_by_external_id() {
        match parse_find(200, &no_headers(), fixture!("query_processing.json")).unwrap() {
            FindOutcome::Found { task_id, state } => {
                assert_eq!(task_id, "860260753860210752");
                assert_eq!(state.status, TaskStatus::Processing);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_find(404, &no_headers(), fixture!("error_404_1203.json")).unwrap(),
            FindOutcome::Absent
        );
        assert_eq!(
            parse_find(404, &no_headers(), b"not found").unwrap(),
            FindOutcome::Absent
        );
        // A routing error is not proof of absence.
        assert!(parse_find(404, &no_headers(), fixture!("error_404_1202.json")).is_err());
        let e = parse_find(429, &no_headers(), fixture!("error_429_1302.json")).unwrap_err();
        assert_eq!(e.class, ErrorClass::RateLimited);
        assert!(parse_find(200, &no_headers(), b"{\"code\":0").is_err());
    }

    #[test]
    fn callbacks() {
        let ev = parse_callback(&no_headers(), fixture!("callback_succeed.json")).unwrap();
        assert_eq!(ev.task_id, "860260753860210752");
        assert_eq!(ev.external_id.as_deref(), Some("xxx"));
        assert!(matches!(ev.state.status, TaskStatus::Completed { .. }));
        let ev = parse_callback(&no_headers(), fixture!("callback_processing.json")).unwrap();
        assert_eq!(ev.state.status, TaskStatus::Processing);
        // Enveloped form accepted too.
        let ev = parse_callback(&no_headers(), fixture!("query_failed.json")).unwrap();
        assert!(matches!(ev.state.status, TaskStatus::Failed { .. }));
        assert!(parse_callback(&no_headers(), b"{}").is_err());
    }
}
