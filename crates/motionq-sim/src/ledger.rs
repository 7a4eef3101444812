//! The ledger: ground truth of what the simulated vendors saw and charged.
//!
//! Read it in-process with `SimHandle::ledger()` or over HTTP at `GET /_sim/ledger` (admin).
//! Keys appear under their alias, never under the key itself.

use crate::vendor::{Status, Tier, Vendor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A snapshot of everything the simulator accounted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// The seed in use.
    pub seed: u64,
    /// The time scale in use.
    pub time_scale: f64,
    /// Unix ms of the snapshot.
    pub at_ms: u64,
    /// Per vendor (`evolink`, `kkiai`, `aivideoapi`, `highwayapi`, `freepik`).
    pub vendors: BTreeMap<String, VendorLedger>,
}

/// One vendor's accounts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VendorLedger {
    /// Calls with a missing or unknown key.
    pub auth_failures: u64,
    /// Injected faults by `<endpoint>.<kind>` (e.g. `create.rate_limited`, `callback.drop`).
    pub faults_injected: BTreeMap<String, u64>,
    /// Callback delivery counts.
    pub callbacks: CallbackLedger,
    /// Per key alias.
    pub keys: BTreeMap<String, KeyLedger>,
}

/// Callback delivery counts of one vendor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallbackLedger {
    /// Callbacks planned (one per status change the vendor reports).
    pub planned: u64,
    /// HTTP attempts made.
    pub attempts: u64,
    /// Attempts answered 2xx.
    pub delivered: u64,
    /// Attempts that failed (non-2xx, timeout, connection error).
    pub failed_attempts: u64,
    /// Callbacks abandoned after the last retry.
    pub given_up: u64,
    /// Callbacks never sent (fault `callback.drop`).
    pub dropped: u64,
    /// Callbacks sent twice (fault `callback.duplicate`).
    pub duplicated: u64,
}

/// One key's accounts, in the vendor's money unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyLedger {
    /// Balance at start (or last reset).
    pub initial_balance: f64,
    /// Current balance.
    pub balance: f64,
    /// Sum of pre-charges.
    pub charged: f64,
    /// Sum of refunds: failed tasks, and settlements below the pre-charge.
    pub refunded: f64,
    /// Net spend (charges minus refunds) in the scaled windows the caps use.
    pub spend: SpendWindows,
    /// Accepted creates (equals `creates.len()`; kept separately for summary snapshots).
    pub accepted: u64,
    /// Every accepted create, in order.
    pub creates: Vec<CreateRecord>,
    /// Accepted creates whose fingerprint was seen before on this key.
    pub duplicates: u64,
    /// Rejected calls by kind: `rate_limit`, `query_rate_limit`, `concurrency`, `spend_cap`,
    /// `insufficient_balance`, `invalid_request`, `not_found`, `duplicate_external_task_id`,
    /// `forbidden`.
    pub rejections: BTreeMap<String, u64>,
    /// Queries answered (any status).
    pub queries: u64,
    /// Tasks pending or processing now.
    pub in_flight: u32,
    /// Highest `in_flight` ever.
    pub max_in_flight: u32,
    /// Tasks completed.
    pub completed: u64,
    /// Tasks failed (and refunded).
    pub failed: u64,
    /// Money movements, in order.
    pub charges: Vec<ChargeRecord>,
    /// Downloads of this key's outputs.
    pub downloads: DownloadLedger,
}

/// Net spend per window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendWindows {
    /// Last (scaled) hour.
    pub last_hour: f64,
    /// Last (scaled) day.
    pub last_day: f64,
    /// Ever.
    pub total: f64,
}

/// One accepted create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRecord {
    /// Unix ms of acceptance (real time: compare with per-second rate limits directly).
    pub at_ms: u64,
    /// The vendor's task id.
    pub task_id: String,
    /// sha256 of image, video, prompt and idempotency key (KKIAI `external_task_id`, else the
    /// callback URL, else empty).
    pub fingerprint: String,
    /// The fingerprint was seen before on this key.
    pub duplicate: bool,
    /// KKIAI `external_task_id`.
    pub external_task_id: Option<String>,
    /// Tier.
    pub tier: Tier,
    /// Reference length used (probed or assumed).
    pub ref_seconds: f64,
    /// Output length (= billed seconds).
    pub output_seconds: u32,
    /// Pre-charge (reference length × price; the settled charge is in `charges`).
    pub charge: f64,
    /// Current status.
    pub status: Status,
    /// sha256 (hex) of the output file, once completed.
    pub output_sha256: Option<String>,
}

/// A money movement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChargeRecord {
    /// Unix ms.
    pub at_ms: u64,
    /// Task.
    pub task_id: String,
    /// What happened.
    pub kind: ChargeKind,
    /// Amount (positive).
    pub amount: f64,
}

/// Kind of money movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeKind {
    /// Worst-case pre-charge at create (reference length).
    PreCharge,
    /// The charge confirmed on completion (amount = final charge; any excess of the
    /// pre-charge follows as a `Refund`).
    Settle,
    /// The pre-charge returned on failure.
    Refund,
}

/// Downloads of a key's outputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DownloadLedger {
    /// GET responses that carried (part of) a file.
    pub count: u64,
    /// Body bytes sent.
    pub bytes: u64,
    /// Per task id.
    pub tasks: BTreeMap<String, TaskDownloads>,
}

/// Downloads of one task's output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskDownloads {
    /// GET responses served.
    pub count: u64,
    /// Body bytes sent.
    pub bytes: u64,
    /// sha256 (hex) of the correct full file.
    pub sha256: String,
    /// Responses deliberately truncated, corrupted or reset (faults).
    pub damaged: u64,
}

impl Ledger {
    /// One vendor's accounts.
    pub fn vendor(&self, vendor: Vendor) -> Option<&VendorLedger> {
        self.vendors.get(vendor.as_str())
    }

    /// One key's accounts.
    pub fn key(&self, vendor: Vendor, alias: &str) -> Option<&KeyLedger> {
        self.vendor(vendor)?.keys.get(alias)
    }

    /// Accepted creates across all vendors and keys.
    pub fn total_creates(&self) -> usize {
        self.keys().map(|k| k.creates.len()).sum()
    }

    /// Duplicate creates across all vendors and keys.
    pub fn total_duplicates(&self) -> u64 {
        self.keys().map(|k| k.duplicates).sum()
    }

    /// Every key ledger.
    pub fn keys(&self) -> impl Iterator<Item = &KeyLedger> {
        self.vendors.values().flat_map(|v| v.keys.values())
    }

    /// The create record of `task_id`, wherever it is.
    pub fn find_task(&self, task_id: &str) -> Option<&CreateRecord> {
        self.keys()
            .flat_map(|k| k.creates.iter())
            .find(|c| c.task_id == task_id)
    }
}

impl KeyLedger {
    /// The scalar fields only (lists and maps left empty).
    pub(crate) fn clone_counters(&self) -> KeyLedger {
        KeyLedger {
            initial_balance: self.initial_balance,
            balance: self.balance,
            charged: self.charged,
            refunded: self.refunded,
            spend: self.spend.clone(),
            accepted: self.accepted,
            creates: Vec::new(),
            duplicates: self.duplicates,
            rejections: Default::default(),
            queries: self.queries,
            in_flight: self.in_flight,
            max_in_flight: self.max_in_flight,
            completed: self.completed,
            failed: self.failed,
            charges: Vec::new(),
            downloads: DownloadLedger::default(),
        }
    }

    /// The most accepted creates in any sliding window of `window_ms` (e.g. 1000).
    pub fn max_creates_in_window(&self, window_ms: u64) -> usize {
        let mut times: Vec<u64> = self.creates.iter().map(|c| c.at_ms).collect();
        times.sort_unstable();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi] - times[lo] >= window_ms {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    /// Rejections of `kind`.
    pub fn rejected(&self, kind: &str) -> u64 {
        self.rejections.get(kind).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_max() {
        let mk = |at_ms| CreateRecord {
            at_ms,
            task_id: String::new(),
            fingerprint: String::new(),
            duplicate: false,
            external_task_id: None,
            tier: Tier::Std,
            ref_seconds: 8.0,
            output_seconds: 8,
            charge: 0.0,
            status: Status::Pending,
            output_sha256: None,
        };
        let k = KeyLedger {
            creates: [0, 100, 900, 999, 1000, 1500, 2600]
                .into_iter()
                .map(mk)
                .collect(),
            ..KeyLedger::default()
        };
        assert_eq!(k.max_creates_in_window(1000), 4);
        assert_eq!(k.max_creates_in_window(1), 1);
    }
}
