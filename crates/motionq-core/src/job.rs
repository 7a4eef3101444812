//! The vendor-neutral job: what one motion-transfer task asks for, whatever vendor runs it.

use serde::{Deserialize, Serialize};

/// Which composition the output follows (Kling `character_orientation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Orientation {
    /// Keep the character's orientation from the image; reference video ≤ 10 s.
    Image,
    /// Follow the reference video's orientation; reference video ≤ 30 s.
    Video,
}

impl Orientation {
    pub fn as_str(self) -> &'static str {
        match self {
            Orientation::Image => "image",
            Orientation::Video => "video",
        }
    }
}

/// Output quality tier.
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
pub enum Tier {
    /// Standard, 720p.
    Std,
    /// Pro, 1080p.
    Pro,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Std => "std",
            Tier::Pro => "pro",
        }
    }
}

/// Where the character image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef<'a> {
    /// An `http(s)://` URL.
    Url(&'a str),
    /// Base64 data, without any `data:` prefix (what KKIAI and HighwayAPI accept).
    Base64(&'a str),
}

impl<'a> ImageRef<'a> {
    /// Classifies a manifest `image` value: an http(s) URL, a `data:image/...;base64,` URI or raw
    /// base64.
    pub fn parse(s: &'a str) -> ImageRef<'a> {
        if s.starts_with("http://") || s.starts_with("https://") {
            ImageRef::Url(s)
        } else if let Some(rest) = s.strip_prefix("data:") {
            match rest.find(";base64,") {
                Some(i) => ImageRef::Base64(&rest[i + ";base64,".len()..]),
                None => ImageRef::Base64(rest),
            }
        } else {
            ImageRef::Base64(s)
        }
    }
}

/// One job with every default applied: exactly what gets sent (translated) to a vendor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Unique within the campaign; explicit in the manifest or derived from the content hash.
    pub id: String,
    /// Character image: http(s) URL, or base64 where the vendor accepts it.
    pub image: String,
    /// Reference motion video URL.
    pub video_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    pub orientation: Orientation,
    pub tier: Tier,
    /// Keep the reference video's audio; `None` = the vendor's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_sound: Option<bool>,
    /// Prompt adherence 0..=1 (Freepik only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfg_scale: Option<f64>,
    /// Reference video length in seconds, when known (manifest or probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_duration_s: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs() {
        assert_eq!(
            ImageRef::parse("https://x/a.png"),
            ImageRef::Url("https://x/a.png")
        );
        assert_eq!(
            ImageRef::parse("data:image/png;base64,iVBOR"),
            ImageRef::Base64("iVBOR")
        );
        assert_eq!(ImageRef::parse("iVBOR"), ImageRef::Base64("iVBOR"));
    }
}

/// Where a job is in its life. Stored in the job record; every change is one atomic transition
/// appended to the campaign's event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Stored, waiting for the feeder to admit it (campaign keys have no capacity yet).
    Queued,
    /// In the submit queue.
    Admitted,
    /// Submit intent written; a create call may be in flight (reconcile before resubmitting).
    Submitting,
    /// The vendor accepted it; the task id is recorded; being polled.
    Submitted,
    /// The vendor finished it; the output URL is recorded; waiting for the collector.
    Completed,
    /// Output stored, verified, sidecar written. Terminal.
    Stored,
    /// Failed with a class and message (dead letter; `motionq retry` can resubmit). Terminal.
    Failed,
    /// Cancelled by an operator before it was submitted. Terminal.
    Cancelled,
    /// The output link expired before it could be stored. Terminal.
    Expired,
}

impl JobState {
    pub const ALL: [JobState; 9] = [
        JobState::Queued,
        JobState::Admitted,
        JobState::Submitting,
        JobState::Submitted,
        JobState::Completed,
        JobState::Stored,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Admitted => "admitted",
            JobState::Submitting => "submitting",
            JobState::Submitted => "submitted",
            JobState::Completed => "completed",
            JobState::Stored => "stored",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Expired => "expired",
        }
    }

    /// No further transition happens without an operator (`motionq retry`).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Stored | JobState::Failed | JobState::Cancelled | JobState::Expired
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|j| j.as_str() == s)
            .ok_or_else(|| format!("unknown job state `{s}`"))
    }
}
