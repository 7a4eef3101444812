//! Helpers every adapter shares: the pre-flight job checks driven by
//! [`motionq_core::Capabilities`], lenient JSON field decoding, the HTTP-status fallback and the
//! `Retry-After` reader. Vendor-specific decisions live in each vendor's `response.rs`.

use std::time::{Duration, SystemTime};

use motionq_core::vendor::{
    MAX_IMAGE_ORIENTATION_S, MAX_PROMPT_CHARS, MAX_VIDEO_ORIENTATION_S, MIN_REFERENCE_S,
};
use motionq_core::{
    parse_retry_after, ErrorClass, ImageFormat, ImageRef, JobSpec, Orientation, Vendor, VideoFormat,
};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::{bound, AdapterError, VendorError};

// ---------------------------------------------------------------------------------------------
// Pre-flight checks of a job against a vendor's capabilities.

/// A job that passed [`check_job`], with its inputs normalised.
#[derive(Debug, Clone)]
pub(crate) struct CheckedJob<'a> {
    /// The image as a URL or raw base64 (no `data:` prefix).
    pub image: ImageRef<'a>,
    /// The prompt, `None` when absent or blank.
    pub prompt: Option<&'a str>,
    /// The negative prompt, `None` when absent or blank.
    pub negative_prompt: Option<&'a str>,
}

/// Rejects what `vendor` cannot express or would refuse anyway (one place for every vendor; the
/// differences come from [`Vendor::capabilities`]).
pub(crate) fn check_job(vendor: Vendor, job: &JobSpec) -> Result<CheckedJob<'_>, AdapterError> {
    let caps = vendor.capabilities();
    let unsupported = |field: &'static str, reason: String| AdapterError::Unsupported {
        vendor,
        field,
        reason,
    };
    let invalid = |field: &'static str, reason: String| AdapterError::Invalid {
        vendor,
        field,
        reason,
    };

    let image = ImageRef::parse(job.image.trim());
    match image {
        ImageRef::Url(url) => {
            if let Some(fmt) = ext_of(url) {
                let ok = match image_format(&fmt) {
                    Some(f) => caps.image_formats.contains(&f),
                    None => !KNOWN_OTHER_IMAGE_EXTS.contains(&fmt.as_str()),
                };
                if !ok {
                    return Err(unsupported(
                        "image",
                        format!(
                            "`.{fmt}` images are not accepted (accepted: {})",
                            list_image(caps.image_formats)
                        ),
                    ));
                }
            }
        }
        ImageRef::Base64(data) => {
            if !caps.base64_image {
                return Err(unsupported(
                    "image",
                    "the image must be a public http(s) URL; base64 images are not accepted".into(),
                ));
            }
            if data.is_empty() {
                return Err(invalid("image", "the base64 image is empty".into()));
            }
            if let Some(f) = sniff_base64_image(data) {
                if !caps.image_formats.contains(&f) {
                    return Err(unsupported(
                        "image",
                        format!(
                            "{f:?} images are not accepted (accepted: {})",
                            list_image(caps.image_formats)
                        ),
                    ));
                }
            }
        }
    }

    let video = job.video_url.trim();
    if !(video.starts_with("https://") || video.starts_with("http://")) {
        return Err(invalid(
            "video_url",
            "the reference video must be a public http(s) URL".into(),
        ));
    }
    if let Some(fmt) = ext_of(video) {
        let ok = match video_format(&fmt) {
            Some(f) => caps.video_formats.contains(&f),
            None => !KNOWN_OTHER_VIDEO_EXTS.contains(&fmt.as_str()),
        };
        if !ok {
            return Err(unsupported(
                "video_url",
                format!(
                    "`.{fmt}` videos are not accepted (accepted: {})",
                    list_video(caps.video_formats)
                ),
            ));
        }
    }

    let prompt = non_blank(job.prompt.as_deref());
    if let Some(p) = prompt {
        let n = p.chars().count();
        if n > MAX_PROMPT_CHARS {
            return Err(invalid(
                "prompt",
                format!("{n} characters, at most {MAX_PROMPT_CHARS} are accepted"),
            ));
        }
    }
    let negative_prompt = non_blank(job.negative_prompt.as_deref());
    if let Some(p) = negative_prompt {
        if !caps.negative_prompt {
            return Err(unsupported(
                "negative_prompt",
                "the API has no negative prompt field".into(),
            ));
        }
        let n = p.chars().count();
        if n > MAX_PROMPT_CHARS {
            return Err(invalid(
                "negative_prompt",
                format!("{n} characters, at most {MAX_PROMPT_CHARS} are accepted"),
            ));
        }
    }
    if job.keep_sound.is_some() && !caps.keep_sound {
        return Err(unsupported(
            "keep_sound",
            "the API has no sound flag (whether audio is kept is not documented); leave keep_sound unset".into(),
        ));
    }
    if let Some(cfg) = job.cfg_scale {
        if !caps.cfg_scale {
            return Err(unsupported(
                "cfg_scale",
                "the API has no cfg_scale field".into(),
            ));
        }
        if !(0.0..=1.0).contains(&cfg) {
            return Err(invalid("cfg_scale", format!("{cfg} is outside 0..=1")));
        }
    }
    if let Some(d) = job.video_duration_s {
        if !d.is_finite() || d < MIN_REFERENCE_S {
            return Err(invalid(
                "video_duration_s",
                format!("the reference video is {d} s, at least {MIN_REFERENCE_S} s is required"),
            ));
        }
        if d > MAX_VIDEO_ORIENTATION_S {
            return Err(invalid(
                "video_duration_s",
                format!(
                    "the reference video is {d} s, at most {MAX_VIDEO_ORIENTATION_S} s is accepted"
                ),
            ));
        }
        if job.orientation == Orientation::Image
            && d > MAX_IMAGE_ORIENTATION_S
            && caps.rejects_long_image_reference
        {
            return Err(invalid(
                "video_duration_s",
                format!("the reference video is {d} s, at most {MAX_IMAGE_ORIENTATION_S} s is accepted with orientation `image`"),
            ));
        }
    }
    Ok(CheckedJob {
        image,
        prompt,
        negative_prompt,
    })
}

/// The image URL of a URL-only vendor (check_job already refused base64 for those; this keeps
/// the type honest without a panic path).
pub(crate) fn require_url<'a>(
    vendor: Vendor,
    image: &ImageRef<'a>,
) -> Result<&'a str, AdapterError> {
    match image {
        ImageRef::Url(u) => Ok(u),
        ImageRef::Base64(_) => Err(AdapterError::Unsupported {
            vendor,
            field: "image",
            reason: "the image must be a public http(s) URL; base64 images are not accepted".into(),
        }),
    }
}

/// The image as sent by vendors that take URLs or raw base64: base64 loses any line breaks or
/// spaces (PEM-style wrapped base64 is common in manifests; Kling wants one unbroken string).
pub(crate) fn image_value<'a>(image: &ImageRef<'a>) -> std::borrow::Cow<'a, str> {
    match image {
        ImageRef::Url(u) => std::borrow::Cow::Borrowed(u),
        ImageRef::Base64(b) if b.contains(|c: char| c.is_ascii_whitespace()) => {
            std::borrow::Cow::Owned(b.chars().filter(|c| !c.is_ascii_whitespace()).collect())
        }
        ImageRef::Base64(b) => std::borrow::Cow::Borrowed(b),
    }
}

fn non_blank(s: Option<&str>) -> Option<&str> {
    s.filter(|p| !p.trim().is_empty())
}

/// Extensions that are images but no vendor accepts (an unknown extension is let through: many
/// CDNs serve images from extension-less URLs).
const KNOWN_OTHER_IMAGE_EXTS: &[&str] = &[
    "gif", "bmp", "tif", "tiff", "heic", "heif", "avif", "svg", "ico", "jxl",
];
/// Same for videos.
const KNOWN_OTHER_VIDEO_EXTS: &[&str] = &[
    "mkv", "avi", "flv", "wmv", "mpg", "mpeg", "3gp", "ts", "ogv", "gif",
];

/// The lower-cased extension of a URL's last path segment, if it has one.
fn ext_of(url: &str) -> Option<String> {
    let no_frag = url.split('#').next().unwrap_or(url);
    let path = no_frag.split('?').next().unwrap_or(no_frag);
    let after_scheme = path.split_once("://").map(|(_, r)| r).unwrap_or(path);
    // The host is not a file name: only look at a path segment after it.
    let (_, path) = after_scheme.split_once('/')?;
    let last = path.rsplit('/').next()?;
    let (_, ext) = last.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 5).then(|| ext.to_ascii_lowercase())
}

fn image_format(ext: &str) -> Option<ImageFormat> {
    match ext {
        "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
        "png" => Some(ImageFormat::Png),
        "webp" => Some(ImageFormat::Webp),
        _ => None,
    }
}

fn video_format(ext: &str) -> Option<VideoFormat> {
    match ext {
        "mp4" => Some(VideoFormat::Mp4),
        "mov" => Some(VideoFormat::Mov),
        "webm" => Some(VideoFormat::Webm),
        "m4v" => Some(VideoFormat::M4v),
        _ => None,
    }
}

/// The image format from the base64 text of its first bytes (JPEG `FF D8 FF`, PNG signature,
/// `RIFF<size>WEBP`, whose `EBP` is base64 chars 12..16); `None` when unknown.
fn sniff_base64_image(data: &str) -> Option<ImageFormat> {
    if data.starts_with("/9j/") {
        Some(ImageFormat::Jpeg)
    } else if data.starts_with("iVBORw0KGgo") {
        Some(ImageFormat::Png)
    } else if data.starts_with("UklG") && data.get(12..16) == Some("RUJQ") {
        Some(ImageFormat::Webp)
    } else {
        None
    }
}

fn list_image(f: &[ImageFormat]) -> String {
    f.iter()
        .map(|f| format!("{f:?}").to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_video(f: &[VideoFormat]) -> String {
    f.iter()
        .map(|f| format!("{f:?}").to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Lenient field decoding.

/// Decodes any field into `Option<T>`: `None` when the field is null or has an unexpected shape,
/// instead of failing the whole body (used where VENDORS.md marks a shape INFERRED).
pub(crate) fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// A string field that some vendors send as a number (EvoLink `code`, Kling `duration`).
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// A number that may come as a string (`"8.041"`, `"3600"`).
pub(crate) fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().trim_end_matches('%').trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite()))
}

/// A percentage (number or `"65%"`), clamped to 0–100.
pub(crate) fn progress<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    Ok(number_or_string(d)?.map(|p| p.clamp(0.0, 100.0).round() as u8))
}

/// An array of strings, keeping only the string elements.
pub(crate) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(a) => a
            .into_iter()
            .filter_map(|v| match v {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// Parses the body of a 2xx answer as `T`. A body that is not that JSON is the vendor's fault and
/// may pass: `upstream_transient`, code `malformed_response`.
pub(crate) fn parse_ok_body<T: DeserializeOwned>(
    vendor: Vendor,
    what: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, VendorError> {
    serde_json::from_slice::<T>(body).map_err(|e| {
        malformed(
            vendor,
            status,
            headers,
            format!(
                "{what} answer is not the expected JSON ({e}); body starts: {}",
                snippet(body)
            ),
        )
    })
}

/// An `upstream_transient` error for a body that does not carry what a 2xx answer must.
pub(crate) fn malformed(
    vendor: Vendor,
    status: u16,
    headers: &HeaderMap,
    detail: String,
) -> VendorError {
    VendorError::new(
        ErrorClass::UpstreamTransient,
        format!("{}: {detail}", vendor.display_name()),
    )
    .with_status(status)
    .with_code(Some("malformed_response".into()))
    .with_retry_after(retry_after(headers))
}

/// The first bytes of a body, printable, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let s = bound(&s, 120);
    if s.trim().is_empty() {
        "(empty)".into()
    } else {
        format!("`{s}`")
    }
}

// ---------------------------------------------------------------------------------------------
// Classification helpers.

/// The class an HTTP status means when the vendor's body says nothing more specific.
pub(crate) fn class_from_status(status: u16) -> ErrorClass {
    match status {
        400 | 405 | 409 | 411 | 413 | 414 | 415 | 422 => ErrorClass::InvalidRequest,
        401 => ErrorClass::Auth,
        402 => ErrorClass::InsufficientFunds,
        403 => ErrorClass::Forbidden,
        404 | 410 => ErrorClass::NotFound,
        429 => ErrorClass::RateLimited,
        408 | 425 | 500..=599 => ErrorClass::UpstreamTransient,
        400..=499 => ErrorClass::InvalidRequest,
        // 1xx/3xx (an unfollowed redirect, an interim answer) or nonsense: nothing we can act on
        // except trying again later.
        _ => ErrorClass::UpstreamTransient,
    }
}

/// `Retry-After` (seconds or HTTP date), if the vendor sent one.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(v, SystemTime::now())
}

/// Builds the error for a non-2xx answer once the vendor-specific code decided the class.
pub(crate) fn http_error(
    vendor: Vendor,
    class: ErrorClass,
    status: u16,
    headers: &HeaderMap,
    code: Option<String>,
    message: Option<String>,
    body: &[u8],
) -> VendorError {
    let message = match message.filter(|m| !m.trim().is_empty()) {
        Some(m) => format!("{}: {m}", vendor.display_name()),
        None => format!(
            "{}: HTTP {status} without an error message; body starts: {}",
            vendor.display_name(),
            snippet(body)
        ),
    };
    VendorError::new(class, message)
        .with_status(status)
        .with_code(code)
        .with_retry_after(retry_after(headers))
}

/// The class of a task that failed, from the vendor's free-text reason, when the vendor gives no
/// code we know. Documented rule (VENDORS.md §6.4 maps a plain task failure to `content_policy`
/// for every vendor):
/// * words of moderation (`content`, `policy`, `sensitive`, `risk`, `moderation`, `prohibit`,
///   `nsfw`, `violat`, `safety`, `inappropriate`) → `content_policy`;
/// * words of a vendor-side problem (`timeout`, `timed out`, `internal`, `service`, `unavailable`,
///   `overload`, `busy`, `try again`, `retry`) → `upstream_transient` (a resubmission may work;
///   failed tasks are refunded);
/// * anything else, including no reason at all → `content_policy` (terminal: a failure we cannot
///   explain is not resubmitted automatically, so money is not spent again on a doomed input).
pub(crate) fn task_failure_class_from_text(text: &str) -> ErrorClass {
    let t = text.to_lowercase();
    const TRANSIENT: &[&str] = &[
        "timeout",
        "timed out",
        "internal",
        "service",
        "unavailable",
        "overload",
        "busy",
        "try again",
        "retry",
    ];
    if mentions_content_policy(&t) {
        ErrorClass::ContentPolicy
    } else if TRANSIENT.iter().any(|w| t.contains(w)) {
        ErrorClass::UpstreamTransient
    } else {
        ErrorClass::ContentPolicy
    }
}

/// Moderation words (`content`, `policy`, `sensitive`, `risk`, `moderation`, `prohibit`, `nsfw`,
/// `violat`, `safety`, `inappropriate`), case-insensitive.
pub(crate) fn mentions_content_policy(text: &str) -> bool {
    const CONTENT: &[&str] = &[
        "content",
        "policy",
        "sensitive",
        "risk",
        "moderation",
        "prohibit",
        "nsfw",
        "violat",
        "safety",
        "inappropriate",
    ];
    let t = text.to_lowercase();
    CONTENT.iter().any(|w| t.contains(w))
}

/// The first non-blank string.
pub(crate) fn first_non_blank(items: &[Option<&String>]) -> Option<String> {
    items
        .iter()
        .flatten()
        .find(|s| !s.trim().is_empty())
        .map(|s| s.to_string())
}

/// Link lifetime from the vendor's documented default.
pub(crate) fn default_lifetime(vendor: Vendor) -> Option<Duration> {
    Some(Duration::from_secs(
        vendor.capabilities().output_link_lifetime_s,
    ))
}

/// Is `status` a 2xx?
pub(crate) fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

#[cfg(test)]
pub(crate) mod test_support {
    use motionq_core::{JobSpec, Orientation, Tier};
    use reqwest::header::HeaderMap;

    /// A plain URL job with nothing optional set.
    pub fn job() -> JobSpec {
        JobSpec {
            id: "job-1".into(),
            image: "https://example.com/character.png".into(),
            video_url: "https://example.com/motion.mp4".into(),
            prompt: None,
            negative_prompt: None,
            orientation: Orientation::Video,
            tier: Tier::Std,
            keep_sound: None,
            cfg_scale: None,
            video_duration_s: None,
        }
    }

    pub fn no_headers() -> HeaderMap {
        HeaderMap::new()
    }

    pub fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::job;
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(
            ext_of("https://x.com/a/b.PNG?sig=1#f").as_deref(),
            Some("png")
        );
        assert_eq!(ext_of("https://cdn.example.com/abc"), None);
        assert_eq!(ext_of("https://cdn.example.com"), None);
        assert_eq!(ext_of("https://cdn.example.com/"), None);
    }

    #[test]
    fn capability_checks_name_the_field() {
        let mut j = job();
        j.image = "https://x/a.webp".into();
        assert_eq!(check_job(Vendor::Evolink, &j).unwrap_err().field(), "image");
        assert!(check_job(Vendor::Freepik, &j).is_ok());

        let mut j = job();
        j.video_url = "https://x/a.webm".into();
        assert_eq!(
            check_job(Vendor::Kkiai, &j).unwrap_err().field(),
            "video_url"
        );
        assert!(check_job(Vendor::Freepik, &j).is_ok());
        j.video_url = "https://x/a.mkv".into();
        assert!(check_job(Vendor::Freepik, &j).is_err());

        let mut j = job();
        j.image = "iVBORw0KGgoAAAANSUhEUg".into();
        assert_eq!(check_job(Vendor::Freepik, &j).unwrap_err().field(), "image");
        assert!(check_job(Vendor::Kkiai, &j).is_ok());
        // RIFF....WEBP
        j.image = "UklGRiQAAABXRUJQVlA4".into();
        assert_eq!(
            check_job(Vendor::Highwayapi, &j).unwrap_err().field(),
            "image"
        );

        let mut j = job();
        j.cfg_scale = Some(1.5);
        assert!(matches!(
            check_job(Vendor::Freepik, &j),
            Err(AdapterError::Invalid {
                field: "cfg_scale",
                ..
            })
        ));
        j.cfg_scale = Some(f64::NAN);
        assert!(check_job(Vendor::Freepik, &j).is_err());
        j.cfg_scale = Some(0.5);
        assert!(matches!(
            check_job(Vendor::Kkiai, &j),
            Err(AdapterError::Unsupported {
                field: "cfg_scale",
                ..
            })
        ));

        let mut j = job();
        j.prompt = Some("é".repeat(2500));
        assert!(check_job(Vendor::Evolink, &j).is_ok());
        j.prompt = Some("é".repeat(2501));
        assert_eq!(
            check_job(Vendor::Evolink, &j).unwrap_err().field(),
            "prompt"
        );

        let mut j = job();
        j.negative_prompt = Some("  ".into());
        assert!(check_job(Vendor::Evolink, &j).is_ok(), "blank is absent");
        j.negative_prompt = Some("blurry".into());
        assert_eq!(
            check_job(Vendor::Evolink, &j).unwrap_err().field(),
            "negative_prompt"
        );
        assert!(check_job(Vendor::Highwayapi, &j).is_ok());

        let mut j = job();
        j.keep_sound = Some(false);
        assert_eq!(
            check_job(Vendor::Freepik, &j).unwrap_err().field(),
            "keep_sound"
        );
        assert!(check_job(Vendor::Evolink, &j).is_ok());

        let mut j = job();
        j.video_url = "ftp://x/a.mp4".into();
        assert_eq!(
            check_job(Vendor::Evolink, &j).unwrap_err().field(),
            "video_url"
        );
    }

    #[test]
    fn wrapped_base64_is_unwrapped() {
        assert_eq!(
            image_value(&ImageRef::parse("data:image/png;base64,iVBO\nRw0K\r\nGgo=")),
            "iVBORw0KGgo="
        );
        assert_eq!(
            image_value(&ImageRef::parse("https://x/a b.png")),
            "https://x/a b.png"
        );
    }

    #[test]
    fn duration_limits_follow_the_vendor() {
        let mut j = job();
        j.orientation = Orientation::Image;
        j.video_duration_s = Some(12.0);
        assert_eq!(
            check_job(Vendor::Kkiai, &j).unwrap_err().field(),
            "video_duration_s"
        );
        // AI Video API and HighwayAPI cap the output instead of rejecting.
        assert!(check_job(Vendor::Aivideoapi, &j).is_ok());
        assert!(check_job(Vendor::Highwayapi, &j).is_ok());
        j.video_duration_s = Some(2.0);
        assert!(check_job(Vendor::Highwayapi, &j).is_err());
        j.orientation = Orientation::Video;
        j.video_duration_s = Some(31.0);
        assert!(check_job(Vendor::Freepik, &j).is_err());
        j.video_duration_s = Some(30.0);
        assert!(check_job(Vendor::Freepik, &j).is_ok());
    }

    #[test]
    fn status_fallback() {
        assert_eq!(class_from_status(400), ErrorClass::InvalidRequest);
        assert_eq!(class_from_status(401), ErrorClass::Auth);
        assert_eq!(class_from_status(402), ErrorClass::InsufficientFunds);
        assert_eq!(class_from_status(403), ErrorClass::Forbidden);
        assert_eq!(class_from_status(404), ErrorClass::NotFound);
        assert_eq!(class_from_status(429), ErrorClass::RateLimited);
        assert_eq!(class_from_status(418), ErrorClass::InvalidRequest);
        for s in [500, 502, 503, 504, 408, 302, 0, 999] {
            assert_eq!(class_from_status(s), ErrorClass::UpstreamTransient, "{s}");
        }
    }

    #[test]
    fn retry_after_both_forms() {
        let h = super::test_support::headers(&[("retry-after", "7")]);
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let h = super::test_support::headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a past date means now"
        );
        let h = super::test_support::headers(&[("retry-after", "soon")]);
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn task_failure_text() {
        assert_eq!(
            task_failure_class_from_text("Failure to pass the risk control system"),
            ErrorClass::ContentPolicy
        );
        assert_eq!(
            task_failure_class_from_text("generation timeout, please try again"),
            ErrorClass::UpstreamTransient
        );
        assert_eq!(task_failure_class_from_text(""), ErrorClass::ContentPolicy);
    }
}
