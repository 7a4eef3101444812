//! motionq's vendor-neutral model. No I/O: everything here is pure data and functions, so every
//! other crate (and the tests) can rely on it without a network or a Redis.
//!
//! Modules:
//! * [`vendor`]: the five vendors, what each accepts and how each bills ([`Vendor::capabilities`]).
//! * [`job`]: the vendor-neutral job ([`JobSpec`]), tiers, orientations and job states.
//! * [`error`]: the error classes every vendor error maps into ([`ErrorClass`]).
//! * [`backoff`]: exponential backoff with full jitter and `Retry-After` parsing.
//! * [`manifest`]: the campaign manifest (JSON), its JSON Schema, structural parsing that reports
//!   every problem at once.
//! * [`validate`]: the semantic rules of VENDORS.md per job and vendor, with JSON pointers.
//! * [`pricing`]: prices per vendor and tier, routing order, and the campaign cost estimate.

pub mod backoff;
pub mod error;
pub mod job;
pub mod manifest;
pub mod pricing;
pub mod validate;
pub mod vendor;

pub use backoff::{parse_retry_after, Backoff, RetryDecision};
pub use error::ErrorClass;
pub use job::{ImageRef, JobSpec, JobState, Orientation, Tier};
pub use manifest::{Manifest, ParsedManifest, RoutingPolicy};
pub use pricing::{Estimate, Price, PriceTable};
pub use validate::{Problem, Severity, ValidateOptions, ValidatedJob, Validation};
pub use vendor::{Capabilities, ImageFormat, Reconciliation, Vendor, VideoFormat};
