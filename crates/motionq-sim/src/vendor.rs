//! The five vendors and the small enums every part of the simulator shares.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the five Kling V3 Motion Control vendors the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    /// EvoLink unified API (`/evolink/...`).
    Evolink,
    /// KKIAI, Kling-official pass-through (`/kkiai/...`).
    Kkiai,
    /// AI Video API (`/aivideoapi/...`).
    Aivideoapi,
    /// HighwayAPI, a Novita white label (`/highwayapi/...`).
    Highwayapi,
    /// Freepik / Magnific (`/freepik/...`).
    Freepik,
}

impl Vendor {
    /// All vendors, in a stable order (also the ledger order).
    pub const ALL: [Vendor; 5] = [
        Vendor::Evolink,
        Vendor::Kkiai,
        Vendor::Aivideoapi,
        Vendor::Highwayapi,
        Vendor::Freepik,
    ];

    /// The path prefix and label value, e.g. `evolink`.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Evolink => "evolink",
            Vendor::Kkiai => "kkiai",
            Vendor::Aivideoapi => "aivideoapi",
            Vendor::Highwayapi => "highwayapi",
            Vendor::Freepik => "freepik",
        }
    }

    /// Parses a path prefix / label value.
    pub fn parse(s: &str) -> Option<Vendor> {
        Vendor::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quality tier: std/720p or pro/1080p, whatever the vendor calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Standard: EvoLink/AI Video API `720p`, Kling `std`, Novita `kling-v3-0-std`, Freepik `-std`.
    Std,
    /// Pro: `1080p`, `pro`, `kling-v3-0-pro`, `-pro`.
    Pro,
}

impl Tier {
    /// `std` or `pro`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Std => "std",
            Tier::Pro => "pro",
        }
    }

    /// Output frame size of a generated video in this tier (landscape).
    pub(crate) fn dimensions(self) -> (u32, u32) {
        match self {
            Tier::Std => (1280, 720),
            Tier::Pro => (1920, 1080),
        }
    }
}

/// `character_orientation`: which input decides the character's orientation (and the length cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Orientation {
    /// Follow the image: reference ≤10 s (HighwayAPI: output fixed at 5 s).
    Image,
    /// Follow the video: reference ≤30 s.
    Video,
}

impl Orientation {
    pub(crate) fn parse(s: &str) -> Option<Orientation> {
        match s {
            "image" => Some(Orientation::Image),
            "video" => Some(Orientation::Video),
            _ => None,
        }
    }
}

/// Common task status (each vendor renders its own names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Accepted, waiting in the vendor's queue.
    Pending,
    /// Being generated.
    Processing,
    /// Finished; an output link exists.
    Completed,
    /// Failed (content policy); the charge was refunded.
    Failed,
}

impl Status {
    /// True for completed and failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }
}

/// The endpoints faults can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// Task creation.
    Create,
    /// Task query (and list).
    Query,
    /// Output download (`/files/...`).
    Download,
    /// Callback delivery.
    Callback,
}

impl Endpoint {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Create => "create",
            Endpoint::Query => "query",
            Endpoint::Download => "download",
            Endpoint::Callback => "callback",
        }
    }
}
