//! [`QueueConfig`]: the queue's tuning and retry policy, embedded in motionq's config as `[queue]`.

use motionq_core::Backoff;
use serde::{Deserialize, Serialize};

use crate::error::QueueError;

/// Queue settings shared by every queue (stage) of a deployment. All durations are milliseconds.
///
/// Env overrides follow motionq's convention `MOTIONQ__QUEUE__<FIELD>` (e.g.
/// `MOTIONQ__QUEUE__PREFETCH=64`) once the config crate embeds this struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Consumer group name shared by all workers of a queue. Default `motionq`.
    pub group: String,
    /// Longest a worker's blocking read (`XREADGROUP BLOCK`) waits. A push wakes a blocked reader
    /// at once, so this does not delay pickup; it bounds how long a graceful stop waits for the
    /// read in flight. Default 1000.
    pub block_ms: u64,
    /// Most jobs one worker holds at once (running + fetched but not started); also the `COUNT`
    /// of each read. Set it at least as high as the worker's `.concurrency(n)`. Default 16.
    pub prefetch: usize,
    /// A pending job idle for this long is taken over by another worker (its worker died or lost
    /// Redis). Live workers refresh their claims every `refresh_interval_ms`, so long jobs are
    /// not stolen. Default 15000 (a SIGKILLed worker's jobs run again within ~20 s).
    pub claim_min_idle_ms: u64,
    /// How often each worker looks for idle pending jobs (`XAUTOCLAIM`). Default 5000.
    pub claim_interval_ms: u64,
    /// How often a worker refreshes the claims of the jobs it holds. Must be well below
    /// `claim_min_idle_ms`. Default 4000.
    pub refresh_interval_ms: u64,
    /// How often a worker moves due delayed jobs (retries, `push_after`) into the stream.
    /// Default 200.
    pub promote_interval_ms: u64,
    /// Most delayed jobs moved by one script call (the work per call is bounded; calls repeat
    /// until nothing is due). Default 500.
    pub promote_chunk: usize,
    /// A job delivered more often than this (each worker crash while holding it counts) is
    /// dead-lettered instead of run again. Default 10.
    pub max_deliveries: u32,
    /// Delay before a job whose handler returned apalis `DeferredError` (waiting for a limit,
    /// not a failure: the attempt is not counted) is offered again. Default 1000.
    pub defer_delay_ms: u64,
    /// Retry timing and attempt limit for failed jobs (full-jitter exponential backoff,
    /// `max_attempts` counts every run, `max_total` caps the time since the first failure;
    /// a `RetryAfterError` duration is a floor). Exhausted jobs go to the dead letter.
    pub retry: Backoff,
    /// 0 (default): a finished job's stream entry is deleted when acknowledged. Above 0: finished
    /// entries are kept this long (for inspection) and then trimmed with `XTRIM MINID`, never
    /// past an entry that is still pending or unread.
    pub keep_finished_ms: u64,
    /// How often kept finished entries are trimmed (only with `keep_finished_ms > 0`).
    /// Default 10000.
    pub trim_interval_ms: u64,
    /// The dead-letter stream keeps at most this many entries (oldest dropped first).
    /// Default 100000.
    pub dead_max_len: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            group: "motionq".into(),
            block_ms: 1_000,
            prefetch: 16,
            claim_min_idle_ms: 15_000,
            claim_interval_ms: 5_000,
            refresh_interval_ms: 4_000,
            promote_interval_ms: 200,
            promote_chunk: 500,
            max_deliveries: 10,
            defer_delay_ms: 1_000,
            retry: Backoff::default(),
            keep_finished_ms: 0,
            trim_interval_ms: 10_000,
            dead_max_len: 100_000,
        }
    }
}

impl QueueConfig {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), QueueError> {
        let bad = |msg: String| Err(QueueError::Config(msg));
        if self.group.is_empty() {
            return bad("queue.group must not be empty".into());
        }
        if self.prefetch == 0 {
            return bad("queue.prefetch must be at least 1".into());
        }
        if self.block_ms == 0 {
            return bad("queue.block_ms must be at least 1 (0 would block forever)".into());
        }
        if self.promote_chunk == 0 {
            return bad("queue.promote_chunk must be at least 1".into());
        }
        for (name, v) in [
            ("claim_interval_ms", self.claim_interval_ms),
            ("refresh_interval_ms", self.refresh_interval_ms),
            ("promote_interval_ms", self.promote_interval_ms),
            ("trim_interval_ms", self.trim_interval_ms),
            ("claim_min_idle_ms", self.claim_min_idle_ms),
        ] {
            if v == 0 {
                return bad(format!("queue.{name} must be above 0"));
            }
        }
        if self.refresh_interval_ms * 2 > self.claim_min_idle_ms {
            return bad(format!(
                "queue.refresh_interval_ms ({}) must be at most half of queue.claim_min_idle_ms ({}), \
                 or running jobs can be taken over by other workers",
                self.refresh_interval_ms, self.claim_min_idle_ms
            ));
        }
        if self.max_deliveries == 0 {
            return bad("queue.max_deliveries must be at least 1".into());
        }
        if self.retry.max_attempts == 0 {
            return bad("queue.retry.max_attempts must be at least 1".into());
        }
        if self.dead_max_len == 0 {
            return bad("queue.dead_max_len must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_meet_q2() {
        let c = QueueConfig::default();
        c.validate().unwrap();
        // Q2: a killed worker's jobs are redelivered within 30 s.
        assert!(c.claim_min_idle_ms + c.claim_interval_ms <= 30_000);
    }

    #[test]
    fn errors_name_the_field() {
        let c = QueueConfig {
            refresh_interval_ms: 10_000,
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("queue.refresh_interval_ms"), "{e}");
        let c = QueueConfig {
            prefetch: 0,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("queue.prefetch"));
    }

    #[test]
    fn parses_partial_toml_with_defaults() {
        let c: QueueConfig =
            serde_json::from_str(r#"{"prefetch": 64, "claim_min_idle_ms": 20000}"#).unwrap();
        assert_eq!(c.prefetch, 64);
        assert_eq!(c.claim_min_idle_ms, 20_000);
        assert_eq!(c.block_ms, 1_000);
        assert!(serde_json::from_str::<QueueConfig>(r#"{"prefech": 1}"#).is_err());
    }
}
