//! Scrape-time gauges: values that live in Redis (jobs per state, queue depths) are read when
//! Prometheus scrapes, not pushed by the stages, so every process shows the same numbers and
//! nothing drifts when a worker crashes mid-update.
//!
//! The binary installs a [`ScrapeHook`] with [`crate::Metrics::set_scrape_hook`]: a closure that
//! returns a future reading `motionq_store::Store::campaign` for each campaign and
//! `motionq_queue::Queue::stats` for each stage, and maps them into a [`ScrapeSnapshot`]. This
//! crate does not depend on the store or queue crates, so it stays usable from all of them.

use std::time::Duration;

use futures::future::BoxFuture;
use motionq_core::JobState;

use crate::labels::{QueueState, Stage};

/// Upper bound on one refresh. Prometheus' default scrape timeout is 10 s; staying well below
/// it means a slow Redis yields stale values rather than a failed scrape (and `up == 0`).
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// Error a hook may return; it is logged and counted, never exported as a label.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// The hook run before each scrape. It must be cheap: a few Redis round trips.
pub type ScrapeHook =
    Box<dyn Fn() -> BoxFuture<'static, Result<ScrapeSnapshot, HookError>> + Send + Sync>;

/// Everything the scrape-time families show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScrapeSnapshot {
    /// One entry per campaign that should be shown (finished campaigns may be left out).
    pub campaigns: Vec<CampaignSnapshot>,
    /// One entry per stage queue.
    pub queues: Vec<QueueSnapshot>,
}

/// A campaign's counters as stored in Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignSnapshot {
    /// Campaign id (the `campaign` label: ids are chosen by the operator, few per deployment).
    pub campaign: String,
    /// Campaign state as stored (`running`, `paused`, `cancelled`, `done`, ...). Values outside
    /// `[a-z_]{1,32}` are exported as `other` so a corrupt record cannot explode the label.
    pub state: String,
    /// Jobs enqueued in the campaign.
    pub jobs_enqueued: u64,
    /// Jobs per state; states left out are exported as 0.
    pub jobs_by_state: Vec<(JobState, u64)>,
}

/// One stage queue's counters (what `motionq_queue::QueueStats` reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// The stage.
    pub stage: Stage,
    /// Not yet delivered to a worker.
    pub unread: u64,
    /// Delivered, not acknowledged.
    pub pending: u64,
    /// Waiting for a retry time.
    pub delayed: u64,
    /// Dead letters.
    pub dead: u64,
}

impl QueueSnapshot {
    /// The count for one entry state.
    pub fn get(&self, s: QueueState) -> u64 {
        match s {
            QueueState::Unread => self.unread,
            QueueState::Pending => self.pending,
            QueueState::Delayed => self.delayed,
            QueueState::Dead => self.dead,
        }
    }
}

/// The label value for a stored campaign state.
pub(crate) fn campaign_state_label(state: &str) -> &str {
    let ok = !state.is_empty()
        && state.len() <= 32
        && state.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if ok {
        state
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_state_labels_are_bounded() {
        assert_eq!(campaign_state_label("running"), "running");
        assert_eq!(campaign_state_label("cancel_requested"), "cancel_requested");
        assert_eq!(campaign_state_label(""), "other");
        assert_eq!(campaign_state_label("Running"), "other");
        assert_eq!(campaign_state_label("job-123"), "other");
        assert_eq!(campaign_state_label(&"a".repeat(33)), "other");
    }
}
