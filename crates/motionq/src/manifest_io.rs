//! Reading a manifest from a file (or `-` for stdin) with a size cap, then parsing, probing and
//! validating it.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use motionq_config::Config;
use motionq_core::validate::{ImageFacts, MediaFacts, VideoFacts};
use motionq_core::{ImageFormat, Problem, Validation, VideoFormat};
use sha2::{Digest, Sha256};

use crate::exit::Failure;

/// A manifest's bytes and their sha256.
pub struct ManifestBytes {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// Reads at most `validation.max_manifest_bytes`; a larger file is refused without reading it.
pub fn read(path: &Path, cfg: &Config) -> Result<ManifestBytes, Failure> {
    let max = cfg.validation.max_manifest_bytes;
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::operational(format!("reading the manifest from stdin: {e}")))?;
    } else {
        let meta = std::fs::metadata(path).map_err(|e| {
            Failure::invalid(format!("cannot read manifest {}: {e}", path.display()))
        })?;
        if meta.is_dir() {
            return Err(Failure::invalid(format!(
                "{} is a directory, not a manifest",
                path.display()
            )));
        }
        if meta.len() > max {
            return Err(Failure::invalid(too_big(meta.len(), max)));
        }
        let f = std::fs::File::open(path).map_err(|e| {
            Failure::invalid(format!("cannot read manifest {}: {e}", path.display()))
        })?;
        f.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::operational(format!("reading {}: {e}", path.display())))?;
    }
    if bytes.len() as u64 > max {
        return Err(Failure::invalid(too_big(bytes.len() as u64, max)));
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(ManifestBytes { bytes, sha256 })
}

fn too_big(len: u64, max: u64) -> String {
    format!(
        "the manifest is {:.1} MB; the limit is {:.1} MB (validation.max_manifest_bytes, env MOTIONQ__VALIDATION__MAX_MANIFEST_BYTES). Split the campaign or raise the limit.",
        len as f64 / 1e6,
        max as f64 / 1e6
    )
}

/// Parses, optionally probes, and validates.
pub async fn validate(bytes: &[u8], cfg: &Config, probe: bool) -> Validation {
    let mut problems: Vec<Problem> = Vec::new();
    let Some(parsed) = motionq_core::manifest::parse(bytes, &mut problems) else {
        return Validation {
            campaign: None,
            problems,
        };
    };
    let facts = if probe {
        Some(probe_media(&parsed.manifest, cfg).await)
    } else {
        None
    };
    motionq_core::validate::validate(&parsed, &cfg.validate_options(), facts.as_ref(), problems)
}

/// Probes every distinct image and video once, with bounded concurrency.
async fn probe_media(m: &motionq_core::Manifest, cfg: &Config) -> MediaFacts {
    use futures::StreamExt;
    let opts = motionq_probe::ProbeOptions {
        timeout: std::time::Duration::from_millis(cfg.validation.probe_timeout_ms),
        concurrency: cfg.validation.probe_concurrency.max(1),
        ..Default::default()
    };
    let client = match opts.client() {
        Ok(c) => c,
        Err(e) => {
            let mut facts = MediaFacts::default();
            for j in &m.jobs {
                facts
                    .videos
                    .insert(j.video.clone(), Err(format!("no HTTP client: {e}")));
            }
            return facts;
        }
    };
    let prober = motionq_probe::Prober::new(client, opts.clone());
    let images: HashSet<&str> = m.jobs.iter().map(|j| j.image.as_str()).collect();
    let videos: HashSet<&str> = m.jobs.iter().map(|j| j.video.as_str()).collect();
    let mut facts = MediaFacts::default();
    let image_results: Vec<(String, Result<ImageFacts, String>)> = futures::stream::iter(images)
        .map(|img| {
            let prober = prober.clone();
            async move {
                let r = prober.probe_image_str(img).await;
                let facts = match r {
                    Ok(info) => {
                        let format = match info.format {
                            motionq_probe::ImageFormat::Png => Ok(ImageFormat::Png),
                            motionq_probe::ImageFormat::Jpeg => Ok(ImageFormat::Jpeg),
                            motionq_probe::ImageFormat::Webp => Ok(ImageFormat::Webp),
                            motionq_probe::ImageFormat::Other(name) => Err(format!(
                                "the image is {name}; vendors accept JPEG and PNG (WEBP on Freepik)"
                            )),
                        };
                        format.map(|f| ImageFacts {
                            format: Some(f),
                            width: info.width,
                            height: info.height,
                            bytes: info.bytes,
                        })
                    }
                    Err(e) => Err(e.to_string()),
                };
                (img.to_string(), facts)
            }
        })
        .buffer_unordered(opts.concurrency)
        .collect()
        .await;
    facts.images.extend(image_results);
    let video_results: Vec<(String, Result<VideoFacts, String>)> = futures::stream::iter(videos)
        .map(|v| {
            let prober = prober.clone();
            async move {
                let r = match url::Url::parse(v) {
                    Ok(u) => prober.probe_video(&u).await.map_err(|e| e.to_string()),
                    Err(e) => Err(format!("not a URL: {e}")),
                };
                let facts = r.map(|info| VideoFacts {
                    format: match info.container {
                        motionq_probe::Container::Mp4 => Some(VideoFormat::Mp4),
                        motionq_probe::Container::Mov => Some(VideoFormat::Mov),
                        motionq_probe::Container::Other(name) if name == "webm" => {
                            Some(VideoFormat::Webm)
                        }
                        motionq_probe::Container::Other(_) => None,
                    },
                    duration_s: info.duration_s,
                    width: info.width,
                    height: info.height,
                    bytes: info.bytes,
                });
                (v.to_string(), facts)
            }
        })
        .buffer_unordered(opts.concurrency)
        .collect()
        .await;
    facts.videos.extend(video_results);
    facts
}

/// Prints problems, errors first, to stderr.
pub fn print_problems(v: &Validation) {
    for p in v.errors().chain(v.warnings()) {
        eprintln!("{p}");
    }
}
