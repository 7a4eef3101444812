//! What a job looks like in Redis: the stream entry fields, the delayed-ZSET member, the
//! dead-letter entry, and the per-delivery facts a handler can read ([`Delivery`]).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use apalis_core::task::from_request::FromRequest;
use apalis_core::task::Task;
use serde::{Deserialize, Serialize};

/// Longest error text stored with a retried or dead-lettered job.
pub(crate) const MAX_ERROR_LEN: usize = 2_000;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= MAX_ERROR_LEN {
        return s.to_string();
    }
    let mut end = MAX_ERROR_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A job as stored: its id, its JSON payload (kept verbatim, so a retry re-enqueues the exact
/// bytes) and its retry state. Stream entry fields and the delayed-ZSET member (JSON with string
/// values, decoded by `promote.lua`) both carry exactly these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub id: String,
    pub payload: String,
    /// Failed runs so far (0 for a fresh job).
    pub attempt: String,
    /// Unix ms of the first failure, empty before any.
    pub first_failed_ms: String,
    pub last_error: String,
    /// Unix ms of the first push.
    pub enqueued_ms: String,
}

impl Envelope {
    pub fn new(id: String, payload: String) -> Self {
        Self {
            id,
            payload,
            attempt: "0".into(),
            first_failed_ms: String::new(),
            last_error: String::new(),
            enqueued_ms: now_ms().to_string(),
        }
    }

    /// The stream entry fields, in XADD order.
    pub fn fields(&self) -> [(&'static str, &str); 6] {
        [
            ("id", &self.id),
            ("payload", &self.payload),
            ("attempt", &self.attempt),
            ("first_failed_ms", &self.first_failed_ms),
            ("last_error", &self.last_error),
            ("enqueued_ms", &self.enqueued_ms),
        ]
    }

    pub fn attempt(&self) -> u32 {
        self.attempt.parse().unwrap_or(0)
    }

    pub fn member(&self) -> String {
        // Serializing a struct of Strings cannot fail.
        serde_json::to_string(self).expect("envelope of strings serializes")
    }

    /// Reads a stream entry. `Err` carries the reason and the raw fields (as JSON) so the entry
    /// can be dead-lettered with both.
    pub fn from_fields(fields: &HashMap<String, redis::Value>) -> Result<Self, (String, String)> {
        let get = |k: &str| -> Option<String> {
            match fields.get(k) {
                Some(redis::Value::BulkString(b)) => String::from_utf8(b.clone()).ok(),
                Some(redis::Value::SimpleString(s)) => Some(s.clone()),
                Some(redis::Value::Int(i)) => Some(i.to_string()),
                _ => None,
            }
        };
        let raw = || {
            let m: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|(k, v)| {
                    let s = match v {
                        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                        other => format!("{other:?}"),
                    };
                    (k.clone(), serde_json::Value::String(s))
                })
                .collect();
            serde_json::Value::Object(m).to_string()
        };
        let Some(payload) = get("payload") else {
            return Err((
                "stream entry has no UTF-8 `payload` field (not written by motionq-queue)".into(),
                raw(),
            ));
        };
        let Some(id) = get("id") else {
            return Err(("stream entry has no `id` field".into(), raw()));
        };
        let attempt = get("attempt").unwrap_or_else(|| "0".into());
        if attempt.parse::<u32>().is_err() {
            return Err((
                format!("stream entry has a bad `attempt` `{attempt}`"),
                raw(),
            ));
        }
        Ok(Self {
            id,
            payload,
            attempt,
            first_failed_ms: get("first_failed_ms").unwrap_or_default(),
            last_error: get("last_error").unwrap_or_default(),
            enqueued_ms: get("enqueued_ms").unwrap_or_default(),
        })
    }
}

/// Facts about one delivery of a job, available to handlers as an argument
/// (`async fn handler(job: J, d: Delivery)`), and used by the backend to acknowledge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The job id given at push (also the apalis `TaskId`).
    pub job_id: String,
    /// The Redis stream entry id of this delivery.
    pub entry_id: String,
    /// 1-based run number: 1 on the first run, 2 on the first retry, ... (failed runs + 1).
    pub attempt: u32,
    /// How often this stream entry was handed to a worker (above 1 after a worker crash).
    pub deliveries: u32,
    /// Unix ms of the first push, if known.
    pub enqueued_ms: Option<u64>,
    pub(crate) envelope: Envelope,
}

impl<Args: Sync> FromRequest<Task<Args>> for Delivery {
    type Error = MissingDelivery;
    async fn from_request(task: &Task<Args>) -> Result<Self, Self::Error> {
        task.ctx()
            .data()
            .get::<Delivery>()
            .cloned()
            .ok_or(MissingDelivery)
    }
}

/// The task did not come from a [`StreamQueue`](crate::StreamQueue). Not retried (a wiring bug).
#[derive(Debug, thiserror::Error)]
#[error("this task has no motionq-queue Delivery (it was not read from a StreamQueue)")]
pub struct MissingDelivery;

/// One dead-lettered job, as listed by [`StreamQueue::dead_letters`](crate::StreamQueue::dead_letters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The dead-letter stream entry id (pass it to `requeue_dead`).
    pub dead_id: String,
    /// The job id (empty when the entry was not a readable job).
    pub job_id: String,
    /// The payload as stored (raw fields as JSON when the entry was not a readable job).
    pub payload: String,
    /// Runs made before giving up.
    pub attempts: u32,
    /// Why it was dead-lettered (the handler's last error, or the decode error).
    pub error: String,
    /// Unix ms when it was dead-lettered.
    pub failed_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> redis::Value {
        redis::Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn round_trips_fields_and_member() {
        let e = Envelope::new("j1".into(), r#"{"a":1}"#.into());
        let fields: HashMap<String, redis::Value> = e
            .fields()
            .iter()
            .map(|(k, v)| (k.to_string(), bulk(v)))
            .collect();
        assert_eq!(Envelope::from_fields(&fields).unwrap(), e);
        let m: Envelope = serde_json::from_str(&e.member()).unwrap();
        assert_eq!(m, e);
    }

    #[test]
    fn garbage_is_rejected_with_raw_fields() {
        let fields: HashMap<String, redis::Value> = [("junk".to_string(), bulk("\u{1}x"))].into();
        let (why, raw) = Envelope::from_fields(&fields).unwrap_err();
        assert!(why.contains("payload"));
        assert!(raw.contains("junk"));
    }

    #[test]
    fn truncates_on_char_boundary() {
        let s = "é".repeat(MAX_ERROR_LEN);
        let t = truncate(&s);
        assert!(t.len() <= MAX_ERROR_LEN + 3);
    }
}
