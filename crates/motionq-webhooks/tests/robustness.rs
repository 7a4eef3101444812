//! Property tests: whatever bytes, headers and queries arrive, the parse and verify path
//! answers with a value or a rejection, never a panic, and never quotes the input.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use motionq_core::Vendor;
use motionq_webhooks::{
    parse_delivery, vendor_from_path, verify_standard_webhook, CallbackQuery, SigningSecret,
};
use proptest::prelude::*;
use secrecy::SecretString;

const CALLBACK_VENDORS: [Vendor; 4] = [
    Vendor::Evolink,
    Vendor::Kkiai,
    Vendor::Aivideoapi,
    Vendor::Freepik,
];

fn header_map(pairs: &[(u8, Vec<u8>)]) -> HeaderMap {
    const NAMES: [&str; 6] = [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-task-id",
        "x-event",
        "content-length",
    ];
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            h.append(HeaderName::from_static(NAMES[*n as usize % NAMES.len()]), v);
        }
    }
    h
}

/// JSON that looks like some vendor's callback, with random values in the right places.
fn vendor_shaped() -> impl Strategy<Value = Vec<u8>> {
    let status = prop_oneof![
        Just("completed".to_string()),
        Just("succeed".to_string()),
        Just("COMPLETED".to_string()),
        Just("failed".to_string()),
        Just("FAILED".to_string()),
        Just("processing".to_string()),
        ".{0,12}",
    ];
    let val = prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
    ];
    (status, ".{0,30}", val.clone(), val).prop_map(|(status, id, a, b)| {
        let bodies = [
            serde_json::json!({"id": id, "status": status, "results": [a], "error": b}),
            serde_json::json!({"task_id": id, "task_status": status, "task_info": {"external_task_id": a}, "task_result": {"videos": [{"url": b}]}}),
            serde_json::json!({"id": id, "status": status, "output": {"urls": a}, "error": b}),
            serde_json::json!({"task_id": id, "status": status, "generated": a, "data": b}),
            serde_json::json!({"data": {"task_id": id, "status": status, "generated": [a]}}),
        ];
        let i = id.len() % bodies.len();
        serde_json::to_vec(&bodies[i]).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(v in 0usize..4, body in proptest::collection::vec(any::<u8>(), 0..600),
                                   hdrs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..6),
                                   msg in proptest::option::of(".{0,40}")) {
        let vendor = CALLBACK_VENDORS[v];
        match parse_delivery(vendor, &header_map(&hdrs), &body, msg.as_deref()) {
            Ok(d) => {
                prop_assert_eq!(d.dedup_key.len(), 32);
                prop_assert!(!d.event.task_id.trim().is_empty());
            }
            Err(r) => {
                prop_assert_eq!(r.status, StatusCode::BAD_REQUEST);
                prop_assert!(r.reason.len() <= 300);
            }
        }
    }

    #[test]
    fn vendor_shaped_json_never_panics_nor_echoes(v in 0usize..4, body in vendor_shaped()) {
        let vendor = CALLBACK_VENDORS[v];
        if let Err(r) = parse_delivery(vendor, &HeaderMap::new(), &body, None) {
            // Only fixed texts: the adapter's code, never a value from the body.
            prop_assert!(r.reason.starts_with("JSON is not a ") || r.reason.starts_with("body is not JSON"), "{}", r.reason);
            prop_assert!(!r.reason.contains('"'));
        }
    }

    #[test]
    fn verification_never_panics(hdrs in proptest::collection::vec((0u8..3, proptest::collection::vec(any::<u8>(), 0..80)), 0..6),
                                 body in proptest::collection::vec(any::<u8>(), 0..200),
                                 now in any::<i64>(), tol in any::<u64>()) {
        let secret = SigningSecret::parse(&SecretString::from("whsec_bW90aW9ucS1zaW0td2ViaG9vay1zZWNyZXQ=".to_string())).unwrap();
        let _ = verify_standard_webhook(&secret, &header_map(&hdrs), &body, now, Duration::from_secs(tol));
    }

    #[test]
    fn signed_deliveries_verify_and_any_bit_flip_does_not(body in proptest::collection::vec(any::<u8>(), 0..300),
                                                          id in "[a-zA-Z0-9_]{1,40}", ts in 0i64..4_000_000_000,
                                                          flip in any::<proptest::sample::Index>()) {
        let secret = SigningSecret::parse(&SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string())).unwrap();
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(&id).unwrap());
        h.insert("webhook-timestamp", HeaderValue::from_str(&ts.to_string()).unwrap());
        h.insert("webhook-signature", HeaderValue::from_str(&secret.sign(&id, ts, &body)).unwrap());
        let tol = Duration::from_secs(300);
        prop_assert_eq!(verify_standard_webhook(&secret, &h, &body, ts, tol).unwrap(), id);
        if !body.is_empty() {
            let mut bad = body.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 1;
            prop_assert!(verify_standard_webhook(&secret, &h, &bad, ts, tol).is_err());
        }
    }

    #[test]
    fn queries_and_paths_never_panic(q in proptest::option::of(".{0,200}"), seg in ".{0,30}") {
        let parsed = CallbackQuery::parse(q.as_deref());
        for v in [&parsed.idem, &parsed.campaign, &parsed.job].into_iter().flatten() {
            prop_assert!(!v.is_empty() && v.len() <= motionq_webhooks::intake::MAX_QUERY_VALUE);
        }
        if let Ok(v) = vendor_from_path(&seg) {
            prop_assert!(v.capabilities().callbacks);
        }
    }
}
