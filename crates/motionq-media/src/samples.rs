//! The named sample media served by the simulator at `/media/<name>` (see the crate doc for
//! the table).

use std::fmt;
use std::sync::OnceLock;

use crate::mux::{Container, Layout, VideoSpec};

/// Image or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleKind {
    /// A still image (PNG, JPEG or WebP).
    Image,
    /// An H.264 video in MP4 or MOV.
    Video,
}

/// One named sample file and the facts a prober should find in it.
#[derive(Clone, PartialEq)]
pub struct Sample {
    /// File name, used as the URL path segment (`/media/<name>`).
    pub name: &'static str,
    /// HTTP `Content-Type`.
    pub content_type: &'static str,
    /// The whole file.
    pub bytes: Vec<u8>,
    /// Image or video.
    pub kind: SampleKind,
    /// Width in pixels as stored in the header.
    pub width: u32,
    /// Height in pixels as stored in the header.
    pub height: u32,
    /// Duration of a video in seconds as stored in its header; `None` for images.
    pub seconds: Option<f64>,
    /// Why the file is deliberately broken, if it is (`None`: a well-formed file).
    pub defect: Option<&'static str>,
}

impl fmt::Debug for Sample {
    // The bytes would flood test output; their length is what matters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sample")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .field("kind", &self.kind)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("seconds", &self.seconds)
            .field("defect", &self.defect)
            .finish()
    }
}

enum Recipe {
    Png(u32, u32),
    PngUncompressed(u32, u32),
    Jpeg(u32, u32),
    Webp(u32, u32),
    Video(VideoSpec),
    /// The video cut to half its length.
    HalfVideo(VideoSpec, &'static str),
}

const fn video(seconds: f64, width: u32, height: u32) -> VideoSpec {
    VideoSpec {
        seconds,
        width,
        height,
        layout: Layout::Faststart,
        container: Container::Mp4,
    }
}

const fn mov(seconds: f64, width: u32, height: u32) -> VideoSpec {
    VideoSpec {
        container: Container::Mov,
        ..video(seconds, width, height)
    }
}

const fn with_layout(spec: VideoSpec, layout: Layout) -> VideoSpec {
    VideoSpec { layout, ..spec }
}

/// Every sample, in the order [`samples`] returns them. Keep the crate doc table in step.
const RECIPES: &[(&str, Recipe)] = &[
    ("portrait-720x1280.png", Recipe::Png(720, 1280)),
    ("portrait-720x1280.jpg", Recipe::Jpeg(720, 1280)),
    ("portrait-720x1280.webp", Recipe::Webp(720, 1280)),
    ("square-1024x1024.png", Recipe::Png(1024, 1024)),
    ("square-1024x1024.jpg", Recipe::Jpeg(1024, 1024)),
    ("square-1024x1024.webp", Recipe::Webp(1024, 1024)),
    ("landscape-1280x720.png", Recipe::Png(1280, 720)),
    ("landscape-1280x720.jpg", Recipe::Jpeg(1280, 720)),
    ("landscape-1280x720.webp", Recipe::Webp(1280, 720)),
    ("small-200x200.png", Recipe::Png(200, 200)),
    ("small-200x200.jpg", Recipe::Jpeg(200, 200)),
    ("wide-3000x500.png", Recipe::Png(3000, 500)),
    ("wide-3000x500.jpg", Recipe::Jpeg(3000, 500)),
    ("huge-1900x1900.png", Recipe::PngUncompressed(1900, 1900)),
    ("dance-2s.mp4", Recipe::Video(video(2.0, 720, 1280))),
    ("dance-3s.mp4", Recipe::Video(video(3.0, 720, 1280))),
    ("dance-8s.mp4", Recipe::Video(video(8.0, 720, 1280))),
    ("dance-10s.mp4", Recipe::Video(video(10.0, 720, 1280))),
    ("dance-12s.mp4", Recipe::Video(video(12.0, 720, 1280))),
    ("dance-31s.mp4", Recipe::Video(video(31.0, 720, 1280))),
    ("dance-3s.mov", Recipe::Video(mov(3.0, 720, 1280))),
    ("dance-8s.mov", Recipe::Video(mov(8.0, 720, 1280))),
    ("dance-12s.mov", Recipe::Video(mov(12.0, 720, 1280))),
    ("dance-31s.mov", Recipe::Video(mov(31.0, 720, 1280))),
    (
        "dance-8s-landscape-1280x720.mp4",
        Recipe::Video(video(8.0, 1280, 720)),
    ),
    (
        "dance-8s-1080x1920.mp4",
        Recipe::Video(video(8.0, 1080, 1920)),
    ),
    (
        "dance-8s-moov-end.mp4",
        Recipe::Video(with_layout(video(8.0, 720, 1280), Layout::MoovAtEnd)),
    ),
    (
        "dance-8s-fragmented.mp4",
        Recipe::Video(with_layout(video(8.0, 720, 1280), Layout::Fragmented)),
    ),
    (
        "dance-8s-truncated.mp4",
        Recipe::HalfVideo(
            video(8.0, 720, 1280),
            "truncated: the second half of the media data is missing",
        ),
    ),
    (
        "dance-8s-moov-end-truncated.mp4",
        Recipe::HalfVideo(
            with_layout(video(8.0, 720, 1280), Layout::MoovAtEnd),
            "truncated: cut inside mdat, so the moov index is missing",
        ),
    ),
    ("tiny-320x240-8s.mp4", Recipe::Video(video(8.0, 320, 240))),
    (
        "huge-4000x2250-8s.mp4",
        Recipe::Video(video(8.0, 4000, 2250)),
    ),
];

fn make(name: &'static str, recipe: &Recipe) -> Sample {
    let image = |content_type, bytes, width, height| Sample {
        name,
        content_type,
        bytes,
        kind: SampleKind::Image,
        width,
        height,
        seconds: None,
        defect: None,
    };
    let clip = |spec: &VideoSpec, bytes, defect| Sample {
        name,
        content_type: spec.container.content_type(),
        bytes,
        kind: SampleKind::Video,
        width: spec.coded_width(),
        height: spec.coded_height(),
        seconds: Some(f64::from(spec.duration_ms()) / 1000.0),
        defect,
    };
    match *recipe {
        Recipe::Png(w, h) => image("image/png", crate::png(w, h), w, h),
        Recipe::PngUncompressed(w, h) => {
            image("image/png", crate::images::png_uncompressed(w, h), w, h)
        }
        Recipe::Jpeg(w, h) => image("image/jpeg", crate::jpeg(w, h), w, h),
        Recipe::Webp(w, h) => image("image/webp", crate::webp(w, h), w, h),
        Recipe::Video(ref spec) => clip(spec, crate::mp4(spec), None),
        Recipe::HalfVideo(ref spec, defect) => {
            let mut bytes = crate::mp4(spec);
            bytes.truncate(bytes.len() / 2);
            clip(spec, bytes, Some(defect))
        }
    }
}

/// One lazily built slot per recipe, so looking up one sample builds only that one.
static CACHE: [OnceLock<Sample>; RECIPES.len()] = [const { OnceLock::new() }; RECIPES.len()];

fn cached(index: usize) -> &'static Sample {
    let (name, recipe) = &RECIPES[index];
    CACHE[index].get_or_init(|| make(name, recipe))
}

/// All named samples (each generated on first use, then cloned from a process-wide cache).
pub fn samples() -> Vec<Sample> {
    (0..RECIPES.len()).map(|i| cached(i).clone()).collect()
}

/// The sample called `name`, without copying it; builds only that sample on first use.
pub fn sample(name: &str) -> Option<&'static Sample> {
    let index = RECIPES.iter().position(|(n, _)| *n == name)?;
    Some(cached(index))
}

/// The names of all samples, without generating any of them.
pub fn sample_names() -> impl Iterator<Item = &'static str> {
    RECIPES.iter().map(|(name, _)| *name)
}
