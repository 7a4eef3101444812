//! Vendor-neutral shapes passed between the vendor modules and the engine.

use crate::vendor::{Orientation, Status, Tier, Vendor};
use std::time::Duration;

/// A create request after the vendor module parsed and checked its fields.
#[derive(Debug, Clone)]
pub(crate) struct ParsedCreate {
    /// Image URL (or base64 for KKIAI/HighwayAPI).
    pub image: String,
    /// Vendor's name of the image field (for error messages).
    pub image_field: &'static str,
    /// Video URL.
    pub video: String,
    pub video_field: &'static str,
    pub prompt: Option<String>,
    pub tier: Tier,
    pub orientation: Orientation,
    pub callback_url: Option<String>,
    pub callback_field: &'static str,
    /// KKIAI `external_task_id`.
    pub external_task_id: Option<String>,
    /// The model string the vendor echoes.
    pub model_name: String,
    pub watermark: bool,
}

/// Why a task fails (decided at create, shown once it is terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The vendor's content-policy failure (`sim:content_policy`, `faults.<v>.content_policy`).
    ContentPolicy,
    /// A generic vendor-side generation failure (`faults.<v>.task_failure`), retryable.
    Vendor,
}

impl Failure {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Failure::ContentPolicy => "content_policy",
            Failure::Vendor => "vendor_error",
        }
    }
}

/// A snapshot of a task for rendering.
#[derive(Debug, Clone)]
pub(crate) struct TaskView {
    pub id: String,
    pub vendor: Vendor,
    pub external_task_id: Option<String>,
    pub status: Status,
    /// Why the task fails (or will fail); rendered only once it is `Failed`.
    pub failure: Option<Failure>,
    /// 0..=100 by elapsed time.
    pub progress: u8,
    /// Unscaled seconds until done (Novita `eta`).
    pub eta_seconds: u64,
    /// Unscaled generation estimate (EvoLink `estimated_time`).
    pub estimated_seconds: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub processing_ms: Option<u64>,
    pub completed_ms: Option<u64>,
    pub output_url: Option<String>,
    /// Link lifetime left when rendered, real seconds (HighwayAPI `video_url_ttl`).
    pub output_ttl: Option<Duration>,
    pub output_seconds: u32,
    /// The pre-charge.
    pub charge: f64,
    /// Net charge once terminal (0 after a refund).
    pub final_charge: Option<f64>,
    pub watermark: bool,
    pub seed: u64,
}

impl TaskView {
    pub(crate) fn unix_secs(ms: u64) -> u64 {
        ms / 1000
    }
}
