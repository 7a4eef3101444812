//! Wall-clock timestamps and the time scale.
//!
//! Two clocks are used on purpose: bodies carry real Unix timestamps (seconds or milliseconds,
//! per vendor), while every duration of the simulated world (generation, link lifetime,
//! callback retry delays, spend windows) is multiplied by `time_scale` and measured with
//! `Instant`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Real duration of `vendor_seconds` simulated seconds.
pub(crate) fn scaled(vendor_seconds: f64, time_scale: f64) -> Duration {
    Duration::from_secs_f64((vendor_seconds * time_scale).max(0.0))
}
