//! The pure part of a delivery: which vendor the path names, what the URL's query says, the
//! body parsed by the vendor's adapter, and the dedup key. No I/O; never panics on any input
//! (property-tested in `tests/robustness.rs`).

use axum::http::{HeaderMap, StatusCode};
use motionq_core::Vendor;
use motionq_vendors::{adapter_for, CallbackEvent};
use sha2::{Digest, Sha256};

use crate::error::Rejection;

/// Longest query value kept (`mq`, `c`, `j`); longer ones are ignored, not truncated, since a
/// truncated id would name another job.
pub const MAX_QUERY_VALUE: usize = 512;

/// What the callback URL's query carries. The pipeline attaches `?mq=<idempotency key>`
/// (`Pipeline::callback_url`); `c` (campaign) and `j` (job) are accepted too, for URLs that
/// name the job directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackQuery {
    /// The job's idempotency key for this submission generation (`mq`).
    pub idem: Option<String>,
    /// Campaign id (`c`).
    pub campaign: Option<String>,
    /// Job id (`j`).
    pub job: Option<String>,
}

impl CallbackQuery {
    /// Parses a raw (percent-encoded) query string leniently: unknown keys, empty or overlong
    /// values are ignored; the first occurrence of a key wins.
    pub fn parse(raw: Option<&str>) -> Self {
        let mut q = CallbackQuery::default();
        let Some(raw) = raw else { return q };
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            if v.is_empty() || v.len() > MAX_QUERY_VALUE {
                continue;
            }
            let slot = match k.as_ref() {
                "mq" => &mut q.idem,
                "c" => &mut q.campaign,
                "j" => &mut q.job,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.into_owned());
            }
        }
        q
    }

    /// `(campaign, job)` when both are given.
    pub fn job(&self) -> Option<(&str, &str)> {
        Some((self.campaign.as_deref()?, self.job.as_deref()?))
    }
}

/// The vendor named by the path segment, if it sends callbacks. Unknown names and vendors
/// without callbacks (HighwayAPI) are `404`: there is nothing to deliver to.
pub fn vendor_from_path(segment: &str) -> Result<Vendor, Rejection> {
    let vendor: Vendor = segment
        .parse()
        .map_err(|_| Rejection::new(StatusCode::NOT_FOUND, "unknown vendor"))?;
    if !vendor.capabilities().callbacks {
        return Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("{vendor} sends no callbacks"),
        ));
    }
    Ok(vendor)
}

/// A delivery after parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Who sent it (from the path).
    pub vendor: Vendor,
    /// What the vendor's adapter read from it.
    pub event: CallbackEvent,
    /// The dedup key: a hash of the Standard-Webhooks message id where there is one
    /// (Freepik), else of vendor + task id + the vendor's raw status, so a retried delivery
    /// of one status change is recognised while the next status change is not.
    pub dedup_key: String,
}

/// Parses a delivery's body with the vendor's adapter and derives its dedup key. `msg_id` is
/// the verified `webhook-id` of signed vendors.
///
/// Garbage is a `400` whose reason never quotes the body: either the JSON syntax error's
/// position, or the adapter's error code (`malformed_response`, `unknown_status`).
pub fn parse_delivery(
    vendor: Vendor,
    headers: &HeaderMap,
    body: &[u8],
    msg_id: Option<&str>,
) -> Result<Delivery, Rejection> {
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        // serde_json's syntax errors carry a category and a position, never input text.
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!(
                "body is not JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        ));
    }
    let event = adapter_for(vendor)
        .parse_callback(headers, body)
        .map_err(|e| {
            // The adapter's message may quote the body: only its code is used.
            let code = e.code.as_deref().unwrap_or("unparsable");
            let code: String = code
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(40)
                .collect();
            Rejection::new(
                StatusCode::BAD_REQUEST,
                format!("JSON is not a {vendor} callback ({code})"),
            )
        })?;
    let mut h = Sha256::new();
    match msg_id {
        Some(id) => {
            h.update(b"msg\0");
            h.update(id.as_bytes());
        }
        None => {
            h.update(b"task\0");
            h.update(event.task_id.as_bytes());
            h.update(b"\0");
            h.update(event.state.raw_status.as_bytes());
        }
    }
    let dedup_key = hex::encode(&h.finalize()[..16]);
    Ok(Delivery {
        vendor,
        event,
        dedup_key,
    })
}

/// The task id as it may appear in a log line: bounded and printable.
pub(crate) fn loggable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn query_is_parsed_leniently() {
        let q = CallbackQuery::parse(Some("mq=mq-abc-g0&c=spring%202026&j=job%2F1&x=1&mq=other"));
        assert_eq!(q.idem.as_deref(), Some("mq-abc-g0"));
        assert_eq!(q.job(), Some(("spring 2026", "job/1")));
        assert_eq!(CallbackQuery::parse(None), CallbackQuery::default());
        let long = format!("mq={}", "a".repeat(MAX_QUERY_VALUE + 1));
        assert_eq!(CallbackQuery::parse(Some(&long)).idem, None);
        assert_eq!(CallbackQuery::parse(Some("c=x")).job(), None);
        assert_eq!(CallbackQuery::parse(Some("%zz=&&==&mq=")).idem, None);
    }

    #[test]
    fn vendors_from_the_path() {
        assert_eq!(vendor_from_path("freepik").unwrap(), Vendor::Freepik);
        assert_eq!(vendor_from_path("kkiai").unwrap(), Vendor::Kkiai);
        assert_eq!(
            vendor_from_path("nope").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            vendor_from_path("highwayapi").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            vendor_from_path("Freepik").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn bodies_of_each_vendor_parse() {
        let h = HeaderMap::new();
        let d = parse_delivery(
            Vendor::Evolink,
            &h,
            br#"{"id":"task-unified-1-abc","status":"completed","results":["https://x/y.mp4"]}"#,
            None,
        )
        .unwrap();
        assert_eq!(d.event.task_id, "task-unified-1-abc");
        assert!(d.event.state.status.is_terminal());
        let d2 = parse_delivery(
            Vendor::Evolink,
            &h,
            br#"{"id":"task-unified-1-abc","status":"processing","progress":50}"#,
            None,
        )
        .unwrap();
        assert_ne!(
            d.dedup_key, d2.dedup_key,
            "another status change is not a duplicate"
        );
        let k = parse_delivery(Vendor::Kkiai, &h, br#"{"task_id":"123","task_status":"succeed","task_info":{"external_task_id":"mq-x-g0"},"task_result":{"videos":[{"id":"v","url":"https://x/v.mp4","duration":"5"}]}}"#, None).unwrap();
        assert_eq!(k.event.external_id.as_deref(), Some("mq-x-g0"));
        let mut ah = HeaderMap::new();
        ah.insert("x-task-id", HeaderValue::from_static("7f1c"));
        let a = parse_delivery(
            Vendor::Aivideoapi,
            &ah,
            br#"{"status":"failed","error":{"code":"x","message":"y"}}"#,
            None,
        )
        .unwrap();
        assert_eq!(a.event.task_id, "7f1c");
        let f1 = parse_delivery(
            Vendor::Freepik,
            &h,
            br#"{"task_id":"u-1","status":"COMPLETED","generated":["https://x/f.mp4"]}"#,
            Some("msg_1"),
        )
        .unwrap();
        let f2 = parse_delivery(
            Vendor::Freepik,
            &h,
            br#"{"task_id":"u-1","status":"COMPLETED","generated":["https://x/f.mp4"]}"#,
            Some("msg_2"),
        )
        .unwrap();
        assert_ne!(f1.dedup_key, f2.dedup_key, "Freepik dedups by webhook-id");
    }

    #[test]
    fn garbage_is_a_400_that_never_quotes_the_body() {
        let h = HeaderMap::new();
        for body in [
            &b"SECRET-ish garbage"[..],
            b"",
            b"{\"id\":",
            b"[1,2]",
            b"{\"id\":\"SECRETVALUE\"}",
            b"{\"id\":\"t\",\"status\":\"SECRETSTATUS\"}",
        ] {
            let r = parse_delivery(Vendor::Evolink, &h, body, None).unwrap_err();
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            assert!(!r.reason.contains("SECRET"), "{}", r.reason);
        }
    }
}
