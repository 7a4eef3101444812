//! The five vendors and what each can express, from `shared/VENDORS.md`.
//!
//! Validation, cost estimates and routing read these capability tables; the adapters (crate
//! `motionq-vendors`) implement the wire format. A fact here is marked in VENDORS.md as from the
//! vendor's docs ([SEED]/[FOUND]) unless a comment says it is inferred.

use serde::{Deserialize, Serialize};

use crate::job::{Orientation, Tier};

/// A vendor selling Kling V3 Motion Control.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    /// EvoLink unified API (`api.evolink.ai`).
    Evolink,
    /// KKIAI, a pass-through of Kling's official API (`www.kkiai.com/kling`).
    Kkiai,
    /// AI Video API (`api.aivideoapi.ai`).
    Aivideoapi,
    /// HighwayAPI, Novita's async API (`api.highwayapi.ai`).
    Highwayapi,
    /// Freepik, now Magnific (`api.freepik.com`).
    Freepik,
}

/// Image file formats the vendors talk about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
}

/// Video containers the vendors talk about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoFormat {
    Mp4,
    Mov,
    Webm,
    M4v,
}

/// How a vendor settles a task whose task id motionq never recorded (crash between the vendor
/// accepting a create call and motionq writing the id down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reconciliation {
    /// The create call carries our idempotency key and the task can be queried by it (KKIAI
    /// `external_task_id`): exact.
    ExternalTaskId,
    /// The vendor lists recent tasks; a task is matched by its input (Freepik).
    TaskList,
    /// Only a callback that carries the job id can bring the task id back; otherwise a policy
    /// decides (resubmit, or fail for manual review).
    CallbackOnly,
    /// Nothing identifies the task after the fact (HighwayAPI: no callbacks, no list).
    None,
}

/// What a vendor accepts and how it bills, as data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capabilities {
    /// Accepts a base64 image instead of a URL.
    pub base64_image: bool,
    pub image_formats: &'static [ImageFormat],
    pub video_formats: &'static [VideoFormat],
    /// Maximum image file size in bytes.
    pub max_image_bytes: u64,
    /// Minimum image width and height in pixels.
    pub min_image_px: u32,
    /// Maximum image width/height (Kling: 65536).
    pub max_image_px: u32,
    /// Image aspect ratio bounds (width / height).
    pub min_aspect: f64,
    pub max_aspect: f64,
    /// Maximum video file size in bytes.
    pub max_video_bytes: u64,
    /// Video width/height bounds in pixels.
    pub min_video_px: u32,
    pub max_video_px: u32,
    /// Whether a reference video longer than the orientation's cap is rejected (`true`) or
    /// accepted and the output capped (`false`).
    pub rejects_long_image_reference: bool,
    /// Can keep or drop the reference audio.
    pub keep_sound: bool,
    pub negative_prompt: bool,
    pub cfg_scale: bool,
    /// Sends callbacks/webhooks to a URL given at create time.
    pub callbacks: bool,
    pub reconciliation: Reconciliation,
    /// Lifetime of the output link in seconds (HighwayAPI reports it per task; this is the
    /// inferred default).
    pub output_link_lifetime_s: u64,
    /// Billing rounds the billed seconds to the nearest integer (EvoLink) rather than up.
    pub rounds_to_nearest: bool,
}

const JPG_PNG: &[ImageFormat] = &[ImageFormat::Jpeg, ImageFormat::Png];
const JPG_PNG_WEBP: &[ImageFormat] = &[ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp];
const MP4_MOV: &[VideoFormat] = &[VideoFormat::Mp4, VideoFormat::Mov];
const FREEPIK_VIDEO: &[VideoFormat] = &[
    VideoFormat::Mp4,
    VideoFormat::Mov,
    VideoFormat::Webm,
    VideoFormat::M4v,
];
const MB: u64 = 1024 * 1024;
const DAY: u64 = 24 * 3600;

/// Shortest reference video every vendor accepts, in seconds.
pub const MIN_REFERENCE_S: f64 = 3.0;
/// Longest reference video in `image` orientation.
pub const MAX_IMAGE_ORIENTATION_S: f64 = 10.0;
/// Longest reference video in `video` orientation.
pub const MAX_VIDEO_ORIENTATION_S: f64 = 30.0;
/// Prompt and negative prompt limit, in Unicode characters.
pub const MAX_PROMPT_CHARS: usize = 2500;
/// Callback URL length limit (EvoLink).
pub const MAX_CALLBACK_URL_LEN: usize = 2048;

impl Vendor {
    pub const ALL: [Vendor; 5] = [
        Vendor::Evolink,
        Vendor::Kkiai,
        Vendor::Aivideoapi,
        Vendor::Highwayapi,
        Vendor::Freepik,
    ];

    /// The name used in config, manifests, metrics and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Evolink => "evolink",
            Vendor::Kkiai => "kkiai",
            Vendor::Aivideoapi => "aivideoapi",
            Vendor::Highwayapi => "highwayapi",
            Vendor::Freepik => "freepik",
        }
    }

    /// A human name for tables.
    pub fn display_name(self) -> &'static str {
        match self {
            Vendor::Evolink => "EvoLink",
            Vendor::Kkiai => "KKIAI",
            Vendor::Aivideoapi => "AI Video API",
            Vendor::Highwayapi => "HighwayAPI",
            Vendor::Freepik => "Freepik",
        }
    }

    /// What the vendor accepts (VENDORS.md sections 1-6).
    pub fn capabilities(self) -> Capabilities {
        let base = Capabilities {
            base64_image: false,
            image_formats: JPG_PNG,
            video_formats: MP4_MOV,
            max_image_bytes: 10 * MB,
            min_image_px: 300,
            max_image_px: 65536,
            min_aspect: 1.0 / 2.5,
            max_aspect: 2.5,
            max_video_bytes: 100 * MB,
            min_video_px: 340,
            max_video_px: 3850,
            rejects_long_image_reference: true,
            keep_sound: false,
            negative_prompt: false,
            cfg_scale: false,
            callbacks: true,
            reconciliation: Reconciliation::CallbackOnly,
            output_link_lifetime_s: DAY,
            rounds_to_nearest: false,
        };
        match self {
            Vendor::Evolink => Capabilities {
                keep_sound: true,
                rounds_to_nearest: true,
                ..base
            },
            Vendor::Kkiai => Capabilities {
                base64_image: true,
                keep_sound: true,
                reconciliation: Reconciliation::ExternalTaskId,
                output_link_lifetime_s: 30 * DAY,
                ..base
            },
            // Output is capped at 10 s in image orientation; a longer reference is not documented
            // as rejected.
            Vendor::Aivideoapi => Capabilities {
                rejects_long_image_reference: false,
                ..base
            },
            // Novita: video ≤ 10 MB and ≥ 300 px; image orientation outputs a fixed 5 s from a
            // 3-30 s reference; no callbacks on this endpoint; link lifetime `video_url_ttl`
            // (≈3600 s, inferred).
            Vendor::Highwayapi => Capabilities {
                base64_image: true,
                max_video_bytes: 10 * MB,
                min_video_px: 300,
                max_video_px: u32::MAX,
                rejects_long_image_reference: false,
                keep_sound: true,
                negative_prompt: true,
                callbacks: false,
                reconciliation: Reconciliation::None,
                output_link_lifetime_s: 3600,
                ..base
            },
            Vendor::Freepik => Capabilities {
                image_formats: JPG_PNG_WEBP,
                video_formats: FREEPIK_VIDEO,
                min_video_px: 0,
                max_video_px: u32::MAX,
                cfg_scale: true,
                reconciliation: Reconciliation::TaskList,
                ..base
            },
        }
    }

    /// Seconds of output the vendor bills for a reference of `reference_s` seconds: the output
    /// length, which follows the reference capped by the orientation (HighwayAPI: image
    /// orientation is always 5 s).
    pub fn billed_seconds(self, orientation: Orientation, reference_s: f64) -> f64 {
        let cap = match orientation {
            Orientation::Image => MAX_IMAGE_ORIENTATION_S,
            Orientation::Video => MAX_VIDEO_ORIENTATION_S,
        };
        if self == Vendor::Highwayapi && orientation == Orientation::Image {
            return 5.0;
        }
        let out = reference_s.min(cap).max(0.0);
        if self.capabilities().rounds_to_nearest {
            out.round()
        } else {
            out.ceil()
        }
    }

    /// The longest billable output for an orientation when the reference length is unknown.
    pub fn worst_case_seconds(self, orientation: Orientation) -> f64 {
        let cap = match orientation {
            Orientation::Image => MAX_IMAGE_ORIENTATION_S,
            Orientation::Video => MAX_VIDEO_ORIENTATION_S,
        };
        self.billed_seconds(orientation, cap)
    }

    /// The vendor's resolution name for a tier, for display.
    pub fn tier_name(self, tier: Tier) -> &'static str {
        match (self, tier) {
            (Vendor::Evolink | Vendor::Aivideoapi, Tier::Std) => "720p",
            (Vendor::Evolink | Vendor::Aivideoapi, Tier::Pro) => "1080p",
            (Vendor::Highwayapi, Tier::Std) => "kling-v3-0-std",
            (Vendor::Highwayapi, Tier::Pro) => "kling-v3-0-pro",
            (_, Tier::Std) => "std",
            (_, Tier::Pro) => "pro",
        }
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Vendor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown vendor `{s}` (expected one of: evolink, kkiai, aivideoapi, highwayapi, freepik)"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billed_seconds_follow_each_vendors_rule() {
        assert_eq!(Vendor::Evolink.billed_seconds(Orientation::Video, 8.4), 8.0);
        assert_eq!(Vendor::Evolink.billed_seconds(Orientation::Video, 8.5), 9.0);
        assert_eq!(Vendor::Kkiai.billed_seconds(Orientation::Video, 8.041), 9.0);
        assert_eq!(
            Vendor::Highwayapi.billed_seconds(Orientation::Image, 12.0),
            5.0
        );
        assert_eq!(
            Vendor::Highwayapi.billed_seconds(Orientation::Video, 12.0),
            12.0
        );
        assert_eq!(
            Vendor::Aivideoapi.billed_seconds(Orientation::Image, 12.0),
            10.0
        );
        assert_eq!(Vendor::Freepik.worst_case_seconds(Orientation::Video), 30.0);
        assert_eq!(
            Vendor::Highwayapi.worst_case_seconds(Orientation::Image),
            5.0
        );
    }

    #[test]
    fn names_round_trip() {
        for v in Vendor::ALL {
            assert_eq!(v.as_str().parse::<Vendor>().unwrap(), v);
        }
        assert!("kling".parse::<Vendor>().is_err());
    }
}
