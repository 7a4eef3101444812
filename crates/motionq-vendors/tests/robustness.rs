//! Nothing a vendor (or an attacker posting to our webhook URL) sends can make an adapter panic,
//! and the error fields stay bounded. Property tests over arbitrary bytes and over JSON built
//! from the vendors' own field names (so the parsers get deep), for every vendor; plus a sweep
//! of every documented fixture through every vendor's parsers.

use motionq_core::{ErrorClass, JobSpec, Orientation, Tier, Vendor};
use motionq_vendors::error::{MAX_CODE_CHARS, MAX_MESSAGE_CHARS};
use motionq_vendors::{adapter_for, CreateContext, TaskRef, VendorError};
use proptest::prelude::*;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Field names and values the five vendors use, so generated JSON hits real code paths.
const KEYS: &[&str] = &[
    "id",
    "task_id",
    "taskId",
    "status",
    "task_status",
    "task_status_msg",
    "progress",
    "progress_percent",
    "results",
    "result_data",
    "video_url",
    "url",
    "duration",
    "error",
    "code",
    "message",
    "msg",
    "type",
    "reason",
    "data",
    "task",
    "task_info",
    "external_task_id",
    "task_result",
    "videos",
    "video_url_ttl",
    "output",
    "urls",
    "generated",
    "final_unit_deduction",
    "payload",
    "event_type",
    "fallback_suggestion",
    "invalid_params",
    "name",
];
const WORDS: &[&str] = &[
    "pending",
    "processing",
    "completed",
    "failed",
    "submitted",
    "succeed",
    "CREATED",
    "IN_PROGRESS",
    "COMPLETED",
    "FAILED",
    "TASK_STATUS_QUEUED",
    "TASK_STATUS_PROCESSING",
    "TASK_STATUS_SUCCEED",
    "TASK_STATUS_FAILED",
    "TASK_STATUS_UNKNOWN",
    "SUCCESS",
    "FAILURE",
    "success",
    "https://x.example/v.mp4",
    "8.041",
    "3600",
    "100%",
    "1102",
    "NOT_ENOUGH_BALANCE",
    "rate_limit_exceeded",
    "spend_limit_exceeded",
    "content_policy_violation",
    "daily limit",
    "",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        prop::sample::select(WORDS).prop_map(|s| Value::String(s.to_string())),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(201),
        Just(400),
        Just(401),
        Just(402),
        Just(403),
        Just(404),
        Just(429),
        Just(500),
        Just(503),
        0u16..1000,
    ]
}

fn vendor() -> impl Strategy<Value = Vendor> {
    prop::sample::select(Vendor::ALL.to_vec())
}

fn check_bounded(e: &VendorError) {
    assert!(e.message.chars().count() <= MAX_MESSAGE_CHARS + 1);
    if let Some(c) = &e.code {
        assert!(c.chars().count() <= MAX_CODE_CHARS + 1);
    }
}

/// Runs every parser of `v` on one answer and checks the invariants that hold for any input.
fn exercise(v: Vendor, status: u16, body: &[u8]) {
    let a = adapter_for(v);
    let h = HeaderMap::new();
    for r in [
        a.parse_create(status, &h, body).err(),
        a.parse_query(status, &h, body).err(),
        a.parse_find(status, &h, body).err(),
        a.parse_callback(&h, body).err(),
    ]
    .into_iter()
    .flatten()
    {
        check_bounded(&r);
    }
    // A 5xx is transient, whatever its body says (AI Video API's `upstream_error` naming the
    // content is the one documented exception).
    if (500..600).contains(&status) {
        for e in [
            a.parse_create(status, &h, body).unwrap_err(),
            a.parse_query(status, &h, body).unwrap_err(),
        ] {
            let ok = e.class == ErrorClass::UpstreamTransient
                || (v == Vendor::Aivideoapi
                    && e.class == ErrorClass::ContentPolicy
                    && e.code.as_deref() == Some("upstream_error"));
            assert!(ok, "{v} {status}: {e}");
        }
    }
    // A non-2xx answer is never a success.
    if !(200..300).contains(&status) {
        assert!(a.parse_create(status, &h, body).is_err());
        assert!(a.parse_query(status, &h, body).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(v in vendor(), status in status(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(v, status, &body);
    }

    #[test]
    fn arbitrary_vendor_shaped_json_never_panics(v in vendor(), status in status(), value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        exercise(v, status, &body);
        // Truncated JSON too (a connection cut mid-body).
        exercise(v, status, &body[..body.len() / 2]);
    }

    #[test]
    fn non_json_2xx_is_transient(v in vendor(), body in "[^\\[{\"0-9tfn -]{1}.{0,60}") {
        let a = adapter_for(v);
        let e = a.parse_create(200, &HeaderMap::new(), body.as_bytes()).unwrap_err();
        prop_assert_eq!(e.class, ErrorClass::UpstreamTransient);
        prop_assert!(e.may_have_created_task());
        let e = a.parse_query(200, &HeaderMap::new(), body.as_bytes()).unwrap_err();
        prop_assert_eq!(e.class, ErrorClass::UpstreamTransient);
    }

    #[test]
    fn build_never_panics_and_keeps_ids_in_their_segment(
        v in vendor(),
        image in prop_oneof![".{0,60}", "https://[a-z]{1,8}\\.example/[a-z.]{0,12}"],
        video in prop_oneof![".{0,60}", "https://[a-z]{1,8}\\.example/[a-z.]{0,12}"],
        prompt in prop::option::of(".{0,80}"),
        negative in prop::option::of(".{0,20}"),
        keep in prop::option::of(any::<bool>()),
        cfg in prop::option::of(-1.0f64..2.0),
        dur in prop::option::of(0.0f64..40.0),
        task_id in ".{0,40}",
    ) {
        let job = JobSpec {
            id: "j".into(),
            image,
            video_url: video,
            prompt,
            negative_prompt: negative,
            orientation: Orientation::Image,
            tier: Tier::Pro,
            keep_sound: keep,
            cfg_scale: cfg,
            video_duration_s: dur,
        };
        let a = adapter_for(v);
        let ctx = CreateContext { idempotency_key: "k".into(), callback_url: None };
        if let Ok(spec) = a.build_create(&job, &ctx) {
            prop_assert!(spec.path_and_query.starts_with('/'));
            prop_assert!(spec.body.as_ref().is_some_and(Value::is_object));
        }
        let q = a.build_query(&TaskRef { task_id: task_id.clone(), tier: Tier::Std });
        let base = a.build_query(&TaskRef { task_id: "x".into(), tier: Tier::Std });
        // The id never adds path segments, a query or a fragment.
        prop_assert_eq!(q.path_and_query.matches('/').count(), base.path_and_query.matches('/').count());
        prop_assert_eq!(q.path_and_query.matches('?').count(), base.path_and_query.matches('?').count());
        prop_assert!(!q.path_and_query.contains('#'));
    }
}

/// Every documented example, through every vendor's parsers, at every interesting status.
#[test]
fn every_fixture_through_every_parser() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut n = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let body = std::fs::read(&path).unwrap();
            serde_json::from_slice::<Value>(&body)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            for v in Vendor::ALL {
                for status in [200, 400, 401, 402, 403, 404, 429, 500, 503] {
                    exercise(v, status, &body);
                }
            }
            n += 1;
        }
    }
    assert!(n >= 80, "only {n} fixtures found");
}
