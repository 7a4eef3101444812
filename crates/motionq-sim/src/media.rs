//! Input media (the sample set served at `/media/<name>`), per-vendor media limits, and the
//! cache of generated outputs.
//!
//! The simulator never does network I/O to check an input: a URL that points at its own
//! `/media/<name>` is looked up by name in `motionq_media`'s sample set (whose facts, width,
//! height, seconds and defect, are the truth); base64 images are decoded and measured; any
//! other URL is accepted as is with an assumed reference length.

use crate::error::ApiError;
use crate::vendor::{Orientation, Tier};
use base64::Engine as _;
use bytes::Bytes;
use motionq_media::{Sample, SampleKind};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Image formats a vendor accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageFormat {
    Jpeg,
    Png,
    Webp,
}

/// Video containers a vendor accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoFormat {
    Mp4,
    Mov,
    Webm,
}

/// What `image` orientation does with a long reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageOrientationRule {
    /// Reject references over 10 s (EvoLink, KKIAI).
    RejectOver10,
    /// Accept, cap the output at 10 s (AI Video API, Freepik).
    CapAt10,
    /// Accept 3–30 s, output fixed at 5 s (HighwayAPI).
    Fixed5,
}

/// Output seconds from the reference length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rounding {
    Nearest,
    Ceil,
}

/// One vendor's documented media limits.
#[derive(Debug, Clone)]
pub(crate) struct MediaRules {
    pub image_formats: &'static [ImageFormat],
    pub image_max_bytes: u64,
    pub image_min_px: u32,
    pub image_max_px: u32,
    /// Aspect ratio within 1:2.5 – 2.5:1.
    pub image_aspect: bool,
    /// The image field may carry raw base64 instead of a URL.
    pub image_base64: bool,
    pub video_formats: &'static [VideoFormat],
    pub video_max_bytes: u64,
    pub video_min_px: u32,
    pub video_max_px: u32,
    pub image_orientation: ImageOrientationRule,
    pub rounding: Rounding,
    /// A video whose length cannot be read is a 400 (AI Video API probes for billing).
    pub unprobeable_video_rejected: bool,
}

/// Measured facts of an input.
#[derive(Debug, Clone, Copy)]
struct ImageFacts {
    format: Option<ImageFormat>,
    width: u32,
    height: u32,
    bytes: u64,
}

#[derive(Debug, Clone, Copy)]
struct VideoFacts {
    format: Option<VideoFormat>,
    width: u32,
    height: u32,
    /// `None` when the file is broken.
    seconds: Option<f64>,
    bytes: u64,
}

fn image_format_of(content_type: &str) -> Option<ImageFormat> {
    match content_type {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/webp" => Some(ImageFormat::Webp),
        _ => None,
    }
}

fn video_format_of(content_type: &str) -> Option<VideoFormat> {
    match content_type {
        "video/mp4" => Some(VideoFormat::Mp4),
        "video/quicktime" => Some(VideoFormat::Mov),
        "video/webm" => Some(VideoFormat::Webm),
        _ => None,
    }
}

/// Where an input string points.
enum Input<'a> {
    /// This simulator's `/media/<name>`.
    Local(String),
    /// Another host: accepted unchecked.
    Foreign,
    /// Raw base64 (or a `data:` URI, which Kling rejects).
    Base64(&'a str),
}

/// The media part of the simulator: samples and generated outputs.
pub(crate) struct MediaStore {
    /// Port(s) that identify our own URLs (bound port and `public_base_url`'s port).
    ports: Vec<u16>,
    assumed_seconds: f64,
    /// One cell per (seconds, tier): the first task to need a file generates it, the others
    /// wait for that instead of generating their own copy.
    outputs: Mutex<HashMap<(u32, Tier), OutputCell>>,
}

/// Where one generated output lands (shared by every task that needs it).
type OutputCell = Arc<tokio::sync::OnceCell<Arc<Output>>>;

/// A generated output file.
#[derive(Debug)]
pub(crate) struct Output {
    pub bytes: Bytes,
    pub sha256: String,
}

/// The result of checking a request's media.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked {
    pub ref_seconds: f64,
    /// Output length, also the billed seconds once the task completes.
    pub output_seconds: u32,
    /// Worst case billed at create: the reference length (≥ output; more where the output is
    /// capped or fixed, e.g. HighwayAPI image mode), settled down on completion.
    pub precharge_seconds: u32,
}

impl MediaStore {
    pub(crate) fn new(ports: Vec<u16>, assumed_seconds: f64) -> MediaStore {
        MediaStore {
            ports,
            assumed_seconds,
            outputs: Mutex::new(HashMap::new()),
        }
    }

    /// Looks up a sample by file name.
    pub(crate) fn sample(name: &str) -> Option<&'static Sample> {
        motionq_media::sample(name)
    }

    fn classify<'a>(&self, s: &'a str) -> Result<Input<'a>, String> {
        if s.starts_with("http://") || s.starts_with("https://") {
            let url = url::Url::parse(s).map_err(|e| format!("is not a valid URL: {e}"))?;
            if url.host_str().is_none() {
                return Err("is not a valid URL: no host".into());
            }
            let ours = url
                .port_or_known_default()
                .is_some_and(|p| self.ports.contains(&p));
            if ours {
                if let Some(name) = url.path().strip_prefix("/media/") {
                    return Ok(Input::Local(name.to_string()));
                }
            }
            return Ok(Input::Foreign);
        }
        if s.starts_with("data:") {
            return Err("must be a URL or raw Base64 without a 'data:' prefix".into());
        }
        Ok(Input::Base64(s))
    }

    fn image_facts(&self, s: &str, rules: &MediaRules) -> Result<Option<ImageFacts>, String> {
        match self.classify(s)? {
            Input::Foreign => Ok(None),
            Input::Local(name) => {
                let sample = Self::sample(&name)
                    .ok_or_else(|| format!("could not be downloaded: HTTP 404 for {s}"))?;
                if sample.kind != SampleKind::Image {
                    return Err("is not an image".into());
                }
                Ok(Some(ImageFacts {
                    format: image_format_of(sample.content_type),
                    width: sample.width,
                    height: sample.height,
                    bytes: sample.bytes.len() as u64,
                }))
            }
            Input::Base64(b64) => {
                if !rules.image_base64 {
                    return Err("must be an http(s) URL".into());
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| "is neither a URL nor valid Base64".to_string())?;
                let size = imagesize::blob_size(&bytes)
                    .map_err(|_| "Base64 data is not a readable image".to_string())?;
                let format = match imagesize::image_type(&bytes) {
                    Ok(imagesize::ImageType::Png) => Some(ImageFormat::Png),
                    Ok(imagesize::ImageType::Jpeg) => Some(ImageFormat::Jpeg),
                    Ok(imagesize::ImageType::Webp) => Some(ImageFormat::Webp),
                    _ => None,
                };
                Ok(Some(ImageFacts {
                    format,
                    width: size.width as u32,
                    height: size.height as u32,
                    bytes: bytes.len() as u64,
                }))
            }
        }
    }

    fn video_facts(&self, s: &str) -> Result<Option<VideoFacts>, String> {
        match self.classify(s)? {
            Input::Foreign => Ok(None),
            Input::Base64(_) => Err("must be an http(s) URL".into()),
            Input::Local(name) => {
                let sample = Self::sample(&name)
                    .ok_or_else(|| format!("could not be downloaded: HTTP 404 for {s}"))?;
                if sample.kind != SampleKind::Video {
                    return Err("is not a video".into());
                }
                Ok(Some(VideoFacts {
                    format: video_format_of(sample.content_type),
                    width: sample.width,
                    height: sample.height,
                    seconds: if sample.defect.is_some() {
                        None
                    } else {
                        sample.seconds
                    },
                    bytes: sample.bytes.len() as u64,
                }))
            }
        }
    }

    /// Applies `rules` to the request's image and video; returns the reference and output
    /// lengths, or the vendor-neutral 400 naming the field.
    pub(crate) fn check(
        &self,
        rules: &MediaRules,
        image: &str,
        image_field: &str,
        video: &str,
        video_field: &str,
        orientation: Orientation,
    ) -> Result<Checked, ApiError> {
        let bad = |field: &str, msg: String| ApiError::value(field, format!("{field} {msg}"));
        if let Some(img) = self
            .image_facts(image, rules)
            .map_err(|m| bad(image_field, m))?
        {
            match img.format {
                Some(f) if rules.image_formats.contains(&f) => {}
                _ => return Err(bad(image_field, "has an unsupported image format".into())),
            }
            if img.bytes > rules.image_max_bytes {
                return Err(bad(
                    image_field,
                    format!(
                        "is too large: {} bytes, the limit is {} MB",
                        img.bytes,
                        rules.image_max_bytes >> 20
                    ),
                ));
            }
            let (w, h) = (img.width, img.height);
            if w < rules.image_min_px || h < rules.image_min_px {
                return Err(bad(
                    image_field,
                    format!(
                        "is {w}x{h} px: width and height must be at least {} px",
                        rules.image_min_px
                    ),
                ));
            }
            if w > rules.image_max_px || h > rules.image_max_px {
                return Err(bad(image_field, format!("is {w}x{h} px: too large")));
            }
            let ratio = w as f64 / h as f64;
            if rules.image_aspect && !(0.4..=2.5).contains(&ratio) {
                return Err(bad(
                    image_field,
                    format!("is {w}x{h} px: aspect ratio must be between 1:2.5 and 2.5:1"),
                ));
            }
        }
        let ref_seconds = match self.video_facts(video).map_err(|m| bad(video_field, m))? {
            None => self.assumed_seconds,
            Some(v) => {
                match v.format {
                    Some(f) if rules.video_formats.contains(&f) => {}
                    _ => return Err(bad(video_field, "has an unsupported video format".into())),
                }
                if v.bytes > rules.video_max_bytes {
                    return Err(bad(
                        video_field,
                        format!(
                            "is too large: {} bytes, the limit is {} MB",
                            v.bytes,
                            rules.video_max_bytes >> 20
                        ),
                    ));
                }
                let (w, h) = (v.width, v.height);
                if w < rules.video_min_px
                    || h < rules.video_min_px
                    || w > rules.video_max_px
                    || h > rules.video_max_px
                {
                    return Err(bad(
                        video_field,
                        format!(
                            "is {w}x{h} px: width and height must be between {} and {} px",
                            rules.video_min_px, rules.video_max_px
                        ),
                    ));
                }
                match v.seconds {
                    Some(s) => s,
                    None if rules.unprobeable_video_rejected => {
                        return Err(bad(
                            video_field,
                            "could not be probed for its duration (unreadable file)".into(),
                        ))
                    }
                    // Others accept at create and would fail later; assume the config length.
                    None => self.assumed_seconds,
                }
            }
        };
        // Small tolerance: a 3.000 s file must pass even if it is 2.9995 s in the header.
        if ref_seconds < 3.0 - 1e-3 {
            return Err(bad(
                video_field,
                format!("is {ref_seconds:.1} s long: the minimum is 3 seconds"),
            ));
        }
        if ref_seconds > 30.0 + 1e-3 {
            return Err(bad(
                video_field,
                format!("is {ref_seconds:.1} s long: the maximum is 30 seconds"),
            ));
        }
        let capped = match (orientation, rules.image_orientation) {
            (Orientation::Video, _) => ref_seconds,
            (Orientation::Image, ImageOrientationRule::RejectOver10) => {
                if ref_seconds > 10.0 + 1e-3 {
                    return Err(bad(
                        video_field,
                        format!(
                            "is {ref_seconds:.1} s long: with character_orientation 'image' the maximum is 10 seconds"
                        ),
                    ));
                }
                ref_seconds
            }
            (Orientation::Image, ImageOrientationRule::CapAt10) => ref_seconds.min(10.0),
            (Orientation::Image, ImageOrientationRule::Fixed5) => 5.0,
        };
        let whole = |x: f64| {
            match rules.rounding {
                Rounding::Nearest => x.round(),
                Rounding::Ceil => (x - 1e-3).ceil(),
            }
            .max(1.0) as u32
        };
        Ok(Checked {
            ref_seconds,
            output_seconds: whole(capped),
            precharge_seconds: whole(ref_seconds).max(whole(capped)),
        })
    }

    /// The output file for (seconds, tier), generated once and cached.
    pub(crate) async fn output(&self, seconds: u32, tier: Tier) -> Arc<Output> {
        let cell = self
            .outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((seconds, tier))
            .or_default()
            .clone();
        cell.get_or_init(|| async move {
            let made = tokio::task::spawn_blocking(move || make_output(seconds, tier)).await;
            // A panic in the generator is a bug in motionq-media; retry inline to surface it.
            Arc::new(made.unwrap_or_else(|_| make_output(seconds, tier)))
        })
        .await
        .clone()
    }
}

fn make_output(seconds: u32, tier: Tier) -> Output {
    let (w, h) = tier.dimensions();
    let bytes = motionq_media::mp4(&motionq_media::VideoSpec::new(seconds as f64, w, h));
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Output {
        bytes: Bytes::from(bytes),
        sha256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor::Vendor;
    use crate::vendors;

    fn store() -> MediaStore {
        MediaStore::new(vec![8089], 8.0)
    }

    fn check(v: Vendor, image: &str, video: &str, o: Orientation) -> Result<Checked, ApiError> {
        let img = format!("http://127.0.0.1:8089/media/{image}");
        let vid = format!("http://127.0.0.1:8089/media/{video}");
        store().check(&vendors::rules(v), &img, "image", &vid, "video", o)
    }

    #[test]
    fn duration_rules_per_vendor() {
        use Orientation::*;
        let ok = |v, vid, o| check(v, "portrait-720x1280.png", vid, o).map(|c| c.output_seconds);
        assert_eq!(ok(Vendor::Evolink, "dance-8s.mp4", Video).unwrap(), 8);
        assert!(ok(Vendor::Evolink, "dance-12s.mp4", Image).is_err());
        assert!(ok(Vendor::Kkiai, "dance-12s.mp4", Image).is_err());
        assert_eq!(ok(Vendor::Aivideoapi, "dance-12s.mp4", Image).unwrap(), 10);
        assert_eq!(ok(Vendor::Freepik, "dance-12s.mp4", Image).unwrap(), 10);
        assert_eq!(ok(Vendor::Highwayapi, "dance-12s.mp4", Image).unwrap(), 5);
        assert_eq!(ok(Vendor::Highwayapi, "dance-12s.mp4", Video).unwrap(), 12);
        for v in Vendor::ALL {
            assert!(ok(v, "dance-2s.mp4", Video).is_err(), "{v} 2 s");
            assert!(ok(v, "dance-31s.mp4", Video).is_err(), "{v} 31 s");
            assert_eq!(ok(v, "dance-3s.mov", Video).unwrap(), 3, "{v} mov");
        }
    }

    #[test]
    fn image_rules_per_vendor() {
        let o = Orientation::Video;
        let vid = "dance-8s.mp4";
        assert!(check(Vendor::Freepik, "portrait-720x1280.webp", vid, o).is_ok());
        assert!(check(Vendor::Evolink, "portrait-720x1280.webp", vid, o).is_err());
        assert!(check(Vendor::Kkiai, "small-200x200.png", vid, o).is_err());
        assert!(check(Vendor::Aivideoapi, "wide-3000x500.jpg", vid, o).is_err());
        assert!(check(Vendor::Highwayapi, "huge-1900x1900.png", vid, o).is_err());
        assert!(check(Vendor::Evolink, "nope.png", vid, o).is_err());
        // Broken videos: AI Video API cannot probe → 400; EvoLink accepts (assumed length).
        assert!(check(
            Vendor::Aivideoapi,
            "square-1024x1024.png",
            "dance-8s-truncated.mp4",
            o
        )
        .is_err());
        assert!(check(
            Vendor::Evolink,
            "square-1024x1024.png",
            "dance-8s-truncated.mp4",
            o
        )
        .is_ok());
        assert!(check(
            Vendor::Evolink,
            "square-1024x1024.png",
            "tiny-320x240-8s.mp4",
            o
        )
        .is_err());
    }

    #[test]
    fn foreign_urls_and_base64() {
        let s = store();
        let r = vendors::rules(Vendor::Kkiai);
        let c = s
            .check(
                &r,
                "https://example.com/a.png",
                "i",
                "https://example.com/b.mp4",
                "v",
                Orientation::Video,
            )
            .unwrap();
        assert_eq!(c.output_seconds, 8);
        let png = base64::engine::general_purpose::STANDARD.encode(motionq_media::png(400, 400));
        assert!(s
            .check(
                &r,
                &png,
                "i",
                "https://example.com/b.mp4",
                "v",
                Orientation::Video
            )
            .is_ok());
        let small = base64::engine::general_purpose::STANDARD.encode(motionq_media::png(100, 100));
        assert!(s
            .check(
                &r,
                &small,
                "i",
                "https://example.com/b.mp4",
                "v",
                Orientation::Video
            )
            .is_err());
        // EvoLink takes URLs only.
        assert!(s
            .check(
                &vendors::rules(Vendor::Evolink),
                &png,
                "i",
                "https://example.com/b.mp4",
                "v",
                Orientation::Video
            )
            .is_err());
    }
}
