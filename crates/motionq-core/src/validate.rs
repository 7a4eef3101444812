//! Semantic validation: every rule of VENDORS.md checked per job and per chosen vendor, every
//! problem reported at once with its JSON pointer.
//!
//! Rules (vendor tables in [`crate::vendor`]):
//! * campaign id format, budget, vendor choice (`vendor` xor `vendors`), routing, output prefix;
//! * callback URL: HTTPS, ≤ 2048 characters, never a private, loopback or link-local address
//!   (vendors refuse them; `allow_private_callbacks` relaxes this for local rehearsals);
//! * per job: id (explicit or content-derived) unique; image an http(s) URL or base64; video an
//!   http(s) URL; prompt and negative prompt ≤ 2500 Unicode characters; cfg scale in 0..=1;
//!   known duration ≥ 3 s, ≤ 10 s in `image` orientation (or capped, per vendor), ≤ 30 s in
//!   `video`;
//! * per job and vendor: base64 only where accepted (KKIAI, HighwayAPI); image and video formats
//!   (WEBP/WEBM only for Freepik) from the URL's extension or the probed header; what the vendor
//!   cannot express (`negative_prompt` outside HighwayAPI, `cfg_scale` outside Freepik,
//!   `keep_sound: true` where audio cannot be kept) is an error when the job has one vendor, and
//!   excludes that vendor (a warning) when it may be routed to others; probed sizes, dimensions
//!   and aspect ratios against each vendor's limits.
//!
//! Media URLs on private or loopback hosts are a warning, not an error: real vendors cannot fetch
//! them, but the simulator (and `motionq demo`) serve media on loopback.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::job::{ImageRef, JobSpec, Orientation, Tier};
use crate::manifest::{Manifest, ParsedManifest, RoutingPolicy};
use crate::vendor::{
    ImageFormat, Vendor, VideoFormat, MAX_CALLBACK_URL_LEN, MAX_IMAGE_ORIENTATION_S,
    MAX_PROMPT_CHARS, MAX_VIDEO_ORIENTATION_S, MIN_REFERENCE_S,
};

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The manifest cannot be enqueued.
    Error,
    /// Worth knowing; does not block.
    Warning,
}

/// One problem, located by its JSON pointer (RFC 6901; `""` is the whole document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
    pub severity: Severity,
}

impl Problem {
    pub fn error(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
            severity: Severity::Error,
        }
    }
    pub fn warning(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
            severity: Severity::Warning,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let ptr = if self.pointer.is_empty() {
            "(document)"
        } else {
            &self.pointer
        };
        write!(f, "{sev}: {ptr}: {}", self.message)
    }
}

/// Knobs for validation (from the `[validation]` config section).
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Accept callback URLs on private/loopback hosts and plain http (local rehearsals only).
    pub allow_private_callbacks: bool,
    /// Do not warn about media on private/loopback hosts (rehearsals against the simulator).
    pub allow_private_media: bool,
}

/// What a probe learned about an image URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFacts {
    pub format: Option<ImageFormat>,
    pub width: u32,
    pub height: u32,
    pub bytes: Option<u64>,
}

/// What a probe learned about a video URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoFacts {
    pub format: Option<VideoFormat>,
    pub duration_s: Option<f64>,
    pub width: u32,
    pub height: u32,
    pub bytes: Option<u64>,
}

/// Probe results by URL; a URL whose probe failed maps to the error text.
#[derive(Debug, Clone, Default)]
pub struct MediaFacts {
    pub images: HashMap<String, Result<ImageFacts, String>>,
    pub videos: HashMap<String, Result<VideoFacts, String>>,
}

/// Where a job's reference duration came from (decides how exact its estimate is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurationSource {
    /// `video_duration_s` in the manifest.
    Manifest,
    /// Read from the video header by `--probe`.
    Probe,
    /// Not known: estimates use the orientation's worst case.
    Unknown,
}

/// The campaign-level settings after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignSpec {
    pub id: String,
    pub description: Option<String>,
    pub output_prefix: Option<String>,
    pub budget_usd: Option<f64>,
    /// Campaign-level allowed vendors, in the order given (one for `vendor`).
    pub vendors: Vec<Vendor>,
    pub routing: RoutingPolicy,
    pub callback_base_url: Option<String>,
    pub priority: i32,
    pub labels: BTreeMap<String, String>,
}

/// A job ready to be stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidatedJob {
    /// Position in the manifest's `jobs` array.
    pub index: usize,
    pub spec: JobSpec,
    /// Vendors this job may use, in the order the campaign's routing policy lists them
    /// (`cheapest` is ordered later, with configured prices).
    pub vendors: Vec<Vendor>,
    pub duration_source: DurationSource,
    /// sha256 of the job's content (everything but the id); a re-enqueue compares it.
    pub content_hash: String,
    pub labels: BTreeMap<String, String>,
}

/// The outcome of validation: the campaign when there is no error, and every problem.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub campaign: Option<(CampaignSpec, Vec<ValidatedJob>)>,
    pub problems: Vec<Problem>,
}

impl Validation {
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }
    pub fn is_valid(&self) -> bool {
        self.errors().next().is_none()
    }
}

/// Parses and validates manifest bytes in one go (no probe facts).
pub fn validate_bytes(bytes: &[u8], opts: &ValidateOptions) -> Validation {
    let mut problems = Vec::new();
    match crate::manifest::parse(bytes, &mut problems) {
        Some(parsed) => validate(&parsed, opts, None, problems),
        None => Validation {
            campaign: None,
            problems,
        },
    }
}

/// Validates a parsed manifest. `problems` carries the structural problems found by
/// [`crate::manifest::parse`]; the result holds them plus the semantic ones.
pub fn validate(
    parsed: &ParsedManifest,
    opts: &ValidateOptions,
    facts: Option<&MediaFacts>,
    mut problems: Vec<Problem>,
) -> Validation {
    let m = &parsed.manifest;
    let campaign = validate_campaign(m, parsed.jobs_in_file, opts, &mut problems);
    let mut jobs = Vec::with_capacity(m.jobs.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(m.jobs.len());
    let mut warned_hosts: HashSet<String> = HashSet::new();
    // Explicit ids are checked for duplicates even on jobs with other problems.
    let mut explicit: HashMap<&str, usize> = HashMap::new();
    for (entry, &index) in m.jobs.iter().zip(&parsed.job_index) {
        if let Some(id) = entry.id.as_deref() {
            if let Some(first) = explicit.get(id) {
                problems.push(Problem::error(
                    format!("/jobs/{index}/id"),
                    format!("duplicate job id `{id}` (first used at /jobs/{first}/id)"),
                ));
            } else {
                explicit.insert(id, index);
            }
        }
    }
    for (entry, &index) in m.jobs.iter().zip(&parsed.job_index) {
        let Some(job) = validate_job(
            m,
            campaign.as_ref(),
            entry,
            index,
            facts,
            opts,
            &mut warned_hosts,
            &mut problems,
        ) else {
            continue;
        };
        if let Some(first) = seen.get(&job.spec.id) {
            if entry.id.is_some() {
                // Reported above.
            } else {
                problems.push(Problem::error(
                    format!("/jobs/{index}"),
                    format!(
                        "this job is identical to /jobs/{first} (its derived id is `{}`); give both explicit ids to run it twice",
                        job.spec.id
                    ),
                ));
            }
            continue;
        }
        seen.insert(job.spec.id.clone(), index);
        jobs.push(job);
    }
    let valid = !problems.iter().any(|p| p.severity == Severity::Error);
    Validation {
        campaign: match (valid, campaign) {
            (true, Some(c)) => Some((c, jobs)),
            _ => None,
        },
        problems,
    }
}

fn valid_campaign_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

fn validate_campaign(
    m: &Manifest,
    jobs_in_file: usize,
    opts: &ValidateOptions,
    problems: &mut Vec<Problem>,
) -> Option<CampaignSpec> {
    let before = problems.len();
    if !valid_campaign_id(&m.campaign) {
        problems.push(Problem::error(
            "/campaign",
            format!(
                "campaign id `{}` must be 1-64 characters of lowercase letters, digits, `-` and `_`, starting with a letter or digit",
                m.campaign
            ),
        ));
    }
    if jobs_in_file == 0 {
        problems.push(Problem::error("/jobs", "the campaign has no jobs"));
    }
    if let Some(b) = m.budget_usd {
        if !b.is_finite() || b <= 0.0 {
            problems.push(Problem::error(
                "/budget_usd",
                format!("budget must be a positive number of USD, got {b}"),
            ));
        }
    }
    let every_job_has_vendor = !m.jobs.is_empty()
        && m.jobs
            .iter()
            .all(|j| j.vendor.is_some() || j.vendors.is_some());
    let vendors: Vec<Vendor> = match (&m.vendor, &m.vendors) {
        (Some(_), Some(_)) => {
            problems.push(Problem::error(
                "/vendors",
                "set either `vendor` (one vendor) or `vendors` (a routed list), not both",
            ));
            Vec::new()
        }
        (Some(v), None) => vec![*v],
        (None, Some(list)) => {
            check_vendor_list(list, "/vendors", problems);
            list.clone()
        }
        (None, None) => {
            if !every_job_has_vendor && jobs_in_file > 0 {
                problems.push(Problem::error(
                    "",
                    "no vendor chosen: set `vendor` (e.g. \"evolink\") or `vendors` (a list) for the campaign, or on every job",
                ));
            }
            Vec::new()
        }
    };
    if m.routing.is_some() && m.vendors.is_none() {
        problems.push(Problem::error(
            "/routing",
            "`routing` only applies with a `vendors` list",
        ));
    }
    if let Some(url) = &m.callback_base_url {
        if let Err(e) = check_callback_url(url, opts) {
            problems.push(Problem::error("/callback_base_url", e));
        }
    }
    if let Some(prefix) = &m.output_prefix {
        if let Err(e) = check_output_prefix(prefix) {
            problems.push(Problem::error("/output_prefix", e));
        }
    }
    for (k, v) in &m.labels {
        if k.is_empty() || k.chars().count() > 64 || v.chars().count() > 256 {
            problems.push(Problem::error(
                format!("/labels/{}", crate::manifest::pointer_token(k)),
                "label keys must be 1-64 characters and values at most 256",
            ));
        }
    }
    if problems[before..]
        .iter()
        .any(|p| p.severity == Severity::Error)
    {
        return None;
    }
    Some(CampaignSpec {
        id: m.campaign.clone(),
        description: m.description.clone(),
        output_prefix: m.output_prefix.clone(),
        budget_usd: m.budget_usd,
        vendors,
        routing: m.routing.unwrap_or_default(),
        callback_base_url: m.callback_base_url.clone(),
        priority: m.priority.unwrap_or(0),
        labels: m.labels.clone(),
    })
}

fn check_vendor_list(list: &[Vendor], pointer: &str, problems: &mut Vec<Problem>) {
    if list.is_empty() {
        problems.push(Problem::error(pointer, "the vendor list is empty"));
    }
    for (i, v) in list.iter().enumerate() {
        if list[..i].contains(v) {
            problems.push(Problem::error(
                format!("{pointer}/{i}"),
                format!("vendor `{v}` is listed twice"),
            ));
        }
    }
}

/// Output prefixes are relative `/`-separated paths of safe segments.
fn check_output_prefix(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 256 {
        return Err("output prefix must be 1-256 characters".into());
    }
    if p.starts_with('/') {
        return Err("output prefix must be relative (no leading `/`)".into());
    }
    for seg in p.trim_end_matches('/').split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(format!(
                "output prefix `{p}` has an empty, `.` or `..` segment"
            ));
        }
        if !seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "output prefix segment `{seg}` may only use letters, digits, `-`, `_` and `.`"
            ));
        }
    }
    Ok(())
}

/// Whether a host is private, loopback, link-local or otherwise not reachable from the internet.
pub fn is_private_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => is_private_ip(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => is_private_ip(IpAddr::V6(*ip)),
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost"
                || d.ends_with(".localhost")
                || d.ends_with(".local")
                || d.ends_with(".internal")
                || d.ends_with(".lan")
                || !d.contains('.')
        }
    }
}

/// Private, loopback, link-local, unspecified, CGNAT and unique-local addresses.
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_ip(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A callback URL must be HTTPS, at most 2048 characters, and public.
pub fn check_callback_url(raw: &str, opts: &ValidateOptions) -> Result<(), String> {
    if raw.len() > MAX_CALLBACK_URL_LEN - 200 {
        return Err(format!(
            "callback URL is {} characters; vendors accept at most {MAX_CALLBACK_URL_LEN} including the path motionq appends",
            raw.len()
        ));
    }
    let url = url::Url::parse(raw).map_err(|e| format!("not a valid URL: {e}"))?;
    let host = url
        .host()
        .ok_or_else(|| "callback URL has no host".to_string())?;
    if opts.allow_private_callbacks {
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err("callback URL must be http(s)".into());
        }
        return Ok(());
    }
    if url.scheme() != "https" {
        return Err("callback URL must use HTTPS (vendors refuse plain http)".into());
    }
    if is_private_host(&host) {
        return Err(format!(
            "callback host `{host}` is private or loopback; vendors cannot reach it (and refuse it)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("callback URL must not carry credentials".into());
    }
    Ok(())
}

fn image_format_from_url(u: &str) -> Option<ImageFormat> {
    let path = url::Url::parse(u).ok()?.path().to_ascii_lowercase();
    let ext = path.rsplit_once('.')?.1.to_string();
    match ext.as_str() {
        "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
        "png" => Some(ImageFormat::Png),
        "webp" => Some(ImageFormat::Webp),
        _ => None,
    }
}

fn video_format_from_url(u: &str) -> Option<VideoFormat> {
    let path = url::Url::parse(u).ok()?.path().to_ascii_lowercase();
    let ext = path.rsplit_once('.')?.1.to_string();
    match ext.as_str() {
        "mp4" => Some(VideoFormat::Mp4),
        "mov" => Some(VideoFormat::Mov),
        "webm" => Some(VideoFormat::Webm),
        "m4v" => Some(VideoFormat::M4v),
        _ => None,
    }
}

/// Checks a media URL; `Ok(Some(host))` when the host is private or loopback.
fn check_media_url(raw: &str, what: &str) -> Result<Option<String>, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{what} is not a valid URL: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "{what} must be an http(s) URL, got scheme `{}`",
            url.scheme()
        ));
    }
    let host = url
        .host()
        .ok_or_else(|| format!("{what} URL has no host"))?;
    if is_private_host(&host) {
        return Ok(Some(host.to_string()));
    }
    Ok(None)
}

/// Derived job ids: `h-` and the first 16 hex digits of the content hash.
fn derived_id(content_hash: &str) -> String {
    format!("h-{}", &content_hash[..16])
}

fn content_hash(spec: &JobSpec, vendors: &[Vendor]) -> String {
    // Hash the resolved job (id excluded): the same content always gets the same id and hash.
    let mut s = spec.clone();
    s.id = String::new();
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&s).expect("JobSpec serialises"));
    for v in vendors {
        h.update(v.as_str().as_bytes());
        h.update(b",");
    }
    hex::encode(h.finalize())
}

#[allow(clippy::too_many_arguments)]
fn validate_job(
    m: &Manifest,
    campaign: Option<&CampaignSpec>,
    e: &crate::manifest::JobEntry,
    index: usize,
    facts: Option<&MediaFacts>,
    opts: &ValidateOptions,
    warned_hosts: &mut HashSet<String>,
    problems: &mut Vec<Problem>,
) -> Option<ValidatedJob> {
    let p = |field: &str| format!("/jobs/{index}/{field}");
    // One warning per private media host, not one per URL.
    let mut private_host = |field: &str, host: String, problems: &mut Vec<Problem>| {
        if !opts.allow_private_media && warned_hosts.insert(host.clone()) {
            problems.push(Problem::warning(
                p(field),
                format!(
                    "media host `{host}` is private or loopback: real vendors cannot fetch it (fine for the simulator; other URLs on this host are not listed)"
                ),
            ));
        }
    };
    let before = problems.len();
    let d = &m.defaults;
    let from_default = |set_on_job: bool| {
        if set_on_job {
            ""
        } else {
            " (set in /defaults)"
        }
    };

    if let Some(id) = &e.id {
        if id.is_empty() || id.chars().count() > 128 {
            problems.push(Problem::error(p("id"), "job id must be 1-128 characters"));
        } else if id.chars().any(|c| c.is_control()) {
            problems.push(Problem::error(
                p("id"),
                "job id must not contain control characters",
            ));
        } else if id == "." || id == ".." {
            problems.push(Problem::error(p("id"), "job id cannot be `.` or `..`"));
        }
    }

    // Image: URL or base64.
    let image_is_base64 = match ImageRef::parse(&e.image) {
        ImageRef::Url(u) => {
            match check_media_url(u, "image") {
                Ok(Some(host)) => private_host("image", host, problems),
                Ok(None) => {}
                Err(err) => problems.push(Problem::error(p("image"), err)),
            }
            false
        }
        ImageRef::Base64(b64) => {
            if e.image.trim().is_empty() {
                problems.push(Problem::error(p("image"), "image is empty"));
            } else if e.image.contains("://") {
                problems.push(Problem::error(
                    p("image"),
                    "image must be an http(s) URL or base64 data",
                ));
            } else {
                check_base64_image(b64, &p("image"), problems);
            }
            true
        }
    };
    match check_media_url(&e.video, "video") {
        Ok(Some(host)) => private_host("video", host, problems),
        Ok(None) => {}
        Err(err) => problems.push(Problem::error(p("video"), err)),
    }

    let prompt = e.prompt.clone().or_else(|| d.prompt.clone());
    let negative_prompt = e
        .negative_prompt
        .clone()
        .or_else(|| d.negative_prompt.clone());
    for (field, val, own) in [
        ("prompt", &prompt, e.prompt.is_some()),
        (
            "negative_prompt",
            &negative_prompt,
            e.negative_prompt.is_some(),
        ),
    ] {
        if let Some(text) = val {
            let n = text.chars().count();
            if n > MAX_PROMPT_CHARS {
                problems.push(Problem::error(
                    p(field),
                    format!(
                        "{field} is {n} characters; the limit is {MAX_PROMPT_CHARS}{}",
                        from_default(own)
                    ),
                ));
            }
        }
    }
    let cfg_scale = e.cfg_scale.or(d.cfg_scale);
    if let Some(c) = cfg_scale {
        if !(0.0..=1.0).contains(&c) || !c.is_finite() {
            problems.push(Problem::error(
                p("cfg_scale"),
                format!(
                    "cfg_scale must be between 0 and 1, got {c}{}",
                    from_default(e.cfg_scale.is_some())
                ),
            ));
        }
    }
    let orientation = e
        .orientation
        .or(d.orientation)
        .unwrap_or(Orientation::Video);
    let tier = e.tier.or(d.tier).unwrap_or(Tier::Std);
    let keep_sound = e.keep_sound.or(d.keep_sound);

    // Duration: manifest, else probe.
    let video_facts = facts.and_then(|f| f.videos.get(&e.video));
    let image_facts = facts.and_then(|f| f.images.get(&e.image));
    if let Some(Err(msg)) = video_facts {
        problems.push(Problem::error(p("video"), format!("probe failed: {msg}")));
    }
    if let Some(Err(msg)) = image_facts {
        problems.push(Problem::error(p("image"), format!("probe failed: {msg}")));
    }
    let video_facts = video_facts.and_then(|r| r.as_ref().ok());
    let image_facts = image_facts.and_then(|r| r.as_ref().ok());
    let (duration, duration_source) =
        match (e.video_duration_s, video_facts.and_then(|v| v.duration_s)) {
            (_, Some(probed)) => (Some(probed), DurationSource::Probe),
            (Some(given), None) => (Some(given), DurationSource::Manifest),
            (None, None) => (None, DurationSource::Unknown),
        };
    if let (Some(given), Some(probed)) =
        (e.video_duration_s, video_facts.and_then(|v| v.duration_s))
    {
        if (given - probed).abs() > 0.5 {
            problems.push(Problem::warning(
                p("video_duration_s"),
                format!("the manifest says {given} s but the video is {probed:.2} s; using the probed length"),
            ));
        }
    }
    let duration_ptr = if duration_source == DurationSource::Probe {
        p("video")
    } else {
        p("video_duration_s")
    };
    if let Some(secs) = duration {
        if !secs.is_finite() || secs <= 0.0 {
            problems.push(Problem::error(
                duration_ptr.clone(),
                format!("video duration must be a positive number of seconds, got {secs}"),
            ));
        } else if secs < MIN_REFERENCE_S {
            problems.push(Problem::error(
                duration_ptr.clone(),
                format!("reference video is {secs} s; vendors need at least {MIN_REFERENCE_S} s"),
            ));
        } else if secs > MAX_VIDEO_ORIENTATION_S {
            problems.push(Problem::error(
                duration_ptr.clone(),
                format!("reference video is {secs} s; the longest accepted is {MAX_VIDEO_ORIENTATION_S} s"),
            ));
        }
    }

    // Which vendors may run this job.
    let (candidates, own_choice) = match (&e.vendor, &e.vendors) {
        (Some(_), Some(_)) => {
            problems.push(Problem::error(
                p("vendors"),
                "set either `vendor` or `vendors` on a job, not both",
            ));
            (Vec::new(), true)
        }
        (Some(v), None) => (vec![*v], true),
        (None, Some(list)) => {
            check_vendor_list(list, &p("vendors"), problems);
            (list.clone(), true)
        }
        (None, None) => (
            campaign.map(|c| c.vendors.clone()).unwrap_or_default(),
            false,
        ),
    };

    let spec = JobSpec {
        id: String::new(),
        image: e.image.clone(),
        video_url: e.video.clone(),
        prompt,
        negative_prompt,
        orientation,
        tier,
        keep_sound,
        cfg_scale,
        video_duration_s: duration,
    };

    let mut eligible = Vec::new();
    let mut exclusions: Vec<(Vendor, Vec<(String, String)>)> = Vec::new();
    for &v in &candidates {
        let mut why: Vec<(String, String)> = Vec::new();
        let caps = v.capabilities();
        let mut no = |field: &str, msg: String| why.push((p(field), msg));
        if image_is_base64 && !caps.base64_image {
            no(
                "image",
                format!("{} accepts only image URLs, not base64", v.display_name()),
            );
        }
        let img_fmt = image_facts.and_then(|f| f.format).or_else(|| {
            (!image_is_base64)
                .then(|| image_format_from_url(&e.image))
                .flatten()
        });
        if let Some(f) = img_fmt {
            if !caps.image_formats.contains(&f) {
                no(
                    "image",
                    format!("{} does not accept {f:?} images", v.display_name()),
                );
            }
        }
        let vid_fmt = video_facts
            .and_then(|f| f.format)
            .or_else(|| video_format_from_url(&e.video));
        if let Some(f) = vid_fmt {
            if !caps.video_formats.contains(&f) {
                no(
                    "video",
                    format!("{} does not accept {f:?} videos", v.display_name()),
                );
            }
        }
        if spec.negative_prompt.is_some() && !caps.negative_prompt {
            no(
                "negative_prompt",
                format!(
                    "{} has no negative prompt{}",
                    v.display_name(),
                    from_default(e.negative_prompt.is_some())
                ),
            );
        }
        if spec.cfg_scale.is_some() && !caps.cfg_scale {
            no(
                "cfg_scale",
                format!(
                    "{} has no cfg_scale{}",
                    v.display_name(),
                    from_default(e.cfg_scale.is_some())
                ),
            );
        }
        if spec.keep_sound == Some(true) && !caps.keep_sound {
            no(
                "keep_sound",
                format!(
                    "{} cannot keep the reference audio{}",
                    v.display_name(),
                    from_default(e.keep_sound.is_some())
                ),
            );
        }
        if let Some(secs) = duration {
            if orientation == Orientation::Image && secs > MAX_IMAGE_ORIENTATION_S {
                if caps.rejects_long_image_reference {
                    no(
                        if duration_source == DurationSource::Probe { "video" } else { "video_duration_s" },
                        format!(
                            "{} needs a reference of at most {MAX_IMAGE_ORIENTATION_S} s in `image` orientation (got {secs} s); use `video` orientation or a shorter clip",
                            v.display_name()
                        ),
                    );
                } else if candidates.len() == 1 {
                    problems.push(Problem::warning(
                        p("orientation"),
                        format!(
                            "{} outputs {} s in `image` orientation from this {secs} s reference",
                            v.display_name(),
                            v.billed_seconds(orientation, secs)
                        ),
                    ));
                }
            }
        }
        if let Some(f) = image_facts {
            if let Some(b) = f.bytes {
                if b > caps.max_image_bytes {
                    no(
                        "image",
                        format!(
                            "image is {b} bytes; {} accepts at most {}",
                            v.display_name(),
                            caps.max_image_bytes
                        ),
                    );
                }
            }
            if f.width < caps.min_image_px || f.height < caps.min_image_px {
                no(
                    "image",
                    format!(
                        "image is {}x{} px; {} needs at least {} px per side",
                        f.width,
                        f.height,
                        v.display_name(),
                        caps.min_image_px
                    ),
                );
            }
            if f.width > caps.max_image_px || f.height > caps.max_image_px {
                no(
                    "image",
                    format!(
                        "image is {}x{} px; {} accepts at most {} px per side",
                        f.width,
                        f.height,
                        v.display_name(),
                        caps.max_image_px
                    ),
                );
            }
            if f.height > 0 {
                let ar = f.width as f64 / f.height as f64;
                if ar < caps.min_aspect - 1e-9 || ar > caps.max_aspect + 1e-9 {
                    no(
                        "image",
                        format!(
                            "image aspect ratio {ar:.2} is outside 1:2.5 to 2.5:1 ({})",
                            v.display_name()
                        ),
                    );
                }
            }
        }
        if let Some(f) = video_facts {
            if let Some(b) = f.bytes {
                if b > caps.max_video_bytes {
                    no(
                        "video",
                        format!(
                            "video is {b} bytes; {} accepts at most {}",
                            v.display_name(),
                            caps.max_video_bytes
                        ),
                    );
                }
            }
            if f.width < caps.min_video_px
                || f.height < caps.min_video_px
                || f.width > caps.max_video_px
                || f.height > caps.max_video_px
            {
                no(
                    "video",
                    format!(
                        "video is {}x{} px; {} accepts {}-{} px per side",
                        f.width,
                        f.height,
                        v.display_name(),
                        caps.min_video_px,
                        if caps.max_video_px == u32::MAX {
                            "any".to_string()
                        } else {
                            caps.max_video_px.to_string()
                        }
                    ),
                );
            }
        }
        if why.is_empty() {
            eligible.push(v);
        } else {
            exclusions.push((v, why));
        }
    }
    let routed = candidates.len() > 1;
    if !candidates.is_empty() {
        if eligible.is_empty() || !routed {
            for (_, why) in &exclusions {
                for (ptr, msg) in why {
                    problems.push(Problem::error(ptr.clone(), msg.clone()));
                }
            }
        } else {
            for (v, why) in &exclusions {
                let reasons: Vec<&str> = why.iter().map(|(_, m)| m.as_str()).collect();
                let ptr = if own_choice {
                    p("vendors")
                } else {
                    format!("/jobs/{index}")
                };
                problems.push(Problem::warning(
                    ptr,
                    format!("this job will not be routed to {v}: {}", reasons.join("; ")),
                ));
            }
        }
    }

    if problems[before..]
        .iter()
        .any(|p| p.severity == Severity::Error)
    {
        return None;
    }
    let hash = content_hash(&spec, &eligible);
    let mut spec = spec;
    spec.id = e.id.clone().unwrap_or_else(|| derived_id(&hash));
    Some(ValidatedJob {
        index,
        spec,
        vendors: eligible,
        duration_source,
        content_hash: hash,
        labels: e.labels.clone(),
    })
}

fn check_base64_image(b64: &str, ptr: &str, problems: &mut Vec<Problem>) {
    use base64::Engine;
    let cleaned: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    if !cleaned
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_'))
    {
        problems.push(Problem::error(
            ptr,
            "image is neither an http(s) URL nor valid base64",
        ));
        return;
    }
    let approx_bytes = cleaned.len() / 4 * 3;
    if approx_bytes > 10 * 1024 * 1024 {
        problems.push(Problem::error(
            ptr,
            format!("base64 image is about {approx_bytes} bytes; vendors accept at most 10 MB"),
        ));
        return;
    }
    // Decode a bounded prefix: enough to know it is base64 and to read the header.
    let prefix_len = cleaned.len().min(4096) / 4 * 4;
    match base64::engine::general_purpose::STANDARD.decode(&cleaned[..prefix_len]) {
        Ok(head) => {
            let is_image = head.starts_with(&[0x89, b'P', b'N', b'G'])
                || head.starts_with(&[0xFF, 0xD8, 0xFF])
                || (head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP");
            if !is_image {
                problems.push(Problem::error(
                    ptr,
                    "base64 data is not a PNG, JPEG or WEBP image",
                ));
            }
        }
        Err(_) => problems.push(Problem::error(
            ptr,
            "image is neither an http(s) URL nor valid base64",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(json: &str) -> Validation {
        validate_bytes(json.as_bytes(), &ValidateOptions::default())
    }

    fn has(val: &Validation, ptr: &str, needle: &str) -> bool {
        val.problems
            .iter()
            .any(|p| p.pointer == ptr && p.message.contains(needle))
    }

    const OK: &str = r#"{"campaign":"spring-1","vendor":"evolink","budget_usd":50,
        "defaults":{"prompt":"dance","tier":"std"},
        "jobs":[{"id":"a","image":"https://cdn.example.com/a.png","video":"https://cdn.example.com/v.mp4","video_duration_s":8}]}"#;

    #[test]
    fn a_valid_manifest() {
        let val = v(OK);
        assert!(val.is_valid(), "{:?}", val.problems);
        let (c, jobs) = val.campaign.unwrap();
        assert_eq!(c.vendors, vec![Vendor::Evolink]);
        assert_eq!(jobs[0].spec.prompt.as_deref(), Some("dance"));
        assert_eq!(jobs[0].spec.orientation, Orientation::Video);
        assert_eq!(jobs[0].duration_source, DurationSource::Manifest);
    }

    #[test]
    fn prompt_limit_counts_characters_not_bytes() {
        let ok = "é".repeat(2500); // 5000 bytes, 2500 characters
        let json = OK.replace("\"prompt\":\"dance\"", &format!("\"prompt\":\"{ok}\""));
        assert!(v(&json).is_valid());
        let long = "é".repeat(2501);
        let json = OK.replace("\"prompt\":\"dance\"", &format!("\"prompt\":\"{long}\""));
        let val = v(&json);
        assert!(
            has(&val, "/jobs/0/prompt", "2501 characters"),
            "{:?}",
            val.problems
        );
        assert!(has(&val, "/jobs/0/prompt", "set in /defaults"));
    }

    #[test]
    fn orientation_and_duration_rules() {
        let json = OK.replace(
            "\"video_duration_s\":8",
            "\"video_duration_s\":12,\"orientation\":\"image\"",
        );
        assert!(has(&v(&json), "/jobs/0/video_duration_s", "at most 10"));
        let json = OK.replace("\"video_duration_s\":8", "\"video_duration_s\":2");
        assert!(has(&v(&json), "/jobs/0/video_duration_s", "at least 3"));
        let json = OK.replace("\"video_duration_s\":8", "\"video_duration_s\":31");
        assert!(has(
            &v(&json),
            "/jobs/0/video_duration_s",
            "longest accepted is 30"
        ));
        // HighwayAPI accepts a long reference in image orientation and outputs 5 s: a warning.
        let json = OK
            .replace("\"vendor\":\"evolink\"", "\"vendor\":\"highwayapi\"")
            .replace(
                "\"video_duration_s\":8",
                "\"video_duration_s\":12,\"orientation\":\"image\"",
            );
        let val = v(&json);
        assert!(val.is_valid(), "{:?}", val.problems);
        assert!(has(&val, "/jobs/0/orientation", "outputs 5 s"));
    }

    #[test]
    fn formats_and_base64_per_vendor() {
        let json = OK.replace("a.png", "a.webp");
        assert!(has(&v(&json), "/jobs/0/image", "does not accept Webp"));
        let json = OK
            .replace("a.png", "a.webp")
            .replace("v.mp4", "v.webm")
            .replace("\"vendor\":\"evolink\"", "\"vendor\":\"freepik\"");
        assert!(v(&json).is_valid());
        let png_b64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
        let json = OK.replace("https://cdn.example.com/a.png", png_b64);
        assert!(has(&v(&json), "/jobs/0/image", "only image URLs"));
        let json = json.replace("\"vendor\":\"evolink\"", "\"vendor\":\"kkiai\"");
        assert!(v(&json).is_valid(), "{:?}", v(&json).problems);
        let json = OK.replace("https://cdn.example.com/a.png", "not base64 !!");
        assert!(has(
            &v(&json),
            "/jobs/0/image",
            "neither an http(s) URL nor valid base64"
        ));
    }

    #[test]
    fn fields_a_vendor_cannot_express() {
        let json = OK.replace("\"tier\":\"std\"", "\"tier\":\"std\",\"cfg_scale\":0.5");
        let val = v(&json);
        assert!(
            has(&val, "/jobs/0/cfg_scale", "no cfg_scale (set in /defaults)"),
            "{:?}",
            val.problems
        );
        // Routed: the vendor is excluded with a warning instead.
        let json = json.replace(
            "\"vendor\":\"evolink\"",
            "\"vendors\":[\"evolink\",\"freepik\"]",
        );
        let val = v(&json);
        assert!(val.is_valid(), "{:?}", val.problems);
        assert_eq!(val.campaign.unwrap().1[0].vendors, vec![Vendor::Freepik]);
        let json = OK.replace(
            "\"video_duration_s\":8",
            "\"video_duration_s\":8,\"negative_prompt\":\"blur\"",
        );
        assert!(has(
            &v(&json),
            "/jobs/0/negative_prompt",
            "no negative prompt"
        ));
        let json = OK
            .replace("\"vendor\":\"evolink\"", "\"vendor\":\"freepik\"")
            .replace(
                "\"video_duration_s\":8",
                "\"video_duration_s\":8,\"keep_sound\":true",
            );
        assert!(has(
            &v(&json),
            "/jobs/0/keep_sound",
            "cannot keep the reference audio"
        ));
    }

    #[test]
    fn callback_urls() {
        let o = ValidateOptions::default();
        assert!(check_callback_url("https://hooks.example.com/mq", &o).is_ok());
        assert!(check_callback_url("http://hooks.example.com/mq", &o)
            .unwrap_err()
            .contains("HTTPS"));
        for bad in [
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.5/x",
            "https://172.20.0.1/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://169.254.169.254/latest",
            "https://localhost/x",
            "https://100.64.0.1/x",
            "https://[::ffff:127.0.0.1]/x",
        ] {
            assert!(check_callback_url(bad, &o).is_err(), "{bad}");
        }
        let long = format!("https://hooks.example.com/{}", "a".repeat(2048));
        assert!(check_callback_url(&long, &o).is_err());
        let dev = ValidateOptions {
            allow_private_callbacks: true,
            ..Default::default()
        };
        assert!(check_callback_url("http://127.0.0.1:9000/x", &dev).is_ok());
        let json = OK.replace(
            "\"budget_usd\":50",
            "\"budget_usd\":50,\"callback_base_url\":\"https://127.0.0.1/h\"",
        );
        assert!(has(&v(&json), "/callback_base_url", "private or loopback"));
    }

    #[test]
    fn duplicates_and_derived_ids() {
        let json = r#"{"campaign":"c","vendor":"kkiai","jobs":[
            {"id":"x","image":"https://e.com/a.png","video":"https://e.com/v.mp4"},
            {"id":"x","image":"https://e.com/b.png","video":"https://e.com/v.mp4"},
            {"image":"https://e.com/c.png","video":"https://e.com/v.mp4"},
            {"image":"https://e.com/c.png","video":"https://e.com/v.mp4"}]}"#;
        let val = v(json);
        assert!(has(
            &val,
            "/jobs/1/id",
            "duplicate job id `x` (first used at /jobs/0/id)"
        ));
        assert!(has(&val, "/jobs/3", "identical to /jobs/2"));
        let single = r#"{"campaign":"c","vendor":"kkiai","jobs":[{"image":"https://e.com/c.png","video":"https://e.com/v.mp4"}]}"#;
        let a = v(single).campaign.unwrap().1[0].spec.id.clone();
        let b = v(single).campaign.unwrap().1[0].spec.id.clone();
        assert_eq!(a, b, "derived ids are stable");
        assert!(a.starts_with("h-") && a.len() == 18);
    }

    #[test]
    fn campaign_level_rules() {
        let val = v(
            r#"{"campaign":"Bad Id","vendor":"evolink","vendors":["kkiai"],"budget_usd":-1,"routing":"cheapest","output_prefix":"../x","jobs":[]}"#,
        );
        for (ptr, needle) in [
            ("/campaign", "lowercase"),
            ("/vendors", "not both"),
            ("/budget_usd", "positive"),
            ("/jobs", "no jobs"),
            ("/output_prefix", "`..`"),
        ] {
            assert!(has(&val, ptr, needle), "{ptr}: {:?}", val.problems);
        }
        let val = v(
            r#"{"campaign":"c","jobs":[{"image":"https://e.com/a.png","video":"https://e.com/v.mp4"}]}"#,
        );
        assert!(has(&val, "", "no vendor chosen"));
    }

    #[test]
    fn loopback_media_is_a_warning_only() {
        let json = OK.replace(
            "https://cdn.example.com/a.png",
            "http://127.0.0.1:8089/media/a.png",
        );
        let val = v(&json);
        assert!(val.is_valid());
        assert!(has(&val, "/jobs/0/image", "real vendors cannot fetch"));
        let quiet = validate_bytes(
            json.as_bytes(),
            &ValidateOptions {
                allow_private_media: true,
                ..Default::default()
            },
        );
        assert_eq!(quiet.warnings().count(), 0);
        let json = OK.replace("https://cdn.example.com/v.mp4", "ftp://x/v.mp4");
        assert!(has(&v(&json), "/jobs/0/video", "http(s) URL"));
    }

    #[test]
    fn probe_facts_are_checked_per_vendor() {
        let mut facts = MediaFacts::default();
        facts.images.insert(
            "https://cdn.example.com/a.png".into(),
            Ok(ImageFacts {
                format: Some(ImageFormat::Png),
                width: 200,
                height: 200,
                bytes: Some(1000),
            }),
        );
        facts.videos.insert(
            "https://cdn.example.com/v.mp4".into(),
            Ok(VideoFacts {
                format: Some(VideoFormat::Mp4),
                duration_s: Some(12.4),
                width: 720,
                height: 1280,
                bytes: Some(1 << 20),
            }),
        );
        let mut p = Vec::new();
        let parsed = crate::manifest::parse(OK.as_bytes(), &mut p).unwrap();
        let val = validate(&parsed, &ValidateOptions::default(), Some(&facts), p);
        assert!(
            has(&val, "/jobs/0/image", "200x200 px"),
            "{:?}",
            val.problems
        );
        assert!(has(
            &val,
            "/jobs/0/video_duration_s",
            "using the probed length"
        ));
        facts.videos.insert(
            "https://cdn.example.com/v.mp4".into(),
            Err("connection refused".into()),
        );
        let mut p = Vec::new();
        let parsed = crate::manifest::parse(OK.as_bytes(), &mut p).unwrap();
        let val = validate(&parsed, &ValidateOptions::default(), Some(&facts), p);
        assert!(has(
            &val,
            "/jobs/0/video",
            "probe failed: connection refused"
        ));
    }
}
